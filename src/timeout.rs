//! [`TimeoutLayer`]: a deadline per attempt, or for the whole call.
//!
//! The same layer serves both deadlines; where it sits decides which one it is:
//!
//! - [`TimeoutLayer::per_attempt`] goes *below* the [retry layer](crate::retry), so
//!   each attempt has its own deadline and a timed-out attempt may be retried
//!   (when the request is safe to repeat);
//! - [`TimeoutLayer::total`] goes *above* it, so the whole logical call (every
//!   attempt and every wait between them) ends by the deadline.
//!
//! The total deadline also puts a [`CallDeadline`] into the request's extensions:
//! the retry policy will not start a wait (backoff or `Retry-After`) that would end
//! past it, and returns the failure it has instead of a timeout later. (Inside the
//! preset, [`tower_vipps::layer`](crate::layer), the deadline reaches the retry
//! layer without the extension, sparing each request the extension map and the
//! retry layer its copy.)
//!
//! When the deadline passes, the inner future is dropped at once (the request in
//! flight is cancelled, no task is left behind) and the call fails with a
//! [`VippsError`] of cause [`Cause::Timeout`] (transient: "the request may or may not
//! have been carried out; retry with the same `Idempotency-Key`"), whose context
//! holds the request's idempotency key. The timer is `tokio::time`, so tests can
//! use tokio's paused clock.
//!
//! ```
//! use std::time::Duration;
//! use http::{Request, Response};
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_vipps::Cause;
//! use tower_vipps::timeout::TimeoutLayer;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! let slow = ServiceBuilder::new()
//!     .layer(TimeoutLayer::per_attempt(Duration::from_secs(5)))
//!     .service_fn(|_req: Request<String>| async {
//!         tokio::time::sleep(Duration::from_secs(60)).await;
//!         Ok::<_, std::convert::Infallible>(Response::new(String::new()))
//!     });
//!
//! let req = Request::post("https://apitest.vipps.no/epayment/v1/payments")
//!     .header("Idempotency-Key", "create-ref-1")
//!     .body(String::from("{}"))
//!     .unwrap();
//! let err = slow.oneshot(req).await.unwrap_err();
//! assert_eq!(err.cause(), Cause::Timeout);
//! assert!(err.is_transient());
//! assert_eq!(err.idempotency_key(), Some("create-ref-1"));
//! # });
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::Request;
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_layer::Layer;
use tower_service::Service;

use crate::context::ContextSeed;
use crate::{BoxError, Cause, Diagnosis, Hosts, VippsError};

/// Which deadline a [`TimeoutLayer`] enforces; it only changes the evidence in the
/// error, the mechanism is the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Deadline {
    /// One attempt: goes below the retry layer.
    PerAttempt,
    /// The whole call, retries included: goes above the retry layer.
    Total,
}

impl fmt::Display for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Deadline::PerAttempt => "per-attempt",
            Deadline::Total => "total",
        })
    }
}

/// The instant a call's total deadline passes: a request extension set by
/// [`TimeoutLayer::total`] (the earliest one wins when several are stacked). The
/// [retry policy](crate::retry::RetryPolicy) reads it so that it does not start a
/// wait that would end past the deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallDeadline(pub tokio::time::Instant);

/// Fails a call with [`Cause::Timeout`] when it takes longer than a deadline; see
/// the [module docs](self).
#[derive(Clone, Debug)]
pub struct TimeoutLayer {
    duration: Duration,
    deadline: Deadline,
    hosts: Hosts,
    /// Whether an error is given the request's context here (off inside the
    /// preset, whose total timeout outside gives it).
    context: bool,
    /// Total deadline: passed down by [`scope`] rather than as a [`CallDeadline`]
    /// extension (the preset, whose layers between this one and `Retry` carry the
    /// scope across their own awaits).
    scoped: bool,
}

impl TimeoutLayer {
    /// A deadline for one attempt; place it below the retry layer.
    pub fn per_attempt(duration: Duration) -> Self {
        TimeoutLayer {
            duration,
            deadline: Deadline::PerAttempt,
            hosts: Hosts::default(),
            context: true,
            scoped: false,
        }
    }

    /// A deadline for the whole call, retries included; place it above the retry
    /// layer.
    pub fn total(duration: Duration) -> Self {
        TimeoutLayer {
            duration,
            deadline: Deadline::Total,
            hosts: Hosts::default(),
            context: true,
            scoped: false,
        }
    }

    /// The hosts used to name the environment in the error context (default: the
    /// official ones; add the emulator's here).
    pub fn hosts(mut self, hosts: Hosts) -> Self {
        self.hosts = hosts;
        self
    }

    /// No request context on errors from this layer: another layer outside it
    /// (the preset's total timeout) fills it in, and the per-request copy of the
    /// method, URI and headers it needs is saved.
    pub(crate) fn without_context(mut self) -> Self {
        self.context = false;
        self
    }

    /// The total deadline passed to the retry layer through [`scope`] instead of a
    /// [`CallDeadline`] extension; only for stacks whose layers between this one and
    /// `Retry` call their inner service synchronously or re-enter the scope.
    pub(crate) fn scoped(mut self) -> Self {
        self.scoped = true;
        self
    }

    /// The deadline's length.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Which deadline this is.
    pub fn deadline(&self) -> Deadline {
        self.deadline
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Timeout {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`TimeoutLayer`].
#[derive(Clone, Debug)]
pub struct Timeout<S> {
    inner: S,
    layer: TimeoutLayer,
}

impl<S> Timeout<S> {
    /// Wraps `inner` with the deadline of `layer`.
    pub fn new(inner: S, layer: TimeoutLayer) -> Self {
        Timeout { inner, layer }
    }

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

impl<S, B> Service<Request<B>> for Timeout<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = VippsError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner
            .poll_ready(cx)
            .map_err(|e| VippsError::from_boxed(e.into()))
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let at = deadline_after(self.layer.duration);
        let context = self
            .layer
            .context
            .then(|| ContextSeed::of(&req, &self.layer.hosts));
        let inner = match self.layer.deadline {
            Deadline::Total if self.layer.scoped => {
                let outer = scope::current();
                let at = outer.map_or(at, |outer| outer.min(at));
                scope::within(Some(at), || self.inner.call(req))
            }
            Deadline::Total => {
                let earlier = req.extensions().get::<CallDeadline>().map(|d| d.0);
                if earlier.is_none_or(|earlier| at < earlier) {
                    req.extensions_mut().insert(CallDeadline(at));
                }
                self.inner.call(req)
            }
            Deadline::PerAttempt => self.inner.call(req),
        };
        ResponseFuture {
            inner: Some(inner),
            at,
            sleep: None,
            duration: self.layer.duration,
            deadline: self.layer.deadline,
            context,
        }
    }
}

/// `duration` from now; see [`saturating_add`].
fn deadline_after(duration: Duration) -> tokio::time::Instant {
    saturating_add(tokio::time::Instant::now(), duration)
}

/// `at + duration`; a duration too long to add (a caller's `Duration::MAX`) is a
/// time about 30 years away (never reached), not a panic.
pub(crate) fn saturating_add(at: tokio::time::Instant, duration: Duration) -> tokio::time::Instant {
    at.checked_add(duration)
        .unwrap_or_else(|| at + Duration::from_secs(30 * 365 * 86_400))
}

/// The total deadline of the call being made on this thread, set by a scoped
/// total [`Timeout`] around its inner `call` (a synchronous stretch: no request
/// waits in it). The retry layer reads it when a call starts; layers that call
/// their inner service later, from a future, take it along with [`current`] and
/// [`within`].
///
/// [`current`]: scope::current
/// [`within`]: scope::within
pub(crate) mod scope {
    use std::cell::Cell;

    use tokio::time::Instant;

    thread_local! {
        static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    }

    /// The deadline of the call being made on this thread, if a scoped total
    /// timeout set one.
    pub(crate) fn current() -> Option<Instant> {
        DEADLINE.with(Cell::get)
    }

    /// Runs `f` with `deadline` as the current one (restored after, also on a
    /// panic).
    pub(crate) fn within<R>(deadline: Option<Instant>, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<Instant>);
        impl Drop for Restore {
            fn drop(&mut self) {
                DEADLINE.with(|d| d.set(self.0));
            }
        }
        let _restore = Restore(DEADLINE.with(|d| d.replace(deadline)));
        f()
    }
}

pin_project! {
    /// The response future of [`Timeout`].
    pub struct ResponseFuture<F> {
        // `None` once the deadline has passed: the inner future is dropped then.
        #[pin]
        inner: Option<F>,
        // The deadline; its timer is made only when the inner future first waits
        // (an answer that is ready at once never touches the runtime's timer).
        at: tokio::time::Instant,
        #[pin]
        sleep: Option<Sleep>,
        duration: Duration,
        deadline: Deadline,
        context: Option<ContextSeed>,
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, VippsError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Some(inner) = this.inner.as_mut().as_pin_mut() else {
            panic!("timeout::ResponseFuture polled after completion");
        };
        if let Poll::Ready(result) = inner.poll(cx) {
            this.inner.set(None);
            let context = this.context.take();
            return Poll::Ready(result.map_err(|e| {
                let err = VippsError::from_boxed(e.into());
                match context {
                    Some(seed) => err.fill_context(&seed.into_context()),
                    None => err,
                }
            }));
        }
        if this.sleep.is_none() {
            this.sleep.set(Some(tokio::time::sleep_until(*this.at)));
        }
        if let Some(sleep) = this.sleep.as_pin_mut() {
            ready!(sleep.poll(cx));
        }
        // Drop the request in flight now, not when the caller drops this future.
        this.inner.set(None);
        let diagnosis = Diagnosis::new(Cause::Timeout).with_evidence(format!(
            "the {} deadline of {:?} passed before an answer came",
            this.deadline, this.duration
        ));
        let source: BoxError = Box::new(tower::timeout::error::Elapsed::new());
        let context = this
            .context
            .take()
            .map(ContextSeed::into_context)
            .unwrap_or_default();
        Poll::Ready(Err(
            VippsError::transport_with(diagnosis, Some(source)).with_context(context)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::{ServiceExt, service_fn};

    struct Live(Arc<AtomicUsize>);
    impl Drop for Live {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_too_far_to_add_is_no_panic() {
        for layer in [
            TimeoutLayer::total(Duration::MAX),
            TimeoutLayer::per_attempt(Duration::MAX),
        ] {
            let svc = layer.layer(service_fn(|_req: Request<()>| async {
                tokio::task::yield_now().await;
                Ok::<_, BoxError>("answer")
            }));
            let req = Request::get("https://api.vipps.no/epayment/v1/payments/r")
                .body(())
                .unwrap();
            assert_eq!(svc.oneshot(req).await.unwrap(), "answer");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn fires_at_the_deadline_and_drops_the_inner_future() {
        let live = Arc::new(AtomicUsize::new(0));
        let counter = live.clone();
        let svc = TimeoutLayer::total(Duration::from_secs(7)).layer(service_fn(
            move |_req: Request<()>| {
                counter.fetch_add(1, Ordering::SeqCst);
                let guard = Live(counter.clone());
                async move {
                    let _guard = guard;
                    std::future::pending::<Result<(), BoxError>>().await
                }
            },
        ));
        let req = Request::delete("https://api.vipps.no/epayment/v1/payments/r/cancel")
            .header("Idempotency-Key", "k-1")
            .body(())
            .unwrap();
        let start = tokio::time::Instant::now();
        let mut fut = std::pin::pin!(svc.oneshot(req));
        // Poll once so the inner future exists.
        let first = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
        assert!(first.is_pending());
        assert_eq!(live.load(Ordering::SeqCst), 1);
        let err = fut.await.unwrap_err();
        assert_eq!(start.elapsed(), Duration::from_secs(7));
        assert_eq!(live.load(Ordering::SeqCst), 0);
        assert_eq!(err.cause(), Cause::Timeout);
        assert!(err.is_transient());
        assert_eq!(err.idempotency_key(), Some("k-1"));
        assert_eq!(
            err.context().environment,
            Some(crate::Environment::Production)
        );
        assert!(
            err.diagnosis().evidence()[0].contains("total deadline of 7s"),
            "{:?}",
            err.diagnosis().evidence()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_fast_answer_passes() {
        let svc = TimeoutLayer::per_attempt(Duration::from_secs(1)).layer(service_fn(
            |_req: Request<()>| async {
                tokio::time::sleep(Duration::from_millis(999)).await;
                Ok::<_, BoxError>(7)
            },
        ));
        let req = Request::get("https://apitest.vipps.no/x").body(()).unwrap();
        assert_eq!(svc.oneshot(req).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn inner_errors_get_the_context() {
        let svc = TimeoutLayer::per_attempt(Duration::from_secs(1)).layer(service_fn(
            |_req: Request<()>| async { Err::<(), BoxError>("boom".into()) },
        ));
        let req = Request::post("https://apitest.vipps.no/epayment/v1/payments")
            .header("Idempotency-Key", "k-2")
            .body(())
            .unwrap();
        let err = svc.oneshot(req).await.unwrap_err();
        assert_eq!(err.cause(), Cause::Transport);
        assert_eq!(err.idempotency_key(), Some("k-2"));
        assert_eq!(err.context().operation, Some("create_payment"));
    }

    /// The preset's scoped total deadline reaches the retry layer without an
    /// extension, through a buffer, as the extension did: no wait past it starts.
    #[tokio::test(start_paused = true)]
    async fn a_scoped_deadline_reaches_the_retry_layer() {
        use crate::retry::{RetryLayer, RetryPolicy};
        use bytes::Bytes;
        use http_body_util::{BodyExt, Full};
        use tower::ServiceBuilder;
        // Not peekable: the buffer reads it ahead and calls on from its future.
        type Boxed = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;
        const GET: &str = "https://apitest.vipps.no/epayment/v1/payments/acme-shop-123-order123abc";
        for scoped in [true, false] {
            let hits = Arc::new(AtomicUsize::new(0));
            let seen = hits.clone();
            let total = TimeoutLayer::total(Duration::from_secs(5));
            let svc = ServiceBuilder::new()
                .layer(if scoped { total.scoped() } else { total })
                .layer(crate::buffer::BufferLayer::new())
                .layer(RetryLayer::new(RetryPolicy::new()))
                .service(service_fn(move |req: Request<Boxed>| {
                    seen.fetch_add(1, Ordering::SeqCst);
                    // The scoped deadline costs the request no extension.
                    assert_eq!(req.extensions().get::<CallDeadline>().is_none(), scoped);
                    let res = http::Response::builder()
                        .status(429)
                        .header("retry-after", "10")
                        .body(())
                        .unwrap();
                    std::future::ready(Ok::<_, BoxError>(res))
                }));
            let start = tokio::time::Instant::now();
            let res = svc
                .oneshot(
                    Request::get(GET)
                        .body(Full::new(Bytes::from_static(b"x")).boxed())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(res.status(), 429);
            assert_eq!(start.elapsed(), Duration::ZERO, "scoped: {scoped}");
            assert_eq!(hits.load(Ordering::SeqCst), 1, "scoped: {scoped}");
        }
        assert_eq!(scope::current(), None);
    }
}
