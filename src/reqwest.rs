//! [`VippsMiddleware`]: the tower-vipps stack as a [`reqwest_middleware::Middleware`].
//!
//! The middleware runs the very same tower layers as the tower stack (same checks,
//! same token cache, same [`VippsError`]) over a small service that hands each
//! request that reaches the bottom of the stack to the rest of the reqwest
//! middleware chain. A request refused by a check never reaches reqwest.
//!
//! ```no_run
//! # async fn run(keyring: tower_vipps::Keyring) -> Result<(), Box<dyn std::error::Error>> {
//! use reqwest_middleware::ClientBuilder;
//! use tower_vipps::reqwest::{VippsMiddleware, vipps_error};
//!
//! let client = ClientBuilder::new(reqwest::Client::new())
//!     .with(VippsMiddleware::new(keyring))
//!     .build();
//! let result = client
//!     .get("https://apitest.vipps.no/epayment/v1/payments/order-12345678")
//!     .header("Merchant-Serial-Number", "123456")
//!     .send()
//!     .await;
//! if let Err(err) = &result {
//!     if let Some(vipps) = vipps_error(err) {
//!         eprintln!("{}", vipps.diagnosis().report());
//!     }
//! }
//! # Ok(()) }
//! ```

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::{Context, Poll};

use http::Extensions;
use reqwest_middleware::{Middleware, Next};
use tokio::sync::{mpsc, oneshot};
use tower::{Layer, Service, ServiceExt};

use crate::retry::{RetryLayer, RetryPolicy};
use crate::stack::VippsLayer;
use crate::token::TokenClient;
use crate::{BoxError, Keyring, VippsError};

/// A request handed from the bottom of the tower stack to reqwest, with the channel
/// its answer goes back on.
type Handoff = (
    http::Request<reqwest::Body>,
    oneshot::Sender<Result<http::Response<reqwest::Body>, BoxError>>,
);

/// The innermost service of the stack run by [`TowerMiddleware`]: it hands the
/// request, exactly as the layers above left it, to the reqwest middleware chain.
#[derive(Clone, Debug)]
pub struct Handover {
    tx: mpsc::Sender<Handoff>,
}

impl Service<http::Request<reqwest::Body>> for Handover {
    type Response = http::Response<reqwest::Body>;
    type Error = BoxError;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>,
    >;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<reqwest::Body>) -> Self::Future {
        let tx = self.tx.clone();
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            tx.send((request, reply))
                .await
                .map_err(|_| BoxError::from("the reqwest middleware chain is gone"))?;
            answer
                .await
                .map_err(|_| BoxError::from("the reqwest middleware chain dropped the request"))?
        })
    }
}

/// Any tower layer over [`Handover`] as a reqwest middleware. [`VippsMiddleware`] is
/// this with the preset stack of [`crate::layer`].
#[derive(Clone, Debug)]
pub struct TowerMiddleware<L> {
    layer: L,
}

impl<L> TowerMiddleware<L> {
    /// Wraps a layer.
    pub fn new(layer: L) -> Self {
        TowerMiddleware { layer }
    }
}

#[async_trait::async_trait]
impl<L, S, RB> Middleware for TowerMiddleware<L>
where
    L: Layer<Handover, Service = S> + Send + Sync + 'static,
    S: Service<http::Request<reqwest::Body>, Response = http::Response<RB>> + Send + 'static,
    RB: http_body::Body + Send + Sync + 'static,
    RB::Data: Into<bytes::Bytes>,
    RB::Error: Into<BoxError>,
    S::Error: Into<BoxError> + Send,
    S::Future: Send,
{
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let request = http::Request::<reqwest::Body>::try_from(req)?;
        let (tx, mut rx) = mpsc::channel::<Handoff>(1);
        let service = self.layer.layer(Handover { tx });
        let mut stack = pin!(service.oneshot(request));
        loop {
            // Drive the stack until it finishes or hands a request over.
            let step = poll_fn(|cx| {
                if let Poll::Ready(result) = stack.as_mut().poll(cx) {
                    return Poll::Ready(Err(result));
                }
                rx.poll_recv(cx).map(Ok)
            })
            .await;
            let (request, reply) = match step {
                Err(result) => return finish(result),
                Ok(Some(handoff)) => handoff,
                Ok(None) => {
                    // The stack dropped its sender without finishing: finish it.
                    return finish(stack.await);
                }
            };
            let sent = async {
                let request = reqwest::Request::try_from(request).map_err(BoxError::from)?;
                next.clone()
                    .run(request, extensions)
                    .await
                    .map(http::Response::from)
                    .map_err(BoxError::from)
            };
            let mut sent = pin!(sent);
            // Keep polling the stack while reqwest works, so its deadlines run.
            let outcome = poll_fn(|cx| {
                if let Poll::Ready(answer) = sent.as_mut().poll(cx) {
                    return Poll::Ready(Ok(answer));
                }
                stack.as_mut().poll(cx).map(Err)
            })
            .await;
            match outcome {
                Ok(answer) => {
                    // The stack may have stopped waiting (a deadline); that is fine.
                    let _ = reply.send(answer);
                }
                Err(result) => return finish(result),
            }
        }
    }
}

fn finish<RB, E>(
    result: Result<http::Response<RB>, E>,
) -> reqwest_middleware::Result<reqwest::Response>
where
    RB: http_body::Body + Send + Sync + 'static,
    RB::Data: Into<bytes::Bytes>,
    RB::Error: Into<BoxError>,
    E: Into<BoxError>,
{
    match result {
        Ok(response) => Ok(reqwest::Response::from(response.map(reqwest::Body::wrap))),
        Err(err) => Err(reqwest_middleware::Error::Middleware(anyhow::Error::new(
            VippsError::from_boxed(err.into()),
        ))),
    }
}

/// The [`VippsError`] inside a `reqwest_middleware::Error`, if it holds one.
pub fn vipps_error(error: &reqwest_middleware::Error) -> Option<&VippsError> {
    match error {
        reqwest_middleware::Error::Middleware(err) => err.downcast_ref::<VippsError>(),
        reqwest_middleware::Error::Reqwest(_) => None,
    }
}

/// Takes the [`VippsError`] out of a `reqwest_middleware::Error`, or gives the error
/// back.
pub fn into_vipps_error(
    error: reqwest_middleware::Error,
) -> Result<VippsError, reqwest_middleware::Error> {
    match error {
        reqwest_middleware::Error::Middleware(err) => err
            .downcast::<VippsError>()
            .map_err(reqwest_middleware::Error::Middleware),
        other => Err(other),
    }
}

/// The preset tower-vipps stack ([`crate::layer`]) as a reqwest middleware: the same
/// checks, token cache and [`VippsError`] as the tower stack.
///
/// Token requests go through a reqwest client of their own that never follows
/// redirects (it shares the TLS features your reqwest build has). Build the client
/// you give `reqwest_middleware` with `redirect(reqwest::redirect::Policy::none())`
/// too: reqwest follows redirects below every middleware, and keeps the
/// subscription key on them.
#[derive(Clone, Debug)]
pub struct VippsMiddleware {
    inner: TowerMiddleware<VippsLayer>,
}

impl VippsMiddleware {
    /// The preset stack for a keyring, with a no-redirect reqwest client for tokens.
    pub fn new(keyring: Keyring) -> Self {
        let layer = crate::layer(keyring);
        match reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
        {
            Ok(client) => VippsMiddleware::from_layer(layer.token_client(token_client(client))),
            Err(err) => {
                tracing::warn!(error = %err, "tower-vipps: no reqwest client for tokens; token requests go through the middleware chain");
                VippsMiddleware::from_layer(layer)
            }
        }
    }

    /// A configured preset (timeouts, retry policy, shared token cache…).
    pub fn from_layer(layer: VippsLayer) -> Self {
        VippsMiddleware {
            inner: TowerMiddleware::new(layer),
        }
    }

    /// The token cache.
    pub fn cache(&self) -> &crate::token::TokenCache {
        self.inner.layer.cache()
    }
}

#[async_trait::async_trait]
impl Middleware for VippsMiddleware {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        self.inner.handle(req, extensions, next).await
    }
}

/// A [`TokenClient`] over a reqwest client, retrying transient failures with the
/// default [`RetryPolicy`] (a token request is safe to repeat). Build the client
/// with `redirect(reqwest::redirect::Policy::none())`: token requests carry the
/// client secret.
pub fn token_client(client: reqwest::Client) -> TokenClient {
    let send = tower::service_fn(move |request: http::Request<reqwest::Body>| {
        let client = client.clone();
        async move {
            let request = reqwest::Request::try_from(request)?;
            let response = client.execute(request).await?;
            Ok::<_, reqwest::Error>(http::Response::<reqwest::Body>::from(response))
        }
    });
    TokenClient::new(RetryLayer::new(RetryPolicy::new()).layer(send))
}
