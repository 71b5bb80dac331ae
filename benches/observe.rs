//! The cost of the preset's spans with no subscriber installed: a bare service,
//! next to the same service under `CallSpanLayer` and `AttemptSpanLayer` (the two
//! span layers of the preset), for an ePayment GET and a create POST.
//!
//! `cargo bench --bench observe` (add `--features metrics` to include the metric
//! recording, with no recorder installed). For instruction counts, which a busy
//! machine does not disturb: `OBSERVE_ONLY=bare|spans OBSERVE_METHOD=get|post
//! valgrind --tool=callgrind --toggle-collect='observe::only_loop' target/release/deps/observe-…`
//! (20,000 requests in the counted loop).

use std::convert::Infallible;
use std::hint::black_box;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group};
use futures_util::FutureExt;
use http::{Method, Request, Response};
use http_body_util::Full;
use tower::{Service, ServiceBuilder};
use tower_vipps::observe::{AttemptSpanLayer, CallSpanLayer};

type Body = Full<Bytes>;

fn bare() -> impl Service<
    Request<Body>,
    Response = Response<Body>,
    Error = Infallible,
    Future = std::future::Ready<Result<Response<Body>, Infallible>>,
> + Clone {
    tower::service_fn(|req: Request<Body>| {
        black_box(&req);
        std::future::ready(Ok(Response::new(Full::new(Bytes::new()))))
    })
}

fn request(method: Method, path: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(format!("https://apitest.vipps.no{path}"))
        .header("Merchant-Serial-Number", "123456")
        .header("Idempotency-Key", "0f8fad5b-d9cb-469f-a165-70867728950e")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn spans(c: &mut Criterion) {
    for (name, method, path) in [
        ("get", Method::GET, "/epayment/v1/payments/acme-order-1001"),
        ("post", Method::POST, "/epayment/v1/payments"),
    ] {
        let mut group = c.benchmark_group(format!("spans_no_subscriber_{name}"));
        let mut svc = bare();
        group.bench_function("bare", |b| {
            b.iter_batched(
                || request(method.clone(), path),
                |req| black_box(svc.call(req).now_or_never().unwrap()),
                BatchSize::SmallInput,
            )
        });
        let mut svc = ServiceBuilder::new()
            .layer(CallSpanLayer::new())
            .layer(AttemptSpanLayer::new())
            .service(bare());
        group.bench_function("call_and_attempt_spans", |b| {
            b.iter_batched(
                || request(method.clone(), path),
                |req| black_box(svc.call(req).now_or_never().unwrap()),
                BatchSize::SmallInput,
            )
        });
        group.finish();
    }
}

/// The counted loop of `OBSERVE_ONLY` runs: `n` requests through `svc`, built
/// outside the loop.
#[inline(never)]
fn only_loop<S>(svc: &mut S, requests: Vec<Request<Body>>)
where
    S: Service<Request<Body>, Response = Response<Body>>,
    S::Future: std::future::Future<Output = Result<Response<Body>, S::Error>>,
{
    for req in requests {
        let res = svc.call(req).now_or_never();
        black_box(res.is_some());
    }
}

fn only(variant: &str) {
    let (method, path) = match std::env::var("OBSERVE_METHOD").as_deref() {
        Ok("post") => (Method::POST, "/epayment/v1/payments"),
        _ => (Method::GET, "/epayment/v1/payments/acme-order-1001"),
    };
    let requests = || (0..20_000).map(|_| request(method.clone(), path)).collect();
    match variant {
        "bare" => only_loop(&mut bare(), requests()),
        "spans" => {
            let mut svc = ServiceBuilder::new()
                .layer(CallSpanLayer::new())
                .layer(AttemptSpanLayer::new())
                .service(bare());
            only_loop(&mut svc, requests());
        }
        other => panic!("OBSERVE_ONLY={other}: bare or spans"),
    }
}

criterion_group!(benches, spans);

fn main() {
    if let Ok(variant) = std::env::var("OBSERVE_ONLY") {
        only(&variant);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
