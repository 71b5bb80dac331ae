//! Webhooks end to end: the emulator registers webhooks and delivers signed
//! events over loopback HTTP to a hyper server with `WebhookLayer`.

mod webhooks_support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_vipps::emulator::{Emulator, TEST_MERCHANT, WAITING_USER, WebhookRetry};
use tower_vipps::preflight::{Action, Policy, RuleId};
use tower_vipps::webhooks::{Delivery, EventName, WebhookLayer};
use tower_vipps::{Environment, Secret};
use webhooks_support::{Seen, recording};

// ---------------------------------------------------------------------------
// End to end: the emulator delivers to a hyper server with the layer.

struct Receiver {
    seen: Seen,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A hyper server on loopback: `make` builds the service (the layer over a
/// recording handler) once the registered URL's secret is known.
async fn receiver<F, S>(listener: TcpListener, seen: Seen, make: F) -> Receiver
where
    F: FnOnce(Seen) -> S,
    S: Service<
            Request<hyper::body::Incoming>,
            Response = Response<Full<Bytes>>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let service = make(seen.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Receiver { seen, task }
}

type Client = tower_vipps::VippsService<
    hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
>;

fn client(emulator: &Emulator) -> Client {
    client_with(emulator, Policy::default())
}

/// With Preflight's `WebhooksUrl` rule off, so invalid registrations reach the
/// emulator, which must refuse them as the real API does.
fn unchecked_client(emulator: &Emulator) -> Client {
    client_with(
        emulator,
        Policy::default().with(RuleId::WebhooksUrl, Action::Off),
    )
}

fn client_with(emulator: &Emulator, policy: Policy) -> Client {
    let keyring = emulator
        .keyring_builder()
        .key_set(TEST_MERCHANT.key_set())
        .build()
        .unwrap();
    let hyper_client =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http();
    tower_vipps::layer(keyring)
        .preflight_policy(policy)
        .layer(hyper_client)
}

async fn call(
    client: &mut Client,
    emulator: &Emulator,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let req = Request::builder()
        .method(method)
        .uri(format!("{}{path}", emulator.base_url(Environment::Test)))
        .header(
            "Merchant-Serial-Number",
            TEST_MERCHANT.msn().unwrap().to_string(),
        )
        .header("Content-Type", "application/json")
        .body(Full::new(body))
        .unwrap();
    match client.ready().await.unwrap().call(req).await {
        Ok(res) => {
            let status = res.status();
            let bytes = res.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            )
        }
        Err(err) => {
            let status = err.status().expect("an error response");
            let body = err.body().cloned().unwrap_or_default();
            (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
        }
    }
}

const ALL_EVENTS: [&str; 8] = [
    "epayments.payment.created.v1",
    "epayments.payment.aborted.v1",
    "epayments.payment.expired.v1",
    "epayments.payment.cancelled.v1",
    "epayments.payment.captured.v1",
    "epayments.payment.refunded.v1",
    "epayments.payment.authorized.v1",
    "epayments.payment.terminated.v1",
];

/// Registers a loopback URL; returns the listener, the URL and the secret.
async fn register(
    client: &mut Client,
    emulator: &Emulator,
) -> (TcpListener, String, Secret, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let url = format!("http://{addr}/vipps/webhooks?shop=acme");
    let (status, body) = call(
        client,
        emulator,
        Method::POST,
        "/webhooks/v1/webhooks",
        Some(json!({"url": url, "events": ALL_EVENTS})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let secret = Secret::new(body["secret"].as_str().unwrap());
    (
        listener,
        url,
        secret,
        body["id"].as_str().unwrap().to_owned(),
    )
}

/// Create (waiting user), approve in the test API, capture, refund.
async fn payment_flow(client: &mut Client, emulator: &Emulator, reference: &str) {
    let create = json!({
        "amount": {"value": 49900, "currency": "NOK"},
        "paymentMethod": {"type": "WALLET"},
        "customer": {"phoneNumber": WAITING_USER},
        "reference": reference,
        "userFlow": "PUSH_MESSAGE",
        "paymentDescription": "Two bags of coffee"
    });
    let (status, body) = call(
        client,
        emulator,
        Method::POST,
        "/epayment/v1/payments",
        Some(create),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let approve = format!("/epayment/v1/test/payments/{reference}/approve");
    let (status, body) = call(client, emulator, Method::POST, &approve, None).await;
    assert_eq!(status, 200, "{body}");
    let amount = |value: u64| json!({"modificationAmount": {"value": value, "currency": "NOK"}});
    let capture = format!("/epayment/v1/payments/{reference}/capture");
    let (status, body) = call(
        client,
        emulator,
        Method::POST,
        &capture,
        Some(amount(49900)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let refund = format!("/epayment/v1/payments/{reference}/refund");
    let (status, body) = call(client, emulator, Method::POST, &refund, Some(amount(10000))).await;
    assert_eq!(status, 200, "{body}");
}

fn fast_emulator() -> tower_vipps::emulator::EmulatorBuilder {
    Emulator::builder().webhook_retry(WebhookRetry::new(
        Duration::from_millis(1),
        Duration::from_millis(10),
        5,
    ))
}

async fn list_webhooks(client: &mut Client, emulator: &Emulator) -> (StatusCode, Value) {
    call(client, emulator, Method::GET, "/webhooks/v1/webhooks", None).await
}

fn names(seen: &Seen) -> Vec<(Option<EventName>, Delivery)> {
    seen.lock().unwrap().clone()
}

#[tokio::test]
async fn end_to_end_each_event_once_as_new_and_verified() {
    let emulator = fast_emulator().start().await.unwrap();
    let mut client = client(&emulator);
    let (listener, url, secret, id) = register(&mut client, &emulator).await;
    let (status, list) = list_webhooks(&mut client, &emulator).await;
    assert_eq!(status, 200);
    assert_eq!(list["webhooks"][0]["id"], id.as_str());
    assert_eq!(list["webhooks"][0]["url"], url.as_str());

    let layer = WebhookLayer::new(&url).unwrap().secret(secret);
    let rx = receiver(listener, Seen::default(), |seen| {
        layer.layer(recording(seen, vec![]))
    })
    .await;
    payment_flow(&mut client, &emulator, "acme-order-e2e-1").await;
    emulator.webhooks_idle().await;
    use EventName::*;
    assert_eq!(
        names(&rx.seen),
        [Created, Authorized, Captured, Refunded].map(|n| (Some(n), Delivery::New))
    );
    let counts = emulator.webhook_counts();
    assert_eq!((counts.delivered, counts.retried, counts.failed), (4, 0, 0));

    // Deleted: no more deliveries.
    let (status, _) = call(
        &mut client,
        &emulator,
        Method::DELETE,
        &format!("/webhooks/v1/webhooks/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, list) = list_webhooks(&mut client, &emulator).await;
    assert_eq!((status, list), (StatusCode::OK, json!({"webhooks": []})));
    payment_flow(&mut client, &emulator, "acme-order-e2e-2").await;
    emulator.webhooks_idle().await;
    assert_eq!(rx.seen.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn end_to_end_a_500_is_retried_and_a_processed_event_comes_back_as_duplicate() {
    let emulator = fast_emulator().start().await.unwrap();
    let mut client = client(&emulator);

    // Receiver 1: the handler answers 500 to its second event (AUTHORIZED): the
    // retry is new, since it was not processed.
    let (listener, url, secret, _) = register(&mut client, &emulator).await;
    let layer = WebhookLayer::new(&url).unwrap().secret(secret);
    let failing = receiver(listener, Seen::default(), |seen| {
        layer.layer(recording(seen, vec![200, 500]))
    })
    .await;

    // Receiver 2: processed (the handler answers 200), but the answer is lost on
    // the way out (a proxy answers 500) once for CAPTURED: the retry is a duplicate.
    let (listener, url, secret, _) = register(&mut client, &emulator).await;
    let layer = WebhookLayer::new(&url).unwrap().secret(secret);
    let lost = Arc::new(Mutex::new(false));
    let lossy = receiver(listener, Seen::default(), |seen| {
        let inner = layer.layer(recording(seen, vec![]));
        service_fn(move |req: Request<hyper::body::Incoming>| {
            let inner = inner.clone();
            let lost = lost.clone();
            async move {
                let mut res = inner.oneshot(req).await?;
                let captured = res
                    .headers()
                    .get("x-event")
                    .is_some_and(|v| v == "CAPTURED");
                if captured && !std::mem::replace(&mut *lost.lock().unwrap(), true) {
                    *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                }
                Ok::<_, Infallible>(res)
            }
        })
    })
    .await;

    payment_flow(&mut client, &emulator, "acme-order-e2e-3").await;
    emulator.webhooks_idle().await;
    use EventName::*;
    assert_eq!(
        names(&failing.seen),
        [Created, Authorized, Authorized, Captured, Refunded].map(|n| (Some(n), Delivery::New))
    );
    assert_eq!(
        names(&lossy.seen),
        vec![
            (Some(Created), Delivery::New),
            (Some(Authorized), Delivery::New),
            (Some(Captured), Delivery::New),
            (Some(Captured), Delivery::Duplicate),
            (Some(Refunded), Delivery::New),
        ]
    );
    let counts = emulator.webhook_counts();
    assert_eq!((counts.delivered, counts.retried, counts.failed), (8, 2, 0));
}

#[tokio::test]
async fn the_webhooks_api_refuses_what_the_real_one_does() {
    let emulator = fast_emulator().start().await.unwrap();
    let mut client = unchecked_client(&emulator);
    for (body, field) in [
        (
            json!({"url": "ftp://example.com/x", "events": ALL_EVENTS}),
            "url",
        ),
        (
            json!({"url": "http://example.com/x", "events": ALL_EVENTS}),
            "url",
        ),
        (json!({"events": ALL_EVENTS}), "url"),
        (
            json!({"url": "https://example.com/x", "events": []}),
            "events",
        ),
        (json!({"url": "https://example.com/x"}), "events"),
    ] {
        let (status, problem) = call(
            &mut client,
            &emulator,
            Method::POST,
            "/webhooks/v1/webhooks",
            Some(body),
        )
        .await;
        assert_eq!(status, 400, "{problem}");
        assert_eq!(problem["extraDetails"][0]["name"], field, "{problem}");
    }
    // An https URL registers, but the emulator never sends off the machine.
    let (status, _) = call(
        &mut client,
        &emulator,
        Method::POST,
        "/webhooks/v1/webhooks",
        Some(json!({"url": "https://shop.example/hooks", "events": ["epayments.payment.created.v1"]})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = call(
        &mut client,
        &emulator,
        Method::DELETE,
        "/webhooks/v1/webhooks/not-a-uuid",
        None,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = call(
        &mut client,
        &emulator,
        Method::DELETE,
        &format!("/webhooks/v1/webhooks/{}", uuid::Uuid::new_v4()),
        None,
    )
    .await;
    assert_eq!(status, 404);
    payment_flow(&mut client, &emulator, "acme-order-e2e-4").await;
    emulator.webhooks_idle().await;
    let counts = emulator.webhook_counts();
    assert_eq!((counts.delivered, counts.undeliverable), (0, 1));
}
