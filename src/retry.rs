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
//! - **the request is safe to repeat**: a `GET` or `HEAD`, or any request with an
//!   `Idempotency-Key` (Vipps MobilePay carries out a request once per key; the
//!   [`IdempotencyLayer`](crate::idempotency::IdempotencyLayer) gives every `POST`,
//!   `PUT`, `PATCH` and `DELETE` one). The one exception: a connection that could
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
/// `HEAD`, any request with a non-empty `Idempotency-Key`, an eCom v2 request with
/// a non-empty `X-Request-Id` (eCom's own idempotency header), or an access token
/// request (`POST /accesstoken/get`, recognised by its path and `client_secret`
/// header; a Checkout call carries `client_secret` too, and is not one).
pub fn safe_to_repeat<B>(request: &Request<B>) -> bool {
    safe(
        request.method(),
        Some(request.uri().path()),
        request.headers(),
    )
}

/// The eCom v2 idempotency header.
const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

fn safe(method: &Method, path: Option<&str>, headers: &HeaderMap) -> bool {
    let non_empty = |name| {
        headers
            .get(name)
            .is_some_and(|k: &http::HeaderValue| !k.is_empty())
    };
    let api = path.map(crate::Api::from_path);
    matches!(*method, Method::GET | Method::HEAD)
        || non_empty(IDEMPOTENCY_KEY)
        || (api == Some(crate::Api::ECom) && non_empty(X_REQUEST_ID))
        // An access token request changes nothing: fetching a token twice is
        // harmless. Without the path (`next_delay`), `client_secret` alone says so.
        || (headers.contains_key(crate::headers::CLIENT_SECRET)
            && api.is_none_or(|api| api == crate::Api::AccessToken))
}

/// A transient failure, as the policy sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    /// A retryable status, with the `Retry-After` delay if one was given.
    Status(StatusCode, Option<Duration>),
    /// The connection could not be opened: the request was never sent.
    NothingSent,
    /// A timeout or a broken connection: the request may have been carried out.
    MaybeSent,
}

impl Failure {
    /// The `reason` label of `vipps_retries_total`.
    fn reason(&self) -> &'static str {
        match self {
            Failure::Status(status, _) => match status.as_u16() {
                429 => "status_429",
                500 => "status_500",
                502 => "status_502",
                503 => "status_503",
                504 => "status_504",
                _ => "status_other",
            },
            Failure::NothingSent => "nothing_sent",
            Failure::MaybeSent => "maybe_sent",
        }
    }
}

/// Why the policy does not retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// Success, or a failure that is not transient.
    Final,
    /// Transient, but the request is not safe to repeat.
    NotSafe,
    /// `max_retries` reached.
    Exhausted,
    /// The `Retry-After` is longer than the cap.
    PastCap(Duration),
    /// The retry budget is spent.
    Budget,
    /// The wait would end past the call's total deadline.
    PastDeadline(Duration),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    Retry(Duration),
    Stop(Stop),
}

/// The [`tower::retry::Policy`] of tower-vipps; see the [module docs](self).
///
/// Clones share the retry budget. Use it through [`RetryLayer`] (which converts
/// the inner errors to [`VippsError`]), or with `tower::retry::RetryLayer` over a
/// service whose error already is [`VippsError`].
#[derive(Clone)]
pub struct RetryPolicy {
    max_retries: u32,
    base_delay: Duration,
    max_delay: Duration,
    retry_after_cap: Duration,
    budget: Arc<dyn Budget + Send + Sync>,
    /// Retries made so far in this call (each call works on its own clone).
    attempts: u32,
    /// The call's total deadline when a scoped total timeout passed it (the
    /// preset) rather than a [`CallDeadline`] extension.
    deadline: Option<tokio::time::Instant>,
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_retries", &self.max_retries)
            .field("base_delay", &self.base_delay)
            .field("max_delay", &self.max_delay)
            .field("retry_after_cap", &self.retry_after_cap)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::new()
    }
}

impl RetryPolicy {
    /// The default policy: 3 retries, backoff from 200 ms up to 10 s, a
    /// `Retry-After` honoured up to 30 s, and a budget of 10 retries per second plus
    /// 20 % of the calls of the last 10 seconds.
    pub fn new() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            retry_after_cap: Duration::from_secs(30),
            budget: Arc::new(TpsBudget::new(Duration::from_secs(10), 10, 0.2)),
            attempts: 0,
            deadline: None,
        }
    }

    /// The most retries per call (attempts = retries + 1).
    pub fn max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// The backoff before the first retry is uniform in `[0, base_delay]`; it
    /// doubles with every retry.
    pub fn base_delay(mut self, base_delay: Duration) -> Self {
        self.base_delay = base_delay;
        self
    }

    /// The longest backoff (the `Retry-After` has its own cap).
    pub fn max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// The longest `Retry-After` waited out; a longer one ends the retries and the
    /// failure goes to the caller.
    pub fn retry_after_cap(mut self, cap: Duration) -> Self {
        self.retry_after_cap = cap;
        self
    }

    /// The retry budget, e.g. `TpsBudget::new(ttl, min_per_sec, retry_percent)`.
    /// It is shared by every clone of this policy.
    pub fn budget(self, budget: impl Budget + Send + Sync + 'static) -> Self {
        self.shared_budget(Arc::new(budget))
    }

    /// A retry budget shared with other policies (several clients of one API).
    pub fn shared_budget(mut self, budget: Arc<dyn Budget + Send + Sync>) -> Self {
        self.budget = budget;
        self
    }

    /// The upper bound of the backoff before retry `n` (from 0):
    /// `min(max_delay, base_delay * 2^n)`.
    fn backoff_ceiling(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n).unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// Full jitter: uniform in `[0, ceiling]`.
    fn backoff(&self, n: u32) -> Duration {
        let ceiling = u64::try_from(self.backoff_ceiling(n).as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=ceiling))
    }

    /// The decision for one failure, given the request's safety and the time left
    /// before the call's total deadline. Withdraws from the budget when it decides
    /// to retry.
    fn decide(&self, failure: Option<Failure>, safe: bool, left: Option<Duration>) -> Decision {
        let Some(failure) = failure else {
            return Decision::Stop(Stop::Final);
        };
        if !safe && failure != Failure::NothingSent {
            return Decision::Stop(Stop::NotSafe);
        }
        if self.attempts >= self.max_retries {
            return Decision::Stop(Stop::Exhausted);
        }
        let delay = match failure {
            Failure::Status(_, Some(after)) if after > self.retry_after_cap => {
                return Decision::Stop(Stop::PastCap(after));
            }
            Failure::Status(_, Some(after)) => after,
            _ => self.backoff(self.attempts),
        };
        if left.is_some_and(|left| delay >= left) {
            // Waiting would only end in a timeout; the caller gets the real failure.
            return Decision::Stop(Stop::PastDeadline(delay));
        }
        if !self.budget.withdraw() {
            return Decision::Stop(Stop::Budget);
        }
        Decision::Retry(delay)
    }
}

/// The outcome of one attempt, for an adapter that runs its own retry loop (a
/// `reqwest_middleware` middleware, say) with [`RetryPolicy::next_delay`].
#[derive(Clone, Copy, Debug)]
pub enum Outcome<'a> {
    /// A response came: its status and headers (a success is never retried).
    Response(StatusCode, &'a HeaderMap),
    /// The attempt failed.
    Error(&'a VippsError),
}

impl RetryPolicy {
    /// For adapters: call once per logical call, before its first attempt (it
    /// deposits into the retry budget). `tower::retry` does this through
    /// `clone_request`.
    pub fn start_call(&mut self) {
        self.attempts = 0;
        self.budget.deposit();
    }

    /// For adapters: what to do after an attempt of a request with this method and
    /// these headers. `Some(delay)`: wait that long, then send the same request
    /// again (only if its body can be sent twice); `None`: stop and hand the outcome
    /// to the caller. `deadline` is the call's total deadline, if any. Counts the
    /// retry and withdraws from the budget; when it stops on an error it returns
    /// the reason to add as evidence.
    pub fn next_delay(
        &mut self,
        method: &Method,
        headers: &HeaderMap,
        deadline: Option<tokio::time::Instant>,
        outcome: Outcome<'_>,
    ) -> Result<Duration, Option<String>> {
        self.next_delay_at(method, None, headers, deadline, outcome)
    }

    /// [`RetryPolicy::next_delay`] knowing the request's path, so that what is safe
    /// to repeat follows the API (see [`safe_to_repeat`]).
    pub(crate) fn next_delay_at(
        &mut self,
        method: &Method,
        path: Option<&str>,
        headers: &HeaderMap,
        deadline: Option<tokio::time::Instant>,
        outcome: Outcome<'_>,
    ) -> Result<Duration, Option<String>> {
        let failure = match outcome {
            Outcome::Response(status, headers) => failure_of_status(status, headers),
            Outcome::Error(err) => failure_of_error(err),
        };
        if failure.is_none() {
            // A final answer (the common case): nothing to weigh.
            return Err(None);
        }
        let safe = safe(method, path, headers);
        let left = deadline.map(|d| d.saturating_duration_since(tokio::time::Instant::now()));
        let attempt = self.attempts + 1;
        match self.decide(failure, safe, left) {
            Decision::Retry(delay) => {
                self.attempts += 1;
                if let Some(failure) = &failure {
                    crate::observe::metrics::retry(failure.reason());
                }
                tracing::debug!(
                    attempt,
                    retry = self.attempts,
                    delay_ms = delay.as_millis() as u64,
                    failure = ?failure,
                    "vipps: retrying"
                );
                Ok(delay)
            }
            Decision::Stop(stop) => {
                if stop != Stop::Final {
                    tracing::debug!(attempt, stop = ?stop, failure = ?failure, "vipps: not retrying");
                }
                Err(stop_evidence(stop, attempt, self.retry_after_cap, method))
            }
        }
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    parse_retry_after(headers.get(http::header::RETRY_AFTER)?, SystemTime::now())
}

fn failure_of_status(status: StatusCode, headers: &HeaderMap) -> Option<Failure> {
    RETRY_STATUSES
        .contains(&status)
        .then(|| Failure::Status(status, retry_after(headers)))
}

fn failure_of_error(err: &VippsError) -> Option<Failure> {
    match err.origin() {
        Origin::Response(r) => failure_of_status(r.status, &r.headers),
        // A permanent transport failure (a certificate problem, a client without
        // HTTPS) fails the same way every time: never retried.
        Origin::Transport if !err.is_transient() => None,
        Origin::Transport if nothing_sent(err) => Some(Failure::NothingSent),
        Origin::Transport => Some(Failure::MaybeSent),
        _ => None,
    }
}

/// Whether a transport error happened before any byte of the request was sent:
/// a DNS failure, a refused connection, a reset while connecting, a connect
/// timeout, or another failure of the connect stage (hyper-util's
/// `client error (Connect)`, reqwest's `is_connect()`); see
/// [`diagnose::transport::nothing_sent`](crate::diagnose::transport::nothing_sent).
/// A deadline of the [timeout layer](crate::timeout) is not: the request may have
/// gone out. A permanent failure (a certificate problem) is never "nothing sent":
/// it is not retried at all.
pub fn nothing_sent(err: &VippsError) -> bool {
    err.is_transient()
        && std::error::Error::source(err).is_some_and(crate::diagnose::transport::nothing_sent)
}

impl<B: 'static, R> Policy<Request<B>, Response<R>, VippsError> for RetryPolicy {
    type Future = Sleep;

    fn retry(
        &mut self,
        req: &mut Request<B>,
        result: &mut Result<Response<R>, VippsError>,
    ) -> Option<Self::Future> {
        let outcome = match result {
            // A success is final: nothing to look up.
            Ok(res) if res.status().is_success() => return None,
            Ok(res) => Outcome::Response(res.status(), res.headers()),
            Err(err) => Outcome::Error(err),
        };
        let extension = req.extensions().get::<CallDeadline>().map(|d| d.0);
        let deadline = match (self.deadline, extension) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let path = Some(req.uri().path());
        match self.next_delay_at(req.method(), path, req.headers(), deadline, outcome) {
            Ok(delay) => Some(tokio::time::sleep(delay)),
            Err(why) => {
                if let (Err(err), Some(why)) = (result, why) {
                    let taken = std::mem::replace(
                        err,
                        VippsError::refused(crate::Diagnosis::new(Cause::Unknown)),
                    );
                    *err = taken.with_evidence(why);
                }
                None
            }
        }
    }

    fn clone_request(&mut self, req: &Request<B>) -> Option<Request<B>> {
        if self.attempts == 0 {
            // The first attempt of a call: it earns the budget its share, and takes
            // the deadline of a scoped total timeout (called synchronously above).
            self.budget.deposit();
            self.deadline = crate::timeout::scope::current();
        }
        let mut copy = crate::replay::try_clone_request(req)?;
        *copy.extensions_mut() = req.extensions().clone();
        Some(copy)
    }
}

fn stop_evidence(stop: Stop, attempt: u32, cap: Duration, method: &Method) -> Option<String> {
    Some(match stop {
        Stop::Final => return None,
        Stop::NotSafe => {
            format!("not retried: a {method} without an `Idempotency-Key` is not safe to repeat")
        }
        Stop::PastDeadline(wait) => format!(
            "not retried: waiting {wait:?} would pass the total deadline (attempt {attempt})"
        ),
        Stop::Exhausted => format!("gave up after {attempt} attempts"),
        Stop::PastCap(after) => format!(
            "not retried: Retry-After of {after:?} is past the cap of {cap:?} (attempt {attempt})"
        ),
        Stop::Budget => format!("not retried: the retry budget is spent (attempt {attempt})"),
    })
}

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
mod tests {
    use super::*;

    #[test]
    fn a_token_request_is_safe_to_repeat() {
        let token = Request::post("https://apitest.vipps.no/accesstoken/get")
            .header("client_id", "id")
            .header("client_secret", "secret")
            .body(())
            .unwrap();
        assert!(safe_to_repeat(&token));
        let payment = Request::post("https://apitest.vipps.no/epayment/v1/payments")
            .body(())
            .unwrap();
        assert!(!safe_to_repeat(&payment));
        // A Checkout session carries `client_secret` and is no token request.
        let session = Request::post("https://apitest.vipps.no/checkout/v3/session")
            .header("client_id", "id")
            .header("client_secret", "secret")
            .body(())
            .unwrap();
        assert!(!safe_to_repeat(&session));
        // eCom's own idempotency header.
        let ecom = Request::post("https://apitest.vipps.no/ecomm/v2/payments")
            .header("X-Request-Id", "r-1")
            .body(())
            .unwrap();
        assert!(safe_to_repeat(&ecom));
        let other = Request::post("https://apitest.vipps.no/epayment/v1/payments")
            .header("X-Request-Id", "r-1")
            .body(())
            .unwrap();
        assert!(!safe_to_repeat(&other));
    }
    use crate::Diagnosis;
    use crate::error::ErrorResponse;
    use bytes::Bytes;
    use http_body_util::{Full, StreamBody};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A budget that always allows and counts.
    #[derive(Default)]
    struct Counting {
        deposits: AtomicUsize,
        withdrawals: AtomicUsize,
        deny: bool,
    }
    impl Budget for Counting {
        fn deposit(&self) {
            self.deposits.fetch_add(1, Ordering::SeqCst);
        }
        fn withdraw(&self) -> bool {
            self.withdrawals.fetch_add(1, Ordering::SeqCst);
            !self.deny
        }
    }

    #[derive(Clone, Copy, Debug)]
    enum Body {
        Empty,
        Full,
        Stream,
    }

    #[derive(Clone, Copy, Debug)]
    enum Case {
        /// A plain response with this status.
        Plain(u16),
        /// A `VippsError` made from a response with this status (Diagnose below).
        Diagnosed(u16),
        ConnectRefused,
        Reset,
        Timeout,
        Refused,
    }

    fn error_response(status: u16, headers: HeaderMap) -> VippsError {
        let status = StatusCode::from_u16(status).unwrap();
        let cause = match status.as_u16() {
            429 => Cause::RateLimited,
            500..=599 => Cause::ServerError,
            _ => Cause::Unknown,
        };
        VippsError::from_response(
            ErrorResponse {
                status,
                headers,
                body: Bytes::new(),
                truncated: false,
            },
            Diagnosis::new(cause),
        )
    }

    fn result(outcome: Case) -> Result<Response<()>, VippsError> {
        let io = |kind| VippsError::transport(std::io::Error::new(kind, "io"));
        match outcome {
            Case::Plain(s) => Ok(Response::builder().status(s).body(()).unwrap()),
            Case::Diagnosed(s) => Err(error_response(s, HeaderMap::new())),
            Case::ConnectRefused => Err(io(std::io::ErrorKind::ConnectionRefused)),
            Case::Reset => Err(io(std::io::ErrorKind::ConnectionReset)),
            Case::Timeout => Err(io(std::io::ErrorKind::TimedOut)),
            Case::Refused => Err(VippsError::refused(Diagnosis::new(Cause::BearerMissing))),
        }
    }

    /// Runs one decision through the `Policy` methods, as `tower::retry` does.
    fn would_retry(method: &Method, key: bool, body: Body, outcome: Case) -> bool {
        let mut req = Request::builder()
            .method(method.clone())
            .uri("https://apitest.vipps.no/epayment/v1/payments");
        if key {
            req = req.header("Idempotency-Key", "k-1");
        }
        match body {
            Body::Empty => decide_on(
                req.body(http_body_util::Empty::<Bytes>::new()).unwrap(),
                outcome,
            ),
            Body::Full => decide_on(
                req.body(Full::new(Bytes::from_static(b"{}"))).unwrap(),
                outcome,
            ),
            Body::Stream => decide_on(
                req.body(StreamBody::new(futures_util::stream::empty::<
                    Result<http_body::Frame<Bytes>, std::io::Error>,
                >()))
                .unwrap(),
                outcome,
            ),
        }
    }

    fn decide_on<B: 'static>(mut req: Request<B>, outcome: Case) -> bool {
        let budget = Arc::new(Counting::default());
        let mut policy = RetryPolicy::new().shared_budget(budget.clone());
        let cloned = Policy::<_, Response<()>, VippsError>::clone_request(&mut policy, &req);
        assert_eq!(budget.deposits.load(Ordering::SeqCst), 1);
        if cloned.is_none() {
            // tower::retry never asks the policy without a clone.
            return false;
        }
        let mut res = result(outcome);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _enter = rt.enter();
        policy.retry(&mut req, &mut res).is_some()
    }

    #[test]
    fn decision_table() {
        use Case::*;
        let methods = [
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ];
        let outcomes = [
            Plain(200),
            Plain(201),
            Plain(204),
            Plain(400),
            Plain(401),
            Plain(403),
            Plain(404),
            Plain(409),
            Plain(423),
            Plain(429),
            Plain(500),
            Plain(501),
            Plain(502),
            Plain(503),
            Plain(504),
            Diagnosed(400),
            Diagnosed(401),
            Diagnosed(409),
            Diagnosed(429),
            Diagnosed(500),
            Diagnosed(502),
            Diagnosed(503),
            Diagnosed(504),
            ConnectRefused,
            Reset,
            Timeout,
            Refused,
        ];
        let mut rows = 0;
        for method in &methods {
            for key in [false, true] {
                for body in [Body::Empty, Body::Full, Body::Stream] {
                    for outcome in outcomes {
                        let safe = key || *method == Method::GET || *method == Method::HEAD;
                        let transient = match outcome {
                            Plain(s) | Diagnosed(s) => [429, 502, 503, 504].contains(&s),
                            ConnectRefused | Reset | Timeout => true,
                            Refused => false,
                        };
                        let nothing_sent = matches!(outcome, ConnectRefused);
                        let replayable = !matches!(body, Body::Stream);
                        let expected = replayable && transient && (safe || nothing_sent);
                        assert_eq!(
                            would_retry(method, key, body, outcome),
                            expected,
                            "{method} key={key} body={body:?} outcome={outcome:?}"
                        );
                        rows += 1;
                    }
                }
            }
        }
        assert_eq!(rows, 6 * 2 * 3 * outcomes.len());
    }

    #[test]
    fn full_jitter_stays_under_the_ceiling() {
        let policy = RetryPolicy::new()
            .base_delay(Duration::from_millis(100))
            .max_delay(Duration::from_secs(1));
        assert_eq!(policy.backoff_ceiling(0), Duration::from_millis(100));
        assert_eq!(policy.backoff_ceiling(1), Duration::from_millis(200));
        assert_eq!(policy.backoff_ceiling(3), Duration::from_millis(800));
        assert_eq!(policy.backoff_ceiling(4), Duration::from_secs(1));
        assert_eq!(policy.backoff_ceiling(40), Duration::from_secs(1));
        let mut below_half = 0;
        for _ in 0..2000 {
            let d = policy.backoff(2);
            assert!(d <= Duration::from_millis(400), "{d:?}");
            if d < Duration::from_millis(200) {
                below_half += 1;
            }
        }
        // Uniform over [0, 400 ms]: about half fall below 200 ms (full, not equal, jitter).
        assert!((800..1200).contains(&below_half), "{below_half}");
    }

    #[test]
    fn limits() {
        let budget = Arc::new(Counting::default());
        let mut policy = RetryPolicy::new()
            .max_retries(2)
            .retry_after_cap(Duration::from_secs(5))
            .shared_budget(budget.clone());
        let transient = Some(Failure::Status(StatusCode::SERVICE_UNAVAILABLE, None));
        assert!(matches!(
            policy.decide(transient, true, None),
            Decision::Retry(_)
        ));
        policy.attempts = 2;
        assert_eq!(
            policy.decide(transient, true, None),
            Decision::Stop(Stop::Exhausted)
        );
        policy.attempts = 0;
        let after = |s| {
            Some(Failure::Status(
                StatusCode::TOO_MANY_REQUESTS,
                Some(Duration::from_secs(s)),
            ))
        };
        assert_eq!(
            policy.decide(after(5), true, None),
            Decision::Retry(Duration::from_secs(5))
        );
        assert_eq!(
            policy.decide(after(6), true, None),
            Decision::Stop(Stop::PastCap(Duration::from_secs(6)))
        );
        assert_eq!(
            policy.decide(transient, false, None),
            Decision::Stop(Stop::NotSafe)
        );
        let withdrawn = budget.withdrawals.load(Ordering::SeqCst);
        assert_eq!(withdrawn, 2, "only decisions to retry withdraw");

        // The call's total deadline: a wait that would pass it is not started.
        let left = |s| Some(Duration::from_secs(s));
        assert_eq!(
            policy.decide(after(5), true, left(5)),
            Decision::Stop(Stop::PastDeadline(Duration::from_secs(5)))
        );
        assert_eq!(
            policy.decide(after(5), true, left(6)),
            Decision::Retry(Duration::from_secs(5))
        );
        assert_eq!(budget.withdrawals.load(Ordering::SeqCst), 3);

        let deny = RetryPolicy::new().budget(Counting {
            deny: true,
            ..Counting::default()
        });
        assert_eq!(
            deny.decide(transient, true, None),
            Decision::Stop(Stop::Budget)
        );
    }

    #[test]
    fn retry_after_from_a_diagnosed_error() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, "7".parse().unwrap());
        let err = error_response(429, headers);
        assert_eq!(
            failure_of_error(&err),
            Some(Failure::Status(
                StatusCode::TOO_MANY_REQUESTS,
                Some(Duration::from_secs(7))
            ))
        );
        let mut headers = HeaderMap::new();
        let date = SystemTime::now() + Duration::from_secs(120);
        headers.insert(
            http::header::RETRY_AFTER,
            httpdate::fmt_http_date(date).parse().unwrap(),
        );
        let Some(Failure::Status(_, Some(after))) =
            failure_of_status(StatusCode::SERVICE_UNAVAILABLE, &headers)
        else {
            panic!("no Retry-After");
        };
        assert!(
            after > Duration::from_secs(110) && after <= Duration::from_secs(120),
            "{after:?}"
        );
    }

    #[test]
    fn stopping_explains_why() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, "120".parse().unwrap());
        let mut res: Result<Response<()>, VippsError> = Err(error_response(429, headers));
        let mut req = Request::post("https://apitest.vipps.no/epayment/v1/payments")
            .header("Idempotency-Key", "k")
            .body(String::new())
            .unwrap();
        let mut policy = RetryPolicy::new();
        assert!(policy.retry(&mut req, &mut res).is_none());
        let err = res.unwrap_err();
        assert_eq!(err.cause(), Cause::RateLimited);
        assert!(
            err.diagnosis()
                .evidence()
                .iter()
                .any(|e| e.contains("past the cap of 30s")),
            "{:?}",
            err.diagnosis().evidence()
        );

        let mut res: Result<Response<()>, VippsError> = Err(error_response(503, HeaderMap::new()));
        let mut req = Request::post("https://apitest.vipps.no/epayment/v1/payments")
            .body(String::new())
            .unwrap();
        assert!(RetryPolicy::new().retry(&mut req, &mut res).is_none());
        assert_eq!(
            res.unwrap_err().diagnosis().evidence(),
            ["not retried: a POST without an `Idempotency-Key` is not safe to repeat"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_adapter_loop_gets_the_same_decisions() {
        let budget = Arc::new(Counting::default());
        let mut policy = RetryPolicy::new()
            .max_retries(2)
            .shared_budget(budget.clone());
        let mut headers = HeaderMap::new();
        headers.insert(IDEMPOTENCY_KEY, "k".parse().unwrap());
        let none = HeaderMap::new();
        policy.start_call();
        let unavailable = Outcome::Response(StatusCode::SERVICE_UNAVAILABLE, &none);
        assert!(
            policy
                .next_delay(&Method::POST, &headers, None, unavailable)
                .is_ok()
        );
        assert!(
            policy
                .next_delay(&Method::POST, &headers, None, unavailable)
                .is_ok()
        );
        assert_eq!(
            policy.next_delay(&Method::POST, &headers, None, unavailable),
            Err(Some("gave up after 3 attempts".into()))
        );
        policy.start_call();
        assert_eq!(
            policy.next_delay(&Method::POST, &none, None, unavailable),
            Err(Some(
                "not retried: a POST without an `Idempotency-Key` is not safe to repeat".into()
            ))
        );
        let ok = Outcome::Response(StatusCode::OK, &none);
        assert_eq!(policy.next_delay(&Method::GET, &none, None, ok), Err(None));
        assert_eq!(budget.deposits.load(Ordering::SeqCst), 2);
        assert_eq!(budget.withdrawals.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn hyper_connect_errors_are_nothing_sent() {
        #[derive(Debug)]
        struct Fake;
        impl fmt::Display for Fake {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("client error (Connect)")
            }
        }
        impl std::error::Error for Fake {}
        assert!(nothing_sent(&VippsError::transport(Fake)));
        let timeout = VippsError::transport(std::io::Error::new(std::io::ErrorKind::TimedOut, "t"));
        assert_eq!(timeout.cause(), Cause::Timeout);
        assert!(!nothing_sent(&timeout));
    }
}
