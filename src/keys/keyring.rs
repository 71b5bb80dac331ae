//! [`Keyring`]: every key set of a service, found by environment and MSN, and its
//! [`KeyringBuilder`].

use std::collections::HashMap;

use foldhash::fast::RandomState;
use std::fmt;
use std::sync::Arc;

use http::HeaderValue;

use super::{KeyError, KeyScope, KeySet, Secret, SystemInfo};
use crate::{Environment, Hosts, Msn};

/// Why the [`Keyring`] has no key set for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lookup {
    /// Found.
    Found(KeySet),
    /// No MSN on the request, and the keyring holds partner keys (or several
    /// merchants) for that environment.
    MsnRequired,
    /// A partner key set exists, but lists its MSNs and this one is not among them.
    NotConnected(KeySet),
    /// No key set for this MSN in this environment.
    NoKeys,
}

struct KeyringInner {
    merchants: HashMap<(Environment, Msn), KeySet, RandomState>,
    partner_msns: HashMap<(Environment, Msn), KeySet, RandomState>,
    /// Partner key sets without an MSN list, at most one per environment.
    open_partner: [Option<KeySet>; 2],
    /// Partner key sets with an MSN list, per environment.
    listed_partners: [Vec<KeySet>; 2],
    /// The only merchant key set of an environment, when there is exactly one and
    /// no partner keys.
    sole_merchant: [Option<KeySet>; 2],
    /// Key sets by the bytes of their subscription key.
    by_subscription_key: HashMap<Box<[u8]>, Vec<KeySet>, RandomState>,
    hosts: Hosts,
    system: SystemInfo,
    all: Vec<KeySet>,
}

/// All the key sets a client may use, with the hosts of each environment and the
/// `Vipps-System-*` headers. Cheap to clone; lookups do not allocate.
///
/// ```
/// use tower_vipps::{Environment, Keyring, Lookup, Msn};
///
/// let msn: Msn = "123456".parse()?;
/// let keyring = Keyring::builder()
///     .merchant(Environment::Test, msn, "client-id", "secret", "sub-key")
///     .partner(Environment::Production, "partner-id", "partner-secret", "partner-sub-key")
///     .build()?;
/// assert!(matches!(keyring.lookup(Environment::Test, Some(msn)), Lookup::Found(_)));
/// // Partner keys need the MSN of the sales unit:
/// assert!(matches!(keyring.lookup(Environment::Production, None), Lookup::MsnRequired));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Keyring {
    inner: Arc<KeyringInner>,
}

impl Keyring {
    /// A builder.
    pub fn builder() -> KeyringBuilder {
        KeyringBuilder::default()
    }

    /// The key set for an MSN in an environment: the merchant's own keys first, then
    /// the partner keys that list the MSN, then partner keys without a list. With no
    /// MSN, the environment's only merchant key set, if it has exactly one and no
    /// partner keys.
    pub fn lookup(&self, environment: Environment, msn: Option<Msn>) -> Lookup {
        let inner = &*self.inner;
        let idx = env_index(environment);
        let Some(msn) = msn else {
            return match &inner.sole_merchant[idx] {
                Some(keys) => Lookup::Found(keys.clone()),
                None if inner.all.iter().any(|k| k.environment() == environment) => {
                    Lookup::MsnRequired
                }
                None => Lookup::NoKeys,
            };
        };
        if let Some(keys) = inner.merchants.get(&(environment, msn)) {
            return Lookup::Found(keys.clone());
        }
        if let Some(keys) = inner.partner_msns.get(&(environment, msn)) {
            return Lookup::Found(keys.clone());
        }
        if let Some(keys) = &inner.open_partner[idx] {
            return Lookup::Found(keys.clone());
        }
        match inner.listed_partners[idx].first() {
            Some(keys) => Lookup::NotConnected(keys.clone()),
            None => Lookup::NoKeys,
        }
    }

    /// The key set for an MSN, if any; see [`Keyring::lookup`].
    pub fn find(&self, environment: Environment, msn: Option<Msn>) -> Option<KeySet> {
        match self.lookup(environment, msn) {
            Lookup::Found(keys) => Some(keys),
            _ => None,
        }
    }

    /// The key sets whose subscription key is `key` (usually one; the same key may
    /// serve a merchant in both environments only by mistake). A hash lookup.
    pub fn by_subscription_key(&self, key: &[u8]) -> &[KeySet] {
        self.inner
            .by_subscription_key
            .get(key)
            .map_or(&[], Vec::as_slice)
    }

    /// The hosts of each environment.
    pub fn hosts(&self) -> &Hosts {
        &self.inner.hosts
    }

    /// The `Vipps-System-*` headers.
    pub fn system(&self) -> &SystemInfo {
        &self.inner.system
    }

    /// Every key set.
    pub fn key_sets(&self) -> impl Iterator<Item = &KeySet> {
        self.inner.all.iter()
    }

    /// The environments any key set belongs to.
    pub fn environments(&self) -> impl Iterator<Item = Environment> + '_ {
        Environment::ALL
            .into_iter()
            .filter(|env| self.inner.all.iter().any(|k| k.environment() == *env))
    }
}

pub(crate) fn env_index(environment: Environment) -> usize {
    match environment {
        Environment::Test => 0,
        Environment::Production => 1,
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("key_sets", &self.inner.all)
            .field("hosts", &self.inner.hosts)
            .finish()
    }
}

/// Builds a [`Keyring`]; see [`Keyring::builder`].
#[derive(Default)]
pub struct KeyringBuilder {
    key_sets: Vec<Result<KeySet, KeyError>>,
    hosts: Hosts,
    system: Option<Result<SystemInfo, KeyError>>,
}

impl fmt::Debug for KeyringBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyringBuilder")
            .field("key_sets", &self.key_sets.len())
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl KeyringBuilder {
    /// Adds merchant keys for one MSN.
    pub fn merchant(
        mut self,
        environment: Environment,
        msn: Msn,
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
        subscription_key: impl Into<Secret>,
    ) -> Self {
        self.key_sets.push(KeySet::merchant(
            environment,
            msn,
            client_id,
            client_secret,
            subscription_key,
        ));
        self
    }

    /// Adds partner keys that may act for any MSN.
    pub fn partner(
        mut self,
        environment: Environment,
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
        subscription_key: impl Into<Secret>,
    ) -> Self {
        self.key_sets.push(KeySet::partner(
            environment,
            client_id,
            client_secret,
            subscription_key,
        ));
        self
    }

    /// Adds a key set built with [`KeySet`]'s constructors.
    pub fn key_set(mut self, key_set: KeySet) -> Self {
        self.key_sets.push(Ok(key_set));
        self
    }

    /// Adds a custom host (`"host"` or `"host:port"`) to an environment, for an
    /// emulator or a proxy. Keys and tokens go to it over `https://` only.
    pub fn host(mut self, environment: Environment, host_and_port: &str) -> Self {
        self.hosts.add(environment, host_and_port);
        self
    }

    /// Adds a custom host that keys and tokens may reach over plain `http://`: an
    /// emulator or a test server on loopback, nothing else; see
    /// [`Hosts::with_plaintext`].
    pub fn plaintext_host(mut self, environment: Environment, host_and_port: &str) -> Self {
        self.hosts.add_plaintext(environment, host_and_port);
        self
    }

    /// Replaces the host table.
    pub fn hosts(mut self, hosts: Hosts) -> Self {
        self.hosts = hosts;
        self
    }

    /// Sets `Vipps-System-Name` and `Vipps-System-Version` (your system).
    pub fn system(mut self, name: &str, version: &str) -> Self {
        let base = self.system.take().unwrap_or(Ok(SystemInfo::default()));
        self.system = Some(base.and_then(|mut info| {
            info.name = system_header("Vipps-System-Name", name)?;
            info.version = system_header("Vipps-System-Version", version)?;
            Ok(info)
        }));
        self
    }

    /// Sets `Vipps-System-Plugin-Name` and `Vipps-System-Plugin-Version`.
    pub fn plugin(mut self, name: &str, version: &str) -> Self {
        let base = self.system.take().unwrap_or(Ok(SystemInfo::default()));
        self.system = Some(base.and_then(|mut info| {
            info.plugin_name = system_header("Vipps-System-Plugin-Name", name)?;
            info.plugin_version = system_header("Vipps-System-Plugin-Version", version)?;
            Ok(info)
        }));
        self
    }

    /// Builds the keyring, checking every key set and that each MSN of each
    /// environment has at most one key set of each kind.
    pub fn build(self) -> Result<Keyring, KeyError> {
        let mut merchants = HashMap::default();
        let mut partner_msns = HashMap::default();
        let mut open_partner: [Option<KeySet>; 2] = [None, None];
        let mut listed_partners: [Vec<KeySet>; 2] = [Vec::new(), Vec::new()];
        let mut all = Vec::with_capacity(self.key_sets.len());
        for keys in self.key_sets {
            let keys = keys?;
            let environment = keys.environment();
            let idx = env_index(environment);
            match keys.scope() {
                KeyScope::Merchant(msn) => {
                    if merchants
                        .insert((environment, *msn), keys.clone())
                        .is_some()
                    {
                        return Err(KeyError::DuplicateMerchant {
                            msn: *msn,
                            environment,
                        });
                    }
                }
                KeyScope::Partner { connected: None } => {
                    if open_partner[idx].is_some() || !listed_partners[idx].is_empty() {
                        return Err(KeyError::AmbiguousPartner { environment });
                    }
                    open_partner[idx] = Some(keys.clone());
                }
                KeyScope::Partner {
                    connected: Some(set),
                } => {
                    if open_partner[idx].is_some() {
                        return Err(KeyError::AmbiguousPartner { environment });
                    }
                    for msn in set.iter() {
                        if partner_msns
                            .insert((environment, *msn), keys.clone())
                            .is_some()
                        {
                            return Err(KeyError::DuplicatePartnerMsn {
                                msn: *msn,
                                environment,
                            });
                        }
                    }
                    listed_partners[idx].push(keys.clone());
                }
            }
            all.push(keys);
        }
        let sole_merchant = Environment::ALL.map(|env| {
            let mut in_env = all.iter().filter(|k| k.environment() == env);
            match (in_env.next(), in_env.next()) {
                (Some(only), None) if !only.is_partner() => Some(only.clone()),
                _ => None,
            }
        });
        let system = self.system.unwrap_or(Ok(SystemInfo::default()))?;
        let mut by_subscription_key: HashMap<Box<[u8]>, Vec<KeySet>, RandomState> =
            HashMap::default();
        for keys in &all {
            by_subscription_key
                .entry(keys.subscription_key().expose().as_bytes().into())
                .or_default()
                .push(keys.clone());
        }
        Ok(Keyring {
            inner: Arc::new(KeyringInner {
                by_subscription_key,
                merchants,
                partner_msns,
                open_partner,
                listed_partners,
                sole_merchant,
                hosts: self.hosts,
                system,
                all,
            }),
        })
    }
}

fn system_header(field: &'static str, value: &str) -> Result<HeaderValue, KeyError> {
    HeaderValue::from_str(value).map_err(|_| KeyError::InvalidSystemHeader { field })
}
