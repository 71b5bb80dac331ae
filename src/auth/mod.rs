//! [`AuthLayer`] / [`Auth`]: access tokens and Vipps headers on every request.
//!
//! Each request gets exactly the credentials its API takes, as listed in
//! [`crate::api::APIS`]:
//!
//! - **access token** (ePayment, Recurring, eCom, Webhooks, Order Management, and
//!   Management, Report and unknown paths without an `Authorization` of their own):
//!   `Auth` finds the key set (the `Merchant-Serial-Number` header, or an [`Msn`]
//!   request extension, and the environment of the request's host), gets a valid
//!   token from the [`TokenCache`] and sets `Authorization: Bearer …`,
//!   `Ocp-Apim-Subscription-Key`, `Merchant-Serial-Number` and the
//!   `Vipps-System-*` headers (the secret ones marked sensitive). A caller's own
//!   `Authorization` or `Ocp-Apim-Subscription-Key` on these APIs is **replaced**
//!   (a second credential can only be a stale or foreign one); a `debug` event of
//!   target `tower_vipps::auth` names the replaced header, never its value.
//! - **client credentials** (Checkout v3): the key set's `client_id`,
//!   `client_secret` and `Ocp-Apim-Subscription-Key` (replacing the caller's, with
//!   the same `debug` event), `Merchant-Serial-Number` and `Vipps-System-*`; no
//!   access token is fetched, and a caller's own `Authorization` is left alone.
//! - **the caller's own** (Login: token endpoint with `Basic`, userinfo with the
//!   user's token, discovery; the access token endpoints; and Management, Report or
//!   unknown paths that carry their own `Authorization`, such as a partner token of
//!   `/miami/v1/token`): the request goes through untouched, byte for byte.
//!
//! It refuses, unsent, a request that needs keys when it goes to a host of no
//! environment, to the other environment than its keys, has no keys for its MSN,
//! or goes over plain `http://` to a host not registered as plaintext
//! ([`Cause::InsecureScheme`]; the official hosts never are).
//!
//! On a `401` saying the access token is invalid or expired (an empty body, the
//! gateway's "Something went wrong", an invalid or expired token; never a
//! subscription key message), it drops exactly that token and, when the body can
//! be sent again (see [`crate::replay`]), replays the request once with a fresh
//! token. Any other response (a `403` included), a second `401`, and a `401` for a
//! streaming body are returned as they came: the body is wrapped in [`AuthBody`],
//! which yields the same frames.
//!
//! Details:
//! - `Merchant-Serial-Number` is added when the request lacks it (from the `Msn`
//!   extension, or the merchant's own MSN); the `Vipps-System-*` values of the
//!   [`Keyring`] replace any on the request.
//! - Tokens are fetched through the inner service by default (its request body's
//!   `Default` is the empty body), or through [`AuthLayer::token_service`]. Either
//!   must not follow redirects.
//! - Partner keys get one token per MSN, fetched with that MSN's header; see
//!   [`TokenCache`].
//!
//! ```no_run
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_vipps::{AuthLayer, Environment, Keyring};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let keyring = Keyring::builder()
//!     .merchant(Environment::Test, "123456".parse()?, "client-id", "client-secret", "sub-key")
//!     .build()?;
//! // Any `Service<http::Request<Full<Bytes>>>` that speaks HTTPS.
//! let http_client = tower_vipps::HttpsClient::new();
//! let mut client = ServiceBuilder::new()
//!     .layer(AuthLayer::new(keyring))
//!     .service(http_client);
//! let request = http::Request::get("https://apitest.vipps.no/epayment/v1/payments/ref-12345678")
//!     .header("Merchant-Serial-Number", "123456")
//!     .body(Full::new(Bytes::new()))?;
//! let response = client.ready().await?.call(request).await?;
//! # let _ = response;
//! # Ok(()) }
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use futures_util::future::BoxFuture;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower::{Service, ServiceExt};
use tower_layer::Layer;

use crate::api::{ApiSpec, Credentials};
use crate::diagnose::BODY_CAP;
use crate::diagnose::body::ErrorBody;
use crate::headers::{
    MERCHANT_SERIAL_NUMBER, OCP_APIM_SUBSCRIPTION_KEY, VIPPS_SYSTEM_NAME, VIPPS_SYSTEM_PLUGIN_NAME,
    VIPPS_SYSTEM_PLUGIN_VERSION, VIPPS_SYSTEM_VERSION,
};
use crate::observe::{self, TokenFrom};
use crate::token::{
    CacheKey, Fast, KeyHasherBuilder, Ticks, TokenCache, TokenClient, TokenRequest,
};
mod headers;
mod replay;

use headers::{Target, client_credentials, outgoing, replaced_event, target};
pub use replay::AuthBody;
use replay::finish;

use crate::{
    BoxError, Cause, Diagnosis, Environment, KeyScope, KeySet, Keyring, Lookup, Msn,
    RequestContext, VippsError,
};

/// Fetch tokens through the same inner service as the API calls (the default).
#[derive(Clone, Copy, Debug, Default)]
pub struct InnerTokenService;

/// Where [`Auth`] sends its token requests: [`InnerTokenService`] or a
/// [`TokenClient`], or an `Option<TokenClient>` choosing between the two.
pub trait TokenSource<S, B>: Clone + Send + Sync + 'static {
    /// The token client for this inner service.
    fn token_client(&self, inner: &S) -> TokenClient;
}

impl<S, B, RB> TokenSource<S, B> for InnerTokenService
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Default + Send + 'static,
    RB: Body + Send + 'static,
    RB::Data: Send,
    RB::Error: Into<BoxError>,
{
    fn token_client(&self, inner: &S) -> TokenClient {
        TokenClient::new(inner.clone())
    }
}

impl<S, B> TokenSource<S, B> for TokenClient {
    fn token_client(&self, _inner: &S) -> TokenClient {
        self.clone()
    }
}

/// `Some(client)`: that client; `None`: the inner service, as [`InnerTokenService`].
impl<S, B> TokenSource<S, B> for Option<TokenClient>
where
    InnerTokenService: TokenSource<S, B>,
{
    fn token_client(&self, inner: &S) -> TokenClient {
        match self {
            Some(client) => client.clone(),
            None => InnerTokenService.token_client(inner),
        }
    }
}

/// A response extension on every `401` that [`Auth`] passes up: the request's
/// `Authorization` was set by `Auth`, so whatever a layer above saw on the request
/// is not what was sent. [`DiagnoseLayer`](crate::DiagnoseLayer) reads it; a layer of
/// your own that sets `Authorization` may insert it on its `401`s too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuthorizationSetBelow;

/// Adds access tokens and the Vipps headers to requests; see the [module docs](self).
#[derive(Clone)]
pub struct AuthLayer<T = InnerTokenService> {
    /// Built once (the MSN index included) and shared by every service it layers.
    core: Arc<Core>,
    tokens: T,
}

impl<T> fmt::Debug for AuthLayer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer")
            .field("keyring", &self.core.keyring)
            .field("cache", &self.core.cache)
            .field("replay", &self.core.replay)
            .finish_non_exhaustive()
    }
}

impl AuthLayer {
    /// Auth with these keys, a new [`TokenCache`] with the default settings, and
    /// token requests through the inner service.
    pub fn new(keyring: Keyring) -> AuthLayer {
        AuthLayer {
            core: Arc::new(Core::new(keyring, TokenCache::new(), true)),
            tokens: InnerTokenService,
        }
    }
}

impl<T> AuthLayer<T> {
    /// Uses (and shares) this cache.
    pub fn with_cache(mut self, cache: TokenCache) -> Self {
        Arc::make_mut(&mut self.core).cache = cache;
        self
    }

    /// Sends token requests through this service instead of the inner one: any
    /// `Service<http::Request<B>>` whose `B::default()` is empty (a hyper client,
    /// say); see [`TokenClient::new`]. It must not follow redirects.
    pub fn token_service<S, B, RB>(self, service: S) -> AuthLayer<TokenClient>
    where
        S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
        B: Default + Send + 'static,
        RB: Body + Send + 'static,
        RB::Data: Send,
        RB::Error: Into<BoxError>,
    {
        self.token_client(TokenClient::new(service))
    }

    /// Sends token requests through this [`TokenClient`].
    pub fn token_client(self, client: TokenClient) -> AuthLayer<TokenClient> {
        self.token_source(client)
    }

    /// Sends token requests through any [`TokenSource`]: [`InnerTokenService`], a
    /// [`TokenClient`], or an `Option<TokenClient>` (`None`: the inner service).
    pub fn token_source<T2>(self, tokens: T2) -> AuthLayer<T2> {
        AuthLayer {
            core: self.core,
            tokens,
        }
    }

    /// Whether a request rejected with a stale-token 401 is replayed once with a
    /// fresh token (when its body can be sent again). Default `true`.
    pub fn replay_stale_token(mut self, replay: bool) -> Self {
        Arc::make_mut(&mut self.core).replay = replay;
        self
    }

    /// The cache.
    pub fn cache(&self) -> &TokenCache {
        &self.core.cache
    }
}

impl<S: Clone, T: Clone> Layer<S> for AuthLayer<T> {
    type Service = Auth<S, T>;

    fn layer(&self, inner: S) -> Auth<S, T> {
        Auth {
            shared: Arc::new(Shared {
                core: Arc::clone(&self.core),
                proto: Mutex::new(inner.clone()),
                tokens: self.tokens.clone(),
            }),
            inner,
            own: Own::default(),
        }
    }
}

/// What every clone of an [`Auth`] shares.
#[derive(Clone)]
struct Core {
    keyring: Keyring,
    cache: TokenCache,
    replay: bool,
    /// Merchant MSNs -> key set, with a fast hasher (a few entries: no per-MSN
    /// map of the partner's MSNs, which the keyring and the token cache hold).
    merchants: HashMap<u64, KeySet, KeyHasherBuilder>,
    /// The partner keys of each environment, if one key set serves it.
    partners: [Partner; 2],
    /// Whether the keyring knows only the official hosts (a fast path).
    official_hosts_only: bool,
    /// The start of every outgoing header map, cloned (no hashing, no growing): the
    /// keyring's `Vipps-System-*` headers and empty placeholders for
    /// `Authorization`, `Ocp-Apim-Subscription-Key` and `Merchant-Serial-Number`,
    /// which [`outgoing`] always replaces (or removes) before the request is sent;
    /// template `i` also has a placeholder for each [`headers::COMMON`] header `j`
    /// with bit `j` of `i` set, filled from the request's own.
    templates: [HeaderMap; 1 << headers::COMMON_LEN],
}

/// The most distinct `Vipps-System-*` values [`interned`] keeps (a process builds
/// keyrings with a handful; one building them from unbounded input stays bounded).
const INTERNED_CAP: usize = 256;

/// `value` backed by static bytes, so that cloning it into every request touches
/// no reference count: a shared count is one cache line that every worker writes
/// on every request. For the `Vipps-System-*` values, which are not secret: each
/// distinct value is leaked once per process (a keyring built again with the same
/// values reuses them), at most [`INTERNED_CAP`] of them; past that a value is
/// shared as it is.
fn interned(value: &HeaderValue) -> HeaderValue {
    static INTERNED: Mutex<Vec<&'static [u8]>> = Mutex::new(Vec::new());
    let Ok(mut interned) = INTERNED.lock() else {
        return value.clone();
    };
    let bytes = match interned.iter().find(|b| **b == value.as_bytes()) {
        Some(bytes) => *bytes,
        None if interned.len() >= INTERNED_CAP => return value.clone(),
        None => {
            let bytes: &'static [u8] = Box::leak(value.as_bytes().into());
            interned.push(bytes);
            bytes
        }
    };
    let mut copy = HeaderValue::from_maybe_shared(bytes::Bytes::from_static(bytes))
        .unwrap_or_else(|_| value.clone());
    copy.set_sensitive(value.is_sensitive());
    copy
}

/// The partner keys of an environment, as [`Core::find`] uses them.
#[derive(Clone)]
enum Partner {
    None,
    /// Keys without an MSN list: every MSN.
    Open(KeySet),
    /// The one key set that lists its MSNs: whether it covers an MSN is known
    /// from the token cache (a cached token for the MSN was fetched once it was
    /// checked), or by asking the key set.
    Listed(KeySet),
    /// Several key sets that list their MSNs: the keyring finds the one.
    Several,
}

fn index_key(env: Environment, msn: Msn) -> u64 {
    (msn.key() << 1) | u64::from(env == Environment::Production)
}

impl Core {
    fn new(keyring: Keyring, cache: TokenCache, replay: bool) -> Core {
        let mut merchants = HashMap::with_hasher(KeyHasherBuilder(fastrand::u64(..)));
        let mut partners = [Partner::None, Partner::None];
        for keys in keyring.key_sets() {
            match keys.scope() {
                KeyScope::Merchant(msn) => {
                    merchants.insert(index_key(keys.environment(), *msn), keys.clone());
                }
                KeyScope::Partner { connected } => {
                    let slot = &mut partners[crate::keys::env_index(keys.environment())];
                    *slot = match (&*slot, connected) {
                        (Partner::None, None) => Partner::Open(keys.clone()),
                        (Partner::None, Some(_)) => Partner::Listed(keys.clone()),
                        // The keyring refuses an open partner beside another one.
                        _ => Partner::Several,
                    };
                }
            }
        }
        let official_hosts_only = keyring.hosts().custom().next().is_none();
        let templates = headers::templates(keyring.system());
        Core {
            templates,
            official_hosts_only,
            keyring,
            cache,
            replay,
            merchants,
            partners,
        }
    }

    /// The environment of a request's host.
    #[inline]
    fn environment_of(&self, uri: &http::Uri) -> Option<Environment> {
        if self.official_hosts_only {
            // The common case: an official host without port or user info.
            if let Some(authority) = uri.authority() {
                let authority = authority.as_str();
                for env in Environment::ALL {
                    if authority.eq_ignore_ascii_case(env.host()) {
                        return Some(env);
                    }
                }
            }
        }
        self.keyring.hosts().environment_of(uri)
    }

    /// The key set for an MSN, without cloning: the merchant's own keys first,
    /// then the environment's partner keys, and whether they are known to cover
    /// the MSN (`false`: only if the token cache says so or the key set does).
    /// `None`: ask the keyring.
    #[inline]
    fn find(&self, env: Environment, msn: Msn) -> Option<(&KeySet, bool)> {
        if !self.merchants.is_empty() {
            if let Some(keys) = self.merchants.get(&index_key(env, msn)) {
                return Some((keys, true));
            }
        }
        match &self.partners[crate::keys::env_index(env)] {
            Partner::Open(keys) => Some((keys, true)),
            Partner::Listed(keys) => Some((keys, false)),
            Partner::None | Partner::Several => None,
        }
    }
}

/// [`Core`], a clone of the inner service to replay through, and the token source.
struct Shared<S, T> {
    core: Arc<Core>,
    proto: Mutex<S>,
    tokens: T,
}

impl<S, T> std::ops::Deref for Shared<S, T> {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl<S: Clone, T> Shared<S, T> {
    fn inner(&self) -> S {
        match self.proto.lock() {
            Ok(proto) => proto.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// The service of [`AuthLayer`].
pub struct Auth<S, T = InnerTokenService> {
    inner: S,
    shared: Arc<Shared<S, T>>,
    own: Own,
}

/// What a clone of [`Auth`] that serves more than one request keeps of its own:
/// every request clones the [`Shared`] handle and the subscription key, and a
/// reference count that every clone (and so every worker) writes on every request
/// is a cache line that moves between cores each time. From its second request
/// on, a clone has its own handle and its own copy of the subscription key of
/// the first key set it serves then (a clone made per request never does).
#[derive(Default)]
struct Own {
    calls: u8,
    subscription_key: Option<(u64, HeaderValue)>,
}

impl Own {
    /// The subscription key value for `keys`: this clone's own copy once it has
    /// one, else the key set's.
    #[inline]
    fn subscription_key(&mut self, keys: &KeySet) -> HeaderValue {
        match &self.subscription_key {
            Some((id, value)) if *id == keys.id() => return value.clone(),
            None if self.calls >= 2 => {
                // A copy in a buffer of its own (the same bytes, sensitive).
                if let Ok(mut copy) =
                    HeaderValue::from_bytes(keys.subscription_key_header().as_bytes())
                {
                    copy.set_sensitive(true);
                    self.subscription_key = Some((keys.id(), copy.clone()));
                    return copy;
                }
            }
            _ => {}
        }
        keys.subscription_key_header().clone()
    }
}

impl<S: Clone, T> Clone for Auth<S, T> {
    fn clone(&self) -> Self {
        Auth {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            own: Own::default(),
        }
    }
}

impl<S: Clone, T: Clone> Auth<S, T> {
    /// Counts a call; on the second, makes this clone's own handle.
    #[inline]
    fn count_call(&mut self) {
        if self.own.calls < 2 {
            self.own.calls += 1;
            if self.own.calls == 2 {
                self.shared = Arc::new(Shared {
                    core: self.shared.core.clone(),
                    proto: Mutex::new(self.shared.inner()),
                    tokens: self.shared.tokens.clone(),
                });
            }
        }
    }
}

impl<S, T> fmt::Debug for Auth<S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("keyring", &self.shared.keyring)
            .field("cache", &self.shared.cache)
            .finish_non_exhaustive()
    }
}

impl<S, T> Auth<S, T> {
    /// The cache.
    pub fn cache(&self) -> &TokenCache {
        &self.shared.cache
    }
}

/// Sets the Vipps headers on `req` and keeps what a replay needs: the token's
/// generation, and the request as it came when its body can be sent again.
fn prepare<S, B: 'static, T>(
    req: &mut Request<B>,
    authorization: HeaderValue,
    subscription_key: HeaderValue,
    generation: u64,
    target: &Target<'_>,
    shared: &Arc<Shared<S, T>>,
    key: CacheKey,
) -> Result<Sent<S, B, T>, VippsError> {
    // The request's own map becomes the replay copy's: no header is cloned twice.
    let original = match outgoing(
        req.headers(),
        authorization,
        subscription_key,
        target,
        shared,
    ) {
        Ok(headers) => std::mem::replace(req.headers_mut(), headers),
        Err(_) => {
            // A full map: refused, unsent, rather than a panic.
            let diagnosis = crate::headers::too_many_headers(req.headers(), "Authorization");
            return Err(headers::refuse(req, &shared.keyring, diagnosis));
        }
    };
    let replay = if shared.replay {
        // The parts of the request, put together only if it is replayed.
        crate::replay::try_clone_request_body(req).map(|body| {
            let mut extensions = http::Extensions::new();
            crate::buffer::copy_buffered::<B>(req.extensions(), &mut extensions);
            Replay {
                method: req.method().clone(),
                uri: req.uri().clone(),
                version: req.version(),
                headers: original,
                extensions,
                body,
                msn: target.msn.filter(|_| !target.has_msn_header),
            }
        })
    } else {
        None
    };
    Ok(Sent {
        generation,
        key,
        shared: shared.clone(),
        replay,
        deadline: crate::timeout::scope::current(),
    })
}

fn token_request<B>(
    req: &Request<B>,
    cache: &TokenCache,
    target: &Target,
    keyring: &Keyring,
) -> TokenRequest {
    let msn = cache.token_msn(&target.keys, target.msn);
    TokenRequest::new(target.keys.clone(), msn, keyring.system().clone())
        .base(req.uri())
        .allow_plaintext(
            !crate::environment::is_https(req.uri()) && keyring.hosts().allows_plaintext(req.uri()),
        )
}

/// What is kept of a sent request to handle a stale-token 401.
struct Sent<S, B, T> {
    /// The generation of the token it was sent with.
    generation: u64,
    key: CacheKey,
    shared: Arc<Shared<S, T>>,
    /// A copy of the request before the auth headers, when it can be replayed.
    replay: Option<Replay<B>>,
    /// The total deadline a scoped timeout above set for the call, for the replay.
    deadline: Option<tokio::time::Instant>,
}

struct Replay<B> {
    method: http::Method,
    uri: http::Uri,
    version: http::Version,
    /// The request's own headers, as they came.
    headers: HeaderMap,
    /// What a buffered body needs to be rebuilt (nothing else is copied).
    extensions: http::Extensions,
    body: B,
    /// The MSN of an `Msn` extension (extensions are not copied).
    msn: Option<Msn>,
}

impl<S, B, RB, T> Service<Request<B>> for Auth<S, T>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Send + 'static,
    RB: Body + Send + 'static,
    RB::Data: Send,
    RB::Error: Send,
    T: TokenSource<S, B>,
{
    type Response = Response<AuthBody<RB>>;
    type Error = VippsError;
    type Future = ResponseFuture<S::Future, S, B, RB, T>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), VippsError>> {
        self.inner
            .poll_ready(cx)
            .map_err(|e| VippsError::from_boxed(e.into()))
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        self.count_call();
        // The ready inner service is called here, synchronously, on every path
        // but a token miss, which takes it into its future (and leaves a clone).
        let shared = &*self.shared;
        let spec = ApiSpec::of_path(req.uri().path());
        match spec.credentials {
            Credentials::AccessToken => {}
            Credentials::Own => return ResponseFuture::untouched(self.inner.call(req)),
            Credentials::AccessTokenOrOwn => {
                if req.headers().contains_key(AUTHORIZATION) {
                    tracing::debug!(
                        api = spec.api.as_str(),
                        "the request carries its own `Authorization`: sent as it is"
                    );
                    return ResponseFuture::untouched(self.inner.call(req));
                }
            }
            Credentials::ClientCredentials => {
                let target = match target(&req, shared) {
                    Ok(found) => found,
                    Err(error) => return ResponseFuture::refused(error),
                };
                if client_credentials(req.headers_mut(), &target, spec.api, shared).is_err() {
                    // A full map: refused, unsent, rather than a panic.
                    let diagnosis = crate::headers::too_many_headers(req.headers(), "client_id");
                    return ResponseFuture::refused(headers::refuse(
                        &req,
                        &shared.keyring,
                        diagnosis,
                    ));
                }
                return ResponseFuture::untouched(self.inner.call(req));
            }
        }
        let target = match target(&req, shared) {
            Ok(found) => found,
            Err(error) => return ResponseFuture::refused(error),
        };
        if tracing::enabled!(tracing::Level::DEBUG) {
            replaced_event(req.headers(), spec.api);
        }
        let cache = &shared.cache;
        let key = cache.key(&target.keys, target.msn);
        let now = Ticks::now();
        let mut found = cache.lookup_authorization(key, now, target.verified);
        if matches!(found, Fast::Miss) && !target.verified && target.covered() {
            // The key set lists the MSN, though the cache entry cannot say so (a
            // partner token shared by every MSN): the cached token serves it.
            found = cache.lookup_authorization(key, now, true);
        }
        let (authorization, generation) = match found {
            Fast::Hit(found) => {
                observe::token_lookup(&req, TokenFrom::Cached, None);
                found
            }
            Fast::Refresh(found) => {
                observe::token_lookup(&req, TokenFrom::CachedRefreshing, None);
                let client = shared.tokens.token_client(&self.inner);
                let treq = token_request(&req, cache, &target, &shared.keyring);
                cache.start_refresh(key, &client, &treq);
                found
            }
            Fast::Miss => {
                let (target, key) = if target.covered() {
                    (target, key)
                } else {
                    // Listed partner keys and an MSN they do not list: the
                    // keyring's refusal.
                    let env = target.keys.environment();
                    match headers::looked_up(&req, shared, env, target.msn, target.has_msn_header) {
                        Ok(target) => {
                            let key = cache.key(&target.keys, target.msn);
                            (target, key)
                        }
                        Err(error) => return ResponseFuture::refused(error),
                    }
                };
                let client = shared.tokens.token_client(&self.inner);
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let treq = token_request(&req, cache, &target, &shared.keyring);
                let target = target.owned();
                let shared = self.shared.clone();
                let deadline = crate::timeout::scope::current();
                return ResponseFuture::slow(Box::pin(async move {
                    let started = Instant::now();
                    let token = shared.cache.wait(key, &client, &treq).await;
                    observe::token_lookup(&req, TokenFrom::Waited, Some(started.elapsed()));
                    let token = match token {
                        Ok(token) => token,
                        Err(e) => {
                            return Err(
                                e.fill_context(&RequestContext::of(&req, shared.keyring.hosts()))
                            );
                        }
                    };
                    let target = target.as_target();
                    let generation = token.generation;
                    let (sent, future) = crate::timeout::scope::within(deadline, || {
                        let sent = prepare(
                            &mut req,
                            token.authorization().clone(),
                            target.keys.subscription_key_header().clone(),
                            generation,
                            &target,
                            &shared,
                            key,
                        )?;
                        Ok::<_, VippsError>((sent, inner.call(req)))
                    })?;
                    let response = future.await.map_err(|e| VippsError::from_boxed(e.into()))?;
                    finish(response, sent).await
                }));
            }
        };
        // `target` borrows the shared handle: the key set's own value, or this
        // clone's copy of it.
        let subscription_key = self.own.subscription_key(&target.keys);
        let sent = match prepare(
            &mut req,
            authorization,
            subscription_key,
            generation,
            &target,
            &self.shared,
            key,
        ) {
            Ok(sent) => sent,
            Err(error) => return ResponseFuture::refused(error),
        };
        ResponseFuture {
            state: State::Call {
                fut: self.inner.call(req),
                sent: Some(sent),
            },
        }
    }
}

type SlowFuture<RB> = BoxFuture<'static, Result<Response<AuthBody<RB>>, VippsError>>;

pin_project! {
    /// The response future of [`Auth`].
    pub struct ResponseFuture<F, S, B, RB: Body, T> {
        #[pin]
        state: State<F, S, B, RB, T>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, S, B, RB: Body, T> {
        Call { #[pin] fut: F, sent: Option<Sent<S, B, T>> },
        Slow { fut: SlowFuture<RB> },
        Refused { error: Option<VippsError> },
    }
}

impl<F, S, B, RB: Body, T> ResponseFuture<F, S, B, RB, T> {
    fn refused(error: VippsError) -> Self {
        ResponseFuture {
            state: State::Refused { error: Some(error) },
        }
    }

    /// The inner call, its response passed up as it comes (no stale-token replay).
    fn untouched(fut: F) -> Self {
        ResponseFuture {
            state: State::Call { fut, sent: None },
        }
    }

    fn slow(fut: SlowFuture<RB>) -> Self {
        ResponseFuture {
            state: State::Slow { fut },
        }
    }
}

impl<F, S, B, RB, T> fmt::Debug for ResponseFuture<F, S, B, RB, T>
where
    RB: Body,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, E, S, B, RB, T> Future for ResponseFuture<F, S, B, RB, T>
where
    F: Future<Output = Result<Response<RB>, E>>,
    E: Into<BoxError>,
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Send + 'static,
    RB: Body + Send + 'static,
    RB::Data: Send,
    RB::Error: Send,
    T: TokenSource<S, B>,
{
    type Output = Result<Response<AuthBody<RB>>, VippsError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            let next = match this.state.as_mut().project() {
                StateProj::Call { fut, sent } => {
                    let response = match ready!(fut.poll(cx)) {
                        Ok(response) => response,
                        Err(e) => return Poll::Ready(Err(VippsError::from_boxed(e.into()))),
                    };
                    if response.status() != StatusCode::UNAUTHORIZED {
                        return Poll::Ready(Ok(response.map(AuthBody::new)));
                    }
                    let Some(sent) = sent.take() else {
                        return Poll::Ready(Ok(response.map(AuthBody::new)));
                    };
                    State::Slow {
                        fut: Box::pin(finish(response, sent)),
                    }
                }
                StateProj::Slow { fut } => return fut.as_mut().poll(cx),
                StateProj::Refused { error } => {
                    return Poll::Ready(Err(error
                        .take()
                        .unwrap_or_else(|| VippsError::refused(Diagnosis::new(Cause::Unknown)))));
                }
            };
            this.state.set(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::headers::*;
    use super::replay::*;
    use super::*;

    #[test]
    fn official_host_fast_path_matches_hosts() {
        let keyring = Keyring::builder()
            .merchant(Environment::Test, Msn::new(1).unwrap(), "a", "b", "c")
            .build()
            .unwrap();
        let core = Core::new(keyring.clone(), TokenCache::new(), true);
        assert!(core.official_hosts_only);
        for uri in [
            "https://apitest.vipps.no/x",
            "https://API.vipps.no/x",
            "https://api.vipps.no:443/x",
            "https://api.vipps.no:8443/x",
            "https://api.vipps.no.evil.example/x",
            "https://user@api.vipps.no/x",
            "/relative",
        ] {
            let uri: http::Uri = uri.parse().unwrap();
            assert_eq!(
                core.environment_of(&uri),
                keyring.hosts().environment_of(&uri),
                "{uri}"
            );
        }
    }

    /// A token endpoint answering every request with a JWT-shaped token.
    fn endpoint() -> TokenClient {
        TokenClient::new(tower::service_fn(
            |_req: Request<http_body_util::Full<bytes::Bytes>>| async {
                let body = r#"{"token_type":"Bearer","expires_in":"3600","access_token":"eyJ0.eyJ1.c2ln"}"#;
                Ok::<_, std::convert::Infallible>(Response::new(http_body_util::Full::new(
                    bytes::Bytes::from_static(body.as_bytes()),
                )))
            },
        ))
    }

    type Full = http_body_util::Full<bytes::Bytes>;

    /// The headers the inner service got for a request with this MSN header.
    async fn sent<S>(svc: S, env: Environment, msn: &str) -> Result<HeaderMap, VippsError>
    where
        S: Service<Request<Full>, Response = Response<AuthBody<Full>>, Error = VippsError>,
    {
        let req = Request::get(format!("https://{}/epayment/v1/payments/ref-1", env.host()))
            .header("merchant-serial-number", msn)
            .body(Full::default())
            .unwrap();
        let response = svc.oneshot(req).await?;
        Ok(response.headers().clone())
    }

    /// Echoes the request's headers as the response's.
    fn echo() -> impl Service<
        Request<Full>,
        Response = Response<Full>,
        Error = std::convert::Infallible,
        Future = std::future::Ready<Result<Response<Full>, std::convert::Infallible>>,
    > + Clone {
        tower::service_fn(|req: Request<Full>| {
            let mut response = Response::new(Full::default());
            *response.headers_mut() = req.headers().clone();
            std::future::ready(Ok(response))
        })
    }

    /// Listed partner keys are found without looking the MSN up; an MSN they do
    /// not list is still refused, even when the cache holds a token for it (one
    /// fetched through the cache directly).
    #[tokio::test]
    async fn listed_partner_keys_refuse_an_unlisted_msn_with_a_cached_token() {
        let env = Environment::Production;
        let listed = Msn::new(100_001).unwrap();
        let unlisted = Msn::new(100_002).unwrap();
        let keys = KeySet::partner(env, "p-id", "p-secret", "p-sub")
            .unwrap()
            .connected_msns([listed]);
        let keyring = Keyring::builder().key_set(keys.clone()).build().unwrap();
        let cache = TokenCache::new();
        let client = endpoint();
        cache
            .get(
                &client,
                &TokenRequest::new(keys, Some(unlisted), Default::default()),
            )
            .await
            .unwrap();
        let svc = AuthLayer::new(keyring)
            .with_cache(cache.clone())
            .token_client(client)
            .layer(echo());
        for _ in 0..2 {
            let err = sent(svc.clone(), env, "100002").await.unwrap_err();
            assert_eq!(err.cause(), Cause::PartnerMsnNotConnected);
            let headers = sent(svc.clone(), env, "100001").await.unwrap();
            assert!(headers.contains_key(AUTHORIZATION));
        }
    }

    /// A clone serving many requests uses its own handle and copy of the
    /// subscription key from its second request on: the same headers, sensitive,
    /// for its first key set and for another.
    #[tokio::test]
    async fn a_busy_clone_sends_the_same_headers_from_its_own_copies() {
        use tower::ServiceExt as _;
        let env = Environment::Test;
        let keyring = Keyring::builder()
            .merchant(env, "1001".parse().unwrap(), "a", "b", "sub-1001")
            .merchant(env, "1002".parse().unwrap(), "c", "d", "sub-1002")
            .build()
            .unwrap();
        let mut svc = AuthLayer::new(keyring)
            .token_client(endpoint())
            .layer(echo());
        for msn in ["1001", "1001", "1001", "1002", "1001", "1002"] {
            let req = Request::get(format!("https://{}/epayment/v1/payments/ref-1", env.host()))
                .header("merchant-serial-number", msn)
                .body(Full::default())
                .unwrap();
            let response = svc.ready().await.unwrap().call(req).await.unwrap();
            let sub = &response.headers()[OCP_APIM_SUBSCRIPTION_KEY];
            assert_eq!(sub, format!("sub-{msn}").as_str());
            assert!(sub.is_sensitive());
            assert!(response.headers()[AUTHORIZATION].is_sensitive());
        }
        assert!(svc.own.calls >= 2);
        assert!(svc.own.subscription_key.is_some());
    }

    /// `0123` and `123` are two MSNs: each gets its own keys (and token).
    #[tokio::test]
    async fn leading_zeros_make_another_msn() {
        let env = Environment::Test;
        let keyring = Keyring::builder()
            .merchant(env, "0123".parse().unwrap(), "a", "b", "sub-0123")
            .merchant(env, "123".parse().unwrap(), "c", "d", "sub-123")
            .build()
            .unwrap();
        let svc = AuthLayer::new(keyring)
            .token_client(endpoint())
            .layer(echo());
        for msn in ["0123", "123", "0123"] {
            let headers = sent(svc.clone(), env, msn).await.unwrap();
            assert_eq!(
                headers[OCP_APIM_SUBSCRIPTION_KEY],
                format!("sub-{msn}").as_str()
            );
            assert_eq!(headers[MERCHANT_SERIAL_NUMBER], msn);
        }
        assert_eq!(svc.cache().len(), 2);
    }

    /// The old way: insert every Vipps header into the request's own map.
    fn reference(
        headers: &mut HeaderMap,
        authorization: HeaderValue,
        target: &Target<'_>,
        keyring: &Keyring,
    ) {
        headers.insert(AUTHORIZATION, authorization);
        headers.insert(
            OCP_APIM_SUBSCRIPTION_KEY,
            target.keys.subscription_key_header().clone(),
        );
        if !target.has_msn_header {
            if let Some(msn) = target.msn {
                headers.insert(MERCHANT_SERIAL_NUMBER, msn.to_header_value());
            }
        }
        let system = keyring.system();
        for (name, value) in [
            (VIPPS_SYSTEM_NAME, &system.name),
            (VIPPS_SYSTEM_VERSION, &system.version),
            (VIPPS_SYSTEM_PLUGIN_NAME, &system.plugin_name),
            (VIPPS_SYSTEM_PLUGIN_VERSION, &system.plugin_version),
        ] {
            headers.insert(name, value.clone());
        }
    }

    /// A header value's bytes and whether it is sensitive.
    type Value = (Vec<u8>, bool);

    /// Every name with its values in order, sensitivity included.
    fn by_name(headers: &HeaderMap) -> Vec<(String, Vec<Value>)> {
        let mut names: Vec<String> = headers.keys().map(|n| n.to_string()).collect();
        names.sort();
        names
            .into_iter()
            .map(|n| {
                let values = headers
                    .get_all(n.as_str())
                    .iter()
                    .map(|v| (v.as_bytes().to_vec(), v.is_sensitive()))
                    .collect();
                (n, values)
            })
            .collect()
    }

    #[test]
    fn outgoing_headers_match_inserting_into_the_request() {
        let msn = Msn::new(123456).unwrap();
        let keyring = Keyring::builder()
            .merchant(Environment::Test, msn, "a", "b", "sub-key")
            .system("my-system", "9.9.9")
            .build()
            .unwrap();
        let core = Core::new(keyring.clone(), TokenCache::new(), true);
        let mut token = HeaderValue::from_static("Bearer t0k3n");
        token.set_sensitive(true);
        let originals: Vec<Vec<(&str, &str)>> = vec![
            vec![],
            vec![("merchant-serial-number", "123456")],
            vec![
                ("merchant-serial-number", "123456"),
                ("merchant-serial-number", "654321"),
            ],
            vec![("content-type", "a"), ("content-type", "b")],
            vec![
                ("idempotency-key", "k"),
                ("x-other", "1"),
                ("merchant-serial-number", "123456"),
            ],
            vec![
                ("idempotency-key", "k"),
                ("content-type", "application/json"),
                ("idempotency-key", "k2"),
            ],
            vec![
                ("content-type", "application/json"),
                ("authorization", "Bearer stale"),
                ("authorization", "Basic x"),
                ("ocp-apim-subscription-key", "other"),
                ("vipps-system-name", "theirs"),
                ("vipps-system-plugin-version", "1"),
                ("idempotency-key", "k1"),
                ("x-many", "1"),
                ("x-many", "2"),
                ("merchant-serial-number", "123456"),
            ],
        ];
        for original in originals {
            let mut map = HeaderMap::new();
            for (n, v) in &original {
                map.append(
                    HeaderName::from_bytes(n.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            let req = {
                let mut req = Request::new(());
                *req.uri_mut() = "https://apitest.vipps.no/x".parse().unwrap();
                *req.headers_mut() = map.clone();
                req
            };
            let target = target(&req, &core).unwrap();
            let mut expected = map.clone();
            reference(&mut expected, token.clone(), &target, &keyring);
            let sub = target.keys.subscription_key_header().clone();
            let got = outgoing(&map, token.clone(), sub, &target, &core).unwrap();
            assert_eq!(by_name(&got), by_name(&expected), "{original:?}");
            assert_eq!(got.len(), expected.len(), "{original:?}");
            assert!(got.values().all(|v| !v.is_empty()), "{original:?}");
        }
    }

    #[test]
    fn which_401s_say_the_token_is_stale() {
        let none = HeaderMap::new();
        assert!(says_token_invalid(&none, b""));
        assert!(says_token_invalid(
            &none,
            b"Something went wrong, please try again later"
        ));
        assert!(says_token_invalid(
            &none,
            br#"{"statusCode":401,"message":"Something went wrong, please try again later"}"#
        ));
        assert!(says_token_invalid(
            &none,
            br#"{"title":"Unauthorized","detail":"The access token is expired"}"#
        ));
        assert!(!says_token_invalid(
            &none,
            br#"{"statusCode":401,"message":"Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."}"#
        ));
        assert!(!says_token_invalid(
            &none,
            br#"{"statusCode":401,"message":"Access denied due to missing subscription key."}"#
        ));
        assert!(!says_token_invalid(
            &none,
            br#"{"statusCode":401,"message":"Subscription not found."}"#
        ));
        let mut www = HeaderMap::new();
        www.insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer error="invalid_token""#),
        );
        assert!(says_token_invalid(&www, b"{}"));
    }
}
