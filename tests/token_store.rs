//! A `TokenStore` behind the cache never hands back the token a 401 rejected
//! (issue 11, item 6): after a server-side revocation every call is replayed once
//! with a fresh token and succeeds.

mod fleet_support;

use std::sync::Arc;
use std::time::Duration;

use fleet_support::{Replica, msns, run};
use tower_vipps::emulator::{Emulator, Endpoint};
use tower_vipps::token::{MemoryStore, TokenCache};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_store_never_brings_back_a_rejected_token() {
    let emulator = Emulator::start().await.unwrap();
    let store = Arc::new(MemoryStore::new());
    let replica = Replica::new(
        &emulator,
        TokenCache::builder().store(store.clone()).build(),
    );
    let msns = msns(60);
    assert!(
        run(std::slice::from_ref(&replica), &msns, 1)
            .await
            .is_empty()
    );
    assert_eq!(emulator.count(Endpoint::AccessToken), 60);
    assert_eq!(store.len(), 60);

    // Every token is revoked server-side: the emulator's clock passes their
    // lifetime (24 hours in production, where partner keys live).
    emulator.advance_clock(Duration::from_secs(25 * 3600));
    let errors = run(std::slice::from_ref(&replica), &msns, 1).await;
    assert!(
        errors.is_empty(),
        "{} of 60 failed: {:?}",
        errors.len(),
        errors.first()
    );
    assert_eq!(replica.unauthorized(), 60, "one 401 per key, each replayed");
    assert_eq!(
        emulator.count(Endpoint::AccessToken),
        120,
        "one new token per key"
    );
    assert_eq!(store.len(), 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_caches_over_one_memory_store_refetch_once_after_a_revocation() {
    let emulator = Emulator::start().await.unwrap();
    let store = Arc::new(MemoryStore::new());
    let a = Replica::new(
        &emulator,
        TokenCache::builder().store(store.clone()).build(),
    );
    let b = Replica::new(
        &emulator,
        TokenCache::builder().store(store.clone()).build(),
    );
    let msns = msns(40);
    assert!(run(std::slice::from_ref(&a), &msns, 1).await.is_empty());
    assert!(run(std::slice::from_ref(&b), &msns, 1).await.is_empty());
    assert_eq!(
        emulator.count(Endpoint::AccessToken),
        40,
        "b took a's tokens"
    );

    emulator.advance_clock(Duration::from_secs(25 * 3600));
    assert!(run(std::slice::from_ref(&a), &msns, 1).await.is_empty());
    assert!(run(std::slice::from_ref(&b), &msns, 1).await.is_empty());
    assert_eq!(
        emulator.count(Endpoint::AccessToken),
        80,
        "b took a's new tokens"
    );
    assert_eq!((a.unauthorized(), b.unauthorized()), (40, 40));
}

/// A refresh does not take this replica's own token back from the store: with
/// jitter, a token is due while it still has more than the refresh buffer left,
/// and the store would hand back that very token (the refresh then starting over
/// at once, and no fresh token ever fetched). The refresh fetches a fresh one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_gets_a_fresher_token_than_its_own() {
    let emulator = Emulator::start().await.unwrap();
    let store = Arc::new(MemoryStore::new());
    // Production tokens live 24 h. With a buffer of 24 h less 1 s and up to 1,000 s
    // of jitter, a token is due at once (almost surely), while it still has more
    // than the buffer left for its first second.
    let cache = TokenCache::builder()
        .store(store.clone())
        .refresh_buffer(Duration::from_secs(86_399))
        .jitter(Duration::from_secs(1_000))
        .build();
    let replica = Replica::new(&emulator, cache);
    let msns = msns(1);
    let started = std::time::Instant::now();
    assert!(
        run(std::slice::from_ref(&replica), &msns, 1)
            .await
            .is_empty()
    );
    assert_eq!(emulator.count(Endpoint::AccessToken), 1);
    // Calls inside that first second start the refresh and are served by the
    // valid token; the refresh fetches.
    while started.elapsed() < Duration::from_millis(900)
        && emulator.count(Endpoint::AccessToken) < 2
    {
        assert!(
            run(std::slice::from_ref(&replica), &msns, 1)
                .await
                .is_empty()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(emulator.count(Endpoint::AccessToken), 2, "one fresh token");
}
