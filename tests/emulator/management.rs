//! The Management API, read side.

use super::*;

#[tokio::test]
async fn sales_units_as_partners_and_merchants_see_them() {
    let h = Harness::new().await;
    // A partner sees its connected sales units.
    let partner = emulator::PRODUCTION_PARTNER;
    let token = h.token(partner).await;
    let first = *emulator::PRODUCTION_PARTNER_MSNS.start();
    let get = |path: String| h.api(partner, &token, Method::GET, &path).msn(first).send();
    let unit = get(format!("/management/v1/sales-units/{first}")).await;
    assert_eq!(unit.status, 200, "{}", unit.body);
    let v = unit.json();
    assert_eq!(v["msn"], first.to_string());
    assert_eq!(v["orgno"], "987654321");
    assert!(v["name"].is_string());
    // Not connected to the partner: 403 problem details.
    let other = get(format!(
        "/management/v1/sales-units/{}",
        emulator::PRODUCTION_MSN
    ))
    .await;
    assert_eq!(other.status, 403, "{}", other.body);
    assert_eq!(other.json()["status"], 403);
    let list = get("/management/v1/merchants/987654321/sales-units".into()).await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.json()["msn"].as_array().unwrap().len(), 1000);
    assert_eq!(
        get("/management/v1/merchants/98765/sales-units".into())
            .await
            .status,
        400
    );
    assert_eq!(
        get("/management/v1/merchants/123456789/sales-units".into())
            .await
            .status,
        404
    );
    // A merchant sees its own, and a Login-only unit says so.
    let merchant = emulator::TEST_MERCHANT;
    let token = h.token(merchant).await;
    let own = h
        .api(
            merchant,
            &token,
            Method::GET,
            &format!("/management/v1/sales-units/{}", emulator::TEST_MSN),
        )
        .send()
        .await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(own.json()["additionalDetails"]["isPureLogin"], false);
    let login = emulator::TEST_LOGIN_ONLY;
    let token = h.token(login).await;
    let unit = h
        .api(
            login,
            &token,
            Method::GET,
            &format!(
                "/management/v1/sales-units/{}",
                emulator::TEST_LOGIN_ONLY_MSN
            ),
        )
        .send()
        .await;
    assert_eq!(unit.status, 200, "{}", unit.body);
    assert_eq!(unit.json()["additionalDetails"]["isPureLogin"], true);
    // Without a token: the gateway's 401.
    h.call(Test, Method::GET, "/management/v1/sales-units/123456")
        .keys(merchant)
        .send()
        .await
        .assert(401, "text/plain", SOMETHING_WRONG);
}
