//! No credential in plaintext, on the reqwest path: `http://api.vipps.no` and
//! `http://apitest.vipps.no`, with merchant and with partner keys, are refused
//! unsent (API calls and the token requests they need). The official hosts are
//! resolved to a loopback server that counts what reaches it.
//!
//! The check is the stack's own (`vipps::insecure_scheme` in Auth, Preflight and the
//! token client), which `VippsMiddleware` runs; without it these tests fail: the
//! server sees the requests.
#![cfg(all(feature = "reqwest", feature = "emulator"))]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{SeenRequest, Server, serve};
use reqwest_middleware::ClientBuilder;
use tower_vipps::reqwest::{ReqwestService, VippsMiddleware, into_vipps_error};
use tower_vipps::{Environment, KeySet, Keyring, Msn};

const MSN: u64 = 123_456;

/// A server that counts every request and answers each like a token endpoint.
async fn counting() -> (Server, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let count = hits.clone();
    let server = serve(move |_request: SeenRequest| {
        count.fetch_add(1, Ordering::SeqCst);
        async {
            common::respond(
                200,
                "application/json",
                r#"{"token_type":"Bearer","expires_in":"3600","access_token":"a.b.c"}"#,
            )
        }
    })
    .await;
    (server, hits)
}

fn keyring(environment: Environment, partner: bool) -> Keyring {
    let msn = Msn::new(MSN).unwrap();
    let keys = if partner {
        KeySet::partner(environment, "id", "secret", "sub-key")
            .unwrap()
            .connected_msns([msn])
    } else {
        KeySet::merchant(environment, msn, "id", "secret", "sub-key").unwrap()
    };
    Keyring::builder()
        .key_set(keys)
        .system("acme-shop", "1.0.0")
        .build()
        .unwrap()
}

async fn refused_unsent(environment: Environment, partner: bool) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (server, hits) = counting().await;
    // The user's client sends the official hosts to the loopback server.
    let builder = reqwest::Client::builder()
        .resolve("api.vipps.no", server.addr)
        .resolve("apitest.vipps.no", server.addr);
    let vipps = VippsMiddleware::from_layer(
        tower_vipps::layer(keyring(environment, partner)),
        ReqwestService::new(builder).unwrap(),
    );
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(vipps)
        .build();
    let url = format!(
        "http://{}/epayment/v1/payments/acme-order-0001",
        environment.host()
    );
    let err = client
        .get(url)
        .header("Merchant-Serial-Number", MSN.to_string())
        .send()
        .await
        .expect_err("plain HTTP to an official host is refused");
    let err = into_vipps_error(err).expect("a VippsError");
    assert_eq!(err.cause().code(), "vipps::insecure_scheme", "{err}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing was sent");
}

#[tokio::test]
async fn http_api_vipps_no_merchant_keys() {
    refused_unsent(Environment::Production, false).await;
}

#[tokio::test]
async fn http_apitest_vipps_no_merchant_keys() {
    refused_unsent(Environment::Test, false).await;
}

#[tokio::test]
async fn http_api_vipps_no_partner_keys() {
    refused_unsent(Environment::Production, true).await;
}

/// Partner keys exist in production only: for `http://apitest.vipps.no` there is
/// no partner keyring to build.
#[test]
fn partner_keys_for_apitest_are_refused_at_build() {
    let err = KeySet::partner(Environment::Test, "id", "secret", "sub-key").unwrap_err();
    assert_eq!(err, tower_vipps::KeyError::PartnerKeysInTest);
}
