//! Webhooks: the official test vector, one diagnosis per tampered part, the layer
//! (caps, duplicates, rejections), a seeded fuzz test, and redaction. End to end
//! against the emulator: `webhooks_e2e.rs`.

mod common;
mod webhooks_support;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full, StreamBody};
use proptest::prelude::*;
use serde_json::Value;
use tower::{Layer, ServiceExt, service_fn};
use tower_vipps::webhooks::{
    Delivery, EventName, Verifier, WebhookLayer, WebhookRejection, X_MS_DATE, sign,
};
use tower_vipps::{Cause, Msn, Secret};
use webhooks_support::{Seen, event_body, recording, signed_request};

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

// ---------------------------------------------------------------------------
// The layer, called directly.

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
