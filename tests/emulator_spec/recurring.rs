//! Recurring v3: the emulator's answers validate against `recurring.yaml`, its
//! agreements and charges follow the Recurring guide, and each of its error
//! bodies is diagnosed as its cause.

use http::Method;
use serde_json::{Value, json};
use tower_vipps::Environment::Test;
use tower_vipps::emulator;
use tower_vipps::{Api, Cause};

use super::{Client, Schemas, cause, date_in, receipt};

const AGREEMENTS: &str = "/recurring/v3/agreements";
const AGREEMENT: &str = "/recurring/v3/agreements/{agreementId}";
const CHARGE: &str = "/recurring/v3/agreements/{agreementId}/charges/{chargeId}";

fn draft() -> Value {
    json!({
        "pricing": {"type": "LEGACY", "amount": 2500, "currency": "NOK"},
        "interval": {"unit": "MONTH", "count": 1},
        "merchantRedirectUrl": "https://example.com/redirect",
        "merchantAgreementUrl": "https://example.com/agreement",
        "phoneNumber": "4791234567",
        "productName": "MyNews Digital",
        "initialCharge": {
            "amount": 2500,
            "currency": "NOK",
            "description": "Initial Charge",
            "transactionType": "DIRECT_CAPTURE",
        },
    })
}

fn charge(due: &str) -> Value {
    json!({
        "amount": 2500,
        "transactionType": "DIRECT_CAPTURE",
        "description": "October",
        "due": due,
        "retryDays": 5,
    })
}

#[tokio::test]
async fn recurring_answers_validate_and_follow_the_guide() {
    let s = Schemas::of("recurring.yaml");
    let c = Client::new().await;
    let error = s.response(AGREEMENTS, "post", "default");
    // The checks can fail.
    assert!(
        !s.errors(
            s.response(AGREEMENTS, "post", "201"),
            &json!({"agreementId": 1})
        )
        .is_empty()
    );
    let mut errors = Vec::new();
    let mut check = |what: &str, status: u16, body: &Value, expected: Cause| {
        s.assert_valid(what, error.clone(), body);
        assert!(
            body["type"]
                .as_str()
                .unwrap()
                .starts_with("https://developer.vippsmobilepay.com/docs/APIs/recurring-api/recurring-api-problems#"),
            "{what}: {body}"
        );
        assert!(body["contextId"].is_string(), "{what}: {body}");
        errors.push((
            what.to_owned(),
            cause(Api::Recurring, status, body),
            expected,
        ));
    };

    // A draft with an initial charge: PENDING, the charge's id given.
    let (status, created) = c.send(Method::POST, AGREEMENTS, Some(&draft()), &[]).await;
    assert_eq!(status, 201, "{created}");
    s.assert_valid("draft", s.response(AGREEMENTS, "post", "201"), &created);
    let id = created["agreementId"].as_str().unwrap().to_owned();
    let initial = created["chargeId"].as_str().unwrap().to_owned();
    assert!(
        created["vippsConfirmationUrl"]
            .as_str()
            .unwrap()
            .starts_with("http")
    );
    let one = format!("{AGREEMENTS}/{id}");
    let (status, got) = c.send(Method::GET, &one, None, &[]).await;
    assert_eq!(status, 200, "{got}");
    s.assert_valid("get pending", s.response(AGREEMENT, "get", "200"), &got);
    assert_eq!(
        (got["status"].as_str(), got["start"].is_null()),
        (Some("PENDING"), true)
    );
    assert_eq!(got["uuid"], created["uuid"]);

    // A charge on a PENDING agreement is refused.
    let charges = format!("{one}/charges");
    let (status, answer) = c
        .send(Method::POST, &charges, Some(&charge(&date_in(3))), &[])
        .await;
    assert_eq!(status, 400, "{answer}");
    check(
        "charge on pending",
        status,
        &answer,
        Cause::AgreementNotActive,
    );

    // The test environment's force accept: ACTIVE, the initial charge CHARGED.
    let accept = format!("{one}/accept");
    let phone = json!({"phoneNumber": "4791234567"});
    let (status, answer) = c.send(Method::PATCH, &accept, Some(&phone), &[]).await;
    assert_eq!(status, 204, "{answer}");
    let (_, got) = c.send(Method::GET, &one, None, &[]).await;
    s.assert_valid("get active", s.response(AGREEMENT, "get", "200"), &got);
    assert_eq!(got["status"], "ACTIVE");
    assert!(got["start"].is_string());
    let (status, got) = c
        .send(Method::GET, &format!("{charges}/{initial}"), None, &[])
        .await;
    assert_eq!(status, 200, "{got}");
    s.assert_valid("initial charge", s.response(CHARGE, "get", "200"), &got);
    assert_eq!(
        (got["status"].as_str(), got["type"].as_str()),
        (Some("CHARGED"), Some("INITIAL"))
    );
    // Accepting again is an illegal update.
    let (status, answer) = c.send(Method::PATCH, &accept, Some(&phone), &[]).await;
    assert_eq!(status, 400, "{answer}");
    check("accept twice", status, &answer, Cause::AgreementNotActive);

    // A charge, its idempotent replay, and the same key with another body.
    let key = [("Idempotency-Key", "charge-october-1")];
    let body = charge(&date_in(3));
    let (status, first) = c.send(Method::POST, &charges, Some(&body), &key).await;
    assert_eq!(status, 201, "{first}");
    s.assert_valid(
        "charge",
        s.response(&format!("{AGREEMENT}/charges"), "post", "201"),
        &first,
    );
    let (status, again) = c.send(Method::POST, &charges, Some(&body), &key).await;
    assert_eq!((status, &again), (201, &first));
    let (status, answer) = c
        .send(Method::POST, &charges, Some(&charge(&date_in(4))), &key)
        .await;
    assert_eq!(status, 409, "{answer}");
    check(
        "idempotency conflict",
        status,
        &answer,
        Cause::IdempotencyConflict,
    );
    let charge_id = first["chargeId"].as_str().unwrap();
    let (status, got) = c
        .send(Method::GET, &format!("{charges}/{charge_id}"), None, &[])
        .await;
    assert_eq!(status, 200, "{got}");
    s.assert_valid("charge", s.response(CHARGE, "get", "200"), &got);
    assert_eq!(
        (got["status"].as_str(), got["retryDays"].as_u64()),
        (Some("PENDING"), Some(5))
    );
    assert_eq!(got["history"][0]["idempotencyKey"], "charge-october-1");
    // Order Management knows the charge as a RECURRING order; not the agreement.
    let (status, answer) = c
        .send(
            Method::POST,
            &format!("/order-management/v2/RECURRING/receipts/{charge_id}"),
            Some(&receipt()),
            &[],
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let (status, answer) = c
        .send(
            Method::POST,
            &format!("/order-management/v2/RECURRING/receipts/{id}"),
            Some(&receipt()),
            &[],
        )
        .await;
    assert_eq!(status, 404, "{answer}");
    // An orderId is the chargeId.
    let mut with_order = charge(&date_in(5));
    with_order["orderId"] = json!("acme-chg-01");
    let (status, answer) = c.send(Method::POST, &charges, Some(&with_order), &[]).await;
    assert_eq!(
        (status, answer["chargeId"].as_str()),
        (201, Some("acme-chg-01"))
    );
    // The same orderId again, as a charge or as another agreement's initial
    // charge: the sales unit has used it.
    let (status, answer) = c.send(Method::POST, &charges, Some(&with_order), &[]).await;
    assert_eq!(status, 409, "{answer}");
    check(
        "charge orderId again",
        status,
        &answer,
        Cause::IdempotencyConflict,
    );
    let mut reused = draft();
    reused["initialCharge"]["orderId"] = json!("acme-chg-01");
    let (status, answer) = c.send(Method::POST, AGREEMENTS, Some(&reused), &[]).await;
    assert_eq!(status, 409, "{answer}");
    check(
        "initial charge orderId again",
        status,
        &answer,
        Cause::IdempotencyConflict,
    );
    reused["initialCharge"]["orderId"] = json!("acme-chg-02");
    let (status, answer) = c.send(Method::POST, AGREEMENTS, Some(&reused), &[]).await;
    assert_eq!(
        (status, answer["chargeId"].as_str()),
        (201, Some("acme-chg-02"))
    );
    // An empty initial charge orderId: the spec sets no length, so the charge
    // gets a generated id, as with none.
    reused["initialCharge"]["orderId"] = json!("");
    let (status, answer) = c.send(Method::POST, AGREEMENTS, Some(&reused), &[]).await;
    assert_eq!(status, 201, "{answer}");
    assert!(
        answer["chargeId"].as_str().is_some_and(|id| !id.is_empty()),
        "{answer}"
    );

    // The due date: not today, not beyond two years; tomorrow is enough (the
    // 1-day lead time of today's docs; the spec's two days are production's).
    let (status, answer) = c
        .send(Method::POST, &charges, Some(&charge(&date_in(1))), &[])
        .await;
    assert_eq!(status, 201, "{answer}");
    let (status, answer) = c
        .send(Method::POST, &charges, Some(&charge(&date_in(0))), &[])
        .await;
    assert_eq!(status, 400, "{answer}");
    check("due today", status, &answer, Cause::InvalidField);
    let (status, answer) = c
        .send(Method::POST, &charges, Some(&charge(&date_in(800))), &[])
        .await;
    assert_eq!(status, 400, "{answer}");
    check("due in 800 days", status, &answer, Cause::InvalidField);
    let (status, answer) = c
        .send(Method::POST, &charges, Some(&charge("31.12.2030")), &[])
        .await;
    assert_eq!(status, 400, "{answer}");
    check("due not a date", status, &answer, Cause::InvalidField);
    let mut low = charge(&date_in(3));
    low["amount"] = json!(99);
    let (status, answer) = c.send(Method::POST, &charges, Some(&low), &[]).await;
    assert_eq!(status, 400, "{answer}");
    check("charge amount 99", status, &answer, Cause::InvalidAmount);

    // No Idempotency-Key; a key too long.
    let (status, answer) = c
        .send(
            Method::POST,
            &charges,
            Some(&body),
            &[("Idempotency-Key", "")],
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    check(
        "no Idempotency-Key",
        status,
        &answer,
        Cause::MissingIdempotencyKey,
    );
    let long = "k".repeat(41);
    let (status, answer) = c
        .send(
            Method::POST,
            &charges,
            Some(&body),
            &[("Idempotency-Key", &long)],
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    check(
        "Idempotency-Key of 41",
        status,
        &answer,
        Cause::MissingIdempotencyKey,
    );

    // Drafts the spec refuses.
    let mut cheap = draft();
    cheap["pricing"]["amount"] = json!(50);
    let (status, answer) = c.send(Method::POST, AGREEMENTS, Some(&cheap), &[]).await;
    assert_eq!(status, 400, "{answer}");
    check("price 50", status, &answer, Cause::InvalidAmount);
    let mut http_url = draft();
    http_url["merchantAgreementUrl"] = json!("http://example.com/agreement");
    let (status, answer) = c.send(Method::POST, AGREEMENTS, Some(&http_url), &[]).await;
    assert_eq!(status, 400, "{answer}");
    check("agreement URL http", status, &answer, Cause::InvalidUrl);
    let mut long_name = draft();
    long_name["productName"] = json!("n".repeat(46));
    let (status, answer) = c
        .send(Method::POST, AGREEMENTS, Some(&long_name), &[])
        .await;
    assert_eq!(status, 400, "{answer}");
    check("product name of 46", status, &answer, Cause::InvalidField);
    let (status, answer) = c
        .send(Method::POST, AGREEMENTS, Some(&json!("not an object")), &[])
        .await;
    assert_eq!(status, 400, "{answer}");
    check("body a string", status, &answer, Cause::InvalidField);
    // An app's deeplink as the redirect is allowed.
    let mut app = draft();
    app["merchantRedirectUrl"] = json!("myapp://home");
    let (status, answer) = c.send(Method::POST, AGREEMENTS, Some(&app), &[]).await;
    assert_eq!(status, 201, "{answer}");

    // Unknown agreement and charge.
    let (status, answer) = c
        .send(Method::GET, &format!("{AGREEMENTS}/agr_unknown"), None, &[])
        .await;
    assert_eq!(status, 404, "{answer}");
    check(
        "unknown agreement",
        status,
        &answer,
        Cause::ReferenceNotFound,
    );
    let (status, answer) = c
        .send(Method::GET, &format!("{charges}/chr_unknown"), None, &[])
        .await;
    assert_eq!(status, 404, "{answer}");
    check("unknown charge", status, &answer, Cause::ReferenceNotFound);

    // VARIABLE: the user's maximum bounds each charge.
    let mut variable = draft();
    variable["pricing"] =
        json!({"type": "VARIABLE", "suggestedMaxAmount": 3000, "currency": "NOK"});
    variable.as_object_mut().unwrap().remove("initialCharge");
    let (status, created) = c.send(Method::POST, AGREEMENTS, Some(&variable), &[]).await;
    assert_eq!(status, 201, "{created}");
    assert!(created["chargeId"].is_null());
    let vid = created["agreementId"].as_str().unwrap();
    assert!(c.emu.accept_agreement(
        Test,
        tower_vipps::Msn::new(emulator::TEST_MSN).unwrap(),
        vid
    ));
    let (_, got) = c
        .send(Method::GET, &format!("{AGREEMENTS}/{vid}"), None, &[])
        .await;
    s.assert_valid("get variable", s.response(AGREEMENT, "get", "200"), &got);
    assert_eq!(got["pricing"]["maxAmount"], 3000);
    let mut high = charge(&date_in(3));
    high["amount"] = json!(3001);
    let (status, answer) = c
        .send(
            Method::POST,
            &format!("{AGREEMENTS}/{vid}/charges"),
            Some(&high),
            &[],
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    check(
        "above maxAmount",
        status,
        &answer,
        Cause::ChargeAmountTooHigh,
    );

    // A charge orderId: recurring.yaml CreateChargeV3 `orderId` is `minLength:
    // 1`, `maxLength: 50`, `pattern: "^[a-zA-Z\\d-]+"`, a pattern not anchored
    // at its end: only the first character is held to it.
    for (order_id, ok) in [
        ("a b#c", true),
        (&*"o".repeat(50), true),
        (&*"o".repeat(51), false),
        (" abc", false),
        ("#abc", false),
        ("", false),
    ] {
        let mut body = charge(&date_in(6));
        body["orderId"] = json!(order_id);
        let (status, answer) = c.send(Method::POST, &charges, Some(&body), &[]).await;
        if ok {
            assert_eq!(status, 201, "orderId {order_id:?}: {answer}");
        } else {
            assert_eq!(status, 400, "orderId {order_id:?}: {answer}");
            check("charge orderId", status, &answer, Cause::InvalidField);
        }
    }

    // Idempotency-Key: "Key size can be between 1 to 40 characters. Key must
    // not contain '#', '?', '/' or '\\'" (recurring.yaml). Spaces around a
    // header value are not part of it (RFC 9112 §5), so a key of spaces only
    // is empty; spaces inside one are allowed, and 40 characters are.
    for (key, ok) in [
        ("   ", false),
        ("a key with spaces", true),
        (&*"k".repeat(40), true),
        ("key#1", false),
        ("key/1", false),
    ] {
        let (status, answer) = c
            .send(
                Method::POST,
                &charges,
                Some(&charge(&date_in(7))),
                &[("Idempotency-Key", key)],
            )
            .await;
        if ok {
            assert_eq!(status, 201, "key {key:?}: {answer}");
        } else {
            assert_eq!(status, 400, "key {key:?}: {answer}");
            check(
                "Idempotency-Key",
                status,
                &answer,
                Cause::MissingIdempotencyKey,
            );
        }
    }

    // Update (PATCH, PatchAgreementV3): an `interval` is `{type, period}`,
    // `type` only RECURRING (the default), and then `period`, a TimePeriod
    // (`unit` YEAR/MONTH/WEEK/DAY, `count` 1 to 31, both required), required.
    let (status, answer) = c
        .send(
            Method::PATCH,
            &format!("{AGREEMENTS}/agr_unknown"),
            Some(&json!({"productName": "x"})),
            &[],
        )
        .await;
    assert_eq!(status, 404, "{answer}");
    check("update unknown", status, &answer, Cause::ReferenceNotFound);
    for (interval, ok) in [
        (json!({"period": {"unit": "WEEK", "count": 2}}), true),
        (
            json!({"type": "RECURRING", "period": {"unit": "DAY", "count": 31}}),
            true,
        ),
        (
            json!({"type": "RECURRING", "period": {"unit": "YEAR", "count": 1}}),
            true,
        ),
        (json!({"unit": "MONTH", "count": 1}), false),
        (json!({"type": "RECURRING"}), false),
        (json!({}), false),
        (json!({"period": {"unit": "DAY", "count": 32}}), false),
        (json!({"period": {"unit": "DAY", "count": 0}}), false),
        (json!({"period": {"unit": "FORTNIGHT", "count": 1}}), false),
        (json!({"period": {"count": 1}}), false),
        (json!({"period": {"unit": "DAY"}}), false),
        (json!({"type": "FLEXIBLE"}), false),
        // Optional, and `null` taken as absent, as for every other property.
        (json!(null), true),
    ] {
        let (status, answer) = c
            .send(
                Method::PATCH,
                &one,
                Some(&json!({"interval": interval})),
                &[],
            )
            .await;
        if ok {
            assert_eq!(status, 204, "interval {interval}: {answer}");
        } else {
            assert_eq!(status, 400, "interval {interval}: {answer}");
            check("update interval", status, &answer, Cause::InvalidField);
        }
    }
    let (_, got) = c.send(Method::GET, &one, None, &[]).await;
    s.assert_valid("get updated", s.response(AGREEMENT, "get", "200"), &got);
    assert_eq!(
        (&got["interval"]["unit"], &got["interval"]["count"]),
        (&json!("YEAR"), &json!(1))
    );
    // `externalId`: `^.{1,64}$`, and `.` matches no line break.
    for (external, ok) in [
        ("e".repeat(64), true),
        ("e".repeat(65), false),
        (String::new(), false),
        ("a\nb".to_owned(), false),
        ("a\u{2028}b".to_owned(), false),
        ("a b\t#".to_owned(), true),
    ] {
        let (status, answer) = c
            .send(
                Method::PATCH,
                &one,
                Some(&json!({"externalId": external})),
                &[],
            )
            .await;
        if ok {
            assert_eq!(status, 204, "externalId {external:?}: {answer}");
        } else {
            assert_eq!(status, 400, "externalId {external:?}: {answer}");
            check("update externalId", status, &answer, Cause::InvalidField);
        }
    }
    let update = json!({
        "productName": "A new name",
        "productDescription": "A new description",
        "merchantAgreementUrl": "https://example.com/vipps-subscriptions/1234/",
        "pricing": {"amount": 25000, "suggestedMaxAmount": 300000},
    });
    let (status, answer) = c.send(Method::PATCH, &one, Some(&update), &[]).await;
    assert_eq!(status, 204, "{answer}");
    let (_, got) = c.send(Method::GET, &one, None, &[]).await;
    s.assert_valid("get updated", s.response(AGREEMENT, "get", "200"), &got);
    assert_eq!(
        (&got["productName"], &got["pricing"]["amount"]),
        (&json!("A new name"), &json!(25000))
    );
    let (status, answer) = c
        .send(
            Method::PATCH,
            &one,
            Some(&json!({"productName": "n".repeat(46)})),
            &[],
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    check(
        "update productName 46",
        status,
        &answer,
        Cause::InvalidField,
    );
    let (status, answer) = c
        .send(Method::PATCH, &one, Some(&json!({"status": "ACTIVE"})), &[])
        .await;
    assert_eq!(status, 400, "{answer}");
    check("update status ACTIVE", status, &answer, Cause::InvalidField);
    // Stopping takes no other change; then the agreement is STOPPED for good.
    let (status, answer) = c
        .send(
            Method::PATCH,
            &one,
            Some(&json!({"status": "STOPPED", "productName": "x"})),
            &[],
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    check("stop and rename", status, &answer, Cause::InvalidField);
    let (status, answer) = c
        .send(
            Method::PATCH,
            &one,
            Some(&json!({"status": "STOPPED"})),
            &[],
        )
        .await;
    assert_eq!(status, 204, "{answer}");
    let (_, got) = c.send(Method::GET, &one, None, &[]).await;
    s.assert_valid("get stopped", s.response(AGREEMENT, "get", "200"), &got);
    assert_eq!(got["status"], "STOPPED");
    assert!(got["stop"].is_string(), "{got}");
    let (_, got) = c
        .send(Method::GET, &format!("{charges}/{charge_id}"), None, &[])
        .await;
    assert_eq!(got["status"], "CANCELLED", "{got}");
    let (status, answer) = c
        .send(
            Method::PATCH,
            &one,
            Some(&json!({"productName": "Back again"})),
            &[],
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    check("update stopped", status, &answer, Cause::AgreementNotActive);
    let (status, answer) = c
        .send(Method::POST, &charges, Some(&charge(&date_in(3))), &[])
        .await;
    assert_eq!(status, 400, "{answer}");
    check(
        "charge on stopped",
        status,
        &answer,
        Cause::AgreementNotActive,
    );

    let wrong: Vec<_> = errors
        .iter()
        .filter(|(_, got, expected)| got != expected)
        .collect();
    assert!(wrong.is_empty(), "{wrong:?}");
    assert!(errors.iter().all(|(_, got, _)| *got != Cause::Unknown));
}
