//! Access tokens: [`AccessToken`], the token endpoint call ([`TokenClient`]),
//! [`TokenCache`] (per key set and MSN, refresh ahead, one fetch at a time) and the
//! [`TokenStore`] trait.
//!
//! [`AuthLayer`](crate::auth::AuthLayer) uses all of this; use it directly to fetch
//! tokens yourself:
//!
//! ```no_run
//! # async fn run() -> Result<(), tower_vipps::VippsError> {
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use tower_vipps::token::{TokenCache, TokenClient, TokenRequest};
//! use tower_vipps::{Environment, KeySet, SystemInfo};
//!
//! # let http = tower::service_fn(|_r: http::Request<Full<Bytes>>| async {
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
//! # });
//! let keys = KeySet::merchant(Environment::Test, "123456".parse().unwrap(), "id", "secret", "sub")
//!     .unwrap();
//! let client = TokenClient::new(http); // any `Service<http::Request<B>>`, e.g. a hyper client
//! let cache = TokenCache::new();
//! let token = cache.get(&client, &TokenRequest::new(keys, None, SystemInfo::default())).await?;
//! assert!(token.authorization().is_sensitive());
//! # Ok(()) }
//! ```

use std::sync::Arc;

mod access_token;
mod cache;
mod fetch;
mod redact;
#[cfg(feature = "redis")]
mod redis;
mod store;

pub use access_token::{AccessToken, InvalidToken, TokenSecret};
pub(crate) use access_token::{Minter, Ticks};
pub(crate) use cache::{CacheKey, Fast, KeyHasherBuilder};
pub use cache::{TokenCache, TokenCacheBuilder};
pub use fetch::{TOKEN_PATH, TokenClient, TokenRequest};
#[cfg(feature = "redis")]
pub use redis::{RedisStats, RedisStore, RedisStoreBuilder, RedisStoreError};
pub use store::{Claim, Lease, MemoryStore, TokenStore};

use crate::{Environment, Fingerprint, KeySet, Msn};

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
/// [`TokenCache`] does. `Preflight` asks it to catch a token sent with
/// another subscription key, for another MSN or to another environment.
pub trait KnownTokens: Send + Sync + 'static {
    /// What this token was minted for, if it is known.
    fn minted_for(&self, token: &str) -> Option<MintedFor>;

    /// The token whose own `Authorization` value `authorization` is (a clone of
    /// [`AccessToken::authorization`], as `Auth` sets it), recognised by identity
    /// without reading the token: its shape and expiry, worked out once, spare
    /// `Preflight` every pass over the token. `keys` and `msn` are the key set whose
    /// subscription key the request carries and its `Merchant-Serial-Number`: the
    /// [`TokenCache`] looks at the one token it holds for them. `None` for any other
    /// value (one built by hand gets every check, through
    /// [`minted_for`](KnownTokens::minted_for)). The default recognises none.
    fn identify(
        &self,
        authorization: &http::HeaderValue,
        keys: &KeySet,
        msn: Option<Msn>,
    ) -> Option<Arc<AccessToken>> {
        let _ = (authorization, keys, msn);
        None
    }
}
