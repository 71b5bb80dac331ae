//! What several benches share.

use bytes::Bytes;

/// An ePayment create payment body of exactly 1 KiB: a valid create whose
/// `receipt` order lines (not read by any check) pad it.
pub fn body_1k() -> Bytes {
    let base = r#"{"amount":{"currency":"NOK","value":1000},"paymentMethod":{"type":"WALLET"},"customer":{"phoneNumber":"4712345678"},"reference":"acme-shop-123-order123abc","returnUrl":"https://example.com/redirect?orderId=acme-shop-123-order123abc","userFlow":"WEB_REDIRECT","paymentDescription":"Order 123abc at Acme Shop","receipt":{"orderLines":[{"name":"Socks","id":"line-1","totalAmount":500,"totalAmountExcludingTax":400,"totalTaxAmount":100,"taxPercentage":25},{"name":"PAD","id":"line-2","totalAmount":500,"totalAmountExcludingTax":400,"totalTaxAmount":100,"taxPercentage":25}],"bottomLine":{"currency":"NOK","receiptNumber":"r-123abc"}}}"#;
    let pad = "x".repeat(1024 - (base.len() - 3));
    let body = base.replace("PAD", &pad);
    assert_eq!(body.len(), 1024);
    Bytes::from(body)
}
