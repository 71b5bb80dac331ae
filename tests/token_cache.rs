//! TokenCache over a real HTTP token endpoint on loopback: one fetch per key,
//! refresh ahead without waiting, cancellation, failures and recovery.
mod common;
mod token_support;

use token_support::AssertClean;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use token_support::{Known, Mode, VippsServer, merchant_keys, partner_keys, start};
use tower::{Service, ServiceExt};
use tower_vipps::token::{
    AccessToken, KnownTokens, MemoryStore, TokenCache, TokenClient, TokenRequest, TokenStore,
};
use tower_vipps::{AuthLayer, Cause, Environment, KeySet, Keyring, Msn, Origin, SystemInfo};

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

fn client() -> Client {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new())
}

fn msn(n: u64) -> Msn {
    Msn::new(n).unwrap()
}

/// A keyring with `merchants` merchant key sets (MSNs 100001..) and partner keys
/// listing MSNs 200001.., in `env`, with the server's host registered.
fn keyring(server: &VippsServer, env: Environment, merchants: u64, partner_msns: u64) -> Keyring {
    let mut builder = Keyring::builder().plaintext_host(env, &server.authority());
    for i in 0..merchants {
        let (id, secret, key) = merchant_keys(env, i);
        builder = builder.merchant(env, msn(100_001 + i), id, secret, key);
    }
    if partner_msns > 0 {
        let (id, secret, key) = partner_keys(env);
        let keys = KeySet::partner(env, id, secret, key)
            .unwrap()
            .connected_msns((0..partner_msns).map(|i| msn(200_001 + i)));
        builder = builder.key_set(keys);
    }
    builder.build().unwrap()
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

/// An inner API service that answers in-process, echoing the headers it got.
type Echo = tower::util::BoxCloneSyncService<
    Request<Full<Bytes>>,
    Response<Full<Bytes>>,
    std::convert::Infallible,
>;

fn echo() -> Echo {
    Echo::new(tower::service_fn(|req: Request<Full<Bytes>>| async move {
        let auth = req
            .headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        Ok(Response::new(Full::new(Bytes::from(auth))))
    }))
}

fn api_request(server: &VippsServer, msn: Msn) -> Request<Full<Bytes>> {
    Request::get(format!(
        "{}/epayment/v1/payments/ref-12345678",
        server.base_url()
    ))
    .header("Merchant-Serial-Number", msn.to_string())
    .body(Full::new(Bytes::new()))
    .unwrap()
}

async fn bearer_of(
    res: Response<impl http_body::Body<Data = Bytes, Error = impl std::fmt::Debug>>,
) -> String {
    let body = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

fn token_n(bearer: &str) -> u64 {
    let token = bearer.strip_prefix("Bearer ").expect("a Bearer token");
    token_support::decode(token).unwrap()["n"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_requests_over_a_thousand_cold_msns_fetch_a_thousand_times() {
    let capture = token_support::tracing_capture();
    let env = Environment::Test;
    let server = start(env, known(env, 1000)).await;
    let keyring = keyring(&server, env, 1000, 0);
    let auth = AuthLayer::new(keyring).token_service(client());
    let svc = tower::ServiceBuilder::new().layer(auth).service(echo());
    let mut tasks = Vec::new();
    for i in 0..10_000u64 {
        let mut svc = svc.clone();
        let req = api_request(&server, msn(100_001 + i % 1000));
        tasks.push(tokio::spawn(async move {
            let res = svc.ready().await.unwrap().call(req).await.unwrap();
            (i % 1000, bearer_of(res).await)
        }));
    }
    let mut per_msn = std::collections::HashMap::<u64, u64>::new();
    for task in tasks {
        let (m, bearer) = task.await.unwrap();
        let n = token_n(&bearer);
        // Every request for one MSN carries the same token.
        assert_eq!(*per_msn.entry(m).or_insert(n), n);
        let payload = token_support::decode(bearer.strip_prefix("Bearer ").unwrap()).unwrap();
        assert_eq!(payload["msn"], (100_001 + m).to_string());
    }
    assert_eq!(per_msn.len(), 1000);
    assert_eq!(server.fetches(), 1000);
    capture.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_inside_the_refresh_buffer_do_not_wait_for_the_refresh() {
    let capture = token_support::tracing_capture();
    let env = Environment::Test;
    let server = start(env, known(env, 1)).await;
    let keyring = keyring(&server, env, 1, 0);
    // A buffer as long as the token's life: every token is due for refresh at once,
    // and stays valid for an hour.
    let cache = TokenCache::builder()
        .refresh_buffer(Duration::from_secs(3600))
        .jitter(Duration::ZERO)
        .hard_expiry_wait(Duration::from_secs(30))
        .fetch_timeout(Duration::from_secs(60))
        .build();
    let auth = AuthLayer::new(keyring)
        .with_cache(cache.clone())
        .token_service(client());
    let svc = tower::ServiceBuilder::new().layer(auth).service(echo());
    let m = msn(100_001);
    let first =
        token_n(&bearer_of(svc.clone().oneshot(api_request(&server, m)).await.unwrap()).await);
    assert_eq!(server.fetches(), 1);

    // From now on the endpoint takes 2 s and then waits for the gate.
    server.set_delay(Duration::from_secs(2));
    server.close_gate();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let svc = svc.clone();
        let req = api_request(&server, m);
        tasks.push(tokio::spawn(async move {
            token_n(&bearer_of(svc.oneshot(req).await.unwrap()).await)
        }));
    }
    for task in tasks {
        // They complete while the refresh is held at the gate: none waited for it.
        assert_eq!(task.await.unwrap(), first);
    }
    // Exactly one background refresh was started.
    server.wait_fetches(2).await;
    assert_eq!(cache.fetches(), 2);
    server.open_gate();
    // Once it lands, requests carry the new token.
    loop {
        let n =
            token_n(&bearer_of(svc.clone().oneshot(api_request(&server, m)).await.unwrap()).await);
        if n != first {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(server.fetches() >= 2);
    capture.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_caller_that_started_a_fetch_neither_stalls_nor_repeats_it() {
    let capture = token_support::tracing_capture();
    let env = Environment::Test;
    let server = start(env, known(env, 1)).await;
    let keyring = keyring(&server, env, 1, 0);
    let cache = TokenCache::builder()
        .hard_expiry_wait(Duration::from_secs(60))
        .build();
    let auth = AuthLayer::new(keyring)
        .with_cache(cache.clone())
        .token_service(client());
    let svc = tower::ServiceBuilder::new().layer(auth).service(echo());
    let m = msn(100_001);
    server.close_gate();
    let starter = tokio::spawn(svc.clone().oneshot(api_request(&server, m)));
    server.wait_fetches(1).await;
    starter.abort();
    assert!(starter.await.unwrap_err().is_cancelled());
    let mut waiters = Vec::new();
    for _ in 0..50 {
        waiters.push(tokio::spawn(svc.clone().oneshot(api_request(&server, m))));
    }
    server.open_gate();
    let mut seen = std::collections::HashSet::new();
    for w in waiters {
        seen.insert(token_n(&bearer_of(w.await.unwrap().unwrap()).await));
    }
    assert_eq!(seen.len(), 1);
    assert_eq!(server.fetches(), 1);
    assert_eq!(cache.fetches(), 1);
    capture.assert_clean();
}

async fn failure_then_recovery(mode: Mode, expected: Cause) {
    let capture = token_support::tracing_capture();
    let env = Environment::Test;
    let server = start(env, known(env, 1)).await;
    let keyring = keyring(&server, env, 1, 0);
    let wait = Duration::from_millis(400);
    let cache = TokenCache::builder()
        .hard_expiry_wait(wait)
        .fetch_timeout(wait)
        .failure_backoff(Duration::from_millis(100))
        .build();
    let auth = AuthLayer::new(keyring)
        .with_cache(cache.clone())
        .token_service(client());
    let svc = tower::ServiceBuilder::new().layer(auth).service(echo());
    let m = msn(100_001);
    server.set_mode(mode);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        tasks.push(tokio::spawn(svc.clone().oneshot(api_request(&server, m))));
    }
    for task in tasks {
        // A liveness guard only (no timing assertion): the bound is `wait`.
        let err = tokio::time::timeout(wait * 25, task)
            .await
            .expect("a waiter hung")
            .unwrap()
            .unwrap_err();
        assert_eq!(err.cause(), expected, "{mode:?}: {err}");
        assert!(
            matches!(err.origin(), Origin::Token(_)),
            "{mode:?}: {err:?}"
        );
        assert!(!err.diagnosis().evidence().is_empty() || err.status().is_some());
        assert_eq!(err.context().msn, Some(m));
        let text = format!("{err} {err:?}");
        assert!(
            !text.contains("SECRETX") && !text.contains("SUBKEYX"),
            "{text}"
        );
    }
    // One fetch served all 20 waiters (a closed connection may be retried by the
    // client, which never reaches the handler).
    assert!(server.fetches() <= 1, "{mode:?}: {}", server.fetches());
    assert_eq!(cache.fetches(), 1, "{mode:?}");
    server.set_mode(Mode::Ok);
    // Past the backoff (and the timeout of a hung fetch), the next request works.
    tokio::time::sleep(wait + Duration::from_millis(200)).await;
    let res = svc.clone().oneshot(api_request(&server, m)).await.unwrap();
    let bearer = bearer_of(res).await;
    assert!(bearer.starts_with("Bearer "));
    assert_eq!(cache.fetches(), 2);
    capture.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_500_then_recovery() {
    failure_then_recovery(Mode::Status500, Cause::ServerError).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_garbage_then_recovery() {
    failure_then_recovery(Mode::Garbage, Cause::InvalidTokenResponse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_hangs_then_recovery() {
    failure_then_recovery(Mode::Hang, Cause::Timeout).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_closes_connection_then_recovery() {
    // The server closes the connection after reading the request: a reset after
    // the request was sent.
    failure_then_recovery(Mode::Close, Cause::ResetAfterSent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_diagnosed() {
    let capture = token_support::tracing_capture();
    let env = Environment::Test;
    let server = start(env, known(env, 1)).await;
    let (id, _, key) = merchant_keys(env, 0);
    let keys = KeySet::merchant(env, msn(100_001), id, "SECRETX-wrong", key).unwrap();
    let req = TokenRequest::new(keys, None, SystemInfo::default())
        .base(&server.base_url().parse().unwrap())
        .allow_plaintext(true);
    let err = TokenCache::new()
        .get(&TokenClient::new(client()), &req)
        .await
        .unwrap_err();
    assert_eq!(err.cause(), Cause::InvalidClientCredentials);
    assert_eq!(err.status(), Some(http::StatusCode::UNAUTHORIZED));
    capture.assert_clean();
}

fn token_for(env: Environment, m: Option<Msn>, partner: bool, value: &str) -> AccessToken {
    let minted_for = tower_vipps::token::MintedFor {
        environment: env,
        client_id: Arc::from("cid"),
        subscription_key: token_support::fp("SUBKEYX-k"),
        msn: m,
        partner,
    };
    AccessToken::new(value, Duration::from_secs(3600), minted_for).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidate_drops_only_that_token_and_known_tokens_answers() {
    let capture = token_support::tracing_capture();
    let env = Environment::Test;
    let server = start(env, known(env, 1)).await;
    let keyring = keyring(&server, env, 1, 0);
    let keys = keyring.find(env, Some(msn(100_001))).unwrap();
    let cache = TokenCache::new();
    let client = TokenClient::new(client());
    let req = TokenRequest::new(keys.clone(), None, SystemInfo::default())
        .base(&server.base_url().parse().unwrap())
        .allow_plaintext(true);
    let first = cache.get(&client, &req).await.unwrap();
    let value = first.secret().expose().to_owned();
    let minted = cache.minted_for(&value).unwrap();
    assert_eq!(minted.msn, Some(msn(100_001)));
    assert_eq!(minted.environment, env);
    assert_eq!(minted.subscription_key, keys.subscription_key_fingerprint());
    assert!(!minted.partner);
    assert!(cache.minted_for("eyJhbGciOi.not.known").is_none());
    // The cache's own value (and its clones) is recognised by identity; an equal
    // value built by hand is not (it goes through `minted_for`, every check).
    let own = first.authorization().clone();
    assert!(
        cache
            .identify(&own, &keys, None)
            .is_some_and(|t| t.same_token(&first))
    );
    let by_hand = http::HeaderValue::from_str(&format!("Bearer {value}")).unwrap();
    assert_eq!(by_hand, own);
    assert!(cache.identify(&by_hand, &keys, None).is_none());
    // A token that is not the cached one is not dropped.
    assert!(!cache.invalidate(&token_for(env, Some(msn(100_001)), false, "eyJhbGci.x.y")));
    assert!(cache.cached(&keys, None).is_some());
    assert!(cache.invalidate(&first));
    assert!(cache.cached(&keys, None).is_none());
    assert!(cache.minted_for(&value).is_none());
    assert!(cache.identify(&own, &keys, None).is_none());
    let second = cache.get(&client, &req).await.unwrap();
    assert!(!second.same_token(&first));
    // Invalidating the old token again leaves the new one.
    assert!(!cache.invalidate(&first));
    assert!(cache.cached(&keys, None).unwrap().same_token(&second));
    assert_eq!(server.fetches(), 2);
    capture.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_entries_are_evicted() {
    // Partner keys exist in production only.
    let env = Environment::Production;
    let server = start(env, known(env, 0)).await;
    let keyring = keyring(&server, env, 0, 300);
    let cache = TokenCache::builder()
        .idle_eviction(Duration::from_secs(1))
        .build();
    let auth = AuthLayer::new(keyring)
        .with_cache(cache.clone())
        .token_service(client());
    let svc = tower::ServiceBuilder::new().layer(auth).service(echo());
    for i in 0..300 {
        svc.clone()
            .oneshot(api_request(&server, msn(200_001 + i)))
            .await
            .unwrap();
    }
    // One token per MSN for partner keys.
    assert_eq!(server.fetches(), 300);
    assert_eq!(cache.len(), 300);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(cache.evict_idle(), 300);
    assert!(cache.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_serves_a_second_cache_without_a_fetch() {
    let env = Environment::Test;
    let server = start(env, known(env, 1)).await;
    let keyring = keyring(&server, env, 1, 0);
    let keys = keyring.find(env, Some(msn(100_001))).unwrap();
    let store = Arc::new(MemoryStore::new());
    let a = TokenCache::builder().store(store.clone()).build();
    let b = TokenCache::builder().store(store.clone()).build();
    let client = TokenClient::new(client());
    let req = TokenRequest::new(keys, None, SystemInfo::default())
        .base(&server.base_url().parse().unwrap())
        .allow_plaintext(true);
    let ta = a.get(&client, &req).await.unwrap();
    let tb = b.get(&client, &req).await.unwrap();
    assert!(ta.same_token(&tb));
    assert_eq!(server.fetches(), 1);
    assert_eq!(store.len(), 1);
    assert!(b.invalidate(&tb));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(store.get(&tb.minted_for()).await.is_none());
}

#[test]
fn debug_output_redacts_secrets() {
    let env = Environment::Test;
    let keys = KeySet::merchant(env, msn(123456), "cid-1234", "SECRETX-1", "SUBKEYX-1").unwrap();
    let keyring = Keyring::builder().key_set(keys.clone()).build().unwrap();
    let token = token_for(
        env,
        Some(msn(123456)),
        false,
        "eyJhbGciOiJub25lIn0.eyJuIjoxfQ.c2ln",
    );
    let cache = TokenCache::new();
    let layer = AuthLayer::new(keyring.clone()).with_cache(cache.clone());
    let svc = tower::Layer::layer(&layer, echo());
    let req = TokenRequest::new(keys, None, SystemInfo::default());
    let text = format!(
        "{token:?} {cache:?} {layer:?} {svc:?} {req:?} {:?} {:?} {:?} {:?}",
        token.minted_for(),
        TokenClient::new(client()),
        MemoryStore::new(),
        TokenCache::builder(),
    );
    for needle in ["SECRETX", "SUBKEYX", "eyJhbGci", "c2ln"] {
        assert!(!text.contains(needle), "{needle} in {text}");
    }
    assert!(token.authorization().is_sensitive());
}

/// A caller's `Duration::MAX` fetch timeout is "no limit", not an overflow that
/// panics the fetch task and leaves the key waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unbounded_fetch_timeout_fetches() {
    let env = Environment::Test;
    let server = start(env, known(env, 1)).await;
    let keyring = keyring(&server, env, 1, 0);
    let cache = TokenCache::builder()
        .fetch_timeout(Duration::MAX)
        .hard_expiry_wait(Duration::MAX)
        .build();
    let auth = AuthLayer::new(keyring)
        .with_cache(cache)
        .token_service(client());
    let svc = tower::ServiceBuilder::new().layer(auth).service(echo());
    for _ in 0..2 {
        let res = svc
            .clone()
            .oneshot(api_request(&server, msn(100_001)))
            .await
            .unwrap();
        assert!(bearer_of(res).await.starts_with("Bearer "));
    }
    assert_eq!(server.fetches(), 1);
}

/// Listed partner keys with one token shared by every MSN: a listed MSN is served
/// from the cache (no wait, no fetch) and the token is refreshed ahead of expiry,
/// whichever MSN fetched it; an unlisted MSN is still refused unsent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_partner_token_serves_every_listed_msn_and_is_refreshed() {
    let env = Environment::Production;
    let server = start(env, known(env, 0)).await;
    let keyring = keyring(&server, env, 0, 3);
    // Due for refresh at once, valid for an hour.
    let cache = TokenCache::builder()
        .share_partner_tokens(true)
        .refresh_buffer(Duration::from_secs(3600))
        .jitter(Duration::ZERO)
        .build();
    let auth = AuthLayer::new(keyring)
        .with_cache(cache.clone())
        .token_service(client());
    let svc = tower::ServiceBuilder::new().layer(auth).service(echo());
    let first = bearer_of(
        svc.clone()
            .oneshot(api_request(&server, msn(200_001)))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(server.fetches(), 1);
    // Another listed MSN: the shared token, and the refresh it is due for starts.
    let second = bearer_of(
        svc.clone()
            .oneshot(api_request(&server, msn(200_002)))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(token_n(&second), token_n(&first));
    tokio::time::timeout(Duration::from_secs(10), server.wait_fetches(2))
        .await
        .expect("the shared token is refreshed ahead of expiry");
    // Not listed: refused before sending, whatever the cache holds.
    let err = svc
        .clone()
        .oneshot(api_request(&server, msn(200_099)))
        .await
        .unwrap_err();
    assert_eq!(err.cause(), Cause::PartnerMsnNotConnected);
}

/// `TokenCache::get` with shared partner tokens fetches the shared token (no MSN
/// header), whatever MSN the request names: a token fetched for one MSN is never
/// cached as every MSN's.
#[tokio::test]
async fn get_fetches_the_shared_partner_token_without_an_msn() {
    let env = Environment::Production;
    let server = start(env, known(env, 0)).await;
    let keyring = keyring(&server, env, 0, 3);
    let keys = keyring.key_sets().next().unwrap().clone();
    let cache = TokenCache::builder().share_partner_tokens(true).build();
    let request = TokenRequest::new(keys, Some(msn(200_001)), keyring.system().clone())
        .base(&format!("{}/", server.base_url()).parse().unwrap())
        .allow_plaintext(true);
    let token = cache
        .get(&TokenClient::new(client()), &request)
        .await
        .unwrap();
    assert_eq!(token.minted_for().msn, None);
    assert_eq!(
        token_support::decode(token.secret().expose()).unwrap()["msn"],
        serde_json::Value::Null
    );
}
