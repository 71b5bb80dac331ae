//! Well-known request bodies, when buffered: ePayment create payment, capture and
//! refund; eCom initiate, capture, refund, cancel; Recurring draft and update
//! agreement, create, capture and refund charge; Checkout create session;
//! Webhooks register.
//!
//! Each rule checks what the official OpenAPI specification of the API forbids
//! (the copies in `../shared/specs`, see their README for sources), and nothing
//! more; where today's docs on developer.vippsmobilepay.com differ, the docs win
//! and the rule says so:
//!
//! | field | rule | source |
//! | --- | --- | --- |
//! | ePayment amounts | integer, 0 to 65,000,000 | `epayment.v1.yml #/components/schemas/Amount` |
//! | eCom initiate amount | integer, at least 100, no maximum | `ecom-v2.yaml` `transaction.amount` |
//! | eCom capture/refund amount | integer, at least 0 (0: the remainder, eCom guide) | `ecom-v2.yaml #/components/schemas/Transaction` |
//! | Recurring `pricing.amount`, charge `amount` | int32, at least 100 | `recurring.yaml` DraftAgreementV3, CreateChargeV3 |
//! | Recurring `pricing.suggestedMaxAmount` | int32, 100 to 2,000,000 | `recurring.yaml` DraftAgreementV3 |
//! | Recurring `initialCharge.amount` | int32, no minimum | `recurring.yaml` DraftAgreementV3 |
//! | Checkout `transaction.amount.value` | int32, at least 0 | `checkout.yaml` POST /session |
//! | currency | `NOK`, `DKK` or `EUR`, exactly | `epayment.v1.yml #/components/schemas/Currency` |
//! | ePayment phone number | `^\d{10,15}$` | `epayment.v1.yml` CustomerPhoneNumber |
//! | Recurring phone number | at most 15 characters | `recurring.yaml` DraftAgreementV3 |
//! | eCom `mobileNumber` | `^\d{8}$` after the corrections the spec says the API makes (spaces, `+47` or `47` before 8 digits; not `0047`) | `ecom-v2.yaml` CustomerInfo |
//! | URLs | see [`url`] | |
//! | ePayment `reference` | `^[a-zA-Z0-9-]{8,64}$` (the docs' current bound; the 2023 spec said 50) | <https://developer.vippsmobilepay.com/docs/APIs/epayment-api/errors/> |
//! | eCom `orderId` | `^[a-zA-Z0-9-]{1,50}$` | `ecom-v2.yaml` transaction.orderId |
//! | Checkout `reference` | 8 to 50 of `[-a-zA-Z0-9]` | `checkout.yaml` POST /session |
//!
//! Values are named in the evidence only when harmless (an amount, a currency
//! code); phone numbers and URLs are personal or may carry tokens, so only their
//! shape is described.

use super::sparse::Value;

use super::{Facts, shown_word};
use crate::context::Api;
use crate::{Cause, Diagnosis};

mod phone;
mod urls;

#[cfg(feature = "emulator")]
pub(crate) use phone::ecom_mobile_number;
pub(in crate::preflight) use phone::phone_number;
#[cfg(feature = "emulator")]
pub(crate) use urls::looks_like_http_typo;
pub(in crate::preflight) use urls::url;

/// Which well-known body a request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    EPaymentCreate,
    EPaymentAdjust,
    EComInitiate,
    EComAdjust,
    EComCancel,
    RecurringAgreement,
    RecurringUpdate,
    RecurringCharge,
    RecurringChargeAdjust,
    CheckoutSession,
    WebhookRegister,
}

pub(super) fn kind(api: Api, op: Option<&str>) -> Option<Kind> {
    Some(match (api, op?) {
        (Api::EPayment, "create_payment") => Kind::EPaymentCreate,
        (Api::EPayment, "capture" | "refund") => Kind::EPaymentAdjust,
        (Api::ECom, "initiate") => Kind::EComInitiate,
        (Api::ECom, "capture" | "refund") => Kind::EComAdjust,
        (Api::ECom, "cancel") => Kind::EComCancel,
        (Api::Recurring, "draft_agreement") => Kind::RecurringAgreement,
        (Api::Recurring, "update_agreement") => Kind::RecurringUpdate,
        (Api::Recurring, "create_charge") => Kind::RecurringCharge,
        (Api::Recurring, "capture_charge" | "refund_charge") => Kind::RecurringChargeAdjust,
        (Api::Checkout, "create_session") => Kind::CheckoutSession,
        (Api::Webhooks, "register_webhook") => Kind::WebhookRegister,
        _ => return None,
    })
}

pub(super) fn known<'f>(f: &'f Facts<'_>) -> Option<(Kind, Value<'f>)> {
    let kind = f.kind?;
    // The Recurring rules follow v3; v2 bodies have another shape.
    if f.api == Api::Recurring && !is_recurring_v3(f) {
        return None;
    }
    Some((kind, f.json.as_ref()?.root()))
}

/// A Recurring v3 path (`/recurring/v3/…`), from the path's segments, split once.
pub(super) fn is_recurring_v3(f: &Facts<'_>) -> bool {
    let (segments, len) = &f.segments;
    segments
        .get(..*len)
        .and_then(|s| s.get(1))
        .is_some_and(|v| v.eq_ignore_ascii_case("v3"))
}

pub(super) fn at<'v>(json: Value<'v>, path: &str) -> Option<Value<'v>> {
    let mut value = json;
    let mut rest = path;
    loop {
        match rest.bytes().position(|b| b == b'.') {
            Some(dot) => {
                value = value.get(rest.get(..dot)?)?;
                rest = rest.get(dot + 1..)?;
            }
            None => return value.get(rest),
        }
    }
}

/// A well-known body that is not valid JSON: the API answers 400 without reading
/// it. Source: every operation of these APIs takes `application/json` (the
/// `requestBody` of each operation in the specifications of `../shared/specs`).
pub(super) fn not_json(f: &Facts<'_>) -> Option<Diagnosis> {
    if !f.body_not_json {
        return None;
    }
    Some(
        Diagnosis::new(Cause::InvalidJsonBody).with_evidence(format!(
            "the body of the {} {} call is not valid JSON",
            f.api,
            f.operation.unwrap_or("")
        )),
    )
}

/// An amount field's bounds, from the specification (`None`: no bound).
struct AmountField {
    path: &'static str,
    min: Option<i64>,
    max: Option<i64>,
    /// Where the bounds come from.
    source: &'static str,
}

const I32_MIN: i64 = i32::MIN as i64;
const I32_MAX: i64 = i32::MAX as i64;
const EPAYMENT_AMOUNT: &str = "epayment.v1.yml #/components/schemas/Amount/properties/value";

macro_rules! field {
    ($path:expr, $min:expr, $max:expr, $source:expr $(,)?) => {
        AmountField {
            path: $path,
            min: $min,
            max: $max,
            source: $source,
        }
    };
}

fn amount_fields(kind: Kind) -> &'static [AmountField] {
    const RECURRING_PRICING: &str =
        "recurring.yaml DraftAgreementV3 pricing (amount: int32, minimum 100)";
    const RECURRING_MAX: &str =
        "recurring.yaml DraftAgreementV3 pricing.suggestedMaxAmount (int32, 100 to 2,000,000)";
    match kind {
        Kind::EPaymentCreate => &[field!(
            "amount.value",
            Some(0),
            Some(65_000_000),
            EPAYMENT_AMOUNT,
        )],
        Kind::EPaymentAdjust => &[field!(
            "modificationAmount.value",
            Some(0),
            Some(65_000_000),
            EPAYMENT_AMOUNT,
        )],
        Kind::EComInitiate => &[field!(
            "transaction.amount",
            Some(100),
            None,
            "ecom-v2.yaml initiatePaymentV3UsingPOST transaction.amount (minimum 100, no maximum)",
        )],
        // The eCom docs: an amount of 0 captures (or refunds) the remainder.
        Kind::EComAdjust => &[field!(
            "transaction.amount",
            Some(0),
            None,
            "ecom-v2.yaml #/components/schemas/Transaction/properties/amount",
        )],
        Kind::CheckoutSession => &[field!(
            "transaction.amount.value",
            Some(0),
            Some(I32_MAX),
            "checkout.yaml POST /session transaction.amount.value (int32, minimum 0)",
        )],
        Kind::EComCancel | Kind::WebhookRegister => &[],
        Kind::RecurringAgreement | Kind::RecurringUpdate => &[
            field!(
                "pricing.amount",
                Some(100),
                Some(I32_MAX),
                RECURRING_PRICING
            ),
            field!(
                "pricing.suggestedMaxAmount",
                Some(100),
                Some(2_000_000),
                RECURRING_MAX,
            ),
            field!(
                "initialCharge.amount",
                Some(I32_MIN),
                Some(I32_MAX),
                "recurring.yaml DraftAgreementV3 initialCharge.amount (int32, no minimum)",
            ),
        ],
        Kind::RecurringCharge | Kind::RecurringChargeAdjust => &[field!(
            "amount",
            Some(100),
            Some(I32_MAX),
            "recurring.yaml CreateChargeV3 / CaptureChargeV3 / RefundChargeV3 amount (int32, minimum 100)",
        )],
    }
}

fn currency_fields(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::EPaymentCreate => &["amount.currency"],
        Kind::EPaymentAdjust => &["modificationAmount.currency"],
        Kind::RecurringAgreement => &["pricing.currency"],
        _ => &[],
    }
}

/// An amount that is not an integer in minor units within range.
pub(super) fn amount(f: &Facts<'_>) -> Option<Diagnosis> {
    let (kind, json) = known(f)?;
    for field in amount_fields(kind) {
        let Some(value) = at(json, field.path) else {
            continue;
        };
        let problem = match value {
            Value::Null => continue,
            Value::Number(n) => match (n.as_i64(), n.as_u64(), field.min, field.max) {
                (Some(v), _, Some(min), _) if v < min => {
                    format!("is {v}; the least allowed is {min} ({})", field.source)
                }
                (Some(v), _, _, Some(max)) if v > max => {
                    format!("is {v}; the most allowed is {max} ({})", field.source)
                }
                (Some(_), _, _, _) | (None, Some(_), _, None) => continue,
                (None, Some(v), _, Some(max)) => {
                    format!("is {v}; the most allowed is {max} ({})", field.source)
                }
                (None, None, _, _) => format!(
                    "is {n}, not an integer: amounts are integers in minor units (100 = 1.00 NOK)"
                ),
            },
            Value::String(_) => "is a string; amounts are JSON integers in minor units".to_owned(),
            _ => "is not a number".to_owned(),
        };
        return Some(
            Diagnosis::new(Cause::InvalidAmount)
                .with_evidence(format!("`{}` {problem}", field.path)),
        );
    }
    None
}

/// A NOK amount below 100 øre on ePayment create or eCom initiate.
pub(super) fn amount_too_small(f: &Facts<'_>) -> Option<Diagnosis> {
    let (kind, json) = known(f)?;
    let (path, currency) = match kind {
        Kind::EPaymentCreate => ("amount.value", at(json, "amount.currency")?.as_str()?),
        // `Transaction.amount`: `minimum: 100` on capture and refund too (0 there
        // is the whole amount, not refused).
        Kind::EComInitiate | Kind::EComAdjust => ("transaction.amount", "NOK"),
        _ => return None,
    };
    let value = at(json, path)?.as_i64()?;
    if currency != "NOK" || !(1..100).contains(&value) {
        return None;
    }
    Some(Diagnosis::new(Cause::AmountTooSmall).with_evidence(format!(
        "`{path}` is {value} øre, below the NOK minimum of 100 (1.00 NOK)"
    )))
}

/// A currency other than `NOK`, `DKK` or `EUR`.
pub(super) fn currency(f: &Facts<'_>) -> Option<Diagnosis> {
    let (kind, json) = known(f)?;
    for path in currency_fields(kind) {
        let Some(value) = at(json, path) else {
            continue;
        };
        let problem = match value {
            Value::Null => continue,
            Value::String("NOK" | "DKK" | "EUR") => continue,
            Value::String(s) => match shown_word(s, 8) {
                Some(code) => format!("is `{code}`"),
                None => "is not a currency code".to_owned(),
            },
            _ => "is not a string".to_owned(),
        };
        return Some(
            Diagnosis::new(Cause::InvalidCurrency).with_evidence(format!(
                "`{path}` {problem}; expected `NOK`, `DKK` or `EUR`"
            )),
        );
    }
    None
}

/// An ePayment `reference` or eCom `orderId` with forbidden characters or out of
/// its length bounds.
pub(super) fn reference(f: &Facts<'_>) -> Option<Diagnosis> {
    let (kind, json) = known(f)?;
    let (path, min, max) = match kind {
        Kind::EPaymentCreate => ("reference", 8, 64),
        Kind::EComInitiate => ("transaction.orderId", 1, 50),
        Kind::CheckoutSession => ("transaction.reference", 8, 50),
        _ => return None,
    };
    let value = at(json, path)?;
    let problem = match value {
        Value::Null => return None,
        Value::String(s) => reference_problem(s, min, max)?,
        _ => "is not a string".to_owned(),
    };
    Some(
        Diagnosis::new(Cause::InvalidReference).with_evidence(format!(
            "`{path}` {problem}; it must match `^[a-zA-Z0-9-]{{{min},{max}}}$`"
        )),
    )
}

pub(in crate::preflight) fn reference_problem(s: &str, min: usize, max: usize) -> Option<String> {
    // Bytes, not chars: the first byte outside the pattern starts the character
    // shown (only ASCII passes, so that byte is a character boundary).
    let bad = s
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || b == b'-'));
    if let Some(c) = bad
        .and_then(|i| s.get(i..))
        .and_then(|rest| rest.chars().next())
    {
        let shown = if c.is_ascii_graphic() {
            format!("`{c}`")
        } else if c == ' ' {
            "a space".to_owned()
        } else {
            format!("U+{:04X}", c as u32)
        };
        return Some(format!("holds {shown}"));
    }
    let n = s.len();
    (!(min..=max).contains(&n)).then(|| format!("is {n} characters long"))
}

#[cfg(test)]
mod tests;
