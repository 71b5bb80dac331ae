//! Checkout v3: `POST /checkout/v3/session` and `GET /checkout/v3/session/{reference}`.
//!
//! Credentials as in the official API reference
//! (<https://developer.vippsmobilepay.com/api/checkout>): `client_id`,
//! `client_secret` and `Ocp-Apim-Subscription-Key` headers, and
//! `Merchant-Serial-Number` when sent (`checkout.yaml` does not require it: a
//! merchant's keys name their MSN). A Bearer access token minted for the same keys is accepted too (the
//! official WooCommerce plugin polls sessions that way), so the emulator is never
//! stricter than the real API. Errors are `CheckoutProblemDetails`
//! (`application/json`, with `errorCode` and an `errors` map).

use std::collections::HashMap;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, Method, Response};
use serde_json::{Value, json};

use super::bodies::{self, Body};
use super::server::{KeyEntry, KeyKind, bearer_claims, client_matches, subscription};
use super::{Endpoint, Shared};
use crate::headers::MERCHANT_SERIAL_NUMBER;
use crate::{Environment, Msn};

/// The sessions created so far, per environment, MSN and reference.
#[derive(Default)]
pub(crate) struct Sessions {
    by_reference: HashMap<(Environment, Msn, String), Session>,
}

struct Session {
    id: String,
    amount: Value,
}

/// A `CheckoutProblemDetails` body.
pub(crate) fn problem(
    status: u16,
    title: &str,
    detail: &str,
    instance: &str,
    error_code: &str,
    errors: Value,
) -> Response<Body> {
    let body = json!({
        "type": format!("https://httpstatuses.io/{status}"),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "errorCode": error_code,
        "errors": errors,
    });
    bodies::respond(status, bodies::JSON, body.to_string())
}

fn unauthorized(instance: &str) -> Response<Body> {
    problem(
        401,
        "Unauthorized",
        "Invalid client_id or client_secret",
        instance,
        "Unauthorized",
        json!({}),
    )
}

fn validation(instance: &str, field: &str, reason: &str) -> Response<Body> {
    problem(
        400,
        "One or more validation errors occurred.",
        "See errors for details",
        instance,
        "ValidationError",
        json!({ field: [reason] }),
    )
}

/// Whether the request authenticates as `entry`: its client id and secret, or a
/// Bearer token minted here for the same keys.
fn authenticated(
    shared: &Shared,
    environment: Environment,
    entry: &KeyEntry,
    h: &HeaderMap,
) -> bool {
    client_matches(h, &entry.client_id, &entry.client_secret)
        || bearer_claims(shared, environment, h).is_some_and(|claims| claims.minted_for(entry))
}

/// The endpoint of a Checkout path, if it is one.
pub(crate) fn endpoint(method: &Method, segments: &[&str]) -> Option<Endpoint> {
    match (method.as_str(), segments) {
        ("POST", ["checkout", "v3", "session"]) => Some(Endpoint::CheckoutCreateSession),
        ("GET", ["checkout", "v3", "session", r]) if !r.is_empty() => {
            Some(Endpoint::CheckoutGetSession)
        }
        _ => None,
    }
}

/// Answers a Checkout call.
pub(crate) fn handle(
    shared: &Shared,
    environment: Environment,
    endpoint: Endpoint,
    parts: &Parts,
    body: &Bytes,
) -> Response<Body> {
    let headers = &parts.headers;
    let path = parts.uri.path();
    let instance = path.strip_prefix("/checkout").unwrap_or(path);
    let entry = match subscription(shared, environment, headers) {
        Ok(entry) => entry,
        Err(res) => return res,
    };
    if !authenticated(shared, environment, entry, headers) {
        return unauthorized(instance);
    }
    // checkout.yaml does not require the header: merchant keys name their own
    // sales unit; partner keys must say which one.
    let msn = match headers.get(MERCHANT_SERIAL_NUMBER) {
        None => match entry.kind {
            KeyKind::Merchant { msn, .. } => Ok(msn),
            KeyKind::Partner { .. } => {
                return validation(
                    instance,
                    "Merchant-Serial-Number",
                    "The Merchant-Serial-Number header is required.",
                );
            }
        },
        Some(value) => Msn::from_header(value),
    };
    let msn = match msn {
        Ok(msn) if entry.connects(msn) => msn,
        _ => {
            return problem(
                403,
                "Forbidden",
                "The sales unit is not available for these credentials",
                instance,
                "Forbidden",
                json!({}),
            );
        }
    };
    let Ok(mut sessions) = shared.checkout.lock() else {
        return bodies::internal_error(instance);
    };
    match endpoint {
        Endpoint::CheckoutCreateSession => {
            sessions.create(shared, environment, msn, instance, body)
        }
        _ => {
            let reference = path.rsplit('/').next().unwrap_or_default();
            sessions.get(environment, msn, instance, reference)
        }
    }
}

impl Sessions {
    fn create(
        &mut self,
        shared: &Shared,
        environment: Environment,
        msn: Msn,
        instance: &str,
        body: &Bytes,
    ) -> Response<Body> {
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
            return validation(instance, "$", "The request body is not a JSON object.");
        };
        let Some(info) = body.get("merchantInfo").and_then(Value::as_object) else {
            return validation(
                instance,
                "MerchantInfo",
                "The MerchantInfo field is required.",
            );
        };
        for field in ["callbackUrl", "returnUrl", "callbackAuthorizationToken"] {
            if info
                .get(field)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return validation(
                    instance,
                    &format!("MerchantInfo.{field}"),
                    &format!("The {field} field is required."),
                );
            }
        }
        let Some(tx) = body.get("transaction").and_then(Value::as_object) else {
            return validation(
                instance,
                "Transaction",
                "The Transaction field is required.",
            );
        };
        let reference = tx.get("reference").and_then(Value::as_str).unwrap_or("");
        let valid_reference = (8..=50).contains(&reference.len())
            && reference
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid_reference {
            return validation(
                instance,
                "Transaction.Reference",
                "The field Reference must match the regular expression '^[-a-zA-Z0-9]{8,50}$'.",
            );
        }
        match tx.get("paymentDescription").and_then(Value::as_str) {
            None | Some("") => {
                return validation(
                    instance,
                    "Transaction.PaymentDescription",
                    "The PaymentDescription field is required.",
                );
            }
            // checkout.yaml: `minLength: 3`, `maxLength: 100`.
            Some(d) if !(3..=100).contains(&d.chars().count()) => {
                return validation(
                    instance,
                    "Transaction.PaymentDescription",
                    "The field PaymentDescription must be a string with a minimum length of 3 and a maximum length of 100.",
                );
            }
            Some(_) => {}
        }
        let amount = tx.get("amount").cloned().unwrap_or(Value::Null);
        // checkout.yaml: an int32, `minimum: 0`.
        if amount
            .get("value")
            .and_then(Value::as_u64)
            .is_none_or(|v| v > i32::MAX as u64)
        {
            return validation(
                instance,
                "Transaction.Amount.Value",
                "The amount must be an integer in minor units, 0 or more.",
            );
        }
        if !matches!(
            amount.get("currency").and_then(Value::as_str),
            Some("NOK" | "DKK" | "EUR")
        ) {
            return validation(
                instance,
                "Transaction.Amount.Currency",
                "The currency must be one of NOK, DKK, EUR.",
            );
        }
        let key = (environment, msn, reference.to_owned());
        if self.by_reference.contains_key(&key) {
            return problem(
                409,
                "Conflict",
                "A session with this reference already exists",
                instance,
                "DuplicateReference",
                json!({}),
            );
        }
        let id = format!("{:022x}", fastrand::u128(..));
        let base = &shared.base_urls[super::env_index(environment)];
        let answer = json!({
            "token": format!("{}.{}.{}", "eyJhbGciOiJIUzI1NiJ9", id, "c2ln"),
            "checkoutFrontendUrl": format!("{base}/checkout-frontend/v1/"),
            "pollingUrl": format!("{base}/checkout/v3/session/{reference}"),
        });
        self.by_reference.insert(key, Session { id, amount });
        bodies::respond(200, bodies::JSON, answer.to_string())
    }

    fn get(
        &self,
        environment: Environment,
        msn: Msn,
        instance: &str,
        reference: &str,
    ) -> Response<Body> {
        let Some(session) = self
            .by_reference
            .get(&(environment, msn, reference.to_owned()))
        else {
            return problem(
                404,
                "Not Found",
                "Session not found",
                instance,
                "NotFound",
                json!({}),
            );
        };
        let answer = json!({
            "sessionId": session.id,
            "merchantSerialNumber": msn.to_string(),
            "reference": reference,
            "sessionState": "SessionCreated",
            "paymentDetails": { "amount": session.amount, "state": "CREATED" },
        });
        bodies::respond(200, bodies::JSON, answer.to_string())
    }
}
