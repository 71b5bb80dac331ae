//! The index of the tokens the cache holds, by value: [`KnownTokens`] for `Preflight`.

use std::hash::BuildHasher;
use std::sync::Arc;

use super::{Inner, TokenCache};
use crate::token::{AccessToken, KnownTokens, MintedFor};
use crate::{KeySet, Msn};

impl Inner {
    pub(super) fn token_hash(&self, token: &str) -> u64 {
        self.token_hasher.hash_one(token)
    }

    pub(super) fn index(&self, token: &Arc<AccessToken>) {
        self.tokens
            .insert(self.token_hash(token.secret().expose()), token.clone());
    }

    pub(super) fn unindex(&self, token: &AccessToken) {
        let hash = self.token_hash(token.secret().expose());
        self.tokens
            .remove_if(&hash, |_, indexed| indexed.same_token(token));
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
