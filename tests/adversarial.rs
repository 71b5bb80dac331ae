//! Regression tests for the defects an adversarial trial found (issue 11): each
//! test below failed on the code before its fix. Real HTTP over loopback where the
//! defect is in what comes over the wire; hand-made bodies where it is in a body
//! no honest server sends (always ready, a million empty frames).
#![cfg(feature = "emulator")]

mod common;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::{SeenRequest, client, respond, serve};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::{Layer, ServiceExt};
use tower_vipps::emulator::{Emulator, Endpoint, Fault};
use tower_vipps::idempotency::IdempotencyLayer;
use tower_vipps::token::{TokenClient, TokenRequest};
use tower_vipps::{
    AuthLayer, Cause, DiagnoseLayer, Environment, KeySet, Keyring, Msn, Origin, SystemInfo,
    VippsError,
};

const CLIENT_SECRET: &str = "cs-Adversarial-0123456789abcdef";
const SUB_KEY: &str = "sk-Adversarial-fedcba9876543210";
const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJsaXZlLXRva2VuLTQyIn0.c2lnbmF0dXJlLW9mLXRoZS1saXZlLXRva2Vu";
const OPAQUE: &str = "0paque-L1ve-T0ken-Qx7Zr9Wv2Kp5Nm8";

fn msn() -> Msn {
    "123456".parse().unwrap()
}

fn keys() -> KeySet {
    KeySet::merchant(
        Environment::Test,
        msn(),
        "client-id-1",
        CLIENT_SECRET,
        SUB_KEY,
    )
    .unwrap()
}

fn keyring(authority: &str) -> Keyring {
    Keyring::builder()
        .key_set(keys())
        .plaintext_host(Environment::Test, authority)
        .build()
        .unwrap()
}

/// Every text a user may print of an error: `Debug`, `{:#?}`, `Display`, the
/// report, the kept body, and miette's rendering.
fn texts(err: &VippsError) -> Vec<String> {
    let mut texts = vec![
        format!("{err:?}"),
        format!("{err:#?}"),
        err.to_string(),
        err.diagnosis().report(),
        String::from_utf8_lossy(err.body().map(|b| b.as_ref()).unwrap_or_default()).into_owned(),
    ];
    #[cfg(feature = "miette")]
    {
        let mut out = String::new();
        miette::NarratableReportHandler::new()
            .render_report(&mut out, err)
            .unwrap();
        texts.push(out);
    }
    texts
}

/// No 12-byte piece of any secret in any of `texts`.
fn assert_no_piece(texts: &[String], secrets: &[&str]) {
    for secret in secrets {
        let piece = secret.len().min(12);
        for window in secret.as_bytes().windows(piece) {
            let window = std::str::from_utf8(window).unwrap();
            for text in texts {
                assert!(!text.contains(window), "`{window}` of a secret in:\n{text}");
            }
        }
    }
}

/// A loopback token endpoint that hands out [`JWT`].
async fn token_server() -> common::Server {
    serve(|_req: SeenRequest| async move {
        respond(
            200,
            "application/json",
            format!(r#"{{"token_type":"Bearer","expires_in":"3600","access_token":"{JWT}"}}"#),
        )
    })
    .await
}

fn token_request(base: &str) -> TokenRequest {
    TokenRequest::new(keys(), Some(msn()), SystemInfo::default())
        .base(&base.parse().unwrap())
        .allow_plaintext(true)
}

// 1. A 200 with a usable token and one rejected field keeps no token.
#[tokio::test]
async fn a_rejected_token_answer_keeps_no_token() {
    let bodies = [
        format!(r#"{{"token_type":"Bearer","access_token":"{JWT}"}}"#),
        format!(r#"{{"token_type":"Bearer","expires_in":"0","access_token":"{JWT}"}}"#),
        format!(r#"{{"token_type":"Bearer","expires_in":691200,"access_token":"{OPAQUE}"}}"#),
        format!(r#"{{"token_type":"Bearer","expires_in":3600.5,"access_token":"{OPAQUE}"}}"#),
        format!(r#"{{"token_type":"MAC","expires_in":"3600","access_token":"{JWT}"}}"#),
        format!(r#"<html>token: Bearer {JWT}</html>"#),
        format!(r#"["{OPAQUE}"]"#),
    ];
    for body in bodies {
        let answer = body.clone();
        let server = serve(move |_req: SeenRequest| {
            let answer = answer.clone();
            async move { respond(200, "application/json", answer) }
        })
        .await;
        let client = TokenClient::new(client::<Full<Bytes>>());
        let err = client
            .fetch(&token_request(&server.base_url()))
            .await
            .unwrap_err();
        assert_eq!(err.cause(), Cause::InvalidTokenResponse, "{body}");
        assert!(matches!(err.origin(), Origin::Token(Some(_))));
        assert_no_piece(&texts(&err), &[JWT, OPAQUE]);
    }
}

// 2. A token endpoint (or proxy) that echoes the request's headers shows none of
//    them: every kept header is sensitive, and an echo in the body is redacted.
#[tokio::test]
async fn an_echoing_token_endpoint_shows_no_secret() {
    let server = serve(|req: SeenRequest| async move {
        let mut echo = String::new();
        let mut res = respond(401, "application/json", "");
        for (name, value) in req.headers() {
            if matches!(
                name.as_str(),
                "content-length" | "host" | "transfer-encoding"
            ) {
                continue;
            }
            echo.push_str(&format!("{name}: {}\n", value.to_str().unwrap_or("")));
            res.headers_mut().append(name.clone(), value.clone());
            res.headers_mut().append(
                HeaderName::from_bytes(format!("x-echo-{name}").as_bytes()).unwrap(),
                value.clone(),
            );
        }
        *res.body_mut() = Full::new(Bytes::from(echo));
        res
    })
    .await;
    let client = TokenClient::new(client::<Full<Bytes>>());
    let err = client
        .fetch(&token_request(&server.base_url()))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    assert_no_piece(&texts(&err), &[CLIENT_SECRET, SUB_KEY]);
}

/// A request whose header map is one name short of full.
fn nearly_full(req: &mut Request<Full<Bytes>>, room: usize) {
    let headers = req.headers_mut();
    let mut i = 0;
    loop {
        let name = HeaderName::from_bytes(format!("x-filler-{i}").as_bytes()).unwrap();
        if headers
            .try_insert(name, HeaderValue::from_static("1"))
            .is_err()
        {
            break;
        }
        i += 1;
    }
    // Make room for `room` more names.
    for j in 0..room {
        headers.remove(format!("x-filler-{}", i - 1 - j));
    }
}

// 3. A full header map is a diagnosed refusal, unsent, in Idempotency and in Auth.
#[tokio::test]
async fn a_full_header_map_is_refused_not_a_panic() {
    let sent = Arc::new(AtomicUsize::new(0));
    let count = sent.clone();
    let inner = tower::service_fn(move |_req: Request<Full<Bytes>>| {
        count.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
    });
    let mut req = Request::post("https://apitest.vipps.no/epayment/v1/payments")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    nearly_full(&mut req, 0);
    let err = IdempotencyLayer::new()
        .layer(inner.clone())
        .oneshot(req)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "vipps::too_many_headers");
    assert!(err.is_refused());
    assert_eq!(sent.load(Ordering::SeqCst), 0);

    // Auth: room for the request's own headers, not for ours. The token comes
    // from a loopback endpoint; the API call is never sent.
    let tokens = token_server().await;
    let keyring = keyring(&tokens.authority());
    let auth = AuthLayer::new(keyring.clone())
        .token_client(TokenClient::new(client::<Full<Bytes>>()))
        .layer(inner);
    let mut req = Request::get(format!(
        "{}/epayment/v1/payments/ref-12345678",
        tokens.base_url()
    ))
    .header("merchant-serial-number", "123456")
    .body(Full::new(Bytes::new()))
    .unwrap();
    nearly_full(&mut req, 1);
    let err = auth.clone().oneshot(req).await.unwrap_err();
    assert_eq!(err.code(), "vipps::too_many_headers");
    assert!(err.is_refused());
    assert_eq!(sent.load(Ordering::SeqCst), 0);

    // Checkout: its client credentials do not fit either.
    let mut req = Request::post(format!("{}/checkout/v3/session", tokens.base_url()))
        .header("merchant-serial-number", "123456")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    nearly_full(&mut req, 1);
    let err = auth.oneshot(req).await.unwrap_err();
    assert_eq!(err.code(), "vipps::too_many_headers");
    assert!(err.is_refused());
    assert_eq!(sent.load(Ordering::SeqCst), 0);
}

// 4. A token endpoint's 429 with `Retry-After: 20` is a prompt `rate_limited`
//    with the wait, not a 10-second timeout.
#[tokio::test]
async fn a_rate_limited_token_endpoint_answers_promptly() {
    let server = serve(|req: SeenRequest| async move {
        if req.uri().path() == "/accesstoken/get" {
            let mut res = respond(
                429,
                "application/json",
                r#"{"statusCode": 429, "message": "Rate limit is exceeded. Try again in 20 seconds."}"#,
            );
            res.headers_mut()
                .insert("retry-after", HeaderValue::from_static("20"));
            res
        } else {
            respond(200, "application/json", "{}")
        }
    })
    .await;
    let stack = tower_vipps::layer(keyring(&server.authority())).layer(client::<Full<Bytes>>());
    let req = Request::get(format!(
        "{}/epayment/v1/payments/ref-12345678",
        server.base_url()
    ))
    .body(Full::new(Bytes::new()))
    .unwrap();
    let err = stack.oneshot(req).await.unwrap_err();
    assert_eq!(err.cause(), Cause::RateLimited, "{err:?}");
    assert_eq!(err.status(), Some(StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(20)));
}

/// A server that answers every request with this head and these first body
/// bytes, then sends nothing more and keeps the connection open.
async fn stalling(head_and_start: &'static str) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut open = Vec::new();
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let mut buf = [0u8; 8192];
            let mut read = Vec::new();
            while !read.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read.extend_from_slice(&buf[..n]),
                }
            }
            let _ = stream.write_all(head_and_start.as_bytes()).await;
            let _ = stream.flush().await;
            open.push(stream);
        }
    });
    (addr.to_string(), task)
}

const STALLED_500: &str = "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/problem+json\r\ncontent-length: 400\r\n\r\n{\"title\":\"Internal error\",\"status\":500";

// 5. An error body that stops mid-way, under the whole preset: the error keeps
//    the status and the bytes read, long before the total deadline.
#[tokio::test]
async fn a_stalled_error_body_keeps_status_and_bytes() {
    let (authority, _server) = stalling(STALLED_500).await;
    let tokens = token_server().await;
    let stack = tower_vipps::layer(keyring(&authority))
        .total_timeout(Duration::from_secs(60))
        .error_body_timeout(Duration::from_millis(300));
    // Token requests go to the loopback token endpoint, the API call to the
    // stalling server.
    let tokens_base = tokens.base_url();
    let inner = tower::service_fn(move |mut req: Request<Full<Bytes>>| {
        if req.uri().path() == "/accesstoken/get" {
            *req.uri_mut() = format!("{tokens_base}/accesstoken/get").parse().unwrap();
        }
        client::<Full<Bytes>>().oneshot(req)
    });
    let stack = stack.layer(inner);
    let req = Request::get(format!(
        "http://{authority}/epayment/v1/payments/ref-12345678"
    ))
    .body(Full::new(Bytes::new()))
    .unwrap();
    let err = stack.oneshot(req).await.unwrap_err();
    assert_eq!(
        err.status(),
        Some(StatusCode::INTERNAL_SERVER_ERROR),
        "{err:?}"
    );
    assert_eq!(err.cause(), Cause::ServerError);
    assert_eq!(
        err.body().unwrap().as_ref(),
        br#"{"title":"Internal error","status":500"#
    );
    assert!(
        err.diagnosis()
            .evidence()
            .iter()
            .any(|e| e.contains("stopped coming")),
        "{err:?}"
    );
}

// 9. `DiagnoseLayer` alone answers on a body that stops sending.
#[tokio::test]
async fn diagnose_alone_answers_a_stalled_body() {
    let (authority, _server) = stalling(STALLED_500).await;
    let stack = DiagnoseLayer::new()
        .body_timeout(Duration::from_millis(200))
        .layer(client::<Full<Bytes>>());
    let req = Request::get(format!(
        "http://{authority}/epayment/v1/payments/ref-12345678"
    ))
    .body(Full::new(Bytes::new()))
    .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(60), stack.oneshot(req))
        .await
        .expect("Diagnose must not wait for a stalled body forever")
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    assert!(err.error_response().unwrap().truncated);
}

/// A body that is always ready: `frames` data frames of `size` bytes (empty when
/// 0), counting how many were polled, then the end.
#[derive(Debug)]
struct Spinning {
    left: usize,
    size: usize,
    polled: Arc<AtomicUsize>,
}

impl http_body::Body for Spinning {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.polled.fetch_add(1, Ordering::Relaxed);
        if self.left == 0 {
            return Poll::Ready(None);
        }
        self.left -= 1;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; self.size])))))
    }
}

fn spinning_service(
    status: u16,
    frames: usize,
    size: usize,
    polled: Arc<AtomicUsize>,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<Spinning>,
    Error = Infallible,
    Future = std::future::Ready<Result<Response<Spinning>, Infallible>>,
> + Clone {
    tower::service_fn(move |_req: Request<Full<Bytes>>| {
        let body = Spinning {
            left: frames,
            size,
            polled: polled.clone(),
        };
        std::future::ready(Ok(Response::builder().status(status).body(body).unwrap()))
    })
}

// 7a. An always-ready body of endless empty frames ends at the frame cap.
#[test]
fn an_always_ready_body_ends() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let polled = Arc::new(AtomicUsize::new(0));
        let svc = DiagnoseLayer::new().layer(spinning_service(500, usize::MAX, 0, polled.clone()));
        let req = Request::get("https://apitest.vipps.no/epayment/v1/payments/ref-12345678")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let err = rt.block_on(svc.oneshot(req)).unwrap_err();
        let _ = tx.send((err.status(), polled.load(Ordering::Relaxed)));
    });
    let (status, polled) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("Diagnose spun on an always-ready body");
    assert_eq!(status, Some(StatusCode::INTERNAL_SERVER_ERROR));
    assert!(polled <= 5000, "{polled} frames polled");
}

// 7b. Reading an always-ready body yields to the runtime (cooperative budget).
#[tokio::test]
async fn an_always_ready_body_yields() {
    let polled = Arc::new(AtomicUsize::new(0));
    let svc = DiagnoseLayer::new().layer(spinning_service(500, 100_000, 1, polled.clone()));
    let req = Request::get("https://apitest.vipps.no/epayment/v1/payments/ref-12345678")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let mut future = std::pin::pin!(svc.oneshot(req));
    let first = std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await;
    assert!(first.is_pending(), "read the whole body in one poll");
    assert!(future.await.is_err());
}

// 8. Auth's look at a 401 stops at the frame cap.
#[tokio::test]
async fn auth_inspects_a_401_within_a_frame_cap() {
    let polled = Arc::new(AtomicUsize::new(0));
    let tokens = token_server().await;
    let auth = AuthLayer::new(keyring(&tokens.authority()))
        .token_client(TokenClient::new(client::<Full<Bytes>>()))
        .layer(spinning_service(401, 1_000_000, 0, polled.clone()));
    let req = Request::get(format!(
        "{}/epayment/v1/payments/ref-12345678",
        tokens.base_url()
    ))
    .body(Full::new(Bytes::new()))
    .unwrap();
    let res = auth.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let polled = polled.load(Ordering::Relaxed);
    assert!(polled <= 5000, "{polled} frames read to inspect a 401");
    // The body is still whole for the caller.
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(body.is_empty());
}

// 11a. A token is accepted for its whole lifetime, to the millisecond.
#[tokio::test(start_paused = true)]
async fn emulator_tokens_last_their_whole_lifetime() {
    let emulator = Emulator::builder()
        .token_lifetime(Environment::Test, Duration::from_secs(2))
        .start()
        .await
        .unwrap();
    let merchant = emulator.merchant(Environment::Test);
    let base = emulator.base_url(Environment::Test);
    let http = client::<Full<Bytes>>();
    // Half a second into the emulator's second.
    tokio::time::advance(Duration::from_millis(500)).await;
    let issued = tokio::time::Instant::now();
    let token_req = Request::post(format!("{base}/accesstoken/get"))
        .header("client_id", merchant.client_id())
        .header("client_secret", merchant.client_secret())
        .header("ocp-apim-subscription-key", merchant.subscription_key())
        .header("merchant-serial-number", "123456")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = http.request(token_req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let token = json["access_token"].as_str().unwrap().to_owned();
    // 100 ms before the expiry the client counts (from before its request).
    tokio::time::advance(Duration::from_millis(1900)).await;
    assert!(tokio::time::Instant::now() < issued + Duration::from_secs(2));
    let call = Request::get(format!("{base}/epayment/v1/payments/ref-12345678"))
        .header("authorization", format!("Bearer {token}"))
        .header("ocp-apim-subscription-key", merchant.subscription_key())
        .header("merchant-serial-number", "123456")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = http.request(call).await.unwrap();
    assert_ne!(res.status(), StatusCode::UNAUTHORIZED);
}

// 11b. 503 and 504 faults, a log whose cap is the caller's, and a secret in the
//      wrong header hidden in the log.
#[tokio::test]
async fn emulator_faults_log_and_misplaced_secrets() {
    let emulator = Emulator::builder()
        .request_log_cap(2)
        .start()
        .await
        .unwrap();
    let merchant = emulator.merchant(Environment::Test);
    let base = emulator.base_url(Environment::Test);
    let http = client::<Full<Bytes>>();
    emulator
        .faults()
        .inject(Endpoint::AccessToken, Fault::ServiceUnavailable, 1)
        .inject(Endpoint::AccessToken, Fault::GatewayTimeout, 1);
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let req = Request::post(format!("{base}/accesstoken/get"))
            .header("client_id", merchant.client_id())
            // The secret in the wrong header, and the key as a query of sorts.
            .header("client-secret", merchant.client_secret())
            .header("x-api", merchant.subscription_key())
            .body(Full::new(Bytes::new()))
            .unwrap();
        statuses.push(http.request(req).await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [503, 504]);
    // The presets' secrets share pieces with their client ids: look for them whole.
    let log = format!("{:?}", emulator.requests());
    assert!(!log.contains(merchant.client_secret()), "{log}");
    assert!(!log.contains(merchant.subscription_key()), "{log}");
    assert_eq!(emulator.requests_dropped(), 0);
    let req = Request::get(format!("{base}/nothing-here"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let _ = http.request(req).await.unwrap();
    assert_eq!(emulator.requests().len(), 2);
    assert_eq!(emulator.requests_dropped(), 1);
}

// 12. A 500 is diagnosed as the docs describe it, and not retried.
#[tokio::test]
async fn a_500_says_what_the_docs_say_and_is_not_retried() {
    let hits = Arc::new(AtomicUsize::new(0));
    let count = hits.clone();
    let server = serve(move |req: SeenRequest| {
        let count = count.clone();
        async move {
            if req.uri().path() == "/accesstoken/get" {
                return respond(
                    200,
                    "application/json",
                    format!(
                        r#"{{"token_type":"Bearer","expires_in":"3600","access_token":"{JWT}"}}"#
                    ),
                );
            }
            count.fetch_add(1, Ordering::SeqCst);
            respond(
                500,
                "application/problem+json",
                r#"{"type":"about:blank","title":"Internal error","status":500}"#,
            )
        }
    })
    .await;
    let stack = tower_vipps::layer(keyring(&server.authority())).layer(client::<Full<Bytes>>());
    let req = Request::post(format!("{}/epayment/v1/payments", server.base_url()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(
            br#"{"amount":{"currency":"NOK","value":1000},"paymentMethod":{"type":"WALLET"},"reference":"ref-12345678","userFlow":"WEB_REDIRECT","returnUrl":"https://example.com/return"}"#,
        )))
        .unwrap();
    let err = stack.oneshot(req).await.unwrap_err();
    assert_eq!(
        err.status(),
        Some(StatusCode::INTERNAL_SERVER_ERROR),
        "{err:?}"
    );
    assert_eq!(err.cause(), Cause::ServerError);
    assert!(err.idempotency_key().is_some());
    assert!(
        err.diagnosis()
            .evidence()
            .iter()
            .any(|e| e.contains("developer.vippsmobilepay.com/docs/knowledge-base/errors")),
        "{err:?}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}
