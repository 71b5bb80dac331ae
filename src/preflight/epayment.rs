//! ePayment rules from the specification (`epayment.v1.yml`, 1.4.1) and the
//! current ePayment guide; each function names its source.

use super::headers::Known;
use super::sparse::Value;

use super::Facts;
use super::body::{Kind, at, known};
use crate::context::Api;
use crate::{Cause, Diagnosis};

/// The ePayment `reference` pattern: `^[a-zA-Z0-9-]{8,64}$`. The 2023 spec
/// (`#/components/parameters/Payment-Reference-ID`) said 8 to 50; today's docs
/// (<https://developer.vippsmobilepay.com/docs/APIs/epayment-api/errors/>, the
/// validation example) say 64, and the docs win.
pub(crate) const REFERENCE_MAX: usize = 64;
const REFERENCE_MIN: usize = 8;

/// No `Merchant-Serial-Number` on an ePayment call: every operation of
/// `epayment.v1.yml` lists `#/components/parameters/Merchant-Serial-Number`
/// with `required: true`. (A misspelled header is the `MsnHeaderMisspelled`
/// rule's.)
pub(super) fn msn_header(f: &Facts<'_>) -> Option<Diagnosis> {
    if f.api != Api::EPayment
        || f.operation.is_none()
        || f.headers.has(Known::MERCHANT_SERIAL_NUMBER)
        || super::msn::MISSPELLED
            .iter()
            .any(|n| f.headers.contains_key(n))
    {
        return None;
    }
    Some(
        Diagnosis::new(Cause::MissingMsnHeader).with_evidence(format!(
            "no `Merchant-Serial-Number` header on the ePayment {} call (required by epayment.v1.yml)",
            f.operation.unwrap_or("")
        )),
    )
}

/// The `{reference}` of an ePayment path (get, events, capture, refund, cancel,
/// test approve) not matching `^[a-zA-Z0-9-]{8,64}$`
/// (`#/components/parameters/Payment-Reference-ID`, bound from today's docs).
pub(super) fn path_reference(f: &Facts<'_>) -> Option<Diagnosis> {
    if f.api != Api::EPayment {
        return None;
    }
    let index = match f.operation? {
        "get_payment" | "get_payment_events" | "capture" | "refund" | "cancel" => 3,
        "force_approve" => 4,
        _ => return None,
    };
    let (segments, len) = &f.segments;
    let reference = *segments.get(..*len)?.get(index)?;
    let problem = reference_problem(reference)?;
    Some(
        Diagnosis::new(Cause::InvalidReference).with_evidence(format!(
            "the `{{reference}}` in the path {problem}; it must match `^[a-zA-Z0-9-]{{8,64}}$`"
        )),
    )
}

fn reference_problem(s: &str) -> Option<String> {
    super::body::reference_problem(s, REFERENCE_MIN, REFERENCE_MAX)
}

fn create<'f>(f: &'f Facts<'_>) -> Option<Value<'f>> {
    match known(f)? {
        (Kind::EPaymentCreate, json) => Some(json),
        _ => None,
    }
}

/// `paymentDescription` not a string of 3 to 100 characters
/// (`#/components/schemas/CreatePaymentRequest/properties/paymentDescription`,
/// `minLength: 3`, `maxLength: 100`).
pub(super) fn payment_description(f: &Facts<'_>) -> Option<Diagnosis> {
    let value = at(create(f)?, "paymentDescription")?;
    let problem = text_problem(value, 3, 100)?;
    Some(
        Diagnosis::new(Cause::InvalidDescription)
            .with_evidence(format!("`paymentDescription` {problem}")),
    )
}

/// What is wrong with a text of `min..=max` characters, if anything (`null` is
/// absent).
pub(super) fn text_problem(value: Value<'_>, min: usize, max: usize) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => {
            let n = s.chars().count();
            (!(min..=max).contains(&n))
                .then(|| format!("is {n} characters long; {min} to {max} are allowed"))
        }
        _ => Some("is not a string".to_owned()),
    }
}

const USER_FLOWS: [&str; 4] = ["PUSH_MESSAGE", "NATIVE_REDIRECT", "WEB_REDIRECT", "QR"];

/// `userFlow` missing or not one of `PUSH_MESSAGE`, `NATIVE_REDIRECT`,
/// `WEB_REDIRECT`, `QR` (`CreatePaymentRequest`: `required` and `enum`).
pub(super) fn user_flow(f: &Facts<'_>) -> Option<Diagnosis> {
    let evidence = match at(create(f)?, "userFlow") {
        None | Some(Value::Null) => "no `userFlow`: it is required".to_owned(),
        Some(Value::String(s)) if USER_FLOWS.contains(&s) => return None,
        Some(Value::String(s)) => match super::shown_word(s, 20) {
            Some(w) => format!("`userFlow` is `{w}`"),
            None => "`userFlow` is not one of the four flows".to_owned(),
        },
        Some(_) => "`userFlow` is not a string".to_owned(),
    };
    Some(
        Diagnosis::new(Cause::InvalidUserFlow).with_evidence(format!(
            "{evidence}; expected `PUSH_MESSAGE`, `NATIVE_REDIRECT`, `WEB_REDIRECT` or `QR`"
        )),
    )
}

/// `expiresAt` not matching the spec's RFC 3339 pattern
/// (`CreatePaymentRequest/properties/expiresAt/pattern`: a date, `T`, a time
/// with optional fraction, then `Z` or an offset).
pub(super) fn expires_at(f: &Facts<'_>) -> Option<Diagnosis> {
    let problem = match at(create(f)?, "expiresAt")? {
        Value::Null => return None,
        Value::String(s) if is_rfc3339(s) => return None,
        Value::String(_) => "is not an RFC 3339 date-time with a time zone",
        _ => "is not a string",
    };
    Some(
        Diagnosis::new(Cause::InvalidExpiresAt).with_evidence(format!(
            "`expiresAt` {problem} (e.g. `2023-02-26T17:32:28Z`)"
        )),
    )
}

/// `^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-](2[0-3]|[01]\d):[0-5]\d)$`.
pub(crate) fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r.clone())
            .is_some_and(|d| d.len() == r.len() && d.iter().all(u8::is_ascii_digit))
    };
    let ok_head = b.len() >= 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && matches!(b[10], b'T' | b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !ok_head {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            let hour_ok = matches!((h1, h2), (b'2', b'0'..=b'3') | (b'0' | b'1', b'0'..=b'9'));
            hour_ok && matches!(m1, b'0'..=b'5') && m2.is_ascii_digit()
        }
        _ => false,
    }
}

/// `metadata` not an object of at most 5 properties
/// (`#/components/schemas/Metadata`: `maxProperties: 5`, values strings). The
/// spec's values are strings, and the metadata guide
/// (<https://developer.vippsmobilepay.com/docs/APIs/epayment-api/api-guide/features/metadata/>)
/// shows a number too, so numbers pass; objects, arrays and booleans are
/// refused. The spec sets no key or value length.
pub(super) fn metadata(f: &Facts<'_>) -> Option<Diagnosis> {
    let problem = match at(create(f)?, "metadata")? {
        Value::Null => return None,
        Value::Object(map) => {
            // One sorted, de-duplicated list of the members, for both checks.
            let entries = map.entries();
            if entries.len() > 5 {
                format!("has {} properties; at most 5 are allowed", entries.len())
            } else {
                entries.into_iter().find_map(|(key, value)| {
                    let value = match value {
                        Value::String(s) => MetadataValue::Text(s),
                        Value::Number(_) => MetadataValue::Number,
                        _ => MetadataValue::Other,
                    };
                    metadata_entry_problem(key, value)
                })?
            }
        }
        _ => "is not an object".to_owned(),
    };
    Some(Diagnosis::new(Cause::InvalidMetadata).with_evidence(format!("`metadata` {problem}")))
}

/// A `metadata` value, as [`metadata_entry_problem`] weighs it.
pub(crate) enum MetadataValue<'a> {
    Text(&'a str),
    /// A number (the metadata guide shows them, the schema says strings).
    Number,
    Other,
}

/// The longest `metadata` key and value, in characters (`#/components/schemas/Metadata`:
/// "Key length is limited to 100 characters, and value length is limited to 500
/// characters").
pub(crate) const METADATA_KEY_MAX: usize = 100;
pub(crate) const METADATA_VALUE_MAX: usize = 500;

/// What is wrong with one `metadata` entry, if anything: a value that is not a
/// string (or number), a key over 100 characters or a value over 500. Preflight
/// and the emulator share it, so both refuse exactly the same entries.
pub(crate) fn metadata_entry_problem(key: &str, value: MetadataValue<'_>) -> Option<String> {
    let shown = if key.len() <= 40 && key.chars().all(|c| c.is_ascii_graphic()) {
        format!("`{key}`")
    } else {
        "a property".to_owned()
    };
    let key_chars = key.chars().count();
    if key_chars > METADATA_KEY_MAX {
        return Some(format!(
            "has a key of {key_chars} characters; at most {METADATA_KEY_MAX} are allowed"
        ));
    }
    match value {
        MetadataValue::Text(s) => {
            let n = s.chars().count();
            (n > METADATA_VALUE_MAX).then(|| {
                format!("{shown} is {n} characters long; at most {METADATA_VALUE_MAX} are allowed")
            })
        }
        MetadataValue::Number => None,
        MetadataValue::Other => Some(format!("{shown} is not a string")),
    }
}

/// `customer.personalQr` not a string of 5 to 255 characters
/// (`#/components/schemas/PersonalQrCode/properties/personalQr`).
pub(super) fn personal_qr(f: &Facts<'_>) -> Option<Diagnosis> {
    let value = at(create(f)?, "customer.personalQr")?;
    let problem = text_problem(value, 5, 255)?;
    Some(
        Diagnosis::new(Cause::InvalidPersonalQr)
            .with_evidence(format!("`customer.personalQr` {problem}")),
    )
}

const QR_FORMATS: [&str; 3] = ["TEXT/TARGETURL", "IMAGE/SVG+XML", "IMAGE/PNG"];

/// `qrFormat` without a known `format`, or a `size` outside 100 to 2000
/// (`CreatePaymentRequest/properties/qrFormat`: `format` required, enum; `size`
/// integer, `minimum: 100`, `maximum: 2000`, nullable).
pub(super) fn qr_format(f: &Facts<'_>) -> Option<Diagnosis> {
    let qr = at(create(f)?, "qrFormat")?;
    let problem = match qr {
        Value::Null => return None,
        Value::Object(_) => match (qr.get("format"), qr.get("size")) {
            (Some(Value::String(s)), _) if !QR_FORMATS.contains(&s) => {
                "`qrFormat.format` is not `TEXT/TARGETURL`, `IMAGE/SVG+XML` or `IMAGE/PNG`"
                    .to_owned()
            }
            (None | Some(Value::Null), _) => "`qrFormat.format` is missing".to_owned(),
            (Some(Value::String(_)), None | Some(Value::Null)) => return None,
            (Some(Value::String(_)), Some(Value::Number(n))) => match n.as_i64() {
                Some(v) if (100..=2000).contains(&v) => return None,
                Some(v) => format!("`qrFormat.size` is {v}; 100 to 2000 are allowed"),
                None => format!("`qrFormat.size` is {n}, not an integer from 100 to 2000"),
            },
            (Some(Value::String(_)), Some(_)) => "`qrFormat.size` is not a number".to_owned(),
            (Some(_), _) => "`qrFormat.format` is not a string".to_owned(),
        },
        _ => "`qrFormat` is not an object".to_owned(),
    };
    Some(Diagnosis::new(Cause::InvalidQrFormat).with_evidence(problem))
}

#[cfg(test)]
mod tests {
    use super::{is_rfc3339, reference_problem};

    #[test]
    fn rfc3339_is_the_spec_pattern() {
        for ok in [
            "2023-02-26T17:32:28Z",
            "2023-02-26t17:32:28z",
            "2023-02-26T17:32:28.123456Z",
            "2023-02-26T17:32:28+23:59",
            "2023-02-26T17:32:28-00:00",
        ] {
            assert!(is_rfc3339(ok), "{ok}");
        }
        for bad in [
            "2023-02-26T17:32:28",
            "2023-02-26 17:32:28Z",
            "2023-02-26",
            "2023-02-26T17:32:28.Z",
            "2023-02-26T17:32:28+24:00",
            "2023-02-26T17:32:28+01:60",
            "2023-2-26T17:32:28Z",
            "",
            "2023-02-26T17:32:28Zjunk",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }

    #[test]
    fn path_references() {
        assert_eq!(reference_problem("abcdefgh"), None);
        assert_eq!(reference_problem(&"a".repeat(64)), None);
        assert!(reference_problem("abcdefg").is_some());
        assert!(reference_problem(&"a".repeat(65)).is_some());
        assert!(reference_problem("abc%20defgh").is_some());
    }
}
