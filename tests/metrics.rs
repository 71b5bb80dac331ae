//! The metrics of a scripted run against the emulator, counted exactly: one token
//! fetch, the cache hits, one refusal by its cause, the retries by reason, the
//! rate limits and the calls by API, operation and outcome.
//!
//! One test in this binary: the recorder is process-global.

use std::collections::HashMap;
use std::time::Duration;

mod observe_support;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use observe_support::{create_body, request};
use tower::{Layer, ServiceExt};
use tower_vipps::Environment;
use tower_vipps::emulator::{Emulator, Endpoint, TEST_MERCHANT};
use tower_vipps::observe::metrics as names;
use tower_vipps::retry::RetryPolicy;

/// (name, sorted labels) -> value, for counters; histograms by their sample count.
type Metrics = HashMap<(String, Vec<(String, String)>), u64>;

fn snapshot(snapshotter: &metrics_util::debugging::Snapshotter) -> Metrics {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let (kind, key) = key.into_parts();
            let _ = kind;
            let mut labels: Vec<_> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            let value = match value {
                DebugValue::Counter(n) => n,
                DebugValue::Histogram(samples) => samples.len() as u64,
                DebugValue::Gauge(g) => g.into_inner() as u64,
            };
            ((key.name().to_owned(), labels), value)
        })
        .collect()
}

fn get(metrics: &Metrics, name: &str, labels: &[(&str, &str)]) -> u64 {
    let mut labels: Vec<_> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.sort();
    metrics
        .get(&(name.to_owned(), labels))
        .copied()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_scripted_run_counts_exactly() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this binary");

    let emulator = Emulator::start().await.unwrap();
    let base = emulator.base_url(Environment::Test);
    let keyring = emulator
        .keyring_builder()
        .key_set(TEST_MERCHANT.key_set())
        .build()
        .unwrap();
    let hyper_client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let client = tower_vipps::layer(keyring)
        .retry(
            RetryPolicy::new()
                .base_delay(Duration::from_millis(1))
                .retry_after_cap(Duration::from_secs(5)),
        )
        .layer(hyper_client);

    // 1 create (the token fetch: 1 miss), then 24 reads (24 hits), two of them
    // retried once: after a 502, and after a 429 with Retry-After: 1.
    let reference = "metrics-run-00001";
    let create = create_body(reference, "Metrics");
    let created = client
        .clone()
        .oneshot(request(
            Method::POST,
            format!("{base}/epayment/v1/payments"),
            create,
        ))
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    for i in 0..24 {
        if i == 5 {
            emulator.faults().bad_gateway_next(Endpoint::GetPayment, 1);
        }
        if i == 10 {
            emulator
                .faults()
                .rate_limit_next(Endpoint::GetPayment, 1, Duration::from_secs(1));
        }
        let read = client
            .clone()
            .oneshot(request(
                Method::GET,
                format!("{base}/epayment/v1/payments/{reference}"),
                String::new(),
            ))
            .await
            .unwrap();
        assert_eq!(read.status(), 200);
    }
    // 1 refusal: a malformed MSN header.
    let refused = Request::get(format!("{base}/epayment/v1/payments/{reference}"))
        .header("Merchant-Serial-Number", "12a456")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let err = client.clone().oneshot(refused).await.unwrap_err();
    assert_eq!(err.code(), "vipps::malformed_msn");

    let m = snapshot(&snapshotter);
    assert_eq!(
        get(
            &m,
            names::TOKEN_FETCHES,
            &[("environment", "test"), ("outcome", "ok")]
        ),
        1
    );
    assert_eq!(get(&m, names::TOKEN_CACHE, &[("result", "miss")]), 1);
    assert_eq!(get(&m, names::TOKEN_CACHE, &[("result", "hit")]), 24);
    assert_eq!(
        get(&m, names::TOKEN_CACHE, &[("result", "refresh_ahead")]),
        0
    );
    assert_eq!(get(&m, names::TOKEN_WAIT, &[]), 1, "one wait recorded");
    assert_eq!(
        get(
            &m,
            names::REFUSALS,
            &[("api", "epayment"), ("cause", "vipps::malformed_msn")]
        ),
        1
    );
    assert_eq!(get(&m, names::RETRIES, &[("reason", "status_502")]), 1);
    assert_eq!(get(&m, names::RETRIES, &[("reason", "status_429")]), 1);
    assert_eq!(get(&m, names::RATE_LIMITED, &[("api", "epayment")]), 1);
    assert_eq!(
        get(
            &m,
            names::CALLS,
            &[
                ("api", "epayment"),
                ("operation", "create_payment"),
                ("outcome", "ok")
            ]
        ),
        1
    );
    assert_eq!(
        get(
            &m,
            names::CALLS,
            &[
                ("api", "epayment"),
                ("operation", "get_payment"),
                ("outcome", "ok")
            ]
        ),
        24
    );
    assert_eq!(
        get(
            &m,
            names::CALLS,
            &[
                ("api", "epayment"),
                ("operation", "get_payment"),
                ("outcome", "vipps::malformed_msn")
            ]
        ),
        1
    );
    assert_eq!(
        get(
            &m,
            names::CALL_DURATION,
            &[("api", "epayment"), ("operation", "get_payment")]
        ),
        25
    );
    // Labels are bounded: no MSN, no reference, no path in any label.
    for (name, labels) in m.keys() {
        for (key, value) in labels {
            assert!(
                !matches!(key.as_str(), "msn" | "reference" | "path")
                    && !value.contains("123456")
                    && !value.contains(reference),
                "{name}: unbounded label {key}={value}"
            );
        }
    }
}
