//! Webhooks: the official test vector, one diagnosis per tampered part, the layer
//! (caps, duplicates, rejections), end to end against the emulator over loopback
//! HTTP, a seeded fuzz test, and redaction.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use proptest::prelude::*;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_vipps::emulator::{Emulator, TEST_MERCHANT, WAITING_USER, WebhookRetry};
use tower_vipps::webhooks::{
    Delivery, EPaymentEvent, EventName, VerifiedBody, Verifier, WebhookLayer, WebhookRejection,
    X_MS_DATE, sign,
};
use tower_vipps::{Cause, Environment, Msn, Secret};

const SECRET: &str =
    "A0+AeKBRG2KRGvnNwJpQlb6IJFk48CKXCIcrLoHncVJKDILsQSxS6NWCccwWm6r6FhGKhiHTBsG2wo/xU6FY/A==";
const URL: &str = "https://webhook.site/e2cee29b-012e-4f1d-8ef4-e95fd74a7a63";
const PATH: &str = "/e2cee29b-012e-4f1d-8ef4-e95fd74a7a63";
const BODY: &str = r#"{"some-unique-content":"ee6e441b-cc4a-46f8-895d-a5af79bcc233/hello-world"}"#;
const DATE: &str = "Thu, 30 Mar 2023 08:38:32 GMT";
const HASH: &str = "lNlsp1XA03N34HrQsVzPgJKtC+r7l/RBF4V3JQUWMj4=";
const AUTHORIZATION: &str = "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=agAiSyogQbDHpeucoNwYz+yAr5nJ+v+zasdkSbqzv+U=";

fn vector_now() -> SystemTime {
    httpdate::parse_http_date(DATE).unwrap()
}

/// The request of the official test vector, as received.
fn vector_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("webhook.site"));
    headers.insert("x-ms-date", HeaderValue::from_static(DATE));
    headers.insert("x-ms-content-sha256", HeaderValue::from_static(HASH));
    headers.insert("authorization", HeaderValue::from_static(AUTHORIZATION));
    headers
}

fn verify_vector(
    verifier: &Verifier,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), WebhookRejection> {
    let uri: Uri = PATH.parse().unwrap();
    verifier
        .verify(&Method::POST, &uri, headers, body, vector_now())
        .map(|_| ())
}

fn flip(text: &str, at: usize) -> String {
    let mut bytes = text.as_bytes().to_vec();
    bytes[at] ^= 0x01;
    String::from_utf8(bytes).unwrap()
}

#[test]
fn official_test_vector_verifies_and_signs() {
    let verifier = Verifier::new(URL).unwrap().secret(SECRET);
    verify_vector(&verifier, &vector_headers(), BODY.as_bytes()).unwrap();
    let signed = sign(BODY.as_bytes(), URL, vector_now(), &Secret::new(SECRET)).unwrap();
    assert_eq!(signed.date(), DATE);
    assert_eq!(signed.content_sha256(), HASH);
    assert_eq!(signed.authorization(), AUTHORIZATION);
    assert_eq!(signed.host(), "webhook.site");
}

#[test]
fn one_flipped_byte_each_has_its_own_diagnosis() {
    let verifier = Verifier::new(URL).unwrap().secret(SECRET);
    let mut causes = Vec::new();

    // The body.
    let body = flip(BODY, 10);
    let err = verify_vector(&verifier, &vector_headers(), body.as_bytes()).unwrap_err();
    assert!(matches!(err, WebhookRejection::BodyAltered { length, .. } if length == BODY.len()));
    causes.push(err.cause());

    // The date: a second later (within the tolerance), then ten years later.
    let mut headers = vector_headers();
    let later = DATE.replace(":32 ", ":33 ");
    assert_eq!(later, flip(DATE, DATE.find(":32 ").unwrap() + 2));
    headers.insert(X_MS_DATE, HeaderValue::from_str(&later).unwrap());
    let err = verify_vector(&verifier, &headers, BODY.as_bytes()).unwrap_err();
    assert_eq!(
        err,
        WebhookRejection::DateAltered {
            signed_date: DATE.to_owned()
        }
    );
    causes.push(err.cause());
    let mut headers = vector_headers();
    let later = flip(DATE, DATE.find("08:").unwrap()); // 18:38:32, ten hours later
    headers.insert(X_MS_DATE, HeaderValue::from_str(&later).unwrap());
    let err = verify_vector(&verifier, &headers, BODY.as_bytes()).unwrap_err();
    assert!(
        matches!(err, WebhookRejection::DateOutsideTolerance { skew_secs, .. } if skew_secs > 0)
    );
    causes.push(err.cause());

    // The host, then the path, of the registered URL the verifier was given.
    let host = flip(URL, "https://webhook.sit".len());
    let err = verify_vector(
        &Verifier::new(&host).unwrap().secret(SECRET),
        &vector_headers(),
        BODY.as_bytes(),
    )
    .unwrap_err();
    let WebhookRejection::UrlMismatch {
        signed_authority,
        signed_path,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(
        (signed_authority.as_str(), signed_path.as_str()),
        ("webhook.site", PATH)
    );
    let host_evidence = err.diagnosis().evidence().to_vec();
    causes.push(err.cause());
    let path = flip(URL, URL.len() - 2); // …7a62
    let err = verify_vector(
        &Verifier::new(&path).unwrap().secret(SECRET),
        &vector_headers(),
        BODY.as_bytes(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, WebhookRejection::UrlMismatch { signed_path, .. } if signed_path == PATH)
    );
    assert_ne!(err.diagnosis().evidence(), host_evidence.as_slice());

    // The secret.
    let err = verify_vector(
        &Verifier::new(URL).unwrap().secret(flip(SECRET, 5)),
        &vector_headers(),
        BODY.as_bytes(),
    )
    .unwrap_err();
    assert!(matches!(
        err,
        WebhookRejection::WrongSecret { tried: 1, .. }
    ));
    causes.push(err.cause());

    // A header missing.
    for name in ["x-ms-date", "x-ms-content-sha256", "authorization"] {
        let mut headers = vector_headers();
        headers.remove(name);
        let err = verify_vector(&verifier, &headers, BODY.as_bytes()).unwrap_err();
        assert_eq!(err, WebhookRejection::HeaderMissing { header: name });
        assert!(err.diagnosis().report().contains(name));
    }
    causes.push(Cause::WebhookHeaderMissing);

    let mut distinct = causes.clone();
    distinct.sort_by_key(|c| c.code());
    distinct.dedup();
    assert_eq!(distinct.len(), causes.len(), "{causes:?}");
    for cause in causes {
        assert!(
            cause
                .docs_url()
                .contains("webhooks-api/request-authentication")
        );
    }
}

#[test]
fn a_proxy_rewriting_host_and_path_does_not_break_verification() {
    let verifier = Verifier::new(URL).unwrap().secret(SECRET);
    let mut headers = vector_headers();
    headers.insert("host", HeaderValue::from_static("10.0.0.7:8080"));
    let uri: Uri = "/internal/hooks".parse().unwrap();
    verifier
        .verify(&Method::POST, &uri, &headers, BODY.as_bytes(), vector_now())
        .unwrap();
}

#[test]
fn several_secrets_rotation_and_per_msn() {
    let url = "https://shop.example/hooks";
    let now = SystemTime::now();
    let body = event_body("123456", "CAPTURED", "k1");
    let old = Secret::new("old secret");
    let new = Secret::new("new secret");
    let headers = sign(body.as_bytes(), url, now, &new)
        .unwrap()
        .to_header_map();
    let uri: Uri = "/hooks".parse().unwrap();
    let rotating = Verifier::new(url)
        .unwrap()
        .secret(old.clone())
        .secret(new.clone());
    let by = rotating
        .verify(&Method::POST, &uri, &headers, body.as_bytes(), now)
        .unwrap();
    assert_eq!(by.index, 1);

    // A partner: one registration (and secret) per MSN, chosen by the event's MSN.
    let a: Msn = "123456".parse().unwrap();
    let b: Msn = "654321".parse().unwrap();
    let partner = Verifier::new(url)
        .unwrap()
        .secret_for_msn(b, old.clone())
        .secret_for_msn(a, new.clone());
    let by = partner
        .verify(&Method::POST, &uri, &headers, body.as_bytes(), now)
        .unwrap();
    assert_eq!((by.index, by.msn), (1, Some(a)));
    // An event of MSN A signed with B's secret: B's secret is not tried for A.
    let headers = sign(body.as_bytes(), url, now, &old)
        .unwrap()
        .to_header_map();
    let err = partner
        .verify(&Method::POST, &uri, &headers, body.as_bytes(), now)
        .unwrap_err();
    assert_eq!(
        err,
        WebhookRejection::WrongSecret {
            tried: 1,
            msn: Some("123456".into())
        }
    );
}

/// An event in the order Vipps MobilePay writes its keys (not sorted).
fn event_body(msn: &str, name: &str, key: &str) -> String {
    format!(
        r#"{{"msn":"{msn}","reference":"acme-order-1001","pspReference":"7686f7788898767977","name":"{name}","amount":{{"currency":"NOK","value":49900}},"timestamp":"2025-01-01T12:00:00Z","idempotencyKey":"{key}","success":true}}"#
    )
}

// ---------------------------------------------------------------------------
// The layer, called directly.

type Seen = Arc<Mutex<Vec<(Option<EventName>, Delivery)>>>;

/// A handler that records what it got and answers the statuses given, in turn
/// (then 200).
fn recording(
    seen: Seen,
    statuses: Vec<u16>,
) -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    let statuses = Arc::new(Mutex::new(statuses.into_iter()));
    service_fn(move |req: Request<Full<Bytes>>| {
        let seen = seen.clone();
        let statuses = statuses.clone();
        async move {
            let event = req.extensions().get::<EPaymentEvent>().cloned();
            let delivery = *req.extensions().get::<Delivery>().expect("a delivery mark");
            let raw = req
                .extensions()
                .get::<VerifiedBody>()
                .expect("the raw body")
                .0
                .clone();
            let body = req.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(raw, body, "the body holds the verified bytes");
            let name = event.as_ref().map(|e| e.name.clone());
            seen.lock().unwrap().push((name.clone(), delivery));
            let status = statuses.lock().unwrap().next().unwrap_or(200);
            let mut res = Response::new(Full::new(Bytes::new()));
            *res.status_mut() = StatusCode::from_u16(status).unwrap();
            if let Some(name) = name {
                res.headers_mut()
                    .insert("x-event", HeaderValue::from_str(name.as_str()).unwrap());
            }
            Ok(res)
        }
    })
}

fn signed_request(url: &str, body: &str, secret: &Secret) -> Request<Full<Bytes>> {
    let path = url.parse::<Uri>().unwrap().path().to_owned();
    let mut req = Request::post(path)
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    sign(body.as_bytes(), url, SystemTime::now(), secret)
        .unwrap()
        .apply(req.headers_mut());
    req
}

#[tokio::test]
async fn duplicates_are_marked_only_once_processed() {
    let url = "https://shop.example/hooks";
    let secret = Secret::new("s3cret");
    let seen = Seen::default();
    // 500 first, then 200, then a redelivery after the 200.
    let service = WebhookLayer::new(url)
        .unwrap()
        .secret(secret.clone())
        .layer(recording(seen.clone(), vec![500]));
    let body = event_body("123456", "CAPTURED", "capture-1");
    for expected in [500, 200, 200] {
        let res = service
            .clone()
            .oneshot(signed_request(url, &body, &secret))
            .await
            .unwrap();
        assert_eq!(res.status(), expected);
    }
    // Another event of the same payment is new.
    let other = event_body("123456", "REFUNDED", "refund-1");
    let res = service
        .clone()
        .oneshot(signed_request(url, &other, &secret))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let captured = Some(EventName::Captured);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            (captured.clone(), Delivery::New),
            (captured.clone(), Delivery::New),
            (captured, Delivery::Duplicate),
            (Some(EventName::Refunded), Delivery::New),
        ]
    );
}

#[tokio::test]
async fn rejections_answer_401_without_detail_and_tell_the_operator() {
    let url = "https://shop.example/hooks";
    let secret = Secret::new("s3cret");
    let seen = Seen::default();
    let rejected = Arc::new(Mutex::new(Vec::new()));
    let hook = rejected.clone();
    let service = WebhookLayer::new(url)
        .unwrap()
        .secret(secret.clone())
        .on_reject(move |rejection, _| hook.lock().unwrap().push(rejection.cause()))
        .layer(recording(seen.clone(), vec![]));
    let body = event_body("123456", "CAPTURED", "capture-1");

    // Unsigned.
    let req = Request::post("/hooks")
        .body(Full::new(Bytes::from(body.clone())))
        .unwrap();
    let res = service.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), 401);
    let rejection = res.extensions().get::<WebhookRejection>().cloned().unwrap();
    assert_eq!(rejection.cause(), Cause::WebhookHeaderMissing);
    assert!(
        res.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .is_empty()
    );

    // Re-serialized by a framework in front of the layer (keys reordered):
    // "body altered", not a wrong secret.
    let reserialize = service_fn(|req: Request<Full<Bytes>>| {
        let service = service.clone();
        async move {
            let (parts, body) = req.into_parts();
            let bytes = body.collect().await.unwrap().to_bytes();
            let value: Value = serde_json::from_slice(&bytes).unwrap();
            let again = Bytes::from(serde_json::to_vec(&value).unwrap());
            assert_ne!(again, bytes, "serde_json sorts the keys");
            service
                .oneshot(Request::from_parts(parts, Full::new(again)))
                .await
        }
    });
    let res = reserialize
        .oneshot(signed_request(url, &body, &secret))
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let rejection = res.extensions().get::<WebhookRejection>().unwrap();
    assert_eq!(rejection.cause(), Cause::WebhookBodyAltered);
    assert!(rejection.diagnosis().report().contains("re-serialized"));

    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing reached the handler"
    );
    assert_eq!(
        *rejected.lock().unwrap(),
        vec![Cause::WebhookHeaderMissing, Cause::WebhookBodyAltered]
    );
}

#[tokio::test(start_paused = true)]
async fn the_body_is_read_within_caps_in_bytes_frames_and_time() {
    let url = "https://shop.example/hooks";
    let secret = Secret::new("s3cret");
    let seen = Seen::default();
    let layer = WebhookLayer::new(url)
        .unwrap()
        .secret(secret.clone())
        .body_limit(1024)
        .max_frames(8)
        .read_timeout(Duration::from_secs(2));
    let service = layer.layer(recording(seen.clone(), vec![]));
    let reason = |res: Response<Full<Bytes>>| {
        assert_eq!(res.status(), 401);
        match res.extensions().get::<WebhookRejection>() {
            Some(WebhookRejection::BodyUnreadable { reason }) => *reason,
            other => panic!("{other:?}"),
        }
    };

    let big = Request::post("/hooks")
        .body(Full::new(Bytes::from(vec![b'x'; 2048])))
        .unwrap();
    assert!(reason(service.clone().oneshot(big).await.unwrap()).contains("longer than the cap"));

    type Frames = StreamBody<
        futures_util::stream::BoxStream<'static, Result<http_body::Frame<Bytes>, Infallible>>,
    >;
    let frames = futures_util::stream::iter(
        (0..100).map(|_| Ok(http_body::Frame::data(Bytes::from_static(b"{")))),
    );
    let many: Request<Frames> = Request::post("/hooks")
        .body(StreamBody::new(Box::pin(frames) as _))
        .unwrap();
    let service2 = layer.layer(recording(seen.clone(), vec![]));
    assert!(reason(service2.clone().oneshot(many).await.unwrap()).contains("frames"));

    let stalled = futures_util::stream::pending();
    let slow: Request<Frames> = Request::post("/hooks")
        .body(StreamBody::new(Box::pin(stalled) as _))
        .unwrap();
    assert!(reason(service2.oneshot(slow).await.unwrap()).contains("timeout"));
    assert!(seen.lock().unwrap().is_empty());
}

// ---------------------------------------------------------------------------
// Fuzz-style: random headers and bodies never pass unsigned, never panic.

fn header_value() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        "[ -~]{0,80}".prop_map(Some),
        Just(Some(DATE.to_owned())),
        Just(Some(HASH.to_owned())),
        "[A-Za-z0-9+/]{43}=".prop_map(|s| Some(format!(
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={s}"
        ))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(0x7e55), ..ProptestConfig::default() })]

    #[test]
    fn random_requests_never_pass_unsigned(
        date in header_value(),
        hash in header_value(),
        authorization in header_value(),
        host in header_value(),
        body in proptest::collection::vec(any::<u8>(), 0..300),
        use_vector_body in any::<bool>(),
        path in "/[a-z0-9/?=&-]{0,40}",
        post in any::<bool>(),
    ) {
        let verifier = Verifier::new(URL).unwrap().secret(SECRET).secret("another");
        let body = if use_vector_body { BODY.as_bytes().to_vec() } else { body };
        let mut headers = HeaderMap::new();
        for (name, value) in [("x-ms-date", &date), ("x-ms-content-sha256", &hash), ("authorization", &authorization), ("host", &host)] {
            if let Some(value) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
                headers.insert(name, value);
            }
        }
        let signed = authorization.as_deref() == Some(AUTHORIZATION);
        let method = if post { Method::POST } else { Method::GET };
        let uri: Uri = path.parse().unwrap_or_else(|_| Uri::from_static("/"));
        let result = verifier.verify(&method, &uri, &headers, &body, vector_now());
        prop_assert!(result.is_err() || signed, "accepted unsigned: {headers:?}");
        if let Err(rejection) = result {
            // Every rejection explains itself.
            prop_assert!(!rejection.diagnosis().evidence().is_empty());
            prop_assert!(!rejection.to_string().contains(SECRET));
        }
    }
}

// ---------------------------------------------------------------------------
// Secrets stay out of Debug and tracing.

#[test]
fn secrets_never_in_debug_or_tracing() {
    let (captured, _guard) = common::capture_tracing();
    let layer = WebhookLayer::new(URL)
        .unwrap()
        .secret(SECRET)
        .secret_for_msn("123456".parse().unwrap(), "partner-secret-value");
    let verifier = Verifier::new(URL).unwrap().secret(SECRET);
    let signed = sign(BODY.as_bytes(), URL, vector_now(), &Secret::new(SECRET)).unwrap();
    let debug = format!(
        "{layer:?} {verifier:?} {signed:?} {:?}",
        signed.to_header_map()
    );
    for secret in [SECRET, "partner-secret-value", "agAiSyogQbDHpeucoNwYz"] {
        assert!(!debug.contains(secret), "{debug}");
    }
    // Rejections of every kind are logged; the log names the cause, never a secret.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let service = layer.layer(recording(Seen::default(), vec![]));
        let mut req = Request::post(PATH)
            .body(Full::new(Bytes::from(BODY)))
            .unwrap();
        *req.headers_mut() = vector_headers();
        // The vector's date is years old.
        let res = service.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), 401);
        let wrong = signed_request(URL, BODY, &Secret::new("not the secret"));
        assert_eq!(service.oneshot(wrong).await.unwrap().status(), 401);
    });
    let text = captured.text();
    assert!(
        text.contains("vipps::webhook_date_outside_tolerance"),
        "{text}"
    );
    assert!(text.contains("vipps::webhook_wrong_secret"), "{text}");
    for secret in [SECRET, "partner-secret-value", "not the secret"] {
        assert!(!text.contains(secret), "{text}");
    }
}

// ---------------------------------------------------------------------------
// End to end: the emulator delivers to a hyper server with the layer.

struct Receiver {
    url: String,
    seen: Seen,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A hyper server on loopback: `wrap` builds the service (the layer over a
/// recording handler) once the registered URL's secret is known.
async fn receiver<F, S>(listener: TcpListener, url: String, seen: Seen, make: F) -> Receiver
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
    Receiver { url, seen, task }
}

type Client = tower_vipps::VippsService<
    hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
>;

fn client(emulator: &Emulator) -> Client {
    let keyring = emulator
        .keyring_builder()
        .key_set(TEST_MERCHANT.key_set())
        .build()
        .unwrap();
    let hyper_client =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http();
    tower_vipps::layer(keyring).layer(hyper_client)
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

fn names(seen: &Seen) -> Vec<(Option<EventName>, Delivery)> {
    seen.lock().unwrap().clone()
}

#[tokio::test]
async fn end_to_end_each_event_once_as_new_and_verified() {
    let emulator = fast_emulator().start().await.unwrap();
    let mut client = client(&emulator);
    let (listener, url, secret, id) = register(&mut client, &emulator).await;
    let (status, list) = call(
        &mut client,
        &emulator,
        Method::GET,
        "/webhooks/v1/webhooks",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["webhooks"][0]["id"], id.as_str());
    assert_eq!(list["webhooks"][0]["url"], url.as_str());

    let layer = WebhookLayer::new(&url).unwrap().secret(secret);
    let rx = receiver(listener, url, Seen::default(), |seen| {
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
    let (status, list) = call(
        &mut client,
        &emulator,
        Method::GET,
        "/webhooks/v1/webhooks",
        None,
    )
    .await;
    assert_eq!((status, list), (StatusCode::OK, json!({"webhooks": []})));
    payment_flow(&mut client, &emulator, "acme-order-e2e-2").await;
    emulator.webhooks_idle().await;
    assert_eq!(rx.seen.lock().unwrap().len(), 4);
    let _ = rx.url.len();
}

#[tokio::test]
async fn end_to_end_a_500_is_retried_and_a_processed_event_comes_back_as_duplicate() {
    let emulator = fast_emulator().start().await.unwrap();
    let mut client = client(&emulator);

    // Receiver 1: the handler answers 500 to its second event (AUTHORIZED): the
    // retry is new, since it was not processed.
    let (listener, url, secret, _) = register(&mut client, &emulator).await;
    let layer = WebhookLayer::new(&url).unwrap().secret(secret);
    let failing = receiver(listener, url, Seen::default(), |seen| {
        layer.layer(recording(seen, vec![200, 500]))
    })
    .await;

    // Receiver 2: processed (the handler answers 200), but the answer is lost on
    // the way out (a proxy answers 500) once for CAPTURED: the retry is a duplicate.
    let (listener, url, secret, _) = register(&mut client, &emulator).await;
    let layer = WebhookLayer::new(&url).unwrap().secret(secret);
    let lost = Arc::new(Mutex::new(false));
    let lossy = receiver(listener, url, Seen::default(), |seen| {
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
    let mut client = client(&emulator);
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
