//! The cache key and its hasher.

/// The cache key: the key set (which fixes the environment, `client_id` and
/// subscription key) and the MSN the token was fetched for (0 for none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    pub(super) key_set: u64,
    pub(super) msn: u64,
}

/// The hasher of the cache's maps (keyed by process-local ids): foldhash's fast
/// one, seeded per map.
pub(crate) type KeyHasherBuilder = foldhash::fast::RandomState;
