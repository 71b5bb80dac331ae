//! Recurring v3: agreements and their charges (`recurring.yaml`, the v3
//! operations), with the state rules of the Recurring guide.
//!
//! - `POST /recurring/v3/agreements` (`DraftAgreementV3`) → `201`
//!   `{agreementId, uuid, vippsConfirmationUrl, chargeId}`; the agreement is
//!   `PENDING` until the user accepts it.
//! - `GET /recurring/v3/agreements/{agreementId}` → `AgreementResponseV3`.
//! - `PATCH /recurring/v3/agreements/{agreementId}` (`UpdateAgreementPatchV3`,
//!   `PatchAgreementV3`) → `204`: see [`update`].
//! - `PATCH /recurring/v3/agreements/{agreementId}/accept` `{phoneNumber}` (test
//!   environment only, as in the spec) → `204`: the agreement is `ACTIVE`, its
//!   initial charge `CHARGED` (or `RESERVED` for `RESERVE_CAPTURE`).
//! - `POST /recurring/v3/agreements/{agreementId}/charges` (`CreateChargeV3`) →
//!   `201` `{chargeId}`; only on an `ACTIVE` agreement, `due` at least one day
//!   ahead (the 1-day lead time of today's charge guide; the spec's "two days in
//!   production" is older, and the docs win: see `charges::DUE_MIN_DAYS`) and at
//!   most two years, `retryDays` 0 to 14, at most
//!   the user's `maxAmount` on a `VARIABLE` agreement.
//! - `GET /recurring/v3/agreements/{agreementId}/charges/{chargeId}` →
//!   `ChargeResponseV3`.
//!
//! The POSTs and the PATCHes take an `Idempotency-Key` (1 to 40 characters, none of
//! `#?/\`): the same key and body answer the first success again, another body is
//! `409`. Errors are the API's problem details (`ErrorV3`: `type`
//! `…/recurring-api-problems#<identifier>`, `title`, `status`, `detail`,
//! `instance`, `contextId`, `extraDetails` `[{field, text}]`).

// A refusal is the response itself; it is built once per request, never hot.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;

use bytes::Bytes;
use http::request::Parts;
use http::{Method, Response};
use serde_json::{Map, Value, json};

mod charges;
mod update;

use super::bodies::{self, Body};
use super::dates::rfc3339;
use super::epayment::{valid_return_url, valid_url};
use super::replays::{Replay, Replays};
use super::{Endpoint, Shared};
use crate::{Environment, Msn};
use charges::{Charge, initial_charge};

/// The content type of the API's answers (`ErrorResponseV3` and the schemas).
pub(crate) const JSON_UTF8: &str = "application/json;charset=UTF-8";

/// The problem types' common prefix.
const PROBLEMS: &str =
    "https://developer.vippsmobilepay.com/docs/APIs/recurring-api/recurring-api-problems";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Pending,
    Active,
    /// Stopped by an update; it cannot be changed again (`recurring.yaml`
    /// UpdateAgreementPatchV3: "when updating the status to `STOPPED`, you can
    /// not re-activate it").
    Stopped,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Active => "ACTIVE",
            Status::Stopped => "STOPPED",
        }
    }
}

struct Agreement {
    id: String,
    uuid: String,
    status: Status,
    currency: String,
    /// `LEGACY` `{amount}` or `VARIABLE` `{suggestedMaxAmount}`.
    variable: bool,
    amount: u64,
    /// The user's chosen maximum (`VARIABLE`): the suggestion, on acceptance.
    max_amount: Option<u64>,
    interval: (String, u64),
    product_name: String,
    product_description: Option<String>,
    merchant_agreement_url: String,
    merchant_redirect_url: String,
    external_id: Option<String>,
    confirmation_url: String,
    created: u64,
    start: Option<u64>,
    stop: Option<u64>,
    charges: Vec<Charge>,
}

impl Agreement {
    fn response(&self) -> Value {
        let pricing = if self.variable {
            json!({
                "type": "VARIABLE",
                "currency": self.currency,
                "suggestedMaxAmount": self.amount,
                "maxAmount": self.max_amount.unwrap_or(self.amount),
            })
        } else {
            json!({"type": "LEGACY", "currency": self.currency, "amount": self.amount})
        };
        let (unit, count) = &self.interval;
        let mut v = json!({
            "id": self.id,
            "uuid": self.uuid,
            "status": self.status.as_str(),
            "pricing": pricing,
            "interval": {"unit": unit, "count": count, "text": interval_text(unit, *count)},
            "productName": self.product_name,
            "created": rfc3339(self.created),
            "start": self.start.map(rfc3339),
            "stop": self.stop.map(rfc3339),
            "campaign": null,
            "merchantAgreementUrl": self.merchant_agreement_url,
            "merchantRedirectUrl": self.merchant_redirect_url,
            "sub": null,
            "userinfoUrl": null,
            "countryCode": "NO",
            "vippsConfirmationUrl": self.confirmation_url,
        });
        if let Some(description) = &self.product_description {
            v["productDescription"] = Value::String(description.clone());
        }
        if let Some(external) = &self.external_id {
            v["externalId"] = Value::String(external.clone());
        }
        v
    }
}

fn interval_text(unit: &str, count: u64) -> String {
    let unit = unit.to_ascii_lowercase();
    if count == 1 {
        format!("every {unit}")
    } else {
        format!("every {count} {unit}s")
    }
}

type AgreementKey = (Environment, Msn, String);

/// Every agreement of an emulator, by environment, MSN and id.
#[derive(Default)]
pub(crate) struct Agreements {
    agreements: HashMap<AgreementKey, Agreement>,
    replays: Replays,
}

/// The endpoint of a Recurring v3 path, if it is one.
pub(crate) fn endpoint(method: &Method, segments: &[&str]) -> Option<Endpoint> {
    let rest = match segments {
        ["recurring", "v3", "agreements", rest @ ..] => rest,
        _ => return None,
    };
    Some(match (method.as_str(), rest) {
        ("POST", []) => Endpoint::RecurringCreateAgreement,
        ("GET", [a]) if !a.is_empty() => Endpoint::RecurringGetAgreement,
        ("PATCH", [a]) if !a.is_empty() => Endpoint::RecurringUpdateAgreement,
        ("PATCH", [a, "accept"]) if !a.is_empty() => Endpoint::RecurringAcceptAgreement,
        ("POST", [a, "charges"]) if !a.is_empty() => Endpoint::RecurringCreateCharge,
        ("GET", [a, "charges", c]) if !a.is_empty() && !c.is_empty() => {
            Endpoint::RecurringGetCharge
        }
        _ => return None,
    })
}

/// A Recurring problem (`ErrorV3`).
pub(crate) fn problem(
    status: u16,
    id: &str,
    title: &str,
    detail: &str,
    instance: &str,
    extra: &[(&str, &str)],
) -> Response<Body> {
    let mut body = json!({
        "type": format!("{PROBLEMS}#{id}"),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "contextId": uuid::Uuid::new_v4().to_string(),
    });
    if !extra.is_empty() {
        body["extraDetails"] = extra
            .iter()
            .map(|(field, text)| json!({"field": field, "text": text}))
            .collect();
    }
    bodies::respond(status, JSON_UTF8, body.to_string())
}

fn invalid(instance: &str, field: &str, text: &str) -> Response<Body> {
    problem(
        400,
        "validation-error",
        "Bad Request",
        "Input validation failed",
        instance,
        &[(field, text)],
    )
}

fn not_found(instance: &str, what: &str) -> Response<Body> {
    problem(
        404,
        "resource-not-found",
        "Not Found",
        &format!("{what} not found"),
        instance,
        &[],
    )
}

fn json_answer(status: u16, value: &Value) -> Response<Body> {
    bodies::respond(status, JSON_UTF8, value.to_string())
}

/// One authenticated Recurring call.
struct Call<'a> {
    environment: Environment,
    msn: Msn,
    endpoint: Endpoint,
    /// The path segments after `/recurring/v3/agreements/`.
    rest: Vec<&'a str>,
    /// The problem `instance`: the path without `/recurring`.
    instance: &'a str,
    body: &'a Bytes,
    now: u64,
    base_url: &'a str,
}

impl Call<'_> {
    fn agreement_key(&self) -> AgreementKey {
        (
            self.environment,
            self.msn,
            self.rest.first().copied().unwrap_or_default().to_owned(),
        )
    }

    fn json(&self) -> Result<Map<String, Value>, Response<Body>> {
        match serde_json::from_slice::<Value>(self.body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(invalid(self.instance, "body", "must be a JSON object")),
            Err(_) => Err(problem(
                400,
                "invalid-json",
                "Bad Request",
                "JSON body is invalid",
                self.instance,
                &[],
            )),
        }
    }
}

/// Answers an authenticated Recurring call for `msn`.
pub(crate) fn handle(
    shared: &Shared,
    environment: Environment,
    msn: Msn,
    endpoint: Endpoint,
    parts: &Parts,
    body: &Bytes,
) -> Response<Body> {
    let path = parts.uri.path();
    let instance = path.strip_prefix("/recurring").unwrap_or(path);
    let rest = path
        .strip_prefix("/recurring/v3/agreements")
        .unwrap_or("")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let call = Call {
        environment,
        msn,
        endpoint,
        rest,
        instance,
        body,
        now: shared.now(),
        base_url: &shared.base_urls[super::env_index(environment)],
    };
    if endpoint == Endpoint::RecurringAcceptAgreement && environment == Environment::Production {
        // The force-accept endpoint exists only in the test environment.
        return bodies::respond(404, bodies::JSON, bodies::NOT_FOUND);
    }
    let Ok(mut state) = shared.recurring.lock() else {
        return bodies::internal_error(instance);
    };
    match endpoint {
        Endpoint::RecurringGetAgreement => state.get_agreement(&call),
        Endpoint::RecurringGetCharge => state.get_charge(&call),
        _ => state.idempotent(&call, &parts.headers),
    }
}

impl Agreements {
    /// Whether one of the sales unit's agreements has a charge with this id.
    pub(crate) fn has_charge(&self, environment: Environment, msn: Msn, charge_id: &str) -> bool {
        self.agreements
            .iter()
            .filter(|((e, m, _), _)| *e == environment && *m == msn)
            .any(|(_, a)| a.charges.iter().any(|c| c.id == charge_id))
    }

    fn idempotent(&mut self, call: &Call<'_>, headers: &http::HeaderMap) -> Response<Body> {
        // `recurring.yaml` `Idempotency-Key` (required): "Key size can be
        // between 1 to 40 characters. Key must not contain '#', '?', '/' or
        // '\\'". HTTP takes the spaces and tabs around a field value off
        // before it is read (RFC 9112 §5: `field-name ":" OWS field-value
        // OWS`), so a key of only whitespace is an empty key: refused.
        let raw = headers
            .get(crate::headers::IDEMPOTENCY_KEY)
            .map(|v| String::from_utf8_lossy(v.as_bytes()));
        let key = raw
            .as_deref()
            .filter(|k| {
                crate::preflight::recurring::idempotency_key_problem(k.as_bytes()).is_none()
            })
            .map(|k| k.trim_matches([' ', '\t']));
        let Some(key) = key else {
            return problem(
                400,
                "idempotency-key-header",
                "Bad Request",
                "Missing or invalid Idempotency-Key header: 1 to 40 characters, none of '#', '?', '/' or '\\'",
                call.instance,
                &[(
                    "Idempotency-Key",
                    "must be 1 to 40 characters, none of '#', '?', '/' or '\\'",
                )],
            );
        };
        let operation = match call.endpoint {
            Endpoint::RecurringCreateAgreement => "draft".to_owned(),
            _ => format!("{:?} {}", call.endpoint, call.instance),
        };
        let scope = (call.environment, call.msn, operation, key.to_owned());
        let body_hash = match self.replays.check(&scope, call.body) {
            Replay::Same(response) => return response,
            Replay::Conflict => {
                return problem(
                    409,
                    "idempotency-conflict",
                    "Conflict",
                    &format!(
                        "The Idempotency-Key {key} has previously been used with another request"
                    ),
                    call.instance,
                    &[],
                );
            }
            Replay::New(hash) => hash,
        };
        let response = match call.endpoint {
            Endpoint::RecurringCreateAgreement => self.draft(call),
            Endpoint::RecurringAcceptAgreement => self.accept(call, key),
            Endpoint::RecurringUpdateAgreement => self.update(call, key),
            _ => self.create_charge(call, key),
        };
        self.replays.store(scope, body_hash, JSON_UTF8, &response);
        response
    }

    fn draft(&mut self, call: &Call<'_>) -> Response<Body> {
        let instance = call.instance;
        let body = match call.json() {
            Ok(body) => body,
            Err(res) => return res,
        };
        let Some(pricing) = body.get("pricing").and_then(Value::as_object) else {
            return invalid(instance, "pricing", "must not be null");
        };
        let currency = match pricing.get("currency").and_then(Value::as_str) {
            Some("NOK") => "NOK",
            Some(_) => return invalid(instance, "pricing.currency", "must be NOK"),
            None => return invalid(instance, "pricing.currency", "must not be null"),
        };
        let variable = match pricing.get("type") {
            None | Some(Value::Null) => false,
            Some(Value::String(t)) if t == "LEGACY" => false,
            Some(Value::String(t)) if t == "VARIABLE" => true,
            _ => return invalid(instance, "pricing.type", "must be LEGACY or VARIABLE"),
        };
        let (field, max) = if variable {
            ("pricing.suggestedMaxAmount", 2_000_000)
        } else {
            ("pricing.amount", i32::MAX as u64)
        };
        let amount = match pricing.get(field.trim_start_matches("pricing.")) {
            None | Some(Value::Null) => return invalid(instance, field, "must not be null"),
            Some(v) => match v.as_u64() {
                Some(a) if (100..=max).contains(&a) => a,
                _ => {
                    return invalid(
                        instance,
                        field,
                        &format!("must be an integer from 100 to {max}"),
                    );
                }
            },
        };
        let Some(interval) = body.get("interval").and_then(Value::as_object) else {
            return invalid(instance, "interval", "must not be null");
        };
        let (unit, count) = match time_period(interval, instance, "interval") {
            Ok(period) => period,
            Err(res) => return res,
        };
        let is_app = body.get("isApp").and_then(Value::as_bool) == Some(true);
        // `isApp`: "URLs passed to us will not be validated as regular URLs".
        let agreement_url = match string(&body, "merchantAgreementUrl", 1024) {
            Ok(Some(u)) if is_app || valid_url(&u, call.environment) => u,
            Ok(None) => return invalid(instance, "merchantAgreementUrl", "must not be null"),
            _ => {
                return invalid(
                    instance,
                    "merchantAgreementUrl",
                    "must be a valid https URL",
                );
            }
        };
        let redirect_url = match string(&body, "merchantRedirectUrl", 1024) {
            Ok(Some(u)) if is_app || valid_return_url(&u, call.environment) => u,
            Ok(None) => return invalid(instance, "merchantRedirectUrl", "must not be null"),
            _ => {
                return invalid(
                    instance,
                    "merchantRedirectUrl",
                    "must be a valid https URL or deeplink",
                );
            }
        };
        let product_name = match string(&body, "productName", 45) {
            Ok(Some(n)) => n,
            Ok(None) => return invalid(instance, "productName", "must not be null"),
            Err(()) => return invalid(instance, "productName", "size must be at most 45"),
        };
        let Ok(product_description) = string(&body, "productDescription", 100) else {
            return invalid(instance, "productDescription", "size must be at most 100");
        };
        if string(&body, "phoneNumber", 15).is_err() {
            return invalid(instance, "phoneNumber", "size must be at most 15");
        }
        let Ok(external_id) = external_id(&body, "externalId") else {
            return invalid(instance, "externalId", EXTERNAL_ID);
        };
        match body.get("countryCode") {
            None | Some(Value::Null) => {}
            Some(Value::String(c)) if c == "NO" => {}
            Some(_) => return invalid(instance, "countryCode", "must be NO"),
        }
        let initial = match body.get("initialCharge") {
            None | Some(Value::Null) => None,
            Some(Value::Object(c)) => match initial_charge(c, instance) {
                Ok(c) => Some(c),
                Err(res) => return res,
            },
            Some(_) => return invalid(instance, "initialCharge", "must be an object"),
        };
        // The initial charge's `orderId` becomes its `chargeId`: unique for the
        // sales unit, as a created charge's is ("orderId must be unique per
        // merchant", `recurring.yaml`).
        if initial
            .as_ref()
            .is_some_and(|c| self.has_charge(call.environment, call.msn, &c.id))
        {
            return charges::order_id_taken(instance, "initialCharge.orderId");
        }
        let id = format!("agr_{}", alphanumeric(7));
        let key = (call.environment, call.msn, id.clone());
        let token = alphanumeric(14);
        let confirmation_url = if is_app {
            format!("vipps://recurring?token={token}")
        } else {
            format!("{}/v2/register/{token}", call.base_url)
        };
        let uuid = uuid::Uuid::new_v4().to_string();
        let charge_id = initial.as_ref().map(|c| c.id.clone());
        let agreement = Agreement {
            id: id.clone(),
            uuid: uuid.clone(),
            status: Status::Pending,
            currency: currency.to_owned(),
            variable,
            amount,
            max_amount: None,
            interval: (unit, count),
            product_name,
            product_description,
            merchant_agreement_url: agreement_url,
            merchant_redirect_url: redirect_url,
            external_id,
            confirmation_url: confirmation_url.clone(),
            created: call.now,
            start: None,
            stop: None,
            charges: initial.into_iter().collect(),
        };
        self.agreements.insert(key, agreement);
        json_answer(
            201,
            &json!({
                "agreementId": id,
                "uuid": uuid,
                "vippsConfirmationUrl": confirmation_url,
                "chargeId": charge_id,
            }),
        )
    }

    fn get_agreement(&self, call: &Call<'_>) -> Response<Body> {
        match self.agreements.get(&call.agreement_key()) {
            Some(a) => json_answer(200, &a.response()),
            None => not_found(call.instance, "Agreement"),
        }
    }

    fn accept(&mut self, call: &Call<'_>, key: &str) -> Response<Body> {
        let body = match call.json() {
            Ok(body) => body,
            Err(res) => return res,
        };
        if body
            .get("phoneNumber")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return invalid(call.instance, "phoneNumber", "must not be null");
        }
        let Some(agreement) = self.agreements.get_mut(&call.agreement_key()) else {
            return not_found(call.instance, "Agreement");
        };
        if !agreement.activate(call.now, key) {
            return illegal_update(
                call.instance,
                "Cannot modify an agreement which is not pending.",
            );
        }
        bodies::respond(204, JSON_UTF8, "")
    }

    /// The user accepts a `PENDING` agreement: `None` if there is no such
    /// agreement, `Some(false)` if it is not `PENDING`.
    pub(crate) fn accept_agreement(
        &mut self,
        environment: Environment,
        msn: Msn,
        id: &str,
        now: u64,
    ) -> Option<bool> {
        let agreement = self
            .agreements
            .get_mut(&(environment, msn, id.to_owned()))?;
        Some(agreement.activate(now, "emulator-accept"))
    }
}

impl Agreement {
    /// `PENDING` → `ACTIVE`, processing the initial charge; `false` if it was
    /// not `PENDING`.
    fn activate(&mut self, now: u64, key: &str) -> bool {
        if self.status != Status::Pending {
            return false;
        }
        self.status = Status::Active;
        self.start = Some(now);
        if self.variable {
            self.max_amount = Some(self.amount);
        }
        for charge in self.charges.iter_mut().filter(|c| c.initial) {
            let amount = charge.amount;
            if charge.transaction_type == "RESERVE_CAPTURE" {
                charge.status = "RESERVED";
                charge.event("RESERVE", amount, now, key);
            } else {
                charge.status = "CHARGED";
                charge.captured = amount;
                charge.event("CAPTURE", amount, now, key);
            }
        }
        true
    }
}

/// The `illegal-agreement-update` problem ("Agreement cannot be updated. Might
/// be stopped or pending.", the Recurring problems page); `text` says why.
fn illegal_update(instance: &str, text: &str) -> Response<Body> {
    problem(
        400,
        "illegal-agreement-update",
        "Bad Request",
        "Illegal update",
        instance,
        &[("status", text)],
    )
}

/// A `TimePeriod` at `path` (`recurring.yaml`: `required: [unit, count]`, `unit`
/// one of `YEAR`, `MONTH`, `WEEK`, `DAY`, `count` an integer from 1 to 31).
fn time_period(
    period: &Map<String, Value>,
    instance: &str,
    path: &str,
) -> Result<(String, u64), Response<Body>> {
    let unit = match period.get("unit").and_then(Value::as_str) {
        Some(u @ ("YEAR" | "MONTH" | "WEEK" | "DAY")) => u.to_owned(),
        _ => {
            return Err(invalid(
                instance,
                &format!("{path}.unit"),
                "must be YEAR, MONTH, WEEK or DAY",
            ));
        }
    };
    match period.get("count").and_then(Value::as_u64) {
        Some(c) if (1..=31).contains(&c) => Ok((unit, c)),
        _ => Err(invalid(
            instance,
            &format!("{path}.count"),
            "must be from 1 to 31",
        )),
    }
}

/// An optional string field of at most `max` characters: `Err` when it is not a
/// string or too long.
fn string(body: &Map<String, Value>, field: &str, max: usize) -> Result<Option<String>, ()> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
        Some(_) => Err(()),
    }
}

/// An `externalId` (agreement or charge): every one in `recurring.yaml` is
/// `{minLength: 1, maxLength: 64, pattern: '^.{1,64}$'}`, and `.` matches no line
/// terminator (`\n`, `\r`, U+2028, U+2029). `Ok(None)` when absent or `null`.
fn external_id(body: &Map<String, Value>, field: &str) -> Result<Option<String>, ()> {
    match string(body, field, 64)? {
        Some(e) if e.is_empty() || e.contains(['\n', '\r', '\u{2028}', '\u{2029}']) => Err(()),
        e => Ok(e),
    }
}

/// What an invalid `externalId` is told.
const EXTERNAL_ID: &str = "must match \"^.{1,64}$\" (1 to 64 characters, no line breaks)";

/// `len` random ASCII letters and digits.
fn alphanumeric(len: usize) -> String {
    std::iter::repeat_with(fastrand::alphanumeric)
        .take(len)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(interval_text("MONTH", 1), "every month");
        assert_eq!(interval_text("WEEK", 2), "every 2 weeks");
    }
}
