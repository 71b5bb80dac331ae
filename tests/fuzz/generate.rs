//! What the fuzz trial sends and answers: error bodies, statuses, headers and
//! requests of every shape, from a seeded generator.

use std::time::Duration;

use bytes::Bytes;
use fastrand::Rng;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::Full;
use tower_vipps::Api;

use super::{CLIENT_SECRET, PARTNER_SUB_KEY, SUB_KEY, USER_TOKEN};

pub(super) const CORPUS: &str = include_str!("../data/error-corpus.jsonl");

pub(super) fn corpus_bodies() -> &'static [String] {
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

pub(super) const KEYS: &[&str] = &[
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

pub(super) const WORDS: &[&str] = &[
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

pub(super) fn json_value(rng: &mut Rng, depth: u32) -> serde_json::Value {
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

pub(super) fn mutate(rng: &mut Rng, mut bytes: Vec<u8>) -> Vec<u8> {
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
pub(super) fn body(rng: &mut Rng) -> Vec<u8> {
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

pub(super) fn status(rng: &mut Rng) -> StatusCode {
    const COMMON: &[u16] = &[
        200, 201, 204, 302, 400, 401, 403, 404, 409, 413, 415, 422, 423, 429, 500, 502, 503, 504,
    ];
    if rng.u8(..8) == 0 {
        StatusCode::from_u16(rng.u16(100..1000)).unwrap()
    } else {
        StatusCode::from_u16(COMMON[rng.usize(..COMMON.len())]).unwrap()
    }
}

pub(super) fn retry_after(rng: &mut Rng) -> HeaderValue {
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

pub(super) fn response_headers(rng: &mut Rng) -> HeaderMap {
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

pub(super) fn api(rng: &mut Rng) -> Api {
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

pub(super) const PATHS: &[&str] = &[
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

pub(super) fn request(rng: &mut Rng) -> Request<Full<Bytes>> {
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
