//! What several benches share.
#![allow(dead_code)] // each bench uses its part

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use tower::ServiceBuilder;
use tower_http::auth::AddAuthorization;
use tower_http::sensitive_headers::SetSensitiveRequestHeaders;
use tower_http::set_header::SetRequestHeader;

/// tower-http's static header stack setting the six headers the preset sets
/// ("trio6"): `SetSensitiveRequestHeaders` + `AddAuthorization` + five
/// `SetRequestHeader`s.
pub type Trio6<S> = SetSensitiveRequestHeaders<
    AddAuthorization<
        SetRequestHeader<
            SetRequestHeader<
                SetRequestHeader<
                    SetRequestHeader<SetRequestHeader<S, HeaderValue>, HeaderValue>,
                    HeaderValue,
                >,
                HeaderValue,
            >,
            HeaderValue,
        >,
    >,
>;

/// [`Trio6`] over `inner`, with one fixed token and subscription key.
pub fn trio6<S>(token: &str, sub_key: &'static str, inner: S) -> Trio6<S> {
    let set = |name: &'static str, value: &'static str| {
        tower_http::set_header::SetRequestHeaderLayer::overriding(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        )
    };
    ServiceBuilder::new()
        .layer(
            tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer::new([
                http::header::AUTHORIZATION,
                HeaderName::from_static("ocp-apim-subscription-key"),
            ]),
        )
        .layer(tower_http::auth::AddAuthorizationLayer::bearer(token))
        .layer(set("ocp-apim-subscription-key", sub_key))
        .layer(set("vipps-system-name", "acme-shop"))
        .layer(set("vipps-system-version", "1.2.3"))
        .layer(set("vipps-system-plugin-name", "tower-vipps"))
        .layer(set("vipps-system-plugin-version", "0.1.0"))
        .service(inner)
}

/// An ePayment create payment body of exactly 1 KiB: a valid create whose
/// `receipt` order lines (not read by any check) pad it.
pub fn body_1k() -> Bytes {
    let base = r#"{"amount":{"currency":"NOK","value":1000},"paymentMethod":{"type":"WALLET"},"customer":{"phoneNumber":"4712345678"},"reference":"acme-shop-123-order123abc","returnUrl":"https://example.com/redirect?orderId=acme-shop-123-order123abc","userFlow":"WEB_REDIRECT","paymentDescription":"Order 123abc at Acme Shop","receipt":{"orderLines":[{"name":"Socks","id":"line-1","totalAmount":500,"totalAmountExcludingTax":400,"totalTaxAmount":100,"taxPercentage":25},{"name":"PAD","id":"line-2","totalAmount":500,"totalAmountExcludingTax":400,"totalTaxAmount":100,"taxPercentage":25}],"bottomLine":{"currency":"NOK","receiptNumber":"r-123abc"}}}"#;
    let pad = "x".repeat(1024 - (base.len() - 3));
    let body = base.replace("PAD", &pad);
    assert_eq!(body.len(), 1024);
    Bytes::from(body)
}
