//! [`PreflightLayer`]: refuse, unsent and diagnosed, every request that can only fail.
//!
//! `Preflight` looks at each request exactly as it will go on the wire (so it sits
//! innermost, under the auth layer) and runs a table of small rules over it. A rule
//! that finds a *certain* failure refuses the request: the inner service is not
//! called, nothing is sent, and the caller gets a [`VippsError`] with origin
//! [`Origin::Refused`](crate::Origin::Refused) and a [`Diagnosis`] in microseconds
//! instead of a 401 and an hour of checking keys. A rule that finds a *likely*
//! failure warns through `tracing` and lets the request go. A [`Policy`] chooses,
//! per [`RuleId`], to refuse, warn or do nothing.
//!
//! ```no_run
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_vipps::preflight::{Action, PreflightLayer, RuleId};
//! use tower_vipps::{Cause, Environment, Keyring, Msn};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let msn: Msn = "123456".parse()?;
//! let keys = Keyring::builder()
//!     .merchant(Environment::Test, msn, "client-id", "client-secret", "sub-key")
//!     .build()?;
//! let service = ServiceBuilder::new()
//!     .layer(
//!         PreflightLayer::new()
//!             .keyring(keys)
//!             .rule(RuleId::SystemHeaders, Action::Off),
//!     )
//!     .service_fn(|_req: http::Request<Full<Bytes>>| async {
//!         Ok::<_, std::convert::Infallible>(http::Response::new(()))
//!     });
//!
//! let request = http::Request::post("https://apitest.vipps.no/epayment/v1/payments")
//!     .header("Authorization", "bearer eyJhbGciOiJub25lIn0.e30.c2ln")
//!     .body(Full::new(Bytes::from_static(b"{}")))?;
//! let err = service.oneshot(request).await.unwrap_err();
//! assert!(err.is_refused());
//! assert_eq!(err.cause(), Cause::BearerWrongCase);
//! # Ok(()) }
//! ```
//!
//! Each rule is a function `fn(&Facts) -> Option<Diagnosis>` in the file of its
//! group (`authorization.rs`, `subscription_key.rs`, `msn.rs`, `environment.rs`,
//! `body.rs`, `idempotency.rs`, `system_headers.rs`), listed once in the table of
//! this module with its [`RuleId`] and default [`Action`]. Evidence never quotes a
//! secret: it says "scheme is `bearer`" or "the token has 1 dot, expected 2", never
//! the token.
//!
//! Bodies are inspected only when buffered: when the body's type is one that
//! [`replay::peek_bytes`](crate::replay::peek_bytes) can see without consuming
//! (`Full<Bytes>`, `String`, `Vec<u8>`, `Bytes`, …), or an opaque body that
//! [`BufferLayer`](crate::buffer::BufferLayer) read ahead (the preset does), and it
//! is at most [`PreflightLayer::body_cap`] bytes. A streaming body is never polled;
//! the first request of each such body type logs once, at `warn`, which checks
//! were skipped.

pub(crate) mod authorization;
pub(crate) mod body;
mod checkout;
mod ecom;
mod environment;
pub(crate) mod epayment;
mod headers;
mod idempotency;
pub(crate) mod msn;
mod recurring;
mod sparse;
mod subscription_key;
mod system_headers;
mod webhooks;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, Method, Request, Uri};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::context::Api;
use crate::headers::{CLIENT_SECRET, OCP_APIM_SUBSCRIPTION_KEY};
use crate::replay::peek_request;
use crate::token::{AccessToken, KnownTokens, MintedFor};
use crate::{BoxError, Diagnosis, Environment, Hosts, KeySet, Keyring, RequestContext, VippsError};
use headers::Known;

/// The default cap on the body bytes inspected: 64 KiB.
pub const DEFAULT_BODY_CAP: usize = 64 * 1024;

/// What to do when a rule finds something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Refuse the request: return `Err(VippsError)` (origin `Refused`), send nothing.
    Refuse,
    /// Log a `tracing` warning with the code and evidence, then send the request.
    Warn,
    /// Do not run the rule.
    Off,
}

type RuleFn = fn(&Facts<'_>) -> Option<Diagnosis>;

macro_rules! rules {
    ($(
        $(#[$doc:meta])*
        $id:ident => $check:path, $default:ident;
    )*) => {
        /// One preflight rule. The table of rules, their order and default actions
        /// is in the documentation of each variant.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum RuleId {
            $( $(#[$doc])* $id, )*
        }

        impl RuleId {
            /// Every rule, in the order they run.
            pub const ALL: &'static [RuleId] = &[$(RuleId::$id),*];

            const COUNT: usize = [$(RuleId::$id),*].len();

            /// The action taken when no [`Policy`] says otherwise.
            pub const fn default_action(self) -> Action {
                match self { $(RuleId::$id => Action::$default,)* }
            }

            /// The rule's name, as written in the code (`BearerScheme`).
            pub const fn name(self) -> &'static str {
                match self { $(RuleId::$id => stringify!($id),)* }
            }

            fn check(self) -> RuleFn {
                match self { $(RuleId::$id => $check,)* }
            }
        }
    };
}

rules! {
    /// The request carries `Authorization`, `Ocp-Apim-Subscription-Key` or
    /// `client_secret` over plain `http://` to an official host or to a host not
    /// registered as plaintext ([`Hosts::with_plaintext`]): the key or token would
    /// cross the network unencrypted. Refuse.
    InsecureScheme => environment::insecure_scheme, Refuse;
    /// The host belongs to no Vipps MobilePay environment and the request carries
    /// `Authorization`, `Ocp-Apim-Subscription-Key` or `client_secret`: a token or
    /// key would leave for a stranger. Refuse; see
    /// [`PreflightLayer::allow_unknown_hosts`] for proxies.
    UnknownHost => environment::unknown_host, Refuse;
    /// The host is of the other environment than the token (known to
    /// [`KnownTokens`]) or the subscription key (found in the [`Keyring`]). Refuse.
    WrongEnvironment => environment::wrong_environment, Refuse;
    /// No `Authorization` header on an ePayment, eCom, Recurring, management or
    /// partner call (`Authorization` is required by `epayment.v1.yml`
    /// `security: Bearer-Authorization`, `ecom-v2.yaml` and `recurring.yaml`
    /// header parameters `required: true`). Refuse.
    MissingAuthorization => authorization::missing, Refuse;
    /// `Authorization` without the `Bearer` scheme (`Basic …`, a bare token), or the
    /// scheme in the wrong case (`bearer`, `BEARER`), which the common-errors FAQ
    /// (<https://developer.vippsmobilepay.com/docs/knowledge-base/common-errors/>)
    /// says fails. Refuse, except lower-case `bearer` on Recurring: see
    /// `RecurringBearerCase`.
    BearerScheme => authorization::scheme, Refuse;
    /// `Bearer` with a malformed token: no space or several, empty, whitespace or
    /// quotes inside, not JWT-shaped (three base64url segments), several headers.
    /// Refuse.
    MalformedAuthorization => authorization::malformed, Refuse;
    /// A JWT whose `exp` claim is more than 5 minutes in the past (the leeway covers
    /// clock skew). Refuse.
    AccessTokenExpired => authorization::expired, Refuse;
    /// No `Ocp-Apim-Subscription-Key` on an ePayment, eCom, Recurring, Checkout or
    /// access token call (each spec declares the header `required: true`, e.g.
    /// `epayment.v1.yml #/components/parameters/APIM-Subscription-Key`). Refuse.
    MissingSubscriptionKey => subscription_key::missing, Refuse;
    /// `Ocp-Apim-Subscription-Key` empty, padded, quoted, with whitespace or control
    /// characters inside, or sent twice. Refuse.
    MalformedSubscriptionKey => subscription_key::malformed, Refuse;
    /// The token is known to have been fetched with another subscription key
    /// (fingerprints compared). Refuse.
    SubscriptionKeyMismatch => subscription_key::mismatch, Refuse;
    /// `Merchant-Serial-Number` is not an MSN (digits only, at most 10; a leading
    /// zero is allowed: `epayment.v1.yml #/components/schemas/MSN` is
    /// `^[0-9]{4,6}$` and the partner docs give five to seven digits) or is sent
    /// twice. Refuse.
    MalformedMsn => msn::malformed, Refuse;
    /// A header named `merchantSerialNumber` (or `merchant_serial_number`) and no
    /// `Merchant-Serial-Number`. Refuse.
    MsnHeaderMisspelled => msn::misspelled, Refuse;
    /// Partner keys (known from the subscription key or the token) without a
    /// `Merchant-Serial-Number` header. Refuse.
    PartnerMissingMsnHeader => msn::partner_missing_header, Refuse;
    /// The token is known to have been minted for another MSN than the header's.
    /// Refuse.
    TokenForOtherMsn => msn::token_for_other_msn, Refuse;
    /// Partner keys that list their MSNs, and the header's MSN is not among them.
    /// Refuse.
    PartnerMsnNotConnected => msn::partner_not_connected, Refuse;
    /// A buffered JSON body whose `merchantSerialNumber` (top level or
    /// `merchantInfo.merchantSerialNumber`) differs from the header. Refuse.
    MsnHeaderBodyMismatch => msn::body_mismatch, Refuse;
    /// No `Idempotency-Key` on an ePayment create, capture, refund or cancel, or one
    /// longer than 50 characters (`epayment.v1.yml
    /// #/components/parameters/Idempotency-Key`: `required`, `maxLength: 50`).
    /// Refuse.
    IdempotencyKey => idempotency::idempotency_key, Refuse;
    /// A well-known body (ePayment create, capture, refund; eCom initiate, capture,
    /// refund, cancel; Recurring draft/update agreement, charges; Checkout session)
    /// whose amount is not an integer in minor units within the bounds of its
    /// specification (ePayment 0 to 65,000,000; eCom initiate at least 100;
    /// Recurring pricing and charges int32 of at least 100, `suggestedMaxAmount`
    /// 100 to 2,000,000; see `body.rs` for each source). Refuse.
    InvalidAmount => body::amount, Refuse;
    /// A NOK amount from 1 to 99 øre on ePayment create: the API answers 6010
    /// "Amount too small" below the market minimum
    /// (<https://developer.vippsmobilepay.com/docs/APIs/epayment-api/errors/>).
    /// Warn: the schema allows it, and the minimum is not documented for every
    /// market.
    AmountTooSmall => body::amount_too_small, Warn;
    /// A well-known body with a currency other than `NOK`, `DKK`, `EUR`
    /// (`epayment.v1.yml #/components/schemas/Currency`). Refuse.
    InvalidCurrency => body::currency, Refuse;
    /// A phone number not of its specification's format: ePayment `^\d{10,15}$`,
    /// Recurring at most 15 characters, eCom `^\d{8}$`. Refuse.
    InvalidPhoneNumber => body::phone_number, Refuse;
    /// `returnUrl`, `callbackUrl`, `callbackPrefix`, `fallBack`,
    /// `merchantRedirectUrl`, `merchantAgreementUrl` not absolute `https://`
    /// (`http://` only on localhost outside production; an app scheme where the
    /// API allows one: always in the ePayment `returnUrl`), or longer than its
    /// specification's `maxLength` (eCom 255, Recurring 1024; none in ePayment).
    /// Refuse.
    InvalidUrl => body::url, Refuse;
    /// An ePayment `reference` not matching `^[a-zA-Z0-9-]{8,64}$` (today's docs;
    /// the 2023 spec said 50), an eCom `orderId` not matching
    /// `^[a-zA-Z0-9-]{1,50}$`, or a Checkout `reference` not 8 to 50 of
    /// `[-a-zA-Z0-9]`. Refuse.
    InvalidReference => body::reference, Refuse;
    /// `Vipps-System-Name` or `Vipps-System-Version` missing, or a `Vipps-System-*`
    /// header empty. Warn: the request works, support cannot find it.
    SystemHeaders => system_headers::system_headers, Warn;
    /// A `Vipps-System-*` header longer than 30 characters, the `maxLength` of
    /// every specification (ePayment, eCom, Recurring, Checkout, Webhooks). Refuse.
    SystemHeaderTooLong => system_headers::too_long, Refuse;
    /// A well-known body (see `InvalidAmount`) that is not valid JSON. Refuse.
    InvalidJsonBody => body::not_json, Refuse;
    /// No `Merchant-Serial-Number` on an ePayment call (`epayment.v1.yml`: required
    /// on every operation). Refuse.
    EPaymentMsnHeader => epayment::msn_header, Refuse;
    /// An ePayment path `{reference}` not matching `^[a-zA-Z0-9-]{8,64}$`. Refuse.
    EPaymentPathReference => epayment::path_reference, Refuse;
    /// ePayment `paymentDescription` not 3 to 100 characters. Refuse.
    EPaymentDescription => epayment::payment_description, Refuse;
    /// ePayment `userFlow` missing or not one of the four flows. Refuse.
    EPaymentUserFlow => epayment::user_flow, Refuse;
    /// ePayment `expiresAt` not an RFC 3339 date-time. Refuse.
    EPaymentExpiresAt => epayment::expires_at, Refuse;
    /// ePayment `metadata` with more than 5 properties or a non-string value. Refuse.
    EPaymentMetadata => epayment::metadata, Refuse;
    /// ePayment `customer.personalQr` not 5 to 255 characters. Refuse.
    EPaymentPersonalQr => epayment::personal_qr, Refuse;
    /// ePayment `qrFormat` with an unknown `format` or a `size` outside 100..=2000.
    /// Refuse.
    EPaymentQrFormat => epayment::qr_format, Refuse;
    /// No `Idempotency-Key` on a Recurring draft/update agreement or
    /// create/capture/refund charge (`recurring.yaml`: required). Refuse.
    RecurringIdempotencyKey => recurring::idempotency_key, Refuse;
    /// Recurring `productName` missing or over 45 characters, `productDescription`
    /// over 100. Refuse.
    RecurringTexts => recurring::texts, Refuse;
    /// Recurring `interval` missing on a draft, or its `unit`/`count` (1 to 31)
    /// invalid (a draft's `interval`, an update's required `interval.period`). Refuse.
    RecurringInterval => recurring::interval, Refuse;
    /// `bearer` (not `Bearer`) on a Recurring call: Recurring declares HTTP bearer
    /// auth, case-insensitive, and its official Postman collections sent
    /// `bearer`. Warn (the other APIs refuse it through `BearerScheme`).
    RecurringBearerCase => recurring::bearer_lower_case, Warn;
    /// No `X-Request-Id` on an eCom capture or refund (`ecom-v2.yaml`: required).
    /// Refuse.
    EComRequestId => ecom::request_id, Refuse;
    /// eCom `transactionText` missing (initiate, cancel) or over 100 characters.
    /// Refuse.
    EComTransactionText => ecom::transaction_text, Refuse;
    /// eCom `merchantInfo.merchantSerialNumber` not 5 or 6 digits. Refuse.
    EComBodyMsn => ecom::body_msn, Refuse;
    /// A Checkout call without `client_id`, `client_secret` or
    /// `Merchant-Serial-Number` (and no `Authorization`). Refuse.
    CheckoutCredentials => checkout::credentials, Refuse;
    /// Checkout `transaction.paymentDescription` missing or not 3 to 100
    /// characters. Refuse.
    CheckoutDescription => checkout::payment_description, Refuse;
    /// No `Ocp-Apim-Subscription-Key` on a Webhooks call (`webhooks.yaml`:
    /// required). Refuse.
    WebhooksSubscriptionKey => webhooks::subscription_key, Refuse;
    /// A webhook registration whose `url` is missing or not an absolute URI.
    /// Refuse.
    WebhooksUrl => webhooks::url, Refuse;
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which [`Action`] each [`RuleId`] takes. The default is each rule's
/// [`RuleId::default_action`].
///
/// ```
/// use tower_vipps::preflight::{Action, Policy, RuleId};
///
/// let policy = Policy::default().with(RuleId::InvalidAmount, Action::Warn);
/// assert_eq!(policy.action(RuleId::InvalidAmount), Action::Warn);
/// assert_eq!(policy.action(RuleId::BearerScheme), Action::Refuse);
/// assert_eq!(Policy::all(Action::Off).action(RuleId::BearerScheme), Action::Off);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Policy {
    actions: [Action; RuleId::COUNT],
}

impl Default for Policy {
    fn default() -> Self {
        let mut actions = [Action::Off; RuleId::COUNT];
        for id in RuleId::ALL {
            actions[*id as usize] = id.default_action();
        }
        Policy { actions }
    }
}

impl Policy {
    /// The same action for every rule (`Policy::all(Action::Warn)`: report only).
    pub fn all(action: Action) -> Self {
        Policy {
            actions: [action; RuleId::COUNT],
        }
    }

    /// Sets the action of one rule.
    pub fn with(mut self, rule: RuleId, action: Action) -> Self {
        self.set(rule, action);
        self
    }

    /// Sets the action of one rule, in place.
    pub fn set(&mut self, rule: RuleId, action: Action) {
        self.actions[rule as usize] = action;
    }

    /// The action of a rule.
    pub fn action(&self, rule: RuleId) -> Action {
        self.actions[rule as usize]
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(RuleId::ALL.iter().map(|id| (id.name(), self.action(*id))))
            .finish()
    }
}

#[derive(Clone)]
struct Config {
    keyring: Option<Keyring>,
    hosts: Hosts,
    known_tokens: Option<Arc<dyn KnownTokens>>,
    policy: Policy,
    allow_unknown_hosts: bool,
    body_cap: usize,
}

/// The layer of [`Preflight`]; also checks single requests with
/// [`PreflightLayer::check`].
///
/// `PreflightLayer::new()` works alone (official hosts, no keys); add the
/// [`Keyring`] for the key, MSN, environment and partner rules and the
/// [`KnownTokens`] of the token cache for the token rules.
#[derive(Clone)]
pub struct PreflightLayer {
    config: Arc<Config>,
}

impl Default for PreflightLayer {
    fn default() -> Self {
        PreflightLayer::new()
    }
}

impl fmt::Debug for PreflightLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &*self.config;
        f.debug_struct("PreflightLayer")
            .field("keyring", &c.keyring)
            .field("hosts", &c.hosts)
            .field("known_tokens", &c.known_tokens.is_some())
            .field("policy", &c.policy)
            .field("allow_unknown_hosts", &c.allow_unknown_hosts)
            .field("body_cap", &c.body_cap)
            .finish()
    }
}

impl PreflightLayer {
    /// A preflight with the default [`Policy`], the official hosts, no keys.
    pub fn new() -> Self {
        PreflightLayer {
            config: Arc::new(Config {
                keyring: None,
                hosts: Hosts::default(),
                known_tokens: None,
                policy: Policy::default(),
                allow_unknown_hosts: false,
                body_cap: DEFAULT_BODY_CAP,
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// The keys: enables the subscription key, MSN, environment and partner rules,
    /// and takes the keyring's hosts.
    pub fn keyring(self, keyring: Keyring) -> Self {
        self.edit(|c| {
            c.hosts = keyring.hosts().clone();
            c.keyring = Some(keyring);
        })
    }

    /// The hosts of each environment (already taken from the keyring, if set).
    pub fn hosts(self, hosts: Hosts) -> Self {
        self.edit(|c| c.hosts = hosts)
    }

    /// What the token cache knows of the tokens it minted: enables the token rules
    /// (another subscription key, another MSN, another environment).
    pub fn known_tokens(self, known: Arc<dyn KnownTokens>) -> Self {
        self.edit(|c| c.known_tokens = Some(known))
    }

    /// Replaces the whole policy.
    pub fn policy(self, policy: Policy) -> Self {
        self.edit(|c| c.policy = policy)
    }

    /// Sets the action of one rule.
    pub fn rule(self, rule: RuleId, action: Action) -> Self {
        self.edit(|c| c.policy.set(rule, action))
    }

    /// Lets requests with keys or tokens go to hosts of no known environment (a
    /// proxy), and runs the rules on them as on Vipps MobilePay calls. Default
    /// `false`: such requests are refused with [`Cause::UnknownHost`](crate::Cause::UnknownHost).
    /// Prefer registering the proxy's host with `Keyring::builder().host(..)`.
    pub fn allow_unknown_hosts(self, allow: bool) -> Self {
        self.edit(|c| c.allow_unknown_hosts = allow)
    }

    /// The most body bytes inspected (default 64 KiB); a longer buffered body is
    /// sent without its body rules.
    pub fn body_cap(self, cap: usize) -> Self {
        self.edit(|c| c.body_cap = cap)
    }

    /// Runs the rules over a request: `Err` with the first refusal (nothing should
    /// be sent), `Ok` otherwise, after logging the warnings.
    pub fn check<B: 'static>(&self, request: &Request<B>) -> Result<(), VippsError> {
        let config = &*self.config;
        let Some(scope) = Facts::scope(config, request) else {
            return Ok(());
        };
        let body = peek_request(request);
        if body.is_none() {
            crate::buffer::skipped_checks::<B>();
        }
        let facts = Facts::gather(config, request, scope, body.as_deref());
        for id in RuleId::ALL {
            let action = config.policy.action(*id);
            if action == Action::Off {
                continue;
            }
            let Some(diagnosis) = (id.check())(&facts) else {
                continue;
            };
            match action {
                Action::Refuse => {
                    tracing::debug!(
                        rule = id.name(),
                        code = diagnosis.code(),
                        "Vipps MobilePay preflight refused the request"
                    );
                    return Err(VippsError::refused(diagnosis)
                        .with_context(RequestContext::of(request, &config.hosts)));
                }
                Action::Warn => {
                    let evidence = diagnosis.evidence().join("; ");
                    tracing::warn!(
                        rule = id.name(),
                        code = diagnosis.code(),
                        api = facts.api.as_str(),
                        operation = facts.operation.unwrap_or(""),
                        evidence = %evidence,
                        "Vipps MobilePay preflight: this request will likely fail or be hard to trace; sending it anyway"
                    );
                }
                Action::Off => {}
            }
        }
        Ok(())
    }
}

impl<S> Layer<S> for PreflightLayer {
    type Service = Preflight<S>;

    fn layer(&self, inner: S) -> Preflight<S> {
        Preflight {
            inner,
            layer: self.clone(),
        }
    }
}

/// Checks each request before the inner service sees it; see the
/// [module docs](self).
#[derive(Clone, Debug)]
pub struct Preflight<S> {
    inner: S,
    layer: PreflightLayer,
}

impl<S> Preflight<S> {
    /// Wraps a service with the default preflight.
    pub fn new(inner: S) -> Self {
        PreflightLayer::new().layer(inner)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, Res> Service<Request<B>> for Preflight<S>
where
    S: Service<Request<B>, Response = Res>,
    S::Error: Into<BoxError>,
    B: 'static,
{
    type Response = Res;
    type Error = VippsError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner
            .poll_ready(cx)
            .map_err(|e| VippsError::from_boxed(e.into()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match self.layer.check(&request) {
            // The readied inner service stays ready for the next call.
            Err(refused) => ResponseFuture::refused(refused),
            Ok(()) => ResponseFuture {
                state: State::Called {
                    future: self.inner.call(request),
                },
            },
        }
    }
}

pin_project! {
    /// The response future of [`Preflight`].
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Refused { error: Option<VippsError> },
        Called { #[pin] future: F },
    }
}

impl<F> ResponseFuture<F> {
    fn refused(error: VippsError) -> Self {
        ResponseFuture {
            state: State::Refused { error: Some(error) },
        }
    }
}

impl<F, Res, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Res, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Res, VippsError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Refused { error } => match error.take() {
                Some(error) => Poll::Ready(Err(error)),
                None => panic!("ResponseFuture polled after completion"),
            },
            StateProj::Called { future } => future
                .poll(cx)
                .map_err(|e| VippsError::from_boxed(e.into())),
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// What the rules know of a request, gathered once.
pub(crate) struct Facts<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: headers::Headers<'a>,
    pub api: Api,
    pub operation: Option<&'static str>,
    /// The first `Merchant-Serial-Number` header, parsed (`None` without one).
    pub header_msn: Option<Result<crate::Msn, crate::MsnError>>,
    /// The path's segments ([`crate::context::segments`]; none past 8).
    pub segments: ([&'a str; 8], usize),
    /// The environment of the host, if it is a known one.
    pub environment: Option<Environment>,
    /// The URI names a host that belongs to no environment.
    pub unknown_host: bool,
    /// The scheme is not `https` and the host is not registered as plaintext.
    pub insecure_scheme: bool,
    pub allow_unknown_hosts: bool,
    /// The token of a well-formed `Authorization: Bearer <token>`, read when the
    /// value is not the cache's own (`token` is `None`): the cache's token answers
    /// every question a rule asks of it.
    pub bearer_token: Option<&'a str>,
    /// What the token was minted for, if the token cache knows it.
    pub minted: Option<MintedFor>,
    /// The cached token whose own `Authorization` value the request carries
    /// ([`KnownTokens::identify`]): its facts were worked out once.
    pub token: Option<Arc<AccessToken>>,
    /// The key set the request's keys belong to: the one whose subscription key the
    /// request carries, else the one the token was minted with.
    pub key_set: Option<&'a KeySet>,
    /// The key sets whose subscription key the request carries, any environment.
    pub sub_key_sets: &'a [KeySet],
    /// The body as JSON, when it is a well-known body or may hold an MSN.
    pub json: Option<sparse::Doc<'a>>,
    /// The well-known operation whose body the body rules read, worked out once.
    kind: Option<body::Kind>,
    /// A well-known body was buffered, and it is not valid JSON.
    pub body_not_json: bool,
}

impl<'a> Facts<'a> {
    /// `None` when the request is not a Vipps MobilePay call at all (an unknown host
    /// without keys or tokens): no rule applies.
    /// The environment of the request and whether its host is unknown, or `None`
    /// when an unknown host carries no secret (not a Vipps MobilePay call: not checked).
    fn scope<B>(config: &Config, request: &Request<B>) -> Option<(Option<Environment>, bool)> {
        let uri = request.uri();
        let environment = config.hosts.environment_of(uri);
        let unknown_host = environment.is_none() && uri.host().is_some();
        if unknown_host && !config.allow_unknown_hosts && !carries_secrets(request.headers()) {
            return None;
        }
        Some((environment, unknown_host))
    }

    fn gather<B: 'static>(
        config: &'a Config,
        request: &'a Request<B>,
        (environment, unknown_host): (Option<Environment>, bool),
        body: Option<&'a [u8]>,
    ) -> Facts<'a> {
        let uri = request.uri();
        let headers = headers::Headers::new(request.headers());
        let path = uri.path();
        let api = Api::from_path(path);
        let segments = crate::context::segments(path).unwrap_or_default();
        let op = segments
            .0
            .get(..segments.1)
            .and_then(|segments| crate::context::operation_of(api, request.method(), segments));
        let authorization_value = headers.first(Known::AUTHORIZATION);
        let sub_key_sets: &[KeySet] =
            match (&config.keyring, headers.first(Known::SUBSCRIPTION_KEY)) {
                (Some(keyring), Some(value)) => keyring.by_subscription_key(value.as_bytes()),
                _ => &[],
            };
        let env_key_set = sub_key_sets
            .iter()
            .find(|k| Some(k.environment()) == environment);
        // The cache holds one token for the key set and MSN the request names: the
        // request carries it, or it gets every check below.
        // The first `Merchant-Serial-Number`, parsed once for every rule.
        let header_msn = headers
            .first(Known::MERCHANT_SERIAL_NUMBER)
            .map(crate::Msn::from_header);
        let msn = header_msn.as_ref().and_then(|m| m.as_ref().ok()).copied();
        let token = match (&config.known_tokens, authorization_value, env_key_set) {
            (Some(known), Some(value), Some(keys)) => known.identify(value, keys, msn),
            _ => None,
        };
        let bearer_token = match token {
            Some(_) => None,
            None => authorization::bearer_token(headers.map()),
        };
        let minted = match (&token, &config.known_tokens, bearer_token) {
            (Some(token), _, _) => Some(token.minted_for()),
            (None, Some(known), Some(bearer)) => known.minted_for(bearer),
            _ => None,
        };
        let key_set = env_key_set.or(sub_key_sets.first()).or_else(|| {
            // The request's subscription key is not ours: the key set the token
            // was minted with, if the token is known (a mistake path).
            let minted = minted.as_ref()?;
            config.keyring.as_ref()?.key_sets().find(|k| {
                k.environment() == minted.environment
                    && *k.client_id() == *minted.client_id
                    && k.subscription_key_fingerprint() == minted.subscription_key
            })
        });
        let body = body.filter(|b| b.len() <= config.body_cap);
        let kind = body::kind(api, op);
        let mut body_not_json = false;
        let json = match body {
            Some(bytes) if !bytes.is_empty() => {
                let well_known = kind.is_some();
                let wanted = well_known
                    || (headers.has(Known::MERCHANT_SERIAL_NUMBER)
                        && contains(bytes, b"merchantSerialNumber"));
                let json =
                    if wanted && bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
                        sparse::parse(bytes)
                    } else {
                        None
                    };
                // Every well-known body is a JSON object: anything else is refused.
                body_not_json = well_known && json.is_none();
                json
            }
            _ => None,
        };
        Facts {
            method: request.method(),
            uri,
            headers,
            api,
            operation: op,
            header_msn,
            segments,
            environment,
            unknown_host,
            insecure_scheme: !crate::environment::is_https(uri)
                && !config.hosts.allows_plaintext(uri),
            allow_unknown_hosts: config.allow_unknown_hosts,
            bearer_token,
            minted,
            token,
            key_set,
            sub_key_sets,
            json,
            kind,
            body_not_json,
        }
    }
}

/// Whether a request carries a token or a key.
fn carries_secrets(headers: &HeaderMap) -> bool {
    headers.contains_key(http::header::AUTHORIZATION)
        || headers.contains_key(OCP_APIM_SUBSCRIPTION_KEY)
        || headers.contains_key(CLIENT_SECRET)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A short, non-secret description of a header value's shape for evidence: a word
/// shown only when it is a short run of letters (a scheme, a currency), never a
/// token.
pub(crate) fn shown_word(s: &str, max: usize) -> Option<&str> {
    (!s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphabetic())).then_some(s)
}

/// Evidence that a required header is missing or empty on a call (`what`, such as
/// "the eCom capture call"), or `None` when it is there.
pub(crate) fn missing_header(
    headers: &headers::Headers<'_>,
    name: Known,
    shown: &str,
    what: &str,
) -> Option<String> {
    match headers.first(name) {
        None => Some(format!("no `{shown}` header on {what}")),
        Some(v) if v.as_bytes().iter().all(u8::is_ascii_whitespace) => {
            Some(format!("the `{shown}` header is empty"))
        }
        Some(_) => None,
    }
}

#[cfg(test)]
pub(crate) mod test_support;
