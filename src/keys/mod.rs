//! API keys: [`Secret`], [`KeySet`] (merchant or partner keys) and [`Keyring`]
//! (in `keyring.rs`: the lookup by environment and MSN, and its builder).

mod keyring;

pub(crate) use keyring::env_index;
pub use keyring::{Keyring, KeyringBuilder, Lookup};

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::{Environment, Msn};

/// A set of MSNs, read on every request for a listed partner's MSN: a fast
/// seeded hasher, not SipHash.
pub(crate) type MsnSet = HashSet<Msn, foldhash::fast::RandomState>;

/// A secret string: a client secret, a subscription key or an access token.
///
/// Its `Debug` is redacted, it has no `Display`, and its memory is zeroized on
/// drop (it wraps [`secrecy::SecretString`]). Read it with [`Secret::expose`].
///
/// ```
/// use tower_vipps::Secret;
///
/// let s = Secret::new("very-secret");
/// assert_eq!(format!("{s:?}"), "Secret([REDACTED])");
/// assert_eq!(s.expose(), "very-secret");
/// ```
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(SecretString::from(value.into()))
    }

    /// The secret itself. Do not log it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// A header value holding the secret, marked sensitive, or `None` if the secret
    /// is not a valid header value.
    pub fn to_header_value(&self) -> Option<HeaderValue> {
        let mut value = HeaderValue::from_str(self.expose()).ok()?;
        value.set_sensitive(true);
        Some(value)
    }

    /// A short, stable fingerprint that identifies the secret without revealing
    /// it (the first 8 bytes of its SHA-256).
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(self.expose().as_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

/// A fingerprint of a secret: the first 8 bytes of its SHA-256, enough to tell two
/// keys apart, not enough to recover either. Shown as `sha256:` and 8 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(u64);

impl Fingerprint {
    /// The fingerprint of some bytes.
    pub fn of(bytes: &[u8]) -> Fingerprint {
        let digest = Sha256::digest(bytes);
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Fingerprint(u64::from_be_bytes(first))
    }

    /// All 64 bits (shared stores key by them; never shown).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn bits(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only 32 bits are shown: enough to compare by eye.
        write!(f, "sha256:{:08x}", self.0 >> 32)
    }
}

/// Whether a [`KeySet`] belongs to one merchant sales unit or to a partner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyScope {
    /// Merchant keys: valid for exactly this MSN.
    Merchant(Msn),
    /// Partner keys: valid for every MSN connected to the partner. When the
    /// connected MSNs are listed, requests for other MSNs are refused before sending.
    Partner {
        /// The connected MSNs, when known.
        connected: Option<Arc<MsnSet>>,
    },
}

/// The `Vipps-System-*` headers sent with every request.
///
/// Defaults: system and plugin `tower-vipps` with this crate's version. Set the
/// system to your own: it helps Vipps MobilePay support find your requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemInfo {
    /// `Vipps-System-Name`.
    pub name: HeaderValue,
    /// `Vipps-System-Version`.
    pub version: HeaderValue,
    /// `Vipps-System-Plugin-Name`.
    pub plugin_name: HeaderValue,
    /// `Vipps-System-Plugin-Version`.
    pub plugin_version: HeaderValue,
}

impl Default for SystemInfo {
    fn default() -> Self {
        let name = HeaderValue::from_static("tower-vipps");
        let version = HeaderValue::from_static(env!("CARGO_PKG_VERSION"));
        SystemInfo {
            name: name.clone(),
            version: version.clone(),
            plugin_name: name,
            plugin_version: version,
        }
    }
}

/// Errors building a [`KeySet`] or a [`Keyring`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A key field is empty.
    #[error("the {field} of the {environment} key set is empty")]
    Empty {
        /// Which field.
        field: &'static str,
        /// The key set's environment.
        environment: Environment,
    },
    /// A key field holds characters that cannot be sent in an HTTP header
    /// (the value is not shown).
    #[error(
        "the {field} of the {environment} key set holds characters that cannot be sent in an HTTP header (control characters or non-ASCII); check for a stray newline"
    )]
    NotHeaderSafe {
        /// Which field.
        field: &'static str,
        /// The key set's environment.
        environment: Environment,
    },
    /// Two merchant key sets for the same MSN and environment.
    #[error("two merchant key sets for MSN {msn} in {environment}")]
    DuplicateMerchant {
        /// The MSN.
        msn: Msn,
        /// The environment.
        environment: Environment,
    },
    /// Two partner key sets in one environment, and at least one does not list its
    /// MSNs: the keyring could not tell which one to use.
    #[error(
        "more than one partner key set in {environment}, and not all list their connected MSNs; list them with `KeySet::connected_msns` so each MSN has one key set"
    )]
    AmbiguousPartner {
        /// The environment.
        environment: Environment,
    },
    /// An MSN listed by two partner key sets.
    #[error("MSN {msn} is listed by two partner key sets in {environment}")]
    DuplicatePartnerMsn {
        /// The MSN.
        msn: Msn,
        /// The environment.
        environment: Environment,
    },
    /// Partner keys for the test environment. Partner functionality is not
    /// available in the test environment: partners test with merchant keys of a
    /// test sales unit, and use their partner keys in production only
    /// (<https://developer.vippsmobilepay.com/docs/partner/partner-keys/>).
    #[error(
        "partner keys for the test environment: partner functionality is not available in test, so the test environment answers them as unknown keys; use the merchant keys of your test sales unit in test and the partner keys in production (https://developer.vippsmobilepay.com/docs/partner/partner-keys/)"
    )]
    PartnerKeysInTest,
    /// A `Vipps-System-*` value is not a valid header value.
    #[error("the {field} is not a valid header value")]
    InvalidSystemHeader {
        /// Which header.
        field: &'static str,
    },
}

struct KeySetInner {
    environment: Environment,
    scope: KeyScope,
    /// Shared with the [`MintedFor`](crate::token::MintedFor) of every token.
    client_id: std::sync::Arc<str>,
    client_secret: Secret,
    subscription_key: Secret,
    fingerprint: Fingerprint,
    id: u64,
    client_id_header: HeaderValue,
    client_secret_header: HeaderValue,
    subscription_key_header: HeaderValue,
    /// What its tokens are minted for (but the MSN), shared by all of them.
    minter: Arc<crate::token::Minter>,
}

/// One set of API keys (`client_id`, `client_secret`, `Ocp-Apim-Subscription-Key`),
/// bound to one [`Environment`]: merchant keys for one MSN, or partner keys for
/// many. Cheap to clone.
///
/// ```
/// use tower_vipps::{Environment, KeySet, Msn};
///
/// let msn: Msn = "123456".parse()?;
/// let keys = KeySet::merchant(Environment::Test, msn, "client-id", "client-secret", "sub-key")?;
/// assert_eq!(keys.environment(), Environment::Test);
/// assert!(!format!("{keys:?}").contains("client-secret"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct KeySet {
    inner: Arc<KeySetInner>,
}

impl KeySet {
    /// Merchant keys for one sales unit.
    pub fn merchant(
        environment: Environment,
        msn: Msn,
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
        subscription_key: impl Into<Secret>,
    ) -> Result<KeySet, KeyError> {
        KeySet::build(
            environment,
            KeyScope::Merchant(msn),
            client_id.into(),
            client_secret.into(),
            subscription_key.into(),
        )
    }

    /// Partner keys, valid for every sales unit connected to the partner, in
    /// production. Partner keys for [`Environment::Test`] are refused with
    /// [`KeyError::PartnerKeysInTest`]: partner functionality is not available in
    /// the test environment, where partners use a test sales unit's merchant keys
    /// (<https://developer.vippsmobilepay.com/docs/partner/partner-keys/>).
    ///
    /// ```
    /// use tower_vipps::{Environment, KeyError, KeySet};
    ///
    /// let keys = KeySet::partner(Environment::Production, "p-id", "p-secret", "p-key")?;
    /// assert!(keys.is_partner());
    /// assert_eq!(
    ///     KeySet::partner(Environment::Test, "p-id", "p-secret", "p-key").unwrap_err(),
    ///     KeyError::PartnerKeysInTest,
    /// );
    /// # Ok::<(), KeyError>(())
    /// ```
    pub fn partner(
        environment: Environment,
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
        subscription_key: impl Into<Secret>,
    ) -> Result<KeySet, KeyError> {
        KeySet::build(
            environment,
            KeyScope::Partner { connected: None },
            client_id.into(),
            client_secret.into(),
            subscription_key.into(),
        )
    }

    /// Lists the MSNs connected to these partner keys, so that a request for any
    /// other MSN is refused before it is sent. No effect on merchant keys.
    pub fn connected_msns(self, msns: impl IntoIterator<Item = Msn>) -> KeySet {
        let inner = match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner,
            Err(shared) => KeySetInner {
                environment: shared.environment,
                scope: shared.scope.clone(),
                client_id: shared.client_id.clone(),
                client_secret: shared.client_secret.clone(),
                subscription_key: shared.subscription_key.clone(),
                fingerprint: shared.fingerprint,
                id: shared.id,
                client_id_header: shared.client_id_header.clone(),
                client_secret_header: shared.client_secret_header.clone(),
                subscription_key_header: shared.subscription_key_header.clone(),
                minter: shared.minter.clone(),
            },
        };
        let scope = match inner.scope {
            KeyScope::Partner { .. } => KeyScope::Partner {
                connected: Some(Arc::new(msns.into_iter().collect())),
            },
            merchant => merchant,
        };
        // Another scope is another key set: a new id, so that nothing known of
        // the old one (a token cache entry known to be covered) applies to it.
        let id = next_id();
        let minter = Arc::new(crate::token::Minter {
            key_set_id: id,
            ..crate::token::Minter::clone(&inner.minter)
        });
        KeySet {
            inner: Arc::new(KeySetInner {
                scope,
                minter,
                id,
                ..inner
            }),
        }
    }

    fn build(
        environment: Environment,
        scope: KeyScope,
        client_id: String,
        client_secret: Secret,
        subscription_key: Secret,
    ) -> Result<KeySet, KeyError> {
        if environment == Environment::Test && matches!(scope, KeyScope::Partner { .. }) {
            return Err(KeyError::PartnerKeysInTest);
        }
        let header = |field: &'static str, value: &str| {
            if value.trim().is_empty() {
                return Err(KeyError::Empty { field, environment });
            }
            let mut h = HeaderValue::from_str(value)
                .ok()
                .filter(|_| value.bytes().all(|b| b.is_ascii_graphic()))
                .ok_or(KeyError::NotHeaderSafe { field, environment })?;
            h.set_sensitive(true);
            Ok(h)
        };
        let client_id_header = header("client_id", &client_id)?;
        let client_secret_header = header("client_secret", client_secret.expose())?;
        let subscription_key_header = header("subscription key", subscription_key.expose())?;
        let client_id: Arc<str> = client_id.into();
        let id = next_id();
        let minter = Arc::new(crate::token::Minter {
            environment,
            client_id: client_id.clone(),
            subscription_key: subscription_key.fingerprint(),
            partner: matches!(scope, KeyScope::Partner { .. }),
            key_set_id: id,
        });
        Ok(KeySet {
            inner: Arc::new(KeySetInner {
                environment,
                scope,
                client_id,
                minter,
                fingerprint: subscription_key.fingerprint(),
                client_secret,
                subscription_key,
                id,
                client_id_header,
                client_secret_header,
                subscription_key_header,
            }),
        })
    }

    /// The environment these keys belong to.
    pub fn environment(&self) -> Environment {
        self.inner.environment
    }

    /// Merchant or partner, and for which MSNs.
    pub fn scope(&self) -> &KeyScope {
        &self.inner.scope
    }

    /// `true` for partner keys.
    pub fn is_partner(&self) -> bool {
        matches!(self.inner.scope, KeyScope::Partner { .. })
    }

    /// The merchant MSN, for merchant keys.
    pub fn merchant_msn(&self) -> Option<Msn> {
        match self.inner.scope {
            KeyScope::Merchant(msn) => Some(msn),
            KeyScope::Partner { .. } => None,
        }
    }

    /// Whether these keys may act for `msn`: the merchant's own MSN, or for partner
    /// keys any MSN (or, when listed, a connected one).
    pub fn covers(&self, msn: Msn) -> bool {
        match &self.inner.scope {
            KeyScope::Merchant(own) => *own == msn,
            KeyScope::Partner { connected: None } => true,
            KeyScope::Partner {
                connected: Some(set),
            } => set.contains(&msn),
        }
    }

    /// The `client_id` (not a secret, but not shown in `Debug` in full either).
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The `client_id`, shared (a token's `MintedFor` holds it without a copy).
    pub(crate) fn client_id_shared(&self) -> std::sync::Arc<str> {
        self.inner.client_id.clone()
    }

    /// The `client_secret`.
    pub fn client_secret(&self) -> &Secret {
        &self.inner.client_secret
    }

    /// The subscription key (`Ocp-Apim-Subscription-Key`).
    pub fn subscription_key(&self) -> &Secret {
        &self.inner.subscription_key
    }

    /// The fingerprint of the subscription key.
    pub fn subscription_key_fingerprint(&self) -> Fingerprint {
        self.inner.fingerprint
    }

    /// What its tokens are minted for (but the MSN), shared by all of them.
    pub(crate) fn minter(&self) -> &Arc<crate::token::Minter> {
        &self.inner.minter
    }

    /// A process-unique id of this key set, stable across clones.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The `client_id` header value (sensitive).
    pub fn client_id_header(&self) -> &HeaderValue {
        &self.inner.client_id_header
    }

    /// The `client_secret` header value (sensitive).
    pub fn client_secret_header(&self) -> &HeaderValue {
        &self.inner.client_secret_header
    }

    /// The `Ocp-Apim-Subscription-Key` header value (sensitive).
    pub fn subscription_key_header(&self) -> &HeaderValue {
        &self.inner.subscription_key_header
    }
}

fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn short_client_id(id: &str) -> String {
    let shown: String = id.chars().take(4).collect();
    format!("{shown}…")
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("KeySet");
        d.field("environment", &self.inner.environment);
        match &self.inner.scope {
            KeyScope::Merchant(msn) => d.field("merchant", msn),
            KeyScope::Partner { connected } => d.field(
                "partner_connected_msns",
                &connected.as_ref().map(|set| set.len()),
            ),
        };
        d.field("client_id", &short_client_id(&self.inner.client_id))
            .field("subscription_key", &self.inner.fingerprint)
            .finish_non_exhaustive()
    }
}

impl PartialEq for KeySet {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner) || self.inner.id == other.inner.id
    }
}

impl Eq for KeySet {}

#[cfg(test)]
mod tests {
    use super::*;

    fn msn(s: &str) -> Msn {
        s.parse().unwrap()
    }

    #[test]
    fn lookup_merchant_and_partner() {
        let keyring = Keyring::builder()
            .merchant(
                Environment::Test,
                msn("111111"),
                "m-id",
                "m-secret",
                "m-key",
            )
            .merchant(
                Environment::Production,
                msn("111111"),
                "pm-id",
                "pm-secret",
                "pm-key",
            )
            .key_set(
                KeySet::partner(Environment::Production, "p-id", "p-secret", "p-key")
                    .unwrap()
                    .connected_msns([msn("222222"), msn("333333")]),
            )
            .build()
            .unwrap();
        let found = keyring
            .find(Environment::Test, Some(msn("111111")))
            .unwrap();
        assert_eq!(found.client_id(), "m-id");
        // The test environment's only key set serves a request without an MSN.
        assert_eq!(
            keyring.find(Environment::Test, None).unwrap().client_id(),
            "m-id"
        );
        let found = keyring
            .find(Environment::Production, Some(msn("111111")))
            .unwrap();
        assert_eq!(found.client_id(), "pm-id");
        let found = keyring
            .find(Environment::Production, Some(msn("222222")))
            .unwrap();
        assert_eq!(found.client_id(), "p-id");
        assert!(matches!(
            keyring.lookup(Environment::Production, Some(msn("444444"))),
            Lookup::NotConnected(_)
        ));
        assert!(matches!(
            keyring.lookup(Environment::Test, Some(msn("222222"))),
            Lookup::NoKeys
        ));
        assert!(matches!(
            keyring.lookup(Environment::Production, None),
            Lookup::MsnRequired
        ));
        // Partner keys without a list serve any MSN.
        let open = Keyring::builder()
            .partner(Environment::Production, "pp-id", "pp-secret", "pp-key")
            .build()
            .unwrap();
        let found = open
            .find(Environment::Production, Some(msn("999999")))
            .unwrap();
        assert_eq!(found.client_id(), "pp-id");
        assert!(matches!(
            open.lookup(Environment::Production, None),
            Lookup::MsnRequired
        ));
    }

    #[test]
    fn sole_merchant_without_msn() {
        let keyring = Keyring::builder()
            .merchant(
                Environment::Test,
                msn("111111"),
                "m-id",
                "m-secret",
                "m-key",
            )
            .build()
            .unwrap();
        assert!(keyring.find(Environment::Test, None).is_some());
        assert!(matches!(
            keyring.lookup(Environment::Production, None),
            Lookup::NoKeys
        ));
        assert!(matches!(
            keyring.lookup(Environment::Production, Some(msn("111111"))),
            Lookup::NoKeys
        ));
    }

    #[test]
    fn bad_keys_are_typed_errors() {
        let err = KeySet::merchant(Environment::Test, msn("1"), "id", "", "k").unwrap_err();
        assert!(matches!(
            err,
            KeyError::Empty {
                field: "client_secret",
                ..
            }
        ));
        let err = KeySet::merchant(Environment::Test, msn("1"), "id", "s\n", "k").unwrap_err();
        assert!(matches!(err, KeyError::NotHeaderSafe { .. }));
        assert!(!err.to_string().contains("s\n"));
        let err = Keyring::builder()
            .merchant(Environment::Test, msn("1"), "a", "b", "c")
            .merchant(Environment::Test, msn("1"), "a", "b", "c")
            .build()
            .unwrap_err();
        assert!(matches!(err, KeyError::DuplicateMerchant { .. }));
        let err = Keyring::builder()
            .partner(Environment::Production, "a", "b", "c")
            .partner(Environment::Production, "d", "e", "f")
            .build()
            .unwrap_err();
        assert!(matches!(err, KeyError::AmbiguousPartner { .. }));
        // Partner functionality is not available in the test environment.
        let err = Keyring::builder()
            .partner(Environment::Test, "a", "b", "c")
            .build()
            .unwrap_err();
        assert_eq!(err, KeyError::PartnerKeysInTest);
        assert!(err.to_string().contains("developer.vippsmobilepay.com"));
    }

    #[test]
    fn debug_redacts() {
        let keys = KeySet::merchant(
            Environment::Test,
            msn("123456"),
            "0f9c1a2b-client",
            "TOPSECRETclientsecret",
            "SUBKEYabcdef0123456789",
        )
        .unwrap();
        let out = format!(
            "{keys:?} {:?}",
            Keyring::builder().key_set(keys.clone()).build().unwrap()
        );
        assert!(!out.contains("TOPSECRET"));
        assert!(!out.contains("SUBKEY"));
        assert!(!out.contains("0f9c1a2b-client"));
        assert!(keys.subscription_key_header().is_sensitive());
        assert!(keys.client_secret_header().is_sensitive());
    }
}
