//! The body-type matrix: the same calls through the preset over hyper, with each
//! request body type, against the emulator. For each type: whether the body checks
//! ran (a phone number with `+` is refused unsent, or reaches the API) and whether
//! a 502 on a GET was retried, as `tower_vipps::buffer` documents.
#![cfg(all(feature = "emulator", feature = "reqwest"))]
#![allow(clippy::type_complexity)]

mod common;

use std::convert::Infallible;

use bytes::Bytes;
use http::{Method, Request};
use http_body::Frame;
use http_body_util::combinators::{BoxBody, UnsyncBoxBody};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tower::{Layer, ServiceExt};
use tower_vipps::emulator::{Emulator, Endpoint, READY_USER, TEST_MSN};
use tower_vipps::idempotency::IdempotencyLayer;
use tower_vipps::preflight::PreflightLayer;
use tower_vipps::replay::RebuildBody;
use tower_vipps::retry::{RetryLayer, RetryPolicy};
use tower_vipps::token::TokenClient;
use tower_vipps::{AuthLayer, BoxError, Cause, Environment, Origin};

/// What the docs promise for a body type.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    /// The phone number with `+` was refused unsent (the body checks ran).
    checks_ran: bool,
    /// The GET answered 502 once was sent again.
    retried_502: bool,
}

fn create_body(phone: &str) -> Bytes {
    Bytes::from(
        json!({
            "amount": {"value": 49900, "currency": "NOK"},
            "paymentMethod": {"type": "WALLET"},
            "customer": {"phoneNumber": phone},
            "reference": "acme-body-types-1",
            "returnUrl": "https://example.com/return",
            "userFlow": "WEB_REDIRECT",
            "paymentDescription": "socks",
        })
        .to_string(),
    )
}

/// The preset over hyper for body type `B`.
fn preset<B>(
    emu: &Emulator,
) -> impl tower::Service<
    Request<B>,
    Response = http::Response<impl http_body::Body>,
    Error = tower_vipps::VippsError,
    Future = impl Send,
> + Clone
where
    B: http_body::Body<Data = Bytes> + RebuildBody + Default + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let hyper = HyperClient::builder(TokioExecutor::new()).build_http::<B>();
    tower_vipps::layer(emu.keyring())
        .token_client(token_client())
        .layer(hyper)
}

fn token_client() -> TokenClient {
    TokenClient::new(HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>())
}

/// The two calls of the matrix through `client`.
async fn row<B, S, RB>(emu: &Emulator, client: S, make: fn(Bytes) -> B) -> Row
where
    S: tower::Service<Request<B>, Response = http::Response<RB>, Error = tower_vipps::VippsError>
        + Clone,
{
    let base = emu.base_url(Environment::Test);
    let request = |method: Method, path: &str, body: B| {
        Request::builder()
            .method(method)
            .uri(format!("{base}{path}"))
            .header("Merchant-Serial-Number", TEST_MSN.to_string())
            .header("Content-Type", "application/json")
            .body(body)
            .unwrap()
    };

    let bad = request(
        Method::POST,
        "/epayment/v1/payments",
        make(create_body(&format!("+{READY_USER}"))),
    );
    let Err(err) = client.clone().oneshot(bad).await else {
        panic!("a phone number with `+` is never accepted");
    };
    let checks_ran = match err.origin() {
        Origin::Refused => {
            assert_eq!(err.cause(), Cause::InvalidPhoneNumber, "{err}");
            assert_eq!(emu.count(Endpoint::CreatePayment), 0);
            true
        }
        _ => {
            // The API's own answer: 400, code 4070.
            assert_eq!(emu.count(Endpoint::CreatePayment), 1);
            false
        }
    };

    emu.faults().bad_gateway_next(Endpoint::GetPayment, 1);
    let get = request(
        Method::GET,
        "/epayment/v1/payments/acme-body-types-1",
        make(Bytes::new()),
    );
    let _ = client.clone().oneshot(get).await;
    let retried_502 = emu.count(Endpoint::GetPayment) == 2;
    Row {
        checks_ran,
        retried_502,
    }
}

fn full(b: Bytes) -> Full<Bytes> {
    Full::new(b)
}

fn boxed(b: Bytes) -> BoxBody<Bytes, BoxError> {
    Full::new(b).map_err(|never| match never {}).boxed()
}

fn unsync(b: Bytes) -> UnsyncBoxBody<Bytes, BoxError> {
    Full::new(b).map_err(|never| match never {}).boxed_unsync()
}

/// A streaming body in an opaque box: its size is not known ahead.
fn streaming(b: Bytes) -> BoxBody<Bytes, BoxError> {
    let frames: Vec<Result<Frame<Bytes>, Infallible>> = vec![Ok(Frame::data(b))];
    StreamBody::new(futures_util::stream::iter(frames))
        .map_err(|never| match never {})
        .boxed()
}

#[tokio::test]
async fn the_body_type_matrix() {
    let captured = common::capture_tracing_globally();
    let buffered = Row {
        checks_ran: true,
        retried_502: true,
    };
    let emu = || async { Emulator::start().await.unwrap() };
    let e = emu().await;
    assert_eq!(row(&e, preset(&e), full).await, buffered, "Full<Bytes>");
    let e = emu().await;
    let string = |b: Bytes| String::from_utf8(b.to_vec()).unwrap();
    assert_eq!(row(&e, preset(&e), string).await, buffered, "String");
    // `Vec<u8>` is no `http_body::Body` (no client sends it, and the preset, which
    // reads bodies ahead, does not take it): Auth, Retry and Preflight over a
    // service that converts it.
    let e = emu().await;
    let hyper = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let vec_client = tower::ServiceBuilder::new()
        .layer(IdempotencyLayer::new())
        .layer(AuthLayer::new(e.keyring()).token_client(token_client()))
        .layer(RetryLayer::new(RetryPolicy::new()))
        .layer(PreflightLayer::new().keyring(e.keyring()))
        .service_fn(move |req: Request<Vec<u8>>| {
            hyper.request(req.map(|b| Full::new(Bytes::from(b))))
        });
    assert_eq!(
        row(&e, vec_client, |b| b.to_vec()).await,
        buffered,
        "Vec<u8>"
    );
    let e = emu().await;
    assert_eq!(row(&e, preset(&e), boxed).await, buffered, "BoxBody");
    let e = emu().await;
    assert_eq!(row(&e, preset(&e), unsync).await, buffered, "UnsyncBoxBody");
    let e = emu().await;
    assert_eq!(
        row(&e, preset(&e), streaming).await,
        Row {
            checks_ran: false,
            retried_502: false,
        },
        "a streaming body"
    );
    // Said once, at warn, with the body type.
    let text = captured.text();
    let warned = text
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("is streaming"))
        .count();
    assert_eq!(warned, 1, "{text}");
    assert!(text.contains("BoxBody"), "{text}");
}
