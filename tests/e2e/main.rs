//! End to end: every failure of the common-errors FAQ (and of issue 5's list), made
//! the way a user makes it, sent through the whole stack to the emulator, over both
//! the tower path (`tower_vipps::layer(keyring)` over a hyper client) and the reqwest
//! path (`VippsMiddleware` in `reqwest_middleware`).
//!
//! One table, [`rows`]: each row says how the mistake is made (the user's keyring,
//! headers, body), what the stack must answer (refused unsent, or a diagnosed error
//! response or token error, with its cause), and exactly how many requests the
//! emulator saw per endpoint. Every row runs on a fresh emulator per path.
//!
//! Three stacks:
//! - [`Stack::Full`]: the preset. Auth writes `Authorization`,
//!   `Ocp-Apim-Subscription-Key` and the system headers itself, so the header
//!   mistakes cannot be made through it: those rows assert that the user's own bad
//!   header is replaced and the call succeeds.
//! - [`Stack::OwnTokens`]: a user who manages their own tokens (fetched with
//!   `TokenCache`/`TokenClient`) and sets the headers by hand, with
//!   `DiagnoseLayer` over `PreflightLayer` (keyring + the known tokens of their
//!   cache). This is where the header mistakes are refused.
//! - [`Stack::DiagnoseOnly`]: the same user without Preflight: the mistake goes out
//!   and the emulator's answer comes back diagnosed.
//!
//! Run `cargo test --all-features --test e2e -- --nocapture` to print the table.
#![cfg(all(feature = "emulator", feature = "reqwest"))]

mod client;
mod runner;
mod table;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_vipps::Environment::{self, Production, Test};
use tower_vipps::emulator::{
    self, Credentials, Emulator, Endpoint, NOT_LOGGED_IN_USER, PRODUCTION_MERCHANT,
    PRODUCTION_PARTNER, READY_USER, TEST_LOGIN_ONLY, TEST_MERCHANT, TEST_UNSUBSCRIBED,
    UNDER_15_USER, UNKNOWN_USER,
};
use tower_vipps::preflight::PreflightLayer;
use tower_vipps::reqwest::{ReqwestService, TowerMiddleware, VippsMiddleware, into_vipps_error};
use tower_vipps::token::{TokenCache, TokenClient, TokenRequest};
use tower_vipps::{Cause, DiagnoseLayer, KeySet, Keyring, Msn, Origin, SystemInfo, VippsError};

use Endpoint::{AccessToken, Capture, CreatePayment, GetPayment, Other, Refund};
use Expect::{Ok as Succeeds, Refused, Response, Token};
use Step::{CaptureAll, Create, ExpireTokens, Faults, OwnToken};
use client::*;
use table::*;

// ---------------------------------------------------------------------------
// The happy path.
// ---------------------------------------------------------------------------

async fn happy_path(path: Path) {
    let emu = Emulator::start().await.unwrap();
    let keyring = emu
        .keyring_builder()
        .key_set(TEST_MERCHANT.key_set())
        .system("acme-shop", "1.0.0")
        .build()
        .unwrap();
    let client = UserClient::new(&emu, path, Stack::Full, keyring);

    let (status, body) = client
        .send(&emu, create(READY_USER).msn(MSN))
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["reference"], REFERENCE);

    let (status, body) = client.send(&emu, get_payment(Test).msn(MSN)).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "AUTHORIZED");

    let (status, body) = client
        .send(&emu, modify("capture", 49_900).msn(MSN))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["aggregate"]["capturedAmount"]["value"], 49_900);

    let (status, body) = client
        .send(&emu, modify("refund", 10_000).msn(MSN))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["aggregate"]["refundedAmount"]["value"], 10_000);

    // The merchant's own MSN is added when the request lacks the header.
    let (status, _) = client.send(&emu, get_payment(Test)).await.unwrap();
    assert_eq!(status, 200);

    // Many more calls, one token.
    for _ in 0..20 {
        let (status, _) = client.send(&emu, get_payment(Test).msn(MSN)).await.unwrap();
        assert_eq!(status, 200);
    }
    let counts = emu.counts();
    assert_eq!(counts.get(AccessToken), 1, "{counts:?}");
    assert_eq!(counts.get(CreatePayment), 1, "{counts:?}");
    assert_eq!(counts.get(GetPayment), 22, "{counts:?}");
    assert_eq!(counts.get(Capture), 1, "{counts:?}");
    assert_eq!(counts.get(Refund), 1, "{counts:?}");
    assert_eq!(counts.total(), 26, "{counts:?}");

    // What went on the wire: the right headers, the same key and token throughout.
    let seen = emu.requests();
    let api: Vec<_> = seen.iter().filter(|r| r.endpoint != AccessToken).collect();
    assert_eq!(api.len(), 25);
    let auth = api[0].headers.get("authorization").unwrap();
    for request in &api {
        assert_eq!(request.headers.get("authorization"), Some(auth));
        assert_eq!(
            request.headers.get("ocp-apim-subscription-key").unwrap(),
            TEST_MERCHANT.subscription_key()
        );
        assert_eq!(
            request.headers.get("merchant-serial-number").unwrap(),
            "123456"
        );
        assert_eq!(
            request.headers.get("vipps-system-name").unwrap(),
            "acme-shop"
        );
        if request.method == Method::POST {
            assert!(request.headers.contains_key("idempotency-key"));
        }
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn happy_path_tower() {
    happy_path(Path::Tower).await;
}

#[tokio::test]
async fn happy_path_reqwest() {
    happy_path(Path::Reqwest).await;
}

/// Partner keys over 50 MSNs, two concurrent calls per MSN, then two more: exactly
/// one token per MSN, each call carrying its own MSN's token.
async fn partner_over_many_msns(path: Path) {
    let emu = Emulator::start().await.unwrap();
    let keyring = emu
        .keyring_builder()
        .key_set(PRODUCTION_PARTNER.key_set())
        .system("acme-platform", "2.0.0")
        .build()
        .unwrap();
    let client = UserClient::new(&emu, path, Stack::Full, keyring);
    let msns: Vec<u64> = (0..50).map(|i| PARTNER_MSN + i * 7).collect();
    // Two payments per MSN, all 100 created at once: both calls of an MSN wait for
    // the same token fetch.
    let references: Vec<(u64, String)> = msns
        .iter()
        .flat_map(|msn| ["a", "b"].map(|x| (*msn, format!("partner-order-{msn}-{x}"))))
        .collect();
    let creates = references.iter().map(|(msn, reference)| {
        let mut body = create_body(READY_USER);
        body["reference"] = json!(reference);
        client.send(
            &emu,
            Call::post(Production, "/epayment/v1/payments", body).msn(*msn),
        )
    });
    for answer in futures_util::future::join_all(creates).await {
        assert_eq!(answer.unwrap().0, 201);
    }
    let gets = references.iter().map(|(msn, reference)| {
        client.send(
            &emu,
            Call::get(Production, format!("/epayment/v1/payments/{reference}")).msn(*msn),
        )
    });
    for answer in futures_util::future::join_all(gets).await {
        let (status, body) = answer.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["state"], "AUTHORIZED");
    }
    let counts = emu.counts();
    assert_eq!(counts.get(AccessToken), 50, "{counts:?}");
    assert_eq!(counts.get(CreatePayment), 100, "{counts:?}");
    assert_eq!(counts.get(GetPayment), 100, "{counts:?}");
    assert_eq!(counts.total(), 250, "{counts:?}");

    // One token per MSN: fetched with that MSN's header, used only for it.
    let seen = emu.requests();
    let mut token_of = std::collections::HashMap::new();
    for request in seen.iter().filter(|r| r.endpoint != AccessToken) {
        let msn = request
            .headers
            .get("merchant-serial-number")
            .unwrap()
            .clone();
        let auth = request.headers.get("authorization").unwrap().clone();
        let minted = emu
            .minted_for(auth.to_str().unwrap().strip_prefix("Bearer ").unwrap())
            .expect("a token the emulator minted");
        assert_eq!(
            minted.msn.map(|m| m.to_string()).as_deref(),
            Some(msn.to_str().unwrap())
        );
        assert!(minted.partner);
        let previous = token_of.insert(msn, auth.clone());
        if let Some(previous) = previous {
            assert_eq!(previous, auth, "one token per MSN");
        }
    }
    assert_eq!(token_of.len(), 50);
    emu.shutdown().await;
}

#[tokio::test]
async fn partner_keys_over_50_msns_tower() {
    partner_over_many_msns(Path::Tower).await;
}

#[tokio::test]
async fn partner_keys_over_50_msns_reqwest() {
    partner_over_many_msns(Path::Reqwest).await;
}

/// The full stack cannot send a request without a subscription key: a keyring will
/// not hold keys without one.
#[test]
fn a_keyring_cannot_hold_keys_without_a_subscription_key() {
    let msn = Msn::new(MSN).unwrap();
    assert!(
        KeySet::merchant(
            Test,
            msn,
            TEST_MERCHANT.client_id(),
            TEST_MERCHANT.client_secret(),
            ""
        )
        .is_err()
    );
}
