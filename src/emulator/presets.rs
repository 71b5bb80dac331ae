//! The emulator's preset keys, sales units (MSNs) and test users.

use std::ops::RangeInclusive;

use crate::{Environment, KeySet, Msn};

/// What a preset key set is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// Merchant keys of a sales unit with the ePayment API.
    Merchant,
    /// Merchant keys of a sales unit that only has the Login API: ePayment calls
    /// answer `403 Merchant Not Allowed for Ecommerce Payment`.
    LoginOnly,
    /// Partner keys, valid for the connected MSNs ([`Credentials::connected_msns`]).
    Partner,
    /// Merchant keys whose subscription key gets tokens but has no active
    /// subscription to the ePayment API product: API calls answer `401`
    /// `{"statusCode": 401, "message": "Subscription not found."}`.
    Unsubscribed,
}

/// A preset key set of the emulator: `client_id`, `client_secret`,
/// `Ocp-Apim-Subscription-Key`, and the MSN (merchant keys) or the connected MSNs
/// (partner keys). These are fake keys, known only to the emulator.
///
/// ```
/// use tower_vipps::Environment;
/// use tower_vipps::emulator::{self, Role};
///
/// let keys = emulator::TEST_MERCHANT;
/// assert_eq!(keys.environment(), Environment::Test);
/// assert_eq!(keys.role(), Role::Merchant);
/// assert_eq!(keys.msn().unwrap().get(), emulator::TEST_MSN);
/// assert!(!format!("{keys:?}").contains(keys.client_secret()));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Credentials {
    environment: Environment,
    role: Role,
    msn: u64,
    client_id: &'static str,
    client_secret: &'static str,
    subscription_key: &'static str,
}

impl Credentials {
    /// The environment the keys belong to.
    pub const fn environment(&self) -> Environment {
        self.environment
    }

    /// Merchant, Login-only merchant, or partner.
    pub const fn role(&self) -> Role {
        self.role
    }

    /// The MSN of merchant keys; `None` for partner keys.
    pub fn msn(&self) -> Option<Msn> {
        match self.role {
            Role::Partner => None,
            Role::Merchant | Role::LoginOnly | Role::Unsubscribed => Msn::new(self.msn).ok(),
        }
    }

    /// The MSNs these keys may act for: the merchant's own, or the 1,000 MSNs
    /// connected to the partner (in production: there are no partner keys in test).
    pub fn connected_msns(&self) -> impl Iterator<Item = Msn> + use<> {
        let range = match self.role {
            Role::Partner => PRODUCTION_PARTNER_MSNS,
            _ => self.msn..=self.msn,
        };
        range.filter_map(|n| Msn::new(n).ok())
    }

    /// `client_id`.
    pub const fn client_id(&self) -> &'static str {
        self.client_id
    }

    /// `client_secret`.
    pub const fn client_secret(&self) -> &'static str {
        self.client_secret
    }

    /// `Ocp-Apim-Subscription-Key`.
    pub const fn subscription_key(&self) -> &'static str {
        self.subscription_key
    }

    /// These keys as a [`KeySet`]. Partner keys do not list their connected MSNs,
    /// so a request for an unconnected MSN is sent and refused by the emulator
    /// (`403`); list them with [`KeySet::connected_msns`] to refuse it before
    /// sending.
    pub fn key_set(&self) -> KeySet {
        let built = match self.msn() {
            Some(msn) => KeySet::merchant(
                self.environment,
                msn,
                self.client_id,
                self.client_secret,
                self.subscription_key,
            ),
            None => KeySet::partner(
                self.environment,
                self.client_id,
                self.client_secret,
                self.subscription_key,
            ),
        };
        built.expect("the preset keys are valid")
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Credentials");
        d.field("environment", &self.environment)
            .field("role", &self.role);
        if let Some(msn) = self.msn() {
            d.field("msn", &msn);
        }
        d.field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// The MSN of [`TEST_MERCHANT`]: `123456`.
pub const TEST_MSN: u64 = 123456;
/// The MSN of [`TEST_LOGIN_ONLY`]: `123457`.
pub const TEST_LOGIN_ONLY_MSN: u64 = 123457;
/// The MSN of [`PRODUCTION_MERCHANT`]: `654321`.
pub const PRODUCTION_MSN: u64 = 654321;
/// The MSN of [`PRODUCTION_LOGIN_ONLY`]: `654322`.
pub const PRODUCTION_LOGIN_ONLY_MSN: u64 = 654322;
/// The MSN of [`TEST_UNSUBSCRIBED`]: `123458`.
pub const TEST_UNSUBSCRIBED_MSN: u64 = 123458;
/// The MSN of [`PRODUCTION_UNSUBSCRIBED`]: `654323`.
pub const PRODUCTION_UNSUBSCRIBED_MSN: u64 = 654323;
/// The 1,000 production MSNs connected to [`PRODUCTION_PARTNER`]:
/// `400000..=400999`.
pub const PRODUCTION_PARTNER_MSNS: RangeInclusive<u64> = 400_000..=400_999;

/// Merchant keys of MSN [`TEST_MSN`] (`123456`) in the test environment; the sales
/// unit has the ePayment API and takes NOK.
pub const TEST_MERCHANT: Credentials = Credentials {
    environment: Environment::Test,
    role: Role::Merchant,
    msn: TEST_MSN,
    client_id: "7e570000-0000-4000-8000-000000123456",
    client_secret: "emulator-test-merchant-123456-secret",
    subscription_key: "7e570000000000000000000000123456",
};

/// Merchant keys of MSN [`TEST_LOGIN_ONLY_MSN`] (`123457`) in the test
/// environment: a sales unit with only the Login API.
pub const TEST_LOGIN_ONLY: Credentials = Credentials {
    environment: Environment::Test,
    role: Role::LoginOnly,
    msn: TEST_LOGIN_ONLY_MSN,
    client_id: "7e570000-0000-4000-8000-000000123457",
    client_secret: "emulator-test-login-only-123457-secret",
    subscription_key: "7e570000000000000000000000123457",
};

/// Merchant keys of MSN [`PRODUCTION_MSN`] (`654321`) in production; the sales unit
/// has the ePayment API and takes NOK.
pub const PRODUCTION_MERCHANT: Credentials = Credentials {
    environment: Environment::Production,
    role: Role::Merchant,
    msn: PRODUCTION_MSN,
    client_id: "d0d00000-0000-4000-8000-000000654321",
    client_secret: "emulator-production-merchant-654321-secret",
    subscription_key: "d0d00000000000000000000000654321",
};

/// Merchant keys of MSN [`PRODUCTION_LOGIN_ONLY_MSN`] (`654322`) in production: a
/// sales unit with only the Login API.
pub const PRODUCTION_LOGIN_ONLY: Credentials = Credentials {
    environment: Environment::Production,
    role: Role::LoginOnly,
    msn: PRODUCTION_LOGIN_ONLY_MSN,
    client_id: "d0d00000-0000-4000-8000-000000654322",
    client_secret: "emulator-production-login-only-654322-secret",
    subscription_key: "d0d00000000000000000000000654322",
};

/// Partner keys in production, connected to the MSNs [`PRODUCTION_PARTNER_MSNS`]
/// (`400000..=400999`). There are no partner keys in the test environment:
/// partner functionality is not available there
/// (<https://developer.vippsmobilepay.com/docs/partner/partner-keys/>), and
/// [`KeySet::partner`] refuses [`Environment::Test`].
pub const PRODUCTION_PARTNER: Credentials = Credentials {
    environment: Environment::Production,
    role: Role::Partner,
    msn: 0,
    client_id: "d0d00000-0000-4000-8000-0000000000ff",
    client_secret: "emulator-production-partner-secret",
    subscription_key: "d0d000000000000000000000000000ff",
};

/// Merchant keys of MSN [`TEST_UNSUBSCRIBED_MSN`] (`123458`) in the test
/// environment, whose subscription key has no active ePayment subscription: the
/// token call works, API calls answer `401` "Subscription not found.".
pub const TEST_UNSUBSCRIBED: Credentials = Credentials {
    environment: Environment::Test,
    role: Role::Unsubscribed,
    msn: TEST_UNSUBSCRIBED_MSN,
    client_id: "7e570000-0000-4000-8000-000000123458",
    client_secret: "emulator-test-unsubscribed-123458-secret",
    subscription_key: "7e570000000000000000000000123458",
};

/// Merchant keys of MSN [`PRODUCTION_UNSUBSCRIBED_MSN`] (`654323`) in production,
/// whose subscription key has no active ePayment subscription.
pub const PRODUCTION_UNSUBSCRIBED: Credentials = Credentials {
    environment: Environment::Production,
    role: Role::Unsubscribed,
    msn: PRODUCTION_UNSUBSCRIBED_MSN,
    client_id: "d0d00000-0000-4000-8000-000000654323",
    client_secret: "emulator-production-unsubscribed-654323-secret",
    subscription_key: "d0d00000000000000000000000654323",
};

/// Accounting keys: `client_id` and `client_secret` for
/// `POST /miami/v1/token`, the specialized token endpoint, which takes no
/// subscription key. They give the Report API only, for the sales units whose
/// merchants gave the accounting partner access
/// (<https://developer.vippsmobilepay.com/docs/APIs/access-token-api/partner-authentication>).
///
/// ```
/// use tower_vipps::emulator;
///
/// let keys = emulator::PRODUCTION_ACCOUNTING;
/// assert_eq!(keys.msns(), &[emulator::PRODUCTION_MSN]);
/// assert!(!format!("{keys:?}").contains(keys.client_secret()));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccountingCredentials {
    client_id: &'static str,
    client_secret: &'static str,
    msns: &'static [u64],
}

impl AccountingCredentials {
    /// `client_id`.
    pub const fn client_id(&self) -> &'static str {
        self.client_id
    }

    /// `client_secret`.
    pub const fn client_secret(&self) -> &'static str {
        self.client_secret
    }

    /// The sales units whose reports these keys may read.
    pub const fn msns(&self) -> &'static [u64] {
        self.msns
    }
}

impl std::fmt::Debug for AccountingCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountingCredentials")
            .field("client_id", &self.client_id)
            .field("msns", &self.msns)
            .finish_non_exhaustive()
    }
}

/// Accounting keys in production, with access to the reports of
/// [`PRODUCTION_MSN`]. There are none in test: the Report API's partner access is
/// production only.
pub const PRODUCTION_ACCOUNTING: AccountingCredentials = AccountingCredentials {
    client_id: "d0d00000-0000-4000-8000-00000000acc0",
    client_secret: "emulator-production-accounting-secret",
    msns: &[PRODUCTION_MSN],
};

/// Every preset key set.
pub const ALL_CREDENTIALS: [Credentials; 7] = [
    TEST_MERCHANT,
    TEST_LOGIN_ONLY,
    TEST_UNSUBSCRIBED,
    PRODUCTION_MERCHANT,
    PRODUCTION_LOGIN_ONLY,
    PRODUCTION_PARTNER,
    PRODUCTION_UNSUBSCRIBED,
];

/// A test user who has logged in to the test app: a payment to this number is
/// `AUTHORIZED` at once.
pub const READY_USER: &str = "4791000001";
/// A test user who has logged in but has not yet accepted: a payment to this number
/// stays `CREATED` until approved with
/// `POST /epayment/v1/test/payments/{reference}/approve` (or
/// [`Emulator::approve`](super::Emulator::approve)).
pub const WAITING_USER: &str = "4791000002";
/// A new test user who has not logged in to the test app yet: creating a payment
/// answers `400` problem details, `ErrorCode` `10020`.
pub const NOT_LOGGED_IN_USER: &str = "4791000003";
/// A user under 15 years old: creating a payment answers `400`, `ErrorCode` `7010`
/// (Customer not found).
pub const UNDER_15_USER: &str = "4791000004";
/// A well-formed number that is not a Vipps MobilePay user (as is every number not
/// listed here): `400`, `ErrorCode` `7010`.
pub const UNKNOWN_USER: &str = "4799999999";

/// How a test user answers a payment request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum User {
    Ready,
    Waiting,
    NotLoggedIn,
    Unknown,
}

pub(crate) fn user(phone: &str) -> User {
    match phone {
        READY_USER => User::Ready,
        WAITING_USER => User::Waiting,
        NOT_LOGGED_IN_USER => User::NotLoggedIn,
        _ => User::Unknown,
    }
}
