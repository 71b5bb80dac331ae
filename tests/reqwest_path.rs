//! The reqwest path (`VippsMiddleware`) under the faults the tower path survives,
//! over real loopback HTTP: a hung attempt, a cancelled caller that started a token
//! fetch, background refreshes started by finished calls, redirects from the token
//! endpoint and from an API, and reqwest-retry next to the middleware.
#![cfg(all(feature = "reqwest", feature = "emulator"))]

mod common;
mod token_support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{SeenRequest, Server, serve};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use token_support::{Known, VippsServer, merchant_keys, mint, start};
use tower_vipps::reqwest::{ReqwestService, VippsMiddleware, into_vipps_error, vipps_error};
use tower_vipps::retry::RetryPolicy;
use tower_vipps::token::TokenCache;
use tower_vipps::{Cause, Environment, Keyring, Msn, Origin, VippsError};

const ENV: Environment = Environment::Test;
/// `RetryPolicy::new()`'s retries.
const DEFAULT_RETRIES: usize = 3;
/// A bound on waits that should end at once; reaching it fails the test (no timing
/// is asserted).
const PATIENCE: Duration = Duration::from_secs(20);

fn msn(i: u64) -> Msn {
    Msn::new(100_001 + i).unwrap()
}

/// `merchants` merchant key sets (MSNs 100001..) for the server at `authority`.
fn keyring(authority: &str, merchants: u64) -> Keyring {
    let mut builder = Keyring::builder()
        .plaintext_host(ENV, authority)
        .system("acme-shop", "1.0.0");
    for i in 0..merchants {
        let (id, secret, key) = merchant_keys(ENV, i);
        builder = builder.merchant(ENV, msn(i), id, secret, key);
    }
    builder.build().unwrap()
}

fn known(merchants: u64) -> Known {
    let mut known = Known::default();
    for i in 0..merchants {
        let (id, secret, key) = merchant_keys(ENV, i);
        known.keys.insert(id, (secret, key));
    }
    known
}

/// The dev-dependency reqwest has `rustls-no-provider` (ring, no aws-lc): a
/// process-wide provider must be installed before a client is built.
fn ring_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The user's client: reqwest's defaults (which follow redirects) and `layer`.
fn client(layer: tower_vipps::VippsLayer) -> ClientWithMiddleware {
    ring_provider();
    let client = ReqwestService::new(reqwest::Client::builder()).unwrap();
    ClientBuilder::new(reqwest::Client::new())
        .with(VippsMiddleware::from_layer(layer, client))
        .build()
}

async fn get(client: &ClientWithMiddleware, base: &str, m: Msn) -> Result<String, VippsError> {
    let response = client
        .get(format!("{base}/epayment/v1/payments/acme-order-0001"))
        .header("Merchant-Serial-Number", m.to_string())
        .send()
        .await
        .map_err(|e| into_vipps_error(e).unwrap_or_else(|e| panic!("not a VippsError: {e:?}")))?;
    assert!(response.status().is_success(), "{}", response.status());
    Ok(response.text().await.unwrap())
}

/// The token number in the token_support server's answer `ok {msn} {n}`.
fn token_n(answer: &str) -> u64 {
    answer.rsplit(' ').next().unwrap().parse().unwrap()
}

/// A token endpoint answer for `request` (the keys of merchant 0).
fn token_answer(request: &SeenRequest) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (id, _, key) = merchant_keys(ENV, 0);
    let token = mint(
        ENV,
        &id,
        &key,
        header("merchant-serial-number").as_deref(),
        1,
    );
    let body =
        serde_json::json!({"token_type": "Bearer", "expires_in": "3600", "access_token": token});
    common::respond(200, "application/json", body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_first_attempt_is_retried_and_succeeds() {
    // Real clock: the first API attempt never gets an answer; the 1 s per-attempt
    // deadline ends it, and the retry goes to the wire and succeeds.
    let api_hits = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(AtomicUsize::new(0));
    let (hits, fetches) = (api_hits.clone(), tokens.clone());
    let server = serve(move |request: SeenRequest| {
        let (hits, fetches) = (hits.clone(), fetches.clone());
        async move {
            if request.uri().path() == "/accesstoken/get" {
                fetches.fetch_add(1, Ordering::SeqCst);
                return token_answer(&request);
            }
            if hits.fetch_add(1, Ordering::SeqCst) == 0 {
                std::future::pending::<()>().await;
            }
            common::respond(200, "application/json", "{}")
        }
    })
    .await;
    let layer = tower_vipps::layer(keyring(&server.authority(), 1))
        .attempt_timeout(Duration::from_secs(1))
        .retry(
            RetryPolicy::new()
                .base_delay(Duration::from_millis(10))
                .max_delay(Duration::from_millis(10)),
        );
    let client = client(layer);
    let answer = tokio::time::timeout(PATIENCE, get(&client, &server.base_url(), msn(0)))
        .await
        .expect("the call ends")
        .expect("attempt 2 succeeds");
    assert_eq!(answer, "{}");
    assert_eq!(api_hits.load(Ordering::SeqCst), 2);
    assert_eq!(tokens.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_caller_that_started_a_fetch_leaves_35_waiters_one_token() {
    let server = start(ENV, known(1)).await;
    // No token client of its own: token requests go through the stack's client.
    let cache = TokenCache::builder()
        .hard_expiry_wait(Duration::from_secs(60))
        .build();
    let layer = tower_vipps::layer(keyring(&server.authority(), 1)).token_cache(cache.clone());
    let client = client(layer);
    let base = server.base_url();
    server.close_gate();
    let starter = tokio::spawn({
        let (client, base) = (client.clone(), base.clone());
        async move { get(&client, &base, msn(0)).await }
    });
    tokio::time::timeout(PATIENCE, server.wait_fetches(1))
        .await
        .expect("the fetch reached the token endpoint");
    starter.abort();
    assert!(starter.await.unwrap_err().is_cancelled());
    let waiters: Vec<_> = (0..35)
        .map(|_| {
            let (client, base) = (client.clone(), base.clone());
            tokio::spawn(async move { get(&client, &base, msn(0)).await })
        })
        .collect();
    server.open_gate();
    let mut seen = HashSet::new();
    for waiter in waiters {
        let answer = tokio::time::timeout(PATIENCE, waiter)
            .await
            .expect("every waiter ends")
            .unwrap()
            .expect("every waiter gets the token");
        seen.insert(token_n(&answer));
    }
    assert_eq!(seen.len(), 1, "one token for all: {seen:?}");
    assert_eq!(server.fetches(), 1);
    assert_eq!(cache.fetches(), 1);
    assert_eq!(server.api_calls(), 35);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_background_refresh_reaches_the_token_endpoint() {
    const MERCHANTS: u64 = 12;
    let server = start(ENV, known(MERCHANTS)).await;
    // Every token is due for refresh as soon as it is fetched, and stays valid.
    let cache = TokenCache::builder()
        .refresh_buffer(Duration::from_secs(3600))
        .jitter(Duration::ZERO)
        .build();
    let layer =
        tower_vipps::layer(keyring(&server.authority(), MERCHANTS)).token_cache(cache.clone());
    let client = client(layer);
    let base = server.base_url();
    let mut first = HashMap::new();
    for i in 0..MERCHANTS {
        first.insert(i, token_n(&get(&client, &base, msn(i)).await.unwrap()));
    }
    assert_eq!(server.fetches(), MERCHANTS as usize);

    // Each of these calls starts a refresh and ends at once with the old token; the
    // refreshes are held at the gate, after the server has counted them.
    server.close_gate();
    let calls: Vec<_> = (0..MERCHANTS)
        .map(|i| {
            let (client, base) = (client.clone(), base.clone());
            tokio::spawn(async move { token_n(&get(&client, &base, msn(i)).await.unwrap()) })
        })
        .collect();
    for (i, call) in calls.into_iter().enumerate() {
        assert_eq!(call.await.unwrap(), first[&(i as u64)]);
    }
    // Every call that started a refresh has finished; every refresh arrives.
    tokio::time::timeout(PATIENCE, server.wait_fetches(2 * MERCHANTS as usize))
        .await
        .unwrap_or_else(|_| {
            let refreshes = server.fetches() - MERCHANTS as usize;
            panic!("{refreshes} of {MERCHANTS} refreshes reached the endpoint")
        });
    // One refresh per key, no more (each is held at the gate).
    assert_eq!(server.fetches(), 2 * MERCHANTS as usize);
    assert_eq!(cache.fetches(), 2 * MERCHANTS);
    server.open_gate();
    for i in 0..MERCHANTS {
        tokio::time::timeout(PATIENCE, async {
            while token_n(&get(&client, &base, msn(i)).await.unwrap()) == first[&i] {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the refreshed token is used");
    }
}

// ---------------------------------------------------------------------------
// Redirects: credentials never follow one.
// ---------------------------------------------------------------------------

/// The other host: counts the requests that reach it and keeps their header names.
async fn redirect_target() -> (Server, Arc<Mutex<Vec<Vec<String>>>>) {
    let seen: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let record = seen.clone();
    let server = serve(move |request: SeenRequest| {
        record.lock().unwrap().push(
            request
                .headers()
                .keys()
                .map(|name| name.as_str().to_owned())
                .collect(),
        );
        async move { token_answer(&request) }
    })
    .await;
    (server, seen)
}

/// The headers that must never reach another host.
const GUARDED: [&str; 7] = [
    "client_id",
    "client_secret",
    "ocp-apim-subscription-key",
    "authorization",
    "merchant-serial-number",
    "vipps-system-name",
    "vipps-system-version",
];

/// A Vipps host answering `307` to `target` on `redirected` paths, tokens otherwise.
async fn redirecting(target: String, redirected: &'static str) -> Server {
    serve(move |request: SeenRequest| {
        let location = format!("{target}{}", request.uri().path());
        async move {
            if request.uri().path().starts_with(redirected) {
                let mut response = common::respond(307, "text/plain", "");
                response
                    .headers_mut()
                    .insert("location", location.parse().unwrap());
                return response;
            }
            token_answer(&request)
        }
    })
    .await
}

async fn assert_redirect_refused(redirected: &'static str, origin_is_token: bool) {
    let (target, seen) = redirect_target().await;
    let vipps = redirecting(target.base_url(), redirected).await;
    // reqwest's default builder follows up to 10 redirects; the middleware's client
    // does not.
    let client = client(tower_vipps::layer(keyring(&vipps.authority(), 1)));
    let err = get(&client, &vipps.base_url(), msn(0))
        .await
        .expect_err("a redirect is an error, not the other host's answer");
    assert_eq!(err.cause(), Cause::UnexpectedRedirect, "{err}");
    assert_eq!(err.cause().code(), "vipps::unexpected_redirect");
    assert_eq!(
        matches!(err.origin(), Origin::Token(_)),
        origin_is_token,
        "{err}"
    );
    assert_eq!(err.status(), Some(http::StatusCode::TEMPORARY_REDIRECT));
    let reached = seen.lock().unwrap().clone();
    assert!(reached.is_empty(), "the redirect target got {reached:?}");

    // Control: the same request through a plain reqwest client that follows
    // redirects does reach the target with the subscription key and the MSN, so
    // the count above would have seen a leak.
    let (_, _, key) = merchant_keys(ENV, 0);
    let leaked = reqwest::Client::new()
        .post(format!("{}{redirected}", vipps.base_url()))
        .header("ocp-apim-subscription-key", key)
        .header("merchant-serial-number", msn(0).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(leaked.url().port(), Some(target.addr.port()));
    let reached = seen.lock().unwrap().clone();
    assert_eq!(reached.len(), 1);
    assert!(
        GUARDED
            .iter()
            .filter(|h| reached[0].iter().any(|r| r == *h))
            .count()
            == 2
    );
}

#[tokio::test]
async fn a_redirect_from_the_token_endpoint_sends_nothing_to_the_target() {
    assert_redirect_refused("/accesstoken/get", true).await;
}

#[tokio::test]
async fn a_redirect_from_an_api_sends_nothing_to_the_target() {
    assert_redirect_refused("/epayment/", false).await;
}

// ---------------------------------------------------------------------------
// vipps_error, however deeply wrapped; reqwest-retry before the middleware.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn reqwest_retry_before_the_middleware_keeps_the_vipps_error_findable() {
    use reqwest_retry::RetryTransientMiddleware;
    use reqwest_retry::policies::ExponentialBackoff;

    let server: VippsServer = start(ENV, known(1)).await;
    *server.state.api_status.lock().unwrap() = Some((503, r#"{"title":"unavailable"}"#));
    let stack = tower_vipps::layer(keyring(&server.authority(), 1)).retry(
        RetryPolicy::new()
            .base_delay(Duration::from_millis(1))
            .max_delay(Duration::from_millis(1)),
    );
    ring_provider();
    let retry = RetryTransientMiddleware::new_with_policy(
        ExponentialBackoff::builder()
            .retry_bounds(Duration::from_millis(1), Duration::from_millis(1))
            .build_with_max_retries(3),
    );
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(retry)
        .with(VippsMiddleware::from_layer(
            stack,
            ReqwestService::new(reqwest::Client::builder()).unwrap(),
        ))
        .build();
    let err = client
        .get(format!(
            "{}/epayment/v1/payments/acme-order-0001",
            server.base_url()
        ))
        .header("Merchant-Serial-Number", msn(0).to_string())
        .send()
        .await
        .expect_err("503 every time");
    // reqwest-retry wraps our error (and does not retry it: a middleware error is
    // fatal to it), so only the stack's own retries were made: 1 + 3 (default).
    let found = vipps_error(&err).expect("found through reqwest-retry's wrapper");
    assert_eq!(found.cause(), Cause::ServerError);
    assert_eq!(found.status(), Some(http::StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(server.api_calls(), 1 + DEFAULT_RETRIES);
    // Display of the outer error still says what happened.
    assert!(err.to_string().contains("vipps::server_error"), "{err}");
}

#[test]
fn vipps_error_finds_it_however_deeply_wrapped() {
    use tower_vipps::Diagnosis;

    let vipps = || VippsError::refused(Diagnosis::new(Cause::UnknownHost));
    let direct = reqwest_middleware::Error::Middleware(anyhow::Error::new(vipps()));
    assert_eq!(
        vipps_error(&direct).map(VippsError::cause),
        Some(Cause::UnknownHost)
    );

    // anyhow contexts on top.
    let context = reqwest_middleware::Error::Middleware(
        anyhow::Error::new(vipps()).context("one").context("two"),
    );
    assert!(vipps_error(&context).is_some());

    // A std error whose source is a `reqwest_middleware::Error` holding it.
    #[derive(Debug)]
    struct Outer(reqwest_middleware::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("outer")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    let nested = reqwest_middleware::Error::Middleware(anyhow::Error::new(Outer(
        reqwest_middleware::Error::Middleware(anyhow::Error::new(Outer(direct))),
    )));
    assert_eq!(
        vipps_error(&nested).map(VippsError::cause),
        Some(Cause::UnknownHost)
    );

    // No VippsError anywhere.
    let none = reqwest_middleware::Error::Middleware(anyhow::anyhow!("something else"));
    assert!(vipps_error(&none).is_none());
}

// ---------------------------------------------------------------------------
// Where the middleware sits in the chain.
// ---------------------------------------------------------------------------

/// A middleware that counts the requests it sees and passes them on.
struct Counting(Arc<AtomicUsize>);

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for Counting {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        self.0.fetch_add(1, Ordering::SeqCst);
        next.run(req, extensions).await
    }
}

#[tokio::test]
async fn middlewares_before_it_see_each_call_once_and_after_it_never() {
    let server = start(ENV, known(1)).await;
    *server.state.api_status.lock().unwrap() = Some((503, r#"{"title":"unavailable"}"#));
    let (before, after) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    ring_provider();
    let stack = tower_vipps::layer(keyring(&server.authority(), 1)).retry(
        RetryPolicy::new()
            .base_delay(Duration::from_millis(1))
            .max_delay(Duration::from_millis(1)),
    );
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(Counting(before.clone()))
        .with(VippsMiddleware::from_layer(
            stack,
            ReqwestService::new(reqwest::Client::builder()).unwrap(),
        ))
        .with(Counting(after.clone()))
        .build();
    let err = get(&client, &server.base_url(), msn(0)).await.unwrap_err();
    assert_eq!(err.cause(), Cause::ServerError);
    // One call, a token request and four attempts on the wire…
    assert_eq!(server.fetches(), 1);
    assert_eq!(server.api_calls(), 1 + DEFAULT_RETRIES);
    // …seen once before the middleware, never after it.
    assert_eq!(before.load(Ordering::SeqCst), 1);
    assert_eq!(after.load(Ordering::SeqCst), 0);
}
