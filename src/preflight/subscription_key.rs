//! `Ocp-Apim-Subscription-Key` rules.
//!
//! The key is a secret: evidence names its shape, or its [`Fingerprint`], never
//! the key.

use super::Facts;
use super::headers::Known;
use crate::api::{Api, Credentials};
use crate::{Cause, Diagnosis, Fingerprint};

/// Calls that always need the key: every API of [`crate::api::APIS`] taking the
/// access token or the client credentials (ePayment, eCom, Recurring, Checkout,
/// Webhooks, Order Management), and the standard access token call
/// (`/accesstoken/get`; the partner token call `/miami/v1/token` needs none, nor do
/// the Login, Management and Report APIs when used with specialized
/// authentication).
fn requires_key(f: &Facts<'_>) -> bool {
    match f.api {
        api if matches!(
            api.credentials(),
            Credentials::AccessToken | Credentials::ClientCredentials
        ) =>
        {
            true
        }
        Api::AccessToken => f
            .uri
            .path()
            .trim_start_matches('/')
            .starts_with("accesstoken"),
        _ => false,
    }
}

/// No `Ocp-Apim-Subscription-Key` where it is required.
pub(super) fn missing(f: &Facts<'_>) -> Option<Diagnosis> {
    if !requires_key(f) || f.headers.has(Known::SUBSCRIPTION_KEY) {
        return None;
    }
    Some(
        Diagnosis::new(Cause::MissingSubscriptionKey).with_evidence(format!(
            "no `Ocp-Apim-Subscription-Key` header on a {} call",
            f.api
        )),
    )
}

/// The key is empty, padded, quoted, holds whitespace or control characters, or is
/// sent twice.
pub(super) fn malformed(f: &Facts<'_>) -> Option<Diagnosis> {
    let value = f.headers.first(Known::SUBSCRIPTION_KEY)?.as_bytes();
    let n = f.headers.number(Known::SUBSCRIPTION_KEY);
    // The common case in one pass: one key of letters and digits is well formed.
    if n == 1 && !value.is_empty() && value.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let evidence = if n > 1 {
        format!("{n} `Ocp-Apim-Subscription-Key` headers, expected 1")
    } else if value.iter().all(|b| b.is_ascii_whitespace()) {
        "the `Ocp-Apim-Subscription-Key` header is empty".to_owned()
    } else if value.first().is_some_and(|b| b.is_ascii_whitespace())
        || value.last().is_some_and(|b| b.is_ascii_whitespace())
    {
        "the subscription key has leading or trailing whitespace".to_owned()
    } else if value.iter().any(|b| matches!(b, b'"' | b'\'')) {
        "the subscription key is quoted or holds quotes".to_owned()
    } else if value.iter().any(|b| b.is_ascii_whitespace()) {
        "the subscription key holds whitespace".to_owned()
    } else if !value.iter().all(|b| b.is_ascii_graphic()) {
        "the subscription key holds control or non-ASCII characters".to_owned()
    } else {
        return None;
    };
    Some(Diagnosis::new(Cause::MalformedSubscriptionKey).with_evidence(evidence))
}

/// The token is known to have been fetched with another subscription key.
pub(super) fn mismatch(f: &Facts<'_>) -> Option<Diagnosis> {
    let minted = f.minted.as_ref()?;
    let value = f.headers.first(Known::SUBSCRIPTION_KEY)?;
    let sent = match f.sub_key_sets.first() {
        // The keyring found the key by its bytes: its fingerprint is worked out.
        Some(keys) => keys.subscription_key_fingerprint(),
        None => Fingerprint::of(value.as_bytes()),
    };
    if sent == minted.subscription_key {
        return None;
    }
    Some(
        Diagnosis::new(Cause::SubscriptionKeyMismatch).with_evidence(format!(
            "the token was fetched with subscription key {}, the request carries {sent}",
            minted.subscription_key
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::{Cause, Environment};

    fn without_key() -> http::request::Builder {
        http::Request::get(format!(
            "{TEST}/epayment/v1/payments/acme-shop-123-order123abc"
        ))
        .header("Authorization", bearer(valid_jwt()))
        .header("Merchant-Serial-Number", MSN)
    }

    #[test]
    fn missing() {
        assert_refused(without_key(), Cause::MissingSubscriptionKey);
        let token_call = http::Request::post(format!("{TEST}/accesstoken/get"))
            .header("client_id", "id")
            .header("client_secret", "secret");
        assert_refused(token_call, Cause::MissingSubscriptionKey);
        // The partner token call needs none.
        let miami = http::Request::post(format!("{TEST}/miami/v1/token"))
            .header("Authorization", "Basic dXNlcjpwYXNz")
            .header("Vipps-System-Name", "acme")
            .header("Vipps-System-Version", "1");
        assert_passes(miami);
    }

    #[test]
    fn malformed() {
        for (value, evidence) in [
            ("", "empty"),
            ("   ", "empty"),
            (" 0123456789abcdef", "leading or trailing"),
            ("0123456789abcdef\t", "leading or trailing"),
            ("\"0123456789abcdef\"", "quoted"),
            ("0123456789 abcdef", "holds whitespace"),
        ] {
            let b = without_key().header(
                "Ocp-Apim-Subscription-Key",
                http::HeaderValue::from_str(value).unwrap(),
            );
            let err = refused(b);
            assert_eq!(err.cause(), Cause::MalformedSubscriptionKey, "{value:?}");
            assert!(
                err.diagnosis().evidence()[0].contains(evidence),
                "{value:?}"
            );
            assert_no_secret(&err, value);
        }
        let b = without_key()
            .header("Ocp-Apim-Subscription-Key", SUB_KEY)
            .header("Ocp-Apim-Subscription-Key", SUB_KEY);
        assert_refused(b, Cause::MalformedSubscriptionKey);
        let b = without_key().header(
            "Ocp-Apim-Subscription-Key",
            http::HeaderValue::from_bytes(b"abc\xffdef").unwrap(),
        );
        assert_refused(b, Cause::MalformedSubscriptionKey);
    }

    #[test]
    fn near_misses() {
        // Any printable key passes without a keyring: dashes, mixed case, short.
        for key in ["abc", "A-b_C.d", SUB_KEY] {
            let b = http::Request::get(format!(
                "{TEST}/epayment/v1/payments/acme-shop-123-order123abc"
            ))
            .header("Authorization", bearer(valid_jwt()))
            .header("Ocp-Apim-Subscription-Key", key)
            .header("Merchant-Serial-Number", MSN)
            .header("Vipps-System-Name", "acme")
            .header("Vipps-System-Version", "1");
            assert_passes(b);
        }
    }

    #[test]
    fn mismatch() {
        let token = valid_jwt();
        let layer = keyed(vec![(
            token.clone(),
            minted(Environment::Test, SUB_KEY, Some(MSN), false),
        )]);
        let ok = base(http::Request::get(format!(
            "{TEST}/epayment/v1/payments/abcdefgh-1"
        )))
        .header("Authorization", bearer(token.clone()));
        run(&layer, ok, "").unwrap();
        let other = "99999999999999999999999999999999";
        let b = http::Request::get(format!("{TEST}/epayment/v1/payments/abcdefgh-1"))
            .header("Authorization", bearer(token.clone()))
            .header("Ocp-Apim-Subscription-Key", other)
            .header("Merchant-Serial-Number", MSN)
            .header("Vipps-System-Name", "acme")
            .header("Vipps-System-Version", "1");
        let err = run(&layer, b, "").unwrap_err();
        assert_eq!(err.cause(), Cause::SubscriptionKeyMismatch);
        let ev = &err.diagnosis().evidence()[0];
        assert!(ev.contains("sha256:"), "{ev}");
        assert_no_secret(&err, other);
        assert_no_secret(&err, SUB_KEY);
        assert_no_secret(&err, &token);
    }
}
