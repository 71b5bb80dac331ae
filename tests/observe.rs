//! The preset's spans against the emulator: a token fetch, a success, a retried
//! call and a refusal, each span with its fields, parents and links; no secret in
//! any field.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod observe_support;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use observe_support::{create_body, request};
use tower::{Layer, ServiceExt};
use tower_vipps::Environment;
use tower_vipps::emulator::{Emulator, Endpoint, TEST_MERCHANT};
use tower_vipps::retry::RetryPolicy;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span as the capture saw it.
#[derive(Clone, Debug, Default)]
struct SpanRecord {
    id: u64,
    name: &'static str,
    parent: Option<u64>,
    fields: BTreeMap<String, String>,
    follows_from: Vec<u64>,
}

#[derive(Clone, Default)]
struct Capture {
    spans: Arc<Mutex<Vec<SpanRecord>>>,
    events: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut record = SpanRecord {
            id: id.into_u64(),
            name: attrs.metadata().name(),
            parent: ctx
                .span(id)
                .and_then(|span| span.parent().map(|p| p.id().into_u64())),
            ..SpanRecord::default()
        };
        attrs.record(&mut Fields(&mut record.fields));
        self.spans.lock().unwrap().push(record);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut spans = self.spans.lock().unwrap();
        if let Some(span) = spans.iter_mut().rev().find(|s| s.id == id.into_u64()) {
            values.record(&mut Fields(&mut span.fields));
        }
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, _ctx: Context<'_, S>) {
        let mut spans = self.spans.lock().unwrap();
        if let Some(span) = spans.iter_mut().rev().find(|s| s.id == id.into_u64()) {
            span.follows_from.push(follows.into_u64());
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        if let Some(span) = ctx.event_span(event) {
            fields.insert("in_span".to_owned(), span.name().to_owned());
        }
        self.events.lock().unwrap().push(fields);
    }
}

impl Capture {
    fn named(&self, name: &str) -> Vec<SpanRecord> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.name == name)
            .cloned()
            .collect()
    }

    fn clear(&self) {
        self.spans.lock().unwrap().clear();
        self.events.lock().unwrap().clear();
    }
}

fn field<'a>(span: &'a SpanRecord, name: &str) -> Option<&'a str> {
    span.fields.get(name).map(String::as_str)
}

#[tokio::test]
async fn spans_of_a_token_fetch_a_success_a_retry_and_a_refusal() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry()
        .with(capture.clone())
        .with(tracing_subscriber::filter::LevelFilter::TRACE);
    let _guard = tracing::subscriber::set_default(subscriber);

    let emulator = Emulator::start().await.unwrap();
    let base = emulator.base_url(Environment::Test);
    let keyring = emulator
        .keyring_builder()
        .key_set(TEST_MERCHANT.key_set())
        .build()
        .unwrap();
    let hyper_client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let client = tower_vipps::layer(keyring)
        .retry(RetryPolicy::new().base_delay(Duration::from_millis(1)))
        .layer(hyper_client);

    // 1. The first call: a token fetch, then the create.
    let reference = "observe-spans-0001";
    let create = create_body(reference, "Spans");
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

    let calls = capture.named("vipps.call");
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.parent, None);
    assert_eq!(field(call, "otel.kind"), Some("client"));
    assert_eq!(field(call, "http.request.method"), Some("POST"));
    assert_eq!(field(call, "server.address"), Some("127.0.0.1"));
    assert_eq!(field(call, "url.path"), Some("/epayment/v1/payments"));
    assert_eq!(field(call, "vipps.api"), Some("epayment"));
    assert_eq!(field(call, "vipps.operation"), Some("create_payment"));
    assert_eq!(field(call, "vipps.msn"), Some("123456"));
    assert_eq!(field(call, "vipps.environment"), Some("test"));
    assert_eq!(field(call, "vipps.idempotency_key").map(str::len), Some(36));
    assert_eq!(field(call, "vipps.attempts"), Some("1"));
    assert_eq!(field(call, "vipps.token"), Some("waited"));
    assert!(field(call, "vipps.token_wait_ms").is_some());
    assert_eq!(field(call, "http.response.status_code"), Some("201"));
    assert_eq!(field(call, "error.type"), None);

    let fetches = capture.named("vipps.token_fetch");
    assert_eq!(fetches.len(), 1, "one token fetch");
    let fetch = &fetches[0];
    assert_eq!(fetch.parent, None, "a fetch is shared: a root span");
    assert_eq!(field(fetch, "vipps.outcome"), Some("ok"));
    assert_eq!(field(fetch, "vipps.environment"), Some("test"));
    assert_eq!(field(fetch, "vipps.msn"), Some("123456"));
    assert_eq!(
        field(fetch, "vipps.key_set"),
        Some(
            TEST_MERCHANT
                .key_set()
                .subscription_key_fingerprint()
                .to_string()
                .as_str()
        )
    );
    assert!(field(fetch, "vipps.duration_ms").is_some());
    assert_eq!(
        call.follows_from,
        vec![fetch.id],
        "the call follows from the fetch"
    );

    let attempts = capture.named("vipps.attempt");
    assert_eq!(attempts.len(), 2, "the token request and the create");
    let token_attempt = attempts
        .iter()
        .find(|a| field(a, "vipps.api") == Some("accesstoken"))
        .unwrap();
    assert_eq!(token_attempt.parent, Some(fetch.id));
    assert_eq!(
        field(token_attempt, "http.response.status_code"),
        Some("200")
    );
    let create_attempt = attempts
        .iter()
        .find(|a| field(a, "vipps.api") == Some("epayment"))
        .unwrap();
    assert_eq!(create_attempt.parent, Some(call.id));
    assert_eq!(field(create_attempt, "vipps.attempt"), Some("1"));
    assert_eq!(
        field(create_attempt, "http.response.status_code"),
        Some("201")
    );

    // 2. A read retried after a 502: two attempts under one call, cached token.
    capture.clear();
    emulator.faults().bad_gateway_next(Endpoint::GetPayment, 1);
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
    let call = &capture.named("vipps.call")[0];
    assert_eq!(field(call, "vipps.operation"), Some("get_payment"));
    assert_eq!(field(call, "vipps.token"), Some("cached"));
    assert_eq!(field(call, "vipps.attempts"), Some("2"));
    assert_eq!(
        field(call, "vipps.idempotency_key"),
        None,
        "a GET has no key"
    );
    assert_eq!(field(call, "http.response.status_code"), Some("200"));
    let attempts = capture.named("vipps.attempt");
    let statuses: Vec<_> = attempts
        .iter()
        .map(|a| {
            assert_eq!(a.parent, Some(call.id));
            (
                field(a, "vipps.attempt").unwrap().to_owned(),
                field(a, "http.response.status_code").unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![("1".into(), "502".into()), ("2".into(), "200".into())]
    );
    assert!(capture.named("vipps.token_fetch").is_empty());
    let events = capture.events.lock().unwrap().clone();
    assert!(
        events.iter().any(
            |e| e.get("message").map(String::as_str) == Some("vipps: retrying")
                && e.get("in_span").map(String::as_str) == Some("vipps.call")
        ),
        "the retry event is inside the call's span: {events:?}"
    );

    // 3. A refusal: no attempt, the cause as error.type.
    capture.clear();
    let refused = Request::get(format!("{base}/epayment/v1/payments/{reference}"))
        .header("Merchant-Serial-Number", "12a456")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let err = client.clone().oneshot(refused).await.unwrap_err();
    assert!(err.is_refused());
    let call = &capture.named("vipps.call")[0];
    assert_eq!(field(call, "error.type"), Some(err.code()));
    assert_eq!(field(call, "vipps.attempts"), None);
    assert!(capture.named("vipps.attempt").is_empty());

    // 4. An error response: the status, the cause and the trace id.
    capture.clear();
    let missing = client
        .clone()
        .oneshot(request(
            Method::GET,
            format!("{base}/epayment/v1/payments/observe-no-such-payment"),
            String::new(),
        ))
        .await
        .unwrap_err();
    let call = &capture.named("vipps.call")[0];
    assert_eq!(field(call, "error.type"), Some(missing.code()));
    assert_eq!(field(call, "http.response.status_code"), Some("404"));
    assert!(field(call, "vipps.trace_id").is_some_and(|t| !t.is_empty()));

    // No secret, no token in any span field or event.
    let all: Vec<String> = capture
        .spans
        .lock()
        .unwrap()
        .iter()
        .flat_map(|s| s.fields.values().cloned())
        .chain(
            capture
                .events
                .lock()
                .unwrap()
                .iter()
                .flat_map(|e| e.values().cloned()),
        )
        .collect();
    for value in &all {
        for secret in [
            "emulator-test-merchant-123456-secret",
            "7e570000000000000000000000123456",
            "eyJ",
        ] {
            assert!(!value.contains(secret), "a secret in a span field: {value}");
        }
    }
}

#[tokio::test]
async fn waiting_calls_follow_the_one_fetch() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry()
        .with(capture.clone())
        .with(tracing_subscriber::filter::LevelFilter::INFO);
    let _guard = tracing::subscriber::set_default(subscriber);

    let emulator = Emulator::builder()
        .token_delay(Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    let base = emulator.base_url(Environment::Test);
    let keyring = emulator
        .keyring_builder()
        .key_set(TEST_MERCHANT.key_set())
        .build()
        .unwrap();
    let hyper_client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let client = tower_vipps::layer(keyring).layer(hyper_client);
    let calls = (0..10).map(|i| {
        let request = Request::get(format!("{base}/epayment/v1/payments/observe-wait-{i:04}"))
            .header("Merchant-Serial-Number", "123456")
            .body(Full::new(Bytes::new()))
            .unwrap();
        client.clone().oneshot(request)
    });
    let results = futures_util::future::join_all(calls).await;
    assert_eq!(results.len(), 10);
    assert_eq!(emulator.count(Endpoint::AccessToken), 1);

    let fetches = capture.named("vipps.token_fetch");
    assert_eq!(fetches.len(), 1);
    let calls = capture.named("vipps.call");
    assert_eq!(calls.len(), 10);
    for call in &calls {
        assert_eq!(call.follows_from, vec![fetches[0].id]);
        assert_eq!(field(call, "vipps.token"), Some("waited"));
        // INFO only: the attempt spans are off, the attempts still counted.
        assert_eq!(field(call, "vipps.attempts"), Some("1"));
    }
    assert!(capture.named("vipps.attempt").is_empty());
}
