//! `DiagnoseLayer` over a real hyper server on loopback.
mod common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_vipps::diagnose::BODY_CAP;
use tower_vipps::{
    Api, Cause, Diagnose, DiagnoseLayer, Diagnosis, Environment, Hosts, Origin, VippsError,
};

const PROBLEM_6090: &str = r#"{"type":"https://httpstatuses.io/400","title":"Capture amount too high","status":400,"detail":"The total capture amount exceeds the reserved amount.","instance":"/v1/payments/acme-shop-123-order123abc/capture","traceId":"00-953f48f1a09f76b5a170b33839263059-0fd630f1f29d0da9-01","extraDetails":[{"name":"ErrorCode","reason":"6090"}]}"#;

/// A hang guard only: a buffering layer would wait forever for the body's end.
const GUARD: Duration = Duration::from_secs(20);

fn empty_get(uri: String) -> Request<Empty<Bytes>> {
    Request::get(uri)
        .header("Merchant-Serial-Number", "123456")
        .header(
            "Authorization",
            "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl",
        )
        .body(Empty::new())
        .unwrap()
}

/// A server whose one response body is fed, chunk by chunk, by the test.
async fn streaming_server(
    rx: mpsc::Receiver<Bytes>,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let rx = Arc::new(Mutex::new(Some(rx)));
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let service = service_fn(move |_req: Request<Incoming>| {
            let rx = rx.lock().unwrap().take().expect("one request");
            async move {
                let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
                    rx.recv()
                        .await
                        .map(|chunk| (Ok::<_, Infallible>(Frame::data(chunk)), rx))
                });
                Ok::<_, Infallible>(
                    Response::builder()
                        .status(200)
                        .header("content-type", "application/json")
                        .body(StreamBody::new(chunks))
                        .unwrap(),
                )
            }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await;
    });
    (addr, task)
}

#[test]
fn futures_and_services_are_send_and_sync() {
    fn send<T: Send>(_: &T) {}
    fn sync<T: Sync>(_: &T) {}
    let mut service = DiagnoseLayer::new().layer(common::client::<Empty<Bytes>>());
    send(&service);
    sync(&service);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let future = tower::Service::call(&mut service, empty_get("http://127.0.0.1:9/".into()));
    send(&future);
}

#[tokio::test]
async fn success_streams_through_unbuffered() {
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    let (addr, _server) = streaming_server(rx).await;
    let service = DiagnoseLayer::new().layer(common::client::<Empty<Bytes>>());

    tx.send(Bytes::from_static(b"first chunk;")).await.unwrap();
    // The body has not ended (the test still holds `tx`): a layer that buffered the
    // body would never answer here.
    let response: Response<Incoming> = tokio::time::timeout(
        GUARD,
        service.oneshot(empty_get(format!("http://{addr}/epayment/v1/payments/abc"))),
    )
    .await
    .expect("the response head arrives before the body ends")
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = tokio::time::timeout(GUARD, body.frame())
        .await
        .expect("the first chunk arrives before the rest is sent")
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    assert_eq!(&first[..], b"first chunk;");

    tx.send(Bytes::from_static(b"second chunk")).await.unwrap();
    drop(tx);
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(&rest[..], b"second chunk");
}

#[tokio::test]
async fn error_status_becomes_vipps_error_with_body_kept() {
    let server = common::serve(|_req| async {
        let mut res = common::respond(400, "application/problem+json", PROBLEM_6090);
        res.headers_mut()
            .insert("x-request-id", "req-1".parse().unwrap());
        res
    })
    .await;
    let hosts = Hosts::default().with(Environment::Test, &server.authority());
    let service = ServiceBuilder::new()
        .layer(DiagnoseLayer::new().hosts(hosts))
        .service(common::client::<Empty<Bytes>>());
    let mut request = empty_get(format!(
        "{}/epayment/v1/payments/acme-shop-123-order123abc/capture",
        server.base_url()
    ));
    *request.method_mut() = http::Method::POST;
    request
        .headers_mut()
        .insert("Idempotency-Key", "key-1".parse().unwrap());

    let err: VippsError = service.oneshot(request).await.unwrap_err();
    assert_eq!(err.cause(), Cause::CaptureExceedsReserved);
    assert_eq!(err.code(), "vipps::capture_exceeds_reserved");
    assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
    assert_eq!(
        err.body().unwrap(),
        &Bytes::from_static(PROBLEM_6090.as_bytes())
    );
    let response = err.error_response().unwrap();
    assert!(!response.truncated);
    assert_eq!(response.headers["x-request-id"], "req-1");
    assert!(matches!(err.origin(), Origin::Response(_)));
    assert!(
        err.diagnosis()
            .evidence()
            .iter()
            .any(|e| e == "ePayment ErrorCode 6090")
    );
    let ctx = err.context();
    assert_eq!(ctx.api, Api::EPayment);
    assert_eq!(ctx.operation, Some("capture"));
    assert_eq!(ctx.msn, Some("123456".parse().unwrap()));
    assert_eq!(ctx.environment, Some(Environment::Test));
    assert_eq!(err.idempotency_key(), Some("key-1"));
    let text = err.to_string();
    assert!(
        text.starts_with("Vipps MobilePay answered 400 Bad Request"),
        "{text}"
    );
    assert!(text.contains("MSN 123456"), "{text}");
    assert!(
        text.contains(" Evidence: ePayment ErrorCode 6090. "),
        "{text}"
    );
    assert!(!text.contains("status 400"), "{text}");
}

#[tokio::test]
async fn every_error_status_is_diagnosed_and_success_statuses_pass() {
    let server = common::serve(|req| async move {
        let status: u16 = req
            .uri()
            .path()
            .trim_start_matches("/epayment/")
            .parse()
            .unwrap();
        common::respond(status, "text/plain", format!("body of {status}"))
    })
    .await;
    let service = Diagnose::new(common::client::<Empty<Bytes>>());
    for status in [200u16, 201, 204, 302, 399] {
        let res = service
            .clone()
            .oneshot(empty_get(format!(
                "{}/epayment/{status}",
                server.base_url()
            )))
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), status);
    }
    for (status, code) in [
        (400u16, "vipps::unknown"),
        (401, "vipps::invalid_access_token"),
        (403, "vipps::forbidden"),
        (404, "vipps::unknown"),
        (409, "vipps::idempotency_conflict"),
        (423, "vipps::concurrent_operation"),
        (429, "vipps::rate_limited"),
        (500, "vipps::server_error"),
        (503, "vipps::server_error"),
    ] {
        let err = service
            .clone()
            .oneshot(empty_get(format!(
                "{}/epayment/{status}",
                server.base_url()
            )))
            .await
            .unwrap_err();
        assert_eq!(err.status().unwrap().as_u16(), status);
        assert_eq!(err.code(), code, "status {status}");
        assert_eq!(
            err.body().unwrap(),
            &Bytes::from(format!("body of {status}"))
        );
    }
}

#[tokio::test]
async fn ten_megabyte_error_body_is_cut_at_the_cap() {
    let server = common::serve(|_req| async {
        common::respond(500, "text/plain", vec![b'x'; 10 * 1024 * 1024])
    })
    .await;
    let service = Diagnose::new(common::client::<Empty<Bytes>>());
    let err = service
        .oneshot(empty_get(format!(
            "{}/epayment/v1/payments",
            server.base_url()
        )))
        .await
        .unwrap_err();
    let response = err.error_response().unwrap();
    assert_eq!(response.body.len(), BODY_CAP);
    assert_eq!(BODY_CAP, 64 * 1024);
    assert!(response.truncated);
    assert!(response.body.iter().all(|&b| b == b'x'));
    assert_eq!(err.cause(), Cause::ServerError);
}

#[tokio::test]
async fn smaller_body_cap_is_respected() {
    let server =
        common::serve(|_req| async { common::respond(400, "text/plain", "0123456789") }).await;
    let service = DiagnoseLayer::new()
        .body_cap(4)
        .layer(common::client::<Empty<Bytes>>());
    let err = service
        .oneshot(empty_get(format!(
            "{}/epayment/v1/payments",
            server.base_url()
        )))
        .await
        .unwrap_err();
    assert_eq!(err.body().unwrap(), &Bytes::from_static(b"0123"));
    assert!(err.error_response().unwrap().truncated);
    // A cap above BODY_CAP is lowered to it.
    assert_eq!(
        format!("{:?}", DiagnoseLayer::new().body_cap(usize::MAX)),
        format!("{:?}", DiagnoseLayer::new())
    );
}

#[tokio::test]
async fn connection_refused_is_diagnosed_as_such() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let service = Diagnose::new(common::client::<Empty<Bytes>>());
    let err = service
        .oneshot(empty_get(format!("http://{addr}/epayment/v1/payments/abc")))
        .await
        .unwrap_err();
    assert_eq!(err.cause(), Cause::ConnectionRefused);
    assert!(matches!(err.origin(), Origin::Transport));
    assert!(std::error::Error::source(&err).is_some());
    // The operating system's own words, in the message and the report.
    assert!(err.to_string().contains("tcp connect error"), "{err}");
    assert!(err.diagnosis().report().contains("tcp connect error"));
    assert_eq!(err.context().api, Api::EPayment);
    assert_eq!(err.context().msn, Some("123456".parse().unwrap()));
    assert!(err.is_transient());
}

#[tokio::test]
async fn vipps_error_from_inner_layer_keeps_its_cause() {
    let inner = tower::service_fn(|_req: Request<Full<Bytes>>| async {
        Err::<Response<Full<Bytes>>, tower::BoxError>(
            VippsError::refused(
                Diagnosis::new(Cause::BearerWrongCase).with_evidence("scheme is `bearer`"),
            )
            .into(),
        )
    });
    let service = Diagnose::new(inner);
    let request = Request::post("https://apitest.vipps.no/epayment/v1/payments")
        .header("Merchant-Serial-Number", "654321")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let err = service.oneshot(request).await.unwrap_err();
    assert_eq!(err.cause(), Cause::BearerWrongCase);
    assert!(err.is_refused());
    assert_eq!(err.diagnosis().evidence()[0], "scheme is `bearer`");
    // The context the inner layer lacked is filled in.
    assert_eq!(err.context().api, Api::EPayment);
    assert_eq!(err.context().operation, Some("create_payment"));
    assert_eq!(err.context().environment, Some(Environment::Test));
    assert_eq!(err.context().msn, Some("654321".parse().unwrap()));
}

#[tokio::test]
async fn inner_error_in_poll_ready_becomes_vipps_error() {
    let inner = tower::service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, tower::BoxError>(Response::new(Full::new(Bytes::new())))
    });
    // A concurrency-limited inner service whose readiness fails: use a buffer that
    // is closed by dropping its worker.
    let (buffer, worker) = tower::buffer::Buffer::pair(inner, 1);
    drop(worker);
    let mut service = Diagnose::new(buffer);
    let Err(err) = service.ready().await.map(|_| ()) else {
        panic!("a closed buffer is never ready");
    };
    assert_eq!(err.cause(), Cause::Transport);
}

#[tokio::test]
async fn body_read_error_still_yields_vipps_error_with_what_was_read() {
    let inner = tower::service_fn(|_req: Request<Full<Bytes>>| async {
        let frames = futures_util::stream::iter(vec![
            Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(b"partial "))),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "reset",
            )),
        ]);
        Ok::<_, Infallible>(
            Response::builder()
                .status(502)
                .body(StreamBody::new(frames))
                .unwrap(),
        )
    });
    let err = Diagnose::new(inner)
        .oneshot(
            Request::get("https://api.vipps.no/ecomm/v2/payments/x/details")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.cause(), Cause::ServerError);
    assert_eq!(err.body().unwrap(), &Bytes::from_static(b"partial "));
    assert!(
        err.diagnosis()
            .evidence()
            .iter()
            .any(|e| e.contains("could not be read to its end after 8 bytes"))
    );
    assert_eq!(err.context().environment, Some(Environment::Production));
    assert_eq!(err.context().api, Api::ECom);
}

#[tokio::test]
async fn tracing_names_code_and_msn_but_no_secret() {
    let (captured, _guard) = common::capture_tracing();
    let server = common::serve(|_req| async {
        let mut res = common::respond(
            401,
            "application/json",
            r#"{"statusCode":401,"message":"Access denied due to invalid subscription key."}"#,
        );
        res.headers_mut().insert(
            "set-cookie",
            "session=0123456789abcdef0123456789abcdef".parse().unwrap(),
        );
        res
    })
    .await;
    let service = Diagnose::new(common::client::<Empty<Bytes>>());
    let mut request = empty_get(format!("{}/epayment/v1/payments", server.base_url()));
    request.headers_mut().insert(
        "Ocp-Apim-Subscription-Key",
        "0f1e2d3c4b5a69788796a5b4c3d2e1f0".parse().unwrap(),
    );
    let err = service.oneshot(request).await.unwrap_err();
    assert_eq!(err.cause(), Cause::InvalidSubscriptionKey);
    let logs = captured.text();
    assert!(logs.contains("vipps::invalid_subscription_key"), "{logs}");
    assert!(logs.contains("msn=123456"), "{logs}");
    for secret in [
        "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "eyJhbGciOiJSUzI1NiJ9",
        "0123456789abcdef0123456789abcdef",
    ] {
        assert!(!logs.contains(secret), "{logs}");
        assert!(!format!("{err:?}").contains(secret), "{err:?}");
        assert!(!err.to_string().contains(secret));
    }
}

#[tokio::test]
async fn display_is_one_paragraph_naming_cause_evidence_and_first_step() {
    let server = common::serve(|_req| async {
        common::respond(
            401,
            "application/json",
            r#"{"statusCode":401,"message":"Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."}"#,
        )
    })
    .await;
    let err = Diagnose::new(common::client::<Empty<Bytes>>())
        .oneshot(empty_get(format!(
            "{}/epayment/v1/payments/abc",
            server.base_url()
        )))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(!text.contains('\n'), "{text}");
    assert!(
        text.starts_with("Vipps MobilePay answered 401 Unauthorized: "),
        "{text}"
    );
    assert!(text.contains("[vipps::invalid_subscription_key]"), "{text}");
    assert!(
        text.contains(" Evidence: gateway message: Access denied due to invalid subscription key."),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            " First step: {}",
            Cause::InvalidSubscriptionKey.steps()[0]
        )),
        "{text}"
    );
    assert!(
        text.ends_with(Cause::InvalidSubscriptionKey.docs_url()),
        "{text}"
    );
}

/// A 401 that only says "Something went wrong" is explained by the request's own
/// `Authorization` header, over a real loopback server; when a layer below set the
/// header (the `AuthorizationSetBelow` mark), what Diagnose saw is not trusted.
#[tokio::test]
async fn a_401_is_explained_by_the_header_that_was_sent() {
    use tower_vipps::auth::AuthorizationSetBelow;

    let server = common::serve(|_req| async move {
        common::respond(
            401,
            "text/plain",
            "Something went wrong, please try again later",
        )
    })
    .await;
    let url = format!("{}/epayment/v1/payments/order-12345678", server.base_url());
    let client = tower_vipps::DiagnoseLayer::new()
        .layer(common::client::<http_body_util::Full<bytes::Bytes>>());
    let cases = [
        (
            Some("bearer eyJhbGciOiJub25lIn0.eyJleHAiOjF9.c2ln"),
            "vipps::bearer_wrong_case",
        ),
        (
            Some("eyJhbGciOiJub25lIn0.eyJleHAiOjF9.c2ln"),
            "vipps::bearer_missing",
        ),
        (
            Some("Bearer  eyJhbGciOiJub25lIn0.eyJleHAiOjF9.c2ln"),
            "vipps::malformed_authorization",
        ),
        (None, "vipps::missing_authorization"),
        (
            Some("Bearer eyJhbGciOiJub25lIn0.eyJleHAiOjF9.c2ln"),
            "vipps::invalid_access_token",
        ),
    ];
    for (authorization, code) in cases {
        let mut request = http::Request::get(&url);
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        let request = request.body(http_body_util::Full::default()).unwrap();
        let err = client.clone().oneshot(request).await.unwrap_err();
        assert_eq!(err.code(), code, "{authorization:?}");
        assert_eq!(err.status(), Some(http::StatusCode::UNAUTHORIZED));
        assert!(
            err.diagnosis()
                .evidence()
                .iter()
                .any(|e| e.contains("Something went wrong")),
            "the response's evidence is kept: {:?}",
            err.diagnosis().evidence()
        );
    }

    // A layer below set `Authorization`: the header seen above is not what was sent.
    let marked = tower::service_fn(
        |_req: http::Request<http_body_util::Full<bytes::Bytes>>| async {
            let mut response = common::respond(
                401,
                "text/plain",
                "Something went wrong, please try again later",
            );
            response.extensions_mut().insert(AuthorizationSetBelow);
            Ok::<_, std::convert::Infallible>(response)
        },
    );
    let request = http::Request::get(&url)
        .header("Authorization", "bearer not-what-was-sent")
        .body(http_body_util::Full::default())
        .unwrap();
    let err = tower_vipps::DiagnoseLayer::new()
        .layer(marked)
        .oneshot(request)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "vipps::invalid_access_token");
}
