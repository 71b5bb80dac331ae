//! [`TokenCache`]: access tokens per key set and MSN, refreshed ahead of expiry, one
//! fetch per key at a time.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use tokio::time::Instant;
use tracing::Instrument;

use super::fetch::{TokenClient, TokenRequest};
use super::store::{Claim, Lease, TokenStore};
use super::{AccessToken, KnownTokens, MintedFor, Ticks};
use crate::{Cause, Diagnosis, ErrorResponse, KeySet, Msn, VippsError};

/// The cache key: the key set (which fixes the environment, `client_id` and
/// subscription key) and the MSN the token was fetched for (0 for none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    key_set: u64,
    msn: u64,
}

/// A fast keyed hasher for two `u64`s (the map is keyed by process-local ids).
#[derive(Clone)]
pub(crate) struct KeyHasherBuilder(pub(crate) u64);

pub(crate) struct KeyHasher(u64);

impl BuildHasher for KeyHasherBuilder {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(self.0)
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(31);
    }
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h
    }
}

/// A failure shared by every waiter of one fetch.
#[derive(Clone)]
struct SharedFailure(Arc<FailureInner>);

struct FailureInner {
    response: Option<ErrorResponse>,
    diagnosis: Diagnosis,
    source: Option<Arc<VippsError>>,
}

impl SharedFailure {
    fn from_error(err: VippsError) -> SharedFailure {
        let response = match err.origin() {
            crate::Origin::Token(r) => r.clone(),
            _ => err.error_response().cloned(),
        };
        SharedFailure(Arc::new(FailureInner {
            response,
            diagnosis: err.diagnosis().clone(),
            source: std::error::Error::source(&err)
                .is_some()
                .then(|| Arc::new(err)),
        }))
    }

    /// The cause code.
    fn code(&self) -> &'static str {
        self.0.diagnosis.code()
    }

    fn to_error(&self) -> VippsError {
        VippsError::token(
            self.0.response.clone(),
            self.0.diagnosis.clone(),
            self.0
                .source
                .clone()
                .map(|s| Box::new(SharedSource(s)) as crate::BoxError),
        )
    }
}

/// The source of a shared failure: shows the original error's source.
struct SharedSource(Arc<VippsError>);

impl fmt::Debug for SharedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::error::Error::source(&*self.0) {
            Some(s) => fmt::Debug::fmt(s, f),
            None => f.write_str("SharedSource"),
        }
    }
}

impl fmt::Display for SharedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::error::Error::source(&*self.0) {
            Some(s) => fmt::Display::fmt(s, f),
            None => f.write_str("the access token fetch failed"),
        }
    }
}

impl std::error::Error for SharedSource {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.0)
    }
}

type Outcome = Result<Arc<AccessToken>, SharedFailure>;
type Inflight = Shared<BoxFuture<'static, Outcome>>;

/// One key's entry. What belongs to its token (the hard expiry, the soft expiry
/// from which one background refresh starts, the generation that identifies the
/// token a request carried) is kept in the token itself, so a warm entry is three
/// words in the map and one allocation besides the token's bytes.
struct Slot {
    token: Option<Arc<AccessToken>>,
    /// Set by the one caller that starts the background refresh.
    refresh_claimed: AtomicBool,
    /// Coarse time of the last use, in seconds since the cache's epoch
    /// (saturating: 136 years).
    last_used: AtomicU32,
    /// Whether the key set is known to cover the key's MSN (merchant keys, or
    /// partner keys that list it; not for a token shared across a partner's
    /// MSNs): `Auth` then need not look the MSN up in the partner's list.
    covered: bool,
    /// A fetch in flight or a recent failure: boxed, so the many slots with
    /// neither (a warm cache) stay small.
    pending: Option<Box<Pending>>,
}

/// What a slot holds only while a fetch runs or after one failed.
#[derive(Default)]
struct Pending {
    /// The fetch in flight: its id, its shared result, and its span (which the
    /// spans of the calls that wait for it follow from).
    inflight: Option<(u64, Inflight, Option<tracing::Id>)>,
    failure: Option<(SharedFailure, Instant)>,
}

impl Slot {
    fn empty(now_secs: u64, covered: bool) -> Slot {
        Slot {
            token: None,
            covered,
            refresh_claimed: AtomicBool::new(false),
            last_used: AtomicU32::new(coarse(now_secs)),
            pending: None,
        }
    }

    fn touch(&self, secs: u64) {
        let secs = coarse(secs);
        if self.last_used.load(Ordering::Relaxed) != secs {
            self.last_used.store(secs, Ordering::Relaxed);
        }
    }

    fn inflight(&self) -> Option<&(u64, Inflight, Option<tracing::Id>)> {
        self.pending.as_ref()?.inflight.as_ref()
    }

    fn failure(&self) -> Option<&(SharedFailure, Instant)> {
        self.pending.as_ref()?.failure.as_ref()
    }

    /// Whether a refresh may not start now: one runs, or the last one failed and
    /// its backoff has not passed (the still-valid token is kept meanwhile).
    #[cold]
    fn refresh_held(&self, now: Ticks) -> bool {
        let Some(pending) = &self.pending else {
            return false;
        };
        pending.inflight.is_some()
            || pending
                .failure
                .as_ref()
                .is_some_and(|(_, until)| now < Ticks::of(*until))
    }

    fn set_inflight(&mut self, inflight: Option<(u64, Inflight, Option<tracing::Id>)>) {
        if inflight.is_none() && self.pending.is_none() {
            return;
        }
        self.edit_pending(|p| p.inflight = inflight);
    }

    fn set_failure(&mut self, failure: Option<(SharedFailure, Instant)>) {
        if failure.is_none() && self.pending.is_none() {
            return;
        }
        self.edit_pending(|p| p.failure = failure);
    }

    /// Edits the pending state, dropping its box once it holds nothing.
    fn edit_pending(&mut self, f: impl FnOnce(&mut Pending)) {
        let pending = self.pending.get_or_insert_with(Box::default);
        f(pending);
        if pending.inflight.is_none() && pending.failure.is_none() {
            self.pending = None;
        }
    }
}

/// Whether the request's key set covers the MSN its token is fetched for (see
/// [`Slot::covered`]).
fn covers(request: &TokenRequest) -> bool {
    match (request.keys.merchant_msn(), request.msn) {
        (Some(own), msn) => msn.is_none_or(|msn| msn == own),
        (None, Some(msn)) => request.keys.covers(msn),
        (None, None) => false,
    }
}

/// Seconds since the cache's epoch, as a slot keeps them.
fn coarse(secs: u64) -> u32 {
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// Shards of the slot map (a power of two).
const SHARDS: usize = 64;

/// What the hot path found.
pub(crate) enum Fast<T> {
    /// A valid token, not yet due for refresh.
    Hit(T),
    /// A valid token, due for refresh: this caller won the right to start it.
    Refresh(T),
    /// No valid token: wait for a fetch.
    Miss,
}

#[derive(Clone, Debug)]
struct Config {
    refresh_buffer: Duration,
    jitter: Duration,
    hard_expiry_wait: Duration,
    fetch_timeout: Option<Duration>,
    idle_eviction: Duration,
    failure_backoff: Duration,
    share_partner_tokens: bool,
}

struct Inner {
    slots: DashMap<CacheKey, Slot, KeyHasherBuilder>,
    /// Token value hash -> token, for [`KnownTokens::minted_for`] (a token set by hand).
    tokens: DashMap<u64, Arc<AccessToken>, KeyHasherBuilder>,
    token_hasher: std::collections::hash_map::RandomState,
    config: Config,
    epoch: Ticks,
    next_sweep: AtomicU64,
    next_fetch_id: AtomicU64,
    fetches: AtomicU64,
    store: Option<Arc<dyn TokenStore>>,
    /// With a store: the token last invalidated per key, until a fetch replaced it.
    /// A store never hands it back, and the fetch removes it from the store first.
    rejected: DashMap<CacheKey, Arc<AccessToken>, KeyHasherBuilder>,
}

/// Access tokens per key set and MSN.
///
/// - **Hot path**: a read-mostly lookup (a sharded [`DashMap`]) that never awaits
///   and does not allocate while a valid token is cached.
/// - **Soft expiry**: from `refresh_buffer` (plus up to `jitter`) before expiry, the
///   first caller starts one background refresh; every caller keeps the still-valid
///   token meanwhile.
/// - **Hard expiry, or no token**: callers wait for the one in-flight fetch, at most
///   `hard_expiry_wait`. The fetch runs in a spawned task: a caller that gives up or
///   is cancelled neither stalls nor restarts it, and its result (token or error)
///   goes to every waiter. A failure is remembered for `failure_backoff` only.
/// - **Idle eviction**: entries unused for `idle_eviction` are swept out, a little at
///   a time, by a spawned task, so a partner with 100k MSNs stays bounded.
/// - [`invalidate`](TokenCache::invalidate) drops exactly one token; a token another
///   task fetched meanwhile survives.
///
/// Keys: merchant keys get one token per key set (their MSN). Partner keys get one
/// token per MSN, fetched with that MSN in the `Merchant-Serial-Number` header, so
/// each token is known to be minted for one sales unit
/// ([`share_partner_tokens`](TokenCacheBuilder::share_partner_tokens) shares one
/// token across the partner's MSNs instead).
///
/// Time is [`tokio::time::Instant`]: tests may pause and advance the clock. Cheap
/// to clone; clones share the cache.
///
/// ```
/// use std::time::Duration;
/// use tower_vipps::token::TokenCache;
///
/// let cache = TokenCache::builder()
///     .refresh_buffer(Duration::from_secs(300))
///     .jitter(Duration::from_secs(60))
///     .hard_expiry_wait(Duration::from_secs(10))
///     .idle_eviction(Duration::from_secs(3600))
///     .build();
/// assert!(cache.is_empty());
/// ```
#[derive(Clone)]
pub struct TokenCache {
    inner: Arc<Inner>,
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache::builder().build()
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.inner.slots.len())
            .field("config", &self.inner.config)
            .field("store", &self.inner.store.is_some())
            .finish()
    }
}

/// Builds a [`TokenCache`]; see [`TokenCache::builder`].
#[derive(Clone)]
pub struct TokenCacheBuilder {
    config: Config,
    store: Option<Arc<dyn TokenStore>>,
}

impl fmt::Debug for TokenCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCacheBuilder")
            .field("config", &self.config)
            .field("store", &self.store.is_some())
            .finish()
    }
}

impl TokenCacheBuilder {
    /// How long before expiry a background refresh starts. Default 5 minutes.
    /// A buffer longer than a token's lifetime refreshes as soon as it is fetched.
    pub fn refresh_buffer(mut self, buffer: Duration) -> Self {
        self.config.refresh_buffer = buffer;
        self
    }

    /// A random extra of up to this much is added to the refresh buffer of each
    /// token, so tokens fetched together are not refreshed together. Default 1 minute.
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.config.jitter = jitter;
        self
    }

    /// How long a caller with no valid token waits for the fetch before it gets a
    /// timeout error. Default 10 seconds.
    pub fn hard_expiry_wait(mut self, wait: Duration) -> Self {
        self.config.hard_expiry_wait = wait;
        self
    }

    /// How long one fetch may take before it fails (and a new one may start).
    /// Default: the `hard_expiry_wait`.
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.config.fetch_timeout = Some(timeout);
        self
    }

    /// Entries unused for this long are evicted. Default 30 minutes.
    pub fn idle_eviction(mut self, idle: Duration) -> Self {
        self.config.idle_eviction = idle;
        self
    }

    /// How long a failed fetch is remembered: callers with no valid token get the
    /// same error, without a new fetch, until it passes. Default 1 second.
    pub fn failure_backoff(mut self, backoff: Duration) -> Self {
        self.config.failure_backoff = backoff;
        self
    }

    /// One token per partner key set, fetched without an MSN, instead of one per
    /// MSN. Default `false`.
    pub fn share_partner_tokens(mut self, share: bool) -> Self {
        self.config.share_partner_tokens = share;
        self
    }

    /// A second-level store asked before and filled after every fetch.
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Builds the cache.
    pub fn build(self) -> TokenCache {
        let seed = fastrand::u64(..);
        let now = Ticks::now();
        TokenCache {
            inner: Arc::new(Inner {
                // Many shards: the workers of a runtime rarely read-lock the same
                // one at once (a read lock writes its shard's lock word).
                slots: DashMap::with_hasher_and_shard_amount(KeyHasherBuilder(seed), SHARDS),
                tokens: DashMap::with_hasher(KeyHasherBuilder(seed.rotate_left(17))),
                token_hasher: Default::default(),
                config: self.config,
                epoch: now,
                next_sweep: AtomicU64::new(0),
                next_fetch_id: AtomicU64::new(1),
                fetches: AtomicU64::new(0),
                store: self.store,
                rejected: DashMap::with_hasher(KeyHasherBuilder(0)),
            }),
        }
    }
}

impl TokenCache {
    /// A cache with the default settings.
    pub fn new() -> TokenCache {
        TokenCache::default()
    }

    /// A builder.
    pub fn builder() -> TokenCacheBuilder {
        TokenCacheBuilder {
            config: Config {
                refresh_buffer: Duration::from_secs(300),
                jitter: Duration::from_secs(60),
                hard_expiry_wait: Duration::from_secs(10),
                fetch_timeout: None,
                idle_eviction: Duration::from_secs(1800),
                failure_backoff: Duration::from_secs(1),
                share_partner_tokens: false,
            },
            store: None,
        }
    }

    /// How many entries (key set and MSN pairs) it holds.
    pub fn len(&self) -> usize {
        self.inner.slots.len()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.inner.slots.is_empty()
    }

    /// How many fetches it has started.
    pub fn fetches(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// The MSN a token for `keys` acting for `msn` is fetched with: the merchant's
    /// own MSN, or for partner keys the requested MSN (`None` when partner tokens
    /// are shared).
    pub fn token_msn(&self, keys: &KeySet, msn: Option<Msn>) -> Option<Msn> {
        match keys.merchant_msn() {
            Some(own) => Some(own),
            None if self.inner.config.share_partner_tokens => None,
            None => msn,
        }
    }

    pub(crate) fn key(&self, keys: &KeySet, msn: Option<Msn>) -> CacheKey {
        CacheKey {
            key_set: keys.id(),
            msn: self.token_msn(keys, msn).map_or(0, Msn::key),
        }
    }

    fn secs(&self, now: Ticks) -> u64 {
        now.secs_since(self.inner.epoch)
    }

    /// The token cached for `keys` and `msn`, if valid at `now`, without waiting
    /// and without starting a refresh.
    pub fn cached(&self, keys: &KeySet, msn: Option<Msn>) -> Option<Arc<AccessToken>> {
        let now = Ticks::now();
        let slot = self.inner.slots.get(&self.key(keys, msn))?;
        slot.token
            .as_ref()
            .filter(|t| now < t.expires_ticks())
            .cloned()
    }

    /// The hot path: never awaits, never allocates.
    #[inline]
    pub(crate) fn lookup(&self, key: CacheKey, now: Ticks) -> Fast<Arc<AccessToken>> {
        self.lookup_with(key, now, true, Arc::clone)
    }

    /// The hot path of `Auth`: the `Authorization` value and the token's generation.
    #[inline]
    /// `verified`: whether the caller knows the key set covers the MSN; if not,
    /// only an entry that knows it hits.
    pub(crate) fn lookup_authorization(
        &self,
        key: CacheKey,
        now: Ticks,
        verified: bool,
    ) -> Fast<(http::HeaderValue, u64)> {
        self.lookup_with(key, now, verified, |token| {
            (token.authorization().clone(), token.generation)
        })
    }

    #[inline]
    fn lookup_with<T>(
        &self,
        key: CacheKey,
        now: Ticks,
        verified: bool,
        take: impl FnOnce(&Arc<AccessToken>) -> T,
    ) -> Fast<T> {
        let Some(slot) = self.inner.slots.get(&key) else {
            return Fast::Miss;
        };
        if !verified && !slot.covered {
            return Fast::Miss;
        }
        let Some(token) = slot.token.as_ref().filter(|t| now < t.expires_ticks()) else {
            return Fast::Miss;
        };
        let found = take(token);
        slot.touch(self.secs(now));
        if now >= token.refresh_at
            && !slot.refresh_held(now)
            && !slot.refresh_claimed.swap(true, Ordering::AcqRel)
        {
            return Fast::Refresh(found);
        }
        Fast::Hit(found)
    }

    /// A valid token for `request`: the cached one, or the result of the one fetch
    /// in flight for its key (started if there is none), waiting at most
    /// `hard_expiry_wait`. Starts a background refresh when the token is due.
    pub async fn get(
        &self,
        client: &TokenClient,
        request: &TokenRequest,
    ) -> Result<Arc<AccessToken>, VippsError> {
        // The MSN the token is fetched for is the one it is cached under: with
        // shared partner tokens, none (a token fetched for one MSN is not the
        // shared one, and says nothing of the others).
        let normalized;
        let token_msn = self.token_msn(&request.keys, request.msn);
        let request = if token_msn == request.msn {
            request
        } else {
            let mut copy = request.clone();
            copy.msn = token_msn;
            normalized = copy;
            &normalized
        };
        let key = self.key(&request.keys, request.msn);
        match self.lookup(key, Ticks::now()) {
            Fast::Hit(token) => Ok(token),
            Fast::Refresh(token) => {
                self.start_refresh(key, client, request);
                Ok(token)
            }
            Fast::Miss => self.wait(key, client, request).await,
        }
    }

    /// Starts the background refresh this caller claimed in [`Fast::Refresh`].
    pub(crate) fn start_refresh(
        &self,
        key: CacheKey,
        client: &TokenClient,
        request: &TokenRequest,
    ) {
        let now = Instant::now();
        self.maybe_sweep(Ticks::of(now));
        let Some(mut slot) = self.inner.slots.get_mut(&key) else {
            return;
        };
        if slot.inflight().is_some() {
            return;
        }
        tracing::trace!("refreshing an access token ahead of expiry");
        if let Err(failure) = self.start_fetch(key, &mut slot, client, request) {
            slot.refresh_claimed.store(false, Ordering::Release);
            slot.set_failure(Some((failure, now + self.inner.config.failure_backoff)));
        }
    }

    /// The slow path: waits for the one fetch of this key.
    pub(crate) async fn wait(
        &self,
        key: CacheKey,
        client: &TokenClient,
        request: &TokenRequest,
    ) -> Result<Arc<AccessToken>, VippsError> {
        let now = Instant::now();
        let ticks = Ticks::of(now);
        self.maybe_sweep(ticks);
        let inflight = {
            let secs = self.secs(ticks);
            let mut slot = self
                .inner
                .slots
                .entry(key)
                .or_insert_with(|| Slot::empty(secs, false));
            if !slot.covered {
                slot.covered = covers(request);
            }
            slot.touch(secs);
            if let Some(token) = slot.token.as_ref().filter(|t| ticks < t.expires_ticks()) {
                return Ok(token.clone());
            }
            match slot.failure() {
                Some((failure, until)) if now < *until && slot.inflight().is_none() => {
                    return Err(failure.to_error());
                }
                _ => {}
            }
            match slot.inflight() {
                Some((_, inflight, span)) => {
                    tracing::Span::current().follows_from(span.clone());
                    inflight.clone()
                }
                None => self
                    .start_fetch(key, &mut slot, client, request)
                    .map_err(|f| f.to_error())?,
            }
        };
        let wait = self.inner.config.hard_expiry_wait;
        match tokio::time::timeout(wait, inflight).await {
            Ok(Ok(token)) => Ok(token),
            Ok(Err(failure)) => Err(failure.to_error()),
            Err(_) => Err(VippsError::token(
                None,
                Diagnosis::new(Cause::Timeout).with_evidence(format!(
                    "no access token within {wait:?}: the token endpoint did not answer in time"
                )),
                None,
            )),
        }
    }

    fn start_fetch(
        &self,
        key: CacheKey,
        slot: &mut Slot,
        client: &TokenClient,
        request: &TokenRequest,
    ) -> Result<Inflight, SharedFailure> {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return Err(SharedFailure::from_error(VippsError::token(
                None,
                Diagnosis::new(Cause::Transport).with_evidence(
                    "access tokens are fetched on a tokio runtime, and there is none",
                ),
                None,
            )));
        };
        let id = self.inner.next_fetch_id.fetch_add(1, Ordering::Relaxed);
        self.inner.fetches.fetch_add(1, Ordering::Relaxed);
        let inner = self.inner.clone();
        let client = client.clone();
        let request = request.clone();
        // A root span: the fetch is shared by every caller that waits for it.
        let span = tracing::info_span!(
            parent: None,
            "vipps.token_fetch",
            vipps.environment = request.keys.environment().as_str(),
            vipps.key_set = %request.keys.subscription_key_fingerprint(),
            vipps.msn = tracing::field::Empty,
            vipps.outcome = tracing::field::Empty,
            vipps.duration_ms = tracing::field::Empty,
        );
        if let Some(msn) = request.msn {
            span.record("vipps.msn", tracing::field::display(msn));
        }
        let span_id = span.id();
        tracing::Span::current().follows_from(span_id.clone());
        let after_panic = inner.clone();
        let task = handle.spawn(
            async move {
                let started = Instant::now();
                let outcome = inner.run_fetch(key, id, &client, &request).await;
                let code = match &outcome {
                    Ok(_) => "ok",
                    Err(failure) => failure.code(),
                };
                let span = tracing::Span::current();
                span.record("vipps.outcome", code);
                span.record(
                    "vipps.duration_ms",
                    started.elapsed().as_secs_f64() * 1000.0,
                );
                crate::observe::metrics::token_fetch(request.keys.environment(), code);
                inner.complete(key, id, &outcome);
                outcome
            }
            .instrument(span),
        );
        let inflight: Inflight = async move {
            match task.await {
                Ok(outcome) => outcome,
                Err(_) => {
                    let failed: Outcome = Err(SharedFailure::from_error(VippsError::token(
                        None,
                        Diagnosis::new(Cause::Unknown)
                            .with_evidence("the access token fetch task was cancelled or panicked"),
                        None,
                    )));
                    // The task did not finish its slot: do it here, so that the
                    // key is not left waiting on a fetch that is gone.
                    after_panic.complete(key, id, &failed);
                    failed
                }
            }
        }
        .boxed()
        .shared();
        slot.set_inflight(Some((id, inflight.clone(), span_id)));
        Ok(inflight)
    }

    /// Drops `token` from the cache (and the store) if it is still the cached token
    /// for its key; a newer token survives. Returns whether it was dropped.
    pub fn invalidate(&self, token: &AccessToken) -> bool {
        let key = CacheKey {
            key_set: token.key_set_id(),
            msn: token.msn().map_or(0, Msn::key),
        };
        self.invalidate_where(key, |slot| {
            slot.token.as_ref().is_some_and(|t| t.same_token(token))
        })
    }

    /// Drops the token cached under `key` if it is still generation `generation`
    /// (the one a rejected request carried).
    pub(crate) fn invalidate_generation(&self, key: CacheKey, generation: u64) -> bool {
        self.invalidate_where(key, |slot| {
            slot.token
                .as_ref()
                .is_some_and(|t| t.generation == generation)
        })
    }

    fn invalidate_where(&self, key: CacheKey, same: impl Fn(&Slot) -> bool) -> bool {
        let dropped = {
            let Some(mut slot) = self.inner.slots.get_mut(&key) else {
                return false;
            };
            if slot.token.is_some() && same(&slot) {
                slot.refresh_claimed.store(false, Ordering::Release);
                slot.token.take()
            } else {
                None
            }
        };
        let Some(dropped) = dropped else {
            return false;
        };
        tracing::debug!(msn = ?dropped.msn(), "access token invalidated");
        self.inner.unindex(&dropped);
        if let Some(store) = self.inner.store.clone() {
            // The next fetch of this key removes it from the store before it asks
            // the store, and never takes it back from there.
            self.inner.rejected.insert(key, dropped.clone());
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move { store.remove(&dropped).await });
            }
        }
        true
    }

    fn maybe_sweep(&self, now: Ticks) {
        let secs = self.secs(now);
        let next = self.inner.next_sweep.load(Ordering::Relaxed);
        if secs < next {
            return;
        }
        let interval = (self.inner.config.idle_eviction.as_secs() / 4).max(1);
        if self
            .inner
            .next_sweep
            .compare_exchange(next, secs + interval, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
            || next == 0
        {
            // The first call only schedules the first sweep.
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = self.inner.clone();
        handle.spawn(async move { inner.sweep(secs) });
    }

    /// Evicts idle entries now (normally done in the background).
    pub fn evict_idle(&self) -> usize {
        self.inner.sweep(self.secs(Ticks::now()))
    }
}

impl Inner {
    async fn run_fetch(
        &self,
        key: CacheKey,
        id: u64,
        client: &TokenClient,
        request: &TokenRequest,
    ) -> Outcome {
        let limit = self
            .config
            .fetch_timeout
            .unwrap_or(self.config.hard_expiry_wait);
        // A retry layer below must not wait out a `Retry-After` past this: the
        // caller gets the 429 (`vipps::rate_limited`, with its wait) instead.
        let now = Instant::now();
        let deadline = now
            .checked_add(limit)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 86_400));
        let fetch = async {
            let Some(store) = &self.store else {
                return client.fetch_before(request, Some(deadline)).await;
            };
            let lease = match self.ask_store(key, store, request).await {
                Ok(token) => return Ok(token),
                Err(lease) => lease,
            };
            let fetched = client.fetch_before(request, Some(deadline)).await;
            if let Ok(token) = &fetched {
                self.rejected.remove(&key);
                store.put(token).await;
            }
            if let Some(lease) = lease {
                store.release(&request.minted_for(), lease).await;
            }
            fetched
        };
        match tokio::time::timeout_at(deadline, fetch).await {
            Ok(Ok(mut token)) => {
                // What the slot keeps of it: when its refresh is due, and which
                // fetch installed it.
                token.refresh_at = self.refresh_at(&token);
                token.generation = id;
                Ok(Arc::new(token))
            }
            Ok(Err(err)) => {
                tracing::debug!(code = err.code(), "access token fetch failed");
                Err(SharedFailure::from_error(err))
            }
            Err(_) => {
                tracing::debug!("access token fetch timed out");
                Err(SharedFailure::from_error(VippsError::token(
                    None,
                    Diagnosis::new(Cause::Timeout).with_evidence(format!(
                        "the token endpoint did not answer within {limit:?}"
                    )),
                    None,
                )))
            }
        }
    }

    /// Asks the store on a local miss or refresh: its token, or the answer to fetch
    /// (with the fleet's lease when the store runs one). The token this cache last
    /// rejected for `key` is removed from the store first and never taken back.
    async fn ask_store(
        &self,
        key: CacheKey,
        store: &Arc<dyn TokenStore>,
        request: &TokenRequest,
    ) -> Result<AccessToken, Option<Lease>> {
        let minted_for = request.minted_for();
        let rejected = self.rejected.get(&key).map(|r| r.value().clone());
        if let Some(rejected) = &rejected {
            store.remove(rejected).await;
        }
        // On a refresh, only a token fresher than the one held will do: the store
        // would otherwise hand this replica its own token back, and the refresh
        // would start over at once.
        let held = self
            .slots
            .get(&key)
            .and_then(|slot| slot.token.as_ref().map(|t| t.expires_at()));
        let fresh_for = held.map_or(self.config.refresh_buffer, |expires| {
            expires
                .saturating_duration_since(Instant::now())
                .saturating_add(Duration::from_secs(1))
                .max(self.config.refresh_buffer)
        });
        let mut token = match store.claim(&minted_for, fresh_for).await {
            Claim::Token(token) => token,
            Claim::Fetch(lease) => return Err(lease),
        };
        let due = token
            .expires_at()
            .checked_sub(self.config.refresh_buffer)
            .unwrap_or(token.issued_at());
        // Neither the rejected token nor an older one (a revocation that rejected
        // it rejected every token issued before it too).
        let taken_back = rejected
            .as_ref()
            .is_some_and(|r| r.same_token(&token) || token.expires_at() <= r.expires_at());
        if !token.is_minted_for(&minted_for) || Instant::now() >= due || taken_back {
            return Err(None);
        }
        if let Some(rejected) = &rejected {
            self.rejected
                .remove_if(&key, |_, r| Arc::ptr_eq(r, rejected));
        }
        token.set_minter(request.keys.minter().clone());
        Ok(token)
    }

    fn refresh_at(&self, token: &AccessToken) -> Ticks {
        let jitter = self.config.jitter.mul_f64(fastrand::f64());
        let lead = self.config.refresh_buffer.saturating_add(jitter);
        token
            .expires_ticks()
            .saturating_sub(lead)
            .max(token.issued_ticks())
    }

    fn complete(&self, key: CacheKey, id: u64, outcome: &Outcome) {
        let now = Instant::now();
        let mut replaced = None;
        {
            // A slot swept while its fetch ran comes back as used now: not idle
            // at once, and so not swept again with its new token.
            let secs = Ticks::of(now).secs_since(self.epoch);
            let mut slot = self
                .slots
                .entry(key)
                .or_insert_with(|| Slot::empty(secs, false));
            if slot.inflight().is_some_and(|(i, _, _)| *i == id) {
                slot.set_inflight(None);
            }
            slot.refresh_claimed.store(false, Ordering::Release);
            match outcome {
                Ok(token) => {
                    self.index(token);
                    slot.set_failure(None);
                    replaced = slot.token.replace(token.clone());
                }
                Err(failure) => {
                    // A still-valid token is kept; its refresh is retried after the
                    // backoff (`Slot::refresh_held`).
                    let until = now + self.config.failure_backoff;
                    slot.set_failure(Some((failure.clone(), until)));
                }
            }
        }
        if let Some(old) = replaced {
            match outcome {
                // The very same allocation: nothing to drop.
                Ok(token) if Arc::ptr_eq(token, &old) => {}
                // The same token read back from a store: another allocation; the
                // hash entry is the new one's now.
                Ok(token) if token.same_token(&old) => {}
                _ => self.unindex(&old),
            }
        }
    }

    fn token_hash(&self, token: &str) -> u64 {
        self.token_hasher.hash_one(token)
    }

    fn index(&self, token: &Arc<AccessToken>) {
        self.tokens
            .insert(self.token_hash(token.secret().expose()), token.clone());
    }

    fn unindex(&self, token: &AccessToken) {
        let hash = self.token_hash(token.secret().expose());
        self.tokens
            .remove_if(&hash, |_, indexed| indexed.same_token(token));
    }

    fn sweep(&self, now_secs: u64) -> usize {
        let idle = self.config.idle_eviction.as_secs();
        let mut evicted = Vec::new();
        let mut evicted_keys = Vec::new();
        self.slots.retain(|key, slot| {
            let keep = slot.inflight().is_some()
                || now_secs.saturating_sub(u64::from(slot.last_used.load(Ordering::Relaxed)))
                    < idle;
            if !keep {
                evicted_keys.push(*key);
                if let Some(token) = slot.token.take() {
                    evicted.push(token);
                }
            }
            keep
        });
        for token in &evicted {
            self.unindex(token);
        }
        // A rejected token is kept only to be refused from the store for its key:
        // with the key gone, so is it (and the secret it holds).
        for key in &evicted_keys {
            self.rejected.remove(key);
        }
        if !evicted.is_empty() {
            tracing::trace!(evicted = evicted.len(), "idle access tokens evicted");
        }
        evicted.len()
    }
}

impl KnownTokens for TokenCache {
    fn minted_for(&self, token: &str) -> Option<MintedFor> {
        let found = self.inner.tokens.get(&self.inner.token_hash(token))?;
        (found.secret().expose() == token).then(|| found.minted_for())
    }

    fn identify(
        &self,
        authorization: &http::HeaderValue,
        keys: &KeySet,
        msn: Option<Msn>,
    ) -> Option<Arc<AccessToken>> {
        let slot = self.inner.slots.get(&self.key(keys, msn))?;
        slot.token
            .as_ref()
            .filter(|t| t.is_value_of(authorization))
            .cloned()
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    /// A warm slot stays small: the fetch and failure state is boxed.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_slot_is_small() {
        eprintln!(
            "Slot {} B, CacheKey {} B, AccessToken {} B, Pending {} B",
            std::mem::size_of::<Slot>(),
            std::mem::size_of::<CacheKey>(),
            std::mem::size_of::<AccessToken>(),
            std::mem::size_of::<Pending>()
        );
        assert!(std::mem::size_of::<Slot>() <= 64);
    }
}
