//! [`TokenStore`]: where tokens live beyond one process's cache.

use std::collections::HashMap;
use std::sync::Mutex;

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
/// ([`AccessToken::remaining`]); it must never log the token.
pub trait TokenStore: Send + Sync + 'static {
    /// The stored token for `key`, if any.
    fn get<'a>(&'a self, key: &'a MintedFor) -> BoxFuture<'a, Option<AccessToken>>;
    /// Stores `token` under its [`MintedFor`].
    fn put<'a>(&'a self, token: &'a AccessToken) -> BoxFuture<'a, ()>;
    /// Removes `token`, only if it is still the one stored for its key.
    fn remove<'a>(&'a self, token: &'a AccessToken) -> BoxFuture<'a, ()>;
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
            m.insert(token.minted_for().clone(), token.clone());
        }
        Box::pin(async {})
    }

    fn remove<'a>(&'a self, token: &'a AccessToken) -> BoxFuture<'a, ()> {
        if let Ok(mut m) = self.map.lock() {
            if m.get(token.minted_for())
                .is_some_and(|stored| stored.same_token(token))
            {
                m.remove(token.minted_for());
            }
        }
        Box::pin(async {})
    }
}
