//! [`BufferLayer`]: read an opaque request body of a known, small size ahead, so
//! that it gets every body check and can be retried.
//!
//! The body checks of [`PreflightLayer`](crate::PreflightLayer) and the retries and
//! stale-token replays of [`RetryLayer`](crate::retry::RetryLayer) and
//! [`AuthLayer`](crate::AuthLayer) need the body's bytes without consuming it.
//! Buffered types (`Full<Bytes>`, `String`, `Vec<u8>`, `Bytes`, …) show them
//! directly. An opaque body (`BoxBody`, `UnsyncBoxBody`, a type of your own) does
//! not; `Buffer` reads it ahead when its [`size_hint`](http_body::Body::size_hint)
//! is exact and at most the cap (64 KiB, as the preflight's), builds a body of the
//! same type with the same bytes ([`RebuildBody`]) and sends that, keeping the bytes
//! in the request's extensions ([`Buffered`]) for the
//! layers below. So with the preset:
//!
//! | body | body checks | a 502 retried (GET, or with `Idempotency-Key`) |
//! | --- | --- | --- |
//! | `Full<Bytes>`, `String`, `Vec<u8>`, `Bytes`, `Empty<Bytes>` | yes | yes |
//! | `BoxBody`, `UnsyncBoxBody`, any [`RebuildBody`] with an exact size ≤ 64 KiB (an empty GET included) | yes | yes |
//! | a streaming body (no exact size, or more than 64 KiB; `StreamBody`) | no | no |
//!
//! For a streaming body, the first request of each body type logs once, at `warn`,
//! which checks were skipped; the body is never polled before it is sent.
//!
//! The bound: the request body type must implement [`RebuildBody`] (every
//! `http-body-util` body and `reqwest::Body` do; a type of your own implements it,
//! or declares itself streaming with `REBUILDS = false`).
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Full, combinators::BoxBody};
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_vipps::buffer::BufferLayer;
//! use tower_vipps::replay::peek_request;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let service = ServiceBuilder::new()
//!     .layer(BufferLayer::new())
//!     .service_fn(|req: http::Request<BoxBody<Bytes, std::io::Error>>| async move {
//!         // The layers below see the bytes without consuming the body.
//!         let seen = peek_request(&req).map(|b| b.to_vec());
//!         Ok::<_, std::convert::Infallible>(http::Response::new(seen))
//!     });
//! let body = Full::new(Bytes::from_static(b"{\"a\":1}")).map_err(|e| match e {}).boxed();
//! let request = http::Request::post("https://apitest.vipps.no/epayment/v1/payments").body(body).unwrap();
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.into_body().as_deref(), Some(&b"{\"a\":1}"[..]));
//! # });
//! ```

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};

use futures_util::future::{BoxFuture, Either};
use http::{Extensions, Request};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use tower_layer::Layer;
use tower_service::Service;

use crate::preflight::DEFAULT_BODY_CAP;
use crate::replay::{Buffered, Rebuild, RebuildBody, peek_bytes};
use crate::{BoxError, VippsError};

/// Reads opaque request bodies of an exact size up to the cap ahead; see the
/// [module docs](self).
#[derive(Clone, Copy, Debug)]
pub struct BufferLayer {
    cap: usize,
}

impl Default for BufferLayer {
    fn default() -> Self {
        BufferLayer::new()
    }
}

impl BufferLayer {
    /// The layer, with the 64 KiB cap.
    pub fn new() -> Self {
        BufferLayer {
            cap: DEFAULT_BODY_CAP,
        }
    }

    /// The largest body read ahead (default 64 KiB).
    pub fn cap(mut self, cap: usize) -> Self {
        self.cap = cap;
        self
    }
}

impl<S> Layer<S> for BufferLayer {
    type Service = Buffer<S>;

    fn layer(&self, inner: S) -> Buffer<S> {
        Buffer {
            inner,
            cap: self.cap,
        }
    }
}

/// The service of [`BufferLayer`].
#[derive(Clone, Debug)]
pub struct Buffer<S> {
    inner: S,
    cap: usize,
}

/// The response future of [`Buffer`]: the inner call, or (for a body read ahead)
/// the read and then the inner call.
pub type ResponseFuture<F, R> =
    Either<futures_util::future::MapErr<F, fn(BoxError) -> VippsError>, BoxFuture<'static, R>>;

fn into_vipps(e: BoxError) -> VippsError {
    VippsError::from_boxed(e)
}

impl<S, B, Res> Service<Request<B>> for Buffer<S>
where
    S: Service<Request<B>, Response = Res> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Body + RebuildBody + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Res;
    type Error = VippsError;
    type Future = ResponseFuture<
        futures_util::future::MapErr<S::Future, fn(S::Error) -> BoxError>,
        Result<Res, VippsError>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), VippsError>> {
        self.inner
            .poll_ready(cx)
            .map_err(|e| VippsError::from_boxed(e.into()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        use futures_util::TryFutureExt as _;
        let exact = req.body().size_hint().exact();
        let read_ahead = peek_bytes(req.body()).is_none()
            && B::REBUILDS
            && exact.is_some_and(|n| n <= self.cap as u64);
        if !read_ahead {
            let direct = self
                .inner
                .call(req)
                .map_err(Into::into as fn(S::Error) -> BoxError);
            return Either::Left(direct.map_err(into_vipps as fn(BoxError) -> VippsError));
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let cap = self.cap;
        // The total deadline of a scoped timeout above, for the call made later.
        let deadline = crate::timeout::scope::current();
        Either::Right(Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let bytes = Limited::new(body, cap)
                .collect()
                .await
                .map_err(VippsError::transport)?
                .to_bytes();
            let Some(body) = B::rebuild(bytes.clone()) else {
                return Err(VippsError::transport(BoxError::from(
                    "the request body could not be rebuilt from its bytes",
                )));
            };
            parts.extensions.insert(Buffered(bytes));
            parts.extensions.insert(Rebuild::<B>(B::rebuild));
            crate::timeout::scope::within(deadline, || inner.call(Request::from_parts(parts, body)))
                .await
                .map_err(|e| VippsError::from_boxed(e.into()))
        }))
    }
}

impl<S> Buffer<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// Copies the [`Buffered`] bytes and the [`Rebuild`] of a request's extensions.
pub(crate) fn copy_buffered<B: 'static>(from: &Extensions, to: &mut Extensions) {
    if let (Some(bytes), Some(rebuild)) = (from.get::<Buffered>(), from.get::<Rebuild<B>>()) {
        to.insert(bytes.clone());
        to.insert(*rebuild);
    }
}

/// Says once per body type, at `warn`, that its bodies are streaming and which
/// checks they skip.
#[cold]
pub(crate) fn skipped_checks<B: 'static>() {
    static WARNED: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let name = std::any::type_name::<B>();
    let first = WARNED
        .get_or_init(Mutex::default)
        .lock()
        .map(|mut seen| seen.insert(name))
        .unwrap_or(false);
    if first {
        tracing::warn!(
            body_type = name,
            "tower-vipps: a request body of this type is streaming (no exact size within the 64 KiB cap, or not read ahead by BufferLayer): the body checks (amount, currency, phone number, URLs, reference, body MSN) are skipped, and such requests are neither retried nor replayed after a stale token"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::{peek_request, try_clone_request};
    use bytes::Bytes;
    use http_body_util::combinators::BoxBody;
    use http_body_util::{Full, StreamBody};
    use tower::{ServiceBuilder, ServiceExt};

    type Boxed = BoxBody<Bytes, BoxError>;

    /// What the service below saw: the peeked bytes and whether a copy could be made.
    async fn below(body: Boxed, cap: usize) -> (Option<Vec<u8>>, bool) {
        let service = ServiceBuilder::new()
            .layer(BufferLayer::new().cap(cap))
            .service_fn(|req: Request<Boxed>| async move {
                let seen = peek_request(&req).map(|b| b.to_vec());
                let copy = try_clone_request(&req).is_some();
                Ok::<_, BoxError>((seen, copy))
            });
        let req = Request::post("https://apitest.vipps.no/x")
            .body(body)
            .unwrap();
        service.oneshot(req).await.unwrap()
    }

    fn full(bytes: &'static [u8]) -> Boxed {
        Full::new(Bytes::from_static(bytes))
            .map_err(|never| match never {})
            .boxed()
    }

    #[tokio::test]
    async fn reads_ahead_exact_small_bodies_only() {
        assert_eq!(below(full(b"{}"), 64).await, (Some(b"{}".to_vec()), true));
        assert_eq!(below(full(b""), 64).await, (Some(Vec::new()), true));
        // Past the cap: left alone.
        assert_eq!(below(full(b"0123456789"), 4).await, (None, false));
        // No exact size: never polled.
        let frames: Vec<Result<http_body::Frame<Bytes>, BoxError>> =
            vec![Ok(http_body::Frame::data(Bytes::from_static(b"{}")))];
        let stream = StreamBody::new(futures_util::stream::iter(frames)).boxed();
        assert_eq!(below(stream, 64).await, (None, false));
    }
}
