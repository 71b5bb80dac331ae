//! Recurring v3 rules from the specification (`recurring.yaml`, 2.6.17) and the
//! Recurring docs; each function names its source.

use super::headers::Known;
use super::sparse::Value;

use super::Facts;
use super::body::{Kind, at, known};
use super::epayment::text_problem;
use crate::context::Api;
use crate::{Cause, Diagnosis};

/// No `Idempotency-Key`, or one the spec refuses, on a Recurring v3 draft
/// agreement, update agreement, create, capture or refund charge: each of these
/// operations of `recurring.yaml` (DraftAgreementV3, UpdateAgreementPatchV3,
/// CreateChargeV3, CaptureChargeV3, RefundChargeV3) takes the parameter
///
/// ```yaml
/// Idempotency-Key:
///   in: header
///   description: An Idempotency key must be provided to ensure idempotent requests.
///     Key size can be between 1 to 40 characters.
///     Key must not contain '#', '?', '/' or '\\'
///   required: true
///   schema: {type: string}
/// ```
///
/// A key of only spaces or tabs is an empty key: HTTP takes the whitespace
/// around a field value off before the value is read (RFC 9112 §5, `field-line
/// = field-name ":" OWS field-value OWS`; RFC 9110 §5.5), so the API reads 0
/// characters, below the spec's 1. Spaces inside a key are allowed.
pub(super) fn idempotency_key(f: &Facts<'_>) -> Option<Diagnosis> {
    if f.api != Api::Recurring || !super::body::is_recurring_v3(f) {
        return None;
    }
    let op = match f.operation? {
        op @ ("draft_agreement" | "update_agreement" | "create_charge" | "capture_charge"
        | "refund_charge") => op,
        _ => return None,
    };
    let what = format!("the Recurring {op} call");
    let evidence =
        super::missing_header(&f.headers, Known::IDEMPOTENCY_KEY, "Idempotency-Key", &what)
            .or_else(|| {
                idempotency_key_problem(f.headers.first(Known::IDEMPOTENCY_KEY)?.as_bytes())
            })?;
    Some(Diagnosis::new(Cause::MissingIdempotencyKey).with_evidence(evidence))
}

/// What is wrong with a Recurring `Idempotency-Key` value, if anything (see
/// [`idempotency_key`]): the emulator checks the same.
///
/// Counted as UTF-8, a stray byte as one character: no reading of the bytes
/// counts fewer, so only a key over 40 in every reading is refused; the spaces
/// and tabs around it are not part of it.
pub(crate) fn idempotency_key_problem(key: &[u8]) -> Option<String> {
    let key = String::from_utf8_lossy(key);
    let key = key.trim_matches([' ', '\t']);
    let n = key.chars().count();
    if n == 0 {
        Some("the `Idempotency-Key` is empty; recurring.yaml allows 1 to 40 characters".to_owned())
    } else if n > 40 {
        Some(format!(
            "the `Idempotency-Key` is {n} characters long; recurring.yaml allows 1 to 40"
        ))
    } else {
        key.chars().find(|c| matches!(c, '#' | '?' | '/' | '\\')).map(|c| {
            format!(
                "the `Idempotency-Key` holds `{c}`; recurring.yaml forbids '#', '?', '/' and '\\'"
            )
        })
    }
}

/// `productName` missing on a draft or longer than 45 characters, or
/// `productDescription` longer than 100 (`recurring.yaml` DraftAgreementV3 and
/// UpdateAgreementPatchV3: `productName` required on the draft, `maxLength: 45`;
/// `productDescription` `maxLength: 100`).
pub(super) fn texts(f: &Facts<'_>) -> Option<Diagnosis> {
    let (kind, json) = known(f)?;
    if !matches!(kind, Kind::RecurringAgreement | Kind::RecurringUpdate) {
        return None;
    }
    let name = at(json, "productName");
    if kind == Kind::RecurringAgreement && matches!(name, None | Some(Value::Null)) {
        return Some(
            Diagnosis::new(Cause::InvalidDescription)
                .with_evidence("no `productName`: it is required on a draft agreement"),
        );
    }
    for (path, value, max) in [
        ("productName", name, 45),
        ("productDescription", at(json, "productDescription"), 100),
    ] {
        if let Some(problem) = value.and_then(|v| text_problem(v, 0, max)) {
            return Some(
                Diagnosis::new(Cause::InvalidDescription)
                    .with_evidence(format!("`{path}` {problem}")),
            );
        }
    }
    None
}

const UNITS: [&str; 4] = ["YEAR", "MONTH", "WEEK", "DAY"];

/// A draft's `interval`, or an update's `interval.period`, that is not a
/// `TimePeriod`; a draft without `interval`; an update's `interval` without its
/// `period`.
///
/// `recurring.yaml` (2.6.17), `TimePeriod` (DraftAgreementV3 `interval`,
/// required on a draft):
///
/// ```yaml
/// required: [unit, count]
/// unit:  {type: string, enum: [YEAR, MONTH, WEEK, DAY]}
/// count: {type: integer, format: int32, minimum: 1, maximum: 31}
/// ```
///
/// and `PatchAgreementV3.interval` (UpdateAgreementPatchV3):
///
/// ```yaml
/// interval:
///   type: object
///   description: The interval is specified by the `type` and `period` properties.
///     When the type is `RECURRING`, then the property `period` is required.
///   properties:
///     type: {type: string, default: RECURRING, enum: [RECURRING]}
///     period: {$ref: '#/components/schemas/TimePeriod'}
/// ```
///
/// `type` defaults to `RECURRING`, so an update's `interval` needs a `period`
/// unless it names another `type`. A `type` string other than `RECURRING` is
/// left alone: the spec's authors had a `FLEXIBLE` type (without `period`) in
/// the draft of this schema and took it out before release (vipps-recurring-api
/// commits 0b63faf, 1721ad7, October 2023), so it may be live: the emulator
/// refuses it, as the spec does; Preflight does not claim it can only fail.
pub(super) fn interval(f: &Facts<'_>) -> Option<Diagnosis> {
    let (kind, json) = known(f)?;
    let problem = match kind {
        Kind::RecurringAgreement => match at(json, "interval") {
            None | Some(Value::Null) => {
                return Some(
                    Diagnosis::new(Cause::InvalidInterval)
                        .with_evidence("no `interval`: it is required on a draft agreement"),
                );
            }
            Some(v) => period_problem("interval", v),
        },
        // An update's `interval` is optional: `null` is taken as absent (as the
        // emulator takes it), not judged.
        Kind::RecurringUpdate => match at(json, "interval")? {
            Value::Null => return None,
            v => update_problem(v),
        },
        _ => return None,
    }?;
    Some(Diagnosis::new(Cause::InvalidInterval).with_evidence(problem))
}

/// An update's `interval` (`PatchAgreementV3.interval`): an object whose `type`
/// is `RECURRING` (the default) and whose `period` is a `TimePeriod`.
fn update_problem(v: Value<'_>) -> Option<String> {
    let Value::Object(_) = v else {
        return Some("`interval` is not an object".to_owned());
    };
    match v.get("type") {
        None | Some(Value::Null | Value::String("RECURRING")) => {}
        // Another type: not judged (see `interval`).
        Some(Value::String(_)) => return None,
        Some(_) => return Some("`interval.type` is not a string".to_owned()),
    }
    match v.get("period") {
        None | Some(Value::Null) => Some(
            "`interval` has no `period`: it is required when `interval.type` is RECURRING (the default); \
             an update takes `{\"period\": {\"unit\": …, \"count\": …}}`, not `unit` and `count` directly"
                .to_owned(),
        ),
        Some(period) => period_problem("interval.period", period),
    }
}

/// A `TimePeriod` at `path`: `unit` one of `YEAR`, `MONTH`, `WEEK`, `DAY`;
/// `count` an integer from 1 to 31; both required.
fn period_problem(path: &str, v: Value<'_>) -> Option<String> {
    let Value::Object(_) = v else {
        return Some(format!("`{path}` is not an object"));
    };
    let problem = match v.get("unit") {
        Some(Value::String(u)) if UNITS.contains(&u) => match v.get("count") {
            Some(Value::Number(n)) => match n.as_i64() {
                Some(c) if (1..=31).contains(&c) => return None,
                Some(c) => format!("has `count` {c}; 1 to 31 are allowed"),
                None => format!("has `count` {n}, not an integer"),
            },
            None | Some(Value::Null) => "has no `count`".to_owned(),
            Some(_) => "has a `count` that is not a number".to_owned(),
        },
        None | Some(Value::Null) => "has no `unit`".to_owned(),
        Some(_) => "has a `unit` other than YEAR, MONTH, WEEK, DAY".to_owned(),
    };
    Some(format!("`{path}` {problem}"))
}

/// Lower-case `bearer` on a Recurring call: sent as a warning, not refused.
///
/// The evidence conflicts: the common-errors FAQ says the scheme is
/// case-sensitive (<https://developer.vippsmobilepay.com/docs/knowledge-base/common-errors/>),
/// but `recurring.yaml` declares `securitySchemes.bearerAuth` as `type: http`,
/// `scheme: bearer`, whose scheme name is case-insensitive (RFC 7235 §2.1), and
/// the official Recurring Postman collections sent `bearer` for years. A
/// refusal could block a request that works, so Recurring only warns; the other
/// APIs declare an `apiKey` header (its value opaque), where the FAQ's word
/// stands and the `BearerScheme` rule refuses.
pub(super) fn bearer_lower_case(f: &Facts<'_>) -> Option<Diagnosis> {
    if f.api != Api::Recurring {
        return None;
    }
    let value = f.headers.first(Known::AUTHORIZATION)?.as_bytes();
    let scheme = value.get(..6)?;
    (scheme != b"Bearer" && scheme.eq_ignore_ascii_case(b"bearer")).then(|| {
        Diagnosis::new(Cause::BearerWrongCase).with_evidence(
            "the scheme is not spelled `Bearer`; the Recurring API accepts it (HTTP bearer auth), others refuse it",
        )
    })
}
