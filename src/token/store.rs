//! [`TokenStore`]: where tokens live beyond one process's cache.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{AccessToken, MintedFor};

/// A second-level store of access tokens, keyed by what they are minted for
/// (environment, `client_id`, subscription key fingerprint, MSN, partner).
///
/// The [`TokenCache`](super::TokenCache) keeps its own in-memory map as the first
/// level (the hot path never touches a store). Before it calls the token endpoint it
/// asks the store; after a fetch it puts the new token; on
/// [`invalidate`](super::TokenCache::invalidate) it removes it. A store shared by a
/// fleet (Redis, say) lets one fetch serve every replica. [`MemoryStore`] is the
/// in-process implementation.
///
/// A store keeps expiry as the token's remaining lifetime
/// ([`AccessToken::remaining`]); it must never log the token. Every call must be
/// bounded in time and must not fail: a store that cannot answer says `None` (or
/// [`Claim::Fetch`]) and the cache fetches on its own.
///
/// A store shared by processes can also run a single flight across them:
/// [`claim`](TokenStore::claim) hands out a [`Lease`] (the right to fetch) to one
/// caller and makes the others wait for its token; the cache gives the lease back
/// with [`release`](TokenStore::release) after its [`put`](TokenStore::put) (or
/// after a failed fetch). The default `claim` is a plain [`get`](TokenStore::get)
/// with no lease, which is right for a store inside one process.
pub trait TokenStore: Send + Sync + 'static {
    /// The stored token for `key`, if any.
    fn get<'a>(&'a self, key: &'a MintedFor) -> BoxFuture<'a, Option<AccessToken>>;
    /// Stores `token` under its [`MintedFor`].
    fn put<'a>(&'a self, token: &'a AccessToken) -> BoxFuture<'a, ()>;
    /// Removes `token`, only if it is still the one stored for its key (compare
    /// and delete: a newer token stored meanwhile survives).
    fn remove<'a>(&'a self, token: &'a AccessToken) -> BoxFuture<'a, ()>;

    /// Called on a local miss or refresh, before the token endpoint: a stored token
    /// valid for at least `fresh_for`, or the answer to fetch one (with a [`Lease`]
    /// when this caller is the one of the fleet that fetches).
    fn claim<'a>(&'a self, key: &'a MintedFor, fresh_for: Duration) -> BoxFuture<'a, Claim> {
        Box::pin(async move {
            match self.get(key).await {
                Some(token) if token.remaining(tokio::time::Instant::now()) > fresh_for => {
                    Claim::Token(token)
                }
                _ => Claim::Fetch(None),
            }
        })
    }

    /// Gives back a lease from [`claim`](TokenStore::claim), after the token was
    /// put or the fetch failed, so a waiting caller need not wait for it to expire.
    fn release<'a>(&'a self, key: &'a MintedFor, lease: Lease) -> BoxFuture<'a, ()> {
        let _ = (key, lease);
        Box::pin(async {})
    }
}

/// What [`TokenStore::claim`] answers.
#[derive(Debug)]
pub enum Claim {
    /// A token fetched by another cache or process.
    Token(AccessToken),
    /// Fetch the token; with a lease, this caller fetches for everyone sharing the
    /// store and gives the lease back with [`TokenStore::release`].
    Fetch(Option<Lease>),
}

/// The right to fetch one key's token for everyone sharing a store, until it
/// expires. Opaque to the cache: the store that handed it out reads its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease(u64);

impl Lease {
    /// A lease with this store-chosen id (random, so a stale holder cannot
    /// release a lease that is no longer its own).
    pub fn new(id: u64) -> Lease {
        Lease(id)
    }

    /// The id the store chose.
    pub fn id(&self) -> u64 {
        self.0
    }
}

/// An in-process [`TokenStore`]: a map guarded by a mutex. Useful to share tokens
/// between several caches in one process, and as the model of a store.
#[derive(Default)]
pub struct MemoryStore {
    map: Mutex<HashMap<MintedFor, AccessToken>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// How many tokens it holds.
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("tokens", &self.len())
            .finish()
    }
}

impl TokenStore for MemoryStore {
    fn get<'a>(&'a self, key: &'a MintedFor) -> BoxFuture<'a, Option<AccessToken>> {
        let found = self.map.lock().ok().and_then(|m| m.get(key).cloned());
        Box::pin(async move { found })
    }

    fn put<'a>(&'a self, token: &'a AccessToken) -> BoxFuture<'a, ()> {
        if let Ok(mut m) = self.map.lock() {
            m.insert(token.minted_for(), token.clone());
        }
        Box::pin(async {})
    }

    fn remove<'a>(&'a self, token: &'a AccessToken) -> BoxFuture<'a, ()> {
        if let Ok(mut m) = self.map.lock() {
            if m.get(&token.minted_for())
                .is_some_and(|stored| stored.same_token(token))
            {
                m.remove(&token.minted_for());
            }
        }
        Box::pin(async {})
    }
}
