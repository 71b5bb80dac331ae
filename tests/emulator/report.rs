//! The specialized token endpoint (`/miami/v1/token`) and the Report API.

use super::*;

#[tokio::test]
async fn accounting_keys_read_reports_in_production() {
    let h = Harness::new().await;
    let keys = emulator::PRODUCTION_ACCOUNTING;
    let miami = |env: Environment, secret: &str| {
        h.call(env, Method::POST, "/miami/v1/token")
            .header("client_id", keys.client_id())
            .header("client_secret", secret)
            .send()
    };
    // No subscription key; 15 minutes; production only.
    let answer = miami(Production, keys.client_secret()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let v = answer.json();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], "900");
    let token = v["access_token"].as_str().unwrap().to_owned();
    miami(Test, keys.client_secret())
        .await
        .assert(401, "application/json", INVALID_CLIENT);
    miami(Production, "not-the-secret")
        .await
        .assert(401, "application/json", INVALID_CLIENT);
    assert_eq!(h.emu.count(Endpoint::SpecializedToken), 3);

    let report = |path: String| h.call(Production, Method::GET, &path).bearer(&token).send();
    let ledgers = report("/settlement/v1/ledgers".into()).await;
    assert_eq!(ledgers.status, 200, "{}", ledgers.body);
    let items = ledgers.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    let msn = emulator::PRODUCTION_MSN;
    assert_eq!(
        items[0]["settlesForRecipientHandles"][0],
        format!("api:{msn}")
    );
    assert_eq!(items[0]["currency"], "NOK");
    let ledger = items[0]["ledgerId"].as_str().unwrap().to_owned();
    let funds = |date: String| report(format!("/report/v2/ledgers/{ledger}/funds/dates/{date}"));
    let closed = funds(common::date_in(-1)).await;
    assert_eq!(closed.status, 200, "{}", closed.body);
    assert_eq!(closed.json()["tryLater"], false);
    assert_eq!(funds(common::date_in(0)).await.json()["tryLater"], true);
    assert_eq!(funds(common::date_in(2)).await.status, 404);
    assert_eq!(funds("2024-02-30".into()).await.status, 400);
    let fees_feed = report(format!("/report/v2/ledgers/{ledger}/fees/feed")).await;
    assert_eq!(fees_feed.status, 200, "{}", fees_feed.body);
    assert!(
        fees_feed.json()["cursor"]
            .as_str()
            .is_some_and(|c| !c.is_empty())
    );
    assert_eq!(
        report(format!("/report/v2/ledgers/{ledger}/sales/feed"))
            .await
            .status,
        400
    );
    assert_eq!(
        report("/report/v2/ledgers/999/funds/feed".into())
            .await
            .status,
        403
    );
    // The accounting token opens nothing else: ePayment wants a subscription key.
    let epayment = h
        .call(Production, Method::GET, "/epayment/v1/payments/acme-1")
        .bearer(&token)
        .msn(msn)
        .send()
        .await;
    epayment.assert(401, "application/json", MISSING_KEY);
}

#[tokio::test]
async fn merchants_read_their_own_reports_and_partners_none() {
    let h = Harness::new().await;
    // A merchant with standard keys: its own sales unit.
    let merchant = emulator::TEST_MERCHANT;
    let token = h.token(merchant).await;
    let ledgers = h
        .api(merchant, &token, Method::GET, "/settlement/v1/ledgers")
        .send()
        .await;
    assert_eq!(ledgers.status, 200, "{}", ledgers.body);
    assert_eq!(
        ledgers.json()["items"][0]["settlesForRecipientHandles"][0],
        format!("api:{}", emulator::TEST_MSN)
    );
    // Without a token: the gateway's 401.
    h.call(Test, Method::GET, "/settlement/v1/ledgers")
        .keys(merchant)
        .send()
        .await
        .assert(401, "text/plain", SOMETHING_WRONG);
    // Partner keys have no access to the Report API.
    let partner = emulator::PRODUCTION_PARTNER;
    let token = h.token(partner).await;
    h.api(partner, &token, Method::GET, "/settlement/v1/ledgers")
        .msn(emulator::PRODUCTION_PARTNER_MSNS.start())
        .send()
        .await
        .assert(
            401,
            "application/json",
            r#"{"code": "Unauthorized", "message": "Please check your API keys"}"#,
        );
}

/// Official code writes `/accessToken/get` as well as `/accesstoken/get`.
#[tokio::test]
async fn the_token_path_in_either_case() {
    let h = Harness::new().await;
    let keys = emulator::TEST_MERCHANT;
    let answer = h
        .call(Test, Method::POST, "/accessToken/get")
        .header("client_id", keys.client_id())
        .header("client_secret", keys.client_secret())
        .keys(keys)
        .send()
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(h.emu.count(Endpoint::AccessToken), 1);
}

/// The Report API's `401` for keys without access is diagnosed, not `unknown`.
#[tokio::test]
async fn a_partner_on_the_report_api_is_diagnosed() {
    let h = Harness::new().await;
    let partner = emulator::PRODUCTION_PARTNER;
    let token = h.token(partner).await;
    let answer = h
        .api(partner, &token, Method::GET, "/settlement/v1/ledgers")
        .msn(emulator::PRODUCTION_PARTNER_MSNS.start())
        .send()
        .await;
    assert_eq!(answer.status, 401);
    let context = tower_vipps::RequestContext {
        api: tower_vipps::Api::Report,
        ..Default::default()
    };
    let diagnosis = tower_vipps::diagnose::classify(
        &context,
        answer.status,
        &answer.headers,
        answer.body.as_bytes(),
    );
    assert_ne!(diagnosis.cause(), tower_vipps::Cause::Unknown);
}
