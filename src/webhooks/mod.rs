//! Receiving the webhooks Vipps MobilePay sends (feature `webhooks`): verify their
//! signature, recognise redeliveries, and pass on a typed event.
//!
//! ```
//! use std::time::SystemTime;
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use tower::{Layer, ServiceExt, service_fn};
//! use tower_vipps::Secret;
//! use tower_vipps::webhooks::{Delivery, EPaymentEvent, EventName, WebhookLayer, sign};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let url = "https://shop.example/vipps/webhooks";
//! let secret = Secret::new("the secret POST /webhooks/v1/webhooks answered");
//! let handler = service_fn(|req: http::Request<Full<Bytes>>| async move {
//!     let event = req.extensions().get::<EPaymentEvent>().expect("an ePayment event");
//!     assert_eq!(event.name, EventName::Captured);
//!     assert_eq!(req.extensions().get::<Delivery>(), Some(&Delivery::New));
//!     Ok::<_, std::convert::Infallible>(http::Response::new(Full::<Bytes>::default()))
//! });
//! let service = WebhookLayer::new(url)?.secret(secret.clone()).layer(handler);
//!
//! // What Vipps MobilePay sends (`sign` makes the headers, for tests).
//! let body = r#"{"msn":"123456","reference":"acme-1001","pspReference":"7686f7788898767977","name":"CAPTURED","amount":{"currency":"NOK","value":49900},"timestamp":"2025-01-01T12:00:00Z","idempotencyKey":"b1b2","success":true}"#;
//! let mut request = http::Request::post("/vipps/webhooks").body(Full::new(Bytes::from(body)))?;
//! sign(body.as_bytes(), url, SystemTime::now(), &secret)?.apply(request.headers_mut());
//! assert_eq!(service.clone().oneshot(request).await?.status(), 200);
//!
//! // Unsigned: 401, and a diagnosis in the log.
//! let request = http::Request::post("/vipps/webhooks").body(Full::new(Bytes::from(body)))?;
//! assert_eq!(service.oneshot(request).await?.status(), 401);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # The scheme
//!
//! As documented on the Webhooks API's
//! [request authentication page](https://developer.vippsmobilepay.com/docs/APIs/webhooks-api/request-authentication/)
//! (whose test vector [`sign`] reproduces), each delivery is a `POST` with:
//!
//! 1. `x-ms-content-sha256`: base64(SHA-256(the body bytes));
//! 2. `x-ms-date`: an HTTP date;
//! 3. `Authorization: HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=<s>`,
//!    where `s` = base64(HMAC-SHA256(key = the registration's secret as UTF-8,
//!    `"POST\n" + path and query + "\n" + date + ";" + host + ";" + content hash`)).
//!
//! # What the layer does
//!
//! [`WebhookLayer`] reads the body up to a cap (bytes, frames and time), then
//! checks, in order: the method, the three headers, the body's hash against
//! `x-ms-content-sha256` (on the raw bytes, before anything parses them), the
//! date against the clock (±5 minutes by default), and the signature over the
//! string built from the **registered URL given to the layer** (a proxy that
//! rewrites `Host` or the path does not break it), compared in constant time
//! against each candidate secret: those configured for the event's `msn` first,
//! then those for any MSN.
//!
//! A failure answers `401` with an empty body. The operator learns why, as a
//! [`WebhookRejection`] (with a [`Diagnosis`](crate::Diagnosis) and a
//! [`Cause`](crate::Cause) such as `vipps::webhook_body_altered`): in a `tracing`
//! warn event, in the [`on_reject`](WebhookLayer::on_reject) hook, and in the
//! `401` response's extensions. A signature that fails is checked against the
//! request's own host and path, and against dates near now, to tell "host or
//! path differs from the registered URL" and "date altered" from "another
//! secret" (bounded work: two secrets, a few URLs, ±5 minutes).
//!
//! A verified request goes on as `http::Request<Full<Bytes>>` holding the raw
//! bytes, with these extensions: [`VerifiedBody`], [`VerifiedBy`],
//! [`EPaymentEvent`] (when the body is one), [`DeliveryKey`] and [`Delivery`].
//! An event is remembered in the [`DeliveryStore`] once the inner service
//! answers it `2xx`; a redelivery of it is marked [`Delivery::Duplicate`] and
//! still passed on (Vipps MobilePay retries any non-`2xx` for up to 7 days).
//!
//! Secrets are [`Secret`](crate::Secret)s: they never appear in `Debug` output
//! or logs.

mod event;
mod layer;
mod rejection;
mod sign;
mod store;
mod verify;

pub use event::{
    Amount, Delivery, DeliveryKey, EPaymentEvent, EventName, VerifiedBody, VerifiedBy,
};
pub use layer::{
    DEFAULT_BODY_LIMIT, DEFAULT_MAX_FRAMES, DEFAULT_READ_TIMEOUT, Webhook, WebhookLayer,
};
pub use rejection::WebhookRejection;
pub use sign::{
    InvalidUrl, RegisteredUrl, WebhookHeaders, X_MS_CONTENT_SHA256, X_MS_DATE, content_hash, sign,
};
pub use store::{DEFAULT_CAPACITY, DEFAULT_TTL, DeliveryStore, MemoryDeliveryStore};
pub use verify::{DEFAULT_TOLERANCE, Verifier};

#[cfg(feature = "emulator")]
pub(crate) use sign::{keyed, sign_for};
