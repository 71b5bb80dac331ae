//! Partner keys: one key set, 1,000 sales units (MSNs), served at once, against
//! the embedded Vipps MobilePay emulator. No keys, no network.
//!
//! ```sh
//! cargo run --example partner --features emulator
//! ```
//!
//! It creates one payment for each of the 1,000 MSNs connected to the emulator's
//! partner keys, all at the same time, and counts the access tokens fetched; reads
//! them back (no new tokens); then makes the classic partner mistakes: no
//! `Merchant-Serial-Number`, and an MSN that is not connected to the partner.
//! Partner keys exist in production only (partner functionality is not available
//! in the test environment), so this example runs against the emulator's
//! production listener.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tower::{Layer, ServiceExt};
use tower_vipps::emulator::{Emulator, Endpoint, PRODUCTION_PARTNER, READY_USER};
use tower_vipps::token::TokenCache;
use tower_vipps::{BoxError, Environment, KeySet, Keyring, Msn, VippsError, VippsLayer};

/// The HTTPS client of the real hosts; plain HTTP only to the emulator's loopback.
type HyperClient = tower_vipps::HttpsClient;

/// What the partner run measured.
#[derive(Debug)]
#[allow(dead_code)] // read by tests/examples.rs
pub struct Summary {
    /// MSNs served in each round.
    pub msns: usize,
    /// Payments created (one per MSN).
    pub created: usize,
    /// Token fetches the emulator saw in the create round (one per MSN).
    pub create_tokens: usize,
    /// Token fetches the emulator saw in the read-back round (zero: cached).
    pub read_tokens: usize,
    /// Token fetches with `share_partner_tokens(true)` for the same 1,000 MSNs.
    pub shared_tokens: usize,
    /// The cause of each mistake, in order, and whether it was refused unsent.
    pub mistakes: Vec<(&'static str, bool, usize)>,
}

#[allow(dead_code)] // `main` is not used when tests/examples.rs includes this file
#[tokio::main]
async fn main() -> Result<(), BoxError> {
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
    let base = emulator.base_url(Environment::Production);
    let msns: Vec<Msn> = PRODUCTION_PARTNER.connected_msns().collect();
    let (first, last) = (msns[0], msns[msns.len() - 1]);
    say(format!("Vipps MobilePay emulator on {base} (production)"));
    say("Partner keys exist in production only: the test environment has no partner\n   functionality, and KeySet::partner refuses Environment::Test.".into());
    say(format!(
        "Partner: one key set (client_id {}), {} connected MSNs ({first}..={last})\n",
        PRODUCTION_PARTNER.client_id(),
        fmt_count(msns.len()),
    ));

    // Your partner keys. Partner keys are not bound to one MSN: every request names
    // the sales unit it is for in `Merchant-Serial-Number`.
    let keyring = emulator
        .keyring_builder()
        .key_set(PRODUCTION_PARTNER.key_set())
        .system("acme-platform", "2.0.0")
        .build()?;
    let hyper_client: HyperClient = tower_vipps::HttpsClient::new();
    let stack = tower_vipps::layer(keyring.clone());

    // 1. One payment per MSN, all at once.
    let started = Instant::now();
    let created = for_each_msn(&stack, &hyper_client, &msns, |msn| {
        request(
            Method::POST,
            format!("{base}/epayment/v1/payments"),
            Some(msn),
            Some(create_body(msn)),
        )
    })
    .await?;
    let took = started.elapsed();
    let create_tokens = emulator.count(Endpoint::AccessToken);
    say(format!(
        "1. Created {} payments, one per MSN, all at once, in {}.",
        fmt_count(created),
        fmt_duration(took)
    ));
    say(format!(
        "   The emulator saw {} payment calls and {} token fetches.",
        fmt_count(emulator.count(Endpoint::CreatePayment)),
        fmt_count(create_tokens)
    ));
    say("   One token per MSN: partner tokens are fetched with the MSN in".into());
    say("   Merchant-Serial-Number, so each token is minted for one sales unit.".into());
    say("   Concurrent calls for the same MSN wait for one fetch; they never race.\n".into());

    // 2. Read every payment back: the 1,000 tokens are cached.
    let before = emulator.count(Endpoint::AccessToken);
    let started = Instant::now();
    let read = for_each_msn(&stack, &hyper_client, &msns, |msn| {
        request(
            Method::GET,
            format!("{base}/epayment/v1/payments/{}", reference(msn)),
            Some(msn),
            None,
        )
    })
    .await?;
    let took = started.elapsed();
    let read_tokens = emulator.count(Endpoint::AccessToken) - before;
    say(format!(
        "2. Read the {} payments back in {}: {} new token fetches (all cached).\n",
        fmt_count(read),
        fmt_duration(took),
        read_tokens
    ));

    // 3. The same with one token shared by every MSN of the partner.
    let before = emulator.count(Endpoint::AccessToken);
    let shared = tower_vipps::layer(keyring.clone())
        .token_cache(TokenCache::builder().share_partner_tokens(true).build());
    let started = Instant::now();
    for_each_msn(&shared, &hyper_client, &msns, |msn| {
        request(
            Method::GET,
            format!("{base}/epayment/v1/payments/{}", reference(msn)),
            Some(msn),
            None,
        )
    })
    .await?;
    let took = started.elapsed();
    let shared_tokens = emulator.count(Endpoint::AccessToken) - before;
    say("3. With TokenCache::builder().share_partner_tokens(true), a fresh stack read".into());
    say(format!(
        "   them again in {} with {} token fetch: one token, fetched without an MSN,",
        fmt_duration(took),
        shared_tokens
    ));
    say("   serves every connected MSN.\n".into());

    say("Now the partner mistakes.\n".into());
    let mut mistakes = Vec::new();
    let mut client = stack.layer(hyper_client.clone());

    // Mistake 1: no Merchant-Serial-Number. Partner keys cannot tell which sales
    // unit the call is for, so it is refused before sending.
    let before = emulator.counts().total();
    let err = send(
        &mut client,
        request(
            Method::GET,
            format!("{base}/epayment/v1/payments/{}", reference(first)),
            None,
            None,
        ),
    )
    .await
    .expect_err("no MSN is refused");
    let seen = emulator.counts().total() - before;
    explain(
        print,
        "Mistake 1: partner keys, no Merchant-Serial-Number",
        &err,
    );
    sent(print, seen);
    mistakes.push((err.code(), err.is_refused(), seen));

    // Mistake 2: an MSN that is not connected to the partner, with the connected
    // MSNs listed in the key set: refused before sending.
    let stranger = Msn::new(499_999)?;
    let listed = emulator
        .keyring_builder()
        .key_set(
            KeySet::partner(
                Environment::Production,
                PRODUCTION_PARTNER.client_id(),
                PRODUCTION_PARTNER.client_secret(),
                PRODUCTION_PARTNER.subscription_key(),
            )?
            .connected_msns(PRODUCTION_PARTNER.connected_msns()),
        )
        .system("acme-platform", "2.0.0")
        .build()?;
    let before = emulator.counts().total();
    let err = get_unconnected(&listed, &hyper_client, &base, stranger).await;
    let seen = emulator.counts().total() - before;
    explain(
        print,
        &format!("Mistake 2: MSN {stranger} is not connected (keys list their MSNs)"),
        &err,
    );
    sent(print, seen);
    mistakes.push((err.code(), err.is_refused(), seen));

    // Mistake 3: the same MSN, keys without the list. The call goes out, and the
    // emulator's 403 (here on the token fetch for that MSN) is diagnosed.
    let before = emulator.counts().total();
    let err = get_unconnected(&keyring, &hyper_client, &base, stranger).await;
    let seen = emulator.counts().total() - before;
    explain(
        print,
        &format!("Mistake 3: MSN {stranger} is not connected (keys do not list MSNs)"),
        &err,
    );
    sent(print, seen);
    if print && seen > 0 {
        println!("   List the MSNs with KeySet::connected_msns(..) to refuse this unsent.");
    }
    mistakes.push((err.code(), err.is_refused(), seen));

    Ok(Summary {
        msns: msns.len(),
        created,
        create_tokens,
        read_tokens,
        shared_tokens,
        mistakes,
    })
}

/// Sends one request per MSN, all at once, each through the stack in its own task;
/// the number that succeeded, or the first error.
async fn for_each_msn(
    stack: &VippsLayer,
    hyper_client: &HyperClient,
    msns: &[Msn],
    make: impl Fn(Msn) -> Request<Full<Bytes>>,
) -> Result<usize, VippsError> {
    let mut tasks = JoinSet::new();
    for &msn in msns {
        // Layering is cheap (the layers are built once): one stack per task.
        let client = stack.layer(hyper_client.clone());
        let request = make(msn);
        tasks.spawn(async move { send(client, request).await });
    }
    let mut ok = 0;
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(VippsError::transport)??;
        ok += 1;
    }
    Ok(ok)
}

async fn get_unconnected(
    keyring: &Keyring,
    hyper_client: &HyperClient,
    base: &str,
    msn: Msn,
) -> VippsError {
    let client = tower_vipps::layer(keyring.clone()).layer(hyper_client.clone());
    send(
        client,
        request(
            Method::GET,
            format!("{base}/epayment/v1/payments/acme-order-00000001"),
            Some(msn),
            None,
        ),
    )
    .await
    .expect_err("an unconnected MSN fails")
}

fn reference(msn: Msn) -> String {
    format!("acme-{msn}-{}", std::process::id())
}

fn create_body(msn: Msn) -> Value {
    json!({
        "amount": {"value": 10000, "currency": "NOK"},
        "paymentMethod": {"type": "WALLET"},
        "customer": {"phoneNumber": READY_USER},
        "reference": reference(msn),
        "returnUrl": "https://acme.example/orders/return",
        "userFlow": "PUSH_MESSAGE",
        "paymentDescription": format!("Order at shop {msn}")
    })
}

fn request(
    method: Method,
    url: String,
    msn: Option<Msn>,
    body: Option<Value>,
) -> Request<Full<Bytes>> {
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let mut builder = Request::builder()
        .method(method)
        .uri(url)
        .header("Content-Type", "application/json");
    if let Some(msn) = msn {
        builder = builder.header("Merchant-Serial-Number", msn.to_string());
    }
    builder.body(Full::new(body)).expect("a valid request")
}

/// Sends a request through the stack and parses the JSON answer.
async fn send<S, B>(client: S, request: Request<Full<Bytes>>) -> Result<Value, VippsError>
where
    S: tower::Service<Request<Full<Bytes>>, Response = http::Response<B>, Error = VippsError>,
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let response = client.oneshot(request).await?;
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| VippsError::transport(e.into()))?
        .to_bytes();
    Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn fmt_count(n: usize) -> String {
    if n >= 1000 {
        format!("{},{:03}", n / 1000, n % 1000)
    } else {
        n.to_string()
    }
}

fn fmt_duration(d: Duration) -> String {
    if d.as_secs() >= 1 {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}

fn sent(print: bool, requests: usize) {
    if !print {
        return;
    }
    match requests {
        0 => println!("   The emulator saw no request: nothing was sent.\n"),
        n => println!("   The emulator saw {n} request(s).\n"),
    }
}

fn explain(print: bool, title: &str, err: &VippsError) {
    if !print {
        return;
    }
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
