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
//! | eCom `mobileNumber` | `^\d{8}$` | `ecom-v2.yaml` customerInfo |
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
use crate::Environment;
use crate::context::Api;
use crate::{Cause, Diagnosis};

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
    if f.api == Api::Recurring && !is_recurring_v3(f.uri.path()) {
        return None;
    }
    Some((kind, f.json.as_ref()?.root()))
}

/// A Recurring v3 path (`/recurring/v3/…`).
pub(super) fn is_recurring_v3(path: &str) -> bool {
    path.trim_start_matches('/')
        .split('/')
        .nth(1)
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

/// A phone number not in the format of its API's specification:
///
/// - ePayment `customer.phoneNumber`: `^\d{10,15}$`
///   (`epayment.v1.yml #/components/schemas/CustomerPhoneNumber/properties/phoneNumber`);
/// - Recurring v3 `phoneNumber`: a string of at most 15 characters
///   (`recurring.yaml DraftAgreementV3 phoneNumber`, `maxLength: 15`);
/// - eCom `customerInfo.mobileNumber`: `^\d{8}$`
///   (`ecom-v2.yaml initiatePaymentV3UsingPOST customerInfo.mobileNumber`).
///
/// Nothing stricter: no per-market lengths, which the specifications do not set.
pub(super) fn phone_number(f: &Facts<'_>) -> Option<Diagnosis> {
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
        _ => "\u{0}",
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
/// code.
pub(crate) fn ecom_mobile_problem(s: &str) -> Option<String> {
    if let Some(p) = shape_problem(s) {
        return Some(p);
    }
    let n = s.len();
    if n == 8 {
        return None;
    }
    Some(format!(
        "has {n} digits; the eCom API takes 8 digits without country code (`^\\d{{8}}$`)"
    ))
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

/// A URL that is not absolute `https://` (with the exceptions documented above) or
/// is longer than its specification allows:
///
/// - ePayment `returnUrl`: https or an app's custom scheme, whatever the `userFlow`
///   (`epayment.v1.yml` CreatePaymentRequest `returnUrl`, and the create guide
///   <https://developer.vippsmobilepay.com/docs/APIs/epayment-api/api-guide/operations/create/>);
///   no length limit.
/// - eCom `callbackPrefix`, `fallBack`, `consentRemovalPrefix`,
///   `shippingDetailsPrefix`: at most 255 characters (`ecom-v2.yaml`
///   initiatePaymentV3UsingPOST `merchantInfo`); an app scheme in `fallBack` with
///   `isApp: true`.
/// - Recurring `merchantRedirectUrl`, `merchantAgreementUrl`: at most 1024
///   characters (`recurring.yaml` DraftAgreementV3 / UpdateAgreementPatchV3); an
///   app scheme in `merchantRedirectUrl` with `isApp: true`.
/// - Checkout `merchantInfo.returnUrl`, `callbackUrl`, `termsAndConditionsUrl`.
pub(super) fn url(f: &Facts<'_>) -> Option<Diagnosis> {
    let (kind, json) = known(f)?;
    let is_app = |path: &str| at(json, path).and_then(Value::as_bool) == Some(true);
    let app_scheme_ok = |path: &str| match (kind, path) {
        (Kind::EPaymentCreate, "returnUrl") => true,
        (Kind::EComInitiate, "merchantInfo.fallBack") => is_app("merchantInfo.isApp"),
        (Kind::RecurringAgreement, "merchantRedirectUrl") => is_app("isApp"),
        (Kind::CheckoutSession, "merchantInfo.returnUrl") => true,
        _ => false,
    };
    let (fields, max): (&[&str], Option<usize>) = match kind {
        Kind::EPaymentCreate => (&["returnUrl", "callbackUrl"], None),
        Kind::EComInitiate => (
            &[
                "merchantInfo.callbackPrefix",
                "merchantInfo.fallBack",
                "merchantInfo.consentRemovalPrefix",
                "merchantInfo.shippingDetailsPrefix",
            ],
            Some(255),
        ),
        Kind::RecurringAgreement | Kind::RecurringUpdate => {
            (&["merchantRedirectUrl", "merchantAgreementUrl"], Some(1024))
        }
        Kind::CheckoutSession => (
            &[
                "merchantInfo.returnUrl",
                "merchantInfo.callbackUrl",
                "merchantInfo.termsAndConditionsUrl",
            ],
            None,
        ),
        _ => return None,
    };
    let production = f.environment == Some(Environment::Production);
    for path in fields {
        let Some(value) = at(json, path) else {
            continue;
        };
        let problem = match value {
            Value::Null => continue,
            Value::String(s) if max.is_some_and(|max| s.chars().count() > max) => format!(
                "is {} characters long, at most {} by the specification",
                s.chars().count(),
                max.unwrap_or(0)
            ),
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
    // Compared without a lower-case copy: no allocation for a URL that passes.
    if scheme.eq_ignore_ascii_case("https") {
        if host.is_empty() {
            return Some("has no host".to_owned());
        }
        return None;
    }
    if scheme.eq_ignore_ascii_case("http") {
        let name = match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        };
        let local = ["localhost", "127.0.0.1", "[::1]"]
            .iter()
            .any(|l| name.eq_ignore_ascii_case(l));
        return if local && !production {
            None
        } else if local {
            Some("uses `http://localhost` in production: use `https://`".to_owned())
        } else {
            Some("uses `http://`: Vipps MobilePay requires `https://`".to_owned())
        };
    }
    let lower = scheme.to_ascii_lowercase();
    if looks_like_http_typo(&lower) {
        Some(format!(
            "has the scheme `{}`: did you mean `https`?",
            shown_word(scheme, 16).unwrap_or("?")
        ))
    } else if app_scheme_ok {
        None
    } else {
        Some(format!(
            "has the scheme `{}`: it must be `https`",
            shown_word(scheme, 16).unwrap_or("?")
        ))
    }
}

/// `htt`, `htps`, `hhtps`, `httpss`, `https2`…: a typo of `http(s)`, never an app
/// scheme.
pub(crate) fn looks_like_http_typo(scheme: &str) -> bool {
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
            ("\"value\": 1000", "\"value\": 65000001"),
            ("\"value\": 1000", "\"value\": -100"),
            ("\"value\": 1000", "\"value\": \"1000\""),
            ("\"value\": 1000", "\"value\": 1e3"),
            ("\"value\": 1000", "\"value\": 18446744073709551615"),
            ("\"value\": 1000", "\"value\": true"),
        ] {
            let err = refuses(create(), &with(CREATE, from, to), Cause::InvalidAmount);
            assert!(err.diagnosis().evidence()[0].starts_with("`amount.value`"));
        }
        // eCom: at least 100, no maximum (ecom-v2.yaml).
        refuses(
            initiate(),
            &with(INITIATE, "\"amount\": 1234", "\"amount\": 99"),
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
        // Recurring: int32 of at least 100.
        refuses(
            agreement(),
            &with(AGREEMENT, "49900", "99"),
            Cause::InvalidAmount,
        );
        refuses(
            agreement(),
            &with(AGREEMENT, "49900", "2147483648"),
            Cause::InvalidAmount,
        );
        // Near misses: both ePayment bounds, a large eCom amount, the least
        // agreement price, an unknown body.
        for ok in ["0", "65000000"] {
            assert_passes_body(
                create(),
                &with(CREATE, "\"value\": 1000", &format!("\"value\": {ok}")),
                &[RuleId::AmountTooSmall],
            );
            assert_passes_body(
                capture(),
                &format!(r#"{{"modificationAmount":{{"value":{ok},"currency":"NOK"}}}}"#),
                &[],
            );
        }
        assert_passes_body(
            initiate(),
            &with(
                INITIATE,
                "\"amount\": 1234",
                "\"amount\": 92233720368547758",
            ),
            &[],
        );
        assert_passes_body(agreement(), &with(AGREEMENT, "49900", "100"), &[]);
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
            "47 12345678",
            "12345678",
            "471234567",
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
            // ^\d{10,15}$ allows what per-market rules refused (epayment.v1.yml).
            "47123456789",
            "004712345678",
            "0123456789",
            "123456789012345",
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
        for bad in [
            "004748059528",
            "+4748059528",
            "4805952",
            "4848059528",
            "4748059528",
        ] {
            assert!(ecom_mobile_problem(bad).is_some(), "{bad}");
        }
        refuses(
            initiate(),
            &with(INITIATE, "48059528", "004712345678"),
            Cause::InvalidPhoneNumber,
        );
        // Recurring v3: at most 15 characters, nothing else.
        refuses(
            agreement(),
            &with(AGREEMENT, "4791234567", "4791234567890123"),
            Cause::InvalidPhoneNumber,
        );
        assert_passes_body(agreement(), &with(AGREEMENT, "4791234567", "91234567"), &[]);
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
            let body = with(INITIATE, "https://www.callback.com/", bad);
            refuses(initiate(), &body, Cause::InvalidUrl);
        }
        // No length limit in ePayment, and an app scheme in `returnUrl` whatever
        // the `userFlow`.
        for ok in [
            format!("https://example.com/{}", "a".repeat(2100)),
            "myapp://return".to_owned(),
        ] {
            let body = with(
                CREATE,
                "https://example.com/redirect?orderId=acme-shop-123-order123abc",
                &ok,
            );
            assert_passes_body(create(), &body, &[]);
        }
        // eCom: 255 characters; Recurring: 1024.
        let long = format!("https://example.com/{}", "a".repeat(236));
        refuses(
            initiate(),
            &with(INITIATE, "https://www.callback.com/", &long),
            Cause::InvalidUrl,
        );
        let long = format!("https://example.com/{}", "a".repeat(1005));
        refuses(
            agreement(),
            &with(AGREEMENT, "https://example.com/agreement", &long),
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
            &with(CREATE, "\"value\": 1000", "\"value\": -1"),
        )
        .unwrap();
        // Not JSON: refused (three official guide examples have such typos).
        for bad in ["amount=0", "{not json", "{\"amount\": 1,}"] {
            refuses(create(), bad, Cause::InvalidJsonBody);
        }
    }
}
