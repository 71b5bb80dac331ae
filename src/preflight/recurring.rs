//! Recurring v3 rules from the specification (`recurring.yaml`, 2.6.17) and the
//! Recurring docs; each function names its source.

use super::headers::Known;
use super::sparse::Value;

use super::Facts;
use super::body::{Kind, at, known};
use super::epayment::text_problem;
use crate::context::Api;
use crate::{Cause, Diagnosis};

/// No `Idempotency-Key` (or an empty one) on a Recurring v3 draft agreement,
/// update agreement, create, capture or refund charge: each of these operations
/// of `recurring.yaml` (DraftAgreementV3, UpdateAgreementPatchV3, CreateChargeV3,
/// CaptureChargeV3, RefundChargeV3) declares the header `required: true`. The
/// spec sets no length, so none is checked.
pub(super) fn idempotency_key(f: &Facts<'_>) -> Option<Diagnosis> {
    if f.api != Api::Recurring || !super::body::is_recurring_v3(f.uri.path()) {
        return None;
    }
    let op = match f.operation? {
        op @ ("draft_agreement" | "update_agreement" | "create_charge" | "capture_charge"
        | "refund_charge") => op,
        _ => return None,
    };
    let what = format!("the Recurring {op} call");
    let evidence =
        super::missing_header(&f.headers, Known::IDEMPOTENCY_KEY, "Idempotency-Key", &what)?;
    Some(Diagnosis::new(Cause::MissingIdempotencyKey).with_evidence(evidence))
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

/// `interval` missing on a draft, or its `unit` not one of `YEAR`, `MONTH`,
/// `WEEK`, `DAY`, or its `count` not an integer from 1 to 31 (`recurring.yaml`
/// DraftAgreementV3 `interval`: required, `count` `minimum: 1`, `maximum: 31`;
/// UpdateAgreementPatchV3 `interval.period`).
pub(super) fn interval(f: &Facts<'_>) -> Option<Diagnosis> {
    let (kind, json) = known(f)?;
    let (path, value) = match kind {
        Kind::RecurringAgreement => match at(json, "interval") {
            None | Some(Value::Null) => {
                return Some(
                    Diagnosis::new(Cause::InvalidInterval)
                        .with_evidence("no `interval`: it is required on a draft agreement"),
                );
            }
            Some(v) => ("interval", v),
        },
        // `interval.period` of an update: the sparse parse keeps only the kept
        // keys, so `period` is read when present under `interval`.
        Kind::RecurringUpdate => ("interval", at(json, "interval")?),
        _ => return None,
    };
    let problem = interval_problem(value, kind == Kind::RecurringAgreement)?;
    Some(Diagnosis::new(Cause::InvalidInterval).with_evidence(format!("`{path}` {problem}")))
}

fn interval_problem(v: Value<'_>, draft: bool) -> Option<String> {
    let Value::Object(_) = v else {
        return Some("is not an object".to_owned());
    };
    match v.get("unit") {
        Some(Value::String(u)) if UNITS.contains(&u) => {}
        // An update sends `interval.period` (not read): nothing to judge.
        None | Some(Value::Null) if !draft && v.get("count").is_none() => return None,
        None | Some(Value::Null) => return Some("has no `unit`".to_owned()),
        Some(_) => return Some("has a `unit` other than YEAR, MONTH, WEEK, DAY".to_owned()),
    }
    match v.get("count") {
        Some(Value::Number(n)) => match n.as_i64() {
            Some(c) if (1..=31).contains(&c) => None,
            Some(c) => Some(format!("has `count` {c}; 1 to 31 are allowed")),
            None => Some(format!("has `count` {n}, not an integer")),
        },
        None | Some(Value::Null) => Some("has no `count`".to_owned()),
        Some(_) => Some("has a `count` that is not a number".to_owned()),
    }
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
