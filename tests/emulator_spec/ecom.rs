//! eCom v2: the emulator's answers validate against `ecom-v2.yaml`, its errors
//! are eCom's arrays, and each is diagnosed as its cause.

use http::Method;
use serde_json::{Value, json};
use tower_vipps::Environment::Test;
use tower_vipps::emulator;
use tower_vipps::{Api, Cause};

use super::{Client, Schemas, cause, receipt};

const ECOM: &str = "/ecomm/v2/payments";
const ECOM_ONE: &str = "/ecomm/v2/payments/{orderId}";

fn initiate(order_id: &str, mobile: Option<&str>) -> Value {
    let mut body = json!({
        "customerInfo": {},
        "merchantInfo": {
            "callbackPrefix": "https://example.com/vipps",
            "fallBack": "https://example.com/fallback",
            "merchantSerialNumber": emulator::TEST_MSN.to_string(),
        },
        "transaction": {"amount": 20000, "orderId": order_id, "transactionText": "One pair of socks"},
    });
    if let Some(m) = mobile {
        body["customerInfo"]["mobileNumber"] = json!(m);
    }
    body
}

fn action(amount: Option<u64>) -> Value {
    let mut body = json!({
        "merchantInfo": {"merchantSerialNumber": emulator::TEST_MSN.to_string()},
        "transaction": {"transactionText": "Shipped"},
    });
    if let Some(a) = amount {
        body["transaction"]["amount"] = json!(a);
    }
    body
}

#[tokio::test]
async fn ecom_answers_validate_and_errors_are_arrays() {
    let s = Schemas::of("ecom-v2.yaml");
    let c = Client::new().await;
    let error = s.response(ECOM, "post", "default");
    let ready = &emulator::READY_USER[2..];
    let waiting = &emulator::WAITING_USER[2..];
    let mut errors = Vec::new();
    let mut check = |what: &str, status: u16, body: &Value, expected: Cause| {
        s.assert_valid(what, error.clone(), body);
        let first = &body[0];
        assert!(
            first["errorGroup"].is_string()
                && first["errorCode"].is_string()
                && first["contextId"].is_string(),
            "{what}: {body}"
        );
        errors.push((what.to_owned(), cause(Api::ECom, status, body), expected));
    };

    // Reserved at once (the ready user): details, partial capture, replay.
    let (status, answer) = c
        .send(
            Method::POST,
            ECOM,
            Some(&initiate("acme-ecom-1", Some(ready))),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    s.assert_valid("initiate", s.response(ECOM, "post", "200"), &answer);
    assert_eq!(answer["orderId"], "acme-ecom-1");
    let one = format!("{ECOM}/acme-ecom-1");
    let (status, got) = c
        .send(Method::GET, &format!("{one}/details"), None, &[])
        .await;
    assert_eq!(status, 200, "{got}");
    s.assert_valid(
        "details",
        s.response(&format!("{ECOM_ONE}/details"), "get", "200"),
        &got,
    );
    assert_eq!(got["transactionLogHistory"][0]["operation"], "RESERVE");
    // Order Management knows the payment as an ECOM order.
    let (status, answer) = c
        .send(
            Method::POST,
            "/order-management/v2/ECOM/receipts/acme-ecom-1",
            Some(&receipt()),
            &[],
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let capture = format!("{one}/capture");
    let rid = [("X-Request-Id", "capture-1")];
    let (status, first) = c
        .send(Method::POST, &capture, Some(&action(Some(5000))), &rid)
        .await;
    assert_eq!(status, 200, "{first}");
    s.assert_valid(
        "capture",
        s.response(&format!("{ECOM_ONE}/capture"), "post", "200"),
        &first,
    );
    assert_eq!(
        first["transactionSummary"]["remainingAmountToCapture"],
        15000
    );
    let (status, again) = c
        .send(Method::POST, &capture, Some(&action(Some(5000))), &rid)
        .await;
    assert_eq!((status, &again), (200, &first));
    let (status, answer) = c
        .send(Method::POST, &capture, Some(&action(Some(6000))), &rid)
        .await;
    assert_eq!(status, 409, "{answer}");
    check(
        "X-Request-Id reused",
        status,
        &answer,
        Cause::IdempotencyConflict,
    );
    let (status, answer) = c
        .send(Method::POST, &capture, Some(&action(Some(1000))), &[])
        .await;
    assert_eq!(status, 400, "{answer}");
    check(
        "partial capture without X-Request-Id",
        status,
        &answer,
        Cause::InvalidField,
    );
    let (status, answer) = c
        .send(
            Method::POST,
            &capture,
            Some(&action(Some(15001))),
            &[("X-Request-Id", "capture-2")],
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    check(
        "capture above reserved",
        status,
        &answer,
        Cause::CaptureExceedsReserved,
    );

    // Refunds.
    let refund = format!("{one}/refund");
    let (status, answer) = c
        .send(
            Method::POST,
            &refund,
            Some(&action(Some(5001))),
            &[("X-Request-Id", "refund-1")],
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    check(
        "refund above captured",
        status,
        &answer,
        Cause::RefundExceedsCaptured,
    );
    let (status, answer) = c
        .send(
            Method::POST,
            &refund,
            Some(&action(Some(2000))),
            &[("X-Request-Id", "refund-2")],
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    s.assert_valid(
        "refund",
        s.response(&format!("{ECOM_ONE}/refund"), "post", "200"),
        &answer,
    );
    assert_eq!(
        answer["transactionSummary"]["remainingAmountToRefund"],
        3000
    );
    let (status, answer) = c
        .send(
            Method::PUT,
            &format!("{one}/cancel"),
            Some(&action(None)),
            &[],
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    check(
        "cancel after capture",
        status,
        &answer,
        Cause::InvalidPaymentState,
    );

    // Waiting for the user: capture before approval, then the test approve.
    let (status, _) = c
        .send(
            Method::POST,
            ECOM,
            Some(&initiate("acme-ecom-2", Some(waiting))),
            &[],
        )
        .await;
    assert_eq!(status, 200);
    let two = format!("{ECOM}/acme-ecom-2");
    let (status, answer) = c
        .send(
            Method::POST,
            &format!("{two}/capture"),
            Some(&action(None)),
            &[],
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    check(
        "capture before reservation",
        status,
        &answer,
        Cause::CaptureBeforeReservation,
    );
    let (status, answer) = c
        .send(
            Method::POST,
            &format!("{two}/refund"),
            Some(&action(None)),
            &[],
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    check(
        "refund before capture",
        status,
        &answer,
        Cause::InvalidPaymentState,
    );
    let (status, _) = c
        .send(
            Method::POST,
            "/ecomm/v2/integration-test/payments/acme-ecom-2/approve",
            Some(&json!({"customerPhoneNumber": waiting})),
            &[],
        )
        .await;
    assert_eq!(status, 200);
    let (status, answer) = c
        .send(
            Method::POST,
            &format!("{two}/capture"),
            Some(&action(None)),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["transactionInfo"]["amount"], 20000);

    // Cancel before the user answers; the Emulator's approve on a cancelled one.
    let (status, _) = c
        .send(
            Method::POST,
            ECOM,
            Some(&initiate("acme-ecom-3", None)),
            &[],
        )
        .await;
    assert_eq!(status, 200);
    let (status, answer) = c
        .send(
            Method::PUT,
            &format!("{ECOM}/acme-ecom-3/cancel"),
            Some(&action(None)),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    s.assert_valid(
        "cancel",
        s.response(&format!("{ECOM_ONE}/cancel"), "put", "200"),
        &answer,
    );
    let msn = tower_vipps::Msn::new(emulator::TEST_MSN).unwrap();
    assert!(!c.emu.approve_ecom(Test, msn, "acme-ecom-3"));

    // Initiations the API refuses.
    let (status, answer) = c
        .send(
            Method::POST,
            ECOM,
            Some(&initiate("acme-ecom-1", Some(ready))),
            &[],
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    check("orderId taken", status, &answer, Cause::IdempotencyConflict);
    let mut other_msn = initiate("acme-ecom-4", Some(ready));
    other_msn["merchantInfo"]["merchantSerialNumber"] = json!("654321");
    let (status, answer) = c.send(Method::POST, ECOM, Some(&other_msn), &[]).await;
    assert_eq!(status, 400, "{answer}");
    check(
        "body MSN another",
        status,
        &answer,
        Cause::NotAllowedForMerchant,
    );
    let (status, answer) = c
        .send(
            Method::POST,
            ECOM,
            Some(&initiate("acme-ecom-5", Some("99999999"))),
            &[],
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    check("user unknown", status, &answer, Cause::UserUnknown);
    let (status, answer) = c
        .send(
            Method::POST,
            ECOM,
            Some(&initiate("acme-ecom-6", Some("004712345678"))),
            &[],
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    // The error corpus' body for this very input: InvalidRequest on the field.
    assert_eq!(
        (
            answer[0]["errorGroup"].as_str(),
            answer[0]["errorCode"].as_str(),
            answer[0]["errorMessage"].as_str()
        ),
        (
            Some("InvalidRequest"),
            Some("mobileNumber"),
            Some("Invalid MSISDN: 004712345678")
        ),
        "{answer}"
    );
    check(
        "mobile number 0047",
        status,
        &answer,
        Cause::InvalidPhoneNumber,
    );
    // `+47` and spaces are corrected: the number is READY_USER's.
    let ready = emulator::READY_USER.strip_prefix("47").unwrap();
    let (status, answer) = c
        .send(
            Method::POST,
            ECOM,
            Some(&initiate(
                "acme-ecom-6b",
                Some(&format!("+47 {} {}", &ready[..3], &ready[3..])),
            )),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    // Not a string at all (the schema's `type: string`): an InvalidRequest on
    // the field too.
    let mut not_a_string = initiate("acme-ecom-6c", None);
    not_a_string["customerInfo"] = json!({"mobileNumber": true});
    let (status, answer) = c.send(Method::POST, ECOM, Some(&not_a_string), &[]).await;
    assert_eq!(status, 400, "{answer}");
    check(
        "mobile number not a string",
        status,
        &answer,
        Cause::InvalidPhoneNumber,
    );
    let mut http_callback = initiate("acme-ecom-7", None);
    http_callback["merchantInfo"]["callbackPrefix"] = json!("http://example.com/vipps");
    let (status, answer) = c.send(Method::POST, ECOM, Some(&http_callback), &[]).await;
    assert_eq!(status, 400, "{answer}");
    check("callbackPrefix http", status, &answer, Cause::InvalidUrl);
    let mut small = initiate("acme-ecom-8", None);
    small["transaction"]["amount"] = json!(99);
    let (status, answer) = c.send(Method::POST, ECOM, Some(&small), &[]).await;
    assert_eq!(status, 400, "{answer}");
    check("amount 99", status, &answer, Cause::InvalidAmount);
    let (status, answer) = c
        .send(
            Method::POST,
            ECOM,
            Some(&initiate("not a valid id!", None)),
            &[],
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    check("orderId invalid", status, &answer, Cause::InvalidReference);
    let (status, answer) = c
        .send(
            Method::GET,
            &format!("{ECOM}/acme-no-such/details"),
            None,
            &[],
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    check("unknown orderId", status, &answer, Cause::ReferenceNotFound);

    let wrong: Vec<_> = errors
        .iter()
        .filter(|(_, got, expected)| got != expected)
        .collect();
    assert!(wrong.is_empty(), "{wrong:?}");
}

/// The limits of `ecom-v2.yaml` the emulator keeps: `MerchantInfo` URLs of at
/// most 255 characters, a `transactionText` of at most 100 on initiates,
/// captures and refunds (cancels share the check), with no minimum on initiates,
/// a `Transaction.amount` of at least 100, and no cancel of a fully
/// captured payment ("you cannot cancel a captured payment").
#[tokio::test]
async fn ecom_limits_on_both_sides() {
    let c = Client::new().await;
    let ready = &emulator::READY_USER[2..];
    let url = |n: usize| format!("https://example.com/{}", "a".repeat(n - 20));
    let mut long_url = initiate("acme-ecom-limits-0", Some(ready));
    long_url["merchantInfo"]["callbackPrefix"] = json!(url(256));
    let (status, answer) = c.send(Method::POST, ECOM, Some(&long_url), &[]).await;
    assert_eq!(status, 400, "{answer}");
    long_url["merchantInfo"]["fallBack"] = json!(url(256));
    long_url["merchantInfo"]["callbackPrefix"] = json!(url(255));
    let (status, answer) = c.send(Method::POST, ECOM, Some(&long_url), &[]).await;
    assert_eq!(status, 400, "{answer}");
    long_url["merchantInfo"]["fallBack"] = json!(url(255));
    let (status, answer) = c.send(Method::POST, ECOM, Some(&long_url), &[]).await;
    assert_eq!(status, 200, "{answer}");
    // The other `MerchantInfo` strings: at most 255 too.
    for field in ["consentRemovalPrefix", "shippingDetailsPrefix", "authToken"] {
        let mut other = initiate(&format!("acme-ecom-limits-{field}"), Some(ready));
        other["merchantInfo"][field] = json!(url(256));
        let (status, answer) = c.send(Method::POST, ECOM, Some(&other), &[]).await;
        assert_eq!(status, 400, "{field} 256: {answer}");
        assert_eq!(answer[0]["errorCode"], field, "{answer}");
        other["merchantInfo"][field] = json!(url(255));
        let (status, answer) = c.send(Method::POST, ECOM, Some(&other), &[]).await;
        assert_eq!(status, 200, "{field} 255: {answer}");
    }
    // An initiate's `transactionText`: at most 100, no minimum.
    for (n, expected) in [(0, 200), (100, 200), (101, 400)] {
        let mut texted = initiate(&format!("acme-ecom-limits-text-{n}"), Some(ready));
        texted["transaction"]["transactionText"] = json!("t".repeat(n));
        let (status, answer) = c.send(Method::POST, ECOM, Some(&texted), &[]).await;
        assert_eq!(status, expected, "initiate text {n}: {answer}");
    }

    let one = format!("{ECOM}/acme-ecom-limits-0");
    let rid = [("X-Request-Id", "limits-1")];
    let capture = format!("{one}/capture");
    let (status, answer) = c
        .send(Method::POST, &capture, Some(&action(Some(99))), &rid)
        .await;
    assert_eq!(status, 400, "amount 99: {answer}");
    let mut text = action(None);
    text["transaction"]["transactionText"] = json!("t".repeat(101));
    let (status, answer) = c.send(Method::POST, &capture, Some(&text), &rid).await;
    assert_eq!(status, 400, "text 101: {answer}");
    text["transaction"]["transactionText"] = json!("t".repeat(100));
    let (status, answer) = c.send(Method::POST, &capture, Some(&text), &rid).await;
    assert_eq!(status, 200, "text 100, the whole amount: {answer}");
    // A refund: the same limits.
    let refund = format!("{one}/refund");
    let rid = [("X-Request-Id", "limits-2")];
    text["transaction"]["transactionText"] = json!("t".repeat(101));
    let (status, answer) = c.send(Method::POST, &refund, Some(&text), &rid).await;
    assert_eq!(status, 400, "refund text 101: {answer}");
    let (status, answer) = c
        .send(Method::POST, &refund, Some(&action(Some(99))), &rid)
        .await;
    assert_eq!(status, 400, "refund amount 99: {answer}");
    let (status, answer) = c
        .send(Method::POST, &refund, Some(&action(Some(100))), &rid)
        .await;
    assert_eq!(status, 200, "refund amount 100: {answer}");

    // Fully captured: nothing left to release, so no cancel.
    let mut cancel = action(None);
    cancel["shouldReleaseRemainingFunds"] = json!(true);
    let (status, answer) = c
        .send(Method::PUT, &format!("{one}/cancel"), Some(&cancel), &[])
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        cause(Api::ECom, status, &answer),
        Cause::InvalidPaymentState
    );
}
