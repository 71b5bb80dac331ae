//! [`AuthLayer`]: the keys, the cache and the token source every [`Auth`] it makes shares.

use super::*;

/// Adds access tokens and the Vipps headers to requests; see the [module docs](crate::auth).
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
