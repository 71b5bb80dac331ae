//! Idempotency keys, retries and timeouts against a loopback server that fails on
//! purpose.

mod common;

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use common::{SeenRequest, Server, client, serve};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::sync::Notify;
use tokio::time::Instant;
use tower::retry::budget::Budget;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_vipps::error::ErrorResponse;
use tower_vipps::idempotency::IdempotencyLayer;
use tower_vipps::retry::{RetryLayer, RetryPolicy};
use tower_vipps::timeout::TimeoutLayer;
use tower_vipps::{BoxError, Cause, Diagnosis, Origin, VippsError};

type Body = Full<Bytes>;

/// What the server saw: one entry per request, with its `Idempotency-Key`.
#[derive(Clone, Default)]
struct Seen {
    keys: Arc<Mutex<Vec<Option<String>>>>,
}

impl Seen {
    /// Records a request; returns its index (0 for the first).
    fn record(&self, req: &SeenRequest) -> usize {
        let key = req
            .headers()
            .get("idempotency-key")
            .map(|v| v.to_str().unwrap().to_owned());
        let mut keys = self.keys.lock().unwrap();
        keys.push(key);
        keys.len() - 1
    }

    fn hits(&self) -> usize {
        self.keys.lock().unwrap().len()
    }

    fn keys(&self) -> Vec<Option<String>> {
        self.keys.lock().unwrap().clone()
    }
}

/// A reply: status and headers.
type Reply = (u16, &'static [(&'static str, &'static str)]);

/// A server answering the n-th request with `script[n]` (the last one repeats).
async fn scripted(script: &'static [Reply]) -> (Server, Seen) {
    let seen = Seen::default();
    let record = seen.clone();
    let server = serve(move |req: SeenRequest| {
        let n = record.record(&req);
        let (status, headers) = script[n.min(script.len() - 1)];
        async move {
            let mut res = common::respond(status, "application/json", "{}");
            for (name, value) in headers {
                res.headers_mut().insert(*name, value.parse().unwrap());
            }
            res
        }
    })
    .await;
    (server, seen)
}

fn post(server: &Server, key: Option<&str>) -> Request<Body> {
    let mut req = Request::post(format!("{}/epayment/v1/payments", server.base_url()))
        .header("content-type", "application/json");
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    req.body(Full::new(Bytes::from_static(b"{\"amount\":1000}")))
        .unwrap()
}

fn get(server: &Server) -> Request<Body> {
    Request::get(format!("{}/epayment/v1/payments/ref-1", server.base_url()))
        .body(Full::default())
        .unwrap()
}

/// The hyper client as a `Clone` service.
fn hyper_client()
-> impl Service<Request<Body>, Response = Response<Incoming>, Error = BoxError, Future: Send>
+ Clone
+ Send {
    let client = client::<Body>();
    tower::service_fn(move |req: Request<Body>| {
        let client = client.clone();
        async move { client.request(req).await.map_err(BoxError::from) }
    })
}

/// A stand-in for the diagnosing layer: error statuses become `VippsError`
/// (429 -> RateLimited, 5xx -> ServerError), the body read whole.
fn diagnosed<S>(
    inner: S,
) -> impl Service<Request<Body>, Response = Response<Incoming>, Error = VippsError, Future: Send>
+ Clone
+ Send
where
    S: Service<Request<Body>, Response = Response<Incoming>, Error = BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    tower::service_fn(move |req: Request<Body>| {
        let inner = inner.clone();
        async move {
            let res = inner.oneshot(req).await.map_err(VippsError::from_boxed)?;
            let status = res.status();
            if !(status.is_client_error() || status.is_server_error()) {
                return Ok(res);
            }
            let (parts, body) = res.into_parts();
            let body = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let cause = match status.as_u16() {
                429 => Cause::RateLimited,
                500..=599 => Cause::ServerError,
                _ => Cause::Unknown,
            };
            Err(VippsError::from_response(
                ErrorResponse {
                    status,
                    headers: parts.headers,
                    body,
                    truncated: false,
                },
                Diagnosis::new(cause).with_evidence(format!("status {status}")),
            ))
        }
    })
}

/// Counts the inner calls alive (started, not yet finished or dropped).
#[derive(Clone, Default)]
struct Live(Arc<AtomicUsize>);

struct LiveGuard(Arc<AtomicUsize>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Live {
    fn now(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    fn wrap<S, Req>(
        &self,
        inner: S,
    ) -> impl Service<Req, Response = S::Response, Error = S::Error, Future: Send> + Clone + Send
    where
        S: Service<Req> + Clone + Send + 'static,
        S::Future: Send,
        Req: Send + 'static,
    {
        let live = self.0.clone();
        tower::service_fn(move |req: Req| {
            live.fetch_add(1, Ordering::SeqCst);
            let guard = LiveGuard(live.clone());
            let inner = inner.clone();
            async move {
                let _guard = guard;
                inner.oneshot(req).await
            }
        })
    }
}

fn fast_policy() -> RetryPolicy {
    RetryPolicy::new()
        .max_retries(3)
        .base_delay(Duration::from_millis(10))
        .max_delay(Duration::from_millis(100))
}

#[tokio::test(start_paused = true)]
async fn post_with_key_survives_two_503s_with_the_same_key() {
    let (server, seen) = scripted(&[(503, &[]), (503, &[]), (201, &[])]).await;
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(fast_policy()))
        .service(hyper_client());
    let res = svc
        .oneshot(post(&server, Some("create-ref-1")))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(seen.hits(), 3);
    assert_eq!(seen.keys(), vec![Some("create-ref-1".to_owned()); 3]);
}

#[tokio::test(start_paused = true)]
async fn the_layer_key_is_the_same_on_every_retry() {
    let (server, seen) = scripted(&[(503, &[]), (502, &[]), (201, &[])]).await;
    let svc = ServiceBuilder::new()
        .layer(IdempotencyLayer::new())
        .layer(RetryLayer::new(fast_policy()))
        .service(hyper_client());
    let res = svc.oneshot(post(&server, None)).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let keys = seen.keys();
    assert_eq!(keys.len(), 3);
    let first = keys[0].clone().expect("a key");
    assert_eq!(first.len(), 36);
    assert!(keys.iter().all(|k| k.as_deref() == Some(first.as_str())));
}

#[tokio::test(start_paused = true)]
async fn post_without_key_is_not_retried_but_get_is() {
    let (server, seen) = scripted(&[(503, &[])]).await;
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(fast_policy()))
        .service(hyper_client());
    let res = svc.clone().oneshot(post(&server, None)).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(seen.hits(), 1);
    assert_eq!(seen.keys(), vec![None]);

    // A GET is safe to repeat: 1 + 3 retries.
    let res = svc.oneshot(get(&server)).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(seen.hits(), 1 + 4);
}

#[tokio::test(start_paused = true)]
async fn other_statuses_are_final() {
    for status in [400u16, 401, 403, 404, 409, 423, 500] {
        let script: &'static [Reply] = Box::leak(Box::new([(status, &[][..]), (201, &[][..])]));
        let (server, seen) = scripted(script).await;
        let svc = ServiceBuilder::new()
            .layer(RetryLayer::new(fast_policy()))
            .service(hyper_client());
        let res = svc.oneshot(post(&server, Some("k"))).await.unwrap();
        assert_eq!(res.status().as_u16(), status);
        assert_eq!(seen.hits(), 1, "{status}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_streaming_body_is_never_replayed() {
    let (server, seen) = scripted(&[(503, &[]), (201, &[])]).await;
    type Stream = http_body_util::StreamBody<
        futures_util::stream::Iter<std::vec::IntoIter<Result<http_body::Frame<Bytes>, Infallible>>>,
    >;
    let client = client::<Stream>();
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(fast_policy()))
        .service_fn(move |req| client.request(req));
    let body = http_body_util::StreamBody::new(futures_util::stream::iter(vec![Ok(
        http_body::Frame::data(Bytes::from_static(b"{}")),
    )]));
    let req = Request::post(format!("{}/epayment/v1/payments", server.base_url()))
        .header("Idempotency-Key", "k-stream")
        .body(body)
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(seen.hits(), 1);
}

#[tokio::test(start_paused = true)]
async fn retry_after_seconds_is_honoured() {
    let (server, seen) = scripted(&[(429, &[("retry-after", "2")]), (200, &[])]).await;
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(fast_policy()))
        .service(hyper_client());
    let start = Instant::now();
    let res = svc.oneshot(get(&server)).await.unwrap();
    let elapsed = start.elapsed();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(seen.hits(), 2);
    // The only timer is the wait: the paused clock moved by exactly 2 s.
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_millis(2100),
        "{elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_http_date_is_honoured() {
    let seen = Seen::default();
    let record = seen.clone();
    let server = serve(move |req: SeenRequest| {
        let n = record.record(&req);
        async move {
            if n == 0 {
                // Wall-clock time: the policy compares the date with `SystemTime::now()`.
                let at = SystemTime::now() + Duration::from_secs(4);
                let mut res = common::respond(503, "text/plain", "busy");
                res.headers_mut()
                    .insert("retry-after", httpdate::fmt_http_date(at).parse().unwrap());
                res
            } else {
                common::respond(200, "application/json", "{}")
            }
        }
    })
    .await;
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(fast_policy()))
        .service(hyper_client());
    let start = Instant::now();
    let res = svc.oneshot(post(&server, Some("k-date"))).await.unwrap();
    let elapsed = start.elapsed();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(seen.hits(), 2);
    // An HTTP date has whole seconds: 4 s ahead is a wait in (3 s, 4 s].
    assert!(
        elapsed > Duration::from_secs(2) && elapsed <= Duration::from_secs(4),
        "{elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_past_the_cap_ends_with_a_diagnosed_error() {
    let (server, seen) = scripted(&[(429, &[("retry-after", "120")]), (200, &[])]).await;
    // Diagnose below Retry: the policy sees `VippsError`s.
    let svc = ServiceBuilder::new()
        .layer(IdempotencyLayer::new())
        .layer(RetryLayer::new(
            fast_policy().retry_after_cap(Duration::from_secs(30)),
        ))
        .service(diagnosed(hyper_client()));
    let start = Instant::now();
    let err = svc.oneshot(post(&server, None)).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(seen.hits(), 1);
    assert_eq!(err.cause(), Cause::RateLimited);
    assert_eq!(err.code(), "vipps::rate_limited");
    assert_eq!(err.status(), Some(StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert!(
        err.diagnosis()
            .evidence()
            .iter()
            .any(|e| e == "not retried: Retry-After of 120s is past the cap of 30s (attempt 1)"),
        "{:?}",
        err.diagnosis().evidence()
    );
    // The caller can come back later with the same key.
    let key = seen.keys()[0].clone().unwrap();
    assert_eq!(err.idempotency_key(), Some(key.as_str()));

    // Plain responses (Diagnose above Retry): the 429 itself goes up, unretried.
    let (server, seen) = scripted(&[(429, &[("retry-after", "31")]), (200, &[])]).await;
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(
            fast_policy().retry_after_cap(Duration::from_secs(30)),
        ))
        .service(hyper_client());
    let res = svc.oneshot(post(&server, Some("k"))).await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(seen.hits(), 1);
}

#[tokio::test(start_paused = true)]
async fn diagnosed_503s_are_retried_with_the_same_key() {
    let (server, seen) = scripted(&[(503, &[]), (503, &[]), (503, &[]), (503, &[])]).await;
    let svc = ServiceBuilder::new()
        .layer(IdempotencyLayer::new())
        .layer(RetryLayer::new(fast_policy().max_retries(2)))
        .service(diagnosed(hyper_client()));
    let err = svc.oneshot(post(&server, None)).await.unwrap_err();
    assert_eq!(seen.hits(), 3);
    assert_eq!(err.cause(), Cause::ServerError);
    assert!(
        err.diagnosis()
            .evidence()
            .iter()
            .any(|e| e == "gave up after 3 attempts"),
        "{:?}",
        err.diagnosis().evidence()
    );
    let keys = seen.keys();
    assert!(keys.iter().all(|k| k == &keys[0] && k.is_some()));
    assert_eq!(err.idempotency_key(), keys[0].as_deref());
}

#[tokio::test(start_paused = true)]
async fn a_refused_connection_is_retried_even_without_a_key() {
    // A port nobody listens on: nothing is ever sent.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let live = Live::default();
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = attempts.clone();
    let inner = live.wrap(hyper_client());
    let counted = tower::service_fn(move |req: Request<Body>| {
        counter.fetch_add(1, Ordering::SeqCst);
        inner.clone().oneshot(req)
    });
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(fast_policy()))
        .service(counted);
    let req = Request::post(format!("http://{addr}/epayment/v1/payments"))
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let err = svc.oneshot(req).await.unwrap_err();
    assert_eq!(attempts.load(Ordering::SeqCst), 4);
    assert_eq!(err.cause(), Cause::ConnectionRefused);
    assert!(matches!(err.origin(), Origin::Transport));
    assert!(tower_vipps::retry::nothing_sent(&err), "{err:?}");
    assert_eq!(live.now(), 0);
}

/// A budget that never says no: what the server would get without one.
struct NoBudget;
impl Budget for NoBudget {
    fn deposit(&self) {}
    fn withdraw(&self) -> bool {
        true
    }
}

async fn storm(policy: RetryPolicy, callers: usize) -> usize {
    let (server, seen) = scripted(&[(503, &[])]).await;
    let svc = ServiceBuilder::new()
        .layer(IdempotencyLayer::new())
        .layer(RetryLayer::new(policy))
        .service(hyper_client());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..callers {
        let svc = svc.clone();
        let req = post(&server, None);
        tasks.spawn(async move { svc.oneshot(req).await.map(|r| r.status()) });
    }
    let mut unavailable = 0;
    while let Some(done) = tasks.join_next().await {
        if done.unwrap().unwrap() == StatusCode::SERVICE_UNAVAILABLE {
            unavailable += 1;
        }
    }
    assert_eq!(unavailable, callers);
    seen.hits()
}

#[tokio::test(start_paused = true)]
async fn the_budget_caps_the_extra_load_of_a_failing_server() {
    const CALLERS: usize = 1000;
    let policy = RetryPolicy::new()
        .max_retries(3)
        .base_delay(Duration::from_millis(1))
        .max_delay(Duration::from_millis(20));
    // Without a budget: every caller tries 4 times.
    let unbudgeted = storm(policy.clone().budget(NoBudget), CALLERS).await;
    assert_eq!(unbudgeted, CALLERS * 4);
    // The default budget (tower's TpsBudget: 10 retries/s reserve over 10 s = 100,
    // plus 20 % of the 1000 calls = 200): at most 300 retries.
    let budgeted = storm(policy, CALLERS).await;
    println!(
        "{CALLERS} callers against a server failing 100 %: {budgeted} hits with the default budget \
         ({} retries), {unbudgeted} without",
        budgeted - CALLERS
    );
    assert!(budgeted > CALLERS, "{budgeted}");
    assert!(budgeted <= CALLERS + 300, "{budgeted}");
}

/// A server whose handlers never answer; it counts handlers alive.
async fn hanging() -> (Server, Seen, Live, Arc<Notify>, Arc<Notify>) {
    let seen = Seen::default();
    let live = Live::default();
    let arrived = Arc::new(Notify::new());
    let gone = Arc::new(Notify::new());
    let (record, counter, arrived2, gone2) =
        (seen.clone(), live.clone(), arrived.clone(), gone.clone());
    let server = serve(move |req: SeenRequest| {
        record.record(&req);
        counter.0.fetch_add(1, Ordering::SeqCst);
        let guard = (LiveGuard(counter.0.clone()), NotifyOnDrop(gone2.clone()));
        arrived2.notify_one();
        async move {
            let _guard = guard;
            std::future::pending::<Response<Body>>().await
        }
    })
    .await;
    (server, seen, live, arrived, gone)
}

struct NotifyOnDrop(Arc<Notify>);
impl Drop for NotifyOnDrop {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

/// Polls `fut` until `signal` fires (real clock), then returns the pinned future.
async fn until<F: Future + Unpin>(fut: &mut F, signal: &Notify)
where
    F::Output: std::fmt::Debug,
{
    tokio::select! {
        _ = signal.notified() => {}
        out = fut => panic!("finished before the server saw the request: {out:?}"),
    }
}

#[tokio::test]
async fn a_per_attempt_deadline_fires_on_time_and_leaves_nothing_behind() {
    let (server, seen, server_live, arrived, gone) = hanging().await;
    let client_live = Live::default();
    let svc = ServiceBuilder::new()
        .layer(IdempotencyLayer::new())
        .layer(TimeoutLayer::per_attempt(Duration::from_secs(5)))
        .service(client_live.wrap(hyper_client()));
    let start = Instant::now();
    let mut call = pin!(svc.oneshot(post(&server, None)));
    // Real clock until the request is in the server's hands, then paused: the clock
    // jumps to the deadline as soon as the runtime is idle.
    until(&mut call, &arrived).await;
    assert_eq!(server_live.now(), 1);
    tokio::time::pause();
    let err = call.await.unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(5) && elapsed < Duration::from_millis(5100),
        "{elapsed:?}"
    );
    assert_eq!(err.cause(), Cause::Timeout);
    assert!(err.is_transient());
    assert_eq!(err.idempotency_key(), seen.keys()[0].as_deref());
    assert!(err.idempotency_key().is_some());
    assert_eq!(err.context().operation, Some("create_payment"));
    // The client side is gone at once…
    assert_eq!(client_live.now(), 0);
    // …and the server sees the connection close (real clock again).
    tokio::time::resume();
    tokio::time::timeout(Duration::from_secs(10), gone.notified())
        .await
        .expect("the server saw the connection close");
    assert_eq!(server_live.now(), 0);
    assert_eq!(seen.hits(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_total_deadline_ends_the_retries_on_time() {
    let (server, seen, _server_live, _arrived, _gone) = hanging().await;
    let client_live = Live::default();
    let svc = ServiceBuilder::new()
        .layer(IdempotencyLayer::new())
        .layer(TimeoutLayer::total(Duration::from_secs(5)))
        .layer(RetryLayer::new(fast_policy().max_retries(10)))
        .layer(TimeoutLayer::per_attempt(Duration::from_secs(2)))
        .service(client_live.wrap(hyper_client()));
    let start = Instant::now();
    let err = svc.oneshot(post(&server, None)).await.unwrap_err();
    // Whatever the attempts did, the call ends at the total deadline.
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(5) && elapsed < Duration::from_millis(5010),
        "{elapsed:?}"
    );
    assert_eq!(err.cause(), Cause::Timeout);
    assert!(
        err.diagnosis().evidence()[0].contains("total deadline of 5s"),
        "{:?}",
        err.diagnosis().evidence()
    );
    assert_eq!(client_live.now(), 0, "an attempt was left running");
    let key = err.idempotency_key().expect("key").to_owned();
    assert!(
        seen.keys()
            .iter()
            .all(|k| k.as_deref() == Some(key.as_str()))
    );
}

#[tokio::test]
async fn a_timed_out_attempt_is_retried_with_the_same_key() {
    // Real clock: attempt 1 hangs past its 1 s deadline, attempt 2 answers.
    let seen = Seen::default();
    let record = seen.clone();
    let server = serve(move |req: SeenRequest| {
        let n = record.record(&req);
        async move {
            if n == 0 {
                std::future::pending::<()>().await;
            }
            common::respond(201, "application/json", "{}")
        }
    })
    .await;
    let svc = ServiceBuilder::new()
        .layer(IdempotencyLayer::new())
        .layer(RetryLayer::new(fast_policy()))
        .layer(TimeoutLayer::per_attempt(Duration::from_secs(1)))
        .service(hyper_client());
    let res = svc.oneshot(post(&server, None)).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let keys = seen.keys();
    assert_eq!(keys.len(), 2);
    assert!(keys[0].is_some() && keys[0] == keys[1]);

    // Without a key (no layer), a timed-out POST is not repeated.
    let seen2 = Seen::default();
    let record = seen2.clone();
    let server = serve(move |req: SeenRequest| {
        record.record(&req);
        async move {
            std::future::pending::<()>().await;
            common::respond(201, "application/json", "{}")
        }
    })
    .await;
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(fast_policy()))
        .layer(TimeoutLayer::per_attempt(Duration::from_secs(1)))
        .service(hyper_client());
    let err = svc.oneshot(post(&server, None)).await.unwrap_err();
    assert_eq!(err.cause(), Cause::Timeout);
    assert_eq!(seen2.hits(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_wait_past_the_total_deadline_is_not_started() {
    let (server, seen) = scripted(&[(429, &[("retry-after", "10")]), (200, &[])]).await;
    let svc = ServiceBuilder::new()
        .layer(IdempotencyLayer::new())
        .layer(TimeoutLayer::total(Duration::from_secs(5)))
        .layer(RetryLayer::new(fast_policy()))
        .service(diagnosed(hyper_client()));
    let start = Instant::now();
    let err = svc.oneshot(post(&server, None)).await.unwrap_err();
    // At once, with the real failure, not a timeout 5 s later.
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(err.cause(), Cause::RateLimited);
    assert_eq!(seen.hits(), 1);
    assert!(
        err.diagnosis()
            .evidence()
            .iter()
            .any(|e| e == "not retried: waiting 10s would pass the total deadline (attempt 1)"),
        "{:?}",
        err.diagnosis().evidence()
    );
}
