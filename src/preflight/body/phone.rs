//! Phone numbers in well-known bodies: each API's own format.

use super::*;

/// A phone number not in the format of its API's specification:
///
/// - ePayment `customer.phoneNumber`: `^\d{10,15}$`
///   (`epayment.v1.yml #/components/schemas/CustomerPhoneNumber/properties/phoneNumber`);
/// - Recurring v3 `phoneNumber`: a string of at most 15 characters
///   (`recurring.yaml DraftAgreementV3 phoneNumber`, `maxLength: 15`);
/// - eCom `customerInfo.mobileNumber`: `^\d{8}$` once the API's own corrections
///   are made ([`ecom_mobile_number`]; `ecom-v2.yaml` CustomerInfo.mobileNumber).
///
/// Nothing stricter: no per-market lengths, which the specifications do not set.
pub(in crate::preflight) fn phone_number(f: &Facts<'_>) -> Option<Diagnosis> {
    let (kind, json) = known(f)?;
    let (path, format) = match kind {
        Kind::EPaymentCreate => ("customer.phoneNumber", PhoneFormat::Msisdn),
        Kind::RecurringAgreement => ("phoneNumber", PhoneFormat::Recurring),
        Kind::EComInitiate => ("customerInfo.mobileNumber", PhoneFormat::Ecom),
        _ => return None,
    };
    let value = at(json, path)?;
    let digits = match value {
        Value::Null => return None,
        Value::String(s) => s,
        // The eCom spec's own example is an unquoted number (`mobileNumber:
        // 91234567`), and a Norwegian mobile number never starts with 0: eight
        // digits pass as a number too.
        Value::Number(n) if matches!(format, PhoneFormat::Ecom) && n.is_u64() => {
            let digits = n.to_string();
            let problem = ecom_mobile_problem(&digits)?;
            return Some(
                Diagnosis::new(Cause::InvalidPhoneNumber)
                    .with_evidence(format!("`{path}` {problem}")),
            );
        }
        Value::Number(n) => {
            // A JSON number: the API wants a string, and a leading 0 is lost.
            return Some(
                Diagnosis::new(Cause::InvalidPhoneNumber).with_evidence(format!(
                    "`{path}` is a JSON number ({} digits), not a string",
                    n.to_string().len()
                )),
            );
        }
        // A boolean, array or object: every specification wants a string.
        _ => {
            return Some(
                Diagnosis::new(Cause::InvalidPhoneNumber)
                    .with_evidence(format!("`{path}` is not a string")),
            );
        }
    };
    let problem = match format {
        PhoneFormat::Msisdn => msisdn_problem(digits),
        PhoneFormat::Ecom => ecom_mobile_problem(digits),
        PhoneFormat::Recurring => (digits.chars().count() > 15)
            .then(|| format!("has {} characters; at most 15", digits.chars().count())),
    }?;
    Some(Diagnosis::new(Cause::InvalidPhoneNumber).with_evidence(format!("`{path}` {problem}")))
}

#[derive(Clone, Copy)]
enum PhoneFormat {
    Msisdn,
    Ecom,
    Recurring,
}

/// What is wrong with an ePayment MSISDN, if anything: `^\d{10,15}$`.
pub(crate) fn msisdn_problem(s: &str) -> Option<String> {
    if let Some(p) = shape_problem(s) {
        return Some(p);
    }
    let n = s.len();
    if n == 8 {
        return Some(
            "has 8 digits and no country code: an MSISDN starts with the country code (47 for Norway, 45 for Denmark), e.g. 4712345678".to_owned(),
        );
    }
    (!(10..=15).contains(&n)).then(|| format!("has {n} digits; it must match `^\\d{{10,15}}$`"))
}

/// What is wrong with an eCom mobile number: `^\d{8}$`, 8 digits without country
/// code, once the API's own corrections are made ([`ecom_mobile_number`]).
pub(crate) fn ecom_mobile_problem(s: &str) -> Option<String> {
    let digits = without_spaces(s);
    if corrected(&digits).is_some() {
        return None;
    }
    let msg = if digits.is_empty() {
        "is empty".to_owned()
    } else if digits.starts_with("00") {
        "starts with `00`: the eCom API answers `Invalid MSISDN`; write the 8 digits without a country code".to_owned()
    } else if !digits
        .trim_start_matches('+')
        .bytes()
        .all(|b| b.is_ascii_digit())
    {
        "holds characters other than digits".to_owned()
    } else {
        format!(
            "has {} digits; the eCom API takes 8 digits without country code (`^\\d{{8}}$`; it corrects a `+47` or `47` before them)",
            digits.trim_start_matches('+').len()
        )
    };
    Some(msg)
}

/// An eCom `mobileNumber` as the API takes it (`91234567`), after the corrections
/// the specification says the API makes ("Vipps attempts to correct incorrectly
/// formatted phone numbers instead of responding with `HTTP 400 Bad Request`"):
/// spaces dropped, a `+47`, or a `47` before eight digits, taken off. `0047` is not
/// corrected: the API answers `Invalid MSISDN: 004712345678` (the error corpus).
/// The emulator uses the same function, so both refuse exactly the same numbers.
#[cfg_attr(not(feature = "emulator"), allow(dead_code))]
pub(crate) fn ecom_mobile_number(raw: &str) -> Option<String> {
    corrected(&without_spaces(raw)).map(str::to_owned)
}

/// The number without spaces; borrowed (no allocation) when it has none.
fn without_spaces(raw: &str) -> std::borrow::Cow<'_, str> {
    if raw.chars().any(char::is_whitespace) {
        raw.chars().filter(|c| !c.is_whitespace()).collect()
    } else {
        std::borrow::Cow::Borrowed(raw)
    }
}

/// The 8 digits of a number without spaces, after the API's corrections.
fn corrected(digits: &str) -> Option<&str> {
    let number = digits
        .strip_prefix("+47")
        .or_else(|| {
            (digits.len() == 10)
                .then(|| digits.strip_prefix("47"))
                .flatten()
        })
        .unwrap_or(digits);
    (number.len() == 8 && number.bytes().all(|b| b.is_ascii_digit())).then_some(number)
}

/// Problems common to every phone format: `+`, `00`, spaces, other characters, a
/// leading `0`, empty.
fn shape_problem(s: &str) -> Option<String> {
    let msg = if s.is_empty() {
        "is empty"
    } else if s.starts_with('+') {
        "starts with `+`: write the country code without it, digits only (4712345678)"
    } else if s.bytes().any(|b| b.is_ascii_whitespace()) {
        "holds spaces: digits only"
    } else if s
        .bytes()
        .any(|b| b == b'-' || b == b'(' || b == b')' || b == b'.')
    {
        "holds separators: digits only"
    } else if !s.bytes().all(|b| b.is_ascii_digit()) {
        "holds characters other than digits"
    } else {
        return None;
    };
    Some(msg.to_owned())
}
