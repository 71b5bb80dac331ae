//! The warm path of `Auth` with a `RedisStore` behind its `TokenCache`, next to a
//! `MemoryStore` and no store: the cache answers from memory first, so the store
//! must cost nothing once tokens are cached. 1,000 partner MSNs, warmed first.
//! Needs Redis at `REDIS_URL` (default redis://127.0.0.1:6379) for the Redis case.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::{HeaderName, HeaderValue, Request, Response};
use http_body_util::Full;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_vipps::token::{MemoryStore, RedisStore, TokenCache, TokenClient, TokenStore};
use tower_vipps::{AuthLayer, Environment, KeySet, Keyring, Msn};

const MSNS: u64 = 1_000;
const URI: &str = "https://api.vipps.no/epayment/v1/payments/ref-12345678";

type Body = Full<Bytes>;

fn token_endpoint() -> TokenClient {
    TokenClient::new(tower::service_fn(|_req: Request<Body>| async {
        let body = format!(
            r#"{{"token_type":"Bearer","expires_in":"86400","access_token":"eyJhbGciOiJub25lIn0.eyJuIjo{}fQ.c2lnbmF0dXJl"}}"#,
            fastrand::u32(..)
        );
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
    }))
}

fn msns() -> Vec<Msn> {
    (0..MSNS).map(|i| Msn::new(100_000 + i).unwrap()).collect()
}

fn keyring() -> Keyring {
    let partner = KeySet::partner(
        Environment::Production,
        "partner-client-id",
        "partner-secret",
        "partner-subscription-key",
    )
    .unwrap()
    .connected_msns(msns());
    Keyring::builder().key_set(partner).build().unwrap()
}

fn request(msn: &HeaderValue) -> Request<Body> {
    let mut req = Request::new(Full::new(Bytes::new()));
    *req.uri_mut() = http::Uri::from_static(URI);
    req.headers_mut().insert(
        HeaderName::from_static("merchant-serial-number"),
        msn.clone(),
    );
    req
}

fn bench_store(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    store: Option<Arc<dyn TokenStore>>,
) {
    let mut cache = TokenCache::builder();
    if let Some(store) = store {
        cache = cache.store(store);
    }
    let svc = ServiceBuilder::new()
        .layer(
            AuthLayer::new(keyring())
                .with_cache(cache.build())
                .token_client(token_endpoint()),
        )
        .service(tower::service_fn(|req: Request<Body>| {
            black_box(&req);
            std::future::ready(Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))))
        }));
    let headers: Vec<HeaderValue> = msns().iter().map(|m| m.to_header_value()).collect();
    rt.block_on(async {
        for h in &headers {
            svc.clone().oneshot(request(h)).await.unwrap();
        }
    });
    let mut svc = svc;
    let mut i = 0usize;
    let mut group = c.benchmark_group("warm_request_store");
    group.throughput(Throughput::Elements(1));
    group.bench_function(name, |b| {
        b.iter(|| {
            i = (i + 1) % headers.len();
            let res = svc.call(request(&headers[i])).now_or_never().unwrap();
            black_box(res)
        })
    });
    group.finish();
}

fn warm_path(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    bench_store(c, &rt, "no_store", None);
    bench_store(c, &rt, "memory", Some(Arc::new(MemoryStore::new())));
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let redis = RedisStore::builder(&url)
        .seal_key([42; 32])
        .prefix(format!("tv-bench-{:016x}:", fastrand::u64(..)))
        .build()
        .unwrap();
    if rt.block_on(redis.connect(Duration::from_secs(1))) {
        bench_store(c, &rt, "redis", Some(Arc::new(redis.clone())));
        println!("redis store after warm-up and bench: {:?}", redis.stats());
    } else {
        println!("SKIPPED redis: no Redis answers at {url}");
    }
}

criterion_group!(benches, warm_path);
criterion_main!(benches);
