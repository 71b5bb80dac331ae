//! [`AccessToken`]: a token, its monotonic expiry and what it was minted for.

use std::fmt;
use std::time::Duration;

use http::HeaderValue;
use tokio::time::Instant;

use super::MintedFor;
use crate::Secret;

/// An access token from `POST /accesstoken/get`.
///
/// Holds the token once, as the ready `Authorization: Bearer <token>` header value
/// (marked sensitive; [`secret`](AccessToken::secret) borrows the token from it),
/// its expiry as a monotonic [`Instant`] measured from the moment *before* the token
/// request was sent, what it was minted for, and what `Preflight` checks of a token
/// (its shape and its `exp` claim), worked out once here instead of per request.
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
    /// `Bearer <token>`: the only copy of the token.
    authorization: HeaderValue,
    /// Whether the token passes `Preflight`'s shape rule (a JWT: three base64url
    /// segments), and its `exp` claim (0 when it has none).
    shape_ok: bool,
    exp: u64,
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
        // `value` (zeroized on drop) is not kept: the header value is the one copy.
        if raw.is_empty() {
            return Err(InvalidToken::Empty);
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidToken::NotHeaderSafe);
        }
        let mut buf = Vec::with_capacity(BEARER.len() + raw.len());
        buf.extend_from_slice(BEARER.as_bytes());
        buf.extend_from_slice(raw.as_bytes());
        let mut authorization = HeaderValue::from_maybe_shared(bytes::Bytes::from(buf))
            .map_err(|_| InvalidToken::NotHeaderSafe)?;
        authorization.set_sensitive(true);
        let expires_at = issued_at
            .checked_add(expires_in)
            .unwrap_or_else(|| issued_at + Duration::from_secs(365 * 24 * 3600));
        Ok(AccessToken {
            shape_ok: crate::preflight::authorization::token_shape(raw.as_bytes()).is_none(),
            exp: crate::preflight::authorization::jwt_exp(raw).unwrap_or(0),
            authorization,
            issued_at,
            expires_at,
            minted_for,
            key_set_id: 0,
        })
    }

    /// The token, borrowed from the `Authorization` value. Do not log it.
    pub fn secret(&self) -> TokenSecret<'_> {
        // Checked to be visible ASCII when the token was made.
        TokenSecret(
            std::str::from_utf8(&self.authorization.as_bytes()[BEARER.len()..]).unwrap_or(""),
        )
    }

    /// Whether the token is shaped like a JWT (what `Preflight`'s
    /// `MalformedAuthorization` rule checks of the token itself).
    pub(crate) fn shape_ok(&self) -> bool {
        self.shape_ok
    }

    /// The token's `exp` claim, in seconds since the epoch, if it is a JWT with one.
    pub(crate) fn exp(&self) -> Option<u64> {
        (self.exp != 0).then_some(self.exp)
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
        self.authorization.as_bytes() == other.authorization.as_bytes()
    }

    /// Whether `authorization` is this token's own `Authorization` value or a
    /// clone of it (the same bytes in memory, not merely equal bytes): how
    /// `Preflight` recognises a token `Auth` took from the cache without reading it.
    pub(crate) fn is_value_of(&self, authorization: &HeaderValue) -> bool {
        let (mine, theirs) = (self.authorization.as_bytes(), authorization.as_bytes());
        std::ptr::eq(mine, theirs)
    }
}

const BEARER: &str = "Bearer ";

/// An access token borrowed from an [`AccessToken`]: `Debug` is redacted.
///
/// ```
/// use std::time::Duration;
/// use tower_vipps::token::{AccessToken, MintedFor};
/// # use tower_vipps::{Environment, Secret};
/// # let minted_for = MintedFor {
/// #     environment: Environment::Test,
/// #     client_id: "client-id".into(),
/// #     subscription_key: Secret::new("sub-key").fingerprint(),
/// #     msn: None,
/// #     partner: false,
/// # };
/// let token = AccessToken::new("eyJ0.eyJ1.c2ln", Duration::from_secs(3600), minted_for).unwrap();
/// assert_eq!(token.secret().expose(), "eyJ0.eyJ1.c2ln");
/// assert_eq!(format!("{:?}", token.secret()), "TokenSecret([REDACTED])");
/// ```
#[derive(Clone, Copy)]
pub struct TokenSecret<'a>(&'a str);

impl<'a> TokenSecret<'a> {
    /// The token itself. Do not log it.
    pub fn expose(&self) -> &'a str {
        self.0
    }

    /// A short, stable fingerprint of the token that does not reveal it.
    pub fn fingerprint(&self) -> crate::Fingerprint {
        crate::Fingerprint::of(self.0.as_bytes())
    }
}

impl fmt::Debug for TokenSecret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret([REDACTED])")
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
