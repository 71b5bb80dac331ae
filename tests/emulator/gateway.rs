//! The gateway: credentials checked in the gateway's order for every API, injected faults, garbage and unknown paths.

use super::*;

#[tokio::test]
async fn api_calls_are_checked_in_the_gateways_order() {
    let h = Harness::new().await;
    let keys = emulator::TEST_MERCHANT;
    let token = h.token(keys).await;
    let path = "/epayment/v1/payments/no-such-payment-1";
    let get = || h.call(Test, Method::GET, path);

    get()
        .bearer(&token)
        .send()
        .await
        .assert(401, "application/json", MISSING_KEY);
    get()
        .bearer(&token)
        .header("Ocp-Apim-Subscription-Key", "nope")
        .send()
        .await
        .assert(401, "application/json", INVALID_KEY);
    // Production keys on the test listener.
    get()
        .bearer(&token)
        .keys(emulator::PRODUCTION_MERCHANT)
        .send()
        .await
        .assert(401, "application/json", INVALID_KEY);

    let refused = |a: Answer| a.assert(401, "text/plain", SOMETHING_WRONG);
    refused(get().keys(keys).send().await);
    refused(
        get()
            .keys(keys)
            .header("Authorization", format!("bearer {token}"))
            .send()
            .await,
    );
    refused(
        get()
            .keys(keys)
            .header("Authorization", &token)
            .send()
            .await,
    );
    refused(
        get()
            .keys(keys)
            .header("Authorization", format!("Bearer  {token}"))
            .send()
            .await,
    );
    refused(get().keys(keys).bearer("eyJ.garbage.token").send().await);
    // A token for another MSN (the Login-only unit's), with this unit's key.
    let other = h.token(emulator::TEST_LOGIN_ONLY).await;
    refused(get().keys(keys).bearer(&other).send().await);
    // This unit's token with another subscription key.
    refused(
        get()
            .keys(emulator::TEST_LOGIN_ONLY)
            .bearer(&token)
            .send()
            .await,
    );
    // The MSN header names another sales unit.
    refused(get().keys(keys).bearer(&token).msn(999999).send().await);
    // A production token on the test listener, with production keys there too:
    // the key fails first.
    let prod = h.token(emulator::PRODUCTION_MERCHANT).await;
    get()
        .keys(emulator::PRODUCTION_MERCHANT)
        .bearer(&prod)
        .send()
        .await
        .assert(401, "application/json", INVALID_KEY);
    refused(get().keys(keys).bearer(&prod).send().await);

    // A key without an ePayment subscription gets tokens, not API calls.
    let unsubscribed = emulator::TEST_UNSUBSCRIBED;
    let its_token = h.token(unsubscribed).await;
    get()
        .keys(unsubscribed)
        .bearer(&its_token)
        .send()
        .await
        .assert(
            401,
            "application/json",
            "{\"statusCode\": 401, \"message\": \"Subscription not found.\"}",
        );

    // Everything right: the API answers (the payment does not exist).
    let found = get()
        .keys(keys)
        .bearer(&token)
        .msn(emulator::TEST_MSN)
        .send()
        .await;
    found.assert_problem(404, "5090", "Reference not found");
    assert_eq!(
        found.json()["detail"],
        "The reference no-such-payment-1 does not exist for MSN 123456"
    );
    assert_eq!(found.json()["instance"], "/v1/payments/no-such-payment-1");

    assert_eq!(h.emu.count(Endpoint::GetPayment), 15);
    assert_eq!(h.emu.count(Endpoint::AccessToken), 4);
}

/// Recurring v3 and eCom v2 take what ePayment takes (the access token and the
/// same subscription key, the MSN with partner keys), checked in the gateway's
/// order; Checkout's client credentials are no substitute for the token.
#[tokio::test]
async fn recurring_and_ecom_check_the_credentials_they_take() {
    let h = Harness::new().await;
    let keys = emulator::TEST_MERCHANT;
    let token = h.token(keys).await;
    let login_only = h.token(emulator::TEST_LOGIN_ONLY).await;
    // Partner keys exist in production only.
    let partner = h.token(emulator::PRODUCTION_PARTNER).await;
    let calls = [
        (
            Method::GET,
            "/recurring/v3/agreements/agr_unknown",
            Endpoint::RecurringGetAgreement,
        ),
        (
            Method::POST,
            "/recurring/v3/agreements",
            Endpoint::RecurringCreateAgreement,
        ),
        (
            Method::POST,
            "/recurring/v3/agreements/agr_unknown/charges",
            Endpoint::RecurringCreateCharge,
        ),
        (
            Method::GET,
            "/ecomm/v2/payments/acme-unknown/details",
            Endpoint::EcomDetails,
        ),
        (
            Method::POST,
            "/ecomm/v2/payments/acme-unknown/capture",
            Endpoint::EcomCapture,
        ),
    ];
    for (method, path, endpoint) in &calls {
        let call = || h.call(Test, method.clone(), path);
        call()
            .bearer(&token)
            .send()
            .await
            .assert(401, "application/json", MISSING_KEY);
        let refused = |a: Answer| a.assert(401, "text/plain", SOMETHING_WRONG);
        refused(call().keys(keys).send().await);
        refused(
            call()
                .keys(keys)
                .header("client_id", keys.client_id())
                .header("client_secret", keys.client_secret())
                .send()
                .await,
        );
        refused(
            call()
                .keys(keys)
                .header("Authorization", &token)
                .send()
                .await,
        );
        call()
            .keys(emulator::TEST_LOGIN_ONLY)
            .bearer(&login_only)
            .send()
            .await
            .assert(
                403,
                "text/plain",
                "Merchant Not Allowed for Ecommerce Payment",
            );
        let no_msn = h
            .call(Production, method.clone(), path)
            .keys(emulator::PRODUCTION_PARTNER)
            .bearer(&partner)
            .send()
            .await;
        assert_eq!(no_msn.status, 403, "{path}: {}", no_msn.body);
        assert_eq!(no_msn.json()["title"], "Forbidden");
        // Everything right: the API itself answers.
        let answer = call()
            .keys(keys)
            .bearer(&token)
            .msn(emulator::TEST_MSN)
            .key("acme-key-1")
            .json(&json!({}))
            .send()
            .await;
        assert!(
            answer.content_type.starts_with("application/json"),
            "{path}: {}",
            answer.content_type
        );
        if path.starts_with("/recurring") {
            assert!(
                matches!(answer.status.as_u16(), 400 | 404),
                "{path}: {}",
                answer.body
            );
            assert!(
                answer.json()["type"]
                    .as_str()
                    .unwrap()
                    .contains("recurring-api-problems#")
            );
        } else {
            assert_eq!(answer.status, 400, "{path}: {}", answer.body);
            assert!(
                answer.json()[0]["errorGroup"].is_string(),
                "{}",
                answer.body
            );
        }
        assert_eq!(h.emu.count(*endpoint), 7, "{path}");
    }
    // The test-only endpoints are not in production.
    let prod = h.token(emulator::PRODUCTION_MERCHANT).await;
    for path in [
        "/ecomm/v2/integration-test/payments/acme-unknown/approve",
        "/recurring/v3/agreements/agr_unknown/accept",
    ] {
        let method = if path.starts_with("/recurring") {
            Method::PATCH
        } else {
            Method::POST
        };
        h.call(Production, method, path)
            .keys(emulator::PRODUCTION_MERCHANT)
            .bearer(&prod)
            .key("acme-key-2")
            .json(&json!({"phoneNumber": "4791000001"}))
            .send()
            .await
            .assert(
                404,
                "application/json",
                "{\"statusCode\": 404, \"message\": \"Resource not found\"}",
            );
    }
    assert_eq!(h.emu.count(Endpoint::Other), 0);
}

#[tokio::test]
async fn partner_keys_need_a_connected_msn() {
    let h = Harness::new().await;
    let partner = emulator::PRODUCTION_PARTNER;
    let token = h.token(partner).await;
    assert!(h.emu.minted_for(&token).unwrap().partner);
    let reference = new_reference();
    let create = |msn: Option<u64>| {
        let mut call = h
            .api(partner, &token, Method::POST, "/epayment/v1/payments")
            .key(&uuid::Uuid::new_v4().to_string())
            .json(&payment(&reference, 1000, emulator::READY_USER));
        if let Some(msn) = msn {
            call = call.msn(msn);
        }
        call.send()
    };
    let missing = create(None).await;
    assert_eq!(missing.status, 403);
    assert_eq!(missing.content_type, "application/problem+json");
    let v = missing.json();
    assert_eq!(v["title"], "Forbidden");
    assert_eq!(v["status"], 403);
    assert_eq!(
        v["detail"],
        "The Merchant-Serial-Number header is required when using partner keys."
    );
    for msn in [
        emulator::PRODUCTION_MSN,
        399_999,
        emulator::PRODUCTION_PARTNER_MSNS.end() + 1,
    ] {
        let not_connected = create(Some(msn)).await;
        assert_eq!(not_connected.status, 403);
        assert_eq!(
            not_connected.json()["detail"],
            "The sales unit (MSN) is not connected to this partner."
        );
    }
    // One token serves every connected MSN; payments belong to their MSN.
    assert_eq!(create(Some(400_001)).await.status, 201);
    assert_eq!(create(Some(400_999)).await.status, 201);
    let get = |msn: u64| {
        h.api(
            partner,
            &token,
            Method::GET,
            &format!("/epayment/v1/payments/{reference}"),
        )
        .msn(msn)
        .send()
    };
    assert_eq!(get(400_001).await.json()["state"], "AUTHORIZED");
    get(400_500)
        .await
        .assert_problem(404, "5090", "Reference not found");
    // A partner token fetched with an MSN works for the others too.
    let with_msn = h.token_for(partner, Some(400_002)).await;
    let answer = h
        .api(
            partner,
            &with_msn,
            Method::GET,
            &format!("/epayment/v1/payments/{reference}"),
        )
        .msn(400_001)
        .send()
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(h.emu.count(Endpoint::CreatePayment), 6);
}

#[tokio::test]
async fn login_only_merchants_cannot_use_epayment() {
    let h = Harness::new().await;
    for keys in [emulator::TEST_LOGIN_ONLY, emulator::PRODUCTION_LOGIN_ONLY] {
        let token = h.token(keys).await;
        h.create(
            keys,
            &token,
            &payment(&new_reference(), 1000, emulator::READY_USER),
        )
        .await
        .assert(
            403,
            "text/plain",
            "Merchant Not Allowed for Ecommerce Payment",
        );
    }
    assert_eq!(h.emu.count(Endpoint::CreatePayment), 2);
}

#[tokio::test]
async fn injected_faults_answer_like_the_gateway() {
    let h = Harness::new().await;
    let keys = emulator::TEST_MERCHANT;
    let faults = h.emu.faults();
    faults
        .rate_limit_next(Endpoint::AccessToken, 1, Duration::from_secs(42))
        .bad_gateway_next(Endpoint::AccessToken, 1)
        .fail_next(Endpoint::AccessToken, 1);
    assert_eq!(faults.pending(Endpoint::AccessToken), 3);
    let limited = h.token_call(Test, keys).send().await;
    limited.assert(
        429,
        "application/json",
        "{\"statusCode\": 429, \"message\": \"Rate limit is exceeded. Try again in 42 seconds.\"}",
    );
    assert_eq!(limited.headers["retry-after"], "42");
    h.token_call(Test, keys).send().await.assert(
        502,
        "text/html",
        "<html><body><h1>502 Bad Gateway</h1></body></html>",
    );
    let internal = h.token_call(Test, keys).send().await;
    internal.assert_problem(500, "3010", "Internal error");
    let token = h.token(keys).await;

    // Faults are per endpoint, used in order.
    faults.fail_next(Endpoint::CreatePayment, 1);
    let reference = new_reference();
    h.create(
        keys,
        &token,
        &payment(&reference, 1000, emulator::READY_USER),
    )
    .await
    .assert_problem(500, "3010", "Internal error");
    assert_eq!(
        h.create(
            keys,
            &token,
            &payment(&reference, 1000, emulator::READY_USER)
        )
        .await
        .status,
        201
    );

    // A dropped connection: counted, never answered.
    faults.drop_next(Endpoint::GetPayment, 1);
    let req = Request::get(format!(
        "{}/epayment/v1/payments/{reference}",
        h.emu.base_url(Test)
    ))
    .header("Ocp-Apim-Subscription-Key", keys.subscription_key())
    .header("Authorization", format!("Bearer {token}"))
    .body(Full::default())
    .unwrap();
    let err = h.client.request(req).await.unwrap_err();
    assert!(
        err.to_string().contains("connection") || format!("{err:?}").contains("Incomplete"),
        "{err:?}"
    );
    assert_eq!(h.get(keys, &token, &reference).await.status, 200);
    assert_eq!(h.emu.count(Endpoint::GetPayment), 2);
    let seen = h.emu.requests();
    let dropped: Vec<_> = seen
        .iter()
        .filter(|r| r.endpoint == Endpoint::GetPayment)
        .collect();
    assert_eq!(dropped[0].status, None);
    assert_eq!(dropped[1].status, Some(StatusCode::OK));

    // Connections closed at once: nothing reaches an endpoint.
    let before = h.emu.counts();
    faults.drop_connections(1);
    let fresh = common::client::<Full<Bytes>>();
    let req = Request::get(format!(
        "{}/epayment/v1/payments/{reference}",
        h.emu.base_url(Production)
    ))
    .body(Full::default())
    .unwrap();
    assert!(fresh.request(req).await.is_err());
    assert_eq!(h.emu.counts(), before);
    faults.clear();
    assert_eq!(faults.pending(Endpoint::AccessToken), 0);
}

#[tokio::test]
async fn caps_garbage_and_unknown_paths() {
    let h = Harness::new().await;
    let keys = emulator::TEST_MERCHANT;
    let token = h.token(keys).await;
    let big = h
        .api(keys, &token, Method::POST, "/epayment/v1/payments")
        .key("big-1")
        .raw(vec![b'{'; emulator::REQUEST_BODY_CAP + 1])
        .send()
        .await;
    assert_eq!(big.status, 413);
    assert_eq!(big.content_type, "application/json");
    let unknown = h.call(Test, Method::GET, "/nothing/here").send().await;
    unknown.assert(
        404,
        "application/json",
        "{\"statusCode\": 404, \"message\": \"Resource not found\"}",
    );
    let wrong_method = h
        .call(Test, Method::DELETE, "/epayment/v1/payments/abcdefgh")
        .send()
        .await;
    assert_eq!(wrong_method.status, 404);
    let weird = h
        .call(Test, Method::GET, "/epayment/v1/payments/%00%ff")
        .keys(keys)
        .bearer(&token)
        .send()
        .await;
    weird.assert_problem(404, "5090", "Reference not found");
    let binary_key = h
        .call(Test, Method::GET, "/epayment/v1/payments/abcdefgh")
        .header_bytes("Ocp-Apim-Subscription-Key", b"\xff\xfe")
        .header_bytes("Authorization", b"Bearer \xff")
        .send()
        .await;
    assert_eq!(binary_key.status, 401);
    assert_eq!(h.emu.count(Endpoint::Other), 2);
    assert_eq!(h.emu.count(Endpoint::CreatePayment), 1);
    assert_eq!(h.emu.count(Endpoint::GetPayment), 2);
}

#[tokio::test]
async fn garbage_never_breaks_it() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let h = Harness::new().await;
    let keys = emulator::TEST_MERCHANT;
    let token = h.token(keys).await;
    // Not HTTP at all.
    for junk in [
        &b"\x00\x01\x02garbage\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /accesstoken/get HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
    ] {
        let mut stream = tokio::net::TcpStream::connect(h.emu.addr(Test))
            .await
            .unwrap();
        stream.write_all(junk).await.unwrap();
        let mut buf = Vec::new();
        let _ = stream.read_to_end(&mut buf).await;
    }
    // Random methods, bodies and headers on every endpoint of every API.
    let mut rng = fastrand::Rng::with_seed(7);
    let paths = [
        "/accesstoken/get",
        "/epayment/v1/payments",
        "/epayment/v1/payments/abcdefgh-1",
        "/epayment/v1/payments/abcdefgh-1/events",
        "/epayment/v1/payments/abcdefgh-1/capture",
        "/epayment/v1/payments/abcdefgh-1/refund",
        "/epayment/v1/payments/abcdefgh-1/cancel",
        "/epayment/v1/test/payments/abcdefgh-1/approve",
        "/recurring/v3/agreements",
        "/recurring/v3/agreements/agr_abcdefg",
        "/recurring/v3/agreements/agr_abcdefg/accept",
        "/recurring/v3/agreements/agr_abcdefg/charges",
        "/recurring/v3/agreements/agr_abcdefg/charges/chr-abcdefg",
        "/ecomm/v2/payments",
        "/ecomm/v2/payments/order-1/capture",
        "/ecomm/v2/payments/order-1/refund",
        "/ecomm/v2/payments/order-1/cancel",
        "/ecomm/v2/payments/order-1/details",
        "/ecomm/v2/integration-test/payments/order-1/approve",
        "/checkout/v3/session",
        "/checkout/v3/session/abcdefgh-1",
        "/webhooks/v1/webhooks",
        "/webhooks/v1/webhooks/0d0b3a3e-1111-4222-8333-444455556666",
        "/order-management/v2/ECOM/receipts/abcdefgh-1",
        "/order-management/v2/RECURRING/categories/chr-abcdefg",
        "/order-management/v2/ecom/abcdefgh-1",
        "/miami/v1/token",
        "/settlement/v1/ledgers",
        "/report/v2/ledgers/30123456/funds/dates/2024-02-30",
        "/report/v2/ledgers/30123456/fees/feed",
        "/management/v1/sales-units/123456",
        "/management/v1/merchants/987654321/sales-units",
        "/access-management-1.0/access/oauth2/token",
        "/access-management-1.0/access/userinfo",
    ];
    let jsonish: [&[u8]; 6] = [
        b"{\"amount\":{\"value\":1e400,\"currency\":\"NOK\"}}",
        b"{\"modificationAmount\":{\"value\":18446744073709551616,\"currency\":\"NOK\"}}",
        b"{\"modificationAmount\":null}",
        b"{\"reference\":[],\"amount\":\"x\"}",
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        b"",
    ];
    let methods = [
        Method::POST,
        Method::GET,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];
    // Shapes each API reads, with the wrong types and sizes.
    let shaped: [&[u8]; 6] = [
        b"{\"orderLines\":[{\"name\":1,\"id\":null,\"totalAmount\":1e400,\"unitInfo\":{\"quantity\":[]}}],\"bottomLine\":7}",
        b"{\"pricing\":{\"amount\":-1,\"currency\":{}},\"interval\":\"MONTH\",\"phoneNumber\":12}",
        b"{\"amount\":18446744073709551616,\"due\":\"2024-02-30\",\"retryDays\":-3,\"transactionType\":[]}",
        b"{\"customerInfo\":{\"mobileNumber\":4791234567},\"merchantInfo\":[],\"transaction\":{\"amount\":\"x\"}}",
        b"{\"category\":5,\"orderDetailsUrl\":\"\\u0000\",\"imageId\":\"../../\"}",
        b"{\"url\":\"http://\",\"events\":[1,2,3]}",
    ];
    for i in 0..600 {
        let path = paths[rng.usize(..paths.len())];
        let method = methods[rng.usize(..methods.len())].clone();
        let body: Vec<u8> = if i % 3 == 0 {
            jsonish[rng.usize(..jsonish.len())].to_vec()
        } else if i % 3 == 1 {
            shaped[rng.usize(..shaped.len())].to_vec()
        } else {
            (0..rng.usize(..300)).map(|_| rng.u8(..)).collect()
        };
        let mut call = h.call(Test, method, path).raw(body);
        if rng.bool() {
            call = call.keys(keys).bearer(&token);
        }
        if rng.bool() {
            call = call.header_bytes("Merchant-Serial-Number", &[rng.u8(0x80..)]);
        }
        if rng.bool() {
            call = call.key(&format!("k{i}"));
        }
        let answer = call.send().await;
        assert!(
            answer.status.as_u16() >= 200 && answer.status.as_u16() < 500,
            "{}",
            answer.body
        );
    }
    // Still answering.
    assert_eq!(h.token(keys).await.split('.').count(), 3);
}
