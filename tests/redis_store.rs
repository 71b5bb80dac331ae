//! `RedisStore` against a real Redis (`REDIS_URL`, default redis://127.0.0.1:6379):
//! a fleet of three stacks shares one token per MSN. Without Redis these tests
//! say they were skipped, unless `CI` is set: then they fail.
#![cfg(all(feature = "redis", feature = "emulator"))]

mod fleet_support;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fleet_support::{Replica, msns, run};
use redis::AsyncCommands;
use tower_vipps::Msn;
use tower_vipps::emulator::{Emulator, Endpoint, PRODUCTION_PARTNER};
use tower_vipps::token::{
    Claim, RedisStore, RedisStoreError, TokenCache, TokenRequest, TokenStore,
};

/// The tests of this file start thousands of tasks and connections each: one at
/// a time, so their exact counts do not depend on each other's load.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Whether Redis at `url` answers PING; skips (or fails under CI) when it does not.
async fn redis_answers(url: &str, test: &str) -> bool {
    let ping = async {
        let client = redis::Client::open(url).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .ok()
    };
    if tokio::time::timeout(Duration::from_secs(2), ping)
        .await
        .ok()
        .flatten()
        .is_some()
    {
        return true;
    }
    assert!(!in_ci(), "{test}: no Redis answers at {url} (CI is set)");
    eprintln!("SKIPPED {test}: no Redis answers at {url} (set REDIS_URL, or run .ci/run)");
    false
}

/// A key prefix of this test alone.
fn prefix() -> String {
    format!("tv-test-{:016x}:", fastrand::u64(..))
}

const SEAL_KEY: [u8; 32] = *b"an example 32-byte sealing key!!";

/// The tests share a loaded 2-core machine with debug builds, and start
/// thousands of tasks at once: a round trip may wait for a worker thread well past
/// the production default of 50 ms, and a token fetch past the 2 s lease; either
/// would make the exact fetch counts below inexact (a fallback fetches alone).
const ROUND_TRIP: Duration = Duration::from_secs(15);
const LEASE: Duration = Duration::from_secs(30);

fn store(url: &str, prefix: &str) -> RedisStore {
    RedisStore::builder(url)
        .seal_key(SEAL_KEY)
        .prefix(prefix)
        .timeout(ROUND_TRIP)
        .lease(LEASE)
        .build()
        .unwrap()
}

async fn fleet(emulator: &Emulator, store: &RedisStore, hard_wait: Duration) -> Vec<Replica> {
    assert!(store.connect(Duration::from_secs(2)).await);
    (0..3)
        .map(|_| {
            let cache = TokenCache::builder()
                .store(Arc::new(store.clone()))
                .hard_expiry_wait(hard_wait)
                .build();
            Replica::new(emulator, cache)
        })
        .collect()
}

/// Every key under `prefix` and its value.
async fn dump(url: &str, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut keys: Vec<String> = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .unwrap();
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let mut out = Vec::new();
    for key in keys {
        let value: Option<Vec<u8>> = conn.get(&key).await.unwrap();
        out.push((key, value.unwrap_or_default()));
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// No key or value shows a token, the client id, the secret or the subscription key.
fn assert_nothing_in_clear(dump: &[(String, Vec<u8>)], tokens: &[String]) {
    let secrets = [
        PRODUCTION_PARTNER.client_id(),
        PRODUCTION_PARTNER.client_secret(),
        PRODUCTION_PARTNER.subscription_key(),
    ];
    // Any 16 characters of a token (its signature, say) would be a leak.
    let pieces: std::collections::HashSet<&[u8]> = tokens
        .iter()
        .flat_map(|t| t.as_bytes().windows(16))
        .collect();
    for (key, value) in dump {
        for secret in secrets {
            assert!(!key.contains(secret), "a key shows a credential");
            assert!(
                !contains(value, secret.as_bytes()),
                "a value shows a credential"
            );
        }
        for window in value.windows(16).chain(key.as_bytes().windows(16)) {
            assert!(
                !pieces.contains(window),
                "a key or value shows part of a token"
            );
        }
    }
}

fn cached_tokens(replica: &Replica, msns: &[Msn]) -> Vec<String> {
    msns.iter()
        .filter_map(|&msn| replica.cache.cached(&replica.keys, Some(msn)))
        .map(|t| t.secret().expose().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_stacks_share_one_token_per_msn_and_one_refetch_after_a_revocation() {
    let _serial = SERIAL.lock().await;
    let url = redis_url();
    if !redis_answers(&url, "three_stacks_share_one_token_per_msn").await {
        return;
    }
    if std::env::var("FLEET_TRACE").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("tower_vipps::token=debug,tower_vipps::auth=debug")
            .try_init();
    }
    let emulator = Emulator::start().await.unwrap();
    let prefix = prefix();
    let store = store(&url, &prefix);
    let replicas = fleet(&emulator, &store, Duration::from_secs(60)).await;
    let msns = msns(1000);

    // 1,000 cold MSNs, 10 concurrent token requests per MSN on each of the 3
    // stacks' caches (what each API call does first; the API calls themselves
    // follow below).
    let errors = fleet_support::tokens(&replicas, &msns, 10).await;
    assert!(
        errors.is_empty(),
        "{} failed: {:?}",
        errors.len(),
        errors.first()
    );
    assert_eq!(
        emulator.count(Endpoint::AccessToken),
        1000,
        "{:?}",
        store.stats()
    );
    let stats = store.stats();
    assert_eq!(stats.leases, 1000);
    assert_eq!(stats.fallbacks, 0);
    eprintln!("cold fleet: {stats:?}");

    let tokens = cached_tokens(&replicas[0], &msns);
    assert_eq!(tokens.len(), 1000);
    for replica in &replicas[1..] {
        assert_eq!(
            cached_tokens(replica, &msns),
            tokens,
            "one token per MSN in the fleet"
        );
    }
    let stored = dump(&url, &prefix).await;
    assert_eq!(
        stored.len(),
        1000,
        "one token key per MSN, every lease released"
    );
    assert_nothing_in_clear(&stored, &tokens);

    // Each stack makes one API call for each of 200 of the MSNs (full stacks
    // through the emulator's API cost far more than tokens on a shared debug
    // runner): no new token.
    let api_msns = &msns[..200];
    let errors = run(&replicas, api_msns, 1).await;
    assert!(
        errors.is_empty(),
        "{} failed: {:?}",
        errors.len(),
        errors.first()
    );
    assert_eq!(emulator.count(Endpoint::CreatePayment), 600);
    assert_eq!(emulator.count(Endpoint::AccessToken), 1000);

    // Every token is revoked server-side; each replica sends one request per MSN,
    // all at once.
    emulator.advance_clock(Duration::from_secs(25 * 3600));
    let errors = run(&replicas, api_msns, 1).await;
    assert!(
        errors.is_empty(),
        "{} failed: {:?}",
        errors.len(),
        errors.first()
    );
    assert_eq!(
        emulator.count(Endpoint::AccessToken),
        1200,
        "one refetch per MSN for the whole fleet: {:?}",
        store.stats()
    );
    for replica in &replicas {
        assert!(
            replica.unauthorized() <= api_msns.len(),
            "at most one 401 per MSN per replica"
        );
    }
    let fresh = cached_tokens(&replicas[0], api_msns);
    assert_eq!(fresh.len(), 200);
    assert!(fresh.iter().all(|t| !tokens.contains(t)));
    for replica in &replicas[1..] {
        assert_eq!(
            cached_tokens(replica, api_msns),
            fresh,
            "one new token per MSN"
        );
    }
    let stored = dump(&url, &prefix).await;
    assert_eq!(stored.len(), 1000);
    assert_nothing_in_clear(&stored, &[tokens, fresh].concat());
    eprintln!(
        "after revocation: {:?}, 401s per replica {:?}",
        store.stats(),
        replicas
            .iter()
            .map(Replica::unauthorized)
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_dead_lease_holder_is_replaced_within_the_lease() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _serial = SERIAL.blocking_lock();
    let url = redis_url();
    if !runtime.block_on(redis_answers(&url, "a_dead_lease_holder_is_replaced")) {
        return;
    }
    let lease = Duration::from_millis(400);
    let prefix = prefix();
    let emulator = runtime.block_on(Emulator::start()).unwrap();
    let build = || {
        RedisStore::builder(&url)
            .seal_key(SEAL_KEY)
            .prefix(&prefix)
            .lease(lease)
            .build()
            .unwrap()
    };
    let msn = msns(1)[0];

    // Replica A, on a runtime of its own, takes the lease and hangs in the token
    // request; then its runtime (its process, as it were) is dropped mid-fetch.
    emulator.faults().token_delay(Duration::from_secs(30));
    let a_store = build();
    let dying = tokio::runtime::Runtime::new().unwrap();
    let a = {
        let _guard = dying.enter();
        Replica::new(
            &emulator,
            TokenCache::builder()
                .store(Arc::new(a_store.clone()))
                .build(),
        )
    };
    assert!(dying.block_on(a_store.connect(Duration::from_secs(2))));
    dying.spawn(async move { a.create_payment(msn).await });
    runtime.block_on(async {
        while emulator.count(Endpoint::AccessToken) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    assert_eq!(a_store.stats().leases, 1, "{:?}", a_store.stats());
    dying.shutdown_background();
    emulator.faults().token_delay(Duration::ZERO);

    // Replica B waits for the lease to expire and fetches; its callers give up
    // after the lease plus one second, so success means it fetched within that.
    let b_store = build();
    let b = {
        let _guard = runtime.enter();
        Replica::new(
            &emulator,
            TokenCache::builder()
                .store(Arc::new(b_store.clone()))
                .hard_expiry_wait(lease + Duration::from_secs(1))
                .build(),
        )
    };
    assert!(runtime.block_on(b_store.connect(Duration::from_secs(2))));
    runtime.block_on(b.create_payment(msn)).unwrap();
    assert_eq!(emulator.count(Endpoint::AccessToken), 2);
    let stats = b_store.stats();
    assert_eq!(
        (stats.lease_waits, stats.leases, stats.fallbacks),
        (1, 1, 0),
        "{stats:?}"
    );
    runtime.block_on(emulator.shutdown());
}

/// A `redis-server` of this test's own, on a free port.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    fn start(port: Option<u16>) -> Option<OwnRedis> {
        let port = port.unwrap_or_else(|| {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        });
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        Some(OwnRedis {
            port,
            child: Some(child),
        })
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn ready(&self) {
        for _ in 0..400 {
            if redis_answers_quietly(&self.url()).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the test's redis-server did not start");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn redis_answers_quietly(url: &str) -> bool {
    let ping = async {
        let client = redis::Client::open(url).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .ok()
    };
    tokio::time::timeout(Duration::from_millis(500), ping)
        .await
        .ok()
        .flatten()
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_mid_run_fails_no_request_and_sharing_resumes_after_a_restart() {
    let _serial = SERIAL.lock().await;
    let test = "redis_stopped_mid_run";
    let Some(mut redis) = OwnRedis::start(None) else {
        assert!(
            !in_ci(),
            "{test}: redis-server cannot be started (CI is set)"
        );
        eprintln!("SKIPPED {test}: no redis-server binary to start");
        return;
    };
    redis.ready().await;
    let emulator = Emulator::start().await.unwrap();
    let store = store(&redis.url(), &prefix());
    // A caller waits at most this long for a token, then fails: "no request
    // fails" below is "none waited longer than the bound" (Redis's round trips
    // are bounded by less).
    let bound = ROUND_TRIP * 2;
    let replicas = fleet(&emulator, &store, bound).await;
    let all = msns(600);
    let (before, during, after) = (&all[..200], &all[200..400], &all[400..]);

    let errors = fleet_support::tokens(&replicas, before, 10).await;
    assert!(errors.is_empty(), "{:?}", errors.first());
    assert_eq!(emulator.count(Endpoint::AccessToken), 200);

    // Redis goes away mid-run: every replica fetches on its own, nothing fails.
    redis.stop();
    let errors = fleet_support::tokens(&replicas, during, 10).await;
    assert!(
        errors.is_empty(),
        "{} failed without Redis: {:?}",
        errors.len(),
        errors.first()
    );
    assert_eq!(
        emulator.count(Endpoint::AccessToken),
        200 + 3 * 200,
        "one per MSN per replica"
    );
    assert!(store.stats().fallbacks > 0);
    // API calls go on; the warm path never needed Redis.
    let errors = run(&replicas, &before[..50], 1).await;
    assert!(errors.is_empty(), "{:?}", errors.first());
    assert_eq!(emulator.count(Endpoint::AccessToken), 800);

    // Redis is back (empty): once the connection is re-established, sharing resumes.
    let port = redis.port;
    drop(redis);
    let redis = OwnRedis::start(Some(port)).expect("redis-server restarts");
    redis.ready().await;
    let probe = TokenRequest::new(
        PRODUCTION_PARTNER.key_set(),
        Some(after[0]),
        Default::default(),
    )
    .minted_for();
    let mut back = false;
    for _ in 0..200 {
        // A claim with a lease means Redis answered; give the lease back.
        if let Claim::Fetch(Some(lease)) = store.claim(&probe, Duration::ZERO).await {
            store.release(&probe, lease).await;
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(back, "the store reconnects by itself");
    let errors = fleet_support::tokens(&replicas, after, 10).await;
    assert!(errors.is_empty(), "{:?}", errors.first());
    assert_eq!(
        emulator.count(Endpoint::AccessToken),
        800 + 200,
        "shared again"
    );
    eprintln!("stop/restart: {:?}", store.stats());
}

#[tokio::test]
async fn sealed_values_open_only_under_their_key_and_their_redis_key() {
    let _serial = SERIAL.lock().await;
    let url = redis_url();
    if !redis_answers(&url, "sealed_values_open_only_under_their_key").await {
        return;
    }
    let prefix = prefix();
    let sealed = store(&url, &prefix);
    let other_key = RedisStore::builder(&url)
        .seal_key([9; 32])
        .prefix(&prefix)
        .build()
        .unwrap();
    let plain = RedisStore::builder(&url)
        .plaintext()
        .prefix(&prefix)
        .build()
        .unwrap();
    let msn = msns(2);
    let request = |m| TokenRequest::new(PRODUCTION_PARTNER.key_set(), Some(m), Default::default());
    let minted_for = request(msn[0]).minted_for();
    let token = tower_vipps::token::AccessToken::new(
        "eyJhbGciOi.eyJzdWIiOiJzZWNyZXQtdG9rZW4.c2lnbmF0dXJlLXNpZ25hdHVyZQ",
        Duration::from_secs(600),
        minted_for.clone(),
    )
    .unwrap();
    sealed.put(&token).await;
    let back = sealed.get(&minted_for).await.expect("the token comes back");
    assert!(back.same_token(&token));
    assert!(back.remaining(tokio::time::Instant::now()) <= Duration::from_secs(600));
    assert!(
        other_key.get(&minted_for).await.is_none(),
        "another key opens nothing"
    );
    assert!(
        plain.get(&minted_for).await.is_none(),
        "a sealed value is no plaintext"
    );

    // A value moved to another MSN's key does not open there.
    let moved_for = request(msn[1]).minted_for();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let value: Vec<u8> = conn.get(sealed.token_key(&minted_for)).await.unwrap();
    let _: () = conn
        .set_ex(sealed.token_key(&moved_for), value, 60)
        .await
        .unwrap();
    assert!(sealed.get(&moved_for).await.is_none());

    // Compare-and-delete: removing another token leaves this one.
    let other = tower_vipps::token::AccessToken::new(
        "another-token",
        Duration::from_secs(600),
        minted_for.clone(),
    )
    .unwrap();
    sealed.remove(&other).await;
    assert!(sealed.get(&minted_for).await.is_some());
    sealed.remove(&token).await;
    assert!(sealed.get(&minted_for).await.is_none());
    assert_eq!(sealed.stats().fallbacks, 0);
    assert!(!format!("{sealed:?}").contains("eyJ"));

    assert_eq!(
        RedisStore::builder(&url).build().unwrap_err(),
        RedisStoreError::NoSealKey
    );
    assert!(matches!(
        RedisStore::builder("http://user:hunter2@example.com").seal_key(SEAL_KEY).build(),
        Err(RedisStoreError::InvalidUrl(why)) if !why.contains("hunter2")
    ));
}
