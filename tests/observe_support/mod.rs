//! What the span and metrics tests share: the emulator merchant's requests.
#![allow(dead_code)]

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use serde_json::json;
use tower_vipps::emulator::{READY_USER, TEST_MSN};

/// A JSON request of the emulator's test merchant (its MSN in the header).
pub fn request(method: Method, url: String, body: String) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(url)
        .header("Merchant-Serial-Number", TEST_MSN.to_string())
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// An ePayment create body of 100.00 NOK for the emulator's ready test user.
pub fn create_body(reference: &str, description: &str) -> String {
    json!({
        "amount": {"value": 10000, "currency": "NOK"},
        "paymentMethod": {"type": "WALLET"},
        "customer": {"phoneNumber": READY_USER},
        "reference": reference,
        "returnUrl": "https://acme.example/return",
        "userFlow": "WEB_REDIRECT",
        "paymentDescription": description
    })
    .to_string()
}
