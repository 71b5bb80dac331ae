//! The Vipps MobilePay APIs and the credentials each takes: one table, [`APIS`].
//!
//! Every layer that adds or checks credentials reads this table:
//! [`AuthLayer`](crate::AuthLayer) adds exactly the headers a request's API takes,
//! [`IdempotencyLayer`](crate::idempotency::IdempotencyLayer) adds an
//! `Idempotency-Key` only where the API has one, and
//! [`PreflightLayer`](crate::PreflightLayer) asks for a Bearer token or a
//! subscription key only where the API needs one.
//!
//! ```
//! use tower_vipps::api::{ApiSpec, Credentials, IdempotencyHeader};
//! use tower_vipps::Api;
//!
//! let spec = ApiSpec::of_path("/checkout/v3/session");
//! assert_eq!(spec.api, Api::Checkout);
//! assert_eq!(spec.credentials, Credentials::ClientCredentials);
//!
//! // The Login API's OIDC endpoints keep the caller's own credentials.
//! let spec = ApiSpec::of_path("/access-management-1.0/access/oauth2/token");
//! assert_eq!(spec.credentials, Credentials::Own);
//! assert_eq!(spec.idempotency, IdempotencyHeader::None);
//! ```
//!
//! # The table
//!
//! Matched on the first path segment, ignoring ASCII case (no allocation):
//!
//! | first segment | [`Api`] | [`Credentials`] | `Idempotency-Key` | `Merchant-Serial-Number` | source |
//! | --- | --- | --- | --- | --- | --- |
//! | `epayment` | ePayment | access token + subscription key | yes | yes | [ePayment API][epayment] |
//! | `recurring` | Recurring | access token + subscription key | yes | yes | [Recurring API][recurring] |
//! | `ecomm`, `ecom` | eCom v2 | access token + subscription key | no: `X-Request-Id` ([`IdempotencyHeader::RequestId`]) | yes | [eCom API][ecom] |
//! | `checkout` | Checkout v3 | `client_id`, `client_secret` + subscription key | yes | yes | [Checkout API][checkout] |
//! | `webhooks` | Webhooks | access token + subscription key | no | yes | [Webhooks API][webhooks] |
//! | `order-management` | Order Management | access token + subscription key | yes | yes | [Order Management API][order] |
//! | `report`, `settlement` | Report | access token + subscription key, or the caller's own token | no | yes | [Report API][report], [partner authentication][miami] |
//! | `management`, `partner`, `qr`, `agreements`, `sideloading` | Management | access token + subscription key, or the caller's own token | yes | yes | [Management API][management], [partner authentication][miami] |
//! | `access-management-1.0`, `vipps-login-ciba`, `vipps-login`, `vipps-userinfo-api`, `oauth2` | Login (OIDC token, userinfo, discovery, CIBA) | the caller's own, untouched | no | no | [Login API][login], [Login quick start][login-qs] |
//! | `accesstoken` (and `accessToken`), `miami` | Access token (`/accesstoken/get`, `/miami/v1/token`) | the caller's own, untouched | no | no | [Access Token API][token] |
//! | anything else on an official host | Other | access token + subscription key, or the caller's own token | yes | yes | the conservative default |
//!
//! What each [`Credentials`] means for `Auth`:
//!
//! - [`Credentials::AccessToken`]: `Authorization: Bearer <token>` from
//!   `POST /accesstoken/get` and the same `Ocp-Apim-Subscription-Key` the token was
//!   fetched with (the "standard authentication" of the [Access Token API][token]).
//!   `Auth` *replaces* a caller's own `Authorization` or subscription key with the
//!   ones of the key set the request's MSN maps to, and says so in a `debug` event
//!   (`tower_vipps::auth`, no value in it): a second token on the same request can
//!   only be a mistake (a stale token, another MSN's token).
//! - [`Credentials::ClientCredentials`]: the key set's `client_id`, `client_secret`
//!   and `Ocp-Apim-Subscription-Key` headers, no access token: the official
//!   [Checkout API reference][checkout] lists exactly these headers (plus
//!   `Merchant-Serial-Number` and `Vipps-System-*`) on `POST /checkout/v3/session`
//!   and `GET /checkout/v3/session/{reference}`. A caller's own `Authorization` is
//!   left as it is (some clients send a Bearer token too).
//! - [`Credentials::AccessTokenOrOwn`]: as [`Credentials::AccessToken`], unless the
//!   request carries its own `Authorization`: then the request is the caller's and
//!   goes untouched. This is how a partner's token from `POST /miami/v1/token`
//!   ("specialized authentication", valid 15 minutes, *no* subscription key) reaches
//!   the Management and Report APIs ([partner authentication][miami]).
//! - [`Credentials::Own`]: the request carries the caller's own credentials and goes
//!   out byte for byte as it came: the Login token endpoint (`Authorization: Basic`,
//!   `client_secret_basic`, or `client_secret_post` in the form), userinfo (the
//!   *user's* access token as `Authorization: Bearer`), discovery and JWKS (no
//!   credentials at all), and a caller's own access token requests. No key set is
//!   needed, and no MSN.
//!
//! **The default** for a path the table does not know, on an official host, is
//! [`Credentials::AccessTokenOrOwn`] with `Idempotency-Key` and
//! `Merchant-Serial-Number`: most Vipps MobilePay APIs take the standard access token
//! ("Main APIs: standard authentication"), and a request that already carries its
//! own `Authorization` is never overwritten. An `Idempotency-Key` the API does not
//! know is ignored, while one it needs and lacks makes a retry unsafe.
//!
//! [epayment]: https://developer.vippsmobilepay.com/api/epayment
//! [recurring]: https://developer.vippsmobilepay.com/api/recurring
//! [ecom]: https://developer.vippsmobilepay.com/api/ecom
//! [checkout]: https://developer.vippsmobilepay.com/api/checkout
//! [webhooks]: https://developer.vippsmobilepay.com/api/webhooks
//! [order]: https://developer.vippsmobilepay.com/api/order-management
//! [report]: https://developer.vippsmobilepay.com/docs/APIs/report-api/
//! [management]: https://developer.vippsmobilepay.com/docs/APIs/management-api/management-api-quick-start
//! [miami]: https://developer.vippsmobilepay.com/docs/APIs/access-token-api/partner-authentication
//! [login]: https://developer.vippsmobilepay.com/api/login
//! [login-qs]: https://developer.vippsmobilepay.com/docs/APIs/login-api/login-api-quick-start
//! [token]: https://developer.vippsmobilepay.com/api/access-token

use std::fmt;

/// Which Vipps MobilePay API a request is for, from its path (see [`APIS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Api {
    /// `/epayment/…`
    EPayment,
    /// `/ecomm/…` (legacy eCom).
    ECom,
    /// `/recurring/…`
    Recurring,
    /// `/checkout/…`
    Checkout,
    /// `/access-management-1.0/…`, `/vipps-login-…`: Login (OIDC).
    Login,
    /// `/accesstoken/get`, `/miami/v1/token`.
    AccessToken,
    /// `/management/…`, `/qr/…`, `/agreements/…` and other merchant management APIs.
    Management,
    /// `/partner/…`
    Partner,
    /// Anything else.
    #[default]
    Other,
    /// `/webhooks/…`
    Webhooks,
    /// `/order-management/…`
    OrderManagement,
    /// `/report/…`, `/settlement/…`
    Report,
}

impl Api {
    /// Every API, in declaration order.
    pub const ALL: [Api; 12] = [
        Api::EPayment,
        Api::ECom,
        Api::Recurring,
        Api::Checkout,
        Api::Login,
        Api::AccessToken,
        Api::Management,
        Api::Partner,
        Api::Other,
        Api::Webhooks,
        Api::OrderManagement,
        Api::Report,
    ];

    /// The API of a request path.
    #[inline]
    pub fn from_path(path: &str) -> Api {
        ApiSpec::of_path(path).api
    }

    /// The credentials this API takes (the same on every row of [`APIS`] naming
    /// it; [`DEFAULT_SPEC`]'s for [`Api::Other`]).
    pub fn credentials(self) -> Credentials {
        APIS.iter()
            .find(|spec| spec.api == self)
            .unwrap_or(&DEFAULT_SPEC)
            .credentials
    }

    /// A short name: `epayment`, `ecom`, …
    pub const fn as_str(self) -> &'static str {
        match self {
            Api::EPayment => "epayment",
            Api::ECom => "ecom",
            Api::Recurring => "recurring",
            Api::Checkout => "checkout",
            Api::Login => "login",
            Api::AccessToken => "accesstoken",
            Api::Management => "management",
            Api::Partner => "partner",
            Api::Other => "other",
            Api::Webhooks => "webhooks",
            Api::OrderManagement => "order-management",
            Api::Report => "report",
        }
    }

    /// The API of a short name as written by [`Api::as_str`] (case-insensitive).
    pub fn from_name(name: &str) -> Option<Api> {
        Api::ALL
            .into_iter()
            .find(|api| api.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The credentials an API takes; see the [module docs](self) for what `Auth` does
/// with each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Credentials {
    /// `Authorization: Bearer <access token>` and `Ocp-Apim-Subscription-Key`.
    AccessToken,
    /// `client_id`, `client_secret` and `Ocp-Apim-Subscription-Key` headers, no
    /// access token (Checkout v3).
    ClientCredentials,
    /// As [`Credentials::AccessToken`], unless the request carries its own
    /// `Authorization` (a partner token from `/miami/v1/token`): then untouched.
    AccessTokenOrOwn,
    /// The caller's own credentials, passed untouched (Login, access token calls).
    Own,
}

/// One row of [`APIS`]: what requests whose path starts with `prefix` take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiSpec {
    /// The first path segment (lowercase; matched ignoring ASCII case).
    pub prefix: &'static str,
    /// The API.
    pub api: Api,
    /// The credentials it takes.
    pub credentials: Credentials,
    /// Whether its state-changing calls take an `Idempotency-Key`: the same as
    /// `idempotency == IdempotencyHeader::Key`, which also says what eCom takes.
    #[deprecated(note = "read `idempotency`: `IdempotencyHeader::Key` is an `Idempotency-Key`")]
    pub idempotency_key: bool,
    /// The header that makes its state-changing calls safe to repeat, if any.
    pub idempotency: IdempotencyHeader,
    /// Whether it takes a `Merchant-Serial-Number` header.
    pub msn_header: bool,
}

/// The header an API reads to carry out a repeated state-changing call once: what
/// makes such a call safe to retry ([`crate::retry::safe_to_repeat`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdempotencyHeader {
    /// `Idempotency-Key` (ePayment, Recurring, Checkout, Order Management, the
    /// management APIs).
    Key,
    /// `X-Request-Id`: eCom v2's own header ("all requests with the same
    /// X-Request-Id are treated as the same request"); eCom ignores an
    /// `Idempotency-Key`.
    RequestId,
    /// None: a repeated call is carried out again (Webhooks registers a second
    /// webhook), or the API has no state-changing call the crate sends.
    None,
}

impl IdempotencyHeader {
    /// The header's name, if the API has one.
    pub fn header(self) -> Option<http::HeaderName> {
        match self {
            IdempotencyHeader::Key => Some(crate::headers::IDEMPOTENCY_KEY),
            IdempotencyHeader::RequestId => Some(crate::headers::X_REQUEST_ID),
            IdempotencyHeader::None => None,
        }
    }

    /// The header's name as the docs write it (`""` for none).
    pub fn shown(self) -> &'static str {
        match self {
            IdempotencyHeader::Key => "Idempotency-Key",
            IdempotencyHeader::RequestId => "X-Request-Id",
            IdempotencyHeader::None => "",
        }
    }
}

macro_rules! apis {
    ($( $prefix:literal => $api:ident, $cred:ident, idempotency: $idem:ident, msn: $msn:literal; )*) => {
        /// The table of APIs, one row per first path segment; see the
        /// [module docs](self).
        #[allow(deprecated)] // The deprecated column is filled for compatibility.
        pub const APIS: &[ApiSpec] = &[$(
            ApiSpec {
                prefix: $prefix,
                api: Api::$api,
                credentials: Credentials::$cred,
                idempotency_key: matches!(IdempotencyHeader::$idem, IdempotencyHeader::Key),
                idempotency: IdempotencyHeader::$idem,
                msn_header: $msn,
            },
        )*];
    };
}

apis! {
    "epayment" => EPayment, AccessToken, idempotency: Key, msn: true;
    "recurring" => Recurring, AccessToken, idempotency: Key, msn: true;
    "ecomm" => ECom, AccessToken, idempotency: RequestId, msn: true;
    "ecom" => ECom, AccessToken, idempotency: RequestId, msn: true;
    "checkout" => Checkout, ClientCredentials, idempotency: Key, msn: true;
    "webhooks" => Webhooks, AccessToken, idempotency: None, msn: true;
    "order-management" => OrderManagement, AccessToken, idempotency: Key, msn: true;
    "report" => Report, AccessTokenOrOwn, idempotency: None, msn: true;
    "settlement" => Report, AccessTokenOrOwn, idempotency: None, msn: true;
    "management" => Management, AccessTokenOrOwn, idempotency: Key, msn: true;
    "partner" => Partner, AccessTokenOrOwn, idempotency: Key, msn: true;
    "qr" => Management, AccessTokenOrOwn, idempotency: Key, msn: true;
    "agreements" => Management, AccessTokenOrOwn, idempotency: Key, msn: true;
    "sideloading" => Management, AccessTokenOrOwn, idempotency: Key, msn: true;
    "access-management-1.0" => Login, Own, idempotency: None, msn: false;
    "vipps-login-ciba" => Login, Own, idempotency: None, msn: false;
    "vipps-login" => Login, Own, idempotency: None, msn: false;
    "vipps-userinfo-api" => Login, Own, idempotency: None, msn: false;
    "oauth2" => Login, Own, idempotency: None, msn: false;
    "accesstoken" => AccessToken, Own, idempotency: None, msn: false;
    "miami" => AccessToken, Own, idempotency: None, msn: false;
}

/// The longest prefix of [`APIS`] (checked by a test).
const PREFIX_MAX: usize = 24;

/// What a path the table does not know takes: the conservative default (see the
/// [module docs](self)).
#[allow(deprecated)] // The deprecated column is filled for compatibility.
pub const DEFAULT_SPEC: ApiSpec = ApiSpec {
    prefix: "",
    api: Api::Other,
    credentials: Credentials::AccessTokenOrOwn,
    idempotency_key: true,
    idempotency: IdempotencyHeader::Key,
    msn_header: true,
};

impl ApiSpec {
    /// The row of a request path: a match on its first segment, ignoring ASCII
    /// case; [`DEFAULT_SPEC`] when no row matches.
    #[inline]
    pub fn of_path(path: &str) -> &'static ApiSpec {
        let path = path.strip_prefix('/').unwrap_or(path).as_bytes();
        // The first segment, lower-cased, in one byte loop; then a length compare
        // and a plain compare per row: paths are short, the table has some twenty
        // rows, and this runs a few times per request. A segment longer than every
        // prefix matches none.
        let mut first = [0u8; PREFIX_MAX];
        let mut len = 0;
        for &b in path {
            if b == b'/' {
                break;
            }
            let Some(slot) = first.get_mut(len) else {
                return &DEFAULT_SPEC;
            };
            *slot = b.to_ascii_lowercase();
            len += 1;
        }
        let first = first.get(..len).unwrap_or_default();
        APIS.iter()
            .find(|spec| spec.prefix.len() == len && spec.prefix.as_bytes() == first)
            .unwrap_or(&DEFAULT_SPEC)
    }

    /// Whether `Auth` adds the access token (and subscription key) to a request of
    /// this API that carries `Authorization` or not as `has_authorization` says.
    #[inline]
    pub fn takes_access_token(&self, has_authorization: bool) -> bool {
        match self.credentials {
            Credentials::AccessToken => true,
            Credentials::AccessTokenOrOwn => !has_authorization,
            Credentials::ClientCredentials | Credentials::Own => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apis() {
        assert_eq!(Api::from_path("/ecomm/v2/payments"), Api::ECom);
        assert_eq!(Api::from_path("/accesstoken/get"), Api::AccessToken);
        assert_eq!(Api::from_path("/accessToken/get"), Api::AccessToken);
        assert_eq!(Api::from_path("/miami/v1/token"), Api::AccessToken);
        assert_eq!(Api::from_path("/EPayment/v1/payments"), Api::EPayment);
        assert_eq!(Api::from_path("/epaymentx/v1"), Api::Other);
        assert_eq!(Api::from_path("/vipps-userinfo-api"), Api::Login);
        assert_eq!(
            Api::from_path(&format!("/{}/v1", "e".repeat(400))),
            Api::Other
        );
        assert_eq!(Api::from_path("/épayment/v1"), Api::Other);
        assert_eq!(Api::from_path("/"), Api::Other);
        assert_eq!(Api::from_path(""), Api::Other);
        assert_eq!(Api::from_path("epayment"), Api::EPayment);
        assert_eq!(Api::from_path("/webhooks/v1/webhooks"), Api::Webhooks);
        assert_eq!(Api::from_name("ePayment"), Some(Api::EPayment));
        for api in Api::ALL {
            assert_eq!(Api::from_name(api.as_str()), Some(api));
        }
    }

    #[test]
    fn prefixes_are_unique_and_lowercase() {
        for (i, spec) in APIS.iter().enumerate() {
            assert!(spec.prefix.len() <= PREFIX_MAX, "{}", spec.prefix);
            #[allow(deprecated)]
            let key = spec.idempotency_key;
            assert_eq!(
                key,
                spec.idempotency == IdempotencyHeader::Key,
                "{}",
                spec.prefix
            );
            assert_eq!(spec.prefix, spec.prefix.to_ascii_lowercase());
            assert!(APIS[..i].iter().all(|s| s.prefix != spec.prefix));
        }
    }

    #[test]
    fn one_credentials_per_api() {
        for spec in APIS {
            assert_eq!(spec.api.credentials(), spec.credentials, "{}", spec.prefix);
        }
    }

    #[test]
    fn credentials() {
        let of = |p| ApiSpec::of_path(p).credentials;
        assert_eq!(of("/epayment/v1/payments"), Credentials::AccessToken);
        assert_eq!(of("/checkout/v3/session"), Credentials::ClientCredentials);
        assert_eq!(
            of("/access-management-1.0/access/userinfo"),
            Credentials::Own
        );
        assert_eq!(of("/report/v2/ledgers"), Credentials::AccessTokenOrOwn);
        assert_eq!(of("/unknown/v1/x"), Credentials::AccessTokenOrOwn);
        assert!(ApiSpec::of_path("/epayment/x").takes_access_token(true));
        assert!(!ApiSpec::of_path("/report/x").takes_access_token(true));
        assert!(ApiSpec::of_path("/report/x").takes_access_token(false));
    }
}
