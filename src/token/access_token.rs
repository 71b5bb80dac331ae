//! [`AccessToken`]: a token, its monotonic expiry and what it was minted for.

use std::fmt;
use std::time::Duration;

use http::HeaderValue;
use tokio::time::Instant;

use std::sync::Arc;

use super::MintedFor;
use crate::{Environment, Fingerprint, Msn, Secret};

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
// The fields `Auth` reads of a cached token on every request first, together.
#[repr(C)]
pub struct AccessToken {
    /// When it expires, as [`Ticks`] (a word instead of an [`Instant`]'s two).
    expires_at: Ticks,
    /// What the [`TokenCache`](super::TokenCache) keeps of a token it installs:
    /// when its background refresh is due, and the fetch that installed it (the
    /// generation a request carried, for a stale-token 401). Unused elsewhere.
    pub(crate) refresh_at: Ticks,
    pub(crate) generation: u64,
    /// `Bearer <token>`: the only copy of the token.
    authorization: HeaderValue,
    /// When the token request was sent.
    issued_at: Ticks,
    /// What it was minted for, but the MSN: shared by every token of one key set.
    minter: Arc<Minter>,
    msn: Option<Msn>,
    /// Its `exp` claim (0 when it has none; saturated at `u32::MAX`, the year 2106).
    exp: u32,
    /// Whether the token passes `Preflight`'s shape rule (a JWT: three base64url
    /// segments).
    shape_ok: bool,
}

/// What a token was minted for but the MSN, and the
/// [`KeySet::id`](crate::KeySet::id) it was fetched with (0 when unknown): one
/// per key set, shared by its tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Minter {
    pub(crate) environment: Environment,
    pub(crate) client_id: Arc<str>,
    pub(crate) subscription_key: Fingerprint,
    pub(crate) partner: bool,
    pub(crate) key_set_id: u64,
}

impl Minter {
    pub(crate) fn of(minted_for: &MintedFor, key_set_id: u64) -> Minter {
        Minter {
            environment: minted_for.environment,
            client_id: minted_for.client_id.clone(),
            subscription_key: minted_for.subscription_key,
            partner: minted_for.partner,
            key_set_id,
        }
    }

    /// Whether tokens of this minter and `msn` were minted for `minted_for`.
    pub(crate) fn mints(&self, msn: Option<Msn>, minted_for: &MintedFor) -> bool {
        self.environment == minted_for.environment
            && self.subscription_key == minted_for.subscription_key
            && self.partner == minted_for.partner
            && msn == minted_for.msn
            && *self.client_id == *minted_for.client_id
    }
}

/// A monotonic instant in one word: signed nanoseconds from a process-wide epoch
/// (±292 years around it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ticks(i64);

fn ticks_epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

impl Ticks {
    #[inline]
    pub(crate) fn of(at: Instant) -> Ticks {
        let (epoch, at) = (ticks_epoch(), at.into_std());
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        match at.checked_duration_since(epoch) {
            Some(after) => Ticks(nanos(after)),
            None => Ticks(-nanos(epoch.duration_since(at))),
        }
    }

    #[inline]
    pub(crate) fn now() -> Ticks {
        Ticks::of(Instant::now())
    }

    pub(crate) fn instant(self) -> Instant {
        let epoch = ticks_epoch();
        let std = if self.0 >= 0 {
            epoch.checked_add(Duration::from_nanos(self.0.unsigned_abs()))
        } else {
            epoch.checked_sub(Duration::from_nanos(self.0.unsigned_abs()))
        };
        Instant::from_std(std.unwrap_or(epoch))
    }

    pub(crate) fn saturating_sub(self, d: Duration) -> Ticks {
        Ticks(
            self.0
                .saturating_sub(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        )
    }

    /// Whole seconds since `earlier` (0 when it is not earlier).
    #[inline]
    pub(crate) fn secs_since(self, earlier: Ticks) -> u64 {
        (self.0.saturating_sub(earlier.0).max(0) as u64) / 1_000_000_000
    }
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
        let expires_at = crate::timeout::saturating_add(issued_at, expires_in);
        let expires_at = Ticks::of(expires_at);
        Ok(AccessToken {
            shape_ok: crate::preflight::authorization::token_shape(raw.as_bytes()).is_none(),
            exp: crate::preflight::authorization::jwt_exp(raw)
                .map_or(0, |exp| u32::try_from(exp).unwrap_or(u32::MAX)),
            authorization,
            issued_at: Ticks::of(issued_at),
            expires_at,
            refresh_at: expires_at,
            generation: 0,
            msn: minted_for.msn,
            minter: Arc::new(Minter::of(&minted_for, 0)),
        })
    }

    /// The shared [`Minter`] of the key set it was fetched with, once it is known
    /// to mint what this token was minted for.
    pub(crate) fn set_minter(&mut self, minter: Arc<Minter>) {
        debug_assert!(minter.mints(self.msn, &self.minted_for()));
        self.minter = minter;
    }

    /// The [`KeySet::id`](crate::KeySet::id) it was fetched with (0 when unknown).
    pub(crate) fn key_set_id(&self) -> u64 {
        self.minter.key_set_id
    }

    /// The MSN it was minted for.
    pub(crate) fn msn(&self) -> Option<Msn> {
        self.msn
    }

    /// Whether it was minted for `minted_for` (without building a [`MintedFor`]).
    pub(crate) fn is_minted_for(&self, minted_for: &MintedFor) -> bool {
        self.minter.mints(self.msn, minted_for)
    }

    pub(crate) fn expires_ticks(&self) -> Ticks {
        self.expires_at
    }

    pub(crate) fn issued_ticks(&self) -> Ticks {
        self.issued_at
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
        (self.exp != 0).then_some(u64::from(self.exp))
    }

    /// The `Authorization` header value, `Bearer <token>`, marked sensitive.
    pub fn authorization(&self) -> &HeaderValue {
        &self.authorization
    }

    /// When the token request that produced it was sent.
    pub fn issued_at(&self) -> Instant {
        self.issued_at.instant()
    }

    /// When it expires.
    pub fn expires_at(&self) -> Instant {
        self.expires_at.instant()
    }

    /// How long it stays valid from `now` (zero when expired).
    pub fn remaining(&self, now: Instant) -> Duration {
        self.expires_at().saturating_duration_since(now)
    }

    /// Whether it has expired at `now`.
    pub fn is_expired_at(&self, now: Instant) -> bool {
        Ticks::of(now) >= self.expires_at
    }

    /// What it was minted for. Built on each call (a token keeps what its key set's
    /// tokens share once): keep the result rather than call it again.
    pub fn minted_for(&self) -> MintedFor {
        let m = &*self.minter;
        MintedFor {
            environment: m.environment,
            client_id: m.client_id.clone(),
            subscription_key: m.subscription_key,
            msn: self.msn,
            partner: m.partner,
        }
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
            .field("minted_for", &self.minted_for())
            .field("remaining", &self.remaining(now))
            .finish()
    }
}
