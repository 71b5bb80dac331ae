//! AuthLayer over real HTTP on loopback: headers, refusals, stale-token replay, and
//! a property test that no request carries a token minted for something else.
mod common;
mod token_support;

use token_support::AssertClean;

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use proptest::prelude::*;
use token_support::{Known, VippsServer, merchant_keys, partner_keys, start};
use tower::{BoxError, ServiceExt};
use tower_vipps::token::TokenCache;
use tower_vipps::{AuthLayer, Cause, Environment, KeySet, Keyring, Msn};

type Client<B> =
    hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, B>;

fn client<B>() -> Client<B>
where
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new())
}

fn msn(n: u64) -> Msn {
    Msn::new(n).unwrap()
}

fn known(env: Environment, merchants: u64) -> Known {
    let mut known = Known::default();
    for i in 0..merchants {
        let (id, secret, key) = merchant_keys(env, i);
        known.keys.insert(id, (secret, key));
    }
    let (id, secret, key) = partner_keys(env);
    known.keys.insert(id, (secret, key));
    known
}

/// Test: merchants 0..5 own MSNs 1..=5, and no partner keys (partner keys exist
/// in production only).
/// Production: merchants 0..5 own MSNs 1..=5 too (same numbers, other keys);
/// partner keys listing MSNs 10..=30.
fn two_env_keyring(test: &VippsServer, prod: &VippsServer) -> Keyring {
    let mut b = Keyring::builder()
        .plaintext_host(Environment::Test, &test.authority())
        .plaintext_host(Environment::Production, &prod.authority())
        .system("tests", "1.0");
    for env in Environment::ALL {
        for i in 0..5 {
            let (id, secret, key) = merchant_keys(env, i);
            b = b.merchant(env, msn(1 + i), id, secret, key);
        }
    }
    let (id, secret, key) = partner_keys(Environment::Production);
    b = b.key_set(
        KeySet::partner(Environment::Production, id, secret, key)
            .unwrap()
            .connected_msns((10..=30).map(msn)),
    );
    b.build().unwrap()
}

fn expect_clients(server: &VippsServer, env: Environment) {
    for i in 0..5 {
        server.expect_msn(&(1 + i).to_string(), &merchant_keys(env, i).0);
    }
    for m in 10..=40 {
        server.expect_msn(&m.to_string(), &partner_keys(env).0);
    }
}

async fn servers() -> (VippsServer, VippsServer) {
    let test = start(Environment::Test, known(Environment::Test, 5)).await;
    let prod = start(Environment::Production, known(Environment::Production, 5)).await;
    expect_clients(&test, Environment::Test);
    expect_clients(&prod, Environment::Production);
    (test, prod)
}

fn post(server: &VippsServer, m: Option<u64>, body: &'static str) -> Request<Full<Bytes>> {
    let mut b = Request::post(format!("{}/epayment/v1/payments", server.base_url()));
    if let Some(m) = m {
        b = b.header("Merchant-Serial-Number", m.to_string());
    }
    b.body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sets_headers_sensitive_and_refuses_what_cannot_work() {
    let capture = token_support::tracing_capture();
    let (test, prod) = servers().await;
    let keyring = two_env_keyring(&test, &prod);
    // An inner service that records the request as it would be sent.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorder = {
        let seen = seen.clone();
        let http = client::<Full<Bytes>>();
        tower::service_fn(move |req: Request<Full<Bytes>>| {
            if req.uri().path() != "/accesstoken/get" {
                seen.lock().unwrap().push(req.headers().clone());
            }
            http.clone().oneshot(req)
        })
    };
    let svc = tower::ServiceBuilder::new()
        .layer(AuthLayer::new(keyring.clone()))
        .service(recorder);

    // MSN from the header.
    let res = svc
        .clone()
        .oneshot(post(&test, Some(3), "{}"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // MSN from an extension.
    let mut req = post(&prod, None, "{}");
    req.extensions_mut().insert(msn(12));
    let res = svc.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(body.starts_with(b"ok 12 "), "{body:?}");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        for h in seen.iter() {
            assert!(
                h["authorization"]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer eyJ")
            );
            assert!(h["authorization"].is_sensitive());
            assert!(h["ocp-apim-subscription-key"].is_sensitive());
            assert_eq!(h["vipps-system-name"], "tests");
            assert_eq!(h["vipps-system-version"], "1.0");
            assert_eq!(h["vipps-system-plugin-name"], "tower-vipps");
            assert!(h.contains_key("vipps-system-plugin-version"));
        }
        assert_eq!(seen[0]["merchant-serial-number"], "3");
        assert_eq!(
            seen[0]["ocp-apim-subscription-key"],
            merchant_keys(Environment::Test, 2).2.as_str()
        );
        assert_eq!(seen[1]["merchant-serial-number"], "12");
        assert_eq!(
            seen[1]["ocp-apim-subscription-key"],
            partner_keys(Environment::Production).2.as_str()
        );
    }
    assert_eq!(test.mismatches() + prod.mismatches(), 0);

    let refused = |req: Request<Full<Bytes>>| {
        let svc = svc.clone();
        async move { svc.oneshot(req).await.unwrap_err() }
    };
    let other_host = Request::get("http://127.0.0.1:9/epayment/v1/payments/x")
        .header("Merchant-Serial-Number", "3")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let cases = [
        (other_host, Cause::UnknownHost),
        (
            post(&prod, Some(3_000_000), "{}"),
            Cause::PartnerMsnNotConnected,
        ),
        // Several merchants and no partner keys in test: which one is meant?
        (post(&test, None, "{}"), Cause::NoKeysForMsn),
        // A partner MSN sent to the test host: its keys are production keys.
        (post(&test, Some(12), "{}"), Cause::WrongEnvironment),
        (post(&prod, None, "{}"), Cause::PartnerMissingMsnHeader),
        // The body field's name used as the header's: said as such, not as a
        // missing header.
        (
            Request::post(format!("{}/epayment/v1/payments", test.base_url()))
                .header("merchantSerialNumber", "12")
                .body(Full::new(Bytes::from_static(b"{}")))
                .unwrap(),
            Cause::MsnHeaderMisspelled,
        ),
        (
            Request::post(format!("{}/x", test.base_url()))
                .header("Merchant-Serial-Number", "12 34")
                .body(Full::new(Bytes::new()))
                .unwrap(),
            Cause::MalformedMsn,
        ),
    ];
    for (req, cause) in cases {
        let err = refused(req).await;
        assert!(err.is_refused(), "{err}");
        assert_eq!(err.cause(), cause, "{err}");
    }
    // Keys only in production for an MSN, request to the test host.
    let only_prod = Keyring::builder()
        .plaintext_host(Environment::Test, &test.authority())
        .plaintext_host(Environment::Production, &prod.authority())
        .merchant(
            Environment::Production,
            msn(7),
            "p",
            "SECRETX-p",
            "SUBKEYX-p",
        )
        .merchant(Environment::Test, msn(8), "t", "SECRETX-t", "SUBKEYX-t")
        .build()
        .unwrap();
    let svc2 = tower::ServiceBuilder::new()
        .layer(AuthLayer::new(only_prod))
        .service(client::<Full<Bytes>>());
    let err = svc2
        .clone()
        .oneshot(post(&test, Some(7), "{}"))
        .await
        .unwrap_err();
    assert_eq!(err.cause(), Cause::WrongEnvironment);
    let err = svc2.oneshot(post(&test, Some(9), "{}")).await.unwrap_err();
    assert_eq!(err.cause(), Cause::NoKeysForMsn);
    // Refusals sent nothing.
    assert_eq!(test.api_calls() + prod.api_calls(), 2);
    assert_eq!(test.fetches() + prod.fetches(), 2);
    capture.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_token_401_is_replayed_once_and_succeeds() {
    let capture = token_support::tracing_capture();
    let (test, prod) = servers().await;
    let svc = tower::ServiceBuilder::new()
        .layer(AuthLayer::new(two_env_keyring(&test, &prod)))
        .service(client::<Full<Bytes>>());
    let res = svc
        .clone()
        .oneshot(post(&test, Some(1), "first"))
        .await
        .unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let n: u64 = std::str::from_utf8(&body)
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // The gateway now rejects that token.
    test.state.revoked.lock().unwrap().insert(n);
    let res = svc
        .clone()
        .oneshot(post(&test, Some(1), "payload"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(body.starts_with(b"ok 1 "));
    assert_eq!(test.fetches(), 2);
    assert_eq!(test.api_calls(), 3);
    let bodies = test.state.bodies.lock().unwrap().clone();
    assert_eq!(
        bodies,
        vec![
            Bytes::from("first"),
            Bytes::from("payload"),
            Bytes::from("payload")
        ]
    );
    capture.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_401_is_returned_as_it_came() {
    let capture = token_support::tracing_capture();
    let (test, prod) = servers().await;
    test.state.revoke_all.store(true, Ordering::SeqCst);
    let svc = tower::ServiceBuilder::new()
        .layer(AuthLayer::new(two_env_keyring(&test, &prod)))
        .service(client::<Full<Bytes>>());
    let res = svc.oneshot(post(&test, Some(2), "payload")).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"Something went wrong, please try again later");
    assert_eq!(test.api_calls(), 2);
    assert_eq!(test.fetches(), 2);
    capture.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_key_401s_and_403s_are_never_replayed() {
    let capture = token_support::tracing_capture();
    let (test, prod) = servers().await;
    let svc = tower::ServiceBuilder::new()
        .layer(AuthLayer::new(two_env_keyring(&test, &prod)))
        .service(client::<Full<Bytes>>());
    let sub_key_401 = r#"{"statusCode":401,"message":"Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."}"#;
    for (status, body) in [(401, sub_key_401), (403, "")] {
        *test.state.api_status.lock().unwrap() = Some((status, body));
        let before = test.api_calls();
        let res = svc
            .clone()
            .oneshot(post(&test, Some(1), "x"))
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), status);
        let got = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&got[..], body.as_bytes());
        assert_eq!(test.api_calls(), before + 1);
    }
    assert_eq!(test.fetches(), 1);
    capture.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_body_is_never_replayed_nor_emptied() {
    let capture = token_support::tracing_capture();
    let (test, prod) = servers().await;
    test.state.revoke_all.store(true, Ordering::SeqCst);
    let svc = tower::ServiceBuilder::new()
        .layer(AuthLayer::new(two_env_keyring(&test, &prod)))
        .service(client::<BoxBody<Bytes, BoxError>>());
    let chunks = futures_util::stream::iter(
        ["stream-", "ed-", "body"]
            .map(|c| Ok::<_, BoxError>(http_body::Frame::data(Bytes::from_static(c.as_bytes())))),
    );
    let req = Request::post(format!("{}/epayment/v1/payments", test.base_url()))
        .header("Merchant-Serial-Number", "1")
        .body(BoxBody::new(StreamBody::new(chunks)))
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"Something went wrong, please try again later");
    assert_eq!(test.api_calls(), 1);
    assert_eq!(
        test.state.bodies.lock().unwrap().clone(),
        vec![Bytes::from_static(b"stream-ed-body")]
    );
    // The stale token was dropped: the next request fetches a new one.
    assert_eq!(test.fetches(), 1);
    capture.assert_clean();
}

#[derive(Clone, Debug)]
enum Op {
    Call {
        prod: bool,
        msn: u64,
    },
    Invalidate {
        prod: bool,
        msn: u64,
    },
    /// Lets tokens reach their hard expiry while requests are in flight.
    Pause {
        millis: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let msn = prop_oneof![1u64..=5, 10u64..=40];
    prop_oneof![
        20 => (any::<bool>(), msn.clone()).prop_map(|(prod, msn)| Op::Call { prod, msn }),
        5 => (any::<bool>(), msn).prop_map(|(prod, msn)| Op::Invalidate { prod, msn }),
        1 => (50u64..400).prop_map(|millis| Op::Pause { millis }),
    ]
}

#[test]
fn no_request_carries_a_token_minted_for_another_msn_key_set_or_environment() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let capture = token_support::tracing_capture();
    let (test, prod) = rt.block_on(servers());
    // One-second tokens and a buffer as long as their life: refreshes run all the
    // time, and pauses let tokens expire under waiting requests.
    test.state.expires_in.store(1, Ordering::SeqCst);
    prod.state.expires_in.store(1, Ordering::SeqCst);
    let cache = TokenCache::builder()
        .refresh_buffer(Duration::from_secs(1))
        .jitter(Duration::from_millis(300))
        .build();
    let keyring = two_env_keyring(&test, &prod);
    let svc = tower::ServiceBuilder::new()
        .layer(AuthLayer::new(keyring.clone()).with_cache(cache.clone()))
        .service(client::<Full<Bytes>>());
    let config = ProptestConfig {
        cases: 16,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in proptest::collection::vec(op(), 1..120))| {
        let failures = rt.block_on(async {
            let mut tasks = Vec::new();
            for op in ops {
                match op {
                    Op::Call { prod: p, msn: m } => {
                        let server = if p { &prod } else { &test };
                        let req = post(server, Some(m), "{}");
                        let svc = svc.clone();
                        tasks.push(tokio::spawn(async move {
                            let res = svc.oneshot(req).await?;
                            Ok::<_, tower_vipps::VippsError>(res.status())
                        }));
                    }
                    Op::Pause { millis } => {
                        tokio::time::sleep(Duration::from_millis(millis)).await;
                    }
                    Op::Invalidate { prod: p, msn: m } => {
                        let env = if p { Environment::Production } else { Environment::Test };
                        if let Some(keys) = keyring.find(env, Some(msn(m))) {
                            if let Some(token) = cache.cached(&keys, Some(msn(m))) {
                                cache.invalidate(&token);
                            }
                        }
                    }
                }
                tokio::task::yield_now().await;
            }
            let mut failures = Vec::new();
            for t in tasks {
                match t.await.unwrap() {
                    // MSNs 31..=40 are not connected to the partner: refused; the
                    // partner's MSNs have no keys in test (partner keys exist in
                    // production only): refused.
                    Err(e) if matches!(
                        e.cause(),
                        Cause::PartnerMsnNotConnected
                            | Cause::WrongEnvironment
                            | Cause::NoKeysForMsn
                    ) => {}
                    Ok(StatusCode::OK) => {}
                    other => failures.push(format!("{other:?}")),
                }
            }
            failures
        });
        prop_assert!(failures.is_empty(), "{failures:?}");
        prop_assert_eq!(test.mismatches() + prod.mismatches(), 0);
    });
    assert!(test.api_calls() + prod.api_calls() > 0);
    capture.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_keeps_the_msn_of_an_extension() {
    let capture = token_support::tracing_capture();
    let (test, prod) = servers().await;
    let svc = tower::ServiceBuilder::new()
        .layer(AuthLayer::new(two_env_keyring(&test, &prod)))
        .service(client::<String>());
    let request = |body: &str| {
        let mut req = Request::post(format!("{}/epayment/v1/payments", prod.base_url()))
            .body(body.to_owned())
            .unwrap();
        req.extensions_mut().insert(msn(12));
        req
    };
    let res = svc.clone().oneshot(request("one")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let n = prod.state.seen.lock().unwrap()[0].1;
    prod.state.revoked.lock().unwrap().insert(n);
    let res = svc.clone().oneshot(request("two")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let seen = prod.state.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|(m, _)| m.as_deref() == Some("12")));
    assert_eq!(seen[1].1, n);
    assert_ne!(seen[2].1, n);
    assert_eq!(prod.fetches(), 2);
    assert_eq!(prod.mismatches(), 0);
    capture.assert_clean();
}
