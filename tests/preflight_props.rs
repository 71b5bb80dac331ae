//! Properties of `Preflight`: arbitrary header values, URIs and JSON bodies never
//! make it panic, and a streaming body is never polled.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;
use serde_json::Value;
use tower::{Service, ServiceExt};
use tower_vipps::preflight::{Action, Policy, PreflightLayer};
use tower_vipps::token::{KnownTokens, MintedFor};
use tower_vipps::{Environment, Fingerprint, KeySet, Keyring, Msn};

/// A body that counts how often it is polled.
struct Counting {
    polls: Arc<AtomicUsize>,
    inner: Full<Bytes>,
}

impl Body for Counting {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        Pin::new(&mut self.inner).poll_frame(cx)
    }
}

/// Knows every token, minted for something arbitrary.
struct Everything(MintedFor);

impl KnownTokens for Everything {
    fn minted_for(&self, _token: &str) -> Option<MintedFor> {
        Some(self.0.clone())
    }
}

fn layers(minted: MintedFor, refuse_all: bool) -> Vec<PreflightLayer> {
    let msn: Msn = "123456".parse().unwrap();
    let keyring = Keyring::builder()
        .merchant(Environment::Test, msn, "id", "secret", "0123456789abcdef")
        .key_set(
            KeySet::partner(Environment::Production, "pid", "psecret", "partnerkey")
                .unwrap()
                .connected_msns([msn]),
        )
        .build()
        .unwrap();
    let policy = if refuse_all {
        Policy::all(Action::Refuse)
    } else {
        Policy::default()
    };
    vec![
        PreflightLayer::new().policy(policy.clone()),
        PreflightLayer::new()
            .keyring(keyring)
            .known_tokens(Arc::new(Everything(minted)))
            .policy(policy.clone()),
        PreflightLayer::new()
            .allow_unknown_hosts(true)
            .body_cap(64)
            .policy(policy),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,20}".prop_map(Value::String),
        "[0-9+ ]{0,16}".prop_map(Value::String),
        "(https?|htt|myapp)://[a-z.]{0,12}(/[ -~]{0,10})?".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop_oneof![
            Just("amount".to_owned()),
            Just("value".to_owned()),
            Just("currency".to_owned()),
            Just("customer".to_owned()),
            Just("phoneNumber".to_owned()),
            Just("reference".to_owned()),
            Just("returnUrl".to_owned()),
            Just("userFlow".to_owned()),
            Just("modificationAmount".to_owned()),
            Just("merchantInfo".to_owned()),
            Just("merchantSerialNumber".to_owned()),
            Just("transaction".to_owned()),
            Just("orderId".to_owned()),
            Just("customerInfo".to_owned()),
            Just("mobileNumber".to_owned()),
            Just("callbackPrefix".to_owned()),
            Just("fallBack".to_owned()),
            Just("isApp".to_owned()),
            Just("pricing".to_owned()),
            "[a-zA-Z]{1,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        "[ -~]{0,64}".prop_map(String::into_bytes),
        "(Bearer|bearer|Basic)?[ \t]{0,3}(eyJ)?[A-Za-z0-9_.=\"' -]{0,40}"
            .prop_map(String::into_bytes),
        "[0-9]{0,12}".prop_map(String::into_bytes),
    ]
}

fn arb_uri() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        Just("https://apitest.vipps.no".to_owned()),
        Just("https://api.vipps.no".to_owned()),
        Just("http://127.0.0.1:8080".to_owned()),
        Just(String::new()),
        "[a-z]{1,8}://[a-z0-9.:\\[\\]]{0,20}",
    ];
    let path = prop_oneof![
        Just("/epayment/v1/payments".to_owned()),
        Just("/epayment/v1/payments/abcdefgh-1/capture".to_owned()),
        Just("/epayment/v1/payments/abcdefgh-1/refund".to_owned()),
        Just("/ecomm/v2/payments".to_owned()),
        Just("/recurring/v3/agreements".to_owned()),
        Just("/accesstoken/get".to_owned()),
        "/[ -~]{0,40}",
    ];
    (host, path).prop_map(|(h, p)| format!("{h}{p}"))
}

fn arb_minted() -> impl Strategy<Value = MintedFor> {
    (
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(1u64..9_999_999_999),
        ".{0,8}",
    )
        .prop_map(|(prod, partner, msn, key)| MintedFor {
            environment: if prod {
                Environment::Production
            } else {
                Environment::Test
            },
            client_id: Arc::from("id"),
            subscription_key: Fingerprint::of(key.as_bytes()),
            msn: msn.and_then(|m| Msn::new(m).ok()),
            partner,
        })
}

const NAMES: [&str; 9] = [
    "authorization",
    "ocp-apim-subscription-key",
    "merchant-serial-number",
    "merchantserialnumber",
    "idempotency-key",
    "vipps-system-name",
    "vipps-system-version",
    "client_secret",
    "content-type",
];

fn build(method: &str, uri: &str, headers: &[(usize, Vec<u8>)]) -> Option<http::request::Builder> {
    let uri: http::Uri = uri.parse().ok()?;
    let mut b = Request::builder().method(method).uri(uri);
    for (i, value) in headers {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            b = b.header(NAMES[i % NAMES.len()], v);
        }
    }
    Some(b)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn never_panics(
        method in prop_oneof![Just("GET"), Just("POST"), Just("PUT")],
        uri in arb_uri(),
        headers in prop::collection::vec((0usize..NAMES.len(), arb_header_value()), 0..8),
        json in arb_json(),
        raw in prop::collection::vec(any::<u8>(), 0..128),
        minted in arb_minted(),
        refuse_all in any::<bool>(),
    ) {
        let Some(_) = build(method, &uri, &headers) else { return Ok(()) };
        let text = json.to_string();
        for layer in layers(minted, refuse_all) {
            for body in [text.clone().into_bytes(), raw.clone(), Vec::new()] {
                let req = build(method, &uri, &headers).unwrap().body(body).unwrap();
                if let Err(err) = layer.check(&req) {
                    prop_assert!(err.is_refused());
                    // Formatting never panics either.
                    let _ = format!("{err} {err:?} {}", err.diagnosis().report());
                }
            }
            // A streaming body of the same bytes is never polled.
            let polls = Arc::new(AtomicUsize::new(0));
            let body = Counting { polls: polls.clone(), inner: Full::new(Bytes::from(text.clone())) };
            let req = build(method, &uri, &headers).unwrap().body(body).unwrap();
            let _ = layer.check(&req);
            prop_assert_eq!(polls.load(Ordering::SeqCst), 0);
        }
    }

    #[test]
    fn well_known_bodies_with_arbitrary_fields(
        field in prop_oneof![
            Just("amount"), Just("customer"), Just("reference"), Just("returnUrl"), Just("userFlow")
        ],
        value in arb_json(),
    ) {
        let mut body: Value = serde_json::from_str(CREATE).unwrap();
        body[field] = value;
        let req = good("POST", "/epayment/v1/payments").body(body.to_string()).unwrap();
        if let Err(err) = PreflightLayer::new().check(&req) {
            prop_assert!(err.is_refused());
        }
    }
}

const CREATE: &str = r#"{"amount":{"currency":"NOK","value":1000},"paymentMethod":{"type":"WALLET"},"customer":{"phoneNumber":"4712345678"},"reference":"acme-shop-123-order123abc","returnUrl":"https://example.com/redirect","userFlow":"WEB_REDIRECT","paymentDescription":"socks"}"#;

fn good(method: &str, path: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(format!("https://apitest.vipps.no{path}"))
        .header("Authorization", "Bearer eyJhbGciOiJub25lIn0.e30.c2ln")
        .header("Ocp-Apim-Subscription-Key", "0123456789abcdef")
        .header("Merchant-Serial-Number", "123456")
        .header("Idempotency-Key", "k-1")
        .header("Vipps-System-Name", "acme")
        .header("Vipps-System-Version", "1")
}

/// End to end: a streaming body (even one holding a bad well-known body) is passed
/// to the inner service untouched, every byte there, never polled by `Preflight`.
#[tokio::test]
async fn streaming_body_reaches_the_inner_service_whole() {
    let bad = CREATE.replace("\"value\":1000", "\"value\":-1");
    let polls = Arc::new(AtomicUsize::new(0));
    let inner_polls = polls.clone();
    let inner = tower::service_fn(move |req: Request<Counting>| {
        let polls = inner_polls.clone();
        async move {
            assert_eq!(polls.load(Ordering::SeqCst), 0, "preflight polled the body");
            let bytes = req.into_body().collect().await.unwrap().to_bytes();
            Ok::<_, std::convert::Infallible>(bytes)
        }
    });
    let mut svc = tower::Layer::layer(&PreflightLayer::new(), inner);
    let req = good("POST", "/epayment/v1/payments")
        .body(Counting {
            polls: polls.clone(),
            inner: Full::new(Bytes::from(bad.clone())),
        })
        .unwrap();
    let seen = svc.ready().await.unwrap().call(req).await.unwrap();
    assert_eq!(&seen[..], bad.as_bytes());
    assert!(polls.load(Ordering::SeqCst) >= 1);
    // The same bytes, buffered, are refused.
    let req = good("POST", "/epayment/v1/payments").body(bad).unwrap();
    let err = PreflightLayer::new().check(&req).unwrap_err();
    assert_eq!(err.cause(), tower_vipps::Cause::InvalidAmount);
}
