//! [`AuthLayer`] / [`Auth`]: access tokens and Vipps headers on every request.
//!
//! Each request gets exactly the credentials its API takes, as listed in
//! [`crate::api::APIS`]:
//!
//! - **access token** (ePayment, Recurring, eCom, Webhooks, Order Management, and
//!   Management, Report and unknown paths without an `Authorization` of their own):
//!   `Auth` finds the key set (the `Merchant-Serial-Number` header, or an [`Msn`]
//!   request extension, and the environment of the request's host), gets a valid
//!   token from the [`TokenCache`] and sets `Authorization: Bearer …`,
//!   `Ocp-Apim-Subscription-Key`, `Merchant-Serial-Number` and the
//!   `Vipps-System-*` headers (the secret ones marked sensitive). A caller's own
//!   `Authorization` or `Ocp-Apim-Subscription-Key` on these APIs is **replaced**
//!   (a second credential can only be a stale or foreign one); a `debug` event of
//!   target `tower_vipps::auth` names the replaced header, never its value.
//! - **client credentials** (Checkout v3): the key set's `client_id`,
//!   `client_secret` and `Ocp-Apim-Subscription-Key` (replacing the caller's, with
//!   the same `debug` event), `Merchant-Serial-Number` and `Vipps-System-*`; no
//!   access token is fetched, and a caller's own `Authorization` is left alone.
//! - **the caller's own** (Login: token endpoint with `Basic`, userinfo with the
//!   user's token, discovery; the access token endpoints; and Management, Report or
//!   unknown paths that carry their own `Authorization`, such as a partner token of
//!   `/miami/v1/token`): the request goes through untouched, byte for byte.
//!
//! It refuses, unsent, a request that needs keys when it goes to a host of no
//! environment, to the other environment than its keys, has no keys for its MSN,
//! or goes over plain `http://` to a host not registered as plaintext
//! ([`Cause::InsecureScheme`]; the official hosts never are).
//!
//! On a `401` saying the access token is invalid or expired (an empty body, the
//! gateway's "Something went wrong", an invalid or expired token; never a
//! subscription key message), it drops exactly that token and, when the body can
//! be sent again (see [`crate::replay`]), replays the request once with a fresh
//! token. Any other response (a `403` included), a second `401`, and a `401` for a
//! streaming body are returned as they came: the body is wrapped in [`AuthBody`],
//! which yields the same frames.
//!
//! Details:
//! - `Merchant-Serial-Number` is added when the request lacks it (from the `Msn`
//!   extension, or the merchant's own MSN); the `Vipps-System-*` values of the
//!   [`Keyring`] replace any on the request.
//! - Tokens are fetched through the inner service by default (its request body's
//!   `Default` is the empty body), or through [`AuthLayer::token_service`]. Either
//!   must not follow redirects.
//! - Partner keys get one token per MSN, fetched with that MSN's header; see
//!   [`TokenCache`].
//!
//! ```no_run
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_vipps::{AuthLayer, Environment, Keyring};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let keyring = Keyring::builder()
//!     .merchant(Environment::Test, "123456".parse()?, "client-id", "client-secret", "sub-key")
//!     .build()?;
//! // Any `Service<http::Request<Full<Bytes>>>` that speaks HTTPS.
//! let http_client = tower_vipps::HttpsClient::new();
//! let mut client = ServiceBuilder::new()
//!     .layer(AuthLayer::new(keyring))
//!     .service(http_client);
//! let request = http::Request::get("https://apitest.vipps.no/epayment/v1/payments/ref-12345678")
//!     .header("Merchant-Serial-Number", "123456")
//!     .body(Full::new(Bytes::new()))?;
//! let response = client.ready().await?.call(request).await?;
//! # let _ = response;
//! # Ok(()) }
//! ```

// The submodules take these imports and each other's items with `use super::*`.
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use futures_util::future::BoxFuture;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower::{Service, ServiceExt};
use tower_layer::Layer;

use crate::api::{ApiSpec, Credentials};
use crate::diagnose::BODY_CAP;
use crate::diagnose::body::ErrorBody;
use crate::headers::{
    MERCHANT_SERIAL_NUMBER, OCP_APIM_SUBSCRIPTION_KEY, VIPPS_SYSTEM_NAME, VIPPS_SYSTEM_PLUGIN_NAME,
    VIPPS_SYSTEM_PLUGIN_VERSION, VIPPS_SYSTEM_VERSION,
};
use crate::observe::{self, TokenFrom};
use crate::token::{
    CacheKey, Fast, KeyHasherBuilder, Ticks, TokenCache, TokenClient, TokenRequest,
};

mod headers;
mod layer;
mod replay;
mod service;
mod shared;
mod source;
#[cfg(test)]
mod tests;

use headers::{Target, client_credentials, outgoing, replaced_event, target};
pub use layer::AuthLayer;
pub use replay::AuthBody;
use replay::finish;
pub use service::{Auth, ResponseFuture};
use service::{Replay, Sent, token_request};
use shared::{Core, Own, Shared, interned};
pub use source::{InnerTokenService, TokenSource};

use crate::{
    BoxError, Cause, Diagnosis, Environment, KeyScope, KeySet, Keyring, Lookup, Msn,
    RequestContext, VippsError,
};

/// A response extension on every `401` that [`Auth`] passes up: the request's
/// `Authorization` was set by `Auth`, so whatever a layer above saw on the request
/// is not what was sent. [`DiagnoseLayer`](crate::DiagnoseLayer) reads it; a layer of
/// your own that sets `Authorization` may insert it on its `401`s too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuthorizationSetBelow;
