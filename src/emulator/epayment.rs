//! The ePayment API: payments, their state rules, idempotency and test users.

use crate::preflight::epayment::{MetadataValue, metadata_entry_problem};
use std::collections::HashMap;

use bytes::Bytes;
use http::{HeaderMap, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::bodies::{self, Body};
use super::dates::rfc3339;
use super::presets::{self, User};
use super::{Endpoint, Environment};
use crate::Msn;

/// The most characters of an `Idempotency-Key`.
const IDEMPOTENCY_KEY_MAX: usize = 50;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Created,
    Authorized,
    Terminated,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Created => "CREATED",
            State::Authorized => "AUTHORIZED",
            State::Terminated => "TERMINATED",
        }
    }
}

#[derive(Clone, Debug)]
struct Event {
    name: &'static str,
    amount: u64,
    timestamp: u64,
    idempotency_key: Option<String>,
}

#[derive(Clone, Debug)]
struct Payment {
    reference: String,
    currency: String,
    amount: u64,
    state: State,
    authorized: u64,
    captured: u64,
    refunded: u64,
    cancelled: u64,
    payment_method: String,
    psp_reference: String,
    /// `None` for `PUSH_MESSAGE`: the user is reached through the app.
    redirect_url: Option<String>,
    /// The create request's `metadata`, echoed on GET (the metadata guide).
    metadata: Option<Value>,
    events: Vec<Event>,
    /// How many of `events` were handed to the webhooks.
    published: usize,
}

impl Payment {
    fn money(&self, value: u64) -> Value {
        json!({"currency": self.currency, "value": value})
    }

    fn aggregate(&self) -> Value {
        json!({
            "authorizedAmount": self.money(self.authorized),
            "cancelledAmount": self.money(self.cancelled),
            "capturedAmount": self.money(self.captured),
            "refundedAmount": self.money(self.refunded),
        })
    }

    fn details(&self) -> Value {
        let mut details = json!({
            "aggregate": self.aggregate(),
            "amount": self.money(self.amount),
            "state": self.state.as_str(),
            "paymentMethod": {"type": self.payment_method},
            "profile": {},
            "pspReference": self.psp_reference,
            "reference": self.reference,
        });
        if let Some(url) = &self.redirect_url {
            details["redirectUrl"] = Value::String(url.clone());
        }
        if let Some(metadata) = &self.metadata {
            details["metadata"] = metadata.clone();
        }
        details
    }

    fn modification(&self) -> Value {
        json!({
            "amount": self.money(self.amount),
            "state": self.state.as_str(),
            "aggregate": self.aggregate(),
            "pspReference": self.psp_reference,
            "reference": self.reference,
        })
    }

    fn events(&self) -> Value {
        Value::Array(
            self.events
                .iter()
                .map(|e| {
                    json!({
                        "reference": self.reference,
                        "pspReference": self.psp_reference,
                        "name": e.name,
                        "amount": self.money(e.amount),
                        "timestamp": rfc3339(e.timestamp),
                        "idempotencyKey": e.idempotency_key,
                        "success": true,
                    })
                })
                .collect(),
        )
    }

    fn event(&mut self, name: &'static str, amount: u64, now: u64, key: Option<&str>) {
        self.events.push(Event {
            name,
            amount,
            timestamp: now,
            idempotency_key: key.map(str::to_owned),
        });
    }

    fn authorize(&mut self, now: u64) {
        self.state = State::Authorized;
        self.authorized = self.amount;
        self.event("AUTHORIZED", self.amount, now, None);
    }
}

/// A stored successful answer, replayed for the same `Idempotency-Key` and body.
struct Stored {
    body_hash: [u8; 32],
    status: u16,
    body: Bytes,
}

type PaymentKey = (Environment, Msn, String);
type IdempotencyScope = (Environment, Msn, String, String);

/// Every payment of an emulator, by environment, MSN and reference.
#[derive(Default)]
pub(crate) struct Payments {
    payments: HashMap<PaymentKey, Payment>,
    idempotency: HashMap<IdempotencyScope, Stored>,
    /// Payments that may have events not yet handed to the webhooks.
    touched: Vec<PaymentKey>,
}

/// An event for the webhooks: where it belongs, and its payload.
pub(crate) struct Published {
    pub environment: Environment,
    pub msn: Msn,
    pub reference: String,
    pub name: &'static str,
    pub body: Bytes,
}

/// One ePayment request, already authenticated for `msn`.
pub(crate) struct Call<'a> {
    pub environment: Environment,
    pub msn: Msn,
    pub endpoint: Endpoint,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a Bytes,
    pub now: u64,
    pub base_url: &'a str,
    /// The sales unit's currency: `NOK`, `DKK` or `EUR`.
    pub currency: &'a str,
}

impl Call<'_> {
    /// The problem `instance`: the path without the `/epayment` prefix.
    fn instance(&self) -> &str {
        self.path.strip_prefix("/epayment").unwrap_or(self.path)
    }

    /// The `{reference}` path segment.
    fn reference(&self) -> &str {
        let rest = self
            .path
            .strip_prefix("/epayment/v1/test/payments/")
            .or_else(|| self.path.strip_prefix("/epayment/v1/payments/"))
            .unwrap_or("");
        rest.split('/').next().unwrap_or("")
    }
}

fn json_response(status: u16, value: &Value) -> Response<Body> {
    bodies::respond(
        status,
        bodies::JSON,
        serde_json::to_vec(value).unwrap_or_default(),
    )
}

impl Payments {
    /// Whether the sales unit has a payment with this reference.
    pub(crate) fn contains(&self, environment: Environment, msn: Msn, reference: &str) -> bool {
        self.payments
            .contains_key(&(environment, msn, reference.to_owned()))
    }

    /// Answers an authenticated ePayment call.
    pub(crate) fn handle(&mut self, call: &Call<'_>) -> Response<Body> {
        match call.endpoint {
            Endpoint::GetPayment | Endpoint::PaymentEvents => self.read(call),
            Endpoint::ForceApprove => self.approve_call(call),
            Endpoint::CreatePayment | Endpoint::Capture | Endpoint::Refund | Endpoint::Cancel => {
                self.idempotent(call)
            }
            _ => bodies::respond(404, bodies::JSON, bodies::NOT_FOUND),
        }
    }

    /// The events recorded since the last call, in order, as webhook payloads
    /// (none are built unless `build`).
    pub(crate) fn take_events(&mut self, build: bool) -> Vec<Published> {
        let mut out = Vec::new();
        for key in std::mem::take(&mut self.touched) {
            let Some(payment) = self.payments.get_mut(&key) else {
                continue;
            };
            let (environment, msn, _) = key;
            let unpublished = if build {
                payment.published
            } else {
                payment.events.len()
            };
            for event in payment.events.iter().skip(unpublished) {
                let body = json!({
                    "msn": msn.to_string(),
                    "reference": payment.reference,
                    "pspReference": payment.psp_reference,
                    "name": event.name,
                    "amount": payment.money(event.amount),
                    "timestamp": rfc3339(event.timestamp),
                    "idempotencyKey": event.idempotency_key,
                    "success": true,
                });
                out.push(Published {
                    environment,
                    msn,
                    reference: payment.reference.clone(),
                    name: event.name,
                    body: serde_json::to_vec(&body).unwrap_or_default().into(),
                });
            }
            payment.published = payment.events.len();
        }
        out
    }

    fn read(&self, call: &Call<'_>) -> Response<Body> {
        let reference = call.reference();
        match self
            .payments
            .get(&(call.environment, call.msn, reference.to_owned()))
        {
            None => not_found(call, reference),
            Some(p) if call.endpoint == Endpoint::PaymentEvents => json_response(200, &p.events()),
            Some(p) => json_response(200, &p.details()),
        }
    }

    fn approve_call(&mut self, call: &Call<'_>) -> Response<Body> {
        let reference = call.reference();
        match self.approve(call.environment, call.msn, reference, call.now) {
            None => not_found(call, reference),
            Some(false) => bodies::approve_failed(call.instance()),
            Some(true) => bodies::respond(200, bodies::JSON, ""),
        }
    }

    /// Approves a `CREATED` payment as its user would: `None` if there is no such
    /// payment, `Some(false)` if it is not `CREATED`.
    pub(crate) fn approve(
        &mut self,
        environment: Environment,
        msn: Msn,
        reference: &str,
        now: u64,
    ) -> Option<bool> {
        self.touched.push((environment, msn, reference.to_owned()));
        let payment = self
            .payments
            .get_mut(&(environment, msn, reference.to_owned()))?;
        if payment.state != State::Created {
            return Some(false);
        }
        payment.authorize(now);
        Some(true)
    }

    /// The POSTs that need an `Idempotency-Key`: replays a stored answer for the same
    /// key and body, refuses the same key with another body.
    fn idempotent(&mut self, call: &Call<'_>) -> Response<Body> {
        let instance = call.instance();
        let key = match call.headers.get(crate::headers::IDEMPOTENCY_KEY) {
            None => {
                return bodies::invalid_field(
                    instance,
                    "Idempotency-Key",
                    "The Idempotency-Key field is required.",
                );
            }
            Some(v) => match v.to_str() {
                Ok(k) if !k.trim().is_empty() && k.len() <= IDEMPOTENCY_KEY_MAX => k.to_owned(),
                Ok(k) if k.trim().is_empty() => {
                    return bodies::invalid_field(
                        instance,
                        "Idempotency-Key",
                        "The Idempotency-Key field is required.",
                    );
                }
                _ => {
                    return bodies::invalid_field(
                        instance,
                        "Idempotency-Key",
                        "The field Idempotency-Key must be a string with a maximum length of 50.",
                    );
                }
            },
        };
        let scope_path = match call.endpoint {
            Endpoint::CreatePayment => "create".to_owned(),
            _ => call.path.to_owned(),
        };
        let scope = (call.environment, call.msn, scope_path, key.clone());
        let body_hash: [u8; 32] = Sha256::digest(call.body).into();
        if let Some(stored) = self.idempotency.get(&scope) {
            if stored.body_hash == body_hash {
                return bodies::respond(stored.status, bodies::JSON, stored.body.clone());
            }
            return bodies::idempotency_conflict(instance, &key);
        }
        let response = match call.endpoint {
            Endpoint::CreatePayment => self.create(call, &key),
            _ => self.modify(call, &key),
        };
        if response.status().is_success() {
            let body = response.body().clone();
            // A `Full` body holds its bytes; read them back without awaiting.
            let bytes = full_bytes(body);
            self.idempotency.insert(
                scope,
                Stored {
                    body_hash,
                    status: response.status().as_u16(),
                    body: bytes,
                },
            );
        }
        response
    }

    fn create(&mut self, call: &Call<'_>, key: &str) -> Response<Body> {
        let instance = call.instance();
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(call.body) else {
            return bodies::invalid_field(
                instance,
                "request",
                "The request body must be a JSON object.",
            );
        };
        let reference = match body.get("reference") {
            Some(Value::String(r)) if valid_reference(r) => r.clone(),
            _ => return bodies::invalid_reference(instance),
        };
        let (value, currency) = match money(body.get("amount"), call.currency) {
            Ok(m) => m,
            Err(res) => return res(instance),
        };
        // The documented minimum is NOK's; none is known for DKK and EUR.
        if value < 100 && currency == "NOK" {
            return bodies::amount_too_small(instance);
        }
        let payment_method = match body
            .get("paymentMethod")
            .and_then(|m| m.get("type"))
            .and_then(Value::as_str)
        {
            Some(t @ ("WALLET" | "CARD")) => t.to_owned(),
            _ => {
                return bodies::invalid_field(
                    instance,
                    "paymentMethod.type",
                    "The PaymentMethod.Type field is required and must be WALLET or CARD.",
                );
            }
        };
        let user_flow = match body.get("userFlow").and_then(Value::as_str) {
            Some(f @ ("PUSH_MESSAGE" | "NATIVE_REDIRECT" | "WEB_REDIRECT" | "QR")) => f,
            _ => {
                return bodies::invalid_field(
                    instance,
                    "userFlow",
                    "The UserFlow field is required and must be PUSH_MESSAGE, NATIVE_REDIRECT, WEB_REDIRECT or QR.",
                );
            }
        };
        match body.get("returnUrl") {
            None | Some(Value::Null) => {
                if matches!(user_flow, "WEB_REDIRECT" | "NATIVE_REDIRECT") {
                    return bodies::invalid_field(
                        instance,
                        "returnUrl",
                        "The ReturnUrl field is required for the WEB_REDIRECT and NATIVE_REDIRECT user flows.",
                    );
                }
            }
            // https or an app's custom scheme (`myapp://`), whatever the flow: the
            // create guide and `CreatePaymentRequest.returnUrl`.
            Some(Value::String(url)) if valid_return_url(url, call.environment) => {}
            Some(Value::String(url)) => return bodies::invalid_url(instance, url),
            Some(other) => return bodies::invalid_url(instance, &other.to_string()),
        }
        let phone = match body.get("customer").and_then(|c| c.get("phoneNumber")) {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) if valid_msisdn(p) => Some(p.clone()),
            Some(_) => return bodies::invalid_phone(instance),
        };
        // `#/components/schemas/Metadata`: at most 5 properties (values strings;
        // the metadata guide shows numbers too), keys of at most 100 characters and
        // values of at most 500: Preflight's own check.
        let metadata = match body.get("metadata") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m))
                if m.len() <= 5
                    && m.iter().all(|(k, v)| {
                        let v = match v {
                            Value::String(s) => MetadataValue::Text(s),
                            Value::Number(_) => MetadataValue::Number,
                            _ => MetadataValue::Other,
                        };
                        metadata_entry_problem(k, v).is_none()
                    }) =>
            {
                Some(Value::Object(m.clone()))
            }
            Some(_) => {
                return bodies::invalid_field(
                    instance,
                    "metadata",
                    "The field Metadata must be an object of at most 5 string values, keys of at most 100 characters and values of at most 500.",
                );
            }
        };
        if phone.is_none() && user_flow == "PUSH_MESSAGE" {
            return bodies::invalid_field(
                instance,
                "customer.phoneNumber",
                "The Customer.PhoneNumber field is required for the PUSH_MESSAGE user flow.",
            );
        }
        let payment_key = (call.environment, call.msn, reference.clone());
        if self.payments.contains_key(&payment_key) {
            return bodies::reference_exists(instance, &reference);
        }
        let user = phone.as_deref().map(presets::user);
        match user {
            Some(User::NotLoggedIn) => return bodies::test_user_not_ready(instance),
            Some(User::Unknown) => return bodies::customer_not_found(instance),
            Some(User::Ready | User::Waiting) | None => {}
        }
        // PUSH_MESSAGE: no redirect, the user gets a push (the create guide);
        // QR: the URL of the QR code; the redirect flows: the landing page.
        let redirect_url = match user_flow {
            "PUSH_MESSAGE" => None,
            "QR" => Some(format!("{}/qr?reference={reference}", call.base_url)),
            _ => Some(format!("{}/landing?reference={reference}", call.base_url)),
        };
        let mut payment = Payment {
            reference: reference.clone(),
            currency,
            amount: value,
            state: State::Created,
            authorized: 0,
            captured: 0,
            refunded: 0,
            cancelled: 0,
            payment_method,
            psp_reference: format!("{}", fastrand::u64(1_000_000_000..10_000_000_000)),
            redirect_url: redirect_url.clone(),
            metadata,
            events: Vec::new(),
            published: 0,
        };
        payment.event("CREATED", value, call.now, Some(key));
        if user == Some(User::Ready) {
            payment.authorize(call.now);
        }
        self.touched.push(payment_key.clone());
        self.payments.insert(payment_key, payment);
        let mut created = json!({"reference": reference});
        if let Some(url) = redirect_url {
            created["redirectUrl"] = Value::String(url);
        }
        json_response(201, &created)
    }

    fn modify(&mut self, call: &Call<'_>, key: &str) -> Response<Body> {
        let instance = call.instance();
        let reference = call.reference();
        self.touched
            .push((call.environment, call.msn, reference.to_owned()));
        let Some(payment) =
            self.payments
                .get_mut(&(call.environment, call.msn, reference.to_owned()))
        else {
            return not_found(call, reference);
        };
        let body: Value = if call.body.trim_ascii().is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(call.body) {
                Ok(v) => v,
                Err(_) => {
                    return bodies::invalid_field(
                        instance,
                        "request",
                        "The request body must be a JSON object.",
                    );
                }
            }
        };
        if call.endpoint == Endpoint::Cancel {
            // The cancel guide
            // (https://developer.vippsmobilepay.com/docs/APIs/epayment-api/operations/cancel/):
            // before authorization the payment is TERMINATED with the whole amount
            // cancelled; after it, a cancel is allowed until the payment is fully
            // captured, releases what is not captured, and the payment stays
            // AUTHORIZED with `cancelledAmount` changed.
            match payment.state {
                State::Created => {
                    payment.state = State::Terminated;
                    payment.cancelled = payment.amount;
                    payment.event("TERMINATED", payment.amount, call.now, Some(key));
                }
                State::Authorized => {
                    let remaining = payment.authorized - payment.captured - payment.cancelled;
                    if remaining == 0 && payment.cancelled == 0 {
                        return bodies::cancel_captured(instance);
                    }
                    if remaining > 0 {
                        payment.cancelled += remaining;
                        payment.event("CANCELLED", remaining, call.now, Some(key));
                    }
                }
                State::Terminated => {}
            }
            return json_response(200, &payment.modification());
        }
        let (value, currency) = match money(body.get("modificationAmount"), call.currency) {
            Ok(m) => m,
            Err(res) => return res(instance),
        };
        if currency != payment.currency {
            return bodies::invalid_currency(instance);
        }
        if call.endpoint == Endpoint::Capture {
            match payment.state {
                State::Created => return bodies::capture_before_reservation(instance),
                State::Terminated => return bodies::capture_cancelled(instance),
                State::Authorized if payment.cancelled > 0 => {
                    return bodies::capture_cancelled(instance);
                }
                State::Authorized => {}
            }
            if value > payment.authorized - payment.captured - payment.cancelled {
                return bodies::capture_too_high(instance);
            }
            payment.captured += value;
            payment.event("CAPTURED", value, call.now, Some(key));
        } else {
            if payment.state == State::Created {
                return bodies::refund_before_reservation(instance);
            }
            if value > payment.captured - payment.refunded {
                return bodies::not_enough_refundable(instance);
            }
            payment.refunded += value;
            payment.event("REFUNDED", value, call.now, Some(key));
        }
        json_response(200, &payment.modification())
    }
}

type ErrorFn = fn(&str) -> Response<Body>;

/// An amount `{"value": <integer 0..=65,000,000>, "currency": …}`
/// (`#/components/schemas/Amount`): 4040 when the value is not such an integer,
/// 5040 when the currency is not the sales unit's (`currency`: NOK, DKK or EUR).
fn money(value: Option<&Value>, currency: &str) -> Result<(u64, String), ErrorFn> {
    let Some(Value::Object(amount)) = value else {
        return Err(bodies::invalid_amount);
    };
    let value = match amount.get("value").and_then(Value::as_u64) {
        Some(v) if v <= 65_000_000 => v,
        _ => return Err(bodies::invalid_amount),
    };
    match amount.get("currency").and_then(Value::as_str) {
        Some(c) if c == currency => Ok((value, c.to_owned())),
        _ => Err(bodies::invalid_currency),
    }
}

fn not_found(call: &Call<'_>, reference: &str) -> Response<Body> {
    let instance = format!("/v1/payments/{reference}");
    bodies::reference_not_found(&instance, reference, &call.msn.to_string())
}

pub(crate) fn full_bytes(body: Body) -> Bytes {
    use http_body::Body as _;
    let mut body = std::pin::pin!(body);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match body.as_mut().poll_frame(&mut cx) {
        std::task::Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
        _ => Bytes::new(),
    }
}

/// `^[a-zA-Z0-9-]{8,64}$`.
pub(crate) fn valid_reference(r: &str) -> bool {
    (8..=64).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// An MSISDN: country code and subscriber number, digits only, 10 to 15 digits, no
/// leading zero (`4712345678`).
pub(crate) fn valid_msisdn(p: &str) -> bool {
    (10..=15).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) && !p.starts_with('0')
}

/// A `returnUrl`: a [`valid_url`], or an app's custom scheme (`myapp://path`).
pub(crate) fn valid_return_url(url: &str, environment: Environment) -> bool {
    if valid_url(url, environment) {
        return true;
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    let mut b = scheme.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        && !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https")
        && !crate::preflight::body::looks_like_http_typo(&scheme.to_ascii_lowercase())
        && !rest.is_empty()
        && !url
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
}

/// An absolute `https://` URL with a host; in the test environment also
/// `http://localhost` and `http://127.0.0.1`. No length limit: the spec sets none.
pub(crate) fn valid_url(url: &str, environment: Environment) -> bool {
    if url
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return false;
    }
    let Ok(uri) = url.parse::<http::Uri>() else {
        return false;
    };
    let Some(host) = uri.host().filter(|h| !h.is_empty()) else {
        return false;
    };
    match uri.scheme_str() {
        Some("https") => host.contains('.') || host == "localhost",
        Some("http") => {
            environment == Environment::Test && matches!(host, "localhost" | "127.0.0.1")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validators() {
        assert!(valid_reference("acme-shop-123-order123abc"));
        assert!(!valid_reference("short"));
        assert!(!valid_reference("has space in it"));
        assert!(!valid_reference(&"a".repeat(65)));
        assert!(valid_msisdn("4712345678"));
        assert!(!valid_msisdn("+4712345678"));
        assert!(!valid_msisdn("004712345678"));
        assert!(!valid_msisdn("12345678"));
        assert!(!valid_msisdn("47 12345678"));
        assert!(valid_url("https://example.com/return", Environment::Test));
        assert!(!valid_url("htt://example.com", Environment::Test));
        assert!(!valid_url("http://example.com", Environment::Test));
        assert!(valid_url("http://localhost:3000/x", Environment::Test));
        assert!(!valid_url(
            "http://localhost:3000/x",
            Environment::Production
        ));
        assert!(!valid_url("https://", Environment::Test));
        assert!(!valid_url("/relative", Environment::Test));
        assert!(valid_return_url("myapp://return", Environment::Production));
        assert!(!valid_return_url("htt:/x", Environment::Test));
        assert!(!valid_return_url("http://example.com", Environment::Test));
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_764_059_400), "2025-11-25T08:30:00Z");
    }
}
