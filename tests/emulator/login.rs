//! Login: a user's access token lives as long as the token response's
//! `expires_in` says, and not a second more.

use super::*;

#[tokio::test]
async fn a_user_token_expires_when_expires_in_says() {
    let h = Harness::new().await;
    let keys = emulator::TEST_MERCHANT;
    let code = h.emu.login_code(Test, keys.client_id());
    let answer = h
        .call(
            Test,
            Method::POST,
            "/access-management-1.0/access/oauth2/token",
        )
        .header("client_id", keys.client_id())
        .header("content-type", "application/x-www-form-urlencoded")
        .raw(format!(
            "grant_type=authorization_code&code={code}&client_id={}&client_secret={}",
            keys.client_id(),
            keys.client_secret()
        ))
        .send()
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let token = answer.json()["access_token"].as_str().unwrap().to_owned();
    let expires_in = answer.json()["expires_in"].as_u64().unwrap();

    let userinfo = || {
        h.call(Test, Method::GET, "/access-management-1.0/access/userinfo")
            .bearer(&token)
            .send()
    };
    assert_eq!(userinfo().await.status, 200);
    h.emu.advance_clock(Duration::from_secs(expires_in - 1));
    assert_eq!(userinfo().await.status, 200, "valid to its last second");
    h.emu.advance_clock(Duration::from_secs(1));
    let answer = userinfo().await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(answer.json()["error"], "request_unauthorized");
}
