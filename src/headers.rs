//! Names of the Vipps MobilePay HTTP headers.

use http::HeaderName;

pub use crate::context::{IDEMPOTENCY_KEY, MERCHANT_SERIAL_NUMBER};

/// `Ocp-Apim-Subscription-Key`: the subscription key (secret).
pub const OCP_APIM_SUBSCRIPTION_KEY: HeaderName =
    HeaderName::from_static("ocp-apim-subscription-key");
/// `client_id`, on the access token call.
pub const CLIENT_ID: HeaderName = HeaderName::from_static("client_id");
/// `X-Request-Id`: eCom v2's idempotency header.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `client_secret`, on the access token call (secret).
pub const CLIENT_SECRET: HeaderName = HeaderName::from_static("client_secret");
/// `Vipps-System-Name`.
pub const VIPPS_SYSTEM_NAME: HeaderName = HeaderName::from_static("vipps-system-name");
/// `Vipps-System-Version`.
pub const VIPPS_SYSTEM_VERSION: HeaderName = HeaderName::from_static("vipps-system-version");
/// `Vipps-System-Plugin-Name`.
pub const VIPPS_SYSTEM_PLUGIN_NAME: HeaderName =
    HeaderName::from_static("vipps-system-plugin-name");
/// `Vipps-System-Plugin-Version`.
pub const VIPPS_SYSTEM_PLUGIN_VERSION: HeaderName =
    HeaderName::from_static("vipps-system-plugin-version");

/// The refusal of a request whose header map is full: a header Vipps MobilePay
/// needs (`name`) cannot be added without passing `http::HeaderMap`'s size limit.
pub(crate) fn too_many_headers(headers: &http::HeaderMap, name: &str) -> crate::Diagnosis {
    crate::Diagnosis::new(crate::Cause::TooManyHeaders).with_evidence(format!(
        "the request has {} header names and {} values: `{name}` cannot be added to it",
        headers.keys_len(),
        headers.len()
    ))
}

/// Marks every value of an error response's headers sensitive before the
/// response is kept in a `VippsError`: a gateway, proxy or error page may echo a
/// credential under any name, so `Debug` shows none of them (the values stay
/// readable through `ErrorResponse::headers`).
pub(crate) fn mark_all_sensitive(headers: &mut http::HeaderMap) {
    for value in headers.values_mut() {
        value.set_sensitive(true);
    }
}

#[cfg(test)]
mod sensitive_tests {
    #[test]
    fn every_error_response_header_is_hidden_from_debug() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "x-echoed-key",
            "0123456789abcdef0123456789abcdef".parse().unwrap(),
        );
        headers.insert("content-type", "application/json".parse().unwrap());
        super::mark_all_sensitive(&mut headers);
        let shown = format!("{headers:?}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert_eq!(headers["content-type"], "application/json");
    }
}
