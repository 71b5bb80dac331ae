//! The token cache's notion of time, driven by tokio's paused clock: soft expiry
//! (one background refresh while callers keep the valid token), hard expiry (callers
//! wait, bounded), failure backoff and recovery, to the second. The token endpoint
//! answers in-process here so that virtual time is exact; `tests/token_cache.rs`
//! covers the same cache over a real HTTP endpoint on loopback.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tokio::time::{Instant, advance};
use tower_vipps::token::{TokenCache, TokenClient, TokenRequest};
use tower_vipps::{Cause, Environment, KeySet, Msn, Origin, SystemInfo};

const OK: u8 = 0;
const FAIL: u8 = 1;
const HANG: u8 = 2;

/// A token endpoint that counts its calls and answers as `mode` says.
fn endpoint(fetches: Arc<AtomicUsize>, mode: Arc<AtomicU8>) -> TokenClient {
    TokenClient::new(tower::service_fn(move |_req: Request<Full<Bytes>>| {
        let n = fetches.fetch_add(1, Ordering::SeqCst) + 1;
        let mode = mode.load(Ordering::SeqCst);
        async move {
            match mode {
                OK => Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
                    r#"{{"token_type":"Bearer","expires_in":"3600","access_token":"eyJhbGciOiJub25lIn0.eyJuIjo{n}fQ.c2lnbmF0dXJl"}}"#
                ))))),
                FAIL => Ok(Response::builder()
                    .status(500)
                    .body(Full::new(Bytes::from_static(b"<html>500</html>")))
                    .unwrap()),
                _ => std::future::pending().await,
            }
        }
    }))
}

/// Lets spawned fetches run to completion (no I/O: they finish within a few polls).
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn expiry_refresh_and_recovery_follow_the_clock() {
    let fetches = Arc::new(AtomicUsize::new(0));
    let mode = Arc::new(AtomicU8::new(OK));
    let client = endpoint(fetches.clone(), mode.clone());
    let msn: Msn = "123456".parse().unwrap();
    let keys = KeySet::merchant(Environment::Test, msn, "id", "secret", "sub-key").unwrap();
    let request = TokenRequest::new(keys, Some(msn), SystemInfo::default())
        .base(&"https://apitest.vipps.no".parse().unwrap());
    let cache = TokenCache::builder()
        .refresh_buffer(Duration::from_secs(300))
        .jitter(Duration::ZERO)
        .hard_expiry_wait(Duration::from_secs(10))
        .failure_backoff(Duration::from_secs(1))
        .build();

    // t = 0: cold, one fetch; the token lives 3600 s.
    let first = cache.get(&client, &request).await.unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 1);

    // t = 3299: one second before the refresh buffer: the cached token, no fetch.
    advance(Duration::from_secs(3299)).await;
    let again = cache.get(&client, &request).await.unwrap();
    assert!(again.same_token(&first));
    settle().await;
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "no refresh before the buffer"
    );

    // t = 3301: inside the buffer: callers get the still-valid token at once, and
    // exactly one background refresh starts however many ask.
    advance(Duration::from_secs(2)).await;
    let started = Instant::now();
    for _ in 0..100 {
        let token = cache.get(&client, &request).await.unwrap();
        assert!(token.same_token(&first), "the valid token, without waiting");
    }
    assert_eq!(Instant::now(), started, "nobody waited");
    settle().await;
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        2,
        "one refresh for 100 callers"
    );
    let second = cache.get(&client, &request).await.unwrap();
    assert!(
        !second.same_token(&first),
        "the refreshed token replaces it"
    );

    // Past the second token's hard expiry, with the endpoint hanging: callers wait
    // for the one fetch, and no longer than `hard_expiry_wait`.
    mode.store(HANG, Ordering::SeqCst);
    advance(Duration::from_secs(3601)).await;
    let started = Instant::now();
    let err = cache.get(&client, &request).await.unwrap_err();
    assert_eq!(Instant::now() - started, Duration::from_secs(10));
    assert_eq!(err.cause(), Cause::Timeout);
    assert!(matches!(err.origin(), Origin::Token(_)));
    // The hung fetch itself ends at its own deadline (the same 10 s), and its
    // failure is kept for the 1 s backoff.
    settle().await;
    let err = cache.get(&client, &request).await.unwrap_err();
    assert_eq!(
        err.cause(),
        Cause::Timeout,
        "the failure, during the backoff"
    );

    // The endpoint fails: the failure is given to callers during the backoff only.
    mode.store(FAIL, Ordering::SeqCst);
    advance(Duration::from_secs(2)).await;
    let before = fetches.load(Ordering::SeqCst);
    let err = cache.get(&client, &request).await.unwrap_err();
    assert_eq!(err.cause(), Cause::ServerError);
    let err = cache.get(&client, &request).await.unwrap_err();
    assert_eq!(err.cause(), Cause::ServerError);
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        before + 1,
        "within the backoff the failure is reused, not fetched again"
    );

    // Recovery: after the backoff the next caller fetches and gets a token.
    mode.store(OK, Ordering::SeqCst);
    advance(Duration::from_secs(2)).await;
    let third = cache.get(&client, &request).await.unwrap();
    assert!(!third.same_token(&second));
    assert_eq!(fetches.load(Ordering::SeqCst), before + 2);
}
