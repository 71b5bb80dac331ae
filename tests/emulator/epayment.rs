//! ePayment: create, idempotency and references, capture, refund and cancel.

use super::*;

#[tokio::test]
async fn create_payment_validates_like_epayment() {
    let h = Harness::new().await;
    let keys = emulator::TEST_MERCHANT;
    let token = h.token(keys).await;
    let base = payment(&new_reference(), 1000, emulator::READY_USER);
    let with = |path: &[&str], value: Value| {
        let mut body = base.clone();
        let mut at = &mut body;
        for p in &path[..path.len() - 1] {
            at = &mut at[*p];
        }
        at[path[path.len() - 1]] = value;
        body
    };
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            with(&["amount", "value"], json!(10.5)),
            400,
            "4040",
            "Invalid amount",
        ),
        (
            // The schema allows 0; the API answers that it is too small.
            with(&["amount", "value"], json!(0)),
            400,
            "6010",
            "Amount too small",
        ),
        (
            with(&["amount", "value"], json!(-100)),
            400,
            "4040",
            "Invalid amount",
        ),
        (
            with(&["amount", "value"], json!("1000")),
            400,
            "4040",
            "Invalid amount",
        ),
        (
            with(&["amount", "value"], json!(99)),
            400,
            "6010",
            "Amount too small",
        ),
        (
            with(&["amount", "currency"], json!("DKK")),
            400,
            "5040",
            "Invalid currency for merchant",
        ),
        (
            with(&["amount", "currency"], json!("EUR")),
            400,
            "5040",
            "Invalid currency for merchant",
        ),
        (
            with(&["customer", "phoneNumber"], json!("+4791000001")),
            400,
            "4070",
            "Invalid phone number",
        ),
        (
            with(&["customer", "phoneNumber"], json!("91000001")),
            400,
            "4070",
            "Invalid phone number",
        ),
        (
            with(&["returnUrl"], json!("htt://example.com")),
            400,
            "4090",
            "Invalid URL",
        ),
        (
            with(&["returnUrl"], json!("http://example.com")),
            400,
            "4090",
            "Invalid URL",
        ),
        (
            with(&["customer", "phoneNumber"], json!(emulator::UNKNOWN_USER)),
            400,
            "7010",
            "Customer not found",
        ),
        (
            with(&["customer", "phoneNumber"], json!(emulator::UNDER_15_USER)),
            400,
            "7010",
            "Customer not found",
        ),
        (
            with(
                &["customer", "phoneNumber"],
                json!(emulator::NOT_LOGGED_IN_USER),
            ),
            400,
            "10020",
            "Not allowed",
        ),
    ];
    for (body, status, code, title) in &cases {
        // One reference for every case: past ePayment's 5 creates a minute per
        // reference, the real API (and the emulator) answers 429.
        h.emu.advance_clock(Duration::from_secs(60));
        h.create(keys, &token, body)
            .await
            .assert_problem(*status, code, title);
    }
    let url = h
        .create(
            keys,
            &token,
            &with(&["returnUrl"], json!("htt://example.com")),
        )
        .await;
    assert_eq!(
        url.json()["detail"],
        "The parameter htt://example.com is invalid."
    );
    assert_eq!(url.json()["instance"], "/v1/payments");
    let not_ready = h
        .create(
            keys,
            &token,
            &with(
                &["customer", "phoneNumber"],
                json!(emulator::NOT_LOGGED_IN_USER),
            ),
        )
        .await;
    let detail = not_ready.json()["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("logged in") && detail.contains("15 years old"),
        "{detail}"
    );

    // The reference: the corpus' invalid-field shape.
    let bad_ref = h
        .create(keys, &token, &with(&["reference"], json!("short")))
        .await;
    bad_ref.assert_problem(400, "", "Bad Request");
    assert_eq!(
        bad_ref.json()["detail"],
        "See extraDetails for further details"
    );
    assert_eq!(
        bad_ref.json()["extraDetails"],
        json!([{"name": "reference", "reason": "The field Reference must match the regular expression '^[a-zA-Z0-9-]{8,64}$'."}])
    );
    // Garbage bodies.
    for garbage in [&b"not json"[..], b"[1,2,3]", b"{\"amount\":", b"\xff\xfe"] {
        let answer = h
            .api(keys, &token, Method::POST, "/epayment/v1/payments")
            .key("garbage-1")
            .raw(Bytes::copy_from_slice(garbage))
            .send()
            .await;
        assert_eq!(answer.status, 400);
        assert_eq!(answer.content_type, "application/problem+json");
    }
    // http://localhost is fine in test.
    let local = h
        .create(
            keys,
            &token,
            &with(&["returnUrl"], json!("http://localhost:8080/back")),
        )
        .await;
    assert_eq!(local.status, 201, "{}", local.body);

    // Nothing invalid was stored.
    assert_eq!(
        h.emu.count(Endpoint::CreatePayment),
        cases.len() + 2 + 1 + 4 + 1
    );
}

#[tokio::test]
async fn idempotency_and_references() {
    let h = Harness::new().await;
    let keys = emulator::TEST_MERCHANT;
    let token = h.token(keys).await;
    let reference = new_reference();
    let send = |key: &str, body: &Value| {
        h.api(keys, &token, Method::POST, "/epayment/v1/payments")
            .key(key)
            .json(body)
            .send()
    };
    let body = payment(&reference, 1000, emulator::READY_USER);
    let first = send("49ca711a-acee-4d01-993b-9487112e1def", &body).await;
    assert_eq!(first.status, 201);
    assert_eq!(first.content_type, "application/json");
    assert_eq!(first.json()["reference"], reference.as_str());
    // The same key and body: the same answer, no second payment.
    let again = send("49ca711a-acee-4d01-993b-9487112e1def", &body).await;
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    // The same key, another body: 409, the corpus body.
    let other = payment(&reference, 2000, emulator::READY_USER);
    let conflict = send("49ca711a-acee-4d01-993b-9487112e1def", &other).await;
    conflict.assert_problem(409, "4020", "Idempotency error");
    assert_eq!(
        conflict.json()["detail"],
        "Idempotency-Key 49ca711a-acee-4d01-993b-9487112e1def already exists."
    );
    // A new key with a taken reference.
    send("another-key", &other)
        .await
        .assert_problem(409, "4150", "Reference already exists");
    // No key at all, or one too long.
    let no_key = h
        .api(keys, &token, Method::POST, "/epayment/v1/payments")
        .json(&payment(&new_reference(), 1000, emulator::READY_USER))
        .send()
        .await;
    no_key.assert_problem(400, "", "Bad Request");
    assert_eq!(no_key.json()["extraDetails"][0]["name"], "Idempotency-Key");
    send(
        &"k".repeat(51),
        &payment(&new_reference(), 1000, emulator::READY_USER),
    )
    .await
    .assert_problem(400, "", "Bad Request");

    // A capture retried with its key captures once.
    let capture = json!({"modificationAmount": {"value": 600, "currency": "NOK"}});
    let path = format!("/epayment/v1/payments/{reference}/capture");
    let cap = |body: &Value| {
        h.api(keys, &token, Method::POST, &path)
            .key("capture-1")
            .json(body)
            .send()
    };
    let one = cap(&capture).await;
    assert_eq!(one.status, 200, "{}", one.body);
    let two = cap(&capture).await;
    assert_eq!(two.body, one.body);
    assert_eq!(
        h.get(keys, &token, &reference).await.json()["aggregate"]["capturedAmount"]["value"],
        600
    );
    let conflict = cap(&json!({"modificationAmount": {"value": 100, "currency": "NOK"}})).await;
    conflict.assert_problem(409, "4020", "Idempotency error");
    assert_eq!(
        conflict.json()["instance"],
        format!("/v1/payments/{reference}/capture")
    );
    // Payments belong to an environment and an MSN.
    let prod = h.token(emulator::PRODUCTION_MERCHANT).await;
    h.get(emulator::PRODUCTION_MERCHANT, &prod, &reference)
        .await
        .assert_problem(404, "5090", "Reference not found");
}

#[tokio::test]
async fn capture_refund_cancel_follow_the_state_rules() {
    let h = Harness::new().await;
    let keys = emulator::TEST_MERCHANT;
    let token = h.token(keys).await;

    // A user who has not accepted yet: nothing to capture or refund.
    let waiting = new_reference();
    assert_eq!(
        h.create(
            keys,
            &token,
            &payment(&waiting, 1000, emulator::WAITING_USER)
        )
        .await
        .status,
        201
    );
    assert_eq!(
        h.get(keys, &token, &waiting).await.json()["state"],
        "CREATED"
    );
    h.modify(keys, &token, &waiting, "capture", 100)
        .await
        .assert_problem(400, "6080", "Cannot capture before reservation");
    h.modify(keys, &token, &waiting, "refund", 100)
        .await
        .assert_problem(400, "6020", "Attempted refund before reservation");
    // The test API approves it.
    let approve = h
        .api(
            keys,
            &token,
            Method::POST,
            &format!("/epayment/v1/test/payments/{waiting}/approve"),
        )
        .send()
        .await;
    assert_eq!(approve.status, 200, "{}", approve.body);
    assert_eq!(
        h.get(keys, &token, &waiting).await.json()["state"],
        "AUTHORIZED"
    );
    h.api(
        keys,
        &token,
        Method::POST,
        &format!("/epayment/v1/test/payments/{waiting}/approve"),
    )
    .send()
    .await
    .assert_problem(400, "10010", "Approve failed");

    // Capture at most authorized minus captured.
    assert_eq!(
        h.modify(keys, &token, &waiting, "capture", 600)
            .await
            .status,
        200
    );
    h.modify(keys, &token, &waiting, "capture", 401)
        .await
        .assert_problem(400, "6090", "Capture amount too high");
    let rest = h.modify(keys, &token, &waiting, "capture", 400).await;
    assert_eq!(rest.status, 200);
    assert_eq!(
        rest.json()["aggregate"]["capturedAmount"],
        json!({"currency": "NOK", "value": 1000})
    );
    h.modify(keys, &token, &waiting, "capture", 1)
        .await
        .assert_problem(400, "6090", "Capture amount too high");
    // Refund at most captured minus refunded.
    assert_eq!(
        h.modify(keys, &token, &waiting, "refund", 700).await.status,
        200
    );
    let too_much = h.modify(keys, &token, &waiting, "refund", 301).await;
    too_much.assert_problem(400, "6150", "Not enough refundable");
    assert_eq!(
        too_much.json()["detail"],
        "Cannot refund more than the available amount. Check the payment event log."
    );
    assert_eq!(
        h.modify(keys, &token, &waiting, "refund", 300).await.status,
        200
    );
    // No cancel after capture.
    let cancel = h
        .api(
            keys,
            &token,
            Method::POST,
            &format!("/epayment/v1/payments/{waiting}/cancel"),
        )
        .key("cancel-1")
        .send()
        .await;
    cancel.assert_problem(400, "6040", "Cannot cancel a captured payment");
    // A currency other than the payment's; a bad amount. (A minute later: four
    // refunds of this reference were made in this one, and the limit is five.)
    h.emu.advance_clock(Duration::from_secs(60));
    h.api(
        keys,
        &token,
        Method::POST,
        &format!("/epayment/v1/payments/{waiting}/refund"),
    )
    .key("refund-dkk")
    .json(&json!({"modificationAmount": {"value": 1, "currency": "DKK"}}))
    .send()
    .await
    .assert_problem(400, "5040", "Invalid currency for merchant");
    h.api(
        keys,
        &token,
        Method::POST,
        &format!("/epayment/v1/payments/{waiting}/refund"),
    )
    .key("refund-bad")
    .json(&json!({"modificationAmount": {"value": 1.5, "currency": "NOK"}}))
    .send()
    .await
    .assert_problem(400, "4040", "Invalid amount");

    let events = h
        .api(
            keys,
            &token,
            Method::GET,
            &format!("/epayment/v1/payments/{waiting}/events"),
        )
        .send()
        .await;
    assert_eq!(events.status, 200);
    let names: Vec<String> = events
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "CREATED",
            "AUTHORIZED",
            "CAPTURED",
            "CAPTURED",
            "REFUNDED",
            "REFUNDED"
        ]
    );
    assert!(
        events.json()[0]["timestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    // Cancel an authorized payment: it stays AUTHORIZED with `cancelledAmount`
    // changed (the cancel guide); it cannot be captured afterwards.
    let ready = new_reference();
    assert_eq!(
        h.create(keys, &token, &payment(&ready, 500, emulator::READY_USER))
            .await
            .status,
        201
    );
    let cancelled = h
        .api(
            keys,
            &token,
            Method::POST,
            &format!("/epayment/v1/payments/{ready}/cancel"),
        )
        .key("cancel-2")
        .send()
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.json()["state"], "AUTHORIZED");
    assert_eq!(
        cancelled.json()["aggregate"]["cancelledAmount"]["value"],
        500
    );
    h.modify(keys, &token, &ready, "capture", 100)
        .await
        .assert_problem(400, "6070", "Cannot capture a cancelled payment");
    // Unknown references.
    h.modify(keys, &token, "no-such-reference", "capture", 100)
        .await
        .assert_problem(404, "5090", "Reference not found");

    // Approving through the handle.
    let later = new_reference();
    assert_eq!(
        h.create(keys, &token, &payment(&later, 500, emulator::WAITING_USER))
            .await
            .status,
        201
    );
    let msn = keys.msn().unwrap();
    assert!(h.emu.approve(Test, msn, &later));
    assert!(!h.emu.approve(Test, msn, &later));
    assert!(!h.emu.approve(Production, msn, &later));
    assert_eq!(
        h.get(keys, &token, &later).await.json()["aggregate"]["authorizedAmount"]["value"],
        500
    );

    let counts = h.emu.counts();
    assert_eq!(counts.get(Endpoint::Capture), 7);
    assert_eq!(counts.get(Endpoint::Refund), 6);
    assert_eq!(counts.get(Endpoint::Cancel), 2);
    assert_eq!(counts.get(Endpoint::ForceApprove), 2);
    assert_eq!(counts.get(Endpoint::PaymentEvents), 1);
}
