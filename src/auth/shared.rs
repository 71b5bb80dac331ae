//! What every clone of [`Auth`] shares ([`Core`]: the keys, their index and the
//! header templates) and what a busy clone keeps of its own ([`Own`]).

use super::*;

/// What every clone of an [`Auth`] shares.
#[derive(Clone)]
pub(super) struct Core {
    pub(super) keyring: Keyring,
    pub(super) cache: TokenCache,
    pub(super) replay: bool,
    /// Merchant MSNs -> key set, with a fast hasher (a few entries: no per-MSN
    /// map of the partner's MSNs, which the keyring and the token cache hold).
    merchants: HashMap<u64, KeySet, KeyHasherBuilder>,
    /// The partner keys of each environment, if one key set serves it.
    partners: [Partner; 2],
    /// Whether the keyring knows only the official hosts (a fast path).
    pub(super) official_hosts_only: bool,
    /// The start of every outgoing header map, cloned (no hashing, no growing): the
    /// keyring's `Vipps-System-*` headers and empty placeholders for
    /// `Authorization`, `Ocp-Apim-Subscription-Key` and `Merchant-Serial-Number`,
    /// which [`outgoing`] always replaces (or removes) before the request is sent;
    /// template `i` also has a placeholder for each [`headers::COMMON`] header `j`
    /// with bit `j` of `i` set, filled from the request's own.
    pub(super) templates: [HeaderMap; 1 << headers::COMMON_LEN],
}

/// The most distinct `Vipps-System-*` values [`interned`] keeps (a process builds
/// keyrings with a handful; one building them from unbounded input stays bounded).
const INTERNED_CAP: usize = 256;

/// `value` backed by static bytes, so that cloning it into every request touches
/// no reference count: a shared count is one cache line that every worker writes
/// on every request. For the `Vipps-System-*` values, which are not secret: each
/// distinct value is leaked once per process (a keyring built again with the same
/// values reuses them), at most [`INTERNED_CAP`] of them; past that a value is
/// shared as it is.
pub(super) fn interned(value: &HeaderValue) -> HeaderValue {
    static INTERNED: Mutex<Vec<&'static [u8]>> = Mutex::new(Vec::new());
    let Ok(mut interned) = INTERNED.lock() else {
        return value.clone();
    };
    let bytes = match interned.iter().find(|b| **b == value.as_bytes()) {
        Some(bytes) => *bytes,
        None if interned.len() >= INTERNED_CAP => return value.clone(),
        None => {
            let bytes: &'static [u8] = Box::leak(value.as_bytes().into());
            interned.push(bytes);
            bytes
        }
    };
    let mut copy = HeaderValue::from_maybe_shared(bytes::Bytes::from_static(bytes))
        .unwrap_or_else(|_| value.clone());
    copy.set_sensitive(value.is_sensitive());
    copy
}

/// The partner keys of an environment, as [`Core::find`] uses them.
#[derive(Clone)]
enum Partner {
    None,
    /// Keys without an MSN list: every MSN.
    Open(KeySet),
    /// The one key set that lists its MSNs: whether it covers an MSN is known
    /// from the token cache (a cached token for the MSN was fetched once it was
    /// checked), or by asking the key set.
    Listed(KeySet),
    /// Several key sets that list their MSNs: the keyring finds the one.
    Several,
}

fn index_key(env: Environment, msn: Msn) -> u64 {
    (msn.key() << 1) | u64::from(env == Environment::Production)
}

impl Core {
    pub(super) fn new(keyring: Keyring, cache: TokenCache, replay: bool) -> Core {
        let mut merchants = HashMap::with_hasher(KeyHasherBuilder::default());
        let mut partners = [Partner::None, Partner::None];
        for keys in keyring.key_sets() {
            match keys.scope() {
                KeyScope::Merchant(msn) => {
                    merchants.insert(index_key(keys.environment(), *msn), keys.clone());
                }
                KeyScope::Partner { connected } => {
                    let slot = &mut partners[crate::keys::env_index(keys.environment())];
                    *slot = match (&*slot, connected) {
                        (Partner::None, None) => Partner::Open(keys.clone()),
                        (Partner::None, Some(_)) => Partner::Listed(keys.clone()),
                        // The keyring refuses an open partner beside another one.
                        _ => Partner::Several,
                    };
                }
            }
        }
        let official_hosts_only = keyring.hosts().custom().next().is_none();
        let templates = headers::templates(keyring.system());
        Core {
            templates,
            official_hosts_only,
            keyring,
            cache,
            replay,
            merchants,
            partners,
        }
    }

    /// The environment of a request's host.
    #[inline]
    pub(super) fn environment_of(&self, uri: &http::Uri) -> Option<Environment> {
        if self.official_hosts_only {
            // The common case: an official host without port or user info.
            if let Some(authority) = uri.authority() {
                let authority = authority.as_str();
                for env in Environment::ALL {
                    if authority.eq_ignore_ascii_case(env.host()) {
                        return Some(env);
                    }
                }
            }
        }
        self.keyring.hosts().environment_of(uri)
    }

    /// The key set for an MSN, without cloning: the merchant's own keys first,
    /// then the environment's partner keys, and whether they are known to cover
    /// the MSN (`false`: only if the token cache says so or the key set does).
    /// `None`: ask the keyring.
    #[inline]
    pub(super) fn find(&self, env: Environment, msn: Msn) -> Option<(&KeySet, bool)> {
        if !self.merchants.is_empty() {
            if let Some(keys) = self.merchants.get(&index_key(env, msn)) {
                return Some((keys, true));
            }
        }
        match &self.partners[crate::keys::env_index(env)] {
            Partner::Open(keys) => Some((keys, true)),
            Partner::Listed(keys) => Some((keys, false)),
            Partner::None | Partner::Several => None,
        }
    }
}

/// [`Core`], a clone of the inner service to replay through, and the token source.
pub(super) struct Shared<S, T> {
    pub(super) core: Arc<Core>,
    pub(super) proto: Mutex<S>,
    pub(super) tokens: T,
}

impl<S, T> std::ops::Deref for Shared<S, T> {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl<S: Clone, T> Shared<S, T> {
    pub(super) fn inner(&self) -> S {
        match self.proto.lock() {
            Ok(proto) => proto.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// What a clone of [`Auth`] that serves more than one request keeps of its own:
/// every request clones the [`Shared`] handle and the subscription key, and a
/// reference count that every clone (and so every worker) writes on every request
/// is a cache line that moves between cores each time. From its second request
/// on, a clone has its own handle and its own copy of the subscription key of
/// the first key set it serves then (a clone made per request never does).
#[derive(Default)]
pub(super) struct Own {
    pub(super) calls: u8,
    pub(super) subscription_key: Option<(u64, HeaderValue)>,
}

impl Own {
    /// The subscription key value for `keys`: this clone's own copy once it has
    /// one, else the key set's.
    #[inline]
    pub(super) fn subscription_key(&mut self, keys: &KeySet) -> HeaderValue {
        match &self.subscription_key {
            Some((id, value)) if *id == keys.id() => return value.clone(),
            None if self.calls >= 2 => {
                // A copy in a buffer of its own (the same bytes, sensitive).
                if let Ok(mut copy) =
                    HeaderValue::from_bytes(keys.subscription_key_header().as_bytes())
                {
                    copy.set_sensitive(true);
                    self.subscription_key = Some((keys.id(), copy.clone()));
                    return copy;
                }
            }
            _ => {}
        }
        keys.subscription_key_header().clone()
    }
}
