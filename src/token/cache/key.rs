//! The cache key and its hasher.

use std::hash::{BuildHasher, Hasher};

/// The cache key: the key set (which fixes the environment, `client_id` and
/// subscription key) and the MSN the token was fetched for (0 for none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    pub(super) key_set: u64,
    pub(super) msn: u64,
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
