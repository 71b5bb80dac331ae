//! Composable [tower] middleware for resilient clients of the Vipps MobilePay APIs
//! (ePayment, eCom, Recurring, Checkout, Login, partner and management APIs).
//!
//! Most failed Vipps MobilePay integrations fail the same few ways: a malformed
//! `Authorization` header, a token fetched for one merchant serial number (MSN) used
//! for another, a subscription key that differs between the token call and the API
//! call, test keys sent to production, partner keys without `Merchant-Serial-Number`,
//! error bodies that nobody reads. tower-vipps
//!
//! 1. **checks every outgoing request before it is sent** and refuses, diagnosed and
//!    unsent, what can only fail ([`PreflightLayer`]);
//! 2. **fetches, caches and refreshes access tokens** per key set and MSN, ahead of
//!    expiry, one fetch per key however many requests wait ([`AuthLayer`],
//!    [`token::TokenCache`]);
//! 3. **turns every error response into one diagnosed error** ([`DiagnoseLayer`],
//!    [`VippsError`]): the known [`Cause`] with a stable code, what to do about it,
//!    the docs link, the request's context, and the raw status and body.
//!
//! # Quick start
//!
//! ```no_run
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use tower::{Layer, ServiceExt};
//! use tower_vipps::{Environment, HttpsClient, Keyring};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let keyring = Keyring::builder()
//!     .merchant(Environment::Test, "123456".parse()?, "client-id", "client-secret", "subscription-key")
//!     .system("acme-shop", "1.4.2")
//!     .build()?;
//!
//! // HTTPS with Mozilla's roots (feature `https`, on by default). Any other
//! // `Service<http::Request<B>>` that speaks HTTPS will do: a hyper client, a
//! // tower-http stack… `tower_vipps::client(keyring)` is this line in one call.
//! let client = tower_vipps::layer(keyring).layer(HttpsClient::new());
//!
//! let request = http::Request::get("https://apitest.vipps.no/epayment/v1/payments/acme-order-1001")
//!     .header("Merchant-Serial-Number", "123456")
//!     .body(Full::new(Bytes::new()))?;
//! match client.oneshot(request).await {
//!     Ok(response) => println!("{}", response.status()),
//!     // e.g. vipps::reference_not_found, with the steps to fix it and a docs link.
//!     Err(err) => eprintln!("{}", err.diagnosis().report()),
//! }
//! # Ok(()) }
//! ```
//!
//! Run `cargo run --example quickstart --features emulator` to see the whole stack
//! against the embedded emulator, no keys and no network needed.
//!
//! [`HttpsClient`] (feature `https`, on by default) is hyper-util's legacy client
//! over hyper-rustls (ring, Mozilla's roots); it never follows redirects. With a
//! private CA or a TLS-inspecting proxy, add its root:
//! `HttpsClient::builder().add_root_certificate(der).build()?`; see [`client`](mod@client) for
//! your own TLS settings or connector. Keys and tokens never go over plain HTTP:
//! `http://api.vipps.no` is refused unsent ([`Cause::InsecureScheme`]); only hosts
//! registered with [`KeyringBuilder::plaintext_host`] (an emulator on loopback)
//! take it. Transport failures are diagnosed from their source chain
//! ([`diagnose::transport`]): a certificate not trusted, expired or for another
//! name, DNS, a refused connection…
//!
//! # The inner service
//!
//! The layers take any `Service<http::Request<B>>` that is `Clone + Send +
//! 'static` with a `Send` future; it need not be `Sync`. Token requests go through
//! it too, with an empty `B::default()` body. So a type-erased client is fine,
//! `BoxCloneService` as well as `BoxCloneSyncService`:
//!
//! ```no_run
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper::body::Incoming;
//! use tower::util::BoxCloneService;
//! use tower::{Layer, ServiceExt};
//! use tower_vipps::{BoxError, Environment, HttpsClient, Keyring};
//!
//! # async fn run() -> Result<(), BoxError> {
//! let keyring = Keyring::builder()
//!     .merchant(Environment::Test, "123456".parse()?, "client-id", "client-secret", "sub-key")
//!     .build()?;
//! let inner: BoxCloneService<http::Request<Full<Bytes>>, http::Response<Incoming>, BoxError> =
//!     BoxCloneService::new(HttpsClient::new().map_err(BoxError::from));
//! let client = tower_vipps::layer(keyring).layer(inner);
//! // The whole stack boxed in turn:
//! let client = BoxCloneService::new(client);
//! let request = http::Request::get("https://apitest.vipps.no/epayment/v1/payments/acme-order-1001")
//!     .header("Merchant-Serial-Number", "123456")
//!     .body(Full::new(Bytes::new()))?;
//! let _response = client.oneshot(request).await?;
//! # Ok(()) }
//! ```
//!
//! # The layers
//!
//! Each layer stands alone; [`layer`] stacks them in this order (outermost first):
//!
//! | layer | does |
//! | --- | --- |
//! | [`idempotency::IdempotencyLayer`] | an `Idempotency-Key` on every POST/PUT/PATCH/DELETE of an API that takes one, kept across retries |
//! | [`timeout::TimeoutLayer::total`] | the deadline of the whole call |
//! | [`buffer::BufferLayer`] | an opaque body (`BoxBody`, …) of an exact size up to 64 KiB is read ahead, so it is checked and can be retried |
//! | [`DiagnoseLayer`] | error responses become [`VippsError`]; success streams through untouched |
//! | [`AuthLayer`] | key set per MSN and environment, cached tokens, Vipps headers; one replay on a stale-token 401 |
//! | [`retry::RetryLayer`] | transient failures of requests safe to repeat, with backoff, `Retry-After` and a budget |
//! | [`timeout::TimeoutLayer::per_attempt`] | the deadline of one attempt |
//! | [`PreflightLayer`] | the last look at each request as it goes on the wire |
//!
//! Each request gets exactly the credentials its API takes: the access token and
//! subscription key, Checkout's client id and secret, or the caller's own
//! credentials untouched (Login, token calls, a partner's own token): one table,
//! [`api::APIS`].
//!
//! For reqwest users, `reqwest::VippsMiddleware` (feature `reqwest`) runs the same
//! stack as a `reqwest_middleware::Middleware`, over a client built from your
//! `reqwest::ClientBuilder` with redirects off (credentials never follow a redirect).
//!
//! # Features
//!
//! - `https` (default): [`HttpsClient`] and [`client()`], a ready HTTPS client (ring,
//!   webpki roots; no OpenSSL). `native-roots` adds the system's roots.
//! - `cli`: the `vipps-doctor` and `vipps-explain` binaries
//!   (`cargo install tower-vipps --features cli`).
//! - `emulator`: [`emulator`], a Vipps MobilePay emulator on loopback for tests and
//!   examples.
//! - `reqwest`: `reqwest::VippsMiddleware` for `reqwest_middleware`.
//! - `miette`: `miette::Diagnostic` for [`VippsError`].
//! - `webhooks`: `webhooks::WebhookLayer`, which verifies, de-duplicates and types
//!   the webhook events Vipps MobilePay sends (the emulator turns it on).
//!
//! # Secrets
//!
//! Client secrets, subscription keys and access tokens are held in [`Secret`]
//! (redacted `Debug`, no `Display`, zeroized on drop), sent in header values marked
//! sensitive, and never written to `Debug`, `Display`, logs or tracing output.
//!
//! [tower]: https://docs.rs/tower
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod api;
pub mod auth;
pub mod buffer;
#[cfg(feature = "https")]
#[cfg_attr(docsrs, doc(cfg(feature = "https")))]
pub mod client;
pub mod context;
pub mod diagnose;
#[cfg(feature = "emulator")]
#[cfg_attr(docsrs, doc(cfg(feature = "emulator")))]
pub mod emulator;
mod environment;
pub mod error;
pub mod headers;
pub mod idempotency;
mod keys;
mod msn;
pub mod observe;
pub mod preflight;
pub mod replay;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod reqwest;
pub mod retry;
pub mod stack;
pub mod timeout;
pub mod token;
#[cfg(feature = "webhooks")]
#[cfg_attr(docsrs, doc(cfg(feature = "webhooks")))]
pub mod webhooks;

pub use auth::{Auth, AuthLayer};
#[cfg(feature = "https")]
pub use client::{HttpsClient, HttpsClientBuilder, VippsClient, client};
pub use context::{Api, RequestContext};
pub use diagnose::{Diagnose, DiagnoseLayer};
pub use environment::{Environment, Hosts, ParseEnvironmentError};
pub use error::{BoxError, Cause, Diagnosis, ErrorResponse, Origin, VippsError};
pub use keys::{
    Fingerprint, KeyError, KeyScope, KeySet, Keyring, KeyringBuilder, Lookup, Secret, SystemInfo,
};
pub use msn::{Msn, MsnError};
pub use preflight::{Preflight, PreflightLayer};
pub use stack::{VippsLayer, VippsService, layer};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
