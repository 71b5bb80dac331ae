//! Well-known request bodies, when buffered: ePayment create payment, capture and
//! refund; eCom initiate; Recurring draft agreement.
//!
//! What is checked, and why (from the reference, `vipps-api.md`):
//!
//! | field | rule |
//! | --- | --- |
//! | amounts | a JSON integer in minor units, at least 1 (ePayment, eCom); at least 0 for Recurring `pricing` (an agreement may be free). At most `i64::MAX` (ePayment, Recurring) or `i32::MAX` (eCom, whose amount is a 32-bit integer). A string, a fraction or an exponent is refused. |
//! | currency | `NOK`, `DKK` or `EUR`, exactly (ISO 4217, upper case) |
//! | ePayment / Recurring phone number | an MSISDN: country code and number, digits only, no `+`, no `00`, no spaces, no leading `0`. Norway `47` + 8 digits, Denmark `45` + 8 digits, Finland `358` + 5 to 10 digits (ITU numbering plan of Finland), Sweden `46` + 7 to 9 digits; other country codes 8 to 15 digits in all (E.164) |
//! | eCom `mobileNumber` | a Norwegian number: 8 digits (the eCom API takes it without country code), or `47` + 8 digits |
//! | URLs | absolute `https://` with a host; `http://` only for `localhost`, `127.0.0.1` or `[::1]` outside production; an app scheme (`myapp://`) only for the ePayment `returnUrl` with `userFlow` `NATIVE_REDIRECT` and the eCom `fallBack` with `isApp: true`; at most 2048 characters (the reference gives no limit: 2048 is what browsers and servers reliably handle) |
//! | ePayment `reference` | `^[a-zA-Z0-9-]{8,64}$` |
//! | eCom `orderId` | `^[a-zA-Z0-9-]{1,50}$` (the eCom API: up to 50 characters of letters, digits and `-`) |
//!
//! Values are named in the evidence only when harmless (an amount, a currency
//! code); phone numbers and URLs are personal or may carry tokens, so only their
//! shape is described.

use serde_json::Value;

use super::{Facts, shown_word};
use crate::Environment;
use crate::context::Api;
use crate::{Cause, Diagnosis};

/// The longest URL accepted.
pub(crate) const MAX_URL: usize = 2048;

/// Which well-known body a request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    EPaymentCreate,
    EPaymentAdjust,
    EComInitiate,
    RecurringAgreement,
}

fn kind(api: Api, op: Option<&str>) -> Option<Kind> {
    Some(match (api, op?) {
        (Api::EPayment, "create_payment") => Kind::EPaymentCreate,
        (Api::EPayment, "capture" | "refund") => Kind::EPaymentAdjust,
        (Api::ECom, "initiate") => Kind::EComInitiate,
        (Api::Recurring, "draft_agreement") => Kind::RecurringAgreement,
        _ => return None,
    })
}

/// Whether the request's body is one these rules read.
pub(crate) fn is_well_known(api: Api, op: Option<&str>) -> bool {
    kind(api, op).is_some()
}

fn known<'f>(f: &'f Facts<'_>) -> Option<(Kind, &'f Value)> {
    Some((kind(f.api, f.operation)?, f.json.as_ref()?))
}

fn at<'v>(json: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(json, |v, key| v.get(key))
}

struct AmountField {
    path: &'static str,
    min: i64,
    max: i64,
}

fn amount_fields(kind: Kind) -> &'static [AmountField] {
    const I64: i64 = i64::MAX;
    const I32: i64 = i32::MAX as i64;
    match kind {
        Kind::EPaymentCreate => &[AmountField {
            path: "amount.value",
            min: 1,
            max: I64,
        }],
        Kind::EPaymentAdjust => &[AmountField {
            path: "modificationAmount.value",
            min: 1,
            max: I64,
        }],
        Kind::EComInitiate => &[AmountField {
            path: "transaction.amount",
            min: 1,
            max: I32,
        }],
        Kind::RecurringAgreement => &[
            AmountField {
                path: "pricing.amount",
                min: 0,
                max: I64,
            },
            AmountField {
                path: "pricing.suggestedMaxAmount",
                min: 0,
                max: I64,
            },
            AmountField {
                path: "initialCharge.amount",
                min: 0,
                max: I64,
            },
        ],
    }
}

fn currency_fields(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::EPaymentCreate => &["amount.currency"],
        Kind::EPaymentAdjust => &["modificationAmount.currency"],
        Kind::EComInitiate => &[],
        Kind::RecurringAgreement => &["pricing.currency"],
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
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(v), _) if v < field.min => {
                    format!("is {v}; the least allowed is {}", field.min)
                }
                (Some(v), _) if v > field.max => {
                    format!("is {v}; the most allowed is {}", field.max)
                }
                (Some(_), _) => continue,
                (None, Some(v)) => format!("is {v}; the most allowed is {}", field.max),
                (None, None) => format!(
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
        Kind::EComInitiate => ("transaction.amount", "NOK"),
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
            Value::String(s) if matches!(s.as_str(), "NOK" | "DKK" | "EUR") => continue,
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

/// A phone number not in the format of its API.
pub(super) fn phone_number(f: &Facts<'_>) -> Option<Diagnosis> {
    let (kind, json) = known(f)?;
    let (path, ecom) = match kind {
        Kind::EPaymentCreate => ("customer.phoneNumber", false),
        Kind::RecurringAgreement => ("phoneNumber", false),
        Kind::EComInitiate => ("customerInfo.mobileNumber", true),
        Kind::EPaymentAdjust => return None,
    };
    let value = at(json, path)?;
    let digits = match value {
        Value::Null => return None,
        Value::String(s) => s.as_str(),
        Value::Number(n) => {
            // A JSON number: the API wants a string, and a leading 0 is lost.
            return Some(
                Diagnosis::new(Cause::InvalidPhoneNumber).with_evidence(format!(
                    "`{path}` is a JSON number ({} digits), not a string",
                    n.to_string().len()
                )),
            );
        }
        _ => "\u{0}",
    };
    let problem = if ecom {
        ecom_mobile_problem(digits)
    } else {
        msisdn_problem(digits)
    }?;
    Some(Diagnosis::new(Cause::InvalidPhoneNumber).with_evidence(format!("`{path}` {problem}")))
}

/// What is wrong with an MSISDN, if anything.
pub(crate) fn msisdn_problem(s: &str) -> Option<String> {
    if let Some(p) = shape_problem(s) {
        return Some(p);
    }
    let n = s.len();
    let market = |cc: &str, country: &str, min: usize, max: usize| -> Option<Option<String>> {
        let rest = s.strip_prefix(cc)?.len();
        Some((!(min..=max).contains(&rest)).then(|| {
            let want = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            format!("is {cc} ({country}) and {rest} digits; {country} numbers have {want} digits after {cc}")
        }))
    };
    if let Some(found) = market("47", "Norway", 8, 8)
        .or_else(|| market("45", "Denmark", 8, 8))
        .or_else(|| market("358", "Finland", 5, 10))
        .or_else(|| market("46", "Sweden", 7, 9))
    {
        return found;
    }
    if n == 8 {
        return Some(
            "has 8 digits and no country code: an MSISDN starts with the country code (47 for Norway, 45 for Denmark), e.g. 4712345678".to_owned(),
        );
    }
    if !(8..=15).contains(&n) {
        return Some(format!("has {n} digits; an MSISDN has 8 to 15"));
    }
    None
}

/// What is wrong with an eCom mobile number: 8 Norwegian digits, or 47 + 8.
pub(crate) fn ecom_mobile_problem(s: &str) -> Option<String> {
    if let Some(p) = shape_problem(s) {
        return Some(p);
    }
    let n = s.len();
    if n == 8 || (n == 10 && s.starts_with("47")) {
        return None;
    }
    Some(format!(
        "has {n} digits; the eCom API takes a Norwegian number of 8 digits"
    ))
}

/// Problems common to every phone format: `+`, `00`, spaces, other characters, a
/// leading `0`, empty.
fn shape_problem(s: &str) -> Option<String> {
    let msg = if s.is_empty() {
        "is empty"
    } else if s.starts_with('+') {
        "starts with `+`: write the country code without it, digits only (4712345678)"
    } else if s.starts_with("00") {
        "starts with `00`: write the country code without it, digits only (4712345678)"
    } else if s.bytes().any(|b| b.is_ascii_whitespace()) {
        "holds spaces: digits only"
    } else if s
        .bytes()
        .any(|b| b == b'-' || b == b'(' || b == b')' || b == b'.')
    {
        "holds separators: digits only"
    } else if !s.bytes().all(|b| b.is_ascii_digit()) {
        "holds characters other than digits"
    } else if s.starts_with('0') {
        "starts with `0`: an MSISDN starts with the country code"
    } else {
        return None;
    };
    Some(msg.to_owned())
}

/// A URL that is not absolute `https://` (with the exceptions documented above) or
/// is too long.
pub(super) fn url(f: &Facts<'_>) -> Option<Diagnosis> {
    let (kind, json) = known(f)?;
    let app_scheme_ok = |path: &str| match (kind, path) {
        (Kind::EPaymentCreate, "returnUrl") => {
            at(json, "userFlow").and_then(Value::as_str) == Some("NATIVE_REDIRECT")
        }
        (Kind::EComInitiate, "merchantInfo.fallBack") => {
            at(json, "merchantInfo.isApp").and_then(Value::as_bool) == Some(true)
        }
        _ => false,
    };
    let fields: &[&str] = match kind {
        Kind::EPaymentCreate => &["returnUrl", "callbackUrl"],
        Kind::EPaymentAdjust => &[],
        Kind::EComInitiate => &[
            "merchantInfo.callbackPrefix",
            "merchantInfo.fallBack",
            "merchantInfo.consentRemovalPrefix",
            "merchantInfo.shippingDetailsPrefix",
        ],
        Kind::RecurringAgreement => &["merchantRedirectUrl", "merchantAgreementUrl"],
    };
    let production = f.environment == Some(Environment::Production);
    for path in fields {
        let Some(value) = at(json, path) else {
            continue;
        };
        let problem = match value {
            Value::Null => continue,
            Value::String(s) => match url_problem(s, app_scheme_ok(path), production) {
                Some(p) => p,
                None => continue,
            },
            _ => "is not a string".to_owned(),
        };
        return Some(
            Diagnosis::new(Cause::InvalidUrl).with_evidence(format!("`{path}` {problem}")),
        );
    }
    None
}

/// What is wrong with a URL, if anything.
pub(crate) fn url_problem(s: &str, app_scheme_ok: bool, production: bool) -> Option<String> {
    if s.len() > MAX_URL {
        return Some(format!("is {} characters long, at most {MAX_URL}", s.len()));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("holds whitespace or control characters".to_owned());
    }
    let Some((scheme, rest)) = s.split_once("://") else {
        return Some(if s.starts_with("https:") || s.starts_with("http:") {
            "is missing the `//` after the scheme".to_owned()
        } else {
            "is not an absolute URL: it must start with `https://`".to_owned()
        });
    };
    let valid_scheme = !scheme.is_empty()
        && scheme.as_bytes()[0].is_ascii_alphabetic()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !valid_scheme {
        return Some("has no valid scheme: it must start with `https://`".to_owned());
    }
    let host = rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("")
        .rsplit('@')
        .next()
        .unwrap_or("");
    let lower = scheme.to_ascii_lowercase();
    match lower.as_str() {
        "https" => {
            if host.is_empty() {
                return Some("has no host".to_owned());
            }
            None
        }
        "http" => {
            let name = match host.rsplit_once(':') {
                Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
                _ => host,
            };
            let local = matches!(
                name.to_ascii_lowercase().as_str(),
                "localhost" | "127.0.0.1" | "[::1]"
            );
            if local && !production {
                None
            } else if local {
                Some("uses `http://localhost` in production: use `https://`".to_owned())
            } else {
                Some("uses `http://`: Vipps MobilePay requires `https://`".to_owned())
            }
        }
        _ if looks_like_http_typo(&lower) => Some(format!(
            "has the scheme `{}`: did you mean `https`?",
            shown_word(scheme, 16).unwrap_or("?")
        )),
        _ if app_scheme_ok => None,
        _ => Some(format!(
            "has the scheme `{}`: it must be `https`",
            shown_word(scheme, 16).unwrap_or("?")
        )),
    }
}

/// `htt`, `htps`, `hhtps`, `httpss`, `https2`…: a typo of `http(s)`, never an app
/// scheme.
fn looks_like_http_typo(scheme: &str) -> bool {
    scheme.len() <= 7
        && (scheme.starts_with("ht")
            || scheme.starts_with("hh")
            || scheme.ends_with("tps")
            || scheme.ends_with("ttp"))
}

/// An ePayment `reference` or eCom `orderId` with forbidden characters or out of
/// its length bounds.
pub(super) fn reference(f: &Facts<'_>) -> Option<Diagnosis> {
    let (kind, json) = known(f)?;
    let (path, min, max) = match kind {
        Kind::EPaymentCreate => ("reference", 8, 64),
        Kind::EComInitiate => ("transaction.orderId", 1, 50),
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

fn reference_problem(s: &str, min: usize, max: usize) -> Option<String> {
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
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
mod tests {
    use super::super::test_support::*;
    use super::super::{PreflightLayer, RuleId};
    use super::{ecom_mobile_problem, msisdn_problem, url_problem};
    use crate::Cause;

    pub(crate) const CREATE: &str = r#"{
        "amount": {"currency": "NOK", "value": 1000},
        "paymentMethod": {"type": "WALLET"},
        "customer": {"phoneNumber": "4712345678"},
        "reference": "acme-shop-123-order123abc",
        "returnUrl": "https://example.com/redirect?orderId=acme-shop-123-order123abc",
        "userFlow": "WEB_REDIRECT",
        "paymentDescription": "One pair of socks"
    }"#;

    const INITIATE: &str = r#"{
        "customerInfo": {"mobileNumber": "48059528"},
        "merchantInfo": {"callbackPrefix": "https://www.callback.com/", "fallBack": "https://fallback.com/", "merchantSerialNumber": "123456", "isApp": true},
        "transaction": {"amount": 1234, "orderId": "id170", "timeStamp": "2020-06-24T08:34:25-07:00", "transactionText": "Initiate Payment"}
    }"#;

    const AGREEMENT: &str = r#"{
        "pricing": {"type": "LEGACY", "amount": 49900, "currency": "NOK"},
        "interval": {"unit": "MONTH", "count": 1},
        "merchantRedirectUrl": "https://example.com/redirect",
        "merchantAgreementUrl": "https://example.com/agreement",
        "phoneNumber": "4791234567",
        "productName": "Premier League subscription"
    }"#;

    fn create() -> http::request::Builder {
        good(http::Request::post(format!("{TEST}/epayment/v1/payments")))
    }

    fn capture() -> http::request::Builder {
        good(http::Request::post(format!(
            "{TEST}/epayment/v1/payments/acme-shop-123-order123abc/capture"
        )))
    }

    fn initiate() -> http::request::Builder {
        good(http::Request::post(format!("{TEST}/ecomm/v2/payments")))
    }

    fn agreement() -> http::request::Builder {
        good(http::Request::post(format!(
            "{TEST}/recurring/v3/agreements"
        )))
    }

    fn with(body: &str, from: &str, to: &str) -> String {
        assert!(body.contains(from), "{from}");
        body.replacen(from, to, 1)
    }

    fn refuses(b: http::request::Builder, body: &str, cause: Cause) -> crate::VippsError {
        let layer = strict(PreflightLayer::new(), &[]);
        let err = run(&layer, b, body).expect_err(body);
        assert_eq!(err.cause(), cause, "{body}\n{err}");
        err
    }

    #[test]
    fn valid_examples_pass() {
        assert_passes_body(create(), CREATE, &[]);
        assert_passes_body(
            capture(),
            r#"{"modificationAmount":{"value":1000,"currency":"NOK"}}"#,
            &[],
        );
        assert_passes_body(
            good(http::Request::post(format!(
                "{TEST}/epayment/v1/payments/acme-shop-123-order123abc/refund"
            ))),
            r#"{"modificationAmount":{"value":500,"currency":"DKK"}}"#,
            &[],
        );
        assert_passes_body(initiate(), INITIATE, &[]);
        assert_passes_body(agreement(), AGREEMENT, &[]);
    }

    #[test]
    fn amounts() {
        for (from, to) in [
            ("\"value\": 1000", "\"value\": 10.5"),
            ("\"value\": 1000", "\"value\": 0"),
            ("\"value\": 1000", "\"value\": -100"),
            ("\"value\": 1000", "\"value\": \"1000\""),
            ("\"value\": 1000", "\"value\": 1e3"),
            ("\"value\": 1000", "\"value\": 18446744073709551615"),
            ("\"value\": 1000", "\"value\": true"),
        ] {
            let err = refuses(create(), &with(CREATE, from, to), Cause::InvalidAmount);
            assert!(err.diagnosis().evidence()[0].starts_with("`amount.value`"));
        }
        refuses(
            initiate(),
            &with(INITIATE, "\"amount\": 1234", "\"amount\": 2147483648"),
            Cause::InvalidAmount,
        );
        refuses(
            agreement(),
            &with(AGREEMENT, "49900", "-1"),
            Cause::InvalidAmount,
        );
        refuses(
            capture(),
            r#"{"modificationAmount":{"value":99.5,"currency":"NOK"}}"#,
            Cause::InvalidAmount,
        );
        // Near misses: the largest eCom amount, a free agreement, an unknown body.
        assert_passes_body(
            initiate(),
            &with(INITIATE, "\"amount\": 1234", "\"amount\": 2147483647"),
            &[],
        );
        assert_passes_body(agreement(), &with(AGREEMENT, "49900", "0"), &[]);
        assert_passes_body(
            good(http::Request::post(format!(
                "{TEST}/epayment/v1/payments/abcdefgh-1/cancel"
            ))),
            r#"{"value": -1}"#,
            &[],
        );
    }

    #[test]
    fn too_small_warns() {
        let body = with(CREATE, "\"value\": 1000", "\"value\": 99");
        refuses(create(), &body, Cause::AmountTooSmall);
        // By default it only warns.
        run(&PreflightLayer::new(), create(), &body).unwrap();
        assert_passes_body(
            create(),
            &with(CREATE, "\"value\": 1000", "\"value\": 100"),
            &[],
        );
        // DKK has its own minimum: not judged.
        let dkk = with(
            with(CREATE, "\"value\": 1000", "\"value\": 99").as_str(),
            "NOK",
            "DKK",
        );
        assert_passes_body(create(), &dkk, &[]);
    }

    #[test]
    fn currencies() {
        for to in ["\"SEK\"", "\"nok\"", "\"NOK \"", "null", "578"] {
            let body = with(CREATE, "\"NOK\"", to);
            if to == "null" {
                assert_passes_body(create(), &body, &[]);
                continue;
            }
            refuses(create(), &body, Cause::InvalidCurrency);
        }
        for ok in ["DKK", "EUR"] {
            assert_passes_body(
                create(),
                &with(CREATE, "NOK", ok),
                &[RuleId::AmountTooSmall],
            );
        }
    }

    #[test]
    fn phone_numbers() {
        for bad in [
            "+4712345678",
            "004712345678",
            "47 12345678",
            "12345678",
            "471234567",
            "47123456789",
            "4512345",
            "358123",
            "047123456",
            "47-12345678",
            "",
            "abc",
            "1234567890123456",
        ] {
            assert!(msisdn_problem(bad).is_some(), "{bad}");
            let body = with(CREATE, "4712345678", bad);
            let err = refuses(create(), &body, Cause::InvalidPhoneNumber);
            if bad.len() >= 8 {
                assert_no_secret(&err, bad);
            }
        }
        for good in [
            "4712345678",
            "4591234567",
            "358401234567",
            "35840123456",
            "46701234567",
            "4412345678",
            "15551234567",
        ] {
            assert_eq!(msisdn_problem(good), None, "{good}");
            assert_passes_body(create(), &with(CREATE, "4712345678", good), &[]);
        }
        refuses(
            create(),
            &with(CREATE, "\"4712345678\"", "4712345678"),
            Cause::InvalidPhoneNumber,
        );
        // eCom: 8 digits.
        assert_eq!(ecom_mobile_problem("48059528"), None);
        assert_eq!(ecom_mobile_problem("4748059528"), None);
        for bad in ["004748059528", "+4748059528", "4805952", "4848059528"] {
            assert!(ecom_mobile_problem(bad).is_some(), "{bad}");
        }
        refuses(
            initiate(),
            &with(INITIATE, "48059528", "004712345678"),
            Cause::InvalidPhoneNumber,
        );
        refuses(
            agreement(),
            &with(AGREEMENT, "4791234567", "91234567"),
            Cause::InvalidPhoneNumber,
        );
    }

    #[test]
    fn urls() {
        for bad in [
            "htt://example.com",
            "http://example.com/cb",
            "example.com/cb",
            "/relative",
            "https:/example.com",
            "https://",
            "https://exa mple.com",
            "ftp://example.com",
            "myapp://return",
            "hhttps://example.com",
        ] {
            assert!(url_problem(bad, false, false).is_some(), "{bad}");
            let body = with(
                CREATE,
                "https://example.com/redirect?orderId=acme-shop-123-order123abc",
                bad,
            );
            refuses(create(), &body, Cause::InvalidUrl);
        }
        let long = format!("https://example.com/{}", "a".repeat(2100));
        refuses(
            create(),
            &with(
                CREATE,
                "https://example.com/redirect?orderId=acme-shop-123-order123abc",
                &long,
            ),
            Cause::InvalidUrl,
        );
        for ok in [
            "https://example.com",
            "HTTPS://EXAMPLE.COM/x",
            "https://user@example.com:8443/cb?a=b|c#frag",
            "http://localhost:3000/return",
            "http://127.0.0.1/return",
        ] {
            assert_eq!(url_problem(ok, false, false), None, "{ok}");
        }
        // http://localhost is not for production.
        assert!(url_problem("http://localhost/x", false, true).is_some());
        // App schemes where the API allows them.
        let native = with(
            with(
                CREATE,
                "https://example.com/redirect?orderId=acme-shop-123-order123abc",
                "myapp://return",
            )
            .as_str(),
            "WEB_REDIRECT",
            "NATIVE_REDIRECT",
        );
        assert_passes_body(create(), &native, &[]);
        assert_passes_body(
            initiate(),
            &with(INITIATE, "https://fallback.com/", "vipps-demo://fallback"),
            &[],
        );
        let not_app = with(INITIATE, "\"isApp\": true", "\"isApp\": false");
        refuses(
            initiate(),
            &with(&not_app, "https://fallback.com/", "vipps-demo://fallback"),
            Cause::InvalidUrl,
        );
        refuses(
            initiate(),
            &with(
                INITIATE,
                "https://www.callback.com/",
                "http://www.callback.com/",
            ),
            Cause::InvalidUrl,
        );
        refuses(
            agreement(),
            &with(AGREEMENT, "https://example.com/agreement", "example.com"),
            Cause::InvalidUrl,
        );
    }

    #[test]
    fn references() {
        for bad in [
            "short",
            "acme_shop_123",
            "acme shop 1234",
            "æøå-12345678",
            &"a".repeat(65),
        ] {
            let err = refuses(
                create(),
                &with(CREATE, "acme-shop-123-order123abc", bad),
                Cause::InvalidReference,
            );
            assert!(err.diagnosis().evidence()[0].contains("{8,64}"));
        }
        for ok in [
            "12345678",
            &"a".repeat(64),
            "577531734343670112",
            "A-B-C-D-E",
        ] {
            assert_passes_body(
                create(),
                &with(CREATE, "acme-shop-123-order123abc", ok),
                &[],
            );
        }
        refuses(
            initiate(),
            &with(INITIATE, "id170", &"o".repeat(51)),
            Cause::InvalidReference,
        );
        refuses(
            initiate(),
            &with(INITIATE, "id170", "id/170"),
            Cause::InvalidReference,
        );
        assert_passes_body(initiate(), &with(INITIATE, "id170", "1"), &[]);
    }

    #[test]
    fn streaming_and_oversized_bodies_are_not_read() {
        // Over the cap: the body rules do not run.
        let layer = strict(PreflightLayer::new().body_cap(16), &[]);
        run(
            &layer,
            create(),
            &with(CREATE, "\"value\": 1000", "\"value\": 0"),
        )
        .unwrap();
        // Not JSON: ignored.
        assert_passes_body(create(), "amount=0", &[]);
        assert_passes_body(create(), "{not json", &[]);
    }
}
