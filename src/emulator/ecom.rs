//! eCom v2 (legacy; `ecom-v2.yaml`): initiate, capture, refund, cancel, details,
//! and the test environment's force approve.
//!
//! - `POST /ecomm/v2/payments` (`InitiatePaymentCommand`) → `200` `{orderId,
//!   url}`. A `customerInfo.mobileNumber` of [`READY_USER`](super::READY_USER)
//!   (without `47`) is reserved at once; without a number, or with
//!   [`WAITING_USER`](super::WAITING_USER)'s, the payment waits for approval;
//!   any other number is `User 81`, "User not registered with Vipps".
//! - `POST …/{orderId}/capture`, `…/refund` (`PaymentActionsRequest`),
//!   `PUT …/{orderId}/cancel` → `TransactionResponse`, `RefundTransactionResponse`,
//!   `CancelTransactionResponse`; `GET …/{orderId}/details` → `TransactionDetails`.
//! - `POST /ecomm/v2/integration-test/payments/{orderId}/approve` (test only).
//!
//! `X-Request-Id` (at most 40 characters) makes capture, refund and approve
//! idempotent per order, MSN and endpoint: the same id and body answer the first
//! success again; another body is `Payment 93`. It is required for a partial
//! capture or refund, as the spec says. The body's
//! `merchantInfo.merchantSerialNumber` must be the MSN of the call (`Merchant
//! 37`). Errors are eCom's arrays, `[{"errorGroup", "errorCode", "errorMessage",
//! "contextId"}]`, in the corpus' format.

// A refusal is the response itself; it is built once per request, never hot.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, Method, Response};
use serde_json::{Map, Value, json};

use super::bodies::{self, Body};
use super::dates::rfc3339;
use super::epayment::{valid_return_url, valid_url};
use super::presets::{self, User};
use super::recurring::JSON_UTF8;
use super::replays::{Replay, Replays};
use super::{Endpoint, Shared};
use crate::preflight::body::ecom_mobile_number as norwegian_number;
use crate::{Environment, Msn};

/// The most characters of an `X-Request-Id`.
const REQUEST_ID_MAX: usize = 40;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Initiated,
    Reserved,
    Cancelled,
}

struct Payment {
    order_id: String,
    amount: u64,
    text: String,
    state: State,
    captured: u64,
    refunded: u64,
    transaction_id: String,
    /// Oldest first (the API answers newest first).
    log: Vec<Value>,
}

impl Payment {
    fn summary(&self) -> Value {
        let remaining = match self.state {
            State::Cancelled => 0,
            _ => self.amount.saturating_sub(self.captured),
        };
        json!({
            "capturedAmount": self.captured,
            "refundedAmount": self.refunded,
            "remainingAmountToCapture": remaining,
            "remainingAmountToRefund": self.captured.saturating_sub(self.refunded),
        })
    }

    fn log(&mut self, operation: &str, amount: u64, now: u64, request_id: Option<&str>) {
        let mut entry = json!({
            "amount": amount,
            "operation": operation,
            "operationSuccess": true,
            "timeStamp": rfc3339(now),
            "transactionId": self.transaction_id,
            "transactionText": self.text,
        });
        if let Some(id) = request_id {
            entry["requestId"] = Value::String(id.to_owned());
        }
        self.log.push(entry);
    }

    fn transaction(&self, amount: u64, status: &str, now: u64) -> Value {
        json!({
            "amount": amount,
            "status": status,
            "timeStamp": rfc3339(now),
            "transactionId": self.transaction_id,
            "transactionText": self.text,
        })
    }
}

type PaymentKey = (Environment, Msn, String);

/// `MerchantInfo`'s URLs: `maxLength: 255`.
const URL_MAX: usize = 255;

/// A `transactionText`: required, at most 100 characters, no minimum
/// (`TransactionInfoInitiate`, `Transaction`, `CancelTransaction`).
fn transaction_text(text: Option<&Value>) -> Result<(), Response<Body>> {
    match text.and_then(Value::as_str) {
        None => Err(invalid_request(
            "transaction.transactionText",
            "transactionText must not be null",
        )),
        Some(t) if t.chars().count() > 100 => Err(invalid_request(
            "transaction.transactionText",
            "Invalid transactionText",
        )),
        Some(_) => Ok(()),
    }
}

/// An amount in øre: at least 100 (`pattern: '^\d{3,}$'`), an int32.
fn amount_ok(amount: u64) -> bool {
    (100..=i32::MAX as u64).contains(&amount)
}

/// `MerchantInfo`'s other strings, each `maxLength: 255` when given.
const MERCHANT_INFO_STRINGS: [&str; 3] =
    ["consentRemovalPrefix", "shippingDetailsPrefix", "authToken"];

/// Every eCom payment of an emulator, by environment, MSN and `orderId`.
#[derive(Default)]
pub(crate) struct EcomPayments {
    payments: HashMap<PaymentKey, Payment>,
    replays: Replays,
}

/// The endpoint of an eCom v2 path, if it is one.
pub(crate) fn endpoint(method: &Method, segments: &[&str]) -> Option<Endpoint> {
    Some(match (method.as_str(), segments) {
        ("POST", ["ecomm", "v2", "payments"]) => Endpoint::EcomInitiate,
        ("POST", ["ecomm", "v2", "payments", o, "capture"]) if !o.is_empty() => {
            Endpoint::EcomCapture
        }
        ("POST", ["ecomm", "v2", "payments", o, "refund"]) if !o.is_empty() => Endpoint::EcomRefund,
        ("PUT", ["ecomm", "v2", "payments", o, "cancel"]) if !o.is_empty() => Endpoint::EcomCancel,
        ("GET", ["ecomm", "v2", "payments", o, "details"]) if !o.is_empty() => {
            Endpoint::EcomDetails
        }
        ("POST", ["ecomm", "v2", "integration-test", "payments", o, "approve"])
            if !o.is_empty() =>
        {
            Endpoint::EcomForceApprove
        }
        _ => return None,
    })
}

/// An eCom error body: an array of one error, as the corpus writes it.
pub(crate) fn error(status: u16, group: &str, code: &str, message: &str) -> Response<Body> {
    let mut out = String::with_capacity(192);
    out.push_str("[{\"errorGroup\": ");
    bodies::json_string(&mut out, group);
    out.push_str(", \"errorCode\": ");
    bodies::json_string(&mut out, code);
    out.push_str(", \"errorMessage\": ");
    bodies::json_string(&mut out, message);
    out.push_str(", \"contextId\": ");
    bodies::json_string(&mut out, &format!("{:032x}", fastrand::u128(..)));
    out.push_str("}]");
    bodies::respond(status, JSON_UTF8, out)
}

fn invalid_request(field: &str, message: &str) -> Response<Body> {
    error(400, "InvalidRequest", field, message)
}

fn not_found() -> Response<Body> {
    error(400, "Merchant", "35", "Registered order not found")
}

fn not_in_valid_state() -> Response<Body> {
    error(
        400,
        "Merchant",
        "22",
        "Reference orderId is not in valid state",
    )
}

fn json_answer(value: &Value) -> Response<Body> {
    bodies::respond(200, JSON_UTF8, value.to_string())
}

/// One authenticated eCom call.
struct Call<'a> {
    environment: Environment,
    msn: Msn,
    endpoint: Endpoint,
    order_id: &'a str,
    headers: &'a HeaderMap,
    body: &'a Bytes,
    now: u64,
    base_url: &'a str,
}

impl Call<'_> {
    fn key(&self) -> PaymentKey {
        (self.environment, self.msn, self.order_id.to_owned())
    }

    /// The body as an object whose `merchantInfo.merchantSerialNumber`, if any, is
    /// the MSN of the call (`required`: it must be there).
    fn json(&self, required: bool) -> Result<Map<String, Value>, Response<Body>> {
        let body = match serde_json::from_slice::<Value>(self.body) {
            Ok(Value::Object(map)) => map,
            _ if !required && self.body.trim_ascii().is_empty() => Map::new(),
            _ => return Err(invalid_request("body", "Invalid JSON body")),
        };
        let msn = body
            .get("merchantInfo")
            .and_then(|m| m.get("merchantSerialNumber"));
        match msn {
            None | Some(Value::Null) if required => Err(invalid_request(
                "merchantInfo.merchantSerialNumber",
                "merchantSerialNumber must not be null",
            )),
            None | Some(Value::Null) => Ok(body),
            Some(Value::String(m)) if m.len() >= 5 && m.bytes().all(|b| b.is_ascii_digit()) => {
                if m.parse::<u64>().ok() == Some(self.msn.get()) {
                    Ok(body)
                } else {
                    Err(error(
                        400,
                        "Merchant",
                        "37",
                        "Merchant not available, deactivated or blocked",
                    ))
                }
            }
            Some(_) => Err(invalid_request(
                "merchantInfo.merchantSerialNumber",
                "Invalid merchantSerialNumber",
            )),
        }
    }
}

/// Answers an authenticated eCom call for `msn`.
pub(crate) fn handle(
    shared: &Shared,
    environment: Environment,
    msn: Msn,
    endpoint: Endpoint,
    parts: &Parts,
    body: &Bytes,
) -> Response<Body> {
    if endpoint == Endpoint::EcomForceApprove && environment == Environment::Production {
        // "Only available in our Test environment."
        return bodies::respond(404, bodies::JSON, bodies::NOT_FOUND);
    }
    let path = parts.uri.path();
    let order_id = path
        .strip_prefix("/ecomm/v2/integration-test/payments/")
        .or_else(|| path.strip_prefix("/ecomm/v2/payments/"))
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("");
    let call = Call {
        environment,
        msn,
        endpoint,
        order_id,
        headers: &parts.headers,
        body,
        now: shared.now(),
        base_url: &shared.base_urls[super::env_index(environment)],
    };
    let Ok(mut state) = shared.ecom.lock() else {
        return error(500, "VippsError", "99", "Internal error");
    };
    match endpoint {
        Endpoint::EcomInitiate => state.initiate(&call),
        Endpoint::EcomDetails => state.details(&call),
        Endpoint::EcomCancel => state.cancel(&call),
        _ => state.keyed(&call),
    }
}

impl EcomPayments {
    /// Whether the sales unit has a payment with this `orderId`.
    pub(crate) fn contains(&self, environment: Environment, msn: Msn, order_id: &str) -> bool {
        self.payments
            .contains_key(&(environment, msn, order_id.to_owned()))
    }

    fn initiate(&mut self, call: &Call<'_>) -> Response<Body> {
        let body = match call.json(true) {
            Ok(body) => body,
            Err(res) => return res,
        };
        let Some(info) = body.get("merchantInfo").and_then(Value::as_object) else {
            return invalid_request("merchantInfo", "merchantInfo must not be null");
        };
        let is_app = info.get("isApp").and_then(Value::as_bool) == Some(true);
        // `MerchantInfo`: the URLs are at most 255 characters.
        match info.get("callbackPrefix").and_then(Value::as_str) {
            Some(url) if url.chars().count() <= URL_MAX && valid_url(url, call.environment) => {}
            _ => return invalid_request("callbackPrefix", "callbackPrefix is not valid"),
        }
        match info.get("fallBack").and_then(Value::as_str) {
            Some(url)
                if url.chars().count() <= URL_MAX
                    && (is_app || valid_return_url(url, call.environment)) => {}
            _ => return invalid_request("fallBack", "fallBack is not valid"),
        }
        for field in MERCHANT_INFO_STRINGS {
            match info.get(field) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) if s.chars().count() <= URL_MAX => {}
                Some(_) => return invalid_request(field, &format!("{field} is not valid")),
            }
        }
        let Some(customer) = body.get("customerInfo").and_then(Value::as_object) else {
            return invalid_request("customerInfo", "customerInfo must not be null");
        };
        let Some(tx) = body.get("transaction").and_then(Value::as_object) else {
            return invalid_request("transaction", "transaction must not be null");
        };
        let Some(amount) = tx
            .get("amount")
            .and_then(Value::as_u64)
            .filter(|a| amount_ok(*a))
        else {
            return invalid_request("amount", "Invalid amount");
        };
        let order_id = match tx.get("orderId").and_then(Value::as_str) {
            Some(o)
                if (1..=50).contains(&o.len())
                    && o.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
            {
                o.to_owned()
            }
            _ => return error(400, "Merchant", "21", "Reference orderId is not valid"),
        };
        if let Err(res) = transaction_text(tx.get("transactionText")) {
            return res;
        }
        let text = tx
            .get("transactionText")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        // A number still malformed after the API's corrections is refused on
        // the field, as the error corpus records the API answering
        // 004712345678: `[{"errorGroup": "InvalidRequest", "errorCode":
        // "mobileNumber", "errorMessage": "Invalid MSISDN: 004712345678"}]`,
        // the eCom guide's "InvalidRequest: The field name will be the error
        // code". `ecom-v2.yaml` words it otherwise (`CustomerInfo.mobileNumber`:
        // "Vipps attempts to correct incorrectly formatted phone numbers
        // instead of responding with `HTTP 400 Bad Request`. In cases where the
        // phone number still fails, the error will be `errorCode: 81`"), but
        // the corpus holds the API's body for this very input, so it wins; a
        // well-formed number of no user is `User 81` below. Either is a 400.
        let user = match customer.get("mobileNumber") {
            None | Some(Value::Null) => None,
            // Jackson reads a JSON number into a string field: the spec's own
            // example is unquoted (`example: 91234567`).
            Some(Value::Number(n)) if n.is_u64() => match norwegian_number(&n.to_string()) {
                Some(number) => Some(presets::user(&format!("47{number}"))),
                None => return invalid_request("mobileNumber", &format!("Invalid MSISDN: {n}")),
            },
            Some(Value::String(raw)) => match norwegian_number(raw) {
                Some(number) => Some(presets::user(&format!("47{number}"))),
                None => return invalid_request("mobileNumber", &format!("Invalid MSISDN: {raw}")),
            },
            Some(other) => {
                return invalid_request("mobileNumber", &format!("Invalid MSISDN: {other}"));
            }
        };
        let key = (call.environment, call.msn, order_id.clone());
        if self.payments.contains_key(&key) {
            return error(
                400,
                "Merchant",
                "34",
                "Unique constraint violation of the orderId",
            );
        }
        if matches!(user, Some(User::NotLoggedIn | User::Unknown)) {
            return error(400, "User", "81", "User not registered with Vipps");
        }
        let mut payment = Payment {
            order_id: order_id.clone(),
            amount,
            text,
            state: State::Initiated,
            captured: 0,
            refunded: 0,
            transaction_id: fastrand::u64(1_000_000_000..10_000_000_000).to_string(),
            log: Vec::new(),
        };
        payment.log("INITIATE", amount, call.now, None);
        if user == Some(User::Ready) {
            payment.state = State::Reserved;
            payment.log("RESERVE", amount, call.now, None);
        }
        self.payments.insert(key, payment);
        let token = format!("{:032x}", fastrand::u128(..));
        let url = if is_app {
            format!("vipps://?token={token}")
        } else {
            format!(
                "{}/dwo-api-application/v1/deeplink/vippsgateway?v=2&token={token}",
                call.base_url
            )
        };
        json_answer(&json!({"orderId": order_id, "url": url}))
    }

    /// Capture, refund and approve: `X-Request-Id` replays.
    fn keyed(&mut self, call: &Call<'_>) -> Response<Body> {
        let request_id = match call.headers.get("x-request-id").map(|v| v.to_str()) {
            None => None,
            Some(Ok(id)) if !id.is_empty() && id.chars().count() <= REQUEST_ID_MAX => {
                Some(id.to_owned())
            }
            Some(_) => {
                return invalid_request("X-Request-Id", "X-Request-Id must be 1 to 40 characters");
            }
        };
        let Some(request_id) = request_id else {
            return self.operate(call, None);
        };
        let scope = (
            call.environment,
            call.msn,
            format!("{:?} {}", call.endpoint, call.order_id),
            request_id.clone(),
        );
        let body_hash = match self.replays.check(&scope, call.body) {
            Replay::Same(response) => return response,
            Replay::Conflict => {
                return error(
                    409,
                    "Payment",
                    "93",
                    "The request is not the same as the first one with this X-Request-Id",
                );
            }
            Replay::New(hash) => hash,
        };
        let response = self.operate(call, Some(&request_id));
        self.replays.store(scope, body_hash, JSON_UTF8, &response);
        response
    }

    fn operate(&mut self, call: &Call<'_>, request_id: Option<&str>) -> Response<Body> {
        let approve = call.endpoint == Endpoint::EcomForceApprove;
        let body = match call.json(!approve) {
            Ok(body) => body,
            Err(res) => return res,
        };
        let Some(payment) = self.payments.get_mut(&call.key()) else {
            return not_found();
        };
        if approve {
            if payment.state != State::Initiated {
                return not_in_valid_state();
            }
            payment.state = State::Reserved;
            payment.log("RESERVE", payment.amount, call.now, request_id);
            return bodies::respond(200, JSON_UTF8, "");
        }
        let tx = body.get("transaction").and_then(Value::as_object);
        if let Err(res) = transaction_text(tx.and_then(|t| t.get("transactionText"))) {
            return res;
        }
        // `Transaction.amount`: at least 100 øre; none (or 0) is the whole
        // remaining amount.
        let amount = match tx.and_then(|t| t.get("amount")) {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(0) => None,
                Some(a) if amount_ok(a) => Some(a),
                _ => return invalid_request("amount", "Invalid amount"),
            },
        };
        if call.endpoint == Endpoint::EcomCapture {
            match payment.state {
                State::Initiated => {
                    return error(
                        400,
                        "Payment",
                        "62",
                        "The amount you tried to capture is not reserved",
                    );
                }
                State::Cancelled => return not_in_valid_state(),
                State::Reserved => {}
            }
            let remaining = payment.amount.saturating_sub(payment.captured);
            let value = amount.unwrap_or(remaining);
            if value > remaining {
                return error(
                    400,
                    "Payment",
                    "61",
                    "Captured amount exceeds the reserved amount",
                );
            }
            if value < remaining && request_id.is_none() {
                return invalid_request(
                    "X-Request-Id",
                    "X-Request-Id is required for a partial capture",
                );
            }
            payment.captured += value;
            payment.log("CAPTURE", value, call.now, request_id);
            return json_answer(&json!({
                "orderId": payment.order_id,
                "paymentInstrument": "Visa",
                "transactionInfo": payment.transaction(value, "Captured", call.now),
                "transactionSummary": payment.summary(),
            }));
        }
        // Refund.
        if payment.state == State::Initiated || payment.captured == 0 {
            return error(
                400,
                "Payment",
                "72",
                "Cannot refund a reserved order (only cancel)",
            );
        }
        let refundable = payment.captured.saturating_sub(payment.refunded);
        let value = amount.unwrap_or(refundable);
        if value > refundable {
            return error(
                400,
                "Payment",
                "71",
                "Cannot refund more than captured amount",
            );
        }
        if value < refundable && request_id.is_none() {
            return invalid_request(
                "X-Request-Id",
                "X-Request-Id is required for a partial refund",
            );
        }
        payment.refunded += value;
        payment.log("REFUND", value, call.now, request_id);
        json_answer(&json!({
            "orderId": payment.order_id,
            "transaction": payment.transaction(value, "Refund", call.now),
            "transactionSummary": payment.summary(),
        }))
    }

    fn cancel(&mut self, call: &Call<'_>) -> Response<Body> {
        let body = match call.json(true) {
            Ok(body) => body,
            Err(res) => return res,
        };
        if let Err(res) = transaction_text(
            body.get("transaction")
                .and_then(|t| t.get("transactionText")),
        ) {
            return res;
        }
        let release = body
            .get("shouldReleaseRemainingFunds")
            .and_then(Value::as_bool)
            == Some(true);
        let Some(payment) = self.payments.get_mut(&call.key()) else {
            return not_found();
        };
        if payment.state == State::Cancelled {
            return not_in_valid_state();
        }
        if payment.captured > 0 && !release {
            return error(
                400,
                "Payment",
                "51",
                "Cannot cancel an already captured order",
            );
        }
        let released = payment.amount.saturating_sub(payment.captured);
        if released == 0 {
            // Nothing left to release: a captured payment is not cancelled.
            return error(
                400,
                "Payment",
                "51",
                "Cannot cancel an already captured order",
            );
        }
        payment.state = State::Cancelled;
        payment.log("CANCEL", released, call.now, None);
        json_answer(&json!({
            "orderId": payment.order_id,
            "transactionInfo": payment.transaction(released, "Cancelled", call.now),
            "transactionSummary": payment.summary(),
        }))
    }

    fn details(&self, call: &Call<'_>) -> Response<Body> {
        let Some(payment) = self.payments.get(&call.key()) else {
            return not_found();
        };
        let history: Vec<Value> = payment.log.iter().rev().cloned().collect();
        json_answer(&json!({
            "orderId": payment.order_id,
            "transactionLogHistory": history,
            "transactionSummary": payment.summary(),
        }))
    }

    /// The user approves an initiated payment: `None` if there is no such
    /// payment, `Some(false)` if it is not waiting for the user.
    pub(crate) fn approve(
        &mut self,
        environment: Environment,
        msn: Msn,
        order_id: &str,
        now: u64,
    ) -> Option<bool> {
        let payment = self
            .payments
            .get_mut(&(environment, msn, order_id.to_owned()))?;
        if payment.state != State::Initiated {
            return Some(false);
        }
        payment.state = State::Reserved;
        payment.log("RESERVE", payment.amount, now, None);
        Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(norwegian_number("91234567").as_deref(), Some("91234567"));
        assert_eq!(
            norwegian_number("+47 912 34 567").as_deref(),
            Some("91234567")
        );
        assert_eq!(norwegian_number("004712345678"), None);
        assert_eq!(norwegian_number("4791234567").as_deref(), Some("91234567"));
        assert_eq!(norwegian_number("9123456"), None);
        assert_eq!(norwegian_number("0046912345678"), None);
    }
}
