//! The whole table of issue 12 in one run, side by side: per-request overhead
//! (interleaved timing rounds, medians, ratios), throughput on a 2-worker runtime,
//! allocations per request and bytes per cached MSN (a counting global allocator).
//!
//! ```text
//! cargo bench --bench stack                      # everything
//! cargo bench --bench stack -- --measurement-time 3
//! STACK_ONLY=preset STACK_METHOD=get STACK_TOKEN=436 \
//!     valgrind --tool=callgrind target/release/deps/stack-*  # instruction counts
//! STACK_ONLY=memory target/release/deps/stack-*         # bytes per cached MSN only
//! STACK_ONLY=throughput target/release/deps/stack-*     # the 2-worker throughput only
//! STACK_ONLY=throughput STACK_CASE=preset perf record -g target/release/deps/stack-*
//!                                                       # one throughput case, for a profiler
//! ```
//!
//! Not a criterion bench: criterion times one function at a time, and on a shared
//! 2-core machine only ratios measured in the same rounds are stable.

#[path = "support/mod.rs"]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use futures_util::FutureExt;
use http::{HeaderName, HeaderValue, Method, Request, Response};
use http_body_util::Full;
use support::body_1k;
use tower::{Layer, Service, ServiceExt};
use tower_vipps::idempotency::IdempotencyLayer;
use tower_vipps::preflight::PreflightLayer;
use tower_vipps::retry::{RetryLayer, RetryPolicy};
use tower_vipps::timeout::TimeoutLayer;
use tower_vipps::token::{TokenCache, TokenClient};
use tower_vipps::{AuthLayer, DiagnoseLayer, Environment, KeySet, Keyring, Msn};

// ---------------------------------------------------------------------------
// A counting allocator, counting only while `COUNTING` is set.

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED: AtomicU64 = AtomicU64::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            FREED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            ALLOCATED.fetch_add(new_size as u64, Ordering::Relaxed);
            FREED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations, bytes allocated, and live bytes gained while `f` runs.
fn counted<R>(f: impl FnOnce() -> R) -> (R, u64, u64, i64) {
    let (a0, b0, f0) = (
        ALLOCS.load(Ordering::Relaxed),
        ALLOCATED.load(Ordering::Relaxed),
        FREED.load(Ordering::Relaxed),
    );
    COUNTING.store(true, Ordering::SeqCst);
    let r = f();
    COUNTING.store(false, Ordering::SeqCst);
    let allocs = ALLOCS.load(Ordering::Relaxed) - a0;
    let bytes = ALLOCATED.load(Ordering::Relaxed) - b0;
    let freed = FREED.load(Ordering::Relaxed) - f0;
    (r, allocs, bytes, bytes as i64 - freed as i64)
}

// ---------------------------------------------------------------------------
// Fixtures.

const MSNS: u64 = 10_000;
const CREATE: &str = "https://api.vipps.no/epayment/v1/payments";
const GET: &str = "https://api.vipps.no/epayment/v1/payments/acme-shop-123-order123abc";
const SUB_KEY: &str = "0123456789abcdef0123456789abcdef";

type Body = Full<Bytes>;

fn msn(i: u64) -> Msn {
    Msn::new(100_000 + i % MSNS).unwrap()
}

/// A JWT-shaped token of exactly `len` bytes for an MSN: a base64url header,
/// a payload with `exp` a day ahead, and a signature filling the rest.
fn jwt(len: usize, msn: u64, serial: u64) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT","kid":"bench"}"#);
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 86_400;
    let payload = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"iss":"bench","exp":{exp},"msn":{msn},"env":"test","jti":"{serial}"}}"#
    ));
    let used = header.len() + payload.len() + 2;
    assert!(len > used + 16, "token too short");
    let mut sig = URL_SAFE_NO_PAD.encode(format!("{serial:016}-{msn}"));
    while sig.len() < len - used {
        sig.push_str(&URL_SAFE_NO_PAD.encode(sig.as_bytes()));
    }
    sig.truncate(len - used);
    format!("{header}.{payload}.{sig}")
}

fn token_endpoint(len: usize) -> TokenClient {
    let serial = Arc::new(AtomicU64::new(0));
    TokenClient::new(tower::service_fn(move |req: Request<Body>| {
        let msn = req
            .headers()
            .get("merchant-serial-number")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let token = jwt(len, msn, serial.fetch_add(1, Ordering::Relaxed));
        let body =
            format!(r#"{{"token_type":"Bearer","expires_in":"86400","access_token":"{token}"}}"#);
        async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body)))) }
    }))
}

fn keyring() -> Keyring {
    let partner = KeySet::partner(
        Environment::Production,
        "partner-client-id",
        "partner-secret",
        SUB_KEY,
    )
    .unwrap()
    .connected_msns((0..MSNS).map(msn));
    Keyring::builder()
        .key_set(partner)
        .system("acme-shop", "1.2.3")
        .build()
        .unwrap()
}

/// What a caller builds per request.
struct Fixture {
    post: bool,
    msns: Vec<HeaderValue>,
    body: Bytes,
    /// Per MSN, the headers Auth would add (for Preflight alone).
    authorized: Vec<Vec<(HeaderName, HeaderValue)>>,
}

impl Fixture {
    fn request(&self, i: usize) -> Request<Body> {
        let body = if self.post {
            Full::new(self.body.clone())
        } else {
            Full::new(Bytes::new())
        };
        let mut req = Request::new(body);
        if self.post {
            *req.method_mut() = Method::POST;
            *req.uri_mut() = http::Uri::from_static(CREATE);
            req.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        } else {
            *req.uri_mut() = http::Uri::from_static(GET);
        }
        req.headers_mut().insert(
            HeaderName::from_static("merchant-serial-number"),
            self.msns[i].clone(),
        );
        req
    }

    /// The request as Auth and Idempotency would pass it on.
    fn authorized(&self, i: usize) -> Request<Body> {
        let mut req = self.request(i);
        for (name, value) in &self.authorized[i] {
            req.headers_mut().insert(name.clone(), value.clone());
        }
        req
    }
}

fn bare() -> impl Service<
    Request<Body>,
    Response = Response<Body>,
    Error = Infallible,
    Future = std::future::Ready<Result<Response<Body>, Infallible>>,
> + Clone
+ Send
+ Sync
+ 'static {
    tower::service_fn(|req: Request<Body>| {
        black_box(&req);
        std::future::ready(Ok(Response::new(Full::new(Bytes::new()))))
    })
}

/// tower-http's static headers: the same six headers, one fixed token.
fn trio6<S>(
    token: &str,
    inner: S,
) -> impl Service<
    Request<Body>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl std::future::Future<Output = Result<Response<Body>, Infallible>> + Send,
> + Clone
+ Send
+ 'static
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    support::trio6(token, SUB_KEY, inner)
}

/// A plain `RwLock<HashMap>` from MSN to `Authorization` value.
#[derive(Clone)]
struct MapAuth<S> {
    tokens: Arc<RwLock<HashMap<u64, HeaderValue>>>,
    inner: S,
}

impl<S: Service<Request<Body>>> Service<Request<Body>> for MapAuth<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;
    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }
    fn call(&mut self, mut req: Request<Body>) -> S::Future {
        let msn: u64 = req
            .headers()
            .get("merchant-serial-number")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let value = self.tokens.read().unwrap().get(&msn).cloned();
        if let Some(value) = value {
            req.headers_mut().insert(http::header::AUTHORIZATION, value);
        }
        self.inner.call(req)
    }
}

fn map_auth<S>(len: usize, inner: S) -> MapAuth<S> {
    let mut map = HashMap::new();
    for i in 0..MSNS {
        let mut v = HeaderValue::try_from(format!("Bearer {}", jwt(len, msn(i).get(), i))).unwrap();
        v.set_sensitive(true);
        map.insert(msn(i).get(), v);
    }
    MapAuth {
        tokens: Arc::new(RwLock::new(map)),
        inner,
    }
}

/// Sends every MSN through `svc` once, so every token is cached.
fn warm<S, R, E>(rt: &tokio::runtime::Runtime, svc: &S, fx: &Fixture)
where
    S: Service<Request<Body>, Response = R, Error = E> + Clone,
    E: std::fmt::Debug,
{
    rt.block_on(async {
        for i in 0..MSNS as usize {
            svc.clone().oneshot(fx.request(i)).await.unwrap();
        }
    });
}

// ---------------------------------------------------------------------------
// Per-request timing and allocations.

/// One service under test: sends request `i`, checks success.
struct Case<'a> {
    name: &'static str,
    /// The case whose cost is subtracted ("bare" or "bare_authorized").
    base: &'static str,
    run: Box<dyn FnMut(usize) + 'a>,
}

fn case<'a, S, R, E>(
    name: &'static str,
    base: &'static str,
    mut svc: S,
    make: impl Fn(usize) -> Request<Body> + 'a,
) -> Case<'a>
where
    S: Service<Request<Body>, Response = R, Error = E> + 'a,
    E: std::fmt::Debug,
{
    Case {
        name,
        base,
        run: Box::new(move |i| {
            svc.ready().now_or_never().unwrap().unwrap();
            let res = svc.call(make(i)).now_or_never().expect("ready at once");
            black_box(res.unwrap());
        }),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

struct Measured {
    name: &'static str,
    base: &'static str,
    ns: f64,
    allocs: f64,
    bytes: f64,
}

fn measure(cases: &mut [Case<'_>], rounds: usize, per_round: usize) -> Vec<Measured> {
    let mut times = vec![Vec::new(); cases.len()];
    let mut i = 0usize;
    // Warm-up.
    for c in cases.iter_mut() {
        for _ in 0..per_round / 4 {
            i = (i + 7919) % MSNS as usize;
            (c.run)(i);
        }
    }
    for round in 0..rounds {
        for k in 0..cases.len() {
            let k = (k + round) % cases.len();
            let c = &mut cases[k];
            let start = Instant::now();
            for _ in 0..per_round {
                i = (i + 7919) % MSNS as usize;
                (c.run)(i);
            }
            times[k].push(start.elapsed().as_nanos() as f64 / per_round as f64);
        }
    }
    cases
        .iter_mut()
        .zip(times.iter_mut())
        .map(|(c, t)| {
            const N: usize = 1000;
            let ((), allocs, bytes, _) = counted(|| {
                for _ in 0..N {
                    i = (i + 7919) % MSNS as usize;
                    (c.run)(i);
                }
            });
            Measured {
                name: c.name,
                base: c.base,
                // The best round: other processes only ever add time.
                ns: t.iter().copied().fold(f64::INFINITY, f64::min),
                allocs: allocs as f64 / N as f64,
                bytes: bytes as f64 / N as f64,
            }
        })
        .collect()
}

/// The measured loop of `STACK_ONLY` runs: `valgrind --tool=callgrind
/// --toggle-collect=stack::only_loop` counts the instructions of these requests only.
#[inline(never)]
fn only_loop(c: &mut Case<'_>, n: usize) {
    for k in 0..n {
        (c.run)((k * 7919) % MSNS as usize);
    }
}

fn per_request(len: usize, post: bool, rounds: usize, per_round: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let keyring = keyring();
    let endpoint = token_endpoint(len);
    let mut fx = Fixture {
        post,
        msns: (0..MSNS).map(|i| msn(i).to_header_value()).collect(),
        body: body_1k(),
        authorized: Vec::new(),
    };

    let only = std::env::var("STACK_ONLY").ok();
    let needed = |names: &[&str]| only.as_deref().is_none_or(|o| names.contains(&o));
    let auth = AuthLayer::new(keyring.clone())
        .token_client(endpoint.clone())
        .layer(bare());
    if needed(&["auth", "preflight", "bare_authorized"]) {
        warm(&rt, &auth, &fx);
    }
    let preset = tower_vipps::layer(keyring.clone())
        .token_client(endpoint.clone())
        .layer(bare());
    if needed(&["preset"]) {
        warm(&rt, &preset, &fx);
    }
    // The headers Auth sets, with the cache's own token values.
    let cache: TokenCache = auth.cache().clone();
    let keys = keyring.key_sets().next().unwrap().clone();
    let authorized_msns = if needed(&["preflight", "bare_authorized"]) {
        MSNS
    } else {
        0
    };
    fx.authorized = (0..authorized_msns)
        .map(|i| {
            let token = cache.cached(&keys, Some(msn(i))).expect("warm");
            let mut sub = HeaderValue::from_static(SUB_KEY);
            sub.set_sensitive(true);
            let mut h = vec![
                (http::header::AUTHORIZATION, token.authorization().clone()),
                (HeaderName::from_static("ocp-apim-subscription-key"), sub),
                (
                    HeaderName::from_static("vipps-system-name"),
                    HeaderValue::from_static("acme-shop"),
                ),
                (
                    HeaderName::from_static("vipps-system-version"),
                    HeaderValue::from_static("1.2.3"),
                ),
            ];
            if post {
                h.push((
                    HeaderName::from_static("idempotency-key"),
                    HeaderValue::from_static("49ca711a-acee-4d01-993b-9487112e1def"),
                ));
            }
            h
        })
        .collect();
    let preflight = PreflightLayer::new()
        .keyring(keyring.clone())
        .known_tokens(Arc::new(cache.clone()))
        .layer(bare());
    let token = jwt(len, 1, 1);
    let fx = &fx;
    let mut cases = vec![
        case("bare", "bare", bare(), |i| fx.request(i)),
        case("bare_authorized", "bare_authorized", bare(), |i| {
            fx.authorized(i)
        }),
        case("trio6", "bare", trio6(&token, bare()), |i| fx.request(i)),
        case("rwlock_map", "bare", map_auth(len, bare()), |i| {
            fx.request(i)
        }),
        case(
            "idempotency",
            "bare",
            IdempotencyLayer::new().layer(bare()),
            |i| fx.request(i),
        ),
        case(
            "timeout",
            "bare",
            TimeoutLayer::total(Duration::from_secs(30)).layer(bare()),
            |i| fx.request(i),
        ),
        case(
            "diagnose",
            "bare",
            DiagnoseLayer::new().layer(bare()),
            |i| fx.request(i),
        ),
        case(
            "retry",
            "bare",
            RetryLayer::new(RetryPolicy::new()).layer(bare()),
            |i| fx.request(i),
        ),
        case("auth", "bare", auth, |i| fx.request(i)),
        case("preflight", "bare_authorized", preflight, |i| {
            fx.authorized(i)
        }),
        case("preset", "bare", preset, |i| fx.request(i)),
    ];
    if let Some(only) = only {
        // For callgrind: one case, many requests, nothing else.
        let c = cases
            .iter_mut()
            .find(|c| c.name == only)
            .expect("STACK_ONLY names a case");
        only_loop(c, 2_000); // warm-up
        only_loop(c, 20_000);
        let ((), allocs, bytes, _) = counted(|| only_loop(c, 1_000));
        eprintln!(
            "{only}: {:.2} allocations, {:.0} bytes per request",
            allocs as f64 / 1_000.0,
            bytes as f64 / 1_000.0
        );
        return;
    }
    let results = measure(&mut cases, rounds, per_round);
    let get = |name: &str| results.iter().find(|m| m.name == name).unwrap();
    let overhead = |m: &Measured| m.ns - get(m.base).ns;
    let trio = overhead(get("trio6"));
    println!(
        "\n{} with a {len}-byte token, 10k warm MSNs (best of {} rounds x {} requests):",
        if post {
            "POST ePayment create, 1 KiB body"
        } else {
            "GET ePayment payment"
        },
        rounds,
        per_round
    );
    println!(
        "{:<17} {:>9} {:>10} {:>9} {:>13} {:>12}",
        "case", "ns", "overhead", "x trio6", "allocs/req", "bytes/req"
    );
    for m in &results {
        let base = get(m.base);
        println!(
            "{:<17} {:>9.0} {:>10.0} {:>9.2} {:>7.1} (+{:<3.1}) {:>6.0} (+{:.0})",
            m.name,
            m.ns,
            overhead(m),
            overhead(m) / trio,
            m.allocs,
            m.allocs - base.allocs,
            m.bytes,
            m.bytes - base.bytes,
        );
    }
}

// ---------------------------------------------------------------------------
// Throughput: 2 workers, 256 tasks, a random MSN per request.

const TASKS: usize = 256;
const PER_TASK: usize = 200;

async fn drive<S, R, E>(svc: S, fx: Arc<Fixture>)
where
    S: Service<Request<Body>, Response = R, Error = E> + Clone + Send + 'static,
    S::Future: Send,
    R: Send + 'static,
    E: std::fmt::Debug + Send + 'static,
{
    let mut handles = Vec::with_capacity(TASKS);
    for t in 0..TASKS {
        let mut svc = svc.clone();
        let fx = fx.clone();
        handles.push(tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(t as u64);
            for _ in 0..PER_TASK {
                let i = rng.usize(..MSNS as usize);
                let res = svc.ready().await.unwrap().call(fx.request(i)).await;
                black_box(res.unwrap());
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
}

fn throughput(len: usize, rounds: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let keyring = keyring();
    let endpoint = token_endpoint(len);
    let fx = Arc::new(Fixture {
        post: false,
        msns: (0..MSNS).map(|i| msn(i).to_header_value()).collect(),
        body: body_1k(),
        authorized: Vec::new(),
    });
    let token = jwt(len, 1, 1);
    let auth = AuthLayer::new(keyring.clone())
        .token_client(endpoint.clone())
        .layer(bare());
    warm(&rt, &auth, &fx);
    let preset = tower_vipps::layer(keyring.clone())
        .token_client(endpoint)
        .layer(bare());
    warm(&rt, &preset, &fx);
    type Run<'a> = Box<dyn Fn() -> Duration + 'a>;
    fn run<'a, S, R, E>(rt: &'a tokio::runtime::Runtime, svc: S, fx: &Arc<Fixture>) -> Run<'a>
    where
        S: Service<Request<Body>, Response = R, Error = E> + Clone + Send + 'static,
        S::Future: Send,
        R: Send + 'static,
        E: std::fmt::Debug + Send + 'static,
    {
        let fx = fx.clone();
        Box::new(move || {
            let start = Instant::now();
            rt.block_on(drive(svc.clone(), fx.clone()));
            start.elapsed()
        })
    }
    let cases: Vec<(&str, Run<'_>)> = vec![
        ("bare", run(&rt, bare(), &fx)),
        ("trio6", run(&rt, trio6(&token, bare()), &fx)),
        ("rwlock_map", run(&rt, map_auth(len, bare()), &fx)),
        ("auth", run(&rt, auth, &fx)),
        ("preset", run(&rt, preset, &fx)),
    ];
    // `STACK_CASE=<name>` runs that case alone (for a profiler), many rounds.
    if let Ok(only) = std::env::var("STACK_CASE") {
        let (_, run) = cases
            .iter()
            .find(|(name, _)| *name == only)
            .expect("STACK_CASE names a throughput case");
        for _ in 0..rounds * 4 {
            black_box(run());
        }
        return;
    }
    let mut rates = vec![Vec::new(); cases.len()];
    for round in 0..rounds + 1 {
        for k in 0..cases.len() {
            let k = (k + round) % cases.len();
            let elapsed = (cases[k].1)();
            if round > 0 {
                rates[k].push((TASKS * PER_TASK) as f64 / elapsed.as_secs_f64());
            }
        }
    }
    let rates: Vec<f64> = rates.iter_mut().map(|r| median(r)).collect();
    let map = rates[2];
    println!(
        "\nThroughput, GET, {len}-byte tokens, 2 workers, {TASKS} tasks, random MSN ({rounds} rounds, medians):"
    );
    for ((name, _), rate) in cases.iter().zip(&rates) {
        println!(
            "{name:<17} {:>10.0} req/s {:>6.2}x rwlock_map",
            rate,
            rate / map
        );
    }
}

// ---------------------------------------------------------------------------
// Memory per cached MSN.

fn memory(len: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let fx = Fixture {
        post: false,
        msns: (0..MSNS).map(|i| msn(i).to_header_value()).collect(),
        body: Bytes::new(),
        authorized: Vec::new(),
    };
    let auth = AuthLayer::new(keyring())
        .token_client(token_endpoint(len))
        .layer(bare());
    // Let the runtime and the cache allocate what they allocate once.
    warm_one(&rt, &auth, &fx);
    let ((), allocs, _, live) = counted(|| {
        warm(&rt, &auth, &fx);
        // Let finished fetch tasks be dropped.
        rt.block_on(tokio::task::yield_now());
    });
    let per = live as f64 / MSNS as f64;
    let ((), _, _, map_live) = counted(|| {
        black_box(map_auth(len, bare()));
    });
    black_box(&auth);
    let _ = map_live;
    let map = {
        let (m, _, _, live) = counted(|| map_auth(len, bare()));
        black_box(m);
        live as f64 / MSNS as f64
    };
    println!(
        "\nMemory per cached MSN, {len}-byte tokens: Auth's cache {per:.0} B ({:.0} B beyond one copy of the token, {:.1} allocations kept or churned per MSN); a RwLock<HashMap> of Authorization values {map:.0} B ({:.0} B beyond)",
        per - len as f64,
        allocs as f64 / MSNS as f64,
        map - len as f64,
    );
}

fn warm_one<S, R, E>(rt: &tokio::runtime::Runtime, svc: &S, fx: &Fixture)
where
    S: Service<Request<Body>, Response = R, Error = E> + Clone,
    E: std::fmt::Debug,
{
    rt.block_on(async {
        svc.clone()
            .oneshot(fx.request(MSNS as usize - 1))
            .await
            .unwrap();
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs = args
        .iter()
        .position(|a| a == "--measurement-time")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(3.0);
    if args.iter().any(|a| a == "--list") {
        return;
    }
    if std::env::var("STACK_ONLY").is_ok_and(|o| o == "memory") {
        // Bytes per cached MSN only.
        memory(436);
        memory(1200);
        return;
    }
    // Rounds scale with the measurement time (about 3 s per table at the default).
    let rounds = ((secs * 5.0) as usize).max(5) | 1;
    if std::env::var("STACK_ONLY").is_ok_and(|o| o == "throughput") {
        // The 2-worker throughput table only.
        throughput(436, rounds.min(7));
        return;
    }
    let only = std::env::var("STACK_ONLY").is_ok();
    let method: Option<String> = std::env::var("STACK_METHOD").ok();
    let token: Option<usize> = std::env::var("STACK_TOKEN")
        .ok()
        .and_then(|s| s.parse().ok());
    for len in [436usize, 1200] {
        if token.is_some_and(|t| t != len) {
            continue;
        }
        for post in [true, false] {
            if method.as_deref().is_some_and(|m| (m == "post") != post) {
                continue;
            }
            per_request(len, post, rounds, 500);
        }
        if !only {
            memory(len);
        }
    }
    if !only {
        throughput(436, rounds.min(7));
    }
}
