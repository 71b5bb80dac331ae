//! Observability: a [`tracing`] span per logical call, one per attempt, one per
//! token fetch, and (feature `metrics`) the counters and histograms an operator
//! watches, through the [`metrics`](https://docs.rs/metrics) facade.
//!
//! The preset ([`crate::layer`]) puts [`CallSpanLayer`] outermost and
//! [`AttemptSpanLayer`] right below the retries, so every attempt, and every token
//! request the cache sends through the stack, gets its own span under the span of
//! the call (or of the token fetch) it belongs to. With no subscriber interested,
//! a span costs a callsite check and nothing is computed or allocated.
//!
//! ```no_run
//! use tower::{Layer, ServiceExt};
//! use tower_vipps::{Environment, Keyring};
//! use tracing_subscriber::EnvFilter;
//!
//! # async fn run(hyper_client: hyper_util::client::legacy::Client<
//! #     hyper_util::client::legacy::connect::HttpConnector,
//! #     http_body_util::Full<bytes::Bytes>,
//! # >) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! // Spans and events to stdout: `vipps.call` at INFO, `vipps.attempt` at DEBUG.
//! tracing_subscriber::fmt()
//!     .with_env_filter(EnvFilter::new("tower_vipps=debug"))
//!     .init();
//! // Counters and histograms, e.g. into Prometheus (feature `metrics`):
//! let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
//!
//! let keyring = Keyring::builder()
//!     .merchant(Environment::Test, "123456".parse()?, "client-id", "client-secret", "sub-key")
//!     .build()?;
//! let client = tower_vipps::layer(keyring).layer(hyper_client);
//! let request = http::Request::get("https://apitest.vipps.no/epayment/v1/payments/order-1001")
//!     .header("Merchant-Serial-Number", "123456")
//!     .body(Default::default())?;
//! let _ = client.oneshot(request).await;
//! println!("{}", prometheus.render()); // vipps_calls_total{api="epayment",…} 1
//! # Ok(()) }
//! ```
//!
//! `examples/observe.rs` runs the same against the emulator.
//!
//! # Spans
//!
//! Field names follow OpenTelemetry's HTTP client conventions where there is one
//! (`tracing-opentelemetry` maps `otel.kind` and these names as they are).
//!
//! | span | level | fields |
//! | --- | --- | --- |
//! | `vipps.call`: one logical call, outermost | INFO | `otel.kind` (`client`), `http.request.method`, `server.address`, `url.path` (no query), `vipps.api`, `vipps.operation`, `vipps.msn`, `vipps.environment`, `vipps.idempotency_key`, `vipps.attempts`, `vipps.token` (`cached`, `cached_refreshing`, `waited`), `vipps.token_wait_ms`, `http.response.status_code`, `error.type` (the cause code, e.g. `vipps::rate_limited`), `vipps.trace_id` (`traceId`, `instance` or eCom `contextId` of the error body) |
//! | `vipps.attempt`: one attempt as it goes to the inner service | DEBUG | `otel.kind`, `vipps.attempt` (1, 2, …), `http.request.method`, `server.address`, `url.path`, `vipps.api`, `http.response.status_code`, `error.type` |
//! | `vipps.token_fetch`: one fetch of the token cache, shared by every caller waiting for it (a root span; each waiting call's span *follows from* it) | INFO | `vipps.environment`, `vipps.key_set` (fingerprint of the subscription key, never the key), `vipps.msn`, `vipps.outcome` (`ok` or the cause code), `vipps.duration_ms` |
//!
//! No field holds a secret: no header value other than the MSN and the
//! idempotency key is read, and the path is taken without its query.
//!
//! # Metrics (feature `metrics`)
//!
//! Labels are bounded: API, operation, cause code, reason, environment. No MSN
//! label (a partner has thousands).
//!
//! | metric | kind | labels | counts |
//! | --- | --- | --- | --- |
//! | `vipps_calls_total` | counter | `api`, `operation`, `outcome` (`ok` or the cause code) | logical calls, when they end |
//! | `vipps_call_duration_seconds` | histogram | `api`, `operation` | the whole call, retries and token wait included |
//! | `vipps_refusals_total` | counter | `api`, `cause` | calls refused before sending, by cause |
//! | `vipps_rate_limited_total` | counter | `api` | `429` answers, attempt by attempt (token endpoint: `api="accesstoken"`) |
//! | `vipps_retries_total` | counter | `reason` (`status_429`, `status_502`, …, `nothing_sent`, `maybe_sent`) | retries the retry layer made |
//! | `vipps_token_cache_total` | counter | `result` (`hit`, `refresh_ahead`, `miss`) | token lookups by Auth |
//! | `vipps_token_wait_seconds` | histogram | | how long a call waited for a token after a miss |
//! | `vipps_token_fetches_total` | counter | `environment`, `outcome` (`ok` or the cause code) | token fetches of the cache |
//!
//! The names are the constants of [`metrics`].

pub mod attempt;
pub mod call;
pub mod metrics;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use http::Request;
use tracing::Span;

use crate::context::{IDEMPOTENCY_KEY, MERCHANT_SERIAL_NUMBER, prefix as cut};
use crate::diagnose::body::ErrorBody;
use crate::{Api, Hosts, Msn, VippsError};

pub use attempt::{AttemptSpan, AttemptSpanLayer};
pub use call::{CallSpan, CallSpanLayer};

/// Where a call's token came from, recorded as `vipps.token`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenFrom {
    /// A valid cached token.
    Cached,
    /// A valid cached token; this call started its refresh ahead of expiry.
    CachedRefreshing,
    /// No valid token: the call waited for a fetch.
    Waited,
}

impl TokenFrom {
    const fn as_str(self) -> &'static str {
        match self {
            TokenFrom::Cached => "cached",
            TokenFrom::CachedRefreshing => "cached_refreshing",
            TokenFrom::Waited => "waited",
        }
    }

    const fn cache_result(self) -> &'static str {
        match self {
            TokenFrom::Cached => "hit",
            TokenFrom::CachedRefreshing => "refresh_ahead",
            TokenFrom::Waited => "miss",
        }
    }
}

/// A request extension that [`CallSpan`] adds when its span is enabled: the layers
/// below record into the call's span through it and count its attempts. Cloned
/// with the request by the retry layer, so every attempt shares it.
#[derive(Clone, Debug)]
pub(crate) struct CallObserver(Arc<ObserverInner>);

#[derive(Debug)]
struct ObserverInner {
    span: Span,
    attempts: AtomicU32,
}

impl CallObserver {
    fn new(span: Span) -> Self {
        CallObserver(Arc::new(ObserverInner {
            span,
            attempts: AtomicU32::new(0),
        }))
    }

    /// The observer of the call a request belongs to.
    #[inline]
    pub(crate) fn of<B>(request: &Request<B>) -> Option<&CallObserver> {
        request.extensions().get::<CallObserver>()
    }

    /// Counts an attempt and returns its number (1 for the first).
    fn next_attempt(&self) -> u32 {
        let n = self.0.attempts.fetch_add(1, Ordering::Relaxed) + 1;
        self.0.span.record("vipps.attempts", n);
        n
    }

    /// Records where the call's token came from and, after a miss, the wait.
    pub(crate) fn token(&self, from: TokenFrom, wait: Option<Duration>) {
        self.0.span.record("vipps.token", from.as_str());
        if let Some(wait) = wait {
            self.0
                .span
                .record("vipps.token_wait_ms", wait.as_secs_f64() * 1000.0);
        }
    }

    /// The call's span.
    pub(crate) fn span(&self) -> &Span {
        &self.0.span
    }
}

/// Counts a token lookup of Auth (metric) and records it on the call's span.
#[inline]
pub(crate) fn token_lookup<B>(request: &Request<B>, from: TokenFrom, wait: Option<Duration>) {
    metrics::token_cache(from.cache_result());
    if let Some(wait) = wait {
        metrics::token_wait(wait);
    }
    if let Some(observer) = CallObserver::of(request) {
        observer.token(from, wait);
    }
}

/// The longest path recorded in a span field.
const PATH_CAP: usize = 256;

/// The API and operation of a request, worked out once per call for its span
/// and its metrics.
#[derive(Clone, Copy)]
pub(crate) struct Called {
    pub(crate) api: Api,
    pub(crate) operation: Option<&'static str>,
}

impl Called {
    pub(crate) fn of<B>(request: &Request<B>) -> Called {
        let path = request.uri().path();
        let api = Api::from_path(path);
        Called {
            api,
            operation: crate::context::operation_in(api, request.method(), path),
        }
    }
}

/// Records the HTTP fields of a request (method, host, path, API) on `span`.
fn record_http<B>(span: &Span, request: &Request<B>, api: Api) {
    let path = request.uri().path();
    span.record("http.request.method", request.method().as_str());
    if let Some(host) = request.uri().host() {
        span.record("server.address", cut(host, PATH_CAP));
    }
    span.record("url.path", cut(path, PATH_CAP));
    span.record("vipps.api", api.as_str());
}

/// Records what the call is for: operation, MSN, environment, idempotency key.
fn record_vipps<B>(span: &Span, request: &Request<B>, hosts: &Hosts, called: Called) {
    if let Some(operation) = called.operation {
        span.record("vipps.operation", operation);
    }
    let msn = request
        .headers()
        .get(MERCHANT_SERIAL_NUMBER)
        .and_then(|v| Msn::from_header(v).ok())
        .or_else(|| request.extensions().get::<Msn>().copied());
    if let Some(msn) = msn {
        span.record("vipps.msn", tracing::field::display(msn));
    }
    if let Some(environment) = hosts.environment_of(request.uri()) {
        span.record("vipps.environment", environment.as_str());
    }
    record_idempotency_key(span, request);
}

fn record_idempotency_key<B>(span: &Span, request: &Request<B>) {
    let headers = request.headers();
    let value = crate::context::idempotency_value(
        request.uri().path(),
        headers.get(IDEMPOTENCY_KEY),
        headers.get(crate::headers::X_REQUEST_ID),
    );
    if let Some(key) = value.and_then(|v| v.to_str().ok()) {
        span.record("vipps.idempotency_key", cut(key, 128));
    }
}

/// Records an error's cause code, status and trace id on `span`.
fn record_error(span: &Span, error: &VippsError) {
    span.record("error.type", error.code());
    if let Some(status) = error.status() {
        span.record("http.response.status_code", status.as_u16());
    }
    if let Some(trace_id) = error.diagnosis().body().and_then(ErrorBody::trace_id) {
        span.record("vipps.trace_id", cut(trace_id, 128));
    }
}

/// The error of a layer below, as a [`VippsError`] when it is one.
fn as_vipps_error<E: 'static>(error: &E) -> Option<&VippsError> {
    (error as &dyn std::any::Any).downcast_ref::<VippsError>()
}
