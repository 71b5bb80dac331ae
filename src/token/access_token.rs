//! [`AccessToken`]: a token, its monotonic expiry and what it was minted for.

use std::fmt;
use std::time::Duration;

use http::HeaderValue;
use tokio::time::Instant;

use super::MintedFor;
use crate::Secret;

/// An access token from `POST /accesstoken/get`.
///
/// Holds the token as a [`Secret`], the ready `Authorization: Bearer <token>` header
/// value (marked sensitive), its expiry as a monotonic [`Instant`] measured from the
/// moment *before* the token request was sent, and what it was minted for.
/// `Debug` never shows the token.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tower_vipps::token::{AccessToken, MintedFor};
/// use tower_vipps::{Environment, Secret};
///
/// let minted_for = MintedFor {
///     environment: Environment::Test,
///     client_id: Arc::from("client-id"),
///     subscription_key: Secret::new("sub-key").fingerprint(),
///     msn: Some("123456".parse()?),
///     partner: false,
/// };
/// let token = AccessToken::new("eyJ0.eyJ1.c2ln", Duration::from_secs(3600), minted_for).unwrap();
/// assert_eq!(token.authorization().to_str().unwrap(), "Bearer eyJ0.eyJ1.c2ln");
/// assert!(token.authorization().is_sensitive());
/// assert!(!format!("{token:?}").contains("eyJ0"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct AccessToken {
    value: Secret,
    authorization: HeaderValue,
    issued_at: Instant,
    expires_at: Instant,
    minted_for: MintedFor,
    /// The [`KeySet::id`](crate::KeySet::id) it was fetched with (0 when unknown).
    pub(crate) key_set_id: u64,
}

/// Why a string cannot be used as an access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidToken {
    /// The token is empty.
    #[error("the access token is empty")]
    Empty,
    /// The token holds characters that cannot be sent in a header (the value is
    /// not shown).
    #[error("the access token holds characters that cannot be sent in an HTTP header")]
    NotHeaderSafe,
}

impl AccessToken {
    /// A token that expires `expires_in` from now.
    pub fn new(
        value: impl Into<Secret>,
        expires_in: Duration,
        minted_for: MintedFor,
    ) -> Result<AccessToken, InvalidToken> {
        AccessToken::issued(value.into(), Instant::now(), expires_in, minted_for)
    }

    /// A token whose lifetime `expires_in` counts from `issued_at`, the instant taken
    /// just before the token request was sent.
    pub fn issued(
        value: Secret,
        issued_at: Instant,
        expires_in: Duration,
        minted_for: MintedFor,
    ) -> Result<AccessToken, InvalidToken> {
        let raw = value.expose();
        if raw.is_empty() {
            return Err(InvalidToken::Empty);
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidToken::NotHeaderSafe);
        }
        let mut buf = Vec::with_capacity(7 + raw.len());
        buf.extend_from_slice(b"Bearer ");
        buf.extend_from_slice(raw.as_bytes());
        let mut authorization = HeaderValue::from_maybe_shared(bytes::Bytes::from(buf))
            .map_err(|_| InvalidToken::NotHeaderSafe)?;
        authorization.set_sensitive(true);
        let expires_at = issued_at
            .checked_add(expires_in)
            .unwrap_or_else(|| issued_at + Duration::from_secs(365 * 24 * 3600));
        Ok(AccessToken {
            value,
            authorization,
            issued_at,
            expires_at,
            minted_for,
            key_set_id: 0,
        })
    }

    /// The token. Do not log it.
    pub fn secret(&self) -> &Secret {
        &self.value
    }

    /// The `Authorization` header value, `Bearer <token>`, marked sensitive.
    pub fn authorization(&self) -> &HeaderValue {
        &self.authorization
    }

    /// When the token request that produced it was sent.
    pub fn issued_at(&self) -> Instant {
        self.issued_at
    }

    /// When it expires.
    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }

    /// How long it stays valid from `now` (zero when expired).
    pub fn remaining(&self, now: Instant) -> Duration {
        self.expires_at.saturating_duration_since(now)
    }

    /// Whether it has expired at `now`.
    pub fn is_expired_at(&self, now: Instant) -> bool {
        now >= self.expires_at
    }

    /// What it was minted for.
    pub fn minted_for(&self) -> &MintedFor {
        &self.minted_for
    }

    /// Whether two tokens are the same token (same value).
    pub fn same_token(&self, other: &AccessToken) -> bool {
        self.value.expose() == other.value.expose()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let now = Instant::now();
        f.debug_struct("AccessToken")
            .field("token", &"[REDACTED]")
            .field("minted_for", &self.minted_for)
            .field("remaining", &self.remaining(now))
            .finish()
    }
}
