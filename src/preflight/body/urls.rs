//! URLs in well-known bodies: absolute `https://`, app schemes where allowed,
//! lengths where a specification sets one.

use super::*;
use crate::Environment;

/// A URL that is not absolute `https://` (with the exceptions documented above) or
/// is longer than its specification allows:
///
/// - ePayment `returnUrl`: https or an app's custom scheme, whatever the `userFlow`
///   (`epayment.v1.yml` CreatePaymentRequest `returnUrl`, and the create guide
///   <https://developer.vippsmobilepay.com/docs/APIs/epayment-api/api-guide/operations/create/>);
///   no length limit.
/// - eCom `callbackPrefix`, `fallBack`, `consentRemovalPrefix`,
///   `shippingDetailsPrefix`: at most 255 characters (`ecom-v2.yaml`
///   initiatePaymentV3UsingPOST `merchantInfo`); an app scheme in `fallBack` with
///   `isApp: true`.
/// - Recurring `merchantRedirectUrl`, `merchantAgreementUrl`: at most 1024
///   characters (`recurring.yaml` DraftAgreementV3 / UpdateAgreementPatchV3); an
///   app scheme in `merchantRedirectUrl` with `isApp: true`.
/// - Checkout `merchantInfo.returnUrl`, `callbackUrl`, `termsAndConditionsUrl`.
pub(in crate::preflight) fn url(f: &Facts<'_>) -> Option<Diagnosis> {
    let (kind, json) = known(f)?;
    let is_app = |path: &str| at(json, path).and_then(Value::as_bool) == Some(true);
    let app_scheme_ok = |path: &str| match (kind, path) {
        (Kind::EPaymentCreate, "returnUrl") => true,
        (Kind::EComInitiate, "merchantInfo.fallBack") => is_app("merchantInfo.isApp"),
        (Kind::RecurringAgreement, "merchantRedirectUrl") => is_app("isApp"),
        (Kind::CheckoutSession, "merchantInfo.returnUrl") => true,
        _ => false,
    };
    let (fields, max): (&[&str], Option<usize>) = match kind {
        // Only `returnUrl`: `CreatePaymentRequest` has no `callbackUrl` (ePayment
        // reports by webhooks) and allows properties it does not name, so one sent
        // anyway is not the API's to refuse, nor ours.
        Kind::EPaymentCreate => (&["returnUrl"], None),
        Kind::EComInitiate => (
            &[
                "merchantInfo.callbackPrefix",
                "merchantInfo.fallBack",
                "merchantInfo.consentRemovalPrefix",
                "merchantInfo.shippingDetailsPrefix",
            ],
            Some(255),
        ),
        Kind::RecurringAgreement | Kind::RecurringUpdate => {
            (&["merchantRedirectUrl", "merchantAgreementUrl"], Some(1024))
        }
        Kind::CheckoutSession => (
            &[
                "merchantInfo.returnUrl",
                "merchantInfo.callbackUrl",
                "merchantInfo.termsAndConditionsUrl",
            ],
            None,
        ),
        _ => return None,
    };
    let production = f.environment == Some(Environment::Production);
    for path in fields {
        let Some(value) = at(json, path) else {
            continue;
        };
        let problem = match value {
            Value::Null => continue,
            Value::String(s) if max.is_some_and(|max| s.chars().count() > max) => format!(
                "is {} characters long, at most {} by the specification",
                s.chars().count(),
                max.unwrap_or(0)
            ),
            Value::String(s) => match url_problem(s, app_scheme_ok(path), production) {
                Some(p) => p,
                None => continue,
            },
            _ => "is not a string".to_owned(),
        };
        return Some(
            Diagnosis::new(Cause::InvalidUrl).with_evidence(format!("`{path}` {problem}")),
        );
    }
    None
}

/// What is wrong with a URL, if anything.
pub(crate) fn url_problem(s: &str, app_scheme_ok: bool, production: bool) -> Option<String> {
    // Printable ASCII has neither (one pass over the bytes); anything else is
    // read as characters.
    if !s.bytes().all(|b| b.is_ascii_graphic())
        && s.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Some("holds whitespace or control characters".to_owned());
    }
    let Some((scheme, rest)) = s.split_once("://") else {
        return Some(if s.starts_with("https:") || s.starts_with("http:") {
            "is missing the `//` after the scheme".to_owned()
        } else {
            "is not an absolute URL: it must start with `https://`".to_owned()
        });
    };
    let valid_scheme = !scheme.is_empty()
        && scheme.as_bytes()[0].is_ascii_alphabetic()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !valid_scheme {
        return Some("has no valid scheme: it must start with `https://`".to_owned());
    }
    let host = rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("")
        .rsplit('@')
        .next()
        .unwrap_or("");
    // Compared without a lower-case copy: no allocation for a URL that passes.
    if scheme.eq_ignore_ascii_case("https") {
        if host.is_empty() {
            return Some("has no host".to_owned());
        }
        return None;
    }
    if scheme.eq_ignore_ascii_case("http") {
        let name = match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        };
        let local = ["localhost", "127.0.0.1", "[::1]"]
            .iter()
            .any(|l| name.eq_ignore_ascii_case(l));
        return if local && !production {
            None
        } else if local {
            Some("uses `http://localhost` in production: use `https://`".to_owned())
        } else {
            Some("uses `http://`: Vipps MobilePay requires `https://`".to_owned())
        };
    }
    let lower = scheme.to_ascii_lowercase();
    if looks_like_http_typo(&lower) {
        Some(format!(
            "has the scheme `{}`: did you mean `https`?",
            shown_word(scheme, 16).unwrap_or("?")
        ))
    } else if app_scheme_ok {
        None
    } else {
        Some(format!(
            "has the scheme `{}`: it must be `https`",
            shown_word(scheme, 16).unwrap_or("?")
        ))
    }
}

/// `htt`, `htps`, `hhtps`, `httpss`, `https2`…: a typo of `http(s)`, never an app
/// scheme.
pub(crate) fn looks_like_http_typo(scheme: &str) -> bool {
    scheme.len() <= 7
        && (scheme.starts_with("ht")
            || scheme.starts_with("hh")
            || scheme.ends_with("tps")
            || scheme.ends_with("ttp"))
}
