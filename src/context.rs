//! [`RequestContext`]: what a request was, kept in every [`VippsError`](crate::VippsError).

use std::fmt;

use http::{Method, Request};

pub use crate::api::Api;
use crate::{Environment, Hosts, Msn};

/// The operation of a request, from its method and path, when it is a well-known one.
pub fn operation(method: &Method, path: &str) -> Option<&'static str> {
    operation_in(Api::from_path(path), method, path)
}

/// The path's segments, without the leading and trailing `/`: at most 8 (`None`
/// beyond, which no well-known path has). A byte loop: paths are short, and
/// `str::split` sets up a searcher per segment.
pub(crate) fn segments(path: &str) -> Option<([&str; 8], usize)> {
    let path = path.trim_start_matches('/').trim_end_matches('/');
    let mut buf = [""; 8];
    let mut len = 0;
    let mut start = 0;
    // One pass over the bytes; `/` is ASCII, so every cut is a character boundary.
    for (i, byte) in path.bytes().enumerate() {
        if byte == b'/' {
            *buf.get_mut(len)? = path.get(start..i)?;
            len += 1;
            start = i + 1;
        }
    }
    *buf.get_mut(len)? = path.get(start..)?;
    Some((buf, len + 1))
}

/// [`operation`] of a path whose API is known.
pub(crate) fn operation_in(api: Api, method: &Method, path: &str) -> Option<&'static str> {
    let (buf, len) = segments(path)?;
    operation_of(api, method, buf.get(..len)?)
}

/// [`operation`] of a path's [`segments`], whose API is known.
pub(crate) fn operation_of(api: Api, method: &Method, segments: &[&str]) -> Option<&'static str> {
    let m = method.as_str();
    Some(match (api, m, segments) {
        (Api::AccessToken, "POST", _) => "get_access_token",
        (Api::EPayment, "POST", [_, _, "payments"]) => "create_payment",
        (Api::EPayment, "GET", [_, _, "payments", _]) => "get_payment",
        (Api::EPayment, "GET", [_, _, "payments", _, "events"]) => "get_payment_events",
        (Api::EPayment, "POST", [_, _, "payments", _, "capture"]) => "capture",
        (Api::EPayment, "POST", [_, _, "payments", _, "refund"]) => "refund",
        (Api::EPayment, "POST", [_, _, "payments", _, "cancel"]) => "cancel",
        (Api::EPayment, "POST", [_, _, "test", "payments", _, "approve"]) => "force_approve",
        (Api::ECom, "POST", [_, _, "payments"]) => "initiate",
        (Api::ECom, "POST", [_, _, "payments", _, "capture"]) => "capture",
        (Api::ECom, "POST", [_, _, "payments", _, "refund"]) => "refund",
        (Api::ECom, "PUT", [_, _, "payments", _, "cancel"]) => "cancel",
        (Api::ECom, "GET", [_, _, "payments", _, "details"]) => "get_payment_details",
        (Api::Recurring, "POST", [_, _, "agreements"]) => "draft_agreement",
        (Api::Recurring, "GET", [_, _, "agreements", _]) => "get_agreement",
        (Api::Recurring, "PATCH", [_, _, "agreements", _]) => "update_agreement",
        (Api::Recurring, "POST", [_, _, "agreements", _, "charges"]) => "create_charge",
        (Api::Recurring, "POST", [_, _, "agreements", _, "charges", _, "capture"]) => {
            "capture_charge"
        }
        (Api::Recurring, "POST", [_, _, "agreements", _, "charges", _, "refund"]) => {
            "refund_charge"
        }
        (Api::Checkout, "POST", [_, _, "session"]) => "create_session",
        (Api::Checkout, "GET", [_, _, "session", _]) => "get_session",
        (Api::Webhooks, "POST", ["webhooks", _, "webhooks"]) => "register_webhook",
        _ => return None,
    })
}

/// What a request was: its API and operation, method and path, host and
/// environment, MSN and idempotency key. Kept in every [`VippsError`](crate::VippsError).
///
/// Holds no secret: no header value other than the MSN and the idempotency key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// The API.
    pub api: Api,
    /// The well-known operation, if any.
    pub operation: Option<&'static str>,
    /// The method.
    pub method: Option<Method>,
    /// The path (no query), cut at 256 bytes.
    pub path: Option<String>,
    /// The host.
    pub host: Option<String>,
    /// The environment of the host.
    pub environment: Option<Environment>,
    /// The MSN of the `Merchant-Serial-Number` header or the `Msn` extension.
    pub msn: Option<Msn>,
    /// The idempotency header the request's API reads, if the request carries it
    /// (cut at 128 bytes): `Idempotency-Key`, or eCom v2's `X-Request-Id` (see
    /// [`ApiSpec::idempotency`](crate::api::ApiSpec)); for an API that reads none,
    /// the `Idempotency-Key` as sent.
    pub idempotency_key: Option<String>,
}

/// The header carrying the merchant serial number.
pub const MERCHANT_SERIAL_NUMBER: http::HeaderName =
    http::HeaderName::from_static("merchant-serial-number");
/// The idempotency key header.
pub const IDEMPOTENCY_KEY: http::HeaderName = http::HeaderName::from_static("idempotency-key");

impl RequestContext {
    /// The context of a request, with environments from `hosts`.
    pub fn of<B>(request: &Request<B>, hosts: &Hosts) -> RequestContext {
        ContextSeed::of(request, hosts).into_context()
    }

    /// `true` when nothing is known.
    pub fn is_empty(&self) -> bool {
        *self == RequestContext::default()
    }

    /// Fills the fields this context lacks from `other`.
    pub fn fill_from(&mut self, other: &RequestContext) {
        if self.api == Api::Other {
            self.api = other.api;
        }
        self.operation = self.operation.or(other.operation);
        if self.method.is_none() {
            self.method.clone_from(&other.method);
        }
        if self.path.is_none() {
            self.path.clone_from(&other.path);
        }
        if self.host.is_none() {
            self.host.clone_from(&other.host);
        }
        self.environment = self.environment.or(other.environment);
        self.msn = self.msn.or(other.msn);
        if self.idempotency_key.is_none() {
            self.idempotency_key.clone_from(&other.idempotency_key);
        }
    }
}

/// What a layer keeps of a request to build its [`RequestContext`] only if an error
/// comes back: no string is copied on the way down (the URI and header values are
/// reference-counted).
#[derive(Clone, Debug)]
pub(crate) struct ContextSeed {
    method: Method,
    uri: http::Uri,
    environment: Option<Environment>,
    msn: Option<Msn>,
    idempotency_key: Option<http::HeaderValue>,
}

impl ContextSeed {
    /// The seed of a request, with environments from `hosts`.
    pub(crate) fn of<B>(request: &Request<B>, hosts: &Hosts) -> ContextSeed {
        // One pass comparing names (a request has few headers) rather than two
        // hashed lookups; the first value of each, as `HeaderMap::get` gives it.
        let (mut msn, mut key, mut request_id) = (None, None, None);
        for (name, value) in request.headers() {
            let name = name.as_str();
            if msn.is_none() && name == MERCHANT_SERIAL_NUMBER.as_str() {
                msn = Some(value);
            } else if key.is_none() && name == IDEMPOTENCY_KEY.as_str() {
                key = Some(value);
            } else if request_id.is_none() && name == crate::headers::X_REQUEST_ID.as_str() {
                request_id = Some(value);
            }
        }
        ContextSeed {
            method: request.method().clone(),
            uri: request.uri().clone(),
            environment: hosts.environment_of(request.uri()),
            msn: msn
                .and_then(|v| Msn::from_header(v).ok())
                .or_else(|| request.extensions().get::<Msn>().copied()),
            idempotency_key: idempotency_value(request.uri().path(), key, request_id).cloned(),
        }
    }

    /// The context.
    pub(crate) fn into_context(self) -> RequestContext {
        let path = self.uri.path();
        RequestContext {
            api: Api::from_path(path),
            operation: operation(&self.method, path),
            path: Some(cut(path, 256)),
            host: self.uri.host().map(|h| cut(h, 256)),
            method: Some(self.method),
            environment: self.environment,
            msn: self.msn,
            idempotency_key: self
                .idempotency_key
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .map(|v| cut(v, 128)),
        }
    }
}

/// Of a request's `Idempotency-Key` and `X-Request-Id` (their first values), the
/// one its API reads ([`ApiSpec::idempotency`](crate::api::ApiSpec)): eCom v2's
/// `X-Request-Id`, else the `Idempotency-Key` (for an API that reads none, as
/// sent). The path is looked at only when the request carries either.
pub(crate) fn idempotency_value<'a>(
    path: &str,
    key: Option<&'a http::HeaderValue>,
    request_id: Option<&'a http::HeaderValue>,
) -> Option<&'a http::HeaderValue> {
    if key.is_none() && request_id.is_none() {
        return None;
    }
    match crate::api::ApiSpec::of_path(path).idempotency {
        crate::api::IdempotencyHeader::RequestId => request_id,
        _ => key,
    }
}

fn cut(s: &str, max: usize) -> String {
    prefix(s, max).to_owned()
}

/// `s`, cut at a character boundary at most `max` bytes in.
pub(crate) fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl fmt::Display for RequestContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        match (self.api, self.operation) {
            (Api::Other, None) => {}
            (api, Some(op)) => parts.push(format!("{api} {op}")),
            (api, None) => parts.push(api.to_string()),
        }
        if let (Some(m), Some(p)) = (&self.method, &self.path) {
            parts.push(format!("{m} {p}"));
        }
        if let Some(msn) = self.msn {
            parts.push(format!("MSN {msn}"));
        }
        match (self.environment, &self.host) {
            (Some(env), _) => parts.push(format!("{env} environment")),
            (None, Some(host)) => parts.push(format!("host {host}")),
            _ => {}
        }
        if let Some(key) = &self.idempotency_key {
            parts.push(format!("Idempotency-Key {key}"));
        }
        f.write_str(&parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idempotency_key_is_the_header_the_api_reads() {
        let req = |path: &str| {
            http::Request::post(format!("https://api.vipps.no{path}"))
                .header("Idempotency-Key", "idem-1")
                .header("X-Request-Id", "req-1")
                .body(())
                .unwrap()
        };
        let key = |path: &str| RequestContext::of(&req(path), &Hosts::default()).idempotency_key;
        assert_eq!(
            key("/ecomm/v2/payments/o-1/capture").as_deref(),
            Some("req-1")
        );
        assert_eq!(
            key("/epayment/v1/payments/r-1/capture").as_deref(),
            Some("idem-1")
        );
        // An API that reads none: what was sent.
        assert_eq!(key("/webhooks/v1/webhooks").as_deref(), Some("idem-1"));
        let plain = http::Request::get("https://api.vipps.no/ecomm/v2/payments/o-1/details")
            .header("Idempotency-Key", "idem-1")
            .body(())
            .unwrap();
        assert_eq!(
            RequestContext::of(&plain, &Hosts::default()).idempotency_key,
            None
        );
    }

    #[test]
    fn segments_are_those_of_split() {
        for path in [
            "",
            "/",
            "//",
            "/epayment/v1/payments/ref-1234/capture",
            "epayment/v1/payments/",
            "/a//b/",
            "/ø/æ/å",
            "/1/2/3/4/5/6/7/8",
        ] {
            let trimmed = path.trim_start_matches('/').trim_end_matches('/');
            let split: Vec<&str> = trimmed.split('/').collect();
            let (buf, len) = segments(path).unwrap();
            assert_eq!(&buf[..len], &split[..], "{path:?}");
        }
        assert_eq!(segments("/1/2/3/4/5/6/7/8/9"), None);
    }

    #[test]
    fn context_of_request() {
        let req =
            Request::post("https://apitest.vipps.no/epayment/v1/payments/abc-12345678/capture?x=1")
                .header("Merchant-Serial-Number", "123456")
                .header("Idempotency-Key", "k-1")
                .body(())
                .unwrap();
        let ctx = RequestContext::of(&req, &Hosts::default());
        assert_eq!(ctx.api, Api::EPayment);
        assert_eq!(ctx.operation, Some("capture"));
        assert_eq!(ctx.environment, Some(Environment::Test));
        assert_eq!(ctx.msn, Some("123456".parse().unwrap()));
        assert_eq!(
            ctx.path.as_deref(),
            Some("/epayment/v1/payments/abc-12345678/capture")
        );
        let text = ctx.to_string();
        assert!(text.contains("epayment capture"), "{text}");
        assert!(text.contains("MSN 123456"), "{text}");
    }
}
