//! Warm-path cost of `Auth` per request, next to a bare service and tower-http's
//! static `AddAuthorization` + `SetRequestHeader` ×5 + `SetSensitiveRequestHeaders`;
//! and throughput on a 2-worker runtime with 256 tasks, over 10k MSNs.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::{HeaderName, HeaderValue, Request, Response};
use http_body_util::Full;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_http::auth::AddAuthorizationLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetRequestHeaderLayer;
use tower_vipps::token::TokenClient;
use tower_vipps::{AuthLayer, Environment, KeySet, Keyring, Msn};

const MSNS: u64 = 10_000;
const URI: &str = "https://apitest.vipps.no/epayment/v1/payments/ref-12345678";

type Body = Full<Bytes>;

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

fn token_endpoint() -> TokenClient {
    TokenClient::new(tower::service_fn(|_req: Request<Body>| async {
        let body = r#"{"token_type":"Bearer","expires_in":"86400","access_token":"eyJhbGciOiJub25lIn0.eyJuIjoxfQ.c2lnbmF0dXJl"}"#;
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
            body.as_bytes(),
        ))))
    }))
}

fn msns() -> Vec<Msn> {
    (0..MSNS).map(|i| Msn::new(100_000 + i).unwrap()).collect()
}

fn keyring() -> Keyring {
    let partner = KeySet::partner(
        Environment::Test,
        "partner-client-id",
        "partner-secret",
        "partner-subscription-key",
    )
    .unwrap()
    .connected_msns(msns());
    Keyring::builder().key_set(partner).build().unwrap()
}

fn requests() -> Vec<(HeaderValue, Msn)> {
    msns()
        .into_iter()
        .map(|m| (m.to_header_value(), m))
        .collect()
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

fn warm_auth(
    rt: &tokio::runtime::Runtime,
    replay: bool,
) -> impl Service<
    Request<Body>,
    Response = Response<tower_vipps::auth::AuthBody<Body>>,
    Error = tower_vipps::VippsError,
    Future = impl std::future::Future<
        Output = Result<Response<tower_vipps::auth::AuthBody<Body>>, tower_vipps::VippsError>,
    > + Send,
> + Clone
+ Send
+ 'static
where
{
    let svc = ServiceBuilder::new()
        .layer(
            AuthLayer::new(keyring())
                .token_client(token_endpoint())
                .replay_stale_token(replay),
        )
        .service(bare());
    rt.block_on(async {
        for (h, _) in requests() {
            svc.clone().oneshot(request(&h)).await.unwrap();
        }
    });
    svc
}

fn trio() -> impl Service<
    Request<Body>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl std::future::Future<Output = Result<Response<Body>, Infallible>> + Send,
> + Clone
+ Send
+ 'static {
    let mut token = HeaderValue::from_static("Bearer eyJhbGciOiJub25lIn0.eyJuIjoxfQ.c2lnbmF0dXJl");
    token.set_sensitive(true);
    ServiceBuilder::new()
        .layer(SetSensitiveRequestHeadersLayer::new([
            http::header::AUTHORIZATION,
            HeaderName::from_static("ocp-apim-subscription-key"),
        ]))
        .layer(AddAuthorizationLayer::bearer(
            "eyJhbGciOiJub25lIn0.eyJuIjoxfQ.c2lnbmF0dXJl",
        ))
        .layer(SetRequestHeaderLayer::overriding(
            HeaderName::from_static("ocp-apim-subscription-key"),
            HeaderValue::from_static("partner-subscription-key"),
        ))
        .layer(SetRequestHeaderLayer::overriding(
            HeaderName::from_static("vipps-system-name"),
            HeaderValue::from_static("tower-vipps"),
        ))
        .layer(SetRequestHeaderLayer::overriding(
            HeaderName::from_static("vipps-system-version"),
            HeaderValue::from_static("0.1.0"),
        ))
        .layer(SetRequestHeaderLayer::overriding(
            HeaderName::from_static("vipps-system-plugin-name"),
            HeaderValue::from_static("tower-vipps"),
        ))
        .layer(SetRequestHeaderLayer::overriding(
            HeaderName::from_static("vipps-system-plugin-version"),
            HeaderValue::from_static("0.1.0"),
        ))
        .service(bare())
}

fn per_request(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let reqs = requests();
    let mut group = c.benchmark_group("warm_request_10k_msns");
    group.throughput(Throughput::Elements(1));

    let mut svc = bare();
    let mut i = 0usize;
    group.bench_function("bare", |b| {
        b.iter(|| {
            i = (i + 1) % reqs.len();
            let res = svc.call(request(&reqs[i].0)).now_or_never().unwrap();
            black_box(res)
        })
    });

    let mut svc = trio();
    group.bench_function("tower_http_trio", |b| {
        b.iter(|| {
            i = (i + 1) % reqs.len();
            let res = svc.call(request(&reqs[i].0)).now_or_never().unwrap();
            black_box(res)
        })
    });

    let mut svc = warm_auth(&rt, true);
    group.bench_function("auth", |b| {
        b.iter(|| {
            i = (i + 1) % reqs.len();
            let res = svc.call(request(&reqs[i].0)).now_or_never().unwrap();
            black_box(res)
        })
    });

    let mut svc = warm_auth(&rt, false);
    group.bench_function("auth_without_replay", |b| {
        b.iter(|| {
            i = (i + 1) % reqs.len();
            let res = svc.call(request(&reqs[i].0)).now_or_never().unwrap();
            black_box(res)
        })
    });
    group.finish();
}

async fn drive<S, R, E>(svc: S, reqs: Arc<Vec<(HeaderValue, Msn)>>, tasks: usize, per_task: usize)
where
    S: Service<Request<Body>, Response = R, Error = E> + Clone + Send + 'static,
    S::Future: Send,
    R: Send + 'static,
    E: std::fmt::Debug + Send + 'static,
{
    let mut handles = Vec::with_capacity(tasks);
    for t in 0..tasks {
        let mut svc = svc.clone();
        let reqs = reqs.clone();
        handles.push(tokio::spawn(async move {
            let mut idx = t.wrapping_mul(7919) % reqs.len();
            for _ in 0..per_task {
                idx = (idx + 97) % reqs.len();
                let res = svc.ready().await.unwrap().call(request(&reqs[idx].0)).await;
                black_box(res.unwrap());
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
}

fn throughput(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let reqs = Arc::new(requests());
    const TASKS: usize = 256;
    const PER_TASK: usize = 200;
    let mut group = c.benchmark_group("throughput_2_workers_256_tasks");
    group.throughput(Throughput::Elements((TASKS * PER_TASK) as u64));
    let bare_svc = bare();
    group.bench_function("bare", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                rt.block_on(drive(bare_svc.clone(), reqs.clone(), TASKS, PER_TASK));
            }
            start.elapsed()
        })
    });
    let trio_svc = trio();
    group.bench_function("tower_http_trio", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                rt.block_on(drive(trio_svc.clone(), reqs.clone(), TASKS, PER_TASK));
            }
            start.elapsed()
        })
    });
    let auth_svc = warm_auth(&rt, true);
    group.bench_function("auth", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                rt.block_on(drive(auth_svc.clone(), reqs.clone(), TASKS, PER_TASK));
            }
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, per_request, throughput);
criterion_main!(benches);
