//! [`AttemptSpanLayer`]: a `vipps.attempt` span around each attempt.
//!
//! Put it right below the retry layer (the preset does), so each attempt, and each
//! token request sent through the stack, gets its own span under the call's.
//!
//! ```
//! use std::time::Duration;
//! use http::{Request, Response};
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_vipps::observe::{AttemptSpanLayer, CallSpanLayer};
//! use tower_vipps::retry::{RetryLayer, RetryPolicy};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let service = ServiceBuilder::new()
//!     .layer(CallSpanLayer::new())
//!     .layer(RetryLayer::new(RetryPolicy::new()))
//!     .layer(AttemptSpanLayer::new())
//!     .service_fn(|_req: Request<String>| async {
//!         Ok::<_, tower_vipps::VippsError>(Response::new(String::new()))
//!     });
//! let request = Request::get("https://apitest.vipps.no/epayment/v1/payments/order-1001")
//!     .body(String::new())
//!     .unwrap();
//! assert!(service.oneshot(request).await.is_ok());
//! # });
//! ```
//!
//! The span is at DEBUG (see the [table](super#spans)). Whether or not it is
//! enabled, the attempt is counted on the call's span (`vipps.attempts`) when
//! [`CallSpanLayer`](super::CallSpanLayer) sits above; with the `metrics` feature a
//! `429` is counted in `vipps_rate_limited_total`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;
use tracing::Span;
use tracing::field::Empty;

use super::{CallObserver, as_vipps_error, record_error, record_http, record_idempotency_key};
use crate::Api;

/// Wraps each attempt in a `vipps.attempt` span; see the [module docs](self).
#[derive(Clone, Copy, Debug, Default)]
pub struct AttemptSpanLayer {
    _priv: (),
}

impl AttemptSpanLayer {
    /// The layer.
    pub fn new() -> Self {
        AttemptSpanLayer::default()
    }
}

impl<S> Layer<S> for AttemptSpanLayer {
    type Service = AttemptSpan<S>;

    fn layer(&self, inner: S) -> AttemptSpan<S> {
        AttemptSpan { inner }
    }
}

/// The service of [`AttemptSpanLayer`].
#[derive(Clone, Debug)]
pub struct AttemptSpan<S> {
    inner: S,
}

impl<S> AttemptSpan<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, RB> Service<Request<B>> for AttemptSpan<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Error: 'static,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let span = tracing::debug_span!(
            "vipps.attempt",
            otel.kind = "client",
            vipps.attempt = Empty,
            http.request.method = Empty,
            server.address = Empty,
            url.path = Empty,
            vipps.api = Empty,
            http.response.status_code = Empty,
            error.type = Empty,
        );
        // The API, worked out once for the span and the rate-limit counter, and
        // only if either is there.
        let api = (cfg!(feature = "metrics") || !span.is_disabled())
            .then(|| crate::Api::from_path(request.uri().path()));
        if let (false, Some(api)) = (span.is_disabled(), api) {
            record_http(&span, &request, api);
        }
        if let Some(observer) = CallObserver::of(&request) {
            let attempt = observer.next_attempt();
            span.record("vipps.attempt", attempt);
            if attempt == 1 {
                // The key is written above (Idempotency) after the call's span began.
                record_idempotency_key(observer.span(), &request);
            }
        }
        let api = ApiLabel::of(api);
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        ResponseFuture { future, span, api }
    }
}

pin_project! {
    /// The response future of [`AttemptSpan`].
    pub struct ResponseFuture<F> {
        #[pin]
        future: F,
        span: Span,
        api: ApiLabel,
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("span", &self.span)
            .finish_non_exhaustive()
    }
}

impl<F, RB, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
    E: 'static,
{
    type Output = Result<Response<RB>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let output = ready!(this.future.poll(cx));
        match &output {
            Ok(response) => {
                let status = response.status();
                this.span
                    .record("http.response.status_code", status.as_u16());
                if status == StatusCode::TOO_MANY_REQUESTS {
                    this.api.rate_limited();
                }
            }
            Err(error) => match as_vipps_error(error) {
                Some(error) => record_error(this.span, error),
                None => {
                    this.span.record("error.type", "_OTHER");
                }
            },
        }
        Poll::Ready(output)
    }
}

/// The API of the attempt, kept for the rate-limit counter (feature `metrics`).
struct ApiLabel {
    #[cfg(feature = "metrics")]
    api: Api,
}

impl ApiLabel {
    #[inline]
    fn of(api: Option<Api>) -> Self {
        #[cfg(feature = "metrics")]
        return ApiLabel {
            api: api.unwrap_or(Api::Other),
        };
        #[cfg(not(feature = "metrics"))]
        {
            let _ = api;
            ApiLabel {}
        }
    }

    fn rate_limited(&self) {
        #[cfg(feature = "metrics")]
        super::metrics::rate_limited(self.api);
        #[cfg(not(feature = "metrics"))]
        let _: Option<Api> = None;
    }
}
