//! [`TokenCacheBuilder`]: the cache's settings, and the cache it builds.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use dashmap::DashMap;

use super::{Inner, KeyHasherBuilder, TokenCache};
use crate::token::{Ticks, TokenStore};

/// Shards of the slot map (a power of two).
const SHARDS: usize = 64;

#[derive(Clone, Debug)]
pub(super) struct Config {
    pub(super) refresh_buffer: Duration,
    pub(super) jitter: Duration,
    pub(super) hard_expiry_wait: Duration,
    pub(super) fetch_timeout: Option<Duration>,
    pub(super) idle_eviction: Duration,
    pub(super) failure_backoff: Duration,
    pub(super) share_partner_tokens: bool,
}

/// Builds a [`TokenCache`]; see [`TokenCache::builder`].
#[derive(Clone)]
pub struct TokenCacheBuilder {
    pub(super) config: Config,
    pub(super) store: Option<Arc<dyn TokenStore>>,
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
        let now = Ticks::now();
        TokenCache {
            inner: Arc::new(Inner {
                // Many shards: the workers of a runtime rarely read-lock the same
                // one at once (a read lock writes its shard's lock word).
                slots: DashMap::with_hasher_and_shard_amount(KeyHasherBuilder::default(), SHARDS),
                tokens: DashMap::with_hasher(KeyHasherBuilder::default()),
                token_hasher: Default::default(),
                config: self.config,
                epoch: now,
                next_sweep: AtomicU64::new(0),
                next_fetch_id: AtomicU64::new(1),
                fetches: AtomicU64::new(0),
                store: self.store,
                rejected: DashMap::with_hasher(KeyHasherBuilder::default()),
            }),
        }
    }
}
