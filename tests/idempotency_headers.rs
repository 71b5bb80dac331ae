//! Each API's own idempotency header, end to end through the preset over hyper
//! against the emulator: an eCom capture without `X-Request-Id` gets one, and a
//! `503` on it is retried with the same one, so the money moves once; a webhook
//! registration, whose API reads no key, is not repeated after a `503`.
#![cfg(feature = "emulator")]

mod common;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tower::{Layer, ServiceExt};
use tower_vipps::emulator::{Emulator, Endpoint, READY_USER, TEST_MSN};
use tower_vipps::retry::RetryPolicy;
use tower_vipps::token::TokenClient;
use tower_vipps::{Environment, VippsError};

fn preset(
    emu: &Emulator,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = http::Response<impl http_body::Body<Data = Bytes, Error: std::fmt::Debug>>,
    Error = VippsError,
    Future = impl Send,
> + Clone {
    let hyper = common::client::<Full<Bytes>>();
    tower_vipps::layer(emu.keyring())
        .token_client(TokenClient::new(hyper.clone()))
        .retry(
            RetryPolicy::new()
                .base_delay(std::time::Duration::from_millis(1))
                .max_delay(std::time::Duration::from_millis(5)),
        )
        .layer(hyper)
}

fn request(
    emu: &Emulator,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Request<Full<Bytes>> {
    let base = emu.base_url(Environment::Test);
    let mut req = Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("Merchant-Serial-Number", TEST_MSN.to_string());
    if body.is_some() {
        req = req.header("Content-Type", "application/json");
    }
    let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    req.body(Full::new(body)).unwrap()
}

async fn json<B: http_body::Body<Data = Bytes, Error: std::fmt::Debug>>(
    res: http::Response<B>,
) -> Value {
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn an_ecom_capture_answered_503_is_retried_with_one_generated_x_request_id() {
    let emu = Emulator::start().await.unwrap();
    let client = preset(&emu);
    let order = "acme-ecom-retry-1";
    let initiate = json!({
        "customerInfo": {"mobileNumber": &READY_USER[2..]},
        "merchantInfo": {
            "callbackPrefix": "https://example.com/vipps",
            "fallBack": "https://example.com/fallback",
            "merchantSerialNumber": TEST_MSN.to_string(),
        },
        "transaction": {"amount": 20000, "orderId": order, "transactionText": "socks"},
    });
    let res = client
        .clone()
        .oneshot(request(
            &emu,
            Method::POST,
            "/ecomm/v2/payments",
            Some(initiate),
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    emu.faults().unavailable_next(Endpoint::EcomCapture, 1);
    let capture = json!({
        "merchantInfo": {"merchantSerialNumber": TEST_MSN.to_string()},
        "transaction": {"amount": 5000, "transactionText": "shipped"},
    });
    // No `X-Request-Id` from the caller: the preset writes one, once.
    let path = format!("/ecomm/v2/payments/{order}/capture");
    let res = client
        .clone()
        .oneshot(request(&emu, Method::POST, &path, Some(capture)))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = json(res).await;
    assert_eq!(body["transactionSummary"]["capturedAmount"], 5000, "{body}");

    let captures: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == Endpoint::EcomCapture)
        .collect();
    assert_eq!(captures.len(), 2, "the 503 and the retry");
    let ids: Vec<_> = captures
        .iter()
        .map(|r| r.headers.get("x-request-id").cloned())
        .collect();
    assert!(ids[0].as_ref().is_some_and(|id| id.len() == 36), "{ids:?}");
    assert_eq!(ids[0], ids[1], "the retry carries the same X-Request-Id");
    assert!(
        captures
            .iter()
            .all(|r| !r.headers.contains_key("idempotency-key")),
        "eCom gets no Idempotency-Key"
    );

    // The money moved once.
    let details = client
        .clone()
        .oneshot(request(
            &emu,
            Method::GET,
            &format!("/ecomm/v2/payments/{order}/details"),
            None,
        ))
        .await
        .unwrap();
    let details = json(details).await;
    let history = details["transactionLogHistory"].as_array().unwrap();
    let captured: Vec<_> = history
        .iter()
        .filter(|e| e["operation"] == "CAPTURE")
        .collect();
    assert_eq!(captured.len(), 1, "{details}");
}

#[tokio::test]
async fn a_webhook_registration_answered_503_is_not_repeated() {
    let emu = Emulator::start().await.unwrap();
    let client = preset(&emu);
    emu.faults().unavailable_next(Endpoint::Other, 1);
    let mut req = request(
        &emu,
        Method::POST,
        "/webhooks/v1/webhooks",
        Some(
            json!({"url": "https://example.com/hooks", "events": ["epayments.payment.captured.v1"]}),
        ),
    );
    // A key the Webhooks API does not read makes a repeat no safer.
    req.headers_mut()
        .insert("Idempotency-Key", "hook-1".parse().unwrap());
    let Err(err) = client.oneshot(req).await else {
        panic!("the 503 is the answer");
    };
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503), "{err}");
    assert_eq!(emu.count(Endpoint::Other), 1);
}
