//! [`VippsLayer`]: the whole tower-vipps stack, preassembled in the right order.
//!
//! ```no_run
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use tower::{Layer, ServiceExt};
//! use tower_vipps::{Environment, HttpsClient, Keyring};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let keyring = Keyring::builder()
//!     .merchant(Environment::Test, "123456".parse()?, "client-id", "client-secret", "sub-key")
//!     .system("acme-shop", "1.4.2")
//!     .build()?;
//! let client = tower_vipps::layer(keyring).layer(HttpsClient::new());
//!
//! let request = http::Request::get("https://apitest.vipps.no/epayment/v1/payments/acme-order-1001")
//!     .header("Merchant-Serial-Number", "123456")
//!     .body(Full::new(Bytes::new()))?;
//! match client.oneshot(request).await {
//!     Ok(response) => println!("{}", response.status()),
//!     Err(err) => eprintln!("{}", err.diagnosis().report()),
//! }
//! # Ok(()) }
//! ```
//!
//! The layers, outermost first, and why they sit where they do:
//!
//! 1. [`CallSpanLayer`]: the `vipps.call` span, outermost so it covers the whole
//!    call (idempotency key, deadline, diagnosis, token wait, every attempt) and
//!    sees the final outcome; see [`crate::observe`].
//! 2. [`IdempotencyLayer`]: one `Idempotency-Key` per logical call, written once
//!    above the retries so every attempt carries the same key, and put into every
//!    error's context.
//! 3. [`TimeoutLayer::total`]: the deadline of the whole call (token fetch, every
//!    attempt and wait, reading the error body).
//! 4. [`BufferLayer`]: an opaque body (`BoxBody`, `UnsyncBoxBody`, …) of an exact
//!    size up to 64 KiB is read ahead, so it gets the body checks and can be
//!    retried; the request body type must implement
//!    [`RebuildBody`](crate::replay::RebuildBody) (see [`crate::buffer`]).
//! 5. [`DiagnoseLayer`]: the final error response becomes a [`VippsError`](crate::VippsError); the
//!    body is read once, not once per attempt.
//! 6. [`AuthLayer`]: the token is looked up once per call; a stale-token `401` is
//!    replayed once with a fresh token (at most once per logical call, since
//!    retries never repeat a `401`).
//! 7. [`RetryLayer`]: transient failures of requests that are safe to repeat.
//! 8. [`AttemptSpanLayer`]: a `vipps.attempt` span per attempt, right below the
//!    retries, so each attempt (and each token request) is its own span under the
//!    call's, with its own status or error.
//! 9. [`TimeoutLayer::per_attempt`]: a hung attempt ends as a transient timeout.
//! 10. [`PreflightLayer`]: the last look at each attempt exactly as it goes on the
//!     wire; it knows the tokens of the cache, so it catches a token sent for
//!     another MSN, subscription key or environment.
//!
//! Token calls go through the same inner service, below Auth: they are checked by
//! Preflight and bounded by the per-attempt deadline.

use std::sync::Arc;
use std::time::Duration;

use tower::ServiceBuilder;
use tower_layer::Layer;

use crate::Keyring;
use crate::auth::{Auth, AuthLayer};
use crate::buffer::{Buffer, BufferLayer};
use crate::diagnose::{Diagnose, DiagnoseLayer};
use crate::idempotency::{Idempotency, IdempotencyLayer};
use crate::observe::{AttemptSpan, AttemptSpanLayer, CallSpan, CallSpanLayer};
use crate::preflight::{Policy, Preflight, PreflightLayer};
use crate::retry::{Retry, RetryLayer, RetryPolicy};
use crate::timeout::{Timeout, TimeoutLayer};
use crate::token::{TokenCache, TokenClient};

/// The default deadline of a whole call: 30 s.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(30);
/// The default deadline of one attempt: 10 s.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The whole stack over an inner service `S`.
pub type VippsService<S> = CallSpan<
    Idempotency<
        Timeout<
            Buffer<Diagnose<Auth<Retry<AttemptSpan<Timeout<Preflight<S>>>>, Option<TokenClient>>>>,
        >,
    >,
>;

/// The preset: the call's span, Idempotency, total deadline, Diagnose, Auth, Retry,
/// the attempt's span, per-attempt deadline and Preflight, in that order; see the
/// [module docs](self).
///
/// Its layers are built once, when it is configured; layering a service with it is
/// cheap (a few reference counts), so it may be applied per request.
#[derive(Clone, Debug)]
pub struct VippsLayer {
    keyring: Keyring,
    call_span: CallSpanLayer,
    auth: AuthLayer<Option<TokenClient>>,
    diagnose: DiagnoseLayer,
    retry: RetryLayer,
    total: TimeoutLayer,
    attempt: TimeoutLayer,
    preflight: PreflightLayer,
}

/// The preset stack for a keyring: [`VippsLayer::new`].
pub fn layer(keyring: Keyring) -> VippsLayer {
    VippsLayer::new(keyring)
}

impl VippsLayer {
    /// The preset with default settings and a fresh [`TokenCache`].
    pub fn new(keyring: Keyring) -> Self {
        let cache = TokenCache::new();
        let hosts = keyring.hosts().clone();
        VippsLayer {
            auth: AuthLayer::new(keyring.clone())
                .with_cache(cache.clone())
                .token_source(None),
            call_span: CallSpanLayer::new().hosts(hosts.clone()),
            diagnose: DiagnoseLayer::new().keyring(&keyring),
            retry: RetryLayer::new(RetryPolicy::new()),
            total: TimeoutLayer::total(DEFAULT_TOTAL_TIMEOUT)
                .hosts(hosts.clone())
                .scoped(),
            // No context of its own (the total timeout's gives it): no hosts to
            // carry through every attempt's clone.
            attempt: TimeoutLayer::per_attempt(DEFAULT_ATTEMPT_TIMEOUT).without_context(),
            preflight: PreflightLayer::new()
                .keyring(keyring.clone())
                .known_tokens(Arc::new(cache)),
            keyring,
        }
    }

    /// Uses this token cache (share one cache between stacks to share tokens).
    pub fn token_cache(mut self, cache: TokenCache) -> Self {
        self.auth = self.auth.with_cache(cache.clone());
        self.preflight = self.preflight.known_tokens(Arc::new(cache));
        self
    }

    /// Sends token requests through this client instead of the inner service. It
    /// must not follow redirects.
    pub fn token_client(mut self, client: TokenClient) -> Self {
        self.auth = self.auth.token_source(Some(client));
        self
    }

    /// The retry policy (`RetryPolicy::new().max_retries(0)` turns retries off).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = RetryLayer::new(policy);
        self
    }

    /// The deadline of a whole call, retries included (default 30 s).
    pub fn total_timeout(mut self, timeout: Duration) -> Self {
        self.total = TimeoutLayer::total(timeout)
            .hosts(self.keyring.hosts().clone())
            .scoped();
        self
    }

    /// The deadline of one attempt (default 10 s).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt = TimeoutLayer::per_attempt(timeout).without_context();
        self
    }

    /// How long an error body may take to arrive, from its response head
    /// (default [`DEFAULT_BODY_TIMEOUT`](crate::diagnose::DEFAULT_BODY_TIMEOUT),
    /// 10 s): a body that stops coming ends as the error it began, with its status
    /// and the bytes read, not as a timeout of the whole call.
    pub fn error_body_timeout(mut self, timeout: Duration) -> Self {
        self.diagnose = self.diagnose.body_timeout(timeout);
        self
    }

    /// The preflight policy: which rules refuse, warn or are off.
    pub fn preflight_policy(mut self, policy: Policy) -> Self {
        self.preflight = self.preflight.policy(policy);
        self
    }

    /// Lets requests to hosts of no environment through Preflight (a proxy).
    /// Auth still never sends keys or tokens to such a host.
    pub fn allow_unknown_hosts(mut self, allow: bool) -> Self {
        self.preflight = self.preflight.allow_unknown_hosts(allow);
        self
    }

    /// The token cache the stack uses.
    pub fn cache(&self) -> &TokenCache {
        self.auth.cache()
    }

    /// The keyring.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }
}

impl<S: Clone> Layer<S> for VippsLayer {
    type Service = VippsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServiceBuilder::new()
            .layer(self.call_span.clone())
            .layer(IdempotencyLayer::new())
            .layer(self.total.clone())
            .layer(BufferLayer::new())
            .layer(self.diagnose.clone())
            .layer(self.auth.clone())
            .layer(self.retry.clone())
            .layer(AttemptSpanLayer::new())
            .layer(self.attempt.clone())
            .layer(self.preflight.clone())
            .service(inner)
    }
}
