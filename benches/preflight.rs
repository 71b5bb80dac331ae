//! The cost of `Preflight` on a valid request, next to the bare service: an
//! ePayment create payment with a 1 KiB JSON body, and a GET without a body.

#[path = "support/mod.rs"]
mod support;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::Request;
use http_body_util::Full;
use support::body_1k;
use tower::{Layer, Service, ServiceExt};
use tower_vipps::preflight::PreflightLayer;
use tower_vipps::token::{KnownTokens, MintedFor};
use tower_vipps::{Environment, Fingerprint, Keyring, Msn};

const TOKEN: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ4IiwiZXhwIjo0MTAyNDQ0ODAwfQ.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2lnbmF0dXJl";
const SUB_KEY: &str = "0123456789abcdef0123456789abcdef";

struct One(MintedFor);

impl KnownTokens for One {
    fn minted_for(&self, token: &str) -> Option<MintedFor> {
        (token == TOKEN).then(|| self.0.clone())
    }
}

fn create(body: &Bytes) -> Request<Full<Bytes>> {
    Request::post("https://apitest.vipps.no/epayment/v1/payments")
        .header("Authorization", format!("Bearer {TOKEN}"))
        .header("Ocp-Apim-Subscription-Key", SUB_KEY)
        .header("Merchant-Serial-Number", "123456")
        .header("Idempotency-Key", "49ca711a-acee-4d01-993b-9487112e1def")
        .header("Vipps-System-Name", "acme-shop")
        .header("Vipps-System-Version", "1.2.3")
        .header("Content-Type", "application/json")
        .body(Full::new(body.clone()))
        .unwrap()
}

fn get() -> Request<Full<Bytes>> {
    Request::get("https://apitest.vipps.no/epayment/v1/payments/acme-shop-123-order123abc")
        .header("Authorization", format!("Bearer {TOKEN}"))
        .header("Ocp-Apim-Subscription-Key", SUB_KEY)
        .header("Merchant-Serial-Number", "123456")
        .header("Vipps-System-Name", "acme-shop")
        .header("Vipps-System-Version", "1.2.3")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let msn: Msn = "123456".parse().unwrap();
    let keyring = Keyring::builder()
        .merchant(
            Environment::Test,
            msn,
            "client-id",
            "client-secret",
            SUB_KEY,
        )
        .build()
        .unwrap();
    // The same merchant among 10,000 others: lookups must not scan the keyring.
    let big_keyring = (0..10_000u64)
        .fold(
            Keyring::builder().merchant(
                Environment::Test,
                msn,
                "client-id",
                "client-secret",
                SUB_KEY,
            ),
            |builder, i| {
                builder.merchant(
                    Environment::Test,
                    Msn::new(200_000 + i).unwrap(),
                    format!("client-{i}"),
                    format!("secret-{i}"),
                    format!("{i:032x}"),
                )
            },
        )
        .build()
        .unwrap();
    let known = Arc::new(One(MintedFor {
        environment: Environment::Test,
        client_id: Arc::from("client-id"),
        subscription_key: Fingerprint::of(SUB_KEY.as_bytes()),
        msn: Some(msn),
        partner: false,
    }));
    let bare = tower::service_fn(|req: Request<Full<Bytes>>| async move {
        Ok::<_, Infallible>(http::Response::new(req.into_body()))
    });
    let alone = PreflightLayer::new().layer(bare);
    let keyed = PreflightLayer::new()
        .keyring(keyring)
        .known_tokens(known.clone())
        .layer(bare);
    let big = PreflightLayer::new()
        .keyring(big_keyring)
        .known_tokens(known)
        .layer(bare);
    // Every variant accepts the requests.
    let body = body_1k();
    rt.block_on(async {
        alone.clone().oneshot(create(&body)).await.unwrap();
        keyed.clone().oneshot(create(&body)).await.unwrap();
        keyed.clone().oneshot(get()).await.unwrap();
        big.clone().oneshot(create(&body)).await.unwrap();
    });

    let mut group = c.benchmark_group("create_payment_1KiB_json");
    group.bench_function("bare", |b| {
        let mut svc = bare;
        b.to_async(&rt)
            .iter_batched(|| create(&body), |req| svc.call(req), BatchSize::SmallInput)
    });
    group.bench_function("preflight", |b| {
        let mut svc = alone.clone();
        b.to_async(&rt)
            .iter_batched(|| create(&body), |req| svc.call(req), BatchSize::SmallInput)
    });
    group.bench_function("preflight_keyring_tokens", |b| {
        let mut svc = keyed.clone();
        b.to_async(&rt)
            .iter_batched(|| create(&body), |req| svc.call(req), BatchSize::SmallInput)
    });
    group.bench_function("preflight_keyring_10k_merchants", |b| {
        let mut svc = big.clone();
        b.to_async(&rt)
            .iter_batched(|| create(&body), |req| svc.call(req), BatchSize::SmallInput)
    });
    group.finish();

    let mut group = c.benchmark_group("get_payment_no_body");
    group.bench_function("bare", |b| {
        let mut svc = bare;
        b.to_async(&rt)
            .iter_batched(get, |req| svc.call(req), BatchSize::SmallInput)
    });
    group.bench_function("preflight", |b| {
        let mut svc = alone.clone();
        b.to_async(&rt)
            .iter_batched(get, |req| svc.call(req), BatchSize::SmallInput)
    });
    group.bench_function("preflight_keyring_tokens", |b| {
        let mut svc = keyed.clone();
        b.to_async(&rt)
            .iter_batched(get, |req| svc.call(req), BatchSize::SmallInput)
    });
    group.bench_function("preflight_keyring_10k_merchants", |b| {
        let mut svc = big.clone();
        b.to_async(&rt)
            .iter_batched(get, |req| svc.call(req), BatchSize::SmallInput)
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
