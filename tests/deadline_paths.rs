//! The preset's total deadline reaches `Retry` on every path a call can take to
//! it: straight through, after `Auth` waited for a token (the call is made from
//! `Auth`'s future), and on `Auth`'s stale-token replay. On each path a `429`
//! asking for a wait past the deadline is returned at once, not waited for (the
//! wait would end in a timeout with the real failure lost).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tokio::time::Instant;
use tower::{Layer, ServiceExt};
use tower_vipps::{Cause, Environment, Keyring};

type Body = Full<Bytes>;

const GET: &str = "https://apitest.vipps.no/epayment/v1/payments/acme-shop-123-order123abc";
const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.c2lnbmF0dXJl";

fn keyring() -> Keyring {
    Keyring::builder()
        .merchant(
            Environment::Test,
            "123456".parse().unwrap(),
            "client-id",
            "client-secret",
            "0123456789abcdef0123456789abcdef",
        )
        .system("acme-shop", "1.0.0")
        .build()
        .unwrap()
}

/// How the API answers, per call to it (not the token endpoint).
#[derive(Clone, Copy)]
enum Script {
    /// `429` asking for a 10 s wait.
    RateLimited,
    /// A stale-token `401` (empty body), then `429`s.
    StaleThenRateLimited,
}

/// The preset (5 s total deadline) over a service that answers the token endpoint
/// and `script` for the API; the API calls are counted.
async fn run(script: Script, warm: bool) -> (Result<Response<()>, Cause>, Duration, usize) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let inner = tower::service_fn(move |req: Request<Body>| {
        let token = req.uri().path() == "/accesstoken/get";
        let n = if token {
            0
        } else {
            counted.fetch_add(1, Ordering::SeqCst)
        };
        async move {
            let res = if token {
                Response::new(Full::new(Bytes::from(format!(
                    r#"{{"token_type":"Bearer","expires_in":"3600","access_token":"{TOKEN}"}}"#
                ))))
            } else {
                let status = match (script, n) {
                    (Script::StaleThenRateLimited, 0) => 401,
                    _ => 429,
                };
                let mut res = Response::new(Full::new(Bytes::new()));
                *res.status_mut() = http::StatusCode::from_u16(status).unwrap();
                if status == 429 {
                    res.headers_mut()
                        .insert("retry-after", http::HeaderValue::from_static("10"));
                }
                res
            };
            Ok::<_, std::convert::Infallible>(res)
        }
    });
    let svc = tower_vipps::layer(keyring())
        .total_timeout(Duration::from_secs(5))
        .layer(inner);
    let request = || {
        Request::get(GET)
            .header("Merchant-Serial-Number", "123456")
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    if warm {
        // A first call fetches and caches the token.
        let _ = svc.clone().oneshot(request()).await;
        calls.store(0, Ordering::SeqCst);
    }
    let start = Instant::now();
    let result = svc
        .oneshot(request())
        .await
        .map(|res| res.map(|_| ()))
        .map_err(|err| err.cause());
    (result, start.elapsed(), calls.load(Ordering::SeqCst))
}

#[tokio::test(start_paused = true)]
async fn straight_through_with_a_cached_token() {
    let (result, elapsed, calls) = run(Script::RateLimited, true).await;
    assert_eq!(result.unwrap_err(), Cause::RateLimited);
    assert_eq!((elapsed, calls), (Duration::ZERO, 1));
}

#[tokio::test(start_paused = true)]
async fn after_waiting_for_a_token() {
    let (result, elapsed, calls) = run(Script::RateLimited, false).await;
    assert_eq!(result.unwrap_err(), Cause::RateLimited);
    assert_eq!((elapsed, calls), (Duration::ZERO, 1));
}

#[tokio::test(start_paused = true)]
async fn on_the_stale_token_replay() {
    let (result, elapsed, calls) = run(Script::StaleThenRateLimited, true).await;
    assert_eq!(result.unwrap_err(), Cause::RateLimited);
    // The 401, then the replay's 429: no wait started.
    assert_eq!((elapsed, calls), (Duration::ZERO, 2));
}
