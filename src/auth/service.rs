//! [`Auth`]'s call path: the credentials a request takes, its token (cached, refreshed
//! or waited for), and [`ResponseFuture`].

use super::*;

/// The service of [`AuthLayer`].
pub struct Auth<S, T = InnerTokenService> {
    pub(super) inner: S,
    pub(super) shared: Arc<Shared<S, T>>,
    pub(super) own: Own,
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

pub(super) fn token_request<B>(
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
pub(super) struct Sent<S, B, T> {
    /// The generation of the token it was sent with.
    pub(super) generation: u64,
    pub(super) key: CacheKey,
    pub(super) shared: Arc<Shared<S, T>>,
    /// A copy of the request before the auth headers, when it can be replayed.
    pub(super) replay: Option<Replay<B>>,
    /// The total deadline a scoped timeout above set for the call, for the replay.
    pub(super) deadline: Option<tokio::time::Instant>,
}

pub(super) struct Replay<B> {
    pub(super) method: http::Method,
    pub(super) uri: http::Uri,
    pub(super) version: http::Version,
    /// The request's own headers, as they came.
    pub(super) headers: HeaderMap,
    /// What a buffered body needs to be rebuilt (nothing else is copied).
    pub(super) extensions: http::Extensions,
    pub(super) body: B,
    /// The MSN of an `Msn` extension (extensions are not copied).
    pub(super) msn: Option<Msn>,
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
        // The key set is asked whether it lists the MSN only when neither Auth
        // nor the cache entry knows (a partner token shared by every MSN).
        let found = cache.lookup_authorization(key, now, || target.covered());
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
