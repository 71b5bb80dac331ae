//! [`RetryPolicy`] and [`RetryLayer`]: safe retries of transient failures.
//!
//! A payment client that retries blindly can charge twice; one that never retries
//! fails on every passing 502 or 429. The policy retries a request only when both
//! hold:
//!
//! - **the failure is transient**: a `429`, `502`, `503` or `504` (as a plain
//!   response, or as a [`VippsError`] made from one by a diagnosing layer below),
//!   a per-attempt [timeout](crate::timeout), or a transient transport error
//!   (DNS, a refused or reset connection; see [`crate::diagnose::transport`]).
//!   Every other status, `4xx` above all, is final, and so is a permanent
//!   transport failure: a certificate that is not trusted, expired or for another
//!   name, a failed TLS handshake, a client that cannot do HTTPS.
//! - **the request is safe to repeat**: a `GET` or `HEAD`, or a request carrying
//!   the idempotency header its API reads ([`safe_to_repeat`]: an
//!   `Idempotency-Key`, eCom v2's `X-Request-Id`; Vipps MobilePay carries out a
//!   request once per key; the
//!   [`IdempotencyLayer`](crate::idempotency::IdempotencyLayer) writes one on the
//!   calls that take it). An `Idempotency-Key` on an eCom or Webhooks call does not
//!   count: those APIs do not read it. The one exception: a connection that could
//!   not be opened (DNS failure, refused, unreachable, reset while connecting:
//!   nothing was sent) is retried for any request, since the server never saw it. A timeout or a connection reset after
//!   the request went out is *not* such a case: the payment may have been made, so
//!   only a key makes it safe.
//!
//! And within limits:
//!
//! - at most [`max_retries`](RetryPolicy::max_retries) retries per call;
//! - a `Retry-After` (seconds or HTTP date) is waited out exactly, up to
//!   [`retry_after_cap`](RetryPolicy::retry_after_cap); past the cap the policy stops
//!   and the failure (e.g. [`Cause::RateLimited`]) goes to the caller; so does a
//!   wait that would end past the call's [total deadline](crate::timeout::TimeoutLayer::total)
//!   (a [`CallDeadline`] extension), rather than a timeout after a useless wait;
//! - otherwise exponential backoff with *full jitter*: the wait before retry `n`
//!   (from 0) is uniform in `[0, min(max_delay, base_delay * 2^n)]`;
//! - a retry [budget](RetryPolicy::budget) shared by every clone of the policy: each
//!   call deposits, each retry withdraws, so a failing Vipps MobilePay gets at most a
//!   fixed share of extra load, not a storm (default: tower's [`TpsBudget`] of 10
//!   retries per second plus 20 % of the calls of the last 10 seconds);
//! - a body is sent twice only when it can be cloned to the same bytes
//!   ([`replay::try_clone_request`](crate::replay::try_clone_request)); a request with
//!   a streaming body is sent once.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::time::Duration;
//! use http::{Request, Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_vipps::idempotency::IdempotencyLayer;
//! use tower_vipps::retry::{RetryLayer, RetryPolicy};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! let calls = Arc::new(AtomicUsize::new(0));
//! let seen = calls.clone();
//! let flaky = move |_req: Request<String>| {
//!     // 503, 503, then 201.
//!     let n = seen.fetch_add(1, Ordering::SeqCst);
//!     let status = if n < 2 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::CREATED };
//!     async move {
//!         Ok::<_, std::convert::Infallible>(
//!             Response::builder().status(status).body(String::new()).unwrap(),
//!         )
//!     }
//! };
//! let client = ServiceBuilder::new()
//!     .layer(IdempotencyLayer::new())
//!     .layer(RetryLayer::new(
//!         RetryPolicy::new()
//!             .max_retries(3)
//!             .base_delay(Duration::from_millis(100))
//!             .max_delay(Duration::from_secs(2)),
//!     ))
//!     .service_fn(flaky);
//!
//! let req = Request::post("https://apitest.vipps.no/epayment/v1/payments")
//!     .body(String::from("{}"))
//!     .unwrap();
//! let res = client.oneshot(req).await.unwrap();
//! assert_eq!(res.status(), StatusCode::CREATED);
//! assert_eq!(calls.load(Ordering::SeqCst), 3);
//! # });
//! ```
//!
//! # Where the layers go
//!
//! The preset [`crate::layer`] stacks these for you. By hand, the order is
//! (outermost first):
//!
//! ```no_run
//! use std::time::Duration;
//! use tower::ServiceBuilder;
//! use tower_vipps::idempotency::IdempotencyLayer;
//! use tower_vipps::retry::{RetryLayer, RetryPolicy};
//! use tower_vipps::timeout::TimeoutLayer;
//! use tower_vipps::{AuthLayer, DiagnoseLayer, Environment, Keyring, PreflightLayer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = Keyring::builder()
//!     .merchant(Environment::Test, "123456".parse()?, "client-id", "client-secret", "sub-key")
//!     .build()?;
//! // Any `Service<http::Request<B>>`: `tower_vipps::HttpsClient::new()`, say; a
//! // stand-in here.
//! let http_client = tower::service_fn(|_req: http::Request<String>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//! });
//! let client = ServiceBuilder::new()
//!     .layer(IdempotencyLayer::new())                            // 1. one key per logical call
//!     .layer(TimeoutLayer::total(Duration::from_secs(30)))       // 2. deadline of the whole call
//!     .layer(DiagnoseLayer::new().keyring(&keys))                // 3. error responses -> VippsError
//!     .layer(AuthLayer::new(keys.clone()))                       // 4. token once; one replay on a stale 401
//!     .layer(RetryLayer::new(RetryPolicy::new()))                // 5. transient failures, same key
//!     .layer(TimeoutLayer::per_attempt(Duration::from_secs(10))) // 6. deadline of one attempt
//!     .layer(PreflightLayer::new().keyring(keys))                // 7. last look at each attempt
//!     .service(http_client);
//! # let _ = client;
//! # Ok(()) }
//! ```
//!
//! 1. **Idempotency outermost**, above Retry: the key is written once, so the
//!    request Retry clones (and every attempt) carries the *same* key. Below Retry
//!    each attempt would get a fresh key, which turns a retry into a second
//!    payment; and Retry would not see a key at all and refuse to retry a `POST`.
//!    Being outermost, it also puts the key into every error, whichever layer made it.
//! 2. **Total deadline** above Retry (and above Auth and Diagnose), so it bounds the
//!    whole call: token fetch, every attempt, every backoff and `Retry-After`
//!    wait, and the reading of the error body. When it fires, the call and any
//!    sleeping backoff are dropped.
//! 3. **Diagnose** above Retry: it diagnoses the final answer only (one error body
//!    read, not one per attempt) and the policy classifies the plain statuses. The
//!    policy also works with Diagnose below it (it reads status and `Retry-After`
//!    from the [`VippsError`]), so either order is correct; below, every failed
//!    attempt's body is read, and in exchange the final error says why the retries
//!    stopped ("gave up after 4 attempts", "Retry-After … past the cap").
//! 4. **Auth above Retry**: the token is looked up once per logical call and all
//!    attempts carry it; Auth's own stale-token replay (once, on a `401`, which
//!    Retry never retries) then runs at most once per logical call. Below Retry, each
//!    attempt would go through Auth, and a call could refresh and replay up to
//!    `max_retries + 1` times. (The token handed out must outlive the call: Auth's
//!    refresh-ahead margin should exceed the total deadline.)
//! 5. **Retry**, then 6. **the per-attempt deadline** below it, so a hung attempt
//!    ends as a transient [`Cause::Timeout`] that Retry may repeat (with the same
//!    key).
//! 7. **Preflight** last, checking each attempt exactly as it goes on the wire.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use futures_util::TryFutureExt;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use tokio::time::Sleep;
use tower::retry::Policy;
use tower::retry::budget::{Budget, TpsBudget};
use tower_layer::Layer;
use tower_service::Service;

use crate::context::IDEMPOTENCY_KEY;
use crate::error::parse_retry_after;
use crate::timeout::CallDeadline;
use crate::{BoxError, Cause, Origin, VippsError};

/// The statuses worth retrying: `429`, `502`, `503`, `504`. Not `500`: the
/// [docs](https://developer.vippsmobilepay.com/docs/knowledge-base/errors/) call it
/// an internal problem Vipps MobilePay must correct and name `423` and `429` as the
/// errors to retry with the same `Idempotency-Key` (the diagnosis of a `500` says so).
pub const RETRY_STATUSES: [StatusCode; 4] = [
    StatusCode::TOO_MANY_REQUESTS,
    StatusCode::BAD_GATEWAY,
    StatusCode::SERVICE_UNAVAILABLE,
    StatusCode::GATEWAY_TIMEOUT,
];

/// Whether a request may be sent twice without being carried out twice: a `GET` or
/// `HEAD`; a request carrying, non-empty, the idempotency header its API reads
/// ([`ApiSpec::idempotency`](crate::api::ApiSpec): `Idempotency-Key`, or eCom v2's
/// `X-Request-Id`; Webhooks has none, so a repeated registration is a second
/// webhook); or an access token request (`POST /accesstoken/get`, recognised by its
/// path and `client_secret` header; a Checkout call carries `client_secret` too,
/// and is not one).
///
/// ```
/// use tower_vipps::retry::safe_to_repeat;
///
/// let capture = |path: &str, header: &str| {
///     http::Request::post(path).header(header, "k-1").body(()).unwrap()
/// };
/// assert!(safe_to_repeat(&capture("https://api.vipps.no/epayment/v1/payments/r-1/capture", "Idempotency-Key")));
/// assert!(safe_to_repeat(&capture("https://api.vipps.no/ecomm/v2/payments/o-1/capture", "X-Request-Id")));
/// // eCom does not read an `Idempotency-Key`: a repeat could capture twice.
/// assert!(!safe_to_repeat(&capture("https://api.vipps.no/ecomm/v2/payments/o-1/capture", "Idempotency-Key")));
/// ```
pub fn safe_to_repeat<B>(request: &Request<B>) -> bool {
    safe(
        request.method(),
        Some(request.uri().path()),
        request.headers(),
    )
}

mod policy;

use policy::safe;
pub use policy::{Outcome, RetryPolicy, nothing_sent};

/// Retries with a [`RetryPolicy`]; see the [module docs](self). Its inner service
/// may fail with any error: it is converted to [`VippsError`].
#[derive(Clone, Debug)]
pub struct RetryLayer {
    policy: RetryPolicy,
}

impl RetryLayer {
    /// The layer of `policy`.
    pub fn new(policy: RetryPolicy) -> Self {
        RetryLayer { policy }
    }
}

impl Default for RetryLayer {
    fn default() -> Self {
        RetryLayer::new(RetryPolicy::new())
    }
}

/// [`RetryLayer::new`].
pub fn layer(policy: RetryPolicy) -> RetryLayer {
    RetryLayer::new(policy)
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry {
            inner: tower::retry::Retry::new(self.policy.clone(), IntoVippsError { inner }),
        }
    }
}

/// The service of [`RetryLayer`]: `tower::retry::Retry` with a [`RetryPolicy`].
#[derive(Clone, Debug)]
pub struct Retry<S> {
    inner: tower::retry::Retry<RetryPolicy, IntoVippsError<S>>,
}

impl<S> Retry<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, policy: RetryPolicy) -> Self {
        RetryLayer::new(policy).layer(inner)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner.get_ref().inner
    }
}

/// The response future of [`Retry`].
pub type ResponseFuture<S, B> =
    tower::retry::future::ResponseFuture<RetryPolicy, IntoVippsError<S>, Request<B>>;

impl<S, B, R> Service<Request<B>> for Retry<S>
where
    S: Service<Request<B>, Response = Response<R>> + Clone,
    S::Error: Into<BoxError>,
    B: 'static,
{
    type Response = Response<R>;
    type Error = VippsError;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        self.inner.call(req)
    }
}

/// Turns the errors of `S` into [`VippsError`] with [`VippsError::from_boxed`], so
/// the retry policy can read them. [`Retry`] puts it below itself.
#[derive(Clone, Debug)]
pub struct IntoVippsError<S> {
    inner: S,
}

impl<S, Req> Service<Req> for IntoVippsError<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = VippsError;
    type Future = futures_util::future::MapErr<S::Future, fn(S::Error) -> VippsError>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner
            .poll_ready(cx)
            .map_err(|e| VippsError::from_boxed(e.into()))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        self.inner
            .call(req)
            .map_err(into_vipps::<S::Error> as fn(S::Error) -> VippsError)
    }
}

fn into_vipps<E: Into<BoxError>>(e: E) -> VippsError {
    VippsError::from_boxed(e.into())
}

#[cfg(test)]
mod tests;
