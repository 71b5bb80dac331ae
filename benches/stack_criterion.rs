//! The side-by-side comparison of `benches/stack.rs` as a criterion group: a bare
//! service, tower-http's static header layers setting the same six headers
//! ("trio6"), `Auth` alone and the preset, for a `GET` and an ePayment create
//! (`POST`, 1 KiB body) with a warm token.
//! `cargo bench --bench stack` prints the full table (ratios, allocations, bytes
//! per MSN, throughput) in one run; this group gives criterion's statistics.

#[path = "support/mod.rs"]
mod support;

use std::convert::Infallible;
use std::hint::black_box;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{HeaderName, HeaderValue, Request, Response};
use http_body_util::Full;
use tower::{Layer, Service, ServiceExt};
use tower_vipps::token::TokenClient;
use tower_vipps::{AuthLayer, Environment, KeySet, Keyring, Msn};

type Body = Full<Bytes>;

const CREATE: &str = "https://apitest.vipps.no/epayment/v1/payments";
const GET: &str = "https://apitest.vipps.no/epayment/v1/payments/acme-shop-123-order123abc";
const SUB_KEY: &str = "0123456789abcdef0123456789abcdef";
const TOKEN: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjQxMDI0NDQ4MDB9.c2lnbmF0dXJl";

fn request() -> Request<Body> {
    let mut req = Request::new(Full::new(Bytes::new()));
    *req.uri_mut() = http::Uri::from_static(GET);
    req.headers_mut().insert(
        HeaderName::from_static("merchant-serial-number"),
        HeaderValue::from_static("123456"),
    );
    req
}

fn create(body: &Bytes) -> Request<Body> {
    let mut req = Request::new(Full::new(body.clone()));
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = http::Uri::from_static(CREATE);
    req.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    req.headers_mut().insert(
        HeaderName::from_static("merchant-serial-number"),
        HeaderValue::from_static("123456"),
    );
    req
}

fn bare() -> impl Service<
    Request<Body>,
    Response = Response<Body>,
    Error = Infallible,
    Future = std::future::Ready<Result<Response<Body>, Infallible>>,
> + Clone
+ Send
+ 'static {
    tower::service_fn(|req: Request<Body>| {
        black_box(&req);
        std::future::ready(Ok(Response::new(Full::new(Bytes::new()))))
    })
}

fn keyring() -> Keyring {
    let keys = KeySet::partner(Environment::Test, "partner-client-id", "secret", SUB_KEY)
        .unwrap()
        .connected_msns([Msn::new(123_456).unwrap()]);
    Keyring::builder()
        .key_set(keys)
        .system("acme-shop", "1.2.3")
        .build()
        .unwrap()
}

fn token_endpoint() -> TokenClient {
    TokenClient::new(tower::service_fn(|_req: Request<Body>| async {
        let body =
            format!(r#"{{"token_type":"Bearer","expires_in":"86400","access_token":"{TOKEN}"}}"#);
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
    }))
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let trio6 = support::trio6(TOKEN, SUB_KEY, bare());
    let auth = AuthLayer::new(keyring())
        .token_client(token_endpoint())
        .layer(bare());
    let preset = tower_vipps::layer(keyring())
        .token_client(token_endpoint())
        .layer(bare());
    rt.block_on(async {
        auth.clone().oneshot(request()).await.unwrap();
        preset.clone().oneshot(request()).await.unwrap();
    });

    let mut group = c.benchmark_group("stack_get_warm_token");
    group.bench_function("bare", |b| {
        let mut svc = bare();
        b.to_async(&rt)
            .iter_batched(request, |req| svc.call(req), BatchSize::SmallInput)
    });
    group.bench_function("trio6", |b| {
        let mut svc = trio6.clone();
        b.to_async(&rt)
            .iter_batched(request, |req| svc.call(req), BatchSize::SmallInput)
    });
    group.bench_function("auth", |b| {
        let mut svc = auth.clone();
        b.to_async(&rt)
            .iter_batched(request, |req| svc.call(req), BatchSize::SmallInput)
    });
    group.bench_function("preset", |b| {
        let mut svc = preset.clone();
        b.to_async(&rt)
            .iter_batched(request, |req| svc.call(req), BatchSize::SmallInput)
    });
    group.finish();

    let body = support::body_1k();
    rt.block_on(async {
        preset.clone().oneshot(create(&body)).await.unwrap();
    });
    let mut group = c.benchmark_group("stack_post_create_1KiB_warm_token");
    group.bench_function("bare", |b| {
        let mut svc = bare();
        b.to_async(&rt)
            .iter_batched(|| create(&body), |req| svc.call(req), BatchSize::SmallInput)
    });
    group.bench_function("trio6", |b| {
        let mut svc = trio6.clone();
        b.to_async(&rt)
            .iter_batched(|| create(&body), |req| svc.call(req), BatchSize::SmallInput)
    });
    group.bench_function("auth", |b| {
        let mut svc = auth.clone();
        b.to_async(&rt)
            .iter_batched(|| create(&body), |req| svc.call(req), BatchSize::SmallInput)
    });
    group.bench_function("preset", |b| {
        let mut svc = preset.clone();
        b.to_async(&rt)
            .iter_batched(|| create(&body), |req| svc.call(req), BatchSize::SmallInput)
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
