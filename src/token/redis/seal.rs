//! A token's value in Redis: a version byte, the token's fingerprint (what
//! compare-and-delete compares), and the token, sealed (XChaCha20-Poly1305, the
//! Redis key as associated data) or in clear.

use std::time::Duration;

use chacha20poly1305::XNonce;
use chacha20poly1305::aead::{Aead, Generate, Payload};
use sha2::{Digest, Sha256};

use super::RedisStore;
use crate::Secret;
use crate::token::{AccessToken, MintedFor};

const SEALED: u8 = 1;
const PLAIN: u8 = 0;
/// Version byte and token fingerprint: what compare-and-delete compares.
const HEAD: usize = 9;
const NONCE: usize = 24;
/// The longest token a value may hold (a token is a few KiB at most).
const MAX_VALUE: usize = 64 * 1024;

impl RedisStore {
    fn fingerprint(token: &AccessToken) -> [u8; 8] {
        let digest = Sha256::digest(token.secret().expose().as_bytes());
        let mut fp = [0u8; 8];
        fp.copy_from_slice(&digest[..8]);
        fp
    }

    pub(super) fn head(&self, token: &AccessToken) -> Vec<u8> {
        let mut head = Vec::with_capacity(HEAD);
        head.push(if self.inner.cipher.is_some() {
            SEALED
        } else {
            PLAIN
        });
        head.extend_from_slice(&Self::fingerprint(token));
        head
    }

    pub(super) fn seal(&self, redis_key: &str, token: &AccessToken) -> Option<Vec<u8>> {
        let mut value = self.head(token);
        let raw = token.secret().expose().as_bytes();
        match &self.inner.cipher {
            None => value.extend_from_slice(raw),
            Some(cipher) => {
                let nonce = XNonce::generate();
                let sealed = cipher
                    .encrypt(
                        &nonce,
                        Payload {
                            msg: raw,
                            aad: redis_key.as_bytes(),
                        },
                    )
                    .ok()?;
                value.extend_from_slice(&nonce);
                value.extend_from_slice(&sealed);
            }
        }
        Some(value)
    }

    fn open(&self, redis_key: &str, value: &[u8]) -> Option<Secret> {
        if value.len() > MAX_VALUE {
            return None;
        }
        let (version, rest) = value.split_first()?;
        let body = rest.get(HEAD - 1..)?;
        let raw = match (&self.inner.cipher, *version) {
            (None, PLAIN) => body.to_vec(),
            (Some(cipher), SEALED) => {
                let (nonce, sealed) = body.split_at_checked(NONCE)?;
                let nonce = XNonce::try_from(nonce).ok()?;
                cipher
                    .decrypt(
                        &nonce,
                        Payload {
                            msg: sealed,
                            aad: redis_key.as_bytes(),
                        },
                    )
                    .ok()?
            }
            _ => return None,
        };
        String::from_utf8(raw).ok().map(Secret::new)
    }

    pub(super) fn token(
        &self,
        redis_key: &str,
        key: &MintedFor,
        value: &[u8],
        ttl_ms: u64,
    ) -> Option<AccessToken> {
        let token = self.open(redis_key, value);
        if token.is_none() {
            tracing::debug!(
                "redis token store: a value did not open (another sealing key?): a miss"
            );
        }
        AccessToken::new(token?, Duration::from_millis(ttl_ms), key.clone()).ok()
    }
}
