//! [`EmulatorBuilder`]: token lifetimes and delays, more keys, currencies, the
//! request log's cap, webhook retries; and the start of both listeners.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::faults::FaultState;
use super::server::{self, KeyEntry, KeyKind};
use super::{
    ALL_CREDENTIALS, Emulator, PRODUCTION_TOKEN_LIFETIME, REQUEST_LOG_CAP, Role, Shared,
    TEST_TOKEN_LIFETIME, WebhookRetry, env_index, webhooks,
};
use crate::{Environment, KeyScope, KeySet, Msn};

/// Configures an [`Emulator`]; see [`Emulator::builder`].
#[derive(Debug)]
pub struct EmulatorBuilder {
    lifetimes: [Duration; 2],
    token_delay: Duration,
    extra: Vec<(KeySet, bool)>,
    webhook_retry: WebhookRetry,
    currencies: HashMap<(Environment, Msn), &'static str>,
    log_cap: usize,
}

impl Default for EmulatorBuilder {
    fn default() -> Self {
        EmulatorBuilder {
            lifetimes: [TEST_TOKEN_LIFETIME, PRODUCTION_TOKEN_LIFETIME],
            token_delay: Duration::ZERO,
            extra: Vec::new(),
            webhook_retry: WebhookRetry::default(),
            currencies: HashMap::new(),
            log_cap: REQUEST_LOG_CAP,
        }
    }
}

impl EmulatorBuilder {
    /// The lifetime of tokens in `environment` (default 3600 s in test, 86400 s in
    /// production); whole seconds, at least one.
    pub fn token_lifetime(mut self, environment: Environment, lifetime: Duration) -> Self {
        self.lifetimes[env_index(environment)] = lifetime;
        self
    }

    /// Every token request waits this long before it is answered.
    pub fn token_delay(mut self, delay: Duration) -> Self {
        self.token_delay = delay;
        self
    }

    /// Keeps the last `cap` requests in [`Emulator::requests`] (default
    /// [`REQUEST_LOG_CAP`]); a long chaos test can keep them all. The counts of
    /// [`Emulator::counts`] are never capped.
    pub fn request_log_cap(mut self, cap: usize) -> Self {
        self.log_cap = cap.max(1);
        self
    }

    /// Registers more keys, besides the presets: merchant keys of a sales unit with
    /// the ePayment API (NOK), or partner keys (connected to the MSNs they list, or to
    /// every MSN when they list none).
    pub fn key_set(mut self, keys: KeySet) -> Self {
        self.extra.push((keys, true));
        self
    }

    /// The currency of a sales unit's ePayment payments: `"NOK"` (the default, a
    /// Norwegian sales unit), `"DKK"` (Danish) or `"EUR"` (Finnish). An amount in
    /// another currency is refused with code 5040, as the real API does.
    ///
    /// # Panics
    ///
    /// On a currency other than `NOK`, `DKK` or `EUR` (a mistake in the test).
    pub fn currency(mut self, environment: Environment, msn: Msn, currency: &str) -> Self {
        let currency = match currency {
            "NOK" => "NOK",
            "DKK" => "DKK",
            "EUR" => "EUR",
            other => panic!("the emulator knows NOK, DKK and EUR, not {other:?}"),
        };
        self.currencies.insert((environment, msn), currency);
        self
    }

    /// Registers the merchant keys of a sales unit that only has the Login API.
    pub fn login_only(mut self, keys: KeySet) -> Self {
        self.extra.push((keys, false));
        self
    }

    /// How webhook deliveries answered with a non-`2xx` status are retried.
    pub fn webhook_retry(mut self, retry: WebhookRetry) -> Self {
        self.webhook_retry = retry;
        self
    }

    /// Binds the two listeners and starts serving. Call from within a tokio runtime.
    pub async fn start(self) -> io::Result<Emulator> {
        let test = TcpListener::bind("127.0.0.1:0").await?;
        let production = TcpListener::bind("127.0.0.1:0").await?;
        let addrs = [test.local_addr()?, production.local_addr()?];
        let mut keys = HashMap::new();
        for preset in ALL_CREDENTIALS {
            let kind = match preset.role() {
                Role::Partner => KeyKind::Partner {
                    connected: Some(Arc::new(preset.connected_msns().collect())),
                },
                role => KeyKind::Merchant {
                    msn: preset.msn().expect("merchant presets have an MSN"),
                    ecommerce: role != Role::LoginOnly,
                },
            };
            keys.insert(
                preset.subscription_key().to_owned(),
                KeyEntry {
                    environment: preset.environment(),
                    client_id: preset.client_id().to_owned(),
                    client_secret: preset.client_secret().to_owned(),
                    subscription_key: preset.subscription_key().to_owned(),
                    kind,
                    subscribed: preset.role() != Role::Unsubscribed,
                },
            );
        }
        for (set, ecommerce) in self.extra {
            let kind = match set.scope() {
                KeyScope::Merchant(msn) => KeyKind::Merchant {
                    msn: *msn,
                    ecommerce,
                },
                KeyScope::Partner { connected } => KeyKind::Partner {
                    connected: connected.clone(),
                },
            };
            keys.insert(
                set.subscription_key().expose().to_owned(),
                KeyEntry {
                    environment: set.environment(),
                    client_id: set.client_id().to_owned(),
                    client_secret: set.client_secret().expose().to_owned(),
                    subscription_key: set.subscription_key().expose().to_owned(),
                    kind,
                    subscribed: true,
                },
            );
        }
        let mut signing_key = [0u8; 32];
        signing_key.fill_with(|| fastrand::u8(..));
        let epoch_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let (stop_tx, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            keys,
            signing_key,
            lifetimes: self.lifetimes.map(|d| AtomicU64::new(d.as_secs().max(1))),
            clock_origin: (tokio::time::Instant::now(), epoch_ms),
            clock_offset: AtomicI64::new(0),
            counts: Default::default(),
            faults: Mutex::new(FaultState {
                token_delay: self.token_delay,
                ..FaultState::default()
            }),
            payments: Mutex::default(),
            orders: Mutex::default(),
            checkout: Mutex::default(),
            recurring: Mutex::default(),
            ecom: Mutex::default(),
            login: Mutex::default(),
            rate_limits: Mutex::default(),
            currencies: self.currencies,
            log: Mutex::default(),
            log_cap: self.log_cap,
            log_dropped: AtomicUsize::new(0),
            stop: stop_rx.clone(),
            base_urls: addrs.map(|a| format!("http://{a}")),
            webhooks: webhooks::Hub::new(self.webhook_retry),
        });
        let tasks = [
            (test, Environment::Test),
            (production, Environment::Production),
        ]
        .map(|(listener, env)| {
            tokio::spawn(server::run(listener, env, shared.clone(), stop_rx.clone()))
        });
        Ok(Emulator {
            shared,
            addrs,
            stop: stop_tx,
            tasks,
        })
    }
}
