//! Observability: the preset's spans into `tracing-subscriber` and its metrics into
//! a Prometheus exporter, against the embedded emulator. No keys, no network.
//!
//! ```sh
//! cargo run --example observe --features emulator,metrics
//! ```
//!
//! It makes a few calls (a payment created and read, one read retried after a
//! `502`, one request refused before sending), prints each span as it closes, then
//! the metrics in Prometheus' text format.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use metrics_exporter_prometheus::PrometheusBuilder;
use serde_json::json;
use tower::{Layer, ServiceExt};
use tower_vipps::emulator::{Emulator, Endpoint, READY_USER, TEST_MERCHANT};
use tower_vipps::retry::RetryPolicy;
use tower_vipps::{BoxError, Environment};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // Spans: one line per span when it closes, with its fields. `vipps.call` is at
    // INFO, `vipps.attempt` at DEBUG, `vipps.token_fetch` at INFO.
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new("tower_vipps=debug"))
        .with_span_events(FmtSpan::CLOSE)
        .with_target(false)
        .init();
    // Metrics: a Prometheus recorder (no HTTP listener here; render on demand).
    let prometheus = PrometheusBuilder::new().install_recorder()?;

    let emulator = Emulator::start().await?;
    let base = emulator.base_url(Environment::Test);
    let msn = TEST_MERCHANT.msn().expect("a merchant has an MSN");
    let keyring = emulator
        .keyring_builder()
        .key_set(TEST_MERCHANT.key_set())
        .build()?;
    let hyper_client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let client = tower_vipps::layer(keyring)
        .retry(RetryPolicy::new().base_delay(Duration::from_millis(10)))
        .layer(hyper_client);
    let request = |method: Method, url: String, body: Bytes| {
        Request::builder()
            .method(method)
            .uri(url)
            .header("Merchant-Serial-Number", msn.to_string())
            .header("Content-Type", "application/json")
            .body(Full::new(body))
            .expect("a valid request")
    };

    let reference = format!("observe-{}", std::process::id());
    let create = json!({
        "amount": {"value": 10000, "currency": "NOK"},
        "paymentMethod": {"type": "WALLET"},
        "customer": {"phoneNumber": READY_USER},
        "reference": reference,
        "returnUrl": "https://acme.example/return",
        "userFlow": "WEB_REDIRECT",
        "paymentDescription": "Observability"
    });
    let url = format!("{base}/epayment/v1/payments");
    let created = client
        .clone()
        .oneshot(request(Method::POST, url, create.to_string().into()))
        .await?;
    println!("\ncreate: {}\n", created.status());

    emulator.faults().bad_gateway_next(Endpoint::GetPayment, 1);
    let url = format!("{base}/epayment/v1/payments/{reference}");
    let read = client
        .clone()
        .oneshot(request(Method::GET, url, Bytes::new()))
        .await?;
    println!("\nget (after one 502): {}\n", read.status());

    let refused = Request::get(format!("{base}/epayment/v1/payments/{reference}"))
        .header("Merchant-Serial-Number", msn.to_string())
        .header("Authorization", "bearer a-token-of-my-own")
        .body(Full::new(Bytes::new()))?;
    if let Err(err) = client.clone().oneshot(refused).await {
        println!("\nrefused: {}\n", err.code());
    }

    println!("--- metrics ---\n{}", prometheus.render());
    Ok(())
}
