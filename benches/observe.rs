//! The cost of the preset's spans with no subscriber installed: a bare service,
//! next to the same service under `CallSpanLayer` and `AttemptSpanLayer` (the two
//! span layers of the preset), for an ePayment GET and a create POST.
//!
//! `cargo bench --bench observe` (add `--features metrics` to include the metric
//! recording, with no recorder installed).

use std::convert::Infallible;
use std::hint::black_box;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
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

criterion_group!(benches, spans);
criterion_main!(benches);
