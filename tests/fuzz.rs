//! A seeded fuzz-style trial of the crate (issue 11): `classify` and the body
//! parsers, `PreflightLayer`, and the whole preset (`tower_vipps::layer`) over a
//! counting inner service whose token endpoint answers every shape (good, wrong
//! types, missing fields, HTML, huge, slow, 429, echoing the request's headers) and
//! whose API answers every status with mutated, chunked, stalled, endless or broken
//! bodies.
//!
//! For every case: no panic, a response (`< 400`) or a diagnosed `VippsError` with
//! a known code, a refusal that sent nothing, and no 12-byte piece of any secret
//! (client secret, subscription key, every access token handed out) in `Debug`,
//! `{:#?}`, `Display`, `report()`, miette's rendering or TRACE-level tracing.
//!
//! Fast by default (a few seconds in a debug build). The long mode:
//! `TOWER_VIPPS_FUZZ_CASES=1000000 cargo test --release --all-features --test fuzz`
//! (cases per test); `TOWER_VIPPS_FUZZ_SEED=n` picks another seed. A failure
//! prints its seed and case number.

mod common;

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use fastrand::Rng;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt};
use tower_vipps::diagnose::body::ErrorBody;
use tower_vipps::diagnose::classify;
use tower_vipps::{
    Api, Cause, Environment, KeySet, Keyring, Msn, PreflightLayer, RequestContext, VippsError,
};

const CORPUS: &str = include_str!("data/error-corpus.jsonl");

/// Cases per test: `TOWER_VIPPS_FUZZ_CASES`, or `default`.
fn cases(default: u64) -> u64 {
    std::env::var("TOWER_VIPPS_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn seed() -> u64 {
    std::env::var("TOWER_VIPPS_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x11_5EED)
}

/// Runs `case` for each case number with its own seeded generator; a panic names
/// the seed and the case.
fn run(name: &str, default: u64, mut case: impl FnMut(u64, &mut Rng)) {
    let seed = seed();
    let n = cases(default);
    let started = std::time::Instant::now();
    for i in 0..n {
        let mut rng = Rng::with_seed(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(i, &mut rng)));
        if let Err(panic) = outcome {
            eprintln!("{name}: case {i} of seed {seed} failed");
            std::panic::resume_unwind(panic);
        }
    }
    eprintln!("{name}: {n} cases, seed {seed}, {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------
// Generators.

fn corpus_bodies() -> &'static [String] {
    static BODIES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    BODIES.get_or_init(|| {
        CORPUS
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| match &v["body"] {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Null => None,
                other => Some(other.to_string()),
            })
            .collect()
    })
}

const KEYS: &[&str] = &[
    "type",
    "title",
    "status",
    "detail",
    "instance",
    "traceId",
    "extraDetails",
    "name",
    "reason",
    "errorCode",
    "errorGroup",
    "errorMessage",
    "contextId",
    "error",
    "error_description",
    "message",
    "statusCode",
    "code",
    "access_token",
    "expires_in",
    "token_type",
];

const WORDS: &[&str] = &[
    "Something went wrong",
    "Subscription not found",
    "invalid subscription key",
    "missing subscription key",
    "Bearer",
    "invalid_client",
    "invalid_token",
    "expired",
    "Merchant Not Allowed for Ecommerce Payment",
    "ErrorCode",
    "6080",
    "4040",
    "3010",
    "61",
    "81",
    "Payment",
    "Authentication",
    "VippsError",
    "not connected",
    "MSN",
    "Merchant-Serial-Number",
    "",
    " ",
    "\u{0}",
    "é",
    "\u{202e}",
    "null",
];

fn json_value(rng: &mut Rng, depth: u32) -> serde_json::Value {
    use serde_json::Value;
    match rng.u8(..if depth > 3 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.bool()),
        2 => Value::from(rng.i64(..)),
        3 => Value::from(rng.f64() * 1e6),
        4 => Value::from(WORDS[rng.usize(..WORDS.len())]),
        5 => Value::Array(
            (0..rng.usize(..4))
                .map(|_| json_value(rng, depth + 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.usize(..6))
                .map(|_| {
                    (
                        KEYS[rng.usize(..KEYS.len())].to_owned(),
                        json_value(rng, depth + 1),
                    )
                })
                .collect(),
        ),
    }
}

fn mutate(rng: &mut Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.usize(1..8) {
        match rng.u8(..6) {
            0 if !bytes.is_empty() => {
                let at = rng.usize(..bytes.len());
                bytes[at] = rng.u8(..);
            }
            1 if !bytes.is_empty() => {
                let at = rng.usize(..bytes.len());
                bytes.truncate(at);
            }
            2 => {
                let at = rng.usize(..=bytes.len());
                let word = WORDS[rng.usize(..WORDS.len())].as_bytes();
                bytes.splice(at..at, word.iter().copied());
            }
            3 if !bytes.is_empty() => {
                let from = rng.usize(..bytes.len());
                let to = rng.usize(from..=bytes.len());
                let piece = bytes[from..to].to_vec();
                bytes.extend_from_slice(&piece);
            }
            4 => {
                let at = rng.usize(..=bytes.len());
                bytes.insert(at, b"{}[]\",:\\"[rng.usize(..8)]);
            }
            _ => bytes.reverse(),
        }
    }
    bytes
}

/// An error body of any shape.
fn body(rng: &mut Rng) -> Vec<u8> {
    let corpus = corpus_bodies();
    match rng.u8(..10) {
        0 | 1 => corpus[rng.usize(..corpus.len())].clone().into_bytes(),
        2 | 3 => {
            let start = corpus[rng.usize(..corpus.len())].clone().into_bytes();
            mutate(rng, start)
        }
        4 | 5 => json_value(rng, 0).to_string().into_bytes(),
        6 => (0..rng.usize(..300)).map(|_| rng.u8(..)).collect(),
        7 => b"<html><body><h1>502 Bad Gateway</h1></body></html>".to_vec(),
        8 => {
            // Huge: past the 64 KiB cap.
            let mut big = br#"{"title":""#.to_vec();
            big.resize(70 * 1024 + rng.usize(..4096), b'a');
            big
        }
        _ => {
            let depth = rng.usize(..5000);
            let mut deep = vec![b'['; depth];
            deep.extend(std::iter::repeat_n(b']', rng.usize(..=depth)));
            deep
        }
    }
}

fn status(rng: &mut Rng) -> StatusCode {
    const COMMON: &[u16] = &[
        200, 201, 204, 302, 400, 401, 403, 404, 409, 413, 415, 422, 423, 429, 500, 502, 503, 504,
    ];
    if rng.u8(..8) == 0 {
        StatusCode::from_u16(rng.u16(100..1000)).unwrap()
    } else {
        StatusCode::from_u16(COMMON[rng.usize(..COMMON.len())]).unwrap()
    }
}

fn retry_after(rng: &mut Rng) -> HeaderValue {
    let date =
        httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(rng.u64(..100)));
    let options = [
        "0",
        "1",
        "5",
        "20",
        "100",
        "-1",
        "soon",
        "99999999999999999999999",
        "1.5",
    ];
    match rng.u8(..4) {
        0 => HeaderValue::from_str(&date).unwrap(),
        _ => HeaderValue::from_static(options[rng.usize(..options.len())]),
    }
}

fn response_headers(rng: &mut Rng) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if rng.bool() {
        headers.insert("retry-after", retry_after(rng));
    }
    if rng.u8(..4) == 0 {
        let v = ["Bearer error=\"invalid_token\"", "Basic", "", "Bearer"];
        headers.insert(
            "www-authenticate",
            HeaderValue::from_static(v[rng.usize(..v.len())]),
        );
    }
    let types = [
        "application/json",
        "application/problem+json",
        "text/html",
        "text/plain",
    ];
    headers.insert(
        "content-type",
        HeaderValue::from_static(types[rng.usize(..types.len())]),
    );
    headers
}

fn api(rng: &mut Rng) -> Api {
    let names = [
        "epayment",
        "ecom",
        "recurring",
        "checkout",
        "login",
        "accesstoken",
        "management",
        "partner",
        "other",
    ];
    Api::from_name(names[rng.usize(..names.len())]).unwrap()
}

// ---------------------------------------------------------------------------
// Secrets and what is printed.

/// The secrets of a case, as the set of their 12-byte pieces.
#[derive(Clone)]
struct Secrets(std::collections::HashSet<Vec<u8>>);

const PIECE: usize = 12;

impl Secrets {
    fn new(secrets: &[&str]) -> Secrets {
        let mut pieces = std::collections::HashSet::new();
        for secret in secrets {
            assert!(secret.len() >= PIECE, "a test secret shorter than a piece");
            pieces.extend(secret.as_bytes().windows(PIECE).map(<[u8]>::to_vec));
        }
        Secrets(pieces)
    }

    fn with(&self, secret: &str) -> Secrets {
        let mut more = self.clone();
        more.0
            .extend(secret.as_bytes().windows(PIECE).map(<[u8]>::to_vec));
        more
    }

    /// No 12-byte piece of any secret in `text`.
    fn assert_absent(&self, what: &str, text: &str) {
        if let Some(window) = text.as_bytes().windows(PIECE).find(|w| self.0.contains(*w)) {
            panic!(
                "`{}` of a secret in {what}:\n{text}",
                String::from_utf8_lossy(window)
            );
        }
    }
}

fn assert_diagnosed(err: &VippsError, secrets: &Secrets) {
    assert!(Cause::ALL.contains(&err.cause()), "{err:?}");
    assert!(err.code().starts_with("vipps::"));
    let mut texts = vec![
        ("Debug", format!("{err:?}")),
        ("{:#?}", format!("{err:#?}")),
        ("Display", err.to_string()),
        ("report", err.diagnosis().report()),
    ];
    #[cfg(feature = "miette")]
    {
        let mut out = String::new();
        miette::NarratableReportHandler::new()
            .render_report(&mut out, err)
            .unwrap();
        texts.push(("miette", out));
    }
    for (what, text) in &texts {
        secrets.assert_absent(what, text);
    }
}

// ---------------------------------------------------------------------------
// 1. classify and the body parsers.

#[test]
fn classify_and_parsers_take_anything() {
    let secrets = Secrets::new(&[]);
    run("classify", 2000, |_, rng| {
        let bytes = body(rng);
        let parsed = ErrorBody::parse(&bytes);
        let _ = format!("{parsed:?}");
        let _ = parsed.message();
        let context = RequestContext {
            api: api(rng),
            msn: rng.bool().then(|| "123456".parse().unwrap()),
            ..RequestContext::default()
        };
        let status = status(rng);
        let headers = response_headers(rng);
        let diagnosis = classify(&context, status, &headers, &bytes);
        assert!(Cause::ALL.contains(&diagnosis.cause()));
        let report = diagnosis.report();
        secrets.assert_absent("report", &report);
        if status.is_server_error() {
            assert_eq!(diagnosis.cause(), Cause::ServerError);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(diagnosis.cause(), Cause::RateLimited);
        }
    });
}

// ---------------------------------------------------------------------------
// Requests.

const CLIENT_SECRET: &str = "fz-client-secret-Q2w9Lk3Xv7Tr";
const SUB_KEY: &str = "fz-sub-key-Hn4Jp8Ws1Yc6Bz0M";
const PARTNER_SECRET: &str = "fz-partner-secret-Rt5Gv2Kd8Np";
const PARTNER_SUB_KEY: &str = "fz-partner-subkey-Ue7Mx3Qa9Lw";
/// A token of the caller's own, sent in a request.
const USER_TOKEN: &str =
    "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoib3duLXRva2VuLWZ1enoifQ.dXNlci10b2tlbi1zaWduYXR1cmU";

fn keyring() -> Keyring {
    let msn: Msn = "123456".parse().unwrap();
    let partner = KeySet::partner(
        Environment::Test,
        "partner-id",
        PARTNER_SECRET,
        PARTNER_SUB_KEY,
    )
    .unwrap()
    .connected_msns((300_000..300_010).map(|m| Msn::try_from(m).unwrap()));
    Keyring::builder()
        .merchant(
            Environment::Test,
            msn,
            "merchant-id",
            CLIENT_SECRET,
            SUB_KEY,
        )
        .key_set(partner)
        .build()
        .unwrap()
}

const PATHS: &[&str] = &[
    "/epayment/v1/payments",
    "/epayment/v1/payments/ref-12345678",
    "/epayment/v1/payments/ref-12345678/events",
    "/epayment/v1/payments/ref-12345678/capture",
    "/epayment/v1/payments/ref-12345678/refund",
    "/epayment/v1/payments/ref-12345678/cancel",
    "/ecomm/v2/payments",
    "/ecomm/v2/payments/order-1/details",
    "/recurring/v3/agreements",
    "/checkout/v3/session",
    "/accesstoken/get",
    "/miami/v1/token",
    "/access-management-1.0/access/oauth2/token",
    "/management/v1/merchants",
    "/webhooks/v1/webhooks",
    "/",
    "",
];

fn request(rng: &mut Rng) -> Request<Full<Bytes>> {
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::HEAD,
    ];
    let method = methods[rng.usize(..methods.len())].clone();
    let mut path = PATHS[rng.usize(..PATHS.len())].to_owned();
    if rng.u8(..5) == 0 {
        let extra: String = (0..rng.usize(..40))
            .map(|_| b"abc/%._-~0189?=&#"[rng.usize(..17)] as char)
            .collect();
        path.push_str(&extra);
    }
    let hosts = [
        "apitest.vipps.no",
        "api.vipps.no",
        "example.com",
        "apitest.vipps.no:443",
    ];
    let uri = format!("https://{}{}", hosts[rng.usize(..hosts.len())], path);
    let uri = uri.parse::<http::Uri>().unwrap_or_else(|_| {
        "https://apitest.vipps.no/epayment/v1/payments"
            .parse()
            .unwrap()
    });
    let mut req = Request::builder().method(method).uri(uri);
    let headers = req.headers_mut().unwrap();
    let msns = [
        "123456", "300001", "300999", "999999", "abc", "", " 123456", "0123456",
    ];
    if rng.u8(..4) != 0 {
        headers.insert(
            "merchant-serial-number",
            HeaderValue::from_str(msns[rng.usize(..msns.len())]).unwrap(),
        );
    }
    if rng.u8(..6) == 0 {
        headers.insert("merchantserialnumber", HeaderValue::from_static("123456"));
    }
    if rng.u8(..4) == 0 {
        let auth = [
            format!("Bearer {USER_TOKEN}"),
            format!("bearer {USER_TOKEN}"),
            USER_TOKEN.to_owned(),
            format!("Bearer  {USER_TOKEN}"),
            "Bearer".to_owned(),
            format!("Basic {USER_TOKEN}"),
        ];
        let mut value = HeaderValue::from_str(&auth[rng.usize(..auth.len())]).unwrap();
        value.set_sensitive(true);
        headers.insert("authorization", value);
    }
    if rng.u8(..5) == 0 {
        let keys = [SUB_KEY, PARTNER_SUB_KEY, "wrong-key", ""];
        let mut value = HeaderValue::from_str(keys[rng.usize(..keys.len())]).unwrap();
        value.set_sensitive(true);
        headers.insert("ocp-apim-subscription-key", value);
    }
    if rng.u8(..3) == 0 {
        let keys = ["key-1", "", &"k".repeat(51), "a b"];
        let key = keys[rng.usize(..keys.len())].to_owned();
        headers.insert("idempotency-key", HeaderValue::from_str(&key).unwrap());
    }
    if rng.u8(..8) == 0 {
        // A secret in a wrong (credential-named) header.
        let mut value = HeaderValue::from_static(CLIENT_SECRET);
        value.set_sensitive(true);
        headers.insert("client_secret", value);
    }
    for i in 0..rng.usize(..4) {
        headers.insert(
            HeaderName::from_bytes(format!("x-fuzz-{i}").as_bytes()).unwrap(),
            HeaderValue::from_static("1"),
        );
    }
    let body = if rng.bool() {
        json_value(rng, 0).to_string().into_bytes()
    } else {
        let corpus = [
            r#"{"amount":{"currency":"NOK","value":1000},"paymentMethod":{"type":"WALLET"},"reference":"ref-12345678","userFlow":"WEB_REDIRECT","returnUrl":"https://example.com/r"}"#,
            r#"{"modificationAmount":{"currency":"NOK","value":100}}"#,
            r#"{"merchantInfo":{"merchantSerialNumber":"654321"}}"#,
            "",
        ];
        let start = corpus[rng.usize(..corpus.len())].as_bytes().to_vec();
        mutate(rng, start)
    };
    req.body(Full::new(Bytes::from(body))).unwrap()
}

// ---------------------------------------------------------------------------
// 2. PreflightLayer.

#[test]
fn preflight_takes_anything() {
    let secrets = Secrets::new(&[
        CLIENT_SECRET,
        SUB_KEY,
        PARTNER_SECRET,
        PARTNER_SUB_KEY,
        USER_TOKEN,
    ]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (captured, _guard) = common::capture_tracing();
    let sent = Arc::new(AtomicUsize::new(0));
    let count = sent.clone();
    let inner = tower::service_fn(move |_req: Request<Full<Bytes>>| {
        count.fetch_add(1, Ordering::Relaxed);
        async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
    });
    let layer = PreflightLayer::new().keyring(keyring());
    run("preflight", 1500, |_, rng| {
        let before = sent.load(Ordering::Relaxed);
        let req = request(rng);
        let result = rt.block_on(layer.layer(inner.clone()).oneshot(req));
        match result {
            Ok(_) => assert_eq!(sent.load(Ordering::Relaxed), before + 1),
            Err(err) => {
                assert_diagnosed(&err, &secrets);
                if err.is_refused() {
                    assert_eq!(sent.load(Ordering::Relaxed), before, "refused yet sent");
                }
            }
        }
        secrets.assert_absent("tracing", &captured.take());
    });
}

// ---------------------------------------------------------------------------
// 3. The whole preset, over a token endpoint and an API answering every shape.

/// How a body comes.
#[derive(Clone, Copy, Debug)]
enum Delivery {
    Whole,
    /// One byte per frame.
    Trickle,
    /// Some bytes, then never anything more.
    Stall,
    /// Empty frames, always ready, `n` of them.
    Spin(usize),
    /// Some bytes, then an error.
    Break,
}

fn delivery(rng: &mut Rng) -> Delivery {
    match rng.u8(..10) {
        0 => Delivery::Trickle,
        1 => Delivery::Stall,
        2 => Delivery::Spin(if rng.bool() {
            usize::MAX
        } else {
            rng.usize(..10_000)
        }),
        3 => Delivery::Break,
        _ => Delivery::Whole,
    }
}

struct FuzzBody {
    bytes: Bytes,
    delivery: Delivery,
    sent: usize,
}

impl http_body::Body for FuzzBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = &mut *self;
        let half = this.bytes.len() / 2;
        match this.delivery {
            Delivery::Whole => {
                if this.sent > 0 {
                    return Poll::Ready(None);
                }
                this.sent = 1;
                Poll::Ready(Some(Ok(Frame::data(this.bytes.clone()))))
            }
            Delivery::Trickle => {
                if this.sent >= this.bytes.len() {
                    return Poll::Ready(None);
                }
                this.sent += 1;
                Poll::Ready(Some(Ok(Frame::data(
                    this.bytes.slice(this.sent - 1..this.sent),
                ))))
            }
            Delivery::Stall => {
                if this.sent == 0 {
                    this.sent = 1;
                    return Poll::Ready(Some(Ok(Frame::data(this.bytes.slice(..half)))));
                }
                Poll::Pending
            }
            Delivery::Spin(n) => {
                if this.sent >= n {
                    return Poll::Ready(None);
                }
                this.sent += 1;
                Poll::Ready(Some(Ok(Frame::data(Bytes::new()))))
            }
            Delivery::Break => {
                if this.sent == 0 {
                    this.sent = 1;
                    return Poll::Ready(Some(Ok(Frame::data(this.bytes.slice(..half)))));
                }
                Poll::Ready(Some(Err(std::io::Error::other("connection reset"))))
            }
        }
    }
}

/// What the token endpoint answers in one case.
#[derive(Clone, Copy, Debug)]
enum TokenShape {
    Good,
    WrongTypes,
    Missing,
    Html,
    Huge,
    Slow,
    RateLimited,
    Echo,
    RejectedField,
    Random,
}

const SHAPES: [TokenShape; 10] = [
    TokenShape::Good,
    TokenShape::WrongTypes,
    TokenShape::Missing,
    TokenShape::Html,
    TokenShape::Huge,
    TokenShape::Slow,
    TokenShape::RateLimited,
    TokenShape::Echo,
    TokenShape::RejectedField,
    TokenShape::Random,
];

fn fresh_token(rng: &mut Rng) -> String {
    let b64 = |rng: &mut Rng, n: usize| -> String {
        (0..n)
            .map(|_| {
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[rng.usize(..64)]
                    as char
            })
            .collect()
    };
    if rng.u8(..4) == 0 {
        b64(rng, 40)
    } else {
        format!("eyJ{}.{}.{}", b64(rng, 30), b64(rng, 60), b64(rng, 43))
    }
}

struct Case {
    shape: TokenShape,
    token: String,
    token_delivery: Delivery,
    api_status: StatusCode,
    api_body: Bytes,
    api_headers: HeaderMap,
    api_delivery: Delivery,
    echo_api: bool,
    api_calls: AtomicUsize,
}

fn token_answer(
    case: &Case,
    rng: &mut Rng,
    req: &Request<Full<Bytes>>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let token = &case.token;
    let json = |s: String| (StatusCode::OK, HeaderMap::new(), s.into_bytes());
    match case.shape {
        TokenShape::Good | TokenShape::Slow => json(format!(
            r#"{{"token_type":"Bearer","expires_in":"3600","ext_expires_in":"3600","access_token":"{token}"}}"#
        )),
        TokenShape::WrongTypes => {
            let bodies = [
                format!(r#"{{"token_type":5,"expires_in":"3600","access_token":"{token}"}}"#),
                format!(r#"{{"token_type":"Bearer","expires_in":{{}},"access_token":"{token}"}}"#),
                format!(
                    r#"{{"token_type":"Bearer","expires_in":3600,"access_token":["{token}"]}}"#
                ),
                r#"{"token_type":"Bearer","expires_in":3600,"access_token":42}"#.to_owned(),
                format!(r#"["{token}"]"#),
            ];
            json(bodies[rng.usize(..bodies.len())].clone())
        }
        TokenShape::Missing => {
            let bodies = [
                format!(r#"{{"token_type":"Bearer","access_token":"{token}"}}"#),
                r#"{"token_type":"Bearer","expires_in":"3600"}"#.to_owned(),
                "{}".to_owned(),
                String::new(),
            ];
            json(bodies[rng.usize(..bodies.len())].clone())
        }
        TokenShape::Html => (
            StatusCode::OK,
            HeaderMap::new(),
            format!("<html><body>Bearer {token}</body></html>").into_bytes(),
        ),
        TokenShape::Huge => {
            let mut body = format!(r#"{{"access_token":"{token}","padding":""#).into_bytes();
            body.resize(100 * 1024, b'p');
            (StatusCode::OK, HeaderMap::new(), body)
        }
        TokenShape::RateLimited => {
            let mut headers = HeaderMap::new();
            headers.insert("retry-after", retry_after(rng));
            (
                StatusCode::TOO_MANY_REQUESTS,
                headers,
                br#"{"statusCode": 429, "message": "Rate limit is exceeded."}"#.to_vec(),
            )
        }
        TokenShape::Echo => {
            let statuses = [200, 400, 401, 403, 500];
            let mut headers = HeaderMap::new();
            let mut body = String::new();
            for (name, value) in req.headers() {
                if matches!(name.as_str(), "content-length" | "transfer-encoding") {
                    continue;
                }
                headers.append(name.clone(), value.clone());
                body.push_str(&format!(
                    "{name}: {}\n",
                    String::from_utf8_lossy(value.as_bytes())
                ));
            }
            (
                StatusCode::from_u16(statuses[rng.usize(..statuses.len())]).unwrap(),
                headers,
                body.into_bytes(),
            )
        }
        TokenShape::RejectedField => {
            let bodies = [
                format!(r#"{{"token_type":"Bearer","expires_in":"0","access_token":"{token}"}}"#),
                format!(
                    r#"{{"token_type":"Bearer","expires_in":3600.5,"access_token":"{token}"}}"#
                ),
                format!(
                    r#"{{"token_type":"Bearer","expires_in":691200,"access_token":"{token}"}}"#
                ),
                format!(r#"{{"token_type":"MAC","expires_in":"3600","access_token":"{token}"}}"#),
                format!(
                    r#"{{"token_type":"Bearer","expires_in":"3600","access_token":"{token} x"}}"#
                ),
            ];
            json(bodies[rng.usize(..bodies.len())].clone())
        }
        TokenShape::Random => {
            let mut body = body(rng);
            if rng.bool() {
                body.extend_from_slice(format!(r#"{{"access_token":"{token}"}}"#).as_bytes());
            }
            (status(rng), response_headers(rng), body)
        }
    }
}

type Inner = tower::util::BoxCloneSyncService<Request<Full<Bytes>>, Response<FuzzBody>, Infallible>;

fn inner(case: Arc<Case>, seed: u64) -> Inner {
    let rng = Arc::new(Mutex::new(Rng::with_seed(seed)));
    tower::util::BoxCloneSyncService::new(tower::service_fn(move |req: Request<Full<Bytes>>| {
        let case = case.clone();
        let rng = rng.clone();
        async move {
            let mut rng = rng.lock().unwrap().fork();
            if req.uri().path() == "/accesstoken/get" {
                if matches!(case.shape, TokenShape::Slow) {
                    tokio::time::sleep(Duration::from_secs(rng.u64(..40))).await;
                }
                let (status, headers, body) = token_answer(&case, &mut rng, &req);
                let mut res = Response::new(FuzzBody {
                    bytes: Bytes::from(body),
                    delivery: case.token_delivery,
                    sent: 0,
                });
                *res.status_mut() = status;
                *res.headers_mut() = headers;
                return Ok(res);
            }
            case.api_calls.fetch_add(1, Ordering::Relaxed);
            let mut res = Response::new(FuzzBody {
                bytes: case.api_body.clone(),
                delivery: case.api_delivery,
                sent: 0,
            });
            *res.status_mut() = case.api_status;
            *res.headers_mut() = case.api_headers.clone();
            if case.echo_api {
                for (name, value) in req.headers() {
                    if !matches!(name.as_str(), "content-length" | "transfer-encoding") {
                        res.headers_mut().append(name.clone(), value.clone());
                    }
                }
            }
            Ok(res)
        }
    }))
}

#[test]
fn the_preset_takes_anything() {
    let secrets = Secrets::new(&[
        CLIENT_SECRET,
        SUB_KEY,
        PARTNER_SECRET,
        PARTNER_SUB_KEY,
        USER_TOKEN,
    ]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let (captured, _guard) = common::capture_tracing();
    let keyring = keyring();
    run("preset", 2000, |i, rng| {
        let case = Arc::new(Case {
            shape: SHAPES[rng.usize(..SHAPES.len())],
            token: fresh_token(rng),
            token_delivery: delivery(rng),
            api_status: status(rng),
            api_body: Bytes::from(body(rng)),
            api_headers: response_headers(rng),
            api_delivery: delivery(rng),
            echo_api: rng.u8(..3) == 0,
            api_calls: AtomicUsize::new(0),
        });
        let secrets = secrets.with(&case.token);
        let stack = tower_vipps::layer(keyring.clone()).layer(inner(case.clone(), seed() ^ i));
        let req = request(rng);
        let outcome = rt.block_on(async {
            let result = tokio::time::timeout(Duration::from_secs(600), stack.oneshot(req))
                .await
                .expect("no answer within 10 minutes (virtual) of a 30 s deadline");
            match result {
                Ok(res) => {
                    let status = res.status();
                    // A success body passes unread: read some of it, bounded.
                    let mut body = std::pin::pin!(res.into_body());
                    for _ in 0..256 {
                        match tokio::time::timeout(Duration::from_secs(5), body.frame()).await {
                            Ok(Some(Ok(_))) => {}
                            _ => break,
                        }
                    }
                    Ok(status)
                }
                Err(err) => Err(err),
            }
        });
        match outcome {
            Ok(status) => assert!(status.as_u16() < 400, "{status} passed as a success"),
            Err(err) => {
                assert_diagnosed(&err, &secrets);
                if err.is_refused() {
                    assert_eq!(
                        case.api_calls.load(Ordering::Relaxed),
                        0,
                        "refused yet sent: {err:?}"
                    );
                }
            }
        }
        secrets.assert_absent("tracing", &captured.take());
    });
}
