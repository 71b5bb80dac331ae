//! Receiving webhooks: a hyper server with `WebhookLayer` gets the signed events
//! the emulator sends while a payment is created, approved, captured and refunded.
//!
//! ```sh
//! cargo run --example webhooks --features emulator
//! ```
//!
//! No keys and no network: the emulator plays Vipps MobilePay on loopback.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_vipps::emulator::{Emulator, TEST_MERCHANT, WAITING_USER, WebhookCounts};
use tower_vipps::webhooks::{Delivery, EPaymentEvent, WebhookLayer};
use tower_vipps::{BoxError, Environment, Secret, VippsError};

/// What the receiver got, and what the emulator counted.
#[derive(Debug)]
pub struct Summary {
    /// `(event name, delivery)` in the order received.
    pub received: Vec<(String, Delivery)>,
    /// The emulator's delivery counters.
    pub counts: WebhookCounts,
}

/// Runs the whole flow against `emulator`; prints what happens when `verbose`.
pub async fn run(emulator: &Emulator, verbose: bool) -> Result<Summary, BoxError> {
    let say = |line: String| {
        if verbose {
            println!("{line}");
        }
    };
    let base = emulator.base_url(Environment::Test);
    let msn = TEST_MERCHANT.msn().ok_or("a merchant has an MSN")?;
    let keyring = emulator
        .keyring_builder()
        .key_set(TEST_MERCHANT.key_set())
        .system("acme-shop", "1.0.0")
        .build()?;
    let mut client = tower_vipps::layer(keyring)
        .layer(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
    let mut send = async |method: Method, path: String, body: Option<Value>| {
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let request = Request::builder()
            .method(method)
            .uri(format!("{base}{path}"))
            .header("Merchant-Serial-Number", msn.to_string())
            .header("Content-Type", "application/json")
            .body(Full::new(body))?;
        let response = client.ready().await?.call(request).await?;
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok::<Value, BoxError>(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    };

    // 1. The receiver's address, registered with the Webhooks API. In production
    //    this is your public https URL; a proxy may forward to another host/path.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/vipps/webhooks", listener.local_addr()?);
    let events = [
        "epayments.payment.created.v1",
        "epayments.payment.authorized.v1",
        "epayments.payment.captured.v1",
        "epayments.payment.refunded.v1",
        "epayments.payment.cancelled.v1",
    ];
    let registration = send(
        Method::POST,
        "/webhooks/v1/webhooks".into(),
        Some(json!({"url": url, "events": events})),
    )
    .await?;
    let secret = Secret::new(registration["secret"].as_str().ok_or("a secret")?);
    say(format!(
        "Registered {url} as webhook {} (its secret is kept in a `Secret`: {secret:?})",
        registration["id"]
    ));

    // 2. The receiver: WebhookLayer in front of the handler.
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    let handler = service_fn(move |req: Request<Full<Bytes>>| {
        let log = log.clone();
        async move {
            let delivery = req.extensions().get::<Delivery>().copied();
            if let (Some(event), Some(delivery)) =
                (req.extensions().get::<EPaymentEvent>(), delivery)
            {
                if verbose {
                    println!(
                        "   webhook: {} {} {} NOK ({delivery:?})",
                        event.name,
                        event.reference,
                        event.amount.value / 100
                    );
                }
                if let Ok(mut log) = log.lock() {
                    log.push((event.name.to_string(), delivery));
                }
                // A duplicate would be acknowledged here without acting again.
            }
            Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
        }
    });
    let service = WebhookLayer::new(&url)?
        .secret(secret)
        .on_reject(move |rejection, _| {
            if verbose {
                println!("   rejected: {}", rejection.diagnosis().report());
            }
        })
        .layer(handler);
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });

    // 3. The quickstart's flow; each step makes the emulator send an event.
    let reference = format!("acme-order-webhooks-{}", fastrand::u32(..));
    let create = json!({
        "amount": {"value": 49900, "currency": "NOK"},
        "paymentMethod": {"type": "WALLET"},
        "customer": {"phoneNumber": WAITING_USER},
        "reference": reference,
        "userFlow": "PUSH_MESSAGE",
        "paymentDescription": "Two bags of coffee"
    });
    send(Method::POST, "/epayment/v1/payments".into(), Some(create)).await?;
    say(format!("1. Created payment {reference}"));
    // The test user accepts in the app (the test API's approval).
    let path = format!("/epayment/v1/test/payments/{reference}/approve");
    send(Method::POST, path, None).await?;
    say("2. The user approved it".into());
    let amount = |value: u64| json!({"modificationAmount": {"value": value, "currency": "NOK"}});
    let path = format!("/epayment/v1/payments/{reference}/capture");
    send(Method::POST, path, Some(amount(49900))).await?;
    say("3. Captured 499 NOK".into());
    let path = format!("/epayment/v1/payments/{reference}/refund");
    send(Method::POST, path, Some(amount(10000))).await?;
    say("4. Refunded 100 NOK".into());

    // 4. Wait until every event is delivered (or given up).
    emulator.webhooks_idle().await;
    server.abort();
    let counts = emulator.webhook_counts();
    say(format!(
        "Deliveries: {} delivered, {} retried, {} failed",
        counts.delivered, counts.retried, counts.failed
    ));
    let received = received.lock().map(|r| r.clone()).unwrap_or_default();
    Ok(Summary { received, counts })
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let emulator = Emulator::start().await?;
    match run(&emulator, true).await {
        Ok(_) => Ok(()),
        Err(err) => {
            if let Some(err) = err.downcast_ref::<VippsError>() {
                eprintln!("{}", err.diagnosis().report());
            }
            Err(err)
        }
    }
}
