//! Conformance to the official OpenAPI specifications (the copies in
//! `tests/data/specs`, from `../shared/specs`; sources in their README):
//!
//! 1. every example request of the specs passes Preflight with every warning
//!    turned into a refusal;
//! 2. boundary values on both sides of each constraint: the spec-valid side
//!    passes, the spec-invalid side is refused with its own cause;
//! 3. every documented error body is classified to its cause;
//!
//! The emulator's side is `tests/spec_emulator.rs`.
//!
//! Each part prints its figures (`cargo test --test spec_conformance -- --nocapture`).

use http::StatusCode;
use serde_json::{Value, json};
use tower_vipps::diagnose::classify;
use tower_vipps::preflight::{Action, Policy, PreflightLayer, RuleId};
use tower_vipps::{Api, Cause, RequestContext};

const TEST: &str = "https://apitest.vipps.no";
/// A JWT-shaped token, expiring in 2100.
const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.c2lnbmF0dXJl";

fn spec(name: &str) -> Value {
    let path = format!("{}/tests/data/specs/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Preflight with every warning a refusal.
fn strict() -> PreflightLayer {
    let mut policy = Policy::default();
    for id in RuleId::ALL {
        if id.default_action() == Action::Warn {
            policy.set(*id, Action::Refuse);
        }
    }
    PreflightLayer::new().policy(policy)
}

/// The headers a correct call of the API carries.
fn request(method: &str, path: &str) -> http::request::Builder {
    let b = http::Request::builder()
        .method(method)
        .uri(format!("{TEST}{path}"))
        .header(
            "Ocp-Apim-Subscription-Key",
            "0123456789abcdef0123456789abcdef",
        )
        .header("Merchant-Serial-Number", "123456")
        .header("Vipps-System-Name", "acme")
        .header("Vipps-System-Version", "1.0.0")
        .header("Idempotency-Key", "49ca711a-acee-4d01-993b-9487112e1def")
        .header("X-Request-Id", "req-1");
    if path.starts_with("/checkout/") {
        b.header("client_id", "client-id")
            .header("client_secret", "client-secret")
    } else {
        b.header("Authorization", format!("Bearer {TOKEN}"))
    }
}

fn check(layer: &PreflightLayer, b: http::request::Builder, body: &str) -> Result<(), Cause> {
    let req = b.body(body.to_owned()).unwrap();
    layer.check(&req).map_err(|e| e.cause())
}

// ---------------------------------------------------------------------------
// 1. The specs' example requests.

/// Every `requestBody` example of a spec, with the operation's method and path
/// (under the server's base path).
fn examples(doc: &Value, base: &str) -> Vec<(String, String, String, Value)> {
    let mut out = Vec::new();
    let paths = doc["paths"].as_object().unwrap();
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let Some(rb) = op.get("requestBody") else {
                continue;
            };
            let rb = match rb.get("$ref").and_then(Value::as_str) {
                Some(r) => &doc["components"]["requestBodies"][r.rsplit('/').next().unwrap()],
                None => rb,
            };
            for (ct, content) in rb["content"].as_object().into_iter().flatten() {
                let mut found: Vec<(String, Value)> = Vec::new();
                if let Some(e) = content.get("example") {
                    found.push(("example".into(), e.clone()));
                }
                for (name, e) in content["examples"].as_object().into_iter().flatten() {
                    let e = match e.get("$ref").and_then(Value::as_str) {
                        Some(r) => &doc["components"]["examples"][r.rsplit('/').next().unwrap()],
                        None => e,
                    };
                    found.push((name.clone(), e["value"].clone()));
                }
                for (name, value) in found {
                    out.push((
                        method.to_uppercase(),
                        format!("{base}{path}"),
                        format!("{ct} {name}"),
                        value,
                    ));
                }
            }
        }
    }
    out
}

/// A body built from the `example` of each property of a schema (the ePayment and
/// eCom specs give their examples per property).
fn synthesize(doc: &Value, schema: &Value) -> Value {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        if let Some(name) = r.strip_prefix("#/components/schemas/") {
            return synthesize(doc, &doc["components"]["schemas"][name]);
        }
        return Value::Null;
    }
    if let Some(e) = schema.get("example") {
        return e.clone();
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(first) = schema[key].as_array().and_then(|a| a.first()) {
            return synthesize(doc, first);
        }
    }
    match schema["properties"].as_object() {
        Some(props) => {
            let mut out = serde_json::Map::new();
            for (name, prop) in props {
                let v = synthesize(doc, prop);
                if !v.is_null() {
                    out.insert(name.clone(), v);
                }
            }
            Value::Object(out)
        }
        None => Value::Null,
    }
}

#[test]
fn every_spec_example_passes_preflight_strictly() {
    let layer = strict();
    let mut cases: Vec<(String, String, String, Value)> = Vec::new();
    let recurring = spec("recurring.yaml");
    cases.extend(examples(&recurring, ""));
    let checkout = spec("checkout.yaml");
    cases.extend(
        examples(&checkout, "/checkout/v3")
            .into_iter()
            // The Postman examples hold `{{variables}}`, not values.
            .filter(|(_, _, name, _)| !name.contains("Postman")),
    );
    // ePayment and eCom give examples per property: the bodies they make.
    let epayment = spec("epayment.v1.yml");
    let schemas = &epayment["components"]["schemas"];
    let mut create = synthesize(&epayment, &schemas["CreatePaymentRequest"]);
    // `customer` is a oneOf: the phone number example is the first.
    create["receipt"] = Value::Null;
    cases.push((
        "POST".into(),
        "/epayment/v1/payments".into(),
        "CreatePaymentRequest property examples".into(),
        create,
    ));
    for (op, schema) in [
        ("capture", "CaptureModificationRequest"),
        ("refund", "RefundModificationRequest"),
    ] {
        cases.push((
            "POST".into(),
            format!("/epayment/v1/payments/acme-shop-123-order123abc/{op}"),
            format!("{schema} property examples"),
            synthesize(&epayment, &schemas[schema]),
        ));
    }
    let ecom = spec("ecom-v2.yaml");
    let initiate = &ecom["paths"]["/ecomm/v2/payments"]["post"]["requestBody"]["content"]["application/json;charset=UTF-8"]
        ["schema"];
    cases.push((
        "POST".into(),
        "/ecomm/v2/payments".into(),
        "initiate property examples".into(),
        synthesize(&ecom, initiate),
    ));
    let mut refused = Vec::new();
    for (method, path, name, body) in &cases {
        let body = serde_json::to_string(body).unwrap();
        if let Err(cause) = check(&layer, request(method, path), &body) {
            refused.push(format!("{method} {path} [{name}]: {cause}\n  {body}"));
        }
    }
    println!(
        "spec examples: {} checked, {} refused",
        cases.len(),
        refused.len()
    );
    assert!(cases.len() >= 20, "{}", cases.len());
    assert!(refused.is_empty(), "{}", refused.join("\n"));
}

// ---------------------------------------------------------------------------
// 2. Boundaries on both sides of each constraint.

struct Case {
    what: &'static str,
    method: &'static str,
    path: &'static str,
    /// Headers removed from the correct call, and added to it.
    remove: &'static [&'static str],
    add: &'static [(&'static str, &'static str)],
    body: String,
    /// `None`: spec-valid, must pass; `Some`: spec-invalid, refused with this cause.
    expect: Option<Cause>,
}

const CREATE: &str = r#"{"amount":{"currency":"NOK","value":1000},"paymentMethod":{"type":"WALLET"},"customer":{"phoneNumber":"4712345678"},"reference":"acme-shop-123-order123abc","returnUrl":"https://example.com/redirect","userFlow":"WEB_REDIRECT","paymentDescription":"One pair of socks"}"#;
const ADJUST: &str = r#"{"modificationAmount":{"currency":"NOK","value":1000}}"#;
const INITIATE: &str = r#"{"customerInfo":{"mobileNumber":"91234567"},"merchantInfo":{"callbackPrefix":"https://example.com/callback","fallBack":"https://example.com/fallback","merchantSerialNumber":"123456"},"transaction":{"amount":20000,"orderId":"acme-shop-123-order123abc","transactionText":"One pair of socks"}}"#;
const ECOM_ADJUST: &str = r#"{"merchantInfo":{"merchantSerialNumber":"123456"},"transaction":{"amount":20000,"transactionText":"Capture"}}"#;
const AGREEMENT: &str = r#"{"pricing":{"type":"LEGACY","amount":2500,"currency":"NOK"},"interval":{"unit":"MONTH","count":1},"merchantRedirectUrl":"https://example.com/redirect","merchantAgreementUrl":"https://example.com/agreement","phoneNumber":"4791234567","productName":"Premier League subscription"}"#;
const UPDATE: &str = r#"{"productName":"Premier League subscription","interval":{"type":"RECURRING","period":{"unit":"MONTH","count":1}}}"#;
const CHARGE: &str = r#"{"amount":2500,"transactionType":"DIRECT_CAPTURE","description":"October","due":"2030-10-01","retryDays":5}"#;
const SESSION: &str = r#"{"merchantInfo":{"callbackUrl":"https://example.com/cb","returnUrl":"https://example.com/return","callbackAuthorizationToken":"token"},"transaction":{"amount":{"value":1000,"currency":"NOK"},"reference":"acme-shop-123","paymentDescription":"One pair of socks"}}"#;
const WEBHOOK: &str =
    r#"{"url":"https://example.com/webhooks","events":["epayments.payment.captured.v1"]}"#;

const EP: &str = "/epayment/v1/payments";
const EP_GET: &str = "/epayment/v1/payments/acme-shop-123-order123abc";
const EP_CAPTURE: &str = "/epayment/v1/payments/acme-shop-123-order123abc/capture";
const ECOM: &str = "/ecomm/v2/payments";
const ECOM_CAPTURE: &str = "/ecomm/v2/payments/acme-shop-123-order123abc/capture";
const ECOM_CANCEL: &str = "/ecomm/v2/payments/acme-shop-123-order123abc/cancel";
const AGR: &str = "/recurring/v3/agreements";
const AGR_CHARGE: &str = "/recurring/v3/agreements/agr_5kSeqz/charges";
const AGR_ONE: &str = "/recurring/v3/agreements/agr_5kSeqz";
const SESS: &str = "/checkout/v3/session";
const HOOKS: &str = "/webhooks/v1/webhooks";

fn replace(body: &str, from: &str, to: &str) -> String {
    assert!(body.contains(from), "{from} not in {body}");
    body.replacen(from, to, 1)
}

/// One body-field case: `from` replaced by `to` in `base`.
fn field(
    what: &'static str,
    method: &'static str,
    path: &'static str,
    base: &str,
    from: &str,
    to: &str,
    expect: Option<Cause>,
) -> Case {
    Case {
        what,
        method,
        path,
        remove: &[],
        add: &[],
        body: replace(base, from, to),
        expect,
    }
}

/// A case whose `Merchant-Serial-Number` header is `msn` (leaked: a test's
/// lifetime).
fn msn(case: Case, msn: &str) -> Case {
    let add: &'static [(&'static str, &'static str)] = Box::leak(Box::new([(
        "Merchant-Serial-Number",
        &*Box::leak(msn.to_owned().into_boxed_str()),
    )]));
    Case {
        remove: &["Merchant-Serial-Number"],
        add,
        ..case
    }
}

fn header(
    what: &'static str,
    method: &'static str,
    path: &'static str,
    body: &str,
    remove: &'static [&'static str],
    add: &'static [(&'static str, &'static str)],
    expect: Option<Cause>,
) -> Case {
    Case {
        what,
        method,
        path,
        remove,
        add,
        body: body.to_owned(),
        expect,
    }
}

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    use Cause::*;
    let long = |n: usize| "a".repeat(n);
    let url = |n: usize| format!("https://example.com/{}", "a".repeat(n - 20));
    let metadata = |n: usize| {
        let props: Vec<String> = (0..n).map(|i| format!("\"k{i}\":\"v\"")).collect();
        format!("\"metadata\":{{{}}},\"userFlow\"", props.join(","))
    };
    let desc = |n: usize| format!("\"paymentDescription\":\"{}\"", "d".repeat(n));
    vec![
        // ePayment amounts: 0..=65,000,000 (Amount.value).
        field("ePayment amount 0", "POST", EP, CREATE, "\"value\":1000", "\"value\":0", None),
        field("ePayment amount max", "POST", EP, CREATE, "\"value\":1000", "\"value\":65000000", None),
        field("ePayment amount over max", "POST", EP, CREATE, "\"value\":1000", "\"value\":65000001", Some(InvalidAmount)),
        field("ePayment amount negative", "POST", EP, CREATE, "\"value\":1000", "\"value\":-1", Some(InvalidAmount)),
        field("ePayment amount decimal", "POST", EP, CREATE, "\"value\":1000", "\"value\":10.5", Some(InvalidAmount)),
        field("ePayment capture 0", "POST", EP_CAPTURE, ADJUST, "\"value\":1000", "\"value\":0", None),
        field("ePayment capture negative", "POST", EP_CAPTURE, ADJUST, "\"value\":1000", "\"value\":-5", Some(InvalidAmount)),
        field("ePayment currency", "POST", EP, CREATE, "\"NOK\"", "\"SEK\"", Some(InvalidCurrency)),
        // returnUrl: https or a custom scheme, whatever userFlow; no length limit.
        field("ePayment custom-scheme returnUrl, WEB_REDIRECT", "POST", EP, CREATE, "https://example.com/redirect", "myapp://return", None),
        field("ePayment custom-scheme returnUrl, NATIVE_REDIRECT", "POST", EP, &replace(CREATE, "WEB_REDIRECT", "NATIVE_REDIRECT"), "https://example.com/redirect", "myapp://return", None),
        field("ePayment 3000-char returnUrl", "POST", EP, CREATE, "https://example.com/redirect", &url(3000), None),
        field("ePayment returnUrl not a URL", "POST", EP, CREATE, "https://example.com/redirect", "example.com/redirect", Some(InvalidUrl)),
        field("ePayment returnUrl http", "POST", EP, CREATE, "https://example.com/redirect", "http://example.com/r", Some(InvalidUrl)),
        // Phone numbers: ^\d{10,15}$.
        field("ePayment phone 10 digits", "POST", EP, CREATE, "4712345678", "4512345678", None),
        field("ePayment phone 15 digits", "POST", EP, CREATE, "4712345678", "358401234567890", None),
        field("ePayment phone 11 digits NO", "POST", EP, CREATE, "4712345678", "47123456789", None),
        field("ePayment phone 9 digits", "POST", EP, CREATE, "4712345678", "471234567", Some(InvalidPhoneNumber)),
        field("ePayment phone 16 digits", "POST", EP, CREATE, "4712345678", "4712345678901234", Some(InvalidPhoneNumber)),
        field("ePayment phone +", "POST", EP, CREATE, "4712345678", "+4712345678", Some(InvalidPhoneNumber)),
        // reference: ^[a-zA-Z0-9-]{8,64}$ (docs).
        field("ePayment reference 8", "POST", EP, CREATE, "acme-shop-123-order123abc", "abcdefgh", None),
        field("ePayment reference 64", "POST", EP, CREATE, "acme-shop-123-order123abc", &long(64), None),
        field("ePayment reference 7", "POST", EP, CREATE, "acme-shop-123-order123abc", "abcdefg", Some(InvalidReference)),
        field("ePayment reference 65", "POST", EP, CREATE, "acme-shop-123-order123abc", &long(65), Some(InvalidReference)),
        header("ePayment path reference short", "GET", "/epayment/v1/payments/abc", "", &[], &[], Some(InvalidReference)),
        header("ePayment path reference underscore", "GET", "/epayment/v1/payments/acme_shop_123", "", &[], &[], Some(InvalidReference)),
        header("ePayment path reference ok", "GET", EP_GET, "", &[], &[], None),
        // paymentDescription 3..=100.
        field("ePayment description 3", "POST", EP, CREATE, "\"paymentDescription\":\"One pair of socks\"", &desc(3), None),
        field("ePayment description 100", "POST", EP, CREATE, "\"paymentDescription\":\"One pair of socks\"", &desc(100), None),
        field("ePayment description 2", "POST", EP, CREATE, "\"paymentDescription\":\"One pair of socks\"", &desc(2), Some(InvalidDescription)),
        field("ePayment description 101", "POST", EP, CREATE, "\"paymentDescription\":\"One pair of socks\"", &desc(101), Some(InvalidDescription)),
        // userFlow: required, enum.
        field("ePayment userFlow QR", "POST", EP, CREATE, "WEB_REDIRECT", "QR", None),
        field("ePayment userFlow lower case", "POST", EP, CREATE, "WEB_REDIRECT", "web_redirect", Some(InvalidUserFlow)),
        field("ePayment userFlow missing", "POST", EP, CREATE, ",\"userFlow\":\"WEB_REDIRECT\"", "", Some(InvalidUserFlow)),
        // expiresAt: RFC 3339 with zone.
        field("ePayment expiresAt Z", "POST", EP, CREATE, "\"userFlow\"", "\"expiresAt\":\"2030-02-26T17:32:28Z\",\"userFlow\"", None),
        field("ePayment expiresAt offset", "POST", EP, CREATE, "\"userFlow\"", "\"expiresAt\":\"2030-02-26T17:32:28.123+01:00\",\"userFlow\"", None),
        field("ePayment expiresAt no zone", "POST", EP, CREATE, "\"userFlow\"", "\"expiresAt\":\"2030-02-26T17:32:28\",\"userFlow\"", Some(InvalidExpiresAt)),
        field("ePayment expiresAt date", "POST", EP, CREATE, "\"userFlow\"", "\"expiresAt\":\"2030-02-26\",\"userFlow\"", Some(InvalidExpiresAt)),
        // metadata: at most 5 properties.
        field("ePayment metadata 5", "POST", EP, CREATE, "\"userFlow\"", &metadata(5), None),
        field("ePayment metadata 6", "POST", EP, CREATE, "\"userFlow\"", &metadata(6), Some(InvalidMetadata)),
        field("ePayment metadata object value", "POST", EP, CREATE, "\"userFlow\"", "\"metadata\":{\"a\":{\"b\":1}},\"userFlow\"", Some(InvalidMetadata)),
        // metadata: keys of at most 100 characters, values of at most 500.
        field("ePayment metadata key 100", "POST", EP, CREATE, "\"userFlow\"", &format!("\"metadata\":{{\"{}\":\"v\"}},\"userFlow\"", long(100)), None),
        field("ePayment metadata key 101", "POST", EP, CREATE, "\"userFlow\"", &format!("\"metadata\":{{\"{}\":\"v\"}},\"userFlow\"", long(101)), Some(InvalidMetadata)),
        field("ePayment metadata value 500", "POST", EP, CREATE, "\"userFlow\"", &format!("\"metadata\":{{\"k\":\"{}\"}},\"userFlow\"", long(500)), None),
        field("ePayment metadata value 501", "POST", EP, CREATE, "\"userFlow\"", &format!("\"metadata\":{{\"k\":\"{}\"}},\"userFlow\"", long(501)), Some(InvalidMetadata)),
        field("ePayment metadata value 500 ø", "POST", EP, CREATE, "\"userFlow\"", &format!("\"metadata\":{{\"k\":\"{}\"}},\"userFlow\"", "ø".repeat(500)), None),
        // customer.personalQr 5..=255.
        field("ePayment personalQr", "POST", EP, CREATE, "{\"phoneNumber\":\"4712345678\"}", "{\"personalQr\":\"https://qr.vipps.no/28/2/01/031/4791234567?v=1\"}", None),
        field("ePayment personalQr 4", "POST", EP, CREATE, "{\"phoneNumber\":\"4712345678\"}", "{\"personalQr\":\"abcd\"}", Some(InvalidPersonalQr)),
        field("ePayment personalQr 256", "POST", EP, CREATE, "{\"phoneNumber\":\"4712345678\"}", &format!("{{\"personalQr\":\"{}\"}}", long(256)), Some(InvalidPersonalQr)),
        // qrFormat.size 100..=2000.
        field("ePayment qr size 100", "POST", EP, CREATE, "\"userFlow\"", "\"qrFormat\":{\"format\":\"IMAGE/PNG\",\"size\":100},\"userFlow\"", None),
        field("ePayment qr size 2000", "POST", EP, CREATE, "\"userFlow\"", "\"qrFormat\":{\"format\":\"IMAGE/PNG\",\"size\":2000},\"userFlow\"", None),
        field("ePayment qr size 99", "POST", EP, CREATE, "\"userFlow\"", "\"qrFormat\":{\"format\":\"IMAGE/PNG\",\"size\":99},\"userFlow\"", Some(InvalidQrFormat)),
        field("ePayment qr size 2001", "POST", EP, CREATE, "\"userFlow\"", "\"qrFormat\":{\"format\":\"IMAGE/PNG\",\"size\":2001},\"userFlow\"", Some(InvalidQrFormat)),
        field("ePayment qr format", "POST", EP, CREATE, "\"userFlow\"", "\"qrFormat\":{\"format\":\"PNG\"},\"userFlow\"", Some(InvalidQrFormat)),
        // Headers.
        header("ePayment no MSN", "GET", EP_GET, "", &["Merchant-Serial-Number"], &[], Some(MissingMsnHeader)),
        header("ePayment MSN 0123", "GET", EP_GET, "", &["Merchant-Serial-Number"], &[("Merchant-Serial-Number", "0123")], None),
        header("ePayment system name 30", "GET", EP_GET, "", &["Vipps-System-Name"], &[("Vipps-System-Name", "abcdefghijabcdefghijabcdefghij")], None),
        header("ePayment system name 31", "GET", EP_GET, "", &["Vipps-System-Name"], &[("Vipps-System-Name", "abcdefghijabcdefghijabcdefghijk")], Some(SystemHeaderTooLong)),
        header("ePayment no idempotency key", "POST", EP, CREATE, &["Idempotency-Key"], &[], Some(MissingIdempotencyKey)),
        header("ePayment body not JSON", "POST", EP, "{\"amount\": {\"value\": 1000,}}", &[], &[], Some(InvalidJsonBody)),
        // Recurring v3.
        header("Recurring draft without Idempotency-Key", "POST", AGR, AGREEMENT, &["Idempotency-Key"], &[], Some(MissingIdempotencyKey)),
        header("Recurring charge without Idempotency-Key", "POST", AGR_CHARGE, CHARGE, &["Idempotency-Key"], &[], Some(MissingIdempotencyKey)),
        header("Recurring charge", "POST", AGR_CHARGE, CHARGE, &[], &[], None),
        header("Recurring lower-case bearer (warned)", "GET", "/recurring/v3/agreements/agr_5kSeqz", "", &["Authorization"], &[("Authorization", "bearer eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.c2lnbmF0dXJl")], Some(BearerWrongCase)),
        field("Recurring price 100", "POST", AGR, AGREEMENT, "\"amount\":2500", "\"amount\":100", None),
        field("Recurring price 99", "POST", AGR, AGREEMENT, "\"amount\":2500", "\"amount\":99", Some(InvalidAmount)),
        field("Recurring price over int32", "POST", AGR, AGREEMENT, "\"amount\":2500", "\"amount\":2147483648", Some(InvalidAmount)),
        field("Recurring initial charge negative (no minimum)", "POST", AGR, AGREEMENT, "\"phoneNumber\"", "\"initialCharge\":{\"amount\":-100,\"description\":\"x\",\"transactionType\":\"DIRECT_CAPTURE\"},\"phoneNumber\"", None),
        field("Recurring suggestedMaxAmount 2,000,000", "POST", AGR, AGREEMENT, "\"amount\":2500", "\"suggestedMaxAmount\":2000000", None),
        field("Recurring suggestedMaxAmount over", "POST", AGR, AGREEMENT, "\"amount\":2500", "\"suggestedMaxAmount\":2000001", Some(InvalidAmount)),
        field("Recurring suggestedMaxAmount 99", "POST", AGR, AGREEMENT, "\"amount\":2500", "\"suggestedMaxAmount\":99", Some(InvalidAmount)),
        field("Recurring charge 99", "POST", AGR_CHARGE, CHARGE, "\"amount\":2500", "\"amount\":99", Some(InvalidAmount)),
        field("Recurring productName 45", "POST", AGR, AGREEMENT, "Premier League subscription", &long(45), None),
        field("Recurring productName 46", "POST", AGR, AGREEMENT, "Premier League subscription", &long(46), Some(InvalidDescription)),
        field("Recurring interval count 31", "POST", AGR, AGREEMENT, "\"count\":1", "\"count\":31", None),
        field("Recurring interval count 0", "POST", AGR, AGREEMENT, "\"count\":1", "\"count\":0", Some(InvalidInterval)),
        field("Recurring interval count 32", "POST", AGR, AGREEMENT, "\"count\":1", "\"count\":32", Some(InvalidInterval)),
        // The update's interval (PatchAgreementV3): `{type, period}`, `type`
        // RECURRING (the default) and then `period` required, a TimePeriod.
        header("Recurring update interval", "PATCH", AGR_ONE, UPDATE, &[], &[], None),
        field("Recurring update interval without type", "PATCH", AGR_ONE, UPDATE, "\"type\":\"RECURRING\",", "", None),
        field("Recurring update period count 31", "PATCH", AGR_ONE, UPDATE, "\"count\":1", "\"count\":31", None),
        field("Recurring update period count 32", "PATCH", AGR_ONE, UPDATE, "\"count\":1", "\"count\":32", Some(InvalidInterval)),
        field("Recurring update period count 0", "PATCH", AGR_ONE, UPDATE, "\"count\":1", "\"count\":0", Some(InvalidInterval)),
        field("Recurring update period unit", "PATCH", AGR_ONE, UPDATE, "MONTH", "FORTNIGHT", Some(InvalidInterval)),
        field("Recurring update period without count", "PATCH", AGR_ONE, UPDATE, ",\"count\":1", "", Some(InvalidInterval)),
        field("Recurring update interval without period", "PATCH", AGR_ONE, UPDATE, ",\"period\":{\"unit\":\"MONTH\",\"count\":1}", "", Some(InvalidInterval)),
        field("Recurring update interval of a draft's shape", "PATCH", AGR_ONE, UPDATE, "\"type\":\"RECURRING\",\"period\":{\"unit\":\"MONTH\",\"count\":1}", "\"unit\":\"MONTH\",\"count\":1", Some(InvalidInterval)),
        field("Recurring update without interval", "PATCH", AGR_ONE, UPDATE, ",\"interval\":{\"type\":\"RECURRING\",\"period\":{\"unit\":\"MONTH\",\"count\":1}}", "", None),
        field("Recurring update interval null", "PATCH", AGR_ONE, UPDATE, "{\"type\":\"RECURRING\",\"period\":{\"unit\":\"MONTH\",\"count\":1}}", "null", None),
        // A charge orderId (CreateChargeV3): `pattern: "^[a-zA-Z\\d-]+"`, not
        // anchored at its end; Preflight checks no charge orderId.
        field("Recurring charge orderId, first character in the pattern", "POST", AGR_CHARGE, CHARGE, "\"retryDays\"", "\"orderId\":\"a b#c\",\"retryDays\"", None),
        // Idempotency-Key: "Key size can be between 1 to 40 characters. Key must
        // not contain '#', '?', '/' or '\\'"; the spaces around a header value
        // are not part of it (RFC 9112 §5), so spaces only are an empty key.
        header("Recurring Idempotency-Key of spaces", "POST", AGR_CHARGE, CHARGE, &["Idempotency-Key"], &[("Idempotency-Key", "   ")], Some(MissingIdempotencyKey)),
        header("Recurring Idempotency-Key with inner spaces", "POST", AGR_CHARGE, CHARGE, &["Idempotency-Key"], &[("Idempotency-Key", "a key with spaces")], None),
        header("Recurring Idempotency-Key of 40", "POST", AGR_CHARGE, CHARGE, &["Idempotency-Key"], &[("Idempotency-Key", "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk")], None),
        header("Recurring Idempotency-Key of 41", "POST", AGR_CHARGE, CHARGE, &["Idempotency-Key"], &[("Idempotency-Key", "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk")], Some(MissingIdempotencyKey)),
        header("Recurring Idempotency-Key with #", "POST", AGR_CHARGE, CHARGE, &["Idempotency-Key"], &[("Idempotency-Key", "key#1")], Some(MissingIdempotencyKey)),
        header("Recurring update Idempotency-Key with /", "PATCH", AGR_ONE, UPDATE, &["Idempotency-Key"], &[("Idempotency-Key", "key/1")], Some(MissingIdempotencyKey)),
        field("Recurring URL 1024", "POST", AGR, AGREEMENT, "https://example.com/agreement", &url(1024), None),
        field("Recurring URL 1025", "POST", AGR, AGREEMENT, "https://example.com/agreement", &url(1025), Some(InvalidUrl)),
        field("Recurring phone 15", "POST", AGR, AGREEMENT, "4791234567", "479123456789012", None),
        field("Recurring phone 8", "POST", AGR, AGREEMENT, "4791234567", "91234567", None),
        field("Recurring phone 16", "POST", AGR, AGREEMENT, "4791234567", "4791234567890123", Some(InvalidPhoneNumber)),
        // eCom.
        header("eCom capture without X-Request-Id", "POST", ECOM_CAPTURE, ECOM_ADJUST, &["X-Request-Id"], &[], Some(MissingRequestId)),
        header("eCom capture", "POST", ECOM_CAPTURE, ECOM_ADJUST, &[], &[], None),
        // eCom Transaction.amount: at least 100 on a capture too; 0 is the whole amount.
        field("eCom capture amount 100", "POST", ECOM_CAPTURE, ECOM_ADJUST, "\"amount\":20000", "\"amount\":100", None),
        field("eCom capture amount 99", "POST", ECOM_CAPTURE, ECOM_ADJUST, "\"amount\":20000", "\"amount\":99", Some(AmountTooSmall)),
        field("eCom capture amount 0", "POST", ECOM_CAPTURE, ECOM_ADJUST, "\"amount\":20000", "\"amount\":0", None),
        field("eCom amount 100", "POST", ECOM, INITIATE, "\"amount\":20000", "\"amount\":100", None),
        field("eCom amount large (no maximum)", "POST", ECOM, INITIATE, "\"amount\":20000", "\"amount\":99999999999", None),
        field("eCom amount 99", "POST", ECOM, INITIATE, "\"amount\":20000", "\"amount\":99", Some(InvalidAmount)),
        field("eCom mobile 8 digits", "POST", ECOM, INITIATE, "91234567", "48059528", None),
        // The spec: "Vipps attempts to correct incorrectly formatted phone numbers
        // instead of responding with HTTP 400": a `47` or `+47` is taken off.
        field("eCom mobile with 47 (corrected by the API)", "POST", ECOM, INITIATE, "91234567", "4791234567", None),
        field("eCom mobile with +47 (corrected by the API)", "POST", ECOM, INITIATE, "91234567", "+4791234567", None),
        field("eCom mobile with 0047 (Invalid MSISDN)", "POST", ECOM, INITIATE, "91234567", "004791234567", Some(InvalidPhoneNumber)),
        field("eCom mobile 7", "POST", ECOM, INITIATE, "91234567", "9123456", Some(InvalidPhoneNumber)),
        field("eCom callbackPrefix 255", "POST", ECOM, INITIATE, "https://example.com/callback", &url(255), None),
        field("eCom callbackPrefix 256", "POST", ECOM, INITIATE, "https://example.com/callback", &url(256), Some(InvalidUrl)),
        field("eCom transactionText 100", "POST", ECOM, INITIATE, "One pair of socks", &long(100), None),
        field("eCom transactionText 101", "POST", ECOM, INITIATE, "One pair of socks", &long(101), Some(InvalidDescription)),
        field("eCom cancel without transactionText", "PUT", ECOM_CANCEL, ECOM_ADJUST, ",\"transactionText\":\"Capture\"", "", Some(InvalidDescription)),
        msn(field("eCom body MSN 5", "POST", ECOM, INITIATE, "\"123456\"", "\"12345\"", None), "12345"),
        msn(field("eCom body MSN 7", "POST", ECOM, INITIATE, "\"123456\"", "\"1234567\"", Some(InvalidBodyMsn)), "1234567"),
        msn(field("eCom body MSN 4", "POST", ECOM, INITIATE, "\"123456\"", "\"1234\"", Some(InvalidBodyMsn)), "1234"),
        field("eCom orderId 50", "POST", ECOM, INITIATE, "acme-shop-123-order123abc", &long(50), None),
        field("eCom orderId 51", "POST", ECOM, INITIATE, "acme-shop-123-order123abc", &long(51), Some(InvalidReference)),
        // Checkout.
        header("Checkout session", "POST", SESS, SESSION, &[], &[], None),
        header("Checkout without client_secret", "POST", SESS, SESSION, &["client_secret"], &[], Some(MissingClientCredentials)),
        header("Checkout without MSN", "POST", SESS, SESSION, &["Merchant-Serial-Number"], &[], Some(MissingMsnHeader)),
        field("Checkout reference 7", "POST", SESS, SESSION, "acme-shop-123", "abcdefg", Some(InvalidReference)),
        field("Checkout reference 50", "POST", SESS, SESSION, "acme-shop-123", &long(50), None),
        field("Checkout reference 51", "POST", SESS, SESSION, "acme-shop-123", &long(51), Some(InvalidReference)),
        field("Checkout terms URL", "POST", SESS, SESSION, "\"callbackAuthorizationToken\"", "\"termsAndConditionsUrl\":\"https://example.com/terms\",\"callbackAuthorizationToken\"", None),
        field("Checkout terms URL without a scheme", "POST", SESS, SESSION, "\"callbackAuthorizationToken\"", "\"termsAndConditionsUrl\":\"example.com/terms\",\"callbackAuthorizationToken\"", Some(InvalidUrl)),
        field("Checkout description 2", "POST", SESS, SESSION, "One pair of socks", "ab", Some(InvalidDescription)),
        field("Checkout description 101", "POST", SESS, SESSION, "One pair of socks", &long(101), Some(InvalidDescription)),
        field("Checkout amount 0", "POST", SESS, SESSION, "\"value\":1000", "\"value\":0", None),
        // Webhooks.
        header("Webhook register", "POST", HOOKS, WEBHOOK, &[], &[], None),
        header("Webhook without subscription key", "GET", HOOKS, "", &["Ocp-Apim-Subscription-Key"], &[], Some(MissingSubscriptionKey)),
        field("Webhook url not a URI", "POST", HOOKS, WEBHOOK, "https://example.com/webhooks", "example.com/webhooks", Some(InvalidUrl)),
    ]
}

#[test]
fn boundaries_on_both_sides_of_each_constraint() {
    let layer = strict();
    let (mut valid, mut invalid, mut valid_refused, mut invalid_refused) = (0, 0, 0, 0);
    let mut wrong = Vec::new();
    for case in cases() {
        let mut b = request(case.method, case.path);
        let headers = b.headers_mut().unwrap();
        for name in case.remove {
            headers.remove(*name);
        }
        for (name, value) in case.add {
            headers.append(*name, value.parse().unwrap());
        }
        let got = check(&layer, b, &case.body).err();
        match case.expect {
            None => {
                valid += 1;
                if got.is_some() {
                    valid_refused += 1;
                    wrong.push(format!("{}: refused with {got:?}", case.what));
                }
            }
            Some(cause) => {
                invalid += 1;
                if got.is_some() {
                    invalid_refused += 1;
                }
                if got != Some(cause) {
                    wrong.push(format!("{}: expected {cause}, got {got:?}", case.what));
                }
            }
        }
    }
    println!(
        "boundaries: {valid} spec-valid ({valid_refused} refused), {invalid} spec-invalid ({invalid_refused} refused, {:.1} %)",
        100.0 * f64::from(invalid_refused) / f64::from(invalid)
    );
    assert_eq!(valid_refused, 0, "{}", wrong.join("\n"));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn lower_case_bearer_only_warns_on_recurring() {
    // Default policy: Recurring sends it (a warning), ePayment refuses it.
    let layer = PreflightLayer::new();
    let recurring = request("GET", "/recurring/v3/agreements/agr_5kSeqz")
        .header("Authorization", format!("bearer {TOKEN}"));
    let mut req = recurring.body(String::new()).unwrap();
    req.headers_mut()
        .insert("authorization", format!("bearer {TOKEN}").parse().unwrap());
    assert!(layer.check(&req).is_ok());
    let mut req = request("GET", EP_GET).body(String::new()).unwrap();
    req.headers_mut()
        .insert("authorization", format!("bearer {TOKEN}").parse().unwrap());
    assert_eq!(
        layer.check(&req).unwrap_err().cause(),
        Cause::BearerWrongCase
    );
    // The scheme's case is the only thing let through: the token behind
    // `bearer` still gets the token rules (an expired one is refused).
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let expired = format!(
        "{}.{}.{}",
        b64(r#"{"alg":"RS256","typ":"JWT"}"#),
        b64(r#"{"exp":1600000000}"#),
        b64("signature")
    );
    let mut req = request("GET", "/recurring/v3/agreements/agr_5kSeqz")
        .body(String::new())
        .unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("bearer {expired}").parse().unwrap(),
    );
    assert_eq!(
        layer.check(&req).unwrap_err().cause(),
        Cause::AccessTokenExpired
    );
}

// ---------------------------------------------------------------------------
// 3. Documented error bodies.

fn problem(title: &str, code: u32) -> String {
    json!({"type": "https://httpstatuses.io/400", "title": title, "status": 400,
           "detail": title, "instance": "/v1/payments",
           "extraDetails": [{"name": "ErrorCode", "reason": code.to_string()}]})
    .to_string()
}

fn ecom(group: &str, code: &str, message: &str) -> String {
    json!([{"errorGroup": group, "errorCode": code, "errorMessage": message, "contextId": "a1b2"}])
        .to_string()
}

fn recurring(id: &str, title: &str) -> String {
    json!({"type": format!("https://developer.vippsmobilepay.com/docs/APIs/recurring-api/recurring-api-problems#{id}"),
           "title": title, "status": 400, "detail": title, "instance": "/recurring/v3/agreements",
           "contextId": "c0ffee"})
    .to_string()
}

/// (API, status, body, the cause the docs name).
#[rustfmt::skip]
fn documented() -> Vec<(Api, u16, String, Cause)> {
    use Cause::*;
    let mut out = vec![
        // ePayment error table (https://developer.vippsmobilepay.com/docs/APIs/epayment-api/errors/).
        (Api::EPayment, 400, problem("Internal Error", 3010), InvalidField),
        (Api::EPayment, 409, problem("Capture idempotency conflict", 4010), IdempotencyConflict),
        (Api::EPayment, 400, problem("Invalid amount", 4040), InvalidAmount),
        (Api::EPayment, 400, problem("Invalid phone number", 4070), InvalidPhoneNumber),
        (Api::EPayment, 400, problem("Invalid URL", 4090), InvalidUrl),
        (Api::EPayment, 400, problem("Illegal scope", 5030), NotAllowedForMerchant),
        (Api::EPayment, 400, problem("Invalid currency for merchant", 5040), InvalidCurrency),
        (Api::EPayment, 404, problem("Reference not found", 5090), ReferenceNotFound),
        (Api::EPayment, 400, problem("Amount too small", 6010), AmountTooSmall),
        (Api::EPayment, 400, problem("Cannot cancel a captured payment", 6040), InvalidPaymentState),
        (Api::EPayment, 400, problem("Cannot capture before reservation", 6080), CaptureBeforeReservation),
        (Api::EPayment, 400, problem("Capture amount too high", 6090), CaptureExceedsReserved),
        (Api::EPayment, 400, problem("Not enough refundable", 6150), RefundExceedsCaptured),
        (Api::EPayment, 400, problem("Order processing", 6160), ConcurrentOperation),
        (Api::EPayment, 400, problem("Customer not found", 7010), UserUnknown),
        (Api::EPayment, 400, problem("Approve failed", 10010), TestUserNotReady),
        (Api::EPayment, 400, problem("No cards", 10050), TestUserNotReady),
        (Api::EPayment, 400, problem("Operation not supported", 10060), TestUserNotReady),
        // The same titles without their code.
        (Api::EPayment, 400, json!({"title": "No cards", "status": 400}).to_string(), TestUserNotReady),
        (Api::EPayment, 400, json!({"title": "Operation not supported", "status": 400}).to_string(), TestUserNotReady),
        (Api::EPayment, 400, json!({"title": "Illegal scope", "status": 400}).to_string(), NotAllowedForMerchant),
        (Api::EPayment, 400, json!({"title": "Approve failed", "status": 400}).to_string(), TestUserNotReady),
        // eCom error codes, by group.
        (Api::ECom, 400, ecom("Merchant", "21", "Reference orderId is not valid"), InvalidReference),
        (Api::ECom, 400, ecom("Merchant", "22", "Reference orderId is not in valid state"), InvalidPaymentState),
        (Api::ECom, 400, ecom("Merchant", "34", "Unique constraint violation of the orderId"), IdempotencyConflict),
        (Api::ECom, 400, ecom("Merchant", "35", "Registered order not found"), ReferenceNotFound),
        (Api::ECom, 400, ecom("Merchant", "37", "Merchant not available, deactivated or blocked"), NotAllowedForMerchant),
        (Api::ECom, 400, ecom("Merchant", "51", "Merchant is not allowed to perform this operation"), NotAllowedForMerchant),
        (Api::ECom, 402, ecom("Payment", "41", "The user does not have a valid card"), PaymentDeclined),
        (Api::ECom, 402, ecom("Payment", "45", "Reservation failed"), PaymentDeclined),
        (Api::ECom, 400, ecom("Payment", "51", "Cannot cancel an already captured order"), InvalidPaymentState),
        (Api::ECom, 400, ecom("Payment", "61", "Captured amount exceeds the reserved amount"), CaptureExceedsReserved),
        (Api::ECom, 400, ecom("Payment", "62", "The amount you tried to capture is not reserved"), CaptureBeforeReservation),
        (Api::ECom, 400, ecom("Payment", "63", "Capture failed for some unknown reason, please use /details endpoint to know the exact status"), CaptureFailed),
        (Api::ECom, 400, ecom("Payment", "71", "Cannot refund more than captured amount"), RefundExceedsCaptured),
        (Api::ECom, 400, ecom("Payment", "72", "Cannot refund a reserved order (only cancel)"), InvalidPaymentState),
        (Api::ECom, 400, ecom("Payment", "74", "Refund failed during debit from merchant account"), RefundFailed),
        (Api::ECom, 400, ecom("Payment", "92", "Transaction already processed"), InvalidPaymentState),
        (Api::ECom, 409, ecom("Payment", "93", "Captured amount is not the same as the request"), IdempotencyConflict),
        (Api::ECom, 400, ecom("Payment", "95", "Payment can only be refunded up to 365 days after reservation"), InvalidPaymentState),
        (Api::ECom, 400, ecom("Payment", "91", "Transaction is not allowed"), NotAllowedForMerchant),
        (Api::ECom, 400, ecom("VippsError", "98", "Too many concurrent requests"), ConcurrentOperation),
        (Api::ECom, 400, ecom("VippsError", "99", "Internal error"), ServerError),
        (Api::ECom, 400, ecom("User", "81", "User unknown"), UserUnknown),
        (Api::ECom, 400, ecom("User", "82", "User app version not supported"), UserUnknown),
        (Api::ECom, 400, ecom("User", "1082", "User is not eligible for this payment"), UserUnknown),
        (Api::ECom, 400, ecom("InvalidRequest", "transaction.amount", "Invalid amount"), InvalidAmount),
        (Api::ECom, 400, ecom("InvalidRequest", "customerInfo.mobileNumber", "Invalid MSISDN"), InvalidPhoneNumber),
        // Recurring problem types.
        (Api::Recurring, 400, recurring("invalid-json", "Invalid JSON"), InvalidJsonBody),
        (Api::Recurring, 401, recurring("not-authorized", "Not authorized"), InvalidAccessToken),
        (Api::Recurring, 400, recurring("idempotency-key-header", "Missing Idempotency-Key"), MissingIdempotencyKey),
        (Api::Recurring, 400, recurring("charge-amount-too-high", "Amount too high"), ChargeAmountTooHigh),
        (Api::Recurring, 400, recurring("illegal-agreement-update", "Agreement cannot be updated"), AgreementNotActive),
        (Api::Recurring, 400, recurring("invalid-suggested-max-amount", "Invalid suggested max amount"), InvalidAmount),
        (Api::Recurring, 400, recurring("charge-capture-failed", "Could not capture the charge"), CaptureFailed),
        (Api::Recurring, 403, recurring("invalid-sale-unit", "Sales unit not allowed"), NotAllowedForMerchant),
        (Api::Recurring, 404, recurring("resource-not-found", "Not found"), ReferenceNotFound),
        (Api::Recurring, 400, recurring("unsupported-feature", "Feature not supported"), NotAllowedForMerchant),
        (Api::Recurring, 400, json!({"type": "https://developer.vippsmobilepay.com/docs/APIs/recurring-api/recurring-api-problems#validation-error", "title": "Bad Request", "status": 400, "detail": "Input validation failed", "extraDetails": [{"field": "pricing.amount", "text": "must be greater than or equal to 100"}]}).to_string(), InvalidAmount),
        (Api::Recurring, 400, json!({"title": "Bad Request", "status": 400, "detail": "Agreement is not active"}).to_string(), AgreementNotActive),
        (Api::Recurring, 409, recurring("idempotency-conflict", "Conflict"), IdempotencyConflict),
        (Api::Recurring, 400, recurring("charge-creation-failed", "Could not create the charge"), InvalidPaymentState),
        (Api::Recurring, 400, json!({"type": "https://developer.vippsmobilepay.com/docs/APIs/recurring-api/recurring-api-problems#charge-creation-failed", "title": "Bad Request", "status": 400, "detail": "Cannot create a charge for an agreement which is not active."}).to_string(), AgreementNotActive),
        // Checkout (checkout.yaml CheckoutProblemDetails and statuses).
        (Api::Checkout, 401, String::new(), InvalidClientCredentials),
        (Api::Checkout, 409, json!({"type": "https://example.com", "title": "Conflict", "status": 409, "errorCode": "Session-00100", "errors": {}}).to_string(), IdempotencyConflict),
        (Api::Checkout, 400, json!({"title": "Bad Request", "status": 400, "errorCode": "Validation", "errors": {"Transaction.Amount.Value": ["The field Value must be between 0 and 2147483647."]}}).to_string(), InvalidAmount),
    ];
    // The gateway answers of every API.
    for api in [Api::EPayment, Api::Recurring, Api::ECom, Api::Checkout] {
        out.push((
            api,
            401,
            r#"{"statusCode":401,"message":"Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."}"#.to_owned(),
            InvalidSubscriptionKey,
        ));
    }
    out
}

#[test]
fn every_documented_error_is_classified() {
    let table = documented();
    let mut wrong = Vec::new();
    let mut unknown = 0;
    for (api, status, body, expected) in &table {
        let context = RequestContext {
            api: *api,
            ..Default::default()
        };
        let got = classify(
            &context,
            StatusCode::from_u16(*status).unwrap(),
            &http::HeaderMap::new(),
            body.as_bytes(),
        )
        .cause();
        if got == Cause::Unknown {
            unknown += 1;
        }
        if got != *expected {
            wrong.push(format!(
                "{api} {status} {body}: expected {expected}, got {got}"
            ));
        }
    }
    let right = table.len() - wrong.len();
    println!(
        "documented errors: {right} of {} right ({:.1} %), {unknown} unknown",
        table.len(),
        100.0 * right as f64 / table.len() as f64
    );
    assert_eq!(unknown, 0, "{}", wrong.join("\n"));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
