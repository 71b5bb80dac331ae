//! The quick start through reqwest: the tower-vipps stack as a
//! `reqwest_middleware` middleware, against the embedded Vipps MobilePay emulator.
//! No keys, no network.
//!
//! ```sh
//! cargo run --example reqwest --features emulator,reqwest
//! ```
//!
//! It creates a payment, captures and refunds it, then makes two mistakes and
//! gets the diagnosed `VippsError` back out of the `reqwest_middleware::Error`
//! with `vipps_error`.

use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use serde_json::{Value, json};
use tower_vipps::emulator::{Emulator, Endpoint, READY_USER, TEST_MERCHANT};
use tower_vipps::reqwest::{VippsMiddleware, vipps_error};
use tower_vipps::{BoxError, Environment, Msn};

/// What the reqwest run saw.
#[derive(Debug)]
#[allow(dead_code)] // read by tests/examples.rs
pub struct Summary {
    /// Captured and refunded amounts, in øre.
    pub captured: i64,
    /// Refunded amount, in øre.
    pub refunded: i64,
    /// Token fetches for the happy path.
    pub tokens: usize,
    /// Each mistake's code, whether it was refused unsent, and the requests the
    /// emulator saw for it.
    pub mistakes: Vec<(&'static str, bool, usize)>,
}

#[allow(dead_code)] // `main` is not used when tests/examples.rs includes this file
#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // This crate's dev-dependency reqwest uses rustls without a built-in crypto
    // provider (ring, no aws-lc), so one is installed here. With reqwest's default
    // features, leave this line out.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let emulator = Emulator::start().await?;
    run(&emulator, true).await?;
    emulator.shutdown().await;
    Ok(())
}

/// The whole example; prints when `print` is set.
pub async fn run(emulator: &Emulator, print: bool) -> Result<Summary, BoxError> {
    let say = |line: String| {
        if print {
            println!("{line}");
        }
    };
    let base = emulator.base_url(Environment::Test);
    let msn = TEST_MERCHANT.msn().expect("a merchant has an MSN");
    say(format!("Vipps MobilePay emulator on {base} (test)"));
    say(format!(
        "Merchant: MSN {msn}, through reqwest + reqwest-middleware\n"
    ));

    let keyring = emulator
        .keyring_builder()
        .key_set(TEST_MERCHANT.key_set())
        .system("acme-shop", "1.0.0")
        .build()?;

    // Your client settings (root certificates, proxy, timeouts…) go into the
    // builder; the middleware builds its client from it with redirects off, so no
    // credential ever follows a redirect. It sends every Vipps call (token requests
    // included) itself and ends the chain: add it last.
    let vipps = VippsMiddleware::new(keyring, reqwest::Client::builder())?;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(vipps)
        .build();

    let reference = format!("acme-reqwest-{}", std::process::id());
    let payments = format!("{base}/epayment/v1/payments");

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
    let payment = post(&client, msn, &payments, &create).await?;
    say(format!(
        "1. Created payment {reference}; the user is sent to {}",
        payment["redirectUrl"].as_str().unwrap_or("the app")
    ));
    let payment = json_of(
        client
            .get(format!("{payments}/{reference}"))
            .header("Merchant-Serial-Number", msn.to_string())
            .send()
            .await?,
    )
    .await?;
    say(format!(
        "   The user approved it: state {}",
        payment["state"].as_str().unwrap_or("?")
    ));

    // 2. Capture all of it, then refund 100.00 NOK.
    let capture = json!({"modificationAmount": {"value": 49900, "currency": "NOK"}});
    let payment = post(
        &client,
        msn,
        &format!("{payments}/{reference}/capture"),
        &capture,
    )
    .await?;
    let captured = payment["aggregate"]["capturedAmount"]["value"]
        .as_i64()
        .unwrap_or(0);
    say(format!("2. Captured {captured} øre"));
    let refund = json!({"modificationAmount": {"value": 10000, "currency": "NOK"}});
    let payment = post(
        &client,
        msn,
        &format!("{payments}/{reference}/refund"),
        &refund,
    )
    .await?;
    let refunded = payment["aggregate"]["refundedAmount"]["value"]
        .as_i64()
        .unwrap_or(0);
    say(format!("   Refunded {refunded} øre"));
    let tokens = emulator.count(Endpoint::AccessToken);
    say(format!(
        "   One access token served all of it: the emulator saw {tokens} token call(s) for {} API calls.\n",
        emulator.counts().api_calls()
    ));

    say(
        "Now two mistakes; each error is a reqwest_middleware::Error holding a VippsError.\n"
            .into(),
    );
    let mut mistakes = Vec::new();

    // Mistake 1: a phone number with `+` and spaces. Refused before sending.
    let before = emulator.counts().total();
    let mut bad = create.clone();
    bad["reference"] = json!(format!("{reference}-2"));
    bad["customer"]["phoneNumber"] = json!("+47 91 00 00 01");
    let err = post(&client, msn, &payments, &bad)
        .await
        .expect_err("a phone number with + and spaces is refused");
    let seen = emulator.counts().total() - before;
    mistakes.push(explain(
        print,
        "Mistake 1: a phone number written for people, not for the API",
        &err,
        seen,
    )?);

    // Mistake 2: capturing more than the user accepted. Sent; the 400 is diagnosed.
    let before = emulator.counts().total();
    let too_much = json!({"modificationAmount": {"value": 100000, "currency": "NOK"}});
    let err = post(
        &client,
        msn,
        &format!("{payments}/{reference}/capture"),
        &too_much,
    )
    .await
    .expect_err("capturing more than reserved fails");
    let seen = emulator.counts().total() - before;
    mistakes.push(explain(
        print,
        "Mistake 2: capturing more than was reserved",
        &err,
        seen,
    )?);

    Ok(Summary {
        captured,
        refunded,
        tokens,
        mistakes,
    })
}

/// A JSON POST with the MSN header; errors stay `reqwest_middleware::Error`.
async fn post(
    client: &ClientWithMiddleware,
    msn: Msn,
    url: &str,
    body: &Value,
) -> Result<Value, reqwest_middleware::Error> {
    let response = client
        .post(url)
        .header("Merchant-Serial-Number", msn.to_string())
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    json_of(response).await
}

/// The JSON body of a successful response (error statuses have become errors in
/// the middleware already).
async fn json_of(response: reqwest::Response) -> Result<Value, reqwest_middleware::Error> {
    let bytes = response.bytes().await?;
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Prints the diagnosis held by a reqwest-middleware error.
fn explain(
    print: bool,
    title: &str,
    err: &reqwest_middleware::Error,
    seen: usize,
) -> Result<(&'static str, bool, usize), BoxError> {
    let Some(vipps) = vipps_error(err) else {
        return Err(format!("not a VippsError: {err}").into());
    };
    if print {
        println!("{title}");
        println!(
            "   {}",
            if vipps.is_refused() {
                "Refused before sending: reqwest never saw it."
            } else {
                "Sent, and answered with an error."
            }
        );
        for line in vipps.diagnosis().report().lines() {
            println!("   {line}");
        }
        match seen {
            0 => println!("   The emulator saw no request: nothing was sent.\n"),
            n => println!("   The emulator saw {n} request(s).\n"),
        }
    }
    Ok((vipps.code(), vipps.is_refused(), seen))
}
