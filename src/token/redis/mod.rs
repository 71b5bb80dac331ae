//! [`RedisStore`]: one access token per key set and MSN for a whole fleet of
//! replicas, shared through Redis (feature `redis`).
//!
//! The store, its key layout, sealing, single flight and fallbacks, and why it is
//! built on the `redis` crate: see [`RedisStore`].

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, Script};
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::KeyInit;
use dashmap::DashMap;
use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::store::{Claim, Lease, TokenStore};
use super::{AccessToken, MintedFor};

mod claim;
mod seal;

use claim::{CLAIM, lease_value};

/// Deletes `KEYS[1]` only while its value starts with `ARGV[1]`.
const COMPARE_AND_DELETE: &str = r"
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, string.len(ARGV[1])) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Why a [`RedisStore`] cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedisStoreError {
    /// The URL is not a Redis URL (the URL itself is not shown: it may hold a
    /// password).
    #[error("the Redis URL is not valid ({0})")]
    InvalidUrl(String),
    /// Neither a sealing key nor an explicit opt-out: tokens are live payment
    /// credentials and are not written to Redis in clear by default.
    #[error(
        "no sealing key: give RedisStoreBuilder::seal_key 32 secret bytes (the same on every replica), or opt out with plaintext()"
    )]
    NoSealKey,
}

/// Counters of a [`RedisStore`], since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisStats {
    /// Tokens found in Redis (no fetch needed).
    pub hits: u64,
    /// Local misses that found no usable token in Redis.
    pub misses: u64,
    /// Leases taken: this replica fetched for the fleet.
    pub leases: u64,
    /// Claims that waited for another replica's fetch.
    pub lease_waits: u64,
    /// Round trips that failed or timed out: the replica went on without Redis.
    pub fallbacks: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    leases: AtomicU64,
    lease_waits: AtomicU64,
    fallbacks: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A [`TokenStore`] in Redis, shared by every replica that uses the same prefix
/// and sealing key. Cheap to clone; clones share the connection and counters.
///
/// ```
/// use tower_vipps::token::{RedisStore, RedisStoreError};
///
/// // Building does not connect (that happens on first use, or `connect`).
/// let store = RedisStore::builder("redis://127.0.0.1:6379").seal_key([1; 32]).build()?;
/// assert_eq!(store.stats().hits, 0);
/// // No key and no explicit opt-out: refused.
/// assert_eq!(
///     RedisStore::builder("redis://127.0.0.1:6379").build().unwrap_err(),
///     RedisStoreError::NoSealKey
/// );
/// # Ok::<(), RedisStoreError>(())
/// ```
///
/// With a cache, in a stack:
///
/// ```no_run
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use tower_vipps::token::{RedisStore, TokenCache};
///
/// // 32 bytes from your secret manager, the same on every replica.
/// let seal_key = [7u8; 32];
/// let store = RedisStore::builder("redis://127.0.0.1:6379")
///     .seal_key(seal_key)
///     .prefix("shop-api:")
///     .build()?;
/// let cache = TokenCache::builder().store(Arc::new(store.clone())).build();
/// let stack = tower_vipps::layer(tower_vipps::Keyring::builder().build()?).token_cache(cache);
/// # let _ = stack;
/// println!("{:?}", store.stats());
/// # Ok(()) }
/// ```
///
/// ## What it does
///
/// - **Keys**: `{prefix}{<environment>:<key set fingerprint>:<msn>}:token`, and
///   `…:lease` beside it. The key set fingerprint is a SHA-256 of the `client_id`
///   and the subscription key's fingerprint: neither the `client_id` nor any secret
///   appears in a key. The part in braces is a Redis Cluster hash tag, so a token
///   and its lease live in one slot and the scripts below work on a cluster.
/// - **Values** are sealed with XChaCha20-Poly1305 under the key you give
///   ([`seal_key`](RedisStoreBuilder::seal_key)), bound to their Redis key (a value
///   copied to another key does not open), with a random 24-byte nonce each. A
///   value that does not open (another key, a rotated key) is a miss. Plaintext
///   only with [`plaintext`](RedisStoreBuilder::plaintext). Every value starts
///   with a fingerprint of its token (the first 8 bytes of its SHA-256), which is
///   what compare-and-delete compares.
/// - **Expiry**: each token is stored with `PX` = its time left; its lifetime on
///   another replica is Redis's `PTTL`, so replicas' clocks need not agree.
/// - **Single flight across replicas**: on a local miss or refresh, one script
///   either returns a token with enough time left or takes a lease (`SET NX PX`,
///   [`lease`](RedisStoreBuilder::lease), default 2 s) for this replica, which then
///   fetches and puts the token, announcing it on a pub/sub channel
///   (`{prefix}token-puts`). The others wait: woken by the announcement, and
///   polling every 250 ms at most (5 ms doubling to 50 ms while the subscription
///   is down). A lease whose holder died expires, and the next poll takes it and
///   fetches. Waiting never outlasts the holder's lease (plus one poll).
/// - **Invalidation across replicas**: a 401 removes exactly the rejected token
///   (a script compares its fingerprint before `DEL`): a newer token another
///   replica put meanwhile survives, so the fleet refetches once.
/// - **Never the bottleneck**: the [`TokenCache`](super::TokenCache) answers from
///   memory first; the store is asked only on a miss or refresh. Every round trip
///   is bounded by [`timeout`](RedisStoreBuilder::timeout) (default 50 ms). Redis
///   down, slow or restarted: the call counts a fallback and the replica fetches on
///   its own; the connection is re-established in the background and sharing
///   resumes by itself.
/// - [`stats`](RedisStore::stats) counts hits, misses, leases, lease waits and
///   fallbacks; `tracing` events (target `tower_vipps::token::redis`) say the same,
///   never with a token.
///
/// ## Why the `redis` crate
///
/// [`redis`](https://docs.rs/redis) (redis-rs) and [`fred`](https://docs.rs/fred)
/// are both well kept. This store needs five commands, two small Lua scripts and a
/// connection that comes back after Redis restarts: redis-rs's `ConnectionManager`
/// (multiplexed, reconnecting, with response timeouts) and `Script` (`EVALSHA` with
/// `EVAL` fallback) are exactly that, with `default-features = false` and no other
/// runtime than tokio. fred brings its own connection pools, reconnect policies and
/// command families; more than a token store uses, at a larger dependency cost.
/// redis-rs is also the client most Rust services on Redis already have in their
/// tree.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    connection: OnceLock<Option<ConnectionManager>>,
    cipher: Option<XChaCha20Poly1305>,
    prefix: String,
    timeout: Duration,
    lease: Duration,
    claim: Script,
    compare_and_delete: Script,
    counters: Counters,
    /// Waiters per token key, woken when a replica announces a put.
    waiters: DashMap<String, Arc<Notify>>,
    /// Whether the subscription to puts is live (else waiters poll faster).
    subscribed: AtomicBool,
    subscriber: OnceLock<()>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.prefix)
            .field("sealed", &self.inner.cipher.is_some())
            .field("timeout", &self.inner.timeout)
            .field("lease", &self.inner.lease)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Builds a [`RedisStore`]; see [`RedisStore::builder`].
pub struct RedisStoreBuilder {
    url: String,
    seal_key: Option<[u8; 32]>,
    plaintext: bool,
    prefix: String,
    timeout: Duration,
    lease: Duration,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("sealed", &self.seal_key.is_some())
            .field("plaintext", &self.plaintext)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl RedisStoreBuilder {
    /// The 32-byte key values are sealed under (XChaCha20-Poly1305). Use the same
    /// key on every replica; keep it in your secret manager, not in code.
    pub fn seal_key(mut self, key: [u8; 32]) -> Self {
        self.seal_key = Some(key);
        self
    }

    /// Stores tokens in clear. Only for a Redis nothing else can read.
    pub fn plaintext(mut self) -> Self {
        self.plaintext = true;
        self
    }

    /// The prefix of every key. Default `tower-vipps:`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The bound of each round trip to Redis, after which the replica goes on
    /// without it. Default 50 ms.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long a replica holds the right to fetch a key's token for the fleet,
    /// and so the longest the others wait for it. Default 2 s.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(1));
        self
    }

    /// The store. Connects lazily (on first use, on a tokio runtime) and never
    /// fails later: Redis being down is a fallback, not an error.
    pub fn build(self) -> Result<RedisStore, RedisStoreError> {
        let cipher = match (self.seal_key, self.plaintext) {
            (Some(key), _) => Some(XChaCha20Poly1305::new(&key.into())),
            (None, true) => None,
            (None, false) => return Err(RedisStoreError::NoSealKey),
        };
        let client = Client::open(self.url.as_str())
            .map_err(|e| RedisStoreError::InvalidUrl(format!("{:?}", e.kind())))?;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                connection: OnceLock::new(),
                cipher,
                prefix: self.prefix,
                timeout: self.timeout,
                lease: self.lease,
                claim: Script::new(CLAIM),
                compare_and_delete: Script::new(COMPARE_AND_DELETE),
                counters: Counters::default(),
                waiters: DashMap::new(),
                subscribed: AtomicBool::new(false),
                subscriber: OnceLock::new(),
            }),
        })
    }
}

/// What went wrong in a round trip (never shown with a value).
enum Trip {
    Timeout,
    Redis(::redis::ErrorKind),
    Offline,
}

impl fmt::Display for Trip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trip::Timeout => f.write_str("timed out"),
            Trip::Redis(kind) => write!(f, "{kind:?}"),
            Trip::Offline => f.write_str("no connection"),
        }
    }
}

impl RedisStore {
    /// A builder for the store at `url` (`redis://[:password@]host:port[/db]`,
    /// `rediss://` needs the `redis` crate's TLS feature in your tree).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            seal_key: None,
            plaintext: false,
            prefix: "tower-vipps:".to_owned(),
            timeout: Duration::from_millis(50),
            lease: Duration::from_secs(2),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> RedisStats {
        let c = &self.inner.counters;
        RedisStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            leases: c.leases.load(Ordering::Relaxed),
            lease_waits: c.lease_waits.load(Ordering::Relaxed),
            fallbacks: c.fallbacks.load(Ordering::Relaxed),
        }
    }

    /// Connects now (waiting at most `timeout`) rather than on the
    /// first local miss, and says whether Redis answered `PING`. Optional: a
    /// store that is not ready goes on without Redis until it is.
    pub async fn connect(&self, timeout: Duration) -> bool {
        let Some(mut connection) = self.connection() else {
            return false;
        };
        let cmd = ::redis::cmd("PING");
        let ping = cmd.query_async::<String>(&mut connection);
        matches!(tokio::time::timeout(timeout, ping).await, Ok(Ok(_)))
    }

    /// The Redis key of `key`'s token (its lease is the same with `:lease`).
    pub fn token_key(&self, key: &MintedFor) -> String {
        format!("{}:token", self.base(key))
    }

    fn base(&self, key: &MintedFor) -> String {
        let mut digest = Sha256::new();
        digest.update(b"tower-vipps key set\0");
        digest.update(key.client_id.as_bytes());
        digest.update([0, u8::from(key.partner)]);
        digest.update(key.subscription_key.bits().to_be_bytes());
        let digest = digest.finalize();
        let mut hex = String::with_capacity(16);
        for byte in digest.iter().take(8) {
            hex.push_str(&format!("{byte:02x}"));
        }
        let msn = key.msn.map_or_else(|| "-".to_owned(), |m| m.to_string());
        format!("{}{{{}:{hex}:{msn}}}", self.inner.prefix, key.environment)
    }

    fn connection(&self) -> Option<ConnectionManager> {
        self.inner
            .connection
            .get_or_init(|| {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(1)))
                    // Each round trip is bounded by `timeout` on our side (the
                    // connection survives a slow answer); only a connection that
                    // has not answered for far longer is dropped and re-made.
                    .set_response_timeout(Some(
                        self.inner.timeout.saturating_mul(20).max(Duration::from_secs(1)),
                    ))
                    .set_number_of_retries(3)
                    .set_max_delay(Duration::from_secs(1));
                ConnectionManager::new_lazy_with_config(self.inner.client.clone(), config)
                    .map_err(|e| tracing::debug!(kind = ?e.kind(), "redis token store: no connection manager"))
                    .ok()
            })
            .clone()
    }

    /// One round trip, bounded by the timeout; a failure counts a fallback.
    async fn trip<T, F>(&self, what: &'static str, call: F) -> Result<T, ()>
    where
        F: AsyncFnOnce(&mut ConnectionManager) -> ::redis::RedisResult<T>,
    {
        let why = match self.connection() {
            None => Trip::Offline,
            Some(mut connection) => {
                match tokio::time::timeout(self.inner.timeout, call(&mut connection)).await {
                    Ok(Ok(value)) => return Ok(value),
                    Ok(Err(err)) => Trip::Redis(err.kind()),
                    Err(_) => Trip::Timeout,
                }
            }
        };
        Counters::bump(&self.inner.counters.fallbacks);
        tracing::debug!(op = what, error = %why, "redis token store unavailable: going on without it");
        Err(())
    }
}

impl TokenStore for RedisStore {
    fn get<'a>(&'a self, key: &'a MintedFor) -> BoxFuture<'a, Option<AccessToken>> {
        Box::pin(async move {
            let token_key = self.token_key(key);
            let (value, ttl): (Option<Vec<u8>>, i64) = self
                .trip("get", async |c| {
                    ::redis::pipe()
                        .atomic()
                        .get(&token_key)
                        .pttl(&token_key)
                        .query_async(c)
                        .await
                })
                .await
                .ok()?;
            let ttl = u64::try_from(ttl).ok()?;
            let found = self.token(&token_key, key, &value?, ttl);
            Counters::bump(if found.is_some() {
                &self.inner.counters.hits
            } else {
                &self.inner.counters.misses
            });
            found
        })
    }

    fn put<'a>(&'a self, token: &'a AccessToken) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let left = token.remaining(Instant::now());
            let Ok(left_ms) = u64::try_from(left.as_millis()) else {
                return;
            };
            if left_ms == 0 {
                return;
            }
            let token_key = self.token_key(&token.minted_for());
            let Some(value) = self.seal(&token_key, token) else {
                return;
            };
            let channel = self.channel();
            let _ = self
                .trip("put", async |c| {
                    ::redis::pipe()
                        .cmd("SET")
                        .arg(&token_key)
                        .arg(&value)
                        .arg("PX")
                        .arg(left_ms)
                        .ignore()
                        .cmd("PUBLISH")
                        .arg(&channel)
                        .arg(&token_key)
                        .ignore()
                        .exec_async(c)
                        .await
                })
                .await;
        })
    }

    fn remove<'a>(&'a self, token: &'a AccessToken) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let token_key = self.token_key(&token.minted_for());
            let head = self.head(token);
            let script = &self.inner.compare_and_delete;
            let removed: Result<i64, ()> = self
                .trip("remove", async |c| {
                    script.key(&token_key).arg(&head).invoke_async(c).await
                })
                .await;
            tracing::trace!(msn = ?token.minted_for().msn, removed = removed == Ok(1), "rejected access token removed from redis");
        })
    }

    fn claim<'a>(&'a self, key: &'a MintedFor, fresh_for: Duration) -> BoxFuture<'a, Claim> {
        Box::pin(self.claim_token(key, fresh_for))
    }

    fn release<'a>(&'a self, key: &'a MintedFor, lease: Lease) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let lease_key = format!("{}:lease", self.base(key));
            let script = &self.inner.compare_and_delete;
            let id = lease_value(lease);
            let _: Result<i64, ()> = self
                .trip("release", async |c| {
                    script.key(&lease_key).arg(&id).invoke_async(c).await
                })
                .await;
        })
    }
}
