//! `Idempotency-Key` rules.

use super::headers::Known;
use http::Method;

use super::Facts;
use crate::context::Api;
use crate::{Cause, Diagnosis};

/// The longest `Idempotency-Key` the ePayment API accepts.
pub(crate) const MAX_IDEMPOTENCY_KEY: usize = 50;

/// An ePayment create, capture, refund or cancel (the `POST`s the reference names)
/// without an `Idempotency-Key`, with an empty one, one longer than 50
/// characters, or two. Other ePayment calls are not checked: the reference
/// documents the requirement for these only (the test-only force-approve is left
/// alone rather than risk a false refusal). Recurring's key is checked by its own
/// rule ([`super::recurring::idempotency_key`]); eCom reads no `Idempotency-Key`.
pub(super) fn idempotency_key(f: &Facts<'_>) -> Option<Diagnosis> {
    if f.api != Api::EPayment || f.method != Method::POST {
        return None;
    }
    let what = match f.operation {
        Some(op @ ("create_payment" | "capture" | "refund" | "cancel")) => op,
        _ => return None,
    };
    let evidence = match f.headers.first(Known::IDEMPOTENCY_KEY) {
        None => format!("no `Idempotency-Key` header on the ePayment {what} call"),
        Some(_) if f.headers.number(Known::IDEMPOTENCY_KEY) > 1 => {
            "2 or more `Idempotency-Key` headers, expected 1".to_owned()
        }
        Some(v) if v.as_bytes().iter().all(|b| b.is_ascii_whitespace()) => {
            "the `Idempotency-Key` header is empty".to_owned()
        }
        Some(v) if v.len() > MAX_IDEMPOTENCY_KEY => format!(
            "the `Idempotency-Key` is {} characters long, at most {MAX_IDEMPOTENCY_KEY} are allowed",
            v.len()
        ),
        Some(_) => return None,
    };
    Some(Diagnosis::new(Cause::MissingIdempotencyKey).with_evidence(evidence))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::Cause;

    fn capture() -> http::request::Builder {
        base(http::Request::post(format!(
            "{TEST}/epayment/v1/payments/acme-shop-123-order123abc/capture"
        )))
        .header("Authorization", bearer(valid_jwt()))
    }

    const BODY: &str = r#"{"modificationAmount":{"value":1000,"currency":"NOK"}}"#;

    #[test]
    fn refuses_missing_empty_long() {
        let layer = super::super::PreflightLayer::new();
        for key in [None, Some(""), Some(&"k".repeat(51)[..])] {
            let mut b = capture();
            if let Some(k) = key {
                b = b.header("Idempotency-Key", k);
            }
            let err = run(&layer, b, BODY).unwrap_err();
            assert_eq!(err.cause(), Cause::MissingIdempotencyKey, "{key:?}");
        }
        let err = run(
            &layer,
            capture()
                .header("Idempotency-Key", "a")
                .header("Idempotency-Key", "b"),
            BODY,
        )
        .unwrap_err();
        assert_eq!(err.cause(), Cause::MissingIdempotencyKey);
    }

    #[test]
    fn near_misses() {
        // 50 characters exactly; a GET needs none; eCom is not checked.
        assert_passes_body(
            capture().header("Idempotency-Key", "k".repeat(50)),
            BODY,
            &[],
        );
        assert_passes(epayment_get().header("Authorization", bearer(valid_jwt())));
        // The test-only force approve is not one of the four.
        let approve = base(http::Request::post(format!(
            "{TEST}/epayment/v1/test/payments/acme-shop-123-order123abc/approve"
        )))
        .header("Authorization", bearer(valid_jwt()));
        assert_passes_body(approve, "{}", &[]);
        let ecom = base(http::Request::post(format!(
            "{TEST}/ecomm/v2/payments/order-1/capture"
        )))
        .header("Authorization", bearer(valid_jwt()))
        .header("X-Request-Id", "capture-1");
        assert_passes_body(ecom, r#"{"transaction":{"amount":0}}"#, &[]);
    }
}
