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
mod facts;
mod headers;
mod idempotency;
mod layer;
pub(crate) mod msn;
pub(crate) mod recurring;
mod service;
mod sparse;
mod subscription_key;
mod system_headers;
mod webhooks;

use std::fmt;

use crate::Diagnosis;
#[cfg(doc)]
use crate::{Hosts, Keyring, VippsError, token::KnownTokens};
pub(crate) use facts::Facts;
use headers::Known;
pub use layer::PreflightLayer;
pub use service::{Preflight, ResponseFuture};

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
    /// create/capture/refund charge (`recurring.yaml`: required), or one over 40
    /// characters or holding `#`, `?`, `/` or `\`. Refuse.
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
