//! Quick start: the whole tower-vipps stack over its HTTPS client, against the
//! embedded Vipps MobilePay emulator. No keys, no network.
//!
//! ```sh
//! cargo run --example quickstart --features emulator
//! ```
//!
//! It creates a payment, captures and refunds it, then makes three classic
//! mistakes and prints what tower-vipps says about each.

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tower::{Layer, Service, ServiceExt};
use tower_vipps::emulator::{Emulator, Endpoint, READY_USER, TEST_MERCHANT};
use tower_vipps::{BoxError, Environment, HttpsClient, VippsError};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let emulator = Emulator::start().await?;
    let base = emulator.base_url(Environment::Test);
    let msn = TEST_MERCHANT.msn().expect("a merchant has an MSN");
    println!(
        "Vipps MobilePay emulator on {base} (test) and {} (production)",
        emulator.base_url(Environment::Production)
    );
    println!("Merchant: MSN {msn}, with the test keys of the emulator's presets\n");

    // Your keys: here the emulator's test merchant, and the emulator's hosts as the
    // hosts of the two environments.
    let keyring = emulator
        .keyring_builder()
        .key_set(TEST_MERCHANT.key_set())
        .system("acme-shop", "1.0.0")
        .build()?;

    // The stack: Idempotency, deadlines, Diagnose, Auth, Retry, Preflight, over the
    // HTTPS client you would use for the real hosts. It speaks plain HTTP to the
    // emulator only because the emulator registers its loopback hosts as plaintext.
    let mut client = tower_vipps::layer(keyring).layer(HttpsClient::new());

    let reference = format!("acme-order-{}", std::process::id());
    let call = |method: Method, url: String, body: Option<Value>| {
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        Request::builder()
            .method(method)
            .uri(url)
            .header("Merchant-Serial-Number", msn.to_string())
            .header("Content-Type", "application/json")
            .body(Full::new(body))
            .expect("a valid request")
    };

    // 1. Create a payment of 499.00 NOK for the emulator's ready test user.
    let create = json!({
        "amount": {"value": 49900, "currency": "NOK"},
        "paymentMethod": {"type": "WALLET"},
        "customer": {"phoneNumber": READY_USER},
        "reference": reference,
        "returnUrl": "https://acme.example/orders/return",
        "userFlow": "PUSH_MESSAGE",
        "paymentDescription": "Two bags of coffee"
    });
    let payment = send(
        &mut client,
        call(
            Method::POST,
            format!("{base}/epayment/v1/payments"),
            Some(create.clone()),
        ),
    )
    .await?;
    println!(
        "1. Created payment {reference}; the user is sent to {}",
        payment["redirectUrl"].as_str().unwrap_or("the app")
    );

    let payment = send(
        &mut client,
        call(
            Method::GET,
            format!("{base}/epayment/v1/payments/{reference}"),
            None,
        ),
    )
    .await?;
    println!(
        "   The user approved it: state {}",
        payment["state"].as_str().unwrap_or("?")
    );

    // 2. Capture all of it, then refund 100.00 NOK.
    let capture = json!({"modificationAmount": {"value": 49900, "currency": "NOK"}});
    let payment = send(
        &mut client,
        call(
            Method::POST,
            format!("{base}/epayment/v1/payments/{reference}/capture"),
            Some(capture),
        ),
    )
    .await?;
    println!(
        "2. Captured {} øre",
        payment["aggregate"]["capturedAmount"]["value"]
    );
    let refund = json!({"modificationAmount": {"value": 10000, "currency": "NOK"}});
    let payment = send(
        &mut client,
        call(
            Method::POST,
            format!("{base}/epayment/v1/payments/{reference}/refund"),
            Some(refund),
        ),
    )
    .await?;
    println!(
        "   Refunded {} øre",
        payment["aggregate"]["refundedAmount"]["value"]
    );
    println!(
        "   One access token served all of it: the emulator saw {} token call(s) for {} API calls.\n",
        emulator.count(Endpoint::AccessToken),
        emulator.counts().api_calls()
    );

    println!("Now three classic mistakes.\n");

    // Mistake 1: a phone number with `+` and spaces. Refused before sending.
    let before = emulator.count(Endpoint::CreatePayment);
    let mut bad = create.clone();
    bad["reference"] = json!(format!("{reference}-2"));
    bad["customer"]["phoneNumber"] = json!("+47 91 00 00 01");
    let err = send(
        &mut client,
        call(
            Method::POST,
            format!("{base}/epayment/v1/payments"),
            Some(bad),
        ),
    )
    .await
    .unwrap_err();
    explain(
        "Mistake 1: a phone number written for people, not for the API",
        &err,
    );
    sent(emulator.count(Endpoint::CreatePayment) - before);
    println!();

    // Mistake 2: capturing more than the user accepted. Vipps MobilePay answers 400;
    // the error body is read and diagnosed.
    let too_much = json!({"modificationAmount": {"value": 100000, "currency": "NOK"}});
    let err = send(
        &mut client,
        call(
            Method::POST,
            format!("{base}/epayment/v1/payments/{reference}/capture"),
            Some(too_much),
        ),
    )
    .await
    .unwrap_err();
    explain("Mistake 2: capturing more than was reserved", &err);
    if let Some(body) = err.body() {
        println!("   The raw body is kept too ({} bytes).\n", body.len());
    }

    // Mistake 3: test keys sent to the production host. Refused before sending:
    // no key or token ever leaves for the wrong environment.
    let before = emulator.counts().total();
    let prod = emulator.base_url(Environment::Production);
    let err = send(
        &mut client,
        call(
            Method::GET,
            format!("{prod}/epayment/v1/payments/{reference}"),
            None,
        ),
    )
    .await
    .unwrap_err();
    explain("Mistake 3: test keys sent to production", &err);
    sent(emulator.counts().total() - before);

    emulator.shutdown().await;
    Ok(())
}

/// Sends a request through the stack and parses the JSON answer.
async fn send<S, B>(client: &mut S, request: Request<Full<Bytes>>) -> Result<Value, VippsError>
where
    S: Service<Request<Full<Bytes>>, Response = http::Response<B>, Error = VippsError>,
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let response = client.ready().await?.call(request).await?;
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| VippsError::transport(e.into()))?
        .to_bytes();
    Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn sent(requests: usize) {
    match requests {
        0 => println!("   The emulator saw no request: nothing was sent."),
        n => println!("   The emulator saw {n} request(s)."),
    }
}

fn explain(title: &str, err: &VippsError) {
    println!("{title}");
    println!(
        "   {}",
        if err.is_refused() {
            "Refused before sending."
        } else {
            "Sent, and answered with an error."
        }
    );
    for line in err.diagnosis().report().lines() {
        println!("   {line}");
    }
}
