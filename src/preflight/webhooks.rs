//! Webhooks API rules from the specification (`webhooks.yaml`, v1); each
//! function names its source.

use super::headers::Known;
use super::sparse::Value;

use super::Facts;
use super::body::{Kind, at, known};
use crate::{Api, Cause, Diagnosis};

/// No `Ocp-Apim-Subscription-Key` on a Webhooks call: every operation of
/// `webhooks.yaml` declares it `required: true`.
pub(super) fn subscription_key(f: &Facts<'_>) -> Option<Diagnosis> {
    // The API is the path's first segment, matched once for every rule.
    if f.api != Api::Webhooks || f.headers.has(Known::SUBSCRIPTION_KEY) {
        return None;
    }
    Some(
        Diagnosis::new(Cause::MissingSubscriptionKey)
            .with_evidence("no `Ocp-Apim-Subscription-Key` header on the Webhooks call"),
    )
}

/// The `url` of a webhook registration missing or not an absolute URI
/// (`webhooks.yaml` POST /v1/webhooks: `url` required, `format: uri`). Only the
/// URI form is checked: the spec names no scheme.
pub(super) fn url(f: &Facts<'_>) -> Option<Diagnosis> {
    let (Kind::WebhookRegister, json) = known(f)? else {
        return None;
    };
    let problem = match at(json, "url") {
        None | Some(Value::Null) => "is missing: it is required",
        Some(Value::String(s)) if is_absolute_uri(s) => return None,
        Some(Value::String(_)) => "is not an absolute URI (`https://host/path`)",
        Some(_) => "is not a string",
    };
    Some(Diagnosis::new(Cause::InvalidUrl).with_evidence(format!("`url` {problem}")))
}

/// RFC 3986 absolute URI: a scheme (a letter, then letters, digits, `+-.`), `:`,
/// and no whitespace or control characters.
fn is_absolute_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut b = scheme.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        && !rest.is_empty()
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}
