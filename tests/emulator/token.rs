//! The token endpoint: tokens minted like the real ones, its failures, expiry.

use super::*;

#[tokio::test]
async fn token_endpoint_mints_tokens_like_the_real_one() {
    let h = Harness::new().await;
    for (keys, lifetime) in [
        (emulator::TEST_MERCHANT, "3600"),
        (emulator::PRODUCTION_MERCHANT, "86400"),
    ] {
        let answer = h
            .token_call(keys.environment(), keys)
            .msn(keys.msn().unwrap())
            .send()
            .await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.content_type, "application/json");
        let v = answer.json();
        assert_eq!(v["token_type"], "Bearer");
        assert_eq!(v["expires_in"], lifetime);
        assert_eq!(v["ext_expires_in"], lifetime);
        assert_eq!(v["resource"], "00000002-0000-0000-c000-000000000000");
        let on: u64 = v["expires_on"].as_str().unwrap().parse().unwrap();
        let before: u64 = v["not_before"].as_str().unwrap().parse().unwrap();
        assert_eq!(on - before, lifetime.parse::<u64>().unwrap());
        let token = v["access_token"].as_str().unwrap();
        assert_eq!(token.split('.').count(), 3);
        let minted = h.emu.minted_for(token).unwrap();
        assert_eq!(minted.environment, keys.environment());
        assert_eq!(minted.msn, keys.msn());
        assert_eq!(&*minted.client_id, keys.client_id());
        assert_eq!(
            minted.subscription_key,
            tower_vipps::Secret::new(keys.subscription_key()).fingerprint()
        );
        assert!(!minted.partner);
        // The token says what it is for, but not the keys.
        assert!(!token.contains(keys.subscription_key()));
    }
    assert_eq!(h.emu.minted_for("not.a.token"), None);
    assert_eq!(h.emu.count(Endpoint::AccessToken), 2);
}

#[tokio::test]
async fn token_endpoint_failures() {
    let h = Harness::new().await;
    let keys = emulator::TEST_MERCHANT;
    let no_key = h
        .call(Test, Method::POST, "/accesstoken/get")
        .header("client_id", keys.client_id())
        .header("client_secret", keys.client_secret())
        .send()
        .await;
    no_key.assert(401, "application/json", MISSING_KEY);
    let unknown = h
        .call(Test, Method::POST, "/accesstoken/get")
        .header("client_id", keys.client_id())
        .header("client_secret", keys.client_secret())
        .header(
            "Ocp-Apim-Subscription-Key",
            "0123456789abcdef0123456789abcdef",
        )
        .send()
        .await;
    unknown.assert(401, "application/json", INVALID_KEY);
    // Test keys on the production listener.
    let wrong_env = h.token_call(Production, keys).send().await;
    wrong_env.assert(401, "application/json", INVALID_KEY);
    let wrong_secret = h
        .call(Test, Method::POST, "/accesstoken/get")
        .header("client_id", keys.client_id())
        .header("client_secret", "not-the-secret")
        .keys(keys)
        .send()
        .await;
    wrong_secret.assert(401, "application/json", INVALID_CLIENT);
    let other_client = h
        .call(Test, Method::POST, "/accesstoken/get")
        .header("client_id", emulator::TEST_LOGIN_ONLY.client_id())
        .header("client_secret", emulator::TEST_LOGIN_ONLY.client_secret())
        .keys(keys)
        .send()
        .await;
    other_client.assert(401, "application/json", INVALID_CLIENT);
    let no_client = h
        .call(Test, Method::POST, "/accesstoken/get")
        .keys(keys)
        .send()
        .await;
    no_client.assert(401, "application/json", INVALID_CLIENT);
    // Partner keys with an MSN that is not connected.
    let partner = emulator::PRODUCTION_PARTNER;
    let not_connected = h
        .token_call(Production, partner)
        .msn(emulator::PRODUCTION_MSN)
        .send()
        .await;
    assert_eq!(not_connected.status, 403);
    assert_eq!(not_connected.content_type, "application/problem+json");
    assert_eq!(
        not_connected.json()["detail"],
        "The sales unit (MSN) is not connected to this partner."
    );
    // Partner keys on the test listener: partner functionality is not available in
    // the test environment, so they are unknown keys there.
    let partner_in_test = h.token_call(Test, partner).send().await;
    partner_in_test.assert(401, "application/json", INVALID_KEY);
    assert_eq!(h.emu.count(Endpoint::AccessToken), 8);
    assert_eq!(h.emu.counts().total(), 8);
}

#[tokio::test(start_paused = true)]
async fn tokens_expire_with_tokios_clock_and_the_emulators() {
    let emu = Emulator::builder()
        .token_lifetime(Test, Duration::from_secs(60))
        .start()
        .await
        .unwrap();
    let h = Harness::with(emu);
    let keys = emulator::TEST_MERCHANT;
    let token = h.token(keys).await;
    let reference = h.paid(keys, &token).await;
    assert_eq!(h.get(keys, &token, &reference).await.status, 200);
    tokio::time::advance(Duration::from_secs(61)).await;
    h.get(keys, &token, &reference)
        .await
        .assert(401, "text/plain", SOMETHING_WRONG);

    // The lifetime can change at run time, and the clock can jump.
    h.emu
        .faults()
        .token_lifetime(Test, Duration::from_secs(3600));
    let token = h.token(keys).await;
    assert_eq!(h.get(keys, &token, &reference).await.status, 200);
    h.emu.advance_clock(Duration::from_secs(3600));
    h.get(keys, &token, &reference)
        .await
        .assert(401, "text/plain", SOMETHING_WRONG);
}

#[tokio::test(start_paused = true)]
async fn slow_token_endpoint() {
    let h = Harness::new().await;
    h.emu.faults().token_delay(Duration::from_secs(30));
    let start = tokio::time::Instant::now();
    let token = h.token(emulator::TEST_MERCHANT).await;
    assert!(start.elapsed() >= Duration::from_secs(30));
    assert!(!token.is_empty());
    // Other endpoints are not slowed.
    h.emu.faults().token_delay(Duration::ZERO);
    let start = tokio::time::Instant::now();
    let _ = h.get(emulator::TEST_MERCHANT, &token, "whatever-123").await;
    assert!(start.elapsed() < Duration::from_secs(30));
}
