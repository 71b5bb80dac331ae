//! [`Preflight`], the service of [`PreflightLayer`], and its [`ResponseFuture`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Request;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::PreflightLayer;
use crate::{BoxError, VippsError};

/// Checks each request before the inner service sees it; see the
/// [module docs](crate::preflight).
#[derive(Clone, Debug)]
pub struct Preflight<S> {
    pub(super) inner: S,
    pub(super) layer: PreflightLayer,
}

impl<S> Preflight<S> {
    /// Wraps a service with the default preflight.
    pub fn new(inner: S) -> Self {
        PreflightLayer::new().layer(inner)
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

impl<S, B, Res> Service<Request<B>> for Preflight<S>
where
    S: Service<Request<B>, Response = Res>,
    S::Error: Into<BoxError>,
    B: 'static,
{
    type Response = Res;
    type Error = VippsError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner
            .poll_ready(cx)
            .map_err(|e| VippsError::from_boxed(e.into()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match self.layer.check(&request) {
            // The readied inner service stays ready for the next call.
            Err(refused) => ResponseFuture::refused(refused),
            Ok(()) => ResponseFuture {
                state: State::Called {
                    future: self.inner.call(request),
                },
            },
        }
    }
}

pin_project! {
    /// The response future of [`Preflight`].
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Refused { error: Option<VippsError> },
        Called { #[pin] future: F },
    }
}

impl<F> ResponseFuture<F> {
    fn refused(error: VippsError) -> Self {
        ResponseFuture {
            state: State::Refused { error: Some(error) },
        }
    }
}

impl<F, Res, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Res, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Res, VippsError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Refused { error } => match error.take() {
                Some(error) => Poll::Ready(Err(error)),
                None => panic!("ResponseFuture polled after completion"),
            },
            StateProj::Called { future } => future
                .poll(cx)
                .map_err(|e| VippsError::from_boxed(e.into())),
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
