//! `Authorization: Bearer <access token>` rules.
//!
//! Which APIs need a Bearer token follows [`crate::api::APIS`]: the access token
//! call (`/accesstoken/get`, `/miami/v1/token`) and the Login API (OAuth, where
//! `Basic` is right, and userinfo with the user's token) carry the caller's own
//! credentials and are not checked. Checkout authenticates with
//! `client_id`/`client_secret` headers, so a missing `Authorization` is fine there.

use super::headers::Known;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::AUTHORIZATION;

use super::headers::Lookup;
use super::{Facts, shown_word};
use crate::api::{Api, Credentials};
use crate::{Cause, Diagnosis};

/// Leeway for clock skew before a token whose `exp` has passed is refused.
pub(crate) const EXPIRY_LEEWAY_SECS: u64 = 300;

/// APIs whose calls always need `Authorization: Bearer` (an access token, or for
/// the Management and Report APIs a partner token of their own).
fn requires_bearer(api: Api) -> bool {
    match api.credentials() {
        Credentials::AccessToken => true,
        Credentials::AccessTokenOrOwn => api != Api::Other,
        Credentials::ClientCredentials | Credentials::Own => false,
    }
}

/// APIs with another authentication scheme: the caller's own credentials.
fn exempt(api: Api) -> bool {
    api.credentials() == Credentials::Own
}

/// What follows the `Bearer` scheme of an `Authorization` value, the scheme
/// matched whatever its case: whether the case is right is the `scheme` rule's
/// question alone (a warning on Recurring), so the token rules see the token of
/// `bearer <token>` too.
fn after_bearer(value: &[u8]) -> Option<&[u8]> {
    let scheme = value.get(..6)?;
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| value.get(6..))
        .flatten()
}

/// The token of a well-formed `Authorization: Bearer <token>` (one header, one
/// space, no whitespace in the token; the scheme in any case, see
/// [`after_bearer`]).
pub(crate) fn bearer_token<H: Lookup + ?Sized>(headers: &H) -> Option<&str> {
    let value = headers.get_value(&AUTHORIZATION)?.to_str().ok()?;
    let rest = after_bearer(value.as_bytes())?;
    // `rest` starts at a character boundary: the scheme is 6 ASCII bytes.
    let token = value.get(value.len() - rest.len()..)?.strip_prefix(' ')?;
    (!token.is_empty() && !token.bytes().any(|b| b.is_ascii_whitespace())).then_some(token)
}

/// No `Authorization` header on a call that needs a bearer token.
pub(super) fn missing(f: &Facts<'_>) -> Option<Diagnosis> {
    missing_in(f.api, &f.headers)
}

fn missing_in<H: Lookup + ?Sized>(api: Api, headers: &H) -> Option<Diagnosis> {
    if !requires_bearer(api) || headers.has(&AUTHORIZATION) {
        return None;
    }
    Some(
        Diagnosis::new(Cause::MissingAuthorization)
            .with_evidence(format!("no `Authorization` header on a {} call", api)),
    )
}

/// The scheme is not `Bearer`: another scheme (`Basic`), none (a bare token), or
/// `Bearer` in the wrong case.
pub(super) fn scheme(f: &Facts<'_>) -> Option<Diagnosis> {
    scheme_in(f.api, &f.headers)
}

fn scheme_in<H: Lookup + ?Sized>(api: Api, headers: &H) -> Option<Diagnosis> {
    if exempt(api) {
        return None;
    }
    let value = headers.get_value(&AUTHORIZATION)?.as_bytes();
    if value.starts_with(b"Bearer") {
        return None;
    }
    let end = value
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(value.len());
    let word = std::str::from_utf8(&value[..end]).unwrap_or("");
    // `bearer`, `BEARER`, `bearereyJ…` (no space): the scheme in the wrong case.
    if value.len() >= 6 && value[..6].eq_ignore_ascii_case(b"bearer") {
        // Recurring declares HTTP bearer auth (case-insensitive): only a warning,
        // from the `RecurringBearerCase` rule (see `recurring::bearer_lower_case`).
        if api == Api::Recurring && value.get(6) == Some(&b' ') {
            return None;
        }
        let shown = shown_word(word, 10).unwrap_or(std::str::from_utf8(&value[..6]).unwrap_or(""));
        return Some(
            Diagnosis::new(Cause::BearerWrongCase)
                .with_evidence(format!("scheme is `{shown}`, expected `Bearer`")),
        );
    }
    let evidence = match shown_word(word, 10) {
        Some(scheme) if end < value.len() => {
            format!("scheme is `{scheme}`, expected `Bearer`")
        }
        _ if looks_like_jwt(word.as_bytes()) => {
            "the value has no scheme: a bare token, without `Bearer `".to_owned()
        }
        _ => "the value does not start with `Bearer `".to_owned(),
    };
    Some(Diagnosis::new(Cause::BearerMissing).with_evidence(evidence))
}

/// `Bearer` with a malformed token.
pub(super) fn malformed(f: &Facts<'_>) -> Option<Diagnosis> {
    // The cache's own value, shaped right when it was fetched: `Bearer `, one space,
    // a JWT. Only a second header is left to find.
    if f.token.as_ref().is_some_and(|t| t.shape_ok()) && f.headers.number(Known::AUTHORIZATION) == 1
    {
        return None;
    }
    malformed_in(f.api, &f.headers)
}

fn malformed_in<H: Lookup + ?Sized>(api: Api, headers: &H) -> Option<Diagnosis> {
    if exempt(api) {
        return None;
    }
    let value = headers.get_value(&AUTHORIZATION)?.as_bytes();
    let diagnosis = |evidence: String| {
        Some(Diagnosis::new(Cause::MalformedAuthorization).with_evidence(evidence))
    };
    let n = headers.number(&AUTHORIZATION);
    if n > 1 {
        return diagnosis(format!("{n} `Authorization` headers, expected 1"));
    }
    // Other schemes are the `scheme` rule's.
    let rest = after_bearer(value)?;
    if rest.is_empty() {
        return diagnosis("no token after `Bearer`".into());
    }
    let spaces = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
    if spaces == 0 {
        return diagnosis("no space between `Bearer` and the token".into());
    }
    let token = &rest[spaces..];
    if token.is_empty() {
        return diagnosis("the token after `Bearer` is empty".into());
    }
    if spaces > 1 || rest[0] != b' ' {
        return diagnosis(format!(
            "{spaces} whitespace characters between `Bearer` and the token, expected 1 space"
        ));
    }
    token_shape(token).and_then(diagnosis)
}

/// What is wrong with the shape of a bearer token itself (quotes, whitespace, not
/// three non-empty base64url segments), if anything. [`AccessToken`] works this
/// out once for a token of the cache.
///
/// [`AccessToken`]: crate::token::AccessToken
pub(crate) fn token_shape(token: &[u8]) -> Option<String> {
    if token.iter().any(|b| matches!(b, b'"' | b'\'')) {
        return Some("the token is quoted or holds quotes".into());
    }
    if token.last().is_some_and(|b| b.is_ascii_whitespace()) {
        return Some("whitespace after the token".into());
    }
    if token.iter().any(|b| b.is_ascii_whitespace()) {
        return Some("whitespace inside the token".into());
    }
    let dots = token.iter().filter(|b| **b == b'.').count();
    if dots != 2 {
        let s = if dots == 1 { "" } else { "s" };
        return Some(format!(
            "the token has {dots} dot{s}, expected 2 (a JWT: header.payload.signature)"
        ));
    }
    if token.split(|b| *b == b'.').any(|seg| seg.is_empty()) {
        return Some("the token has an empty JWT segment".into());
    }
    if !token.iter().all(|b| is_base64url(*b) || *b == b'.') {
        return Some(
            "the token holds characters outside base64url (`A-Z a-z 0-9 - _`) and dots".into(),
        );
    }
    None
}

/// What a request's own `Authorization` header shows to be wrong, if anything:
/// missing, not `Bearer`, `Bearer` in the wrong case, or a malformed token. The
/// rules of [`missing`], [`scheme`] and [`malformed`], for `DiagnoseLayer` to explain
/// a `401` that only says the token is invalid.
pub(crate) fn header_problem<H: Lookup + ?Sized>(api: Api, headers: &H) -> Option<Diagnosis> {
    missing_in(api, headers)
        .or_else(|| scheme_in(api, headers))
        .or_else(|| malformed_in(api, headers))
}

/// A JWT whose `exp` claim is more than [`EXPIRY_LEEWAY_SECS`] in the past.
pub(super) fn expired(f: &Facts<'_>) -> Option<Diagnosis> {
    if exempt(f.api) {
        return None;
    }
    let exp = match &f.token {
        // Read from the token once, when it entered the cache.
        Some(token) => token.exp()?,
        None => jwt_exp(f.bearer_token?)?,
    };
    // The wall clock is read only for a token that has an `exp`.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    let ago = now.checked_sub(exp)?;
    if ago <= EXPIRY_LEEWAY_SECS {
        return None;
    }
    Some(
        Diagnosis::new(Cause::AccessTokenExpired).with_evidence(format!(
            "the token's `exp` claim is {ago} seconds in the past"
        )),
    )
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'='
}

fn looks_like_jwt(word: &[u8]) -> bool {
    word.starts_with(b"eyJ") && word.iter().filter(|b| **b == b'.').count() == 2
}

/// The `exp` claim of a JWT, in seconds since the epoch; `None` for anything that
/// is not a JWT with a numeric `exp`.
pub(crate) fn jwt_exp(token: &str) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Claims {
        exp: Option<serde_json::Number>,
    }
    let payload = token.split('.').nth(1)?;
    let payload = payload.trim_end_matches('=');
    if payload.len() > 16 * 1024 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.exp?;
    exp.as_u64().or_else(|| {
        exp.as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1e15)
            .map(|f| f as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::Cause;

    #[test]
    fn valid_bearer_passes() {
        assert_passes(epayment_get().header("Authorization", bearer(valid_jwt())));
    }

    #[test]
    fn missing() {
        let req = http::Request::get(format!("{TEST}/epayment/v1/payments/abcdefgh-1"))
            .header("Ocp-Apim-Subscription-Key", SUB_KEY);
        assert_refused(req, Cause::MissingAuthorization);
        // Checkout authenticates otherwise; the token call needs no bearer.
        let req = http::Request::post(format!("{TEST}/checkout/v3/session"))
            .header("Ocp-Apim-Subscription-Key", SUB_KEY)
            .header("client_id", "id")
            .header("client_secret", "secret")
            .header("Merchant-Serial-Number", "123456");
        assert_passes_body(
            req,
            r#"{"merchantInfo":{"callbackUrl":"https://example.com/cb","returnUrl":"https://example.com/r","callbackAuthorizationToken":"t"},"transaction":{"amount":{"value":1000,"currency":"NOK"},"reference":"order-12345678","paymentDescription":"Socks"}}"#,
            &[crate::preflight::RuleId::SystemHeaders],
        );
        let req = http::Request::post(format!("{TEST}/accesstoken/get"))
            .header("client_id", "id")
            .header("client_secret", "secret")
            .header("Ocp-Apim-Subscription-Key", SUB_KEY)
            .header("Merchant-Serial-Number", "123456")
            .header("Vipps-System-Name", "acme")
            .header("Vipps-System-Version", "1");
        assert_passes(req);
    }

    #[test]
    fn scheme_cases() {
        for (value, cause, evidence) in [
            (
                format!("bearer {}", valid_jwt()),
                Cause::BearerWrongCase,
                "`bearer`",
            ),
            (
                format!("BEARER {}", valid_jwt()),
                Cause::BearerWrongCase,
                "`BEARER`",
            ),
            (
                format!("bEaReR {}", valid_jwt()),
                Cause::BearerWrongCase,
                "`bEaReR`",
            ),
            (
                format!("bearer{}", valid_jwt()),
                Cause::BearerWrongCase,
                "`bearer`",
            ),
            (
                "Basic dXNlcjpwYXNz".to_owned(),
                Cause::BearerMissing,
                "`Basic`",
            ),
            (valid_jwt(), Cause::BearerMissing, "bare token"),
            (
                format!("Token {}", valid_jwt()),
                Cause::BearerMissing,
                "`Token`",
            ),
            ("x".repeat(40), Cause::BearerMissing, "does not start"),
        ] {
            let err = refused(epayment_get().header("Authorization", value.as_str()));
            assert_eq!(err.cause(), cause, "{value}");
            let ev = err.diagnosis().evidence().join(" ");
            assert!(ev.contains(evidence), "{value}: {ev}");
            assert_no_secret(&err, &value);
        }
    }

    #[test]
    fn malformed_cases() {
        let jwt = valid_jwt();
        for (value, evidence) in [
            ("Bearer".to_owned(), "no token"),
            (format!("Bearer{jwt}"), "no space"),
            (format!("Bearer  {jwt}"), "2 whitespace"),
            (format!("Bearer \t{jwt}"), "2 whitespace"),
            (format!("Bearer\t{jwt}"), "1 whitespace"),
            ("Bearer ".to_owned(), "empty"),
            ("Bearer   ".to_owned(), "empty"),
            (format!("Bearer \"{jwt}\""), "quote"),
            (format!("Bearer '{jwt}'"), "quote"),
            (format!("Bearer {jwt} "), "whitespace after"),
            (
                format!("Bearer {} {}", &jwt[..10], &jwt[10..]),
                "whitespace inside",
            ),
            ("Bearer abc.def".to_owned(), "1 dot, expected 2"),
            ("Bearer abcdef".to_owned(), "0 dots, expected 2"),
            ("Bearer a.b.c.d".to_owned(), "3 dots"),
            ("Bearer eyJ..sig".to_owned(), "empty JWT segment"),
            ("Bearer eyJ+/.e30.sig".to_owned(), "outside base64url"),
        ] {
            let err = refused(epayment_get().header(
                "Authorization",
                http::HeaderValue::from_str(&value).unwrap(),
            ));
            assert_eq!(err.cause(), Cause::MalformedAuthorization, "{value:?}");
            let ev = err.diagnosis().evidence().join(" ");
            assert!(ev.contains(evidence), "{value:?}: {ev}");
            assert_no_secret(&err, &jwt);
        }
        // Two headers.
        let req = epayment_get()
            .header("Authorization", bearer(valid_jwt()))
            .header("Authorization", bearer(valid_jwt()));
        let err = refused_raw(req);
        assert_eq!(err.cause(), Cause::MalformedAuthorization);
    }

    #[test]
    fn near_misses_pass() {
        // Padding `=` and a long signature still pass; so does an unsigned-looking JWT.
        let jwt = valid_jwt();
        assert_passes(epayment_get().header("Authorization", bearer(format!("{jwt}=="))));
        assert_passes(epayment_get().header("Authorization", bearer(jwt_with_exp(None))));
        // The Login API uses Basic.
        let req = http::Request::post(format!("{TEST}/access-management-1.0/access/oauth2/token"))
            .header("Authorization", "Basic dXNlcjpwYXNz");
        assert_passes_body(req, "", &[crate::preflight::RuleId::SystemHeaders]);
    }

    /// A token the cache fetched is recognised by identity and its facts worked out
    /// once; it meets the same refusals as the same token set by hand.
    #[test]
    fn tokens_known_by_identity_get_the_same_refusals() {
        use std::sync::Arc;
        use std::time::Duration;

        use crate::token::{AccessToken, KnownTokens, MintedFor};
        use crate::{Environment, VippsError};

        fn by_hand_value(t: &AccessToken) -> http::HeaderValue {
            http::HeaderValue::from_str(&format!("Bearer {}", t.secret().expose())).unwrap()
        }
        struct Own(Vec<Arc<AccessToken>>);
        impl KnownTokens for Own {
            fn minted_for(&self, token: &str) -> Option<MintedFor> {
                let found = self.0.iter().find(|t| t.secret().expose() == token)?;
                Some(found.minted_for().clone())
            }
            /// Like the cache: the one token for the request's MSN, if the value
            /// is its own.
            fn identify(
                &self,
                value: &http::HeaderValue,
                _keys: &crate::KeySet,
                msn: Option<crate::Msn>,
            ) -> Option<Arc<AccessToken>> {
                self.0
                    .iter()
                    .find(|t| t.is_value_of(value) && t.msn() == msn)
                    .cloned()
            }
        }
        let make = |token: String, msn_: &str| {
            let minted = minted(Environment::Test, SUB_KEY, Some(msn_), false);
            Arc::new(AccessToken::new(token, Duration::from_secs(3600), minted).unwrap())
        };
        let good = make(valid_jwt(), MSN);
        let expired = make(jwt_with_exp(Some(1_000_000)), MSN);
        let not_jwt = make("abc.def".to_owned(), MSN);
        let quoted = make("\"eyJ.e30.sig\"".to_owned(), MSN);
        let other_msn = make(valid_jwt(), "654321");
        let own = Own(vec![
            good.clone(),
            expired.clone(),
            not_jwt.clone(),
            quoted.clone(),
            other_msn.clone(),
        ]);
        let keys = keyring().key_sets().next().unwrap().clone();
        let msn = Some(MSN.parse().unwrap());
        assert!(own.identify(good.authorization(), &keys, msn).is_some());
        assert!(own.identify(&by_hand_value(&good), &keys, msn).is_none());
        let layer = strict(
            crate::preflight::PreflightLayer::new()
                .keyring(keyring())
                .known_tokens(Arc::new(own)),
            &[],
        );
        let check = |values: &[http::HeaderValue]| -> Result<(), VippsError> {
            let mut req = epayment_get();
            for v in values {
                req = req.header("Authorization", v.clone());
            }
            layer.check(&req.body(()).unwrap())
        };
        let by_hand = by_hand_value;
        assert!(check(&[good.authorization().clone()]).is_ok());
        assert!(check(&[by_hand(&good)]).is_ok());
        for (token, cause) in [
            (&expired, Cause::AccessTokenExpired),
            (&not_jwt, Cause::MalformedAuthorization),
            (&quoted, Cause::MalformedAuthorization),
            (&other_msn, Cause::TokenForOtherMsn),
        ] {
            for value in [token.authorization().clone(), by_hand(token)] {
                let err = check(&[value]).expect_err("refused");
                assert_eq!(err.cause(), cause);
            }
        }
        let twice = [good.authorization().clone(), good.authorization().clone()];
        assert_eq!(
            check(&twice).expect_err("refused").cause(),
            Cause::MalformedAuthorization
        );
    }

    #[test]
    fn expired() {
        let old = jwt_with_exp(Some(1_000_000));
        let err = refused(epayment_get().header("Authorization", bearer(old.clone())));
        assert_eq!(err.cause(), Cause::AccessTokenExpired);
        assert_no_secret(&err, &old);
        // Within the leeway: passes.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let just = jwt_with_exp(Some(now - 60));
        assert_passes(epayment_get().header("Authorization", bearer(just)));
        // Garbage payloads are tolerated.
        for token in [
            "eyJhbGciOiJub25lIn0.bm90IGpzb24.sig",
            "eyJ.e30.sig",
            "eyJ.eyJleHAiOiJ4In0.sig",
        ] {
            assert_passes(epayment_get().header("Authorization", bearer(token.to_owned())));
        }
        assert_eq!(super::jwt_exp("a.eyJleHAiOjEuNWUzfQ.c"), Some(1500));
    }
}
