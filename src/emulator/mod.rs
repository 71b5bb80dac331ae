//! An in-process Vipps MobilePay emulator: a real HTTP/1 server on loopback that
//! answers like the Vipps MobilePay API, failures included (feature `emulator`).
//!
//! ```
//! use http::Request;
//! use http_body_util::{BodyExt, Full};
//! use tower::ServiceExt;
//! use tower_vipps::{Environment, HttpsClient};
//! use tower_vipps::emulator::{self, Emulator, Endpoint};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let emulator = Emulator::start().await?;
//! // The client of the real hosts; it speaks plain HTTP to the emulator's loopback.
//! let client = HttpsClient::new();
//! let keys = emulator::TEST_MERCHANT;
//!
//! // An access token, as from https://apitest.vipps.no/accesstoken/get.
//! let request = Request::post(format!("{}/accesstoken/get", emulator.base_url(Environment::Test)))
//!     .header("client_id", keys.client_id())
//!     .header("client_secret", keys.client_secret())
//!     .header("Ocp-Apim-Subscription-Key", keys.subscription_key())
//!     .header("Merchant-Serial-Number", emulator::TEST_MSN)
//!     .body(Full::default())?;
//! let response = client.clone().oneshot(request).await?;
//! assert_eq!(response.status(), 200);
//! let body = response.into_body().collect().await?.to_bytes();
//! let token: serde_json::Value = serde_json::from_slice(&body)?;
//! assert_eq!(token["expires_in"], "3600");
//!
//! // Test keys on the production listener fail like the real thing.
//! let request = Request::post(format!("{}/accesstoken/get", emulator.base_url(Environment::Production)))
//!     .header("client_id", keys.client_id())
//!     .header("client_secret", keys.client_secret())
//!     .header("Ocp-Apim-Subscription-Key", keys.subscription_key())
//!     .body(Full::default())?;
//! assert_eq!(client.oneshot(request).await?.status(), 401);
//!
//! assert_eq!(emulator.count(Endpoint::AccessToken), 2);
//! emulator.shutdown().await;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # What it does
//!
//! [`Emulator::start`] binds two listeners on `127.0.0.1` with ephemeral ports, one
//! per [`Environment`]; [`Emulator::hosts`] registers them as custom hosts so the
//! middleware knows which is which. Keys of one environment fail on the other's
//! listener, as they do on `apitest.vipps.no` and `api.vipps.no`.
//!
//! | request | answers |
//! | --- | --- |
//! | `POST /accesstoken/get` (or `/accessToken/get`) | a JWT-shaped token (numbers as strings, like the real API) |
//! | `POST /epayment/v1/payments` | `201` `{"redirectUrl", "reference"}` |
//! | `GET /epayment/v1/payments/{reference}` | the payment, with its `aggregate` |
//! | `GET /epayment/v1/payments/{reference}/events` | the event log |
//! | `POST /epayment/v1/payments/{reference}/capture`, `/refund`, `/cancel` | the modified payment |
//! | `POST /epayment/v1/test/payments/{reference}/approve` | the user accepts a `CREATED` payment |
//! | `POST /webhooks/v1/webhooks` `{"url", "events"}` | `201` `{"id", "secret"}` (at most 25 registrations per event type and MSN) |
//! | `GET /webhooks/v1/webhooks` | `200` `{"webhooks": [{"id", "url", "events"}]}` of the MSN |
//! | `DELETE /webhooks/v1/webhooks/{id}` | `204`; `404` for an id of no registration of the MSN |
//! | `POST /checkout/v3/session` | `200` `{"token", "checkoutFrontendUrl", "pollingUrl"}`; `client_id`, `client_secret` (or a Bearer token of the same keys) and subscription key checked, and the MSN when sent (a merchant's keys need none); `CheckoutProblemDetails` errors (`400`, `401`, `403`, `409` for a reference taken) |
//! | `GET /checkout/v3/session/{reference}` | the session (`sessionState` `SessionCreated`), or `404` |
//! | `GET /access-management-1.0/access/.well-known/openid-configuration` | the OIDC discovery document, no credentials |
//! | `POST /access-management-1.0/access/oauth2/token` | Login: `client_secret_basic` or `_post`, a code from [`Emulator::login_code`] (single use); OIDC errors `invalid_client` (`401`), `invalid_grant`, `invalid_request`, `unsupported_grant_type` (`400`) |
//! | `GET /access-management-1.0/access/userinfo` | the user's claims for a user token from the token endpoint, until its `expires_in` (3,599 s) has passed on the emulator's clock; `401` `request_unauthorized` otherwise |
//! | `POST /recurring/v3/agreements` | `201` `{"agreementId", "uuid", "vippsConfirmationUrl", "chargeId"}`; the agreement is `PENDING` until accepted |
//! | `GET /recurring/v3/agreements/{agreementId}` | the agreement (`AgreementResponseV3`) |
//! | `PATCH /recurring/v3/agreements/{agreementId}` | `204`: the agreement updated, or `STOPPED` (its open charges `CANCELLED`); a `STOPPED` agreement cannot be updated |
//! | `PATCH /recurring/v3/agreements/{agreementId}/accept` | test only: the user accepts (`204`); or [`Emulator::accept_agreement`] |
//! | `POST /recurring/v3/agreements/{agreementId}/charges` | `201` `{"chargeId"}` on an `ACTIVE` agreement, `due` one day to two years ahead |
//! | `GET /recurring/v3/agreements/{agreementId}/charges/{chargeId}` | the charge (`ChargeResponseV3`) |
//! | `POST /ecomm/v2/payments` | eCom: `200` `{"orderId", "url"}` |
//! | `POST /ecomm/v2/payments/{orderId}/capture`, `/refund`; `PUT …/cancel`; `GET …/details` | the transaction and its summary; eCom's error arrays |
//! | `POST /ecomm/v2/integration-test/payments/{orderId}/approve` | test only: the user approves; or [`Emulator::approve_ecom`] |
//! | `POST /order-management/v2/{paymentType}/receipts/{orderId}` | `201` the id; once per order (`409` after); `PUT …/categories/{orderId}` `200`; `GET …/{paymentType}/{orderId}` the category and receipt |
//! | `POST /miami/v1/token` | the specialized token for [`PRODUCTION_ACCOUNTING`] (production, 15 minutes, no subscription key) |
//! | `GET /settlement/v1/ledgers`; `GET /report/v2/ledgers/{ledgerId}/{funds,fees}/dates/{date}`, `…/feed` | Report: the caller's ledgers (a merchant's own, an accounting partner's); empty reports (`404` until the date comes, `tryLater` on the day) |
//! | `GET /management/v1/sales-units/{msn}`; `GET /management/v1/merchants/{orgno}/sales-units` | Management, read side: the sales unit, or the merchant's units the keys may see |
//! | anything else | `404` `{"statusCode": 404, "message": "Resource not found"}` |
//!
//! Every API call is checked in the gateway's order, and each failure answers with
//! the status, content type and body of the real API:
//!
//! 1. No `Ocp-Apim-Subscription-Key`: `401` `application/json`, "Access denied due
//!    to missing subscription key…". An unknown key, or one of the other
//!    environment: `401`, "Access denied due to invalid subscription key…". A key
//!    without an ePayment subscription ([`TEST_UNSUBSCRIBED`]): `401`
//!    "Subscription not found.".
//! 2. `Authorization` missing, not exactly `Bearer <token>`, not minted here,
//!    expired, or minted for another MSN, subscription key or environment: `401`
//!    `text/plain` `Something went wrong, please try again later`.
//! 3. Partner keys without `Merchant-Serial-Number`, or with an MSN not connected to
//!    the partner: `403` `application/problem+json`, title `Forbidden`.
//! 4. A Login-only sales unit calling ePayment: `403` `text/plain`
//!    `Merchant Not Allowed for Ecommerce Payment`.
//! 5. The ePayment rules: `Idempotency-Key` required on every POST (the same key and
//!    body replay the first answer; another body is `409`, code 4020), amounts
//!    (4040, 6010 below 100 NOK), the sales unit's currency only (5040; NOK, or DKK
//!    or EUR set with [`EmulatorBuilder::currency`]), phone numbers (4070),
//!    `returnUrl` (4090; `https://`, an app's scheme such as `myapp://`, or
//!    `http://localhost` in test), `metadata` (at most 5 properties, echoed on
//!    GET), reference format, reference taken (4150), unknown reference for this
//!    MSN (`404`, 5090), capture before authorization (6080), capture above
//!    authorized minus captured (6090), refund above captured minus refunded
//!    (6150); cancel as the cancel guide says (before authorization the payment is
//!    `TERMINATED` with the whole amount cancelled; after it, allowed until fully
//!    captured (else 6040), releasing the uncaptured rest while the payment stays
//!    `AUTHORIZED`; no capture after it, 6070); `redirectUrl` only for the redirect
//!    flows and QR (none for `PUSH_MESSAGE`); and the test users ([`READY_USER`], [`WAITING_USER`],
//!    [`NOT_LOGGED_IN_USER`] → 10020, [`UNDER_15_USER`] and [`UNKNOWN_USER`] → 7010).
//!
//! On the token endpoint, wrong `client_id` or `client_secret` answers `401`
//! `application/json` `{"error": "invalid_client", …}`. Merchant tokens are bound to
//! the merchant's MSN. Partner tokens may be fetched with or without
//! `Merchant-Serial-Number` (if given, it must be connected) and serve every
//! connected MSN.
//!
//! Tokens live 3600 s in test and 86400 s in production (see
//! [`EmulatorBuilder::token_lifetime`]). The emulator's clock follows tokio's, so a
//! test with a paused clock can `tokio::time::advance` past a token's expiry; or use
//! [`Emulator::advance_clock`].
//!
//! [`Emulator::faults`] injects failures: a slow token endpoint, `5xx`, `429` with
//! `Retry-After`, dropped connections. [`Emulator::count`] tells how many requests
//! reached each [`Endpoint`], refused ones included, so a test can prove that a
//! request was never sent.
//!
//! Request bodies are read up to 64 KiB (`413` beyond). Garbage never panics.
//!
//! # Webhooks
//!
//! Every ePayment event (`CREATED`, `AUTHORIZED`, `CAPTURED`, `REFUNDED`,
//! `CANCELLED`, `TERMINATED`) is delivered to the URLs registered for its MSN,
//! environment and event type (`epayments.payment.captured.v1`…), signed as Vipps
//! MobilePay signs them (see [`crate::webhooks`]), one `POST` at a time per
//! payment and registration, in order. A non-`2xx` answer (or none) is retried
//! with exponential backoff ([`WebhookRetry`], fast by default), each attempt
//! signed anew with the emulator's clock. Registration takes an `https://` URL, or
//! `http://localhost` / `http://127.0.0.1` in test (as `returnUrl` does); the
//! emulator only sends to `http://` loopback URLs and counts the others as
//! undeliverable. [`Emulator::webhook_counts`] counts what happened;
//! [`Emulator::webhooks_idle`] waits for the queues to empty.
//!
//! # Presets
//!
//! Fake keys known only to the emulator (each a [`Credentials`] const):
//!
//! | const | environment | MSN | what it is |
//! | --- | --- | --- | --- |
//! | [`TEST_MERCHANT`] | test | [`TEST_MSN`] `123456` | ePayment, NOK |
//! | [`TEST_LOGIN_ONLY`] | test | [`TEST_LOGIN_ONLY_MSN`] `123457` | Login API only (`403` on ePayment) |
//! | [`TEST_UNSUBSCRIBED`] | test | [`TEST_UNSUBSCRIBED_MSN`] `123458` | tokens, but `401` "Subscription not found." |
//! | [`PRODUCTION_MERCHANT`] | production | [`PRODUCTION_MSN`] `654321` | ePayment, NOK |
//! | [`PRODUCTION_LOGIN_ONLY`] | production | [`PRODUCTION_LOGIN_ONLY_MSN`] `654322` | Login API only |
//! | [`PRODUCTION_UNSUBSCRIBED`] | production | [`PRODUCTION_UNSUBSCRIBED_MSN`] `654323` | tokens, but `401` "Subscription not found." |
//! | [`PRODUCTION_PARTNER`] | production | [`PRODUCTION_PARTNER_MSNS`] `400000..=400999` | partner keys |
//!
//! There are no partner keys in the test environment, as on the real platform:
//! partner functionality is not available in test
//! (<https://developer.vippsmobilepay.com/docs/partner/partner-keys/>), so partner
//! keys sent to the test listener are unknown keys there (`401` from the token
//! endpoint), and [`KeySet::partner`](crate::KeySet::partner) refuses [`Environment::Test`].
//!
//! Users, by `customer.phoneNumber` (the same in both environments):
//!
//! | const | number | a new payment |
//! | --- | --- | --- |
//! | [`READY_USER`] | `4791000001` | `AUTHORIZED` at once |
//! | [`WAITING_USER`] | `4791000002` | `CREATED` until approved ([`Emulator::approve`] or the test API) |
//! | [`NOT_LOGGED_IN_USER`] | `4791000003` | `400`, code 10020: must log in to the test app, be 15 |
//! | [`UNDER_15_USER`] | `4791000004` | `400`, code 7010 (Customer not found) |
//! | [`UNKNOWN_USER`] | `4799999999` (and any other valid number) | `400`, code 7010 |
//!
//! A payment without `customer.phoneNumber` (the user types it on the landing page)
//! stays `CREATED` until approved.

mod bodies;
mod builder;
mod checkout;
mod dates;
mod ecom;
mod endpoints;
mod epayment;
mod faults;
mod jwt;
mod limits;
mod login;
mod management;
mod order_management;
mod presets;
mod recurring;
mod replays;
mod report;
mod server;
mod webhooks;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use builder::EmulatorBuilder;
pub use endpoints::{Counts, Endpoint, SeenRequest};
pub use faults::{Fault, Faults};
pub use presets::{
    ALL_CREDENTIALS, AccountingCredentials, Credentials, NOT_LOGGED_IN_USER, PRODUCTION_ACCOUNTING,
    PRODUCTION_LOGIN_ONLY, PRODUCTION_LOGIN_ONLY_MSN, PRODUCTION_MERCHANT, PRODUCTION_MSN,
    PRODUCTION_PARTNER, PRODUCTION_PARTNER_MSNS, PRODUCTION_UNSUBSCRIBED,
    PRODUCTION_UNSUBSCRIBED_MSN, READY_USER, Role, TEST_LOGIN_ONLY, TEST_LOGIN_ONLY_MSN,
    TEST_MERCHANT, TEST_MSN, TEST_UNSUBSCRIBED, TEST_UNSUBSCRIBED_MSN, UNDER_15_USER, UNKNOWN_USER,
    WAITING_USER,
};
pub use server::REQUEST_BODY_CAP;
pub use webhooks::{WebhookCounts, WebhookRetry};

use crate::token::{KnownTokens, MintedFor};
use crate::{Environment, Fingerprint, Hosts, Keyring, KeyringBuilder, Msn};
use faults::FaultState;
use server::KeyEntry;

/// The default token lifetime in the test environment: one hour.
pub const TEST_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// The default token lifetime in production: 24 hours.
pub const PRODUCTION_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);

/// The most requests [`Emulator::requests`] keeps by default (the oldest are
/// dropped and counted in [`Emulator::requests_dropped`]); see
/// [`EmulatorBuilder::request_log_cap`].
pub const REQUEST_LOG_CAP: usize = 10_000;

/// State shared by the listeners, the connections and the handles.
struct Shared {
    keys: HashMap<String, KeyEntry>,
    signing_key: [u8; 32],
    lifetimes: [AtomicU64; 2],
    /// Tokio's instant at the start, and the epoch milliseconds it stands for.
    clock_origin: (tokio::time::Instant, u64),
    clock_offset: AtomicI64,
    counts: [AtomicUsize; Endpoint::ALL.len()],
    faults: Mutex<FaultState>,
    payments: Mutex<epayment::Payments>,
    checkout: Mutex<checkout::Sessions>,
    recurring: Mutex<recurring::Agreements>,
    ecom: Mutex<ecom::EcomPayments>,
    login: Mutex<login::LoginState>,
    rate_limits: Mutex<limits::RateLimits>,
    /// Sales units whose currency is not NOK.
    currencies: HashMap<(Environment, Msn), &'static str>,
    log: Mutex<VecDeque<SeenRequest>>,
    log_cap: usize,
    log_dropped: AtomicUsize,
    stop: watch::Receiver<bool>,
    base_urls: [String; 2],
    webhooks: webhooks::Hub,
    orders: Mutex<order_management::Orders>,
}

impl Shared {
    /// The MSNs of the merchant keys of an environment.
    fn merchant_msns(&self, environment: Environment) -> Vec<Msn> {
        self.keys
            .values()
            .filter(|k| k.environment == environment)
            .filter_map(|k| match k.kind {
                server::KeyKind::Merchant { msn, .. } => Some(msn),
                server::KeyKind::Partner { .. } => None,
            })
            .collect()
    }

    /// The currency of a sales unit's payments: NOK unless configured.
    fn currency(&self, environment: Environment, msn: Msn) -> &'static str {
        self.currencies
            .get(&(environment, msn))
            .copied()
            .unwrap_or("NOK")
    }

    /// Epoch seconds (rounded down), following tokio's clock (so a paused test
    /// clock can expire tokens) plus [`Emulator::advance_clock`].
    fn now(&self) -> u64 {
        self.now_ms() / 1000
    }

    /// Epoch milliseconds: token expiry is checked to the millisecond, so a token
    /// is accepted for its whole lifetime, not one second less.
    fn now_ms(&self) -> u64 {
        let (instant, epoch_ms) = self.clock_origin;
        let elapsed = tokio::time::Instant::now().saturating_duration_since(instant);
        let elapsed = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let offset = self.clock_offset.load(Ordering::Relaxed);
        epoch_ms
            .saturating_add(elapsed)
            .saturating_add_signed(offset.saturating_mul(1000))
    }

    fn take_fault(&self, endpoint: Endpoint) -> Option<Fault> {
        let mut faults = self.faults.lock().ok()?;
        faults.queues.get_mut(&endpoint)?.pop_front()
    }

    fn take_connection_drop(&self) -> bool {
        let Ok(mut faults) = self.faults.lock() else {
            return false;
        };
        if faults.drop_connections > 0 {
            faults.drop_connections -= 1;
            true
        } else {
            false
        }
    }

    fn record(&self, seen: SeenRequest) {
        if let Ok(mut log) = self.log.lock() {
            while log.len() >= self.log_cap.max(1) {
                log.pop_front();
                self.log_dropped.fetch_add(1, Ordering::Relaxed);
            }
            log.push_back(seen);
        }
    }
}

fn env_index(environment: Environment) -> usize {
    match environment {
        Environment::Test => 0,
        Environment::Production => 1,
    }
}

/// A running emulator: two loopback listeners (test and production) that answer
/// like the Vipps MobilePay API. Dropping it stops both at once; [`Emulator::shutdown`]
/// stops them gracefully. See the [module docs](self).
pub struct Emulator {
    shared: Arc<Shared>,
    addrs: [SocketAddr; 2],
    stop: watch::Sender<bool>,
    tasks: [JoinHandle<()>; 2],
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("test", &self.addrs[0])
            .field("production", &self.addrs[1])
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Starts an emulator with the defaults; see [`EmulatorBuilder::start`].
    pub async fn start() -> io::Result<Emulator> {
        EmulatorBuilder::default().start().await
    }

    /// A builder, to set token lifetimes, a token delay or more keys.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// The listener's address of an environment.
    pub fn addr(&self, environment: Environment) -> SocketAddr {
        self.addrs[env_index(environment)]
    }

    /// The base URL of an environment, `http://127.0.0.1:PORT`, without a trailing
    /// slash: use it where the real API has `https://apitest.vipps.no` or
    /// `https://api.vipps.no`.
    pub fn base_url(&self, environment: Environment) -> String {
        self.shared.base_urls[env_index(environment)].clone()
    }

    /// The official hosts plus the two listeners, each registered for its
    /// environment as plaintext (the emulator speaks plain HTTP on loopback).
    pub fn hosts(&self) -> Hosts {
        Environment::ALL
            .into_iter()
            .fold(Hosts::default(), |hosts, env| {
                hosts.with_plaintext(env, &self.addr(env).to_string())
            })
    }

    /// A keyring builder with [`Emulator::hosts`], to add your choice of keys.
    pub fn keyring_builder(&self) -> KeyringBuilder {
        Keyring::builder().hosts(self.hosts())
    }

    /// A keyring with every preset key set of both environments (merchant,
    /// Login-only merchant, partner, unsubscribed; see [`Credentials::key_set`]) and
    /// [`Emulator::hosts`]. Requests must name their MSN.
    pub fn keyring(&self) -> Keyring {
        ALL_CREDENTIALS
            .iter()
            .fold(self.keyring_builder(), |builder, c| {
                builder.key_set(c.key_set())
            })
            .build()
            .expect("the preset keys make a valid keyring")
    }

    /// The preset merchant keys of an environment ([`TEST_MERCHANT`],
    /// [`PRODUCTION_MERCHANT`]).
    pub fn merchant(&self, environment: Environment) -> Credentials {
        match environment {
            Environment::Test => TEST_MERCHANT,
            Environment::Production => PRODUCTION_MERCHANT,
        }
    }

    /// The preset keys of a Login-only sales unit ([`TEST_LOGIN_ONLY`],
    /// [`PRODUCTION_LOGIN_ONLY`]).
    pub fn login_only(&self, environment: Environment) -> Credentials {
        match environment {
            Environment::Test => TEST_LOGIN_ONLY,
            Environment::Production => PRODUCTION_LOGIN_ONLY,
        }
    }

    /// The preset partner keys, [`PRODUCTION_PARTNER`]: partner keys exist in
    /// production only.
    pub fn partner(&self) -> Credentials {
        PRODUCTION_PARTNER
    }

    /// The requests seen for an endpoint, on both listeners, refused ones included.
    pub fn count(&self, endpoint: Endpoint) -> usize {
        self.shared.counts[endpoint.index()].load(Ordering::Relaxed)
    }

    /// The requests seen for every endpoint.
    pub fn counts(&self) -> Counts {
        Counts(
            self.shared
                .counts
                .each_ref()
                .map(|c| c.load(Ordering::Relaxed)),
        )
    }

    /// Sets every count to zero and empties the request log.
    pub fn reset_counts(&self) {
        for count in &self.shared.counts {
            count.store(0, Ordering::Relaxed);
        }
        if let Ok(mut log) = self.shared.log.lock() {
            log.clear();
        }
    }

    /// The requests seen, oldest first (at most the
    /// [log cap](EmulatorBuilder::request_log_cap), [`REQUEST_LOG_CAP`] by default).
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.shared
            .log
            .lock()
            .map(|log| log.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// How many requests were dropped from [`requests`](Self::requests) to keep it
    /// within its cap.
    pub fn requests_dropped(&self) -> usize {
        self.shared.log_dropped.load(Ordering::Relaxed)
    }

    /// The fault injection handle.
    pub fn faults(&self) -> Faults {
        Faults {
            shared: self.shared.clone(),
        }
    }

    /// Moves the emulator's clock forward (tokens expire sooner).
    pub fn advance_clock(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.shared.clock_offset.fetch_add(secs, Ordering::Relaxed);
    }

    /// A fresh, single-use Login authorization code for `client_id`, as the user's
    /// browser would bring back to the merchant's `redirect_uri` after logging in:
    /// exchange it at `POST /access-management-1.0/access/oauth2/token` with the
    /// client's own credentials.
    pub fn login_code(&self, environment: Environment, client_id: &str) -> String {
        match self.shared.login.lock() {
            Ok(mut state) => state.issue_code(environment, client_id),
            Err(poisoned) => poisoned.into_inner().issue_code(environment, client_id),
        }
    }

    /// The user accepts a `CREATED` payment, as `POST
    /// /epayment/v1/test/payments/{reference}/approve` does: `true` if it was
    /// `CREATED` and is now `AUTHORIZED`.
    pub fn approve(&self, environment: Environment, msn: Msn, reference: &str) -> bool {
        let now = self.shared.now();
        let approved = self
            .shared
            .payments
            .lock()
            .ok()
            .and_then(|mut p| p.approve(environment, msn, reference, now))
            .unwrap_or(false);
        webhooks::publish(&self.shared);
        approved
    }

    /// The user accepts a `PENDING` Recurring agreement, as `PATCH
    /// /recurring/v3/agreements/{agreementId}/accept` does: `true` if it was
    /// `PENDING` and is now `ACTIVE` (its initial charge processed).
    pub fn accept_agreement(&self, environment: Environment, msn: Msn, agreement_id: &str) -> bool {
        let now = self.shared.now();
        self.shared
            .recurring
            .lock()
            .ok()
            .and_then(|mut a| a.accept_agreement(environment, msn, agreement_id, now))
            .unwrap_or(false)
    }

    /// The user approves an initiated eCom payment, as `POST
    /// /ecomm/v2/integration-test/payments/{orderId}/approve` does: `true` if it
    /// was waiting for the user and is now reserved.
    pub fn approve_ecom(&self, environment: Environment, msn: Msn, order_id: &str) -> bool {
        let now = self.shared.now();
        self.shared
            .ecom
            .lock()
            .ok()
            .and_then(|mut p| p.approve(environment, msn, order_id, now))
            .unwrap_or(false)
    }

    /// What the webhook deliveries came to so far.
    pub fn webhook_counts(&self) -> WebhookCounts {
        self.shared.webhooks.counts()
    }

    /// Resolves once no webhook delivery is queued or in progress (each delivered
    /// or given up). Await it before checking what a receiver got.
    pub async fn webhooks_idle(&self) {
        self.shared.webhooks.idle().await
    }

    /// What a token was minted for, if this emulator minted it (expired or not).
    pub fn minted_for(&self, token: &str) -> Option<MintedFor> {
        let claims = jwt::verify(&self.shared.signing_key, token)?;
        let entry = self
            .shared
            .keys
            .values()
            .find(|e| jwt::key_fingerprint(&e.subscription_key) == claims.skf)?;
        Some(MintedFor {
            environment: claims.environment()?,
            client_id: claims.client_id.as_str().into(),
            subscription_key: Fingerprint::of(entry.subscription_key.as_bytes()),
            msn: claims.msn.and_then(|m| Msn::new(m).ok()),
            partner: claims.partner,
        })
    }

    /// Stops accepting, lets every open connection finish its request, and waits
    /// for both listeners to close.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in &mut self.tasks {
            let _ = task.await;
        }
    }
}

impl KnownTokens for Emulator {
    fn minted_for(&self, token: &str) -> Option<MintedFor> {
        Emulator::minted_for(self, token)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}
