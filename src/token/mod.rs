//! Access tokens.

use std::sync::Arc;

use crate::{Environment, Fingerprint, Msn};

/// What an access token was minted for: the environment, the key set (its
/// `client_id` and subscription key fingerprint) and the MSN, or a partner.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MintedFor {
    /// The environment of the token endpoint.
    pub environment: Environment,
    /// The `client_id` of the key set.
    pub client_id: Arc<str>,
    /// The fingerprint of the subscription key the token was fetched with.
    pub subscription_key: Fingerprint,
    /// The MSN for merchant keys (and for partner keys fetched with an MSN header).
    pub msn: Option<Msn>,
    /// `true` when the token was fetched with partner keys.
    pub partner: bool,
}

/// Something that knows which tokens it minted, and for what: the
/// [`TokenCache`](crate::token) does. `Preflight` asks it to catch a token sent with
/// another subscription key, for another MSN or to another environment.
pub trait KnownTokens: Send + Sync + 'static {
    /// What this token was minted for, if it is known.
    fn minted_for(&self, token: &str) -> Option<MintedFor>;
}
