//! [`CallSpanLayer`]: a `vipps.call` span around each logical call.
//!
//! ```
//! use http::{Request, Response};
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_vipps::observe::CallSpanLayer;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let service = ServiceBuilder::new()
//!     .layer(CallSpanLayer::new())
//!     .service_fn(|_req: Request<String>| async {
//!         // Inside the call's span: events here carry its fields.
//!         tracing::info!("sending");
//!         Ok::<_, tower_vipps::VippsError>(Response::new(String::new()))
//!     });
//! let request = Request::get("https://apitest.vipps.no/epayment/v1/payments/order-1001")
//!     .body(String::new())
//!     .unwrap();
//! assert!(service.oneshot(request).await.is_ok());
//! # });
//! ```
//!
//! The span (INFO, see the [table](super#spans)) is entered while the layers below
//! are called and polled, so their events and spans nest under it. When it is
//! enabled, the layer adds a request extension through which the layers below
//! record into it: [`AttemptSpanLayer`](super::AttemptSpanLayer) counts attempts
//! and records the idempotency key, [`Auth`](crate::Auth) where the token came
//! from. When it is disabled nothing is computed; with the `metrics` feature the
//! call is counted and timed either way.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;
use tracing::Span;
use tracing::field::Empty;

use super::{CallObserver, Called, as_vipps_error, record_error, record_http, record_vipps};
use crate::Hosts;

/// Wraps each call in a `vipps.call` span; see the [module docs](self).
#[derive(Clone, Debug, Default)]
pub struct CallSpanLayer {
    hosts: Hosts,
}

impl CallSpanLayer {
    /// A layer that knows the official hosts.
    pub fn new() -> Self {
        CallSpanLayer::default()
    }

    /// The hosts to tell the environment by (the keyring's, with custom hosts).
    pub fn hosts(mut self, hosts: Hosts) -> Self {
        self.hosts = hosts;
        self
    }
}

impl<S> Layer<S> for CallSpanLayer {
    type Service = CallSpan<S>;

    fn layer(&self, inner: S) -> CallSpan<S> {
        CallSpan {
            inner,
            hosts: self.hosts.clone(),
        }
    }
}

/// The service of [`CallSpanLayer`].
#[derive(Clone, Debug)]
pub struct CallSpan<S> {
    inner: S,
    hosts: Hosts,
}

impl<S> CallSpan<S> {
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

impl<S, B, RB> Service<Request<B>> for CallSpan<S>
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

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let span = tracing::info_span!(
            "vipps.call",
            otel.kind = "client",
            http.request.method = Empty,
            server.address = Empty,
            url.path = Empty,
            vipps.api = Empty,
            vipps.operation = Empty,
            vipps.msn = Empty,
            vipps.environment = Empty,
            vipps.idempotency_key = Empty,
            vipps.attempts = Empty,
            vipps.token = Empty,
            vipps.token_wait_ms = Empty,
            http.response.status_code = Empty,
            error.type = Empty,
            vipps.trace_id = Empty,
        );
        // The API and operation once, for the span and the metrics, and only when
        // one of them is on.
        let enabled = !span.is_disabled();
        let called = (enabled || cfg!(feature = "metrics")).then(|| Called::of(&request));
        if let (true, Some(called)) = (enabled, called) {
            record_http(&span, &request, called.api);
            record_vipps(&span, &request, &self.hosts, called);
            request
                .extensions_mut()
                .insert(CallObserver::new(span.clone()));
        }
        let timer = CallTimer::start(called);
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        ResponseFuture {
            future,
            span,
            timer,
        }
    }
}

pin_project! {
    /// The response future of [`CallSpan`].
    pub struct ResponseFuture<F> {
        #[pin]
        future: F,
        span: Span,
        timer: CallTimer,
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
        let outcome = match &output {
            Ok(response) => {
                this.span
                    .record("http.response.status_code", response.status().as_u16());
                Outcome::Ok
            }
            Err(error) => match as_vipps_error(error) {
                Some(error) => {
                    record_error(this.span, error);
                    Outcome::Error {
                        code: error.code(),
                        refused: error.is_refused(),
                    }
                }
                None => {
                    this.span.record("error.type", "_OTHER");
                    Outcome::Error {
                        code: "_OTHER",
                        refused: false,
                    }
                }
            },
        };
        this.timer.finish(outcome);
        Poll::Ready(output)
    }
}

/// How a call ended, for the metrics.
#[derive(Clone, Copy)]
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
enum Outcome {
    Ok,
    Error { code: &'static str, refused: bool },
}

/// What the metrics of a call need: its API, operation and start. Empty without
/// the `metrics` feature.
struct CallTimer {
    #[cfg(feature = "metrics")]
    started: Option<(crate::Api, &'static str, std::time::Instant)>,
}

impl CallTimer {
    #[inline]
    fn start(called: Option<Called>) -> Self {
        #[cfg(feature = "metrics")]
        {
            CallTimer {
                started: called.map(|called| {
                    (
                        called.api,
                        called.operation.unwrap_or(super::metrics::OTHER_OPERATION),
                        std::time::Instant::now(),
                    )
                }),
            }
        }
        #[cfg(not(feature = "metrics"))]
        {
            let _ = called;
            CallTimer {}
        }
    }

    #[inline]
    fn finish(&mut self, outcome: Outcome) {
        #[cfg(feature = "metrics")]
        if let Some((api, operation, started)) = self.started.take() {
            let code = match outcome {
                Outcome::Ok => "ok",
                Outcome::Error { code, refused } => {
                    if refused {
                        super::metrics::refusal(api, code);
                    }
                    code
                }
            };
            super::metrics::call(api, operation, code, started.elapsed());
        }
        #[cfg(not(feature = "metrics"))]
        let _ = outcome;
    }
}
