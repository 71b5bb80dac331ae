//! [`TokenCache`]: access tokens per key set and MSN, refreshed ahead of expiry, one
//! fetch per key at a time.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;

use super::fetch::{TokenClient, TokenRequest};
use super::store::TokenStore;
use super::{AccessToken, Ticks};
use crate::{KeySet, Msn, VippsError};

mod builder;
mod evict;
mod failure;
mod fetch;
mod key;
mod known;
#[cfg(test)]
mod size_tests;
mod slot;

use builder::Config;
pub use builder::TokenCacheBuilder;
pub(crate) use key::{CacheKey, KeyHasherBuilder};
use slot::Slot;

/// What the hot path found.
pub(crate) enum Fast<T> {
    /// A valid token, not yet due for refresh.
    Hit(T),
    /// A valid token, due for refresh: this caller won the right to start it.
    Refresh(T),
    /// No valid token: wait for a fetch.
    Miss,
}

struct Inner {
    slots: DashMap<CacheKey, Slot, KeyHasherBuilder>,
    /// Token value hash -> token, for [`KnownTokens::minted_for`] (a token set by hand).
    ///
    /// [`KnownTokens::minted_for`]: crate::token::KnownTokens::minted_for
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
        self.lookup_with(key, now, || true, Arc::clone)
    }

    /// The hot path of `Auth`: the `Authorization` value and the token's generation.
    /// `covers`: whether the key set covers the MSN, asked only when the entry
    /// cannot say (a token shared by a partner's listed MSNs): one probe of the
    /// cache either way. Kept out of `Auth::call` (inlined, it grew that frame:
    /// about 100 instructions more of copying per request).
    #[inline(never)]
    pub(crate) fn lookup_authorization(
        &self,
        key: CacheKey,
        now: Ticks,
        covers: impl FnOnce() -> bool,
    ) -> Fast<(http::HeaderValue, u64)> {
        self.lookup_with(key, now, covers, |token| {
            (token.authorization().clone(), token.generation)
        })
    }

    #[inline]
    fn lookup_with<T>(
        &self,
        key: CacheKey,
        now: Ticks,
        covers: impl FnOnce() -> bool,
        take: impl FnOnce(&Arc<AccessToken>) -> T,
    ) -> Fast<T> {
        let Some(slot) = self.inner.slots.get(&key) else {
            return Fast::Miss;
        };
        if !slot.covered && !covers() {
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
        let key = self.key(&request.keys, request.msn);
        let found = self.lookup(key, Ticks::now());
        if let Fast::Hit(token) = found {
            return Ok(token);
        }
        // The MSN the token is fetched for is the one it is cached under: with
        // shared partner tokens, none (a token fetched for one MSN is not the
        // shared one, and says nothing of the others). A copy of the request
        // only when a fetch needs it.
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
        match found {
            Fast::Refresh(token) => {
                self.start_refresh(key, client, request);
                Ok(token)
            }
            Fast::Hit(token) => Ok(token),
            Fast::Miss => self.wait(key, client, request).await,
        }
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

    /// Evicts idle entries now (normally done in the background).
    pub fn evict_idle(&self) -> usize {
        self.inner.sweep(self.secs(Ticks::now()))
    }
}
