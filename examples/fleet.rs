//! A fleet: three replicas of one service (three stacks, three `TokenCache`s)
//! share one access token per MSN through Redis, against the embedded emulator.
//!
//! ```sh
//! # Redis at REDIS_URL (default redis://127.0.0.1:6379)
//! cargo run --example fleet --features emulator,redis
//! ```
//!
//! It starts 200 partner MSNs cold on all three replicas at once (five calls per
//! MSN on each) and counts the token fetches (one per MSN, not three); revokes
//! every token server-side and counts again (one refetch per MSN for the fleet).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio::task::JoinSet;
use tower::{Layer, ServiceExt};
use tower_vipps::emulator::{Emulator, Endpoint, PRODUCTION_PARTNER, READY_USER};
use tower_vipps::token::{RedisStore, TokenCache};
use tower_vipps::{BoxError, Environment, Msn, VippsError, VippsLayer};

type HyperClient = Client<HttpConnector, Full<Bytes>>;

const MSNS: usize = 200;
const CALLS_PER_MSN: usize = 5;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let emulator = Emulator::start().await?;
    let base = emulator.base_url(Environment::Production);

    // One store, shared by the replicas: in production each replica builds its
    // own from the same URL, prefix and sealing key.
    let store = RedisStore::builder(&url)
        // 32 secret bytes from your secret manager; the same on every replica.
        .seal_key(*b"fleet example key: use a secret!")
        .prefix(format!("fleet-example-{}:", std::process::id()))
        // The defaults (50 ms a round trip, a 2 s lease) suit a release build; a
        // debug build starting thousands of calls at once on a small machine can
        // keep a reply or a token fetch waiting for a worker thread longer than
        // that (each such wait is a fallback: that replica fetches alone).
        .timeout(Duration::from_secs(2))
        .lease(Duration::from_secs(10))
        .build()?;
    if !store.connect(Duration::from_secs(1)).await {
        println!("No Redis answers at {url}: each replica would fetch its own tokens.");
        println!("Start one (redis-server) or set REDIS_URL, and run again.");
        return Ok(());
    }
    let keyring = emulator
        .keyring_builder()
        .key_set(PRODUCTION_PARTNER.key_set())
        .system("fleet-example", "1.0.0")
        .build()?;
    let replicas: Vec<VippsLayer> = (0..3)
        .map(|_| {
            let cache = TokenCache::builder().store(Arc::new(store.clone())).build();
            tower_vipps::layer(keyring.clone()).token_cache(cache)
        })
        .collect();
    let http: HyperClient = Client::builder(TokioExecutor::new()).build_http();
    let msns: Vec<Msn> = PRODUCTION_PARTNER.connected_msns().take(MSNS).collect();
    println!("Redis at {url}; emulator at {base}");
    println!("Three replicas, {MSNS} partner MSNs, {CALLS_PER_MSN} calls per MSN on each.\n");

    let started = Instant::now();
    let failed = round(&replicas, &http, &base, &msns, CALLS_PER_MSN).await;
    println!(
        "1. Cold start: {} calls in {:.1?}, {failed} failed; {} token fetches (one per MSN).",
        replicas.len() * MSNS * CALLS_PER_MSN,
        started.elapsed(),
        emulator.count(Endpoint::AccessToken)
    );
    println!("   {:?}\n", store.stats());

    emulator.advance_clock(Duration::from_secs(2 * 3600));
    let before = emulator.count(Endpoint::AccessToken);
    let failed = round(&replicas, &http, &base, &msns, 1).await;
    println!(
        "2. Every token revoked server-side: {} calls, {failed} failed; {} new token fetches.",
        replicas.len() * MSNS,
        emulator.count(Endpoint::AccessToken) - before
    );
    println!("   A replica's 401 removes exactly that token from Redis (compare-and-delete);");
    println!("   the first replica to refetch takes the lease, the others wait for its token.");
    println!("   {:?}", store.stats());
    emulator.shutdown().await;
    Ok(())
}

/// `per_msn` payments for each MSN on each replica, all at once; how many failed.
async fn round(
    replicas: &[VippsLayer],
    http: &HyperClient,
    base: &str,
    msns: &[Msn],
    per_msn: usize,
) -> usize {
    let mut tasks = JoinSet::new();
    for stack in replicas {
        for &msn in msns {
            // One task per replica and MSN, its calls concurrent inside it.
            let calls: Vec<_> = (0..per_msn)
                .map(|_| send(stack.layer(http.clone()), create(base, msn)))
                .collect();
            tasks.spawn(futures_util::future::join_all(calls));
        }
    }
    let mut failed = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(results) => {
                for err in results.iter().filter_map(|r| r.as_ref().err()) {
                    if failed == 0 {
                        println!("   first failure: {err}");
                    }
                    failed += 1;
                }
            }
            Err(_) => failed += per_msn,
        }
    }
    failed
}

fn create(base: &str, msn: Msn) -> Request<Full<Bytes>> {
    let body = json!({
        "amount": {"value": 1000, "currency": "NOK"},
        "paymentMethod": {"type": "WALLET"},
        "customer": {"phoneNumber": READY_USER},
        "reference": format!("fleet-{msn}-{}", uuid::Uuid::new_v4().simple()),
        "returnUrl": "https://fleet.example/return",
        "userFlow": "PUSH_MESSAGE",
        "paymentDescription": "A fleet of three"
    });
    Request::builder()
        .method(Method::POST)
        .uri(format!("{base}/epayment/v1/payments"))
        .header("Content-Type", "application/json")
        .header("Merchant-Serial-Number", msn.to_string())
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid request")
}

async fn send<S, B>(client: S, request: Request<Full<Bytes>>) -> Result<(), VippsError>
where
    S: tower::Service<Request<Full<Bytes>>, Response = http::Response<B>, Error = VippsError>,
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let response = client.oneshot(request).await?;
    let _ = response.into_body().collect().await;
    Ok(())
}
