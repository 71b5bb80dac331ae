//! Hosts, keyring and presets, the request log, shutdown, handles.

use super::*;

#[tokio::test]
async fn hosts_keyring_and_presets() {
    let h = Harness::new().await;
    let hosts = h.emu.hosts();
    for env in Environment::ALL {
        let uri: http::Uri = format!("{}/epayment/v1/payments", h.emu.base_url(env))
            .parse()
            .unwrap();
        assert_eq!(hosts.environment_of(&uri), Some(env));
    }
    let keyring = h.emu.keyring();
    assert_eq!(keyring.hosts(), &hosts);
    assert_eq!(keyring.key_sets().count(), 7);
    let found = keyring
        .find(Test, Some(emulator::TEST_MSN.try_into().unwrap()))
        .unwrap();
    assert_eq!(found.client_id(), emulator::TEST_MERCHANT.client_id());
    let partner = keyring
        .find(Production, Some(400_123.try_into().unwrap()))
        .unwrap();
    assert!(partner.is_partner());
    assert!(
        keyring
            .find(Test, Some(300_123.try_into().unwrap()))
            .is_none()
    );
    assert_eq!(emulator::PRODUCTION_PARTNER.connected_msns().count(), 1000);
    assert_eq!(h.emu.merchant(Production), emulator::PRODUCTION_MERCHANT);
    assert_eq!(h.emu.partner(), emulator::PRODUCTION_PARTNER);
    assert_eq!(h.emu.login_only(Test), emulator::TEST_LOGIN_ONLY);

    // Extra keys.
    let msn: tower_vipps::Msn = "777777".parse().unwrap();
    let extra =
        tower_vipps::KeySet::merchant(Test, msn, "extra-id", "extra-secret", "extra-sub-key")
            .unwrap();
    let emu = Emulator::builder().key_set(extra).start().await.unwrap();
    let client = common::client::<Full<Bytes>>();
    let req = Request::post(format!("{}/accesstoken/get", emu.base_url(Test)))
        .header("client_id", "extra-id")
        .header("client_secret", "extra-secret")
        .header("Ocp-Apim-Subscription-Key", "extra-sub-key")
        .body(Full::default())
        .unwrap();
    assert_eq!(client.request(req).await.unwrap().status(), 200);
}

#[tokio::test]
async fn the_request_log_keeps_no_secret_in_debug() {
    let h = Harness::new().await;
    let keys = emulator::TEST_MERCHANT;
    let token = h.token(keys).await;
    let _ = h.get(keys, &token, "abcdefgh-1").await;
    let seen = h.emu.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].endpoint, Endpoint::AccessToken);
    assert_eq!(seen[1].path, "/epayment/v1/payments/abcdefgh-1");
    let out = format!("{seen:?} {:?} {:?}", h.emu, keys);
    assert!(!out.contains(keys.client_secret()));
    assert!(!out.contains(keys.subscription_key()));
    assert!(!out.contains(&token));
    h.emu.reset_counts();
    assert_eq!(h.emu.counts().total(), 0);
    assert!(h.emu.requests().is_empty());
}

#[tokio::test]
async fn shutdown_and_drop_stop_listening() {
    let emu = Emulator::start().await.unwrap();
    let addrs = [emu.addr(Test), emu.addr(Production)];
    let client = common::client::<Full<Bytes>>();
    // A kept-alive connection does not hold up the shutdown.
    let res = client
        .request(
            Request::get(format!("{}/x", emu.base_url(Test)))
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    emu.shutdown().await;
    for addr in addrs {
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
    let emu = Emulator::start().await.unwrap();
    let addr = emu.addr(Production);
    drop(emu);
    tokio::task::yield_now().await;
    let mut refused = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(refused);
}

#[test]
fn handles_are_send_and_sync() {
    fn is<T: Send + Sync + 'static>() {}
    is::<Emulator>();
    is::<emulator::Faults>();
    is::<emulator::Counts>();
    is::<emulator::SeenRequest>();
    is::<Credentials>();
}
