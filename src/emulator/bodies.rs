//! The error responses of the real API, byte for byte where the reference corpus
//! has them (`{"key": value, …}` with `", "` and `": "`, non-ASCII escaped).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

pub(crate) type Body = Full<Bytes>;

pub(crate) const JSON: &str = "application/json";
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";
pub(crate) const TEXT: &str = "text/plain";
pub(crate) const HTML: &str = "text/html";

pub(crate) const MISSING_SUBSCRIPTION_KEY: &str = "{\"statusCode\": 401, \"message\": \"Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.\"}";
pub(crate) const INVALID_SUBSCRIPTION_KEY: &str = "{\"statusCode\": 401, \"message\": \"Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.\"}";
pub(crate) const SUBSCRIPTION_NOT_FOUND: &str =
    "{\"statusCode\": 401, \"message\": \"Subscription not found.\"}";
pub(crate) const INVALID_TOKEN: &str = "Something went wrong, please try again later";
pub(crate) const NOT_ALLOWED_FOR_ECOMMERCE: &str = "Merchant Not Allowed for Ecommerce Payment";
pub(crate) const INVALID_CLIENT: &str = "{\"error\": \"invalid_client\", \"error_description\": \"Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method).\"}";
pub(crate) const BAD_GATEWAY: &str = "<html><body><h1>502 Bad Gateway</h1></body></html>";
pub(crate) const SERVICE_UNAVAILABLE: &str =
    "<html><body><h1>503 Service Unavailable</h1></body></html>";
pub(crate) const GATEWAY_TIMEOUT: &str = "<html><body><h1>504 Gateway Time-out</h1></body></html>";
pub(crate) const NOT_FOUND: &str = "{\"statusCode\": 404, \"message\": \"Resource not found\"}";
pub(crate) const TOO_LARGE: &str =
    "{\"statusCode\": 413, \"message\": \"The request body is too large.\"}";

/// A response with a status, a content type and a body.
pub(crate) fn respond(
    status: u16,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

/// The gateway's 429 with `Retry-After`.
pub(crate) fn rate_limited(retry_after_secs: u64) -> Response<Body> {
    let body = format!(
        "{{\"statusCode\": 429, \"message\": \"Rate limit is exceeded. Try again in {retry_after_secs} seconds.\"}}"
    );
    let mut res = respond(429, JSON, body);
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    res
}

/// Writes `s` as a JSON string the way the corpus does: non-ASCII as `\uXXXX`.
pub(crate) fn json_string(out: &mut String, s: &str) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A W3C trace id like the API's: `00-<32 hex>-<16 hex>-01`.
pub(crate) fn trace_id() -> String {
    format!(
        "00-{:016x}{:016x}-{:016x}-01",
        fastrand::u64(..),
        fastrand::u64(..),
        fastrand::u64(..)
    )
}

/// Plain problem details, `{type, title, status, detail, instance}`, with the
/// content type the API's specification gives (the Report API
/// `application/problem+json`, the Management API `application/json`).
pub(crate) fn plain_problem(
    status: u16,
    title: &str,
    detail: &str,
    instance: &str,
    content_type: &'static str,
) -> Response<Body> {
    let body = serde_json::json!({
        "type": format!("https://httpstatuses.io/{status}"),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    });
    respond(
        status,
        content_type,
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

/// An RFC 7807 problem details response in the corpus' format.
pub(crate) fn problem(
    status: u16,
    title: &str,
    detail: &str,
    instance: &str,
    extra: &[(&str, &str)],
) -> Response<Body> {
    let mut out = String::with_capacity(384);
    out.push_str("{\"type\": ");
    json_string(&mut out, &format!("https://httpstatuses.io/{status}"));
    out.push_str(", \"title\": ");
    json_string(&mut out, title);
    out.push_str(&format!(", \"status\": {status}, \"detail\": "));
    json_string(&mut out, detail);
    out.push_str(", \"instance\": ");
    json_string(&mut out, instance);
    out.push_str(", \"traceId\": ");
    json_string(&mut out, &trace_id());
    if !extra.is_empty() {
        out.push_str(", \"extraDetails\": [");
        for (i, (name, reason)) in extra.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str("{\"name\": ");
            json_string(&mut out, name);
            out.push_str(", \"reason\": ");
            json_string(&mut out, reason);
            out.push('}');
        }
        out.push(']');
    }
    out.push('}');
    respond(status, PROBLEM_JSON, out)
}

/// A domain error: problem details with `extraDetails: [{"name": "ErrorCode", …}]`.
pub(crate) fn domain(
    status: u16,
    code: u32,
    title: &str,
    detail: &str,
    instance: &str,
) -> Response<Body> {
    problem(
        status,
        title,
        detail,
        instance,
        &[("ErrorCode", &code.to_string())],
    )
}

/// A field validation error: `title` "Bad Request", the field in `extraDetails`.
pub(crate) fn invalid_field(instance: &str, name: &str, reason: &str) -> Response<Body> {
    problem(
        400,
        "Bad Request",
        "See extraDetails for further details",
        instance,
        &[(name, reason)],
    )
}

pub(crate) fn invalid_amount(instance: &str) -> Response<Body> {
    domain(
        400,
        4040,
        "Invalid amount",
        "The amount is invalid. Amounts must be integers, no decimals. They are specified in minor units, like \u{f8}re or cent.",
        instance,
    )
}

pub(crate) fn amount_too_small(instance: &str) -> Response<Body> {
    domain(
        400,
        6010,
        "Amount too small",
        "The amount is too small. Amounts are specified in minor units, like \u{f8}re or cent.",
        instance,
    )
}

pub(crate) fn invalid_currency(instance: &str) -> Response<Body> {
    domain(
        400,
        5040,
        "Invalid currency for merchant",
        "The currency is not valid for this sales unit.",
        instance,
    )
}

pub(crate) fn invalid_url(instance: &str, url: &str) -> Response<Body> {
    domain(
        400,
        4090,
        "Invalid URL",
        &format!("The parameter {url} is invalid."),
        instance,
    )
}

pub(crate) fn invalid_phone(instance: &str) -> Response<Body> {
    domain(
        400,
        4070,
        "Invalid phone number",
        "The phone number is invalid. Phone numbers must be in MSISDN format: Country code and subscriber number, but no prefix.",
        instance,
    )
}

pub(crate) fn customer_not_found(instance: &str) -> Response<Body> {
    domain(
        400,
        7010,
        "Customer not found",
        "The phone number does not belong to a Vipps or MobilePay user, or the user cannot pay businesses. We cannot give more details.",
        instance,
    )
}

pub(crate) fn test_user_not_ready(instance: &str) -> Response<Body> {
    domain(
        400,
        10020,
        "Not allowed",
        "The user must have the Vipps MobilePay test app installed, must have logged in to it, and must be at least 15 years old.",
        instance,
    )
}

pub(crate) fn invalid_reference(instance: &str) -> Response<Body> {
    invalid_field(
        instance,
        "reference",
        "The field Reference must match the regular expression '^[a-zA-Z0-9-]{8,64}$'.",
    )
}

pub(crate) fn reference_exists(instance: &str, reference: &str) -> Response<Body> {
    domain(
        409,
        4150,
        "Reference already exists",
        &format!("A payment with the reference {reference} already exists."),
        instance,
    )
}

pub(crate) fn idempotency_conflict(instance: &str, key: &str) -> Response<Body> {
    domain(
        409,
        4020,
        "Idempotency error",
        &format!("Idempotency-Key {key} already exists."),
        instance,
    )
}

pub(crate) fn reference_not_found(instance: &str, reference: &str, msn: &str) -> Response<Body> {
    domain(
        404,
        5090,
        "Reference not found",
        &format!("The reference {reference} does not exist for MSN {msn}"),
        instance,
    )
}

pub(crate) fn capture_too_high(instance: &str) -> Response<Body> {
    domain(
        400,
        6090,
        "Capture amount too high",
        "The total capture amount exceeds the reserved amount. Cannot capture a higher amount than the amount the user has accepted. Check the payment details.",
        instance,
    )
}

pub(crate) fn not_enough_refundable(instance: &str) -> Response<Body> {
    domain(
        400,
        6150,
        "Not enough refundable",
        "Cannot refund more than the available amount. Check the payment event log.",
        instance,
    )
}

pub(crate) fn capture_before_reservation(instance: &str) -> Response<Body> {
    domain(
        400,
        6080,
        "Cannot capture before reservation",
        "The amount you tried to capture is not reserved. The user must accept the payment before capture can be done.",
        instance,
    )
}

pub(crate) fn capture_cancelled(instance: &str) -> Response<Body> {
    domain(
        400,
        6070,
        "Cannot capture a cancelled payment",
        "The payment is cancelled and cannot be captured.",
        instance,
    )
}

pub(crate) fn refund_before_reservation(instance: &str) -> Response<Body> {
    domain(
        400,
        6020,
        "Attempted refund before reservation",
        "The payment is not reserved, so nothing can be refunded.",
        instance,
    )
}

pub(crate) fn cancel_captured(instance: &str) -> Response<Body> {
    domain(
        400,
        6040,
        "Cannot cancel a captured payment",
        "The payment has been captured and can no longer be cancelled. Refund it instead.",
        instance,
    )
}

pub(crate) fn approve_failed(instance: &str) -> Response<Body> {
    domain(
        400,
        10010,
        "Approve failed",
        "Only a payment in the CREATED state can be approved.",
        instance,
    )
}

pub(crate) fn internal_error(instance: &str) -> Response<Body> {
    domain(
        500,
        3010,
        "Internal error",
        "Internal error. This may be caused by an incorrect API request. Please check the request. See the status page.",
        instance,
    )
}

pub(crate) fn forbidden(instance: &str, detail: &str) -> Response<Body> {
    problem(403, "Forbidden", detail, instance, &[])
}

pub(crate) const PARTNER_MSN_REQUIRED: &str =
    "The Merchant-Serial-Number header is required when using partner keys.";
pub(crate) const PARTNER_MSN_NOT_CONNECTED: &str =
    "The sales unit (MSN) is not connected to this partner.";

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn corpus(cause: &str) -> serde_json::Value {
        corpus_with(cause, 0)
    }

    fn corpus_with(cause: &str, status: u16) -> serde_json::Value {
        let text = include_str!("../../tests/data/error-corpus.jsonl");
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["cause"] == cause && v["api"] != "ecom" && (status == 0 || v["status"] == status) {
                return v;
            }
        }
        panic!("{cause} not in corpus")
    }

    async fn text(res: Response<Body>) -> String {
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// The corpus body with its trace id replaced by ours.
    fn same_but_trace(ours: &str, cause: &str) {
        let expected = corpus(cause)["body"].as_str().unwrap().to_owned();
        let trace_at = ours.find("\"traceId\": \"").unwrap() + 12;
        let ours_trace = &ours[trace_at..trace_at + 55];
        let exp_at = expected.find("\"traceId\": \"").unwrap() + 12;
        let expected = format!(
            "{}{}{}",
            &expected[..exp_at],
            ours_trace,
            &expected[exp_at + 55..]
        );
        assert_eq!(ours, expected, "{cause}");
    }

    #[tokio::test]
    async fn the_diagnose_parser_reads_every_body() {
        use crate::diagnose::body::ErrorBody;
        for text in [
            MISSING_SUBSCRIPTION_KEY,
            INVALID_SUBSCRIPTION_KEY,
            SUBSCRIPTION_NOT_FOUND,
            NOT_FOUND,
            TOO_LARGE,
        ] {
            assert!(
                matches!(ErrorBody::parse(text.as_bytes()), ErrorBody::Gateway(_)),
                "{text}"
            );
        }
        assert!(matches!(
            ErrorBody::parse(INVALID_CLIENT.as_bytes()),
            ErrorBody::OAuth(_)
        ));
        assert!(matches!(
            ErrorBody::parse(INVALID_TOKEN.as_bytes()),
            ErrorBody::Text(_)
        ));
        assert!(matches!(
            ErrorBody::parse(BAD_GATEWAY.as_bytes()),
            ErrorBody::Html(_)
        ));
        let body = text(forbidden("/v1/payments", PARTNER_MSN_REQUIRED)).await;
        let ErrorBody::Problem(p) = ErrorBody::parse(body.as_bytes()) else {
            panic!("{body}")
        };
        assert_eq!(p.detail.as_deref(), Some(PARTNER_MSN_REQUIRED));
        let body = text(test_user_not_ready("/v1/payments")).await;
        let ErrorBody::Problem(p) = ErrorBody::parse(body.as_bytes()) else {
            panic!("{body}")
        };
        assert_eq!(p.error_code(), Some(10020));
        let body = text(invalid_amount("/v1/payments")).await;
        let ErrorBody::Problem(p) = ErrorBody::parse(body.as_bytes()) else {
            panic!("{body}")
        };
        assert_eq!(p.error_code(), Some(4040));
        assert!(p.detail.unwrap().contains("\u{f8}re"));
    }

    #[tokio::test]
    async fn bodies_match_the_corpus() {
        assert_eq!(
            MISSING_SUBSCRIPTION_KEY,
            corpus("vipps::missing_subscription_key")["body"]
        );
        assert_eq!(
            INVALID_SUBSCRIPTION_KEY,
            corpus("vipps::invalid_subscription_key")["body"]
        );
        assert_eq!(
            SUBSCRIPTION_NOT_FOUND,
            corpus("vipps::subscription_not_found")["body"]
        );
        assert_eq!(INVALID_TOKEN, corpus("vipps::invalid_access_token")["body"]);
        assert_eq!(
            NOT_ALLOWED_FOR_ECOMMERCE,
            corpus("vipps::merchant_not_allowed_for_ecommerce")["body"]
        );
        assert_eq!(
            INVALID_CLIENT,
            corpus("vipps::invalid_client_credentials")["body"]
        );
        assert_eq!(
            text(rate_limited(42)).await,
            corpus("vipps::rate_limited")["body"]
        );
        let p = "/v1/payments";
        same_but_trace(&text(invalid_amount(p)).await, "vipps::invalid_amount");
        same_but_trace(&text(amount_too_small(p)).await, "vipps::amount_too_small");
        same_but_trace(&text(invalid_currency(p)).await, "vipps::invalid_currency");
        same_but_trace(
            &text(invalid_url(p, "htt://example.com")).await,
            "vipps::invalid_url",
        );
        same_but_trace(&text(invalid_phone(p)).await, "vipps::invalid_phone_number");
        same_but_trace(&text(customer_not_found(p)).await, "vipps::user_unknown");
        same_but_trace(&text(invalid_reference(p)).await, "vipps::invalid_field");
        same_but_trace(
            &text(idempotency_conflict(
                p,
                "49ca711a-acee-4d01-993b-9487112e1def",
            ))
            .await,
            "vipps::idempotency_conflict",
        );
        same_but_trace(&text(internal_error(p)).await, "vipps::server_error");
        let r = "acme-shop-123-order123abc";
        same_but_trace(
            &text(reference_not_found(&format!("{p}/{r}"), r, "123456")).await,
            "vipps::reference_not_found",
        );
        same_but_trace(
            &text(capture_too_high(&format!("{p}/{r}/capture"))).await,
            "vipps::capture_exceeds_reserved",
        );
        same_but_trace(
            &text(not_enough_refundable(&format!("{p}/{r}/refund"))).await,
            "vipps::refund_exceeds_captured",
        );
        same_but_trace(
            &text(capture_before_reservation(
                "/v1/payments/577531734343670112/capture",
            ))
            .await,
            "vipps::capture_before_reservation",
        );
        assert_eq!(BAD_GATEWAY, corpus_with("vipps::server_error", 502)["body"]);
    }
}
