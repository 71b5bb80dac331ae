//! [`VippsMiddleware`]: the tower-vipps stack as a [`reqwest_middleware::Middleware`].
//!
//! The middleware runs the very same tower layers as the tower stack (same checks,
//! same token cache, same [`VippsError`]) over [`ReqwestService`]: a reqwest client
//! built from **your** [`reqwest::ClientBuilder`], so your root certificates,
//! client certificates, proxy and timeouts apply to API calls and token requests
//! alike.
//!
//! ```no_run
//! # async fn run(keyring: tower_vipps::Keyring) -> Result<(), Box<dyn std::error::Error>> {
//! use reqwest_middleware::ClientBuilder;
//! use tower_vipps::reqwest::{VippsMiddleware, vipps_error};
//!
//! // Your client settings (roots, proxy, timeouts…); the middleware turns redirects off.
//! let vipps = VippsMiddleware::new(keyring, reqwest::Client::builder())?;
//! let client = ClientBuilder::new(reqwest::Client::new()).with(vipps).build();
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
//!
//! # Redirects: credentials never follow one
//!
//! Every request the stack sends (each API attempt and each token request) goes
//! through the client of [`ReqwestService`], which [`ReqwestService::new`] builds
//! from your builder with `redirect(Policy::none())`, whatever policy the builder
//! had. reqwest has no per-request redirect policy and a built
//! [`reqwest::Client`] cannot be inspected, so this is the only way to be sure:
//! the middleware never sends through a client it did not build. A `3xx` answer
//! comes back to the stack as it is and becomes a [`VippsError`] with
//! [`Cause::UnexpectedRedirect`](crate::Cause::UnexpectedRedirect)
//! (`vipps::unexpected_redirect`): the client secret, the subscription key, the
//! access token, the MSN and the `Vipps-System-*` headers never reach the
//! redirect target, and you never get the other host's answer.
//!
//! # Where it sits in the middleware chain
//!
//! [`VippsMiddleware`] ends the chain for the requests it handles: it does not
//! call the [`Next`] it is given, because `Next` ends at the client of the
//! `ClientWithMiddleware`, which may follow redirects, and because a `Next`
//! lives only as long as the call that received it (a token fetch or a
//! background refresh shared by many callers must not die with one of them). So:
//!
//! - middlewares added **before** it (`.with(a).with(vipps)`) see every call
//!   once, as the caller made it, and its final outcome;
//! - middlewares added **after** it never run for these requests: add it last;
//! - the client you give `reqwest_middleware::ClientBuilder::new` is not used
//!   for Vipps calls (any client will do there).
//!
//! Each attempt is an independent `execute` on the client: an attempt abandoned at
//! its deadline is dropped at once (its connection closed) and never holds up
//! the retry; token fetches and refreshes run on a clone of the client held by the
//! token cache's tasks, whatever happens to the call that started them.
//!
//! # With reqwest-retry
//!
//! The stack retries transient failures itself (with the same `Idempotency-Key`,
//! only when a repeat is safe, honouring `Retry-After`). If you also use
//! `reqwest_retry::RetryTransientMiddleware`, add it **before**
//! [`VippsMiddleware`] (after it, it would never run): it then sees each whole
//! call, after the stack's own retries, and its error wraps ours
//! (`RetryError`), so use [`vipps_error`], which finds a [`VippsError`] however
//! deeply it is wrapped ([`into_vipps_error`] only takes one held directly).
//! With its default strategy it never repeats a call the middleware failed (a
//! middleware error is fatal to it, and error statuses are already errors): the
//! retries are the stack's. A strategy of your own that retries middleware errors
//! multiplies the attempts (`(1 + its retries) × (1 + the stack's retries)`), and
//! each of its repeats is a new call to the stack, so a `POST` gets a new
//! `Idempotency-Key` unless you set the header yourself: leave retrying to the
//! stack.
//!
//! # TLS
//!
//! This crate depends on reqwest without default features: the TLS backend is the
//! one your own `reqwest` dependency enables (reqwest's defaults: rustls).
//! Private roots go into your builder (`tls_certs_merge`, `tls_certs_only`,
//! `add_root_certificate`) and apply to token requests too.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Extensions;
use reqwest::ResponseBuilderExt;
use reqwest_middleware::{Middleware, Next};
use tower::{Layer, Service, ServiceExt};

use crate::context::ContextSeed;
use crate::diagnose::{BODY_CAP, Capped, classify, read_capped};
use crate::stack::{VippsLayer, VippsService};
use crate::token::TokenCache;
use crate::{BoxError, ErrorResponse, Hosts, Keyring, VippsError};

/// The innermost service of the reqwest path: sends each request with a
/// [`reqwest::Client`] built from your builder with redirects turned off.
///
/// Each call is an independent `execute` (the client is a cheap clone of one
/// connection pool): dropping its future ends that attempt and nothing else. It is
/// also a tower service in its own right, so the tower stack runs over reqwest too:
///
/// ```
/// use tower::Layer;
/// use tower_vipps::reqwest::ReqwestService;
/// # fn run(keyring: tower_vipps::Keyring) -> Result<(), reqwest::Error> {
/// let service = tower_vipps::layer(keyring).layer(ReqwestService::new(reqwest::Client::builder())?);
/// # let _ = service; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ReqwestService {
    client: reqwest::Client,
}

impl ReqwestService {
    /// Builds the client from `builder` with `redirect(Policy::none())`, whatever
    /// redirect policy the builder had; everything else (roots, client
    /// certificates, proxy, timeouts, TLS backend) is yours. Fails as
    /// [`reqwest::ClientBuilder::build`] does (a TLS backend that cannot start).
    pub fn new(builder: reqwest::ClientBuilder) -> Result<ReqwestService, reqwest::Error> {
        builder
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map(|client| ReqwestService { client })
    }
}

impl Service<http::Request<reqwest::Body>> for ReqwestService {
    type Response = http::Response<reqwest::Body>;
    type Error = reqwest::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, reqwest::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), reqwest::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<reqwest::Body>) -> Self::Future {
        let sent = reqwest::Request::try_from(request).map(|request| self.client.execute(request));
        Box::pin(async move { Ok(http::Response::from(sent?.await?)) })
    }
}

/// Any tower service over [`ReqwestService`] as a reqwest middleware (say
/// `DiagnoseLayer` alone, or your own stack). [`VippsMiddleware`] is this with
/// the preset stack of [`crate::layer`]. Like it, it ends the middleware chain;
/// see the [module docs](self).
///
/// ```
/// use tower_vipps::DiagnoseLayer;
/// use tower_vipps::reqwest::{ReqwestService, TowerMiddleware};
/// # fn run() -> Result<(), reqwest::Error> {
/// let diagnose = TowerMiddleware::new(DiagnoseLayer::new(), ReqwestService::new(reqwest::Client::builder())?);
/// # let _ = diagnose; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct TowerMiddleware<S> {
    service: S,
    /// The environments of the hosts, for the context of a redirect error.
    hosts: Hosts,
}

impl<S> TowerMiddleware<S> {
    /// `layer` over `client`, built once.
    pub fn new<L>(layer: L, client: ReqwestService) -> Self
    where
        L: Layer<ReqwestService, Service = S>,
    {
        TowerMiddleware {
            service: layer.layer(client),
            hosts: Hosts::default(),
        }
    }

    /// The hosts whose environment the context of an error names (the keyring's).
    pub fn hosts(mut self, hosts: Hosts) -> Self {
        self.hosts = hosts;
        self
    }
}

#[async_trait::async_trait]
impl<S, RB> Middleware for TowerMiddleware<S>
where
    S: Service<http::Request<reqwest::Body>, Response = http::Response<RB>>
        + Clone
        + Send
        + Sync
        + 'static,
    RB: http_body::Body + Send + Sync + 'static,
    RB::Data: Into<bytes::Bytes>,
    RB::Error: Into<BoxError>,
    S::Error: Into<BoxError> + Send,
    S::Future: Send,
{
    async fn handle(
        &self,
        req: reqwest::Request,
        _extensions: &mut Extensions,
        _next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let url = req.url().clone();
        let request = http::Request::<reqwest::Body>::try_from(req)?;
        let seed = ContextSeed::of(&request, &self.hosts);
        match self.service.clone().oneshot(request).await {
            Ok(response) if response.status().is_redirection() => {
                Err(middleware_error(redirected(response, seed).await))
            }
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                // No redirect was followed: the request's URL is the response's.
                if let Ok(with_url) = http::Response::builder().url(url).body(()) {
                    parts.extensions.extend(with_url.into_parts().0.extensions);
                }
                let body = reqwest::Body::wrap(body);
                Ok(reqwest::Response::from(http::Response::from_parts(
                    parts, body,
                )))
            }
            Err(err) => Err(middleware_error(VippsError::from_boxed(err.into()))),
        }
    }
}

/// A `3xx` that reached the top of the stack (it was not followed: the client of
/// [`ReqwestService`] never follows one): a diagnosed error
/// ([`Cause::UnexpectedRedirect`](crate::Cause::UnexpectedRedirect)) keeping the
/// status, headers and (capped) body, never a success.
async fn redirected<B>(response: http::Response<B>, seed: ContextSeed) -> VippsError
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let context = seed.into_context();
    let (parts, body) = response.into_parts();
    let capped = read_capped(body, BODY_CAP).await.unwrap_or(Capped {
        bytes: bytes::Bytes::new(),
        truncated: true,
    });
    let diagnosis = classify(&context, parts.status, &parts.headers, &capped.bytes);
    tracing::debug!(status = %parts.status, code = diagnosis.cause().code(), "a redirect was not followed");
    let response = ErrorResponse {
        status: parts.status,
        headers: parts.headers,
        body: capped.bytes,
        truncated: capped.truncated,
    };
    VippsError::from_response(response, diagnosis).with_context(context)
}

/// A `reqwest_middleware::Error` holding `error` as the source of a context that
/// reads the same. The context is what keeps the error findable: a transparent
/// wrapper (`reqwest_middleware::Error` itself, `reqwest_retry::RetryError::Error`)
/// forwards `source()` to what it wraps, so an error held directly would be skipped
/// by every walk of the chain; the source of the context is the `VippsError`.
/// `anyhow::Error::downcast` still finds it directly.
fn middleware_error(error: VippsError) -> reqwest_middleware::Error {
    let message = error.to_string();
    reqwest_middleware::Error::Middleware(anyhow::Error::new(error).context(message))
}

/// The [`VippsError`] inside a `reqwest_middleware::Error`, however deeply it is
/// wrapped: in anyhow's chain (contexts, `reqwest_retry::RetryError`…), in any
/// `source()` chain, in a `reqwest_middleware::Error` wrapped in another error.
/// The outermost one wins.
pub fn vipps_error(error: &reqwest_middleware::Error) -> Option<&VippsError> {
    match error {
        reqwest_middleware::Error::Middleware(err) => err.chain().find_map(find_vipps_error),
        reqwest_middleware::Error::Reqwest(err) => find_vipps_error(err),
    }
}

/// Walks `error` and its `source()` chain; a `reqwest_middleware::Error` on the way
/// is opened (its `source()` skips the error it holds).
fn find_vipps_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a VippsError> {
    let mut current = Some(error);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<VippsError>() {
            return Some(found);
        }
        if let Some(found) = err
            .downcast_ref::<reqwest_middleware::Error>()
            .and_then(vipps_error)
        {
            return Some(found);
        }
        current = err.source();
    }
    None
}

/// Takes the [`VippsError`] out of a `reqwest_middleware::Error` that holds one
/// directly (as [`VippsMiddleware`] returns it), or gives the error back. For an
/// error wrapped by another middleware, use [`vipps_error`].
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
/// checks, token cache and [`VippsError`] as the tower stack, over your client
/// settings with redirects off. Add it last; see the [module docs](self) for
/// redirects, the middleware chain and reqwest-retry.
#[derive(Clone, Debug)]
pub struct VippsMiddleware {
    inner: TowerMiddleware<VippsService<ReqwestService>>,
    cache: TokenCache,
}

impl VippsMiddleware {
    /// The preset stack for a keyring over a client built from `client`
    /// ([`ReqwestService::new`]: redirects off). API calls and token requests both
    /// go through it.
    pub fn new(keyring: Keyring, client: reqwest::ClientBuilder) -> Result<Self, reqwest::Error> {
        Ok(VippsMiddleware::from_layer(
            crate::layer(keyring),
            ReqwestService::new(client)?,
        ))
    }

    /// A configured preset (timeouts, retry policy, shared token cache, a token
    /// client of your own…) over `client`. Without a token client of its own, the
    /// stack sends token requests through `client` too, below its retries and
    /// per-attempt deadline, as on the tower path.
    pub fn from_layer(layer: VippsLayer, client: ReqwestService) -> Self {
        VippsMiddleware {
            cache: layer.cache().clone(),
            inner: TowerMiddleware::new(layer.clone(), client)
                .hosts(layer.keyring().hosts().clone()),
        }
    }

    /// The token cache.
    pub fn cache(&self) -> &TokenCache {
        &self.cache
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
