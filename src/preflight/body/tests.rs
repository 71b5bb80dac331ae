use super::super::test_support::*;
use super::super::{PreflightLayer, RuleId};
use super::phone::{ecom_mobile_problem, msisdn_problem};
use super::urls::url_problem;
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
    // eCom: 8 digits, after the API's corrections (never stricter than it).
    for good in [
        "48059528",
        "+4748059528",
        "4748059528",
        "+47 480 59 528",
        "480 59 528",
    ] {
        assert_eq!(ecom_mobile_problem(good), None, "{good}");
    }
    for bad in [
        "004748059528",
        "4805952",
        "4848059528",
        "+4648059528",
        "4805952x",
        "",
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
    // Not a string at all: said so, not hidden behind a placeholder.
    refuses(
        agreement(),
        &with(AGREEMENT, "\"4791234567\"", "true"),
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
    // An ePayment create with a `callbackUrl`, which its schema does not name: the
    // API does not read it, so whatever it holds is not refused.
    let mut body: serde_json::Value = serde_json::from_str(CREATE).unwrap();
    body["callbackUrl"] = "not a url".into();
    assert_passes_body(create(), &body.to_string(), &[]);
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
