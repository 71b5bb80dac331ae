//! What the emulator counts and records: each request's [`Endpoint`], the
//! [`Counts`] per endpoint, and the [`SeenRequest`] log entries.

use std::fmt;

use http::request::Parts;
use http::{HeaderMap, Method, StatusCode};

use super::{Shared, checkout, ecom, login, recurring, report, server};
use crate::Environment;

/// The endpoints the emulator counts requests for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Endpoint {
    /// `POST /accesstoken/get`.
    AccessToken,
    /// `POST /epayment/v1/payments`.
    CreatePayment,
    /// `GET /epayment/v1/payments/{reference}`.
    GetPayment,
    /// `GET /epayment/v1/payments/{reference}/events`.
    PaymentEvents,
    /// `POST /epayment/v1/payments/{reference}/capture`.
    Capture,
    /// `POST /epayment/v1/payments/{reference}/refund`.
    Refund,
    /// `POST /epayment/v1/payments/{reference}/cancel`.
    Cancel,
    /// `POST /epayment/v1/test/payments/{reference}/approve` (test only).
    ForceApprove,
    /// Any other method or path.
    Other,
    /// `POST /checkout/v3/session`.
    CheckoutCreateSession,
    /// `GET /checkout/v3/session/{reference}`.
    CheckoutGetSession,
    /// `POST /access-management-1.0/access/oauth2/token` (Login).
    LoginToken,
    /// `GET /access-management-1.0/access/userinfo` (Login).
    LoginUserInfo,
    /// `GET /access-management-1.0/access/.well-known/openid-configuration` (Login).
    LoginDiscovery,
    /// `POST /recurring/v3/agreements`.
    RecurringCreateAgreement,
    /// `GET /recurring/v3/agreements/{agreementId}`.
    RecurringGetAgreement,
    /// `PATCH /recurring/v3/agreements/{agreementId}`.
    RecurringUpdateAgreement,
    /// `PATCH /recurring/v3/agreements/{agreementId}/accept` (test only).
    RecurringAcceptAgreement,
    /// `POST /recurring/v3/agreements/{agreementId}/charges`.
    RecurringCreateCharge,
    /// `GET /recurring/v3/agreements/{agreementId}/charges/{chargeId}`.
    RecurringGetCharge,
    /// `POST /ecomm/v2/payments`.
    EcomInitiate,
    /// `POST /ecomm/v2/payments/{orderId}/capture`.
    EcomCapture,
    /// `POST /ecomm/v2/payments/{orderId}/refund`.
    EcomRefund,
    /// `PUT /ecomm/v2/payments/{orderId}/cancel`.
    EcomCancel,
    /// `GET /ecomm/v2/payments/{orderId}/details`.
    EcomDetails,
    /// `POST /ecomm/v2/integration-test/payments/{orderId}/approve` (test only).
    EcomForceApprove,
    /// `POST /miami/v1/token`, the specialized token endpoint (accounting keys).
    SpecializedToken,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 27] = [
        Endpoint::AccessToken,
        Endpoint::CreatePayment,
        Endpoint::GetPayment,
        Endpoint::PaymentEvents,
        Endpoint::Capture,
        Endpoint::Refund,
        Endpoint::Cancel,
        Endpoint::ForceApprove,
        Endpoint::Other,
        Endpoint::CheckoutCreateSession,
        Endpoint::CheckoutGetSession,
        Endpoint::LoginToken,
        Endpoint::LoginUserInfo,
        Endpoint::LoginDiscovery,
        Endpoint::RecurringCreateAgreement,
        Endpoint::RecurringGetAgreement,
        Endpoint::RecurringUpdateAgreement,
        Endpoint::RecurringAcceptAgreement,
        Endpoint::RecurringCreateCharge,
        Endpoint::RecurringGetCharge,
        Endpoint::EcomInitiate,
        Endpoint::EcomCapture,
        Endpoint::EcomRefund,
        Endpoint::EcomCancel,
        Endpoint::EcomDetails,
        Endpoint::EcomForceApprove,
        Endpoint::SpecializedToken,
    ];

    /// The endpoint of a method and path.
    ///
    /// ```
    /// use http::Method;
    /// use tower_vipps::emulator::Endpoint;
    ///
    /// assert_eq!(Endpoint::of(&Method::POST, "/epayment/v1/payments/abc-12345/capture"), Endpoint::Capture);
    /// assert_eq!(Endpoint::of(&Method::GET, "/accesstoken/get"), Endpoint::Other);
    /// ```
    pub fn of(method: &Method, path: &str) -> Endpoint {
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        if let Some(endpoint) = checkout::endpoint(method, &segments)
            .or_else(|| login::endpoint(method, &segments))
            .or_else(|| recurring::endpoint(method, &segments))
            .or_else(|| ecom::endpoint(method, &segments))
            .or_else(|| report::endpoint(method, &segments))
        {
            return endpoint;
        }
        match (method.as_str(), segments.as_slice()) {
            // Official code writes both `/accesstoken/get` and `/accessToken/get`.
            ("POST", [token, "get"]) if token.eq_ignore_ascii_case("accesstoken") => {
                Endpoint::AccessToken
            }
            ("POST", ["epayment", "v1", "payments"]) => Endpoint::CreatePayment,
            ("GET", ["epayment", "v1", "payments", r]) if !r.is_empty() => Endpoint::GetPayment,
            ("GET", ["epayment", "v1", "payments", r, "events"]) if !r.is_empty() => {
                Endpoint::PaymentEvents
            }
            ("POST", ["epayment", "v1", "payments", r, op]) if !r.is_empty() => match *op {
                "capture" => Endpoint::Capture,
                "refund" => Endpoint::Refund,
                "cancel" => Endpoint::Cancel,
                _ => Endpoint::Other,
            },
            ("POST", ["epayment", "v1", "test", "payments", r, "approve"]) if !r.is_empty() => {
                Endpoint::ForceApprove
            }
            _ => Endpoint::Other,
        }
    }

    pub(super) const fn index(self) -> usize {
        self as usize
    }
}

/// Requests seen per [`Endpoint`], refused ones included.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts(pub(super) [usize; Endpoint::ALL.len()]);

impl Counts {
    /// The requests seen for one endpoint.
    pub fn get(&self, endpoint: Endpoint) -> usize {
        self.0[endpoint.index()]
    }

    /// All requests seen.
    pub fn total(&self) -> usize {
        self.0.iter().sum()
    }

    /// The requests seen for every endpoint but the token endpoint.
    pub fn api_calls(&self) -> usize {
        self.total() - self.get(Endpoint::AccessToken)
    }
}

impl fmt::Debug for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                Endpoint::ALL
                    .iter()
                    .map(|e| (e, self.get(*e)))
                    .filter(|(_, n)| *n > 0),
            )
            .finish()
    }
}

/// One request the emulator saw. The values of `Authorization`,
/// `Ocp-Apim-Subscription-Key` and `client_secret`, of any header named like a
/// credential, and of any header that carries a key's secret, a subscription key
/// or a token (a secret sent in the wrong header) are marked sensitive, so `Debug`
/// does not show them.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SeenRequest {
    /// The listener it reached.
    pub environment: Environment,
    /// Its endpoint.
    pub endpoint: Endpoint,
    /// The method.
    pub method: Method,
    /// The path and query.
    pub path: String,
    /// The request headers.
    pub headers: HeaderMap,
    /// The status answered; `None` when the connection was dropped.
    pub status: Option<StatusCode>,
}

impl SeenRequest {
    pub(super) fn new(
        shared: &Shared,
        environment: Environment,
        endpoint: Endpoint,
        parts: &Parts,
        status: Option<StatusCode>,
    ) -> Self {
        SeenRequest {
            environment,
            endpoint,
            method: parts.method.clone(),
            path: parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
            headers: server::redact(&parts.headers, &shared.keys),
            status,
        }
    }
}
