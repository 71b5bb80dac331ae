//! Host and environment rules.

use super::Facts;
use super::headers::Known;
use crate::{Cause, Diagnosis};

/// A token or a key over plain `http://` to a host not registered as plaintext.
pub(super) fn insecure_scheme(f: &Facts<'_>) -> Option<Diagnosis> {
    if !f.insecure_scheme {
        return None;
    }
    let carried = carried(f)?;
    Some(
        crate::environment::insecure_scheme_diagnosis(f.uri)
            .with_evidence(format!("the request carries {carried}")),
    )
}

/// The first secret-carrying header of the request, named for evidence.
fn carried(f: &Facts<'_>) -> Option<&'static str> {
    if f.headers.has(Known::AUTHORIZATION) {
        Some("`Authorization`")
    } else if f.headers.has(Known::SUBSCRIPTION_KEY) {
        Some("`Ocp-Apim-Subscription-Key`")
    } else if f.headers.has(Known::CLIENT_SECRET) {
        Some("`client_secret`")
    } else {
        None
    }
}

/// The host belongs to no environment and the request carries a token or a key,
/// unless unknown hosts are allowed (a proxy).
pub(super) fn unknown_host(f: &Facts<'_>) -> Option<Diagnosis> {
    if !f.unknown_host || f.allow_unknown_hosts {
        return None;
    }
    let carried = carried(f)?;
    let host = f.uri.host().unwrap_or("");
    let host: String = host.chars().take(100).collect();
    let port = f
        .uri
        .port_u16()
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    Some(Diagnosis::new(Cause::UnknownHost).with_evidence(format!(
        "host `{host}{port}` belongs to no Vipps MobilePay environment, and the request carries {carried}"
    )))
}

/// The host is of one environment; the token (known to the token cache) or the
/// subscription key (found in the keyring) of the other.
pub(super) fn wrong_environment(f: &Facts<'_>) -> Option<Diagnosis> {
    let host_env = f.environment?;
    if let Some(minted) = f.minted.as_ref().filter(|m| m.environment != host_env) {
        return Some(
            Diagnosis::new(Cause::WrongEnvironment).with_evidence(format!(
                "the access token was fetched in the {} environment; the host is in {host_env}",
                minted.environment
            )),
        );
    }
    if !f.sub_key_sets.is_empty() && f.sub_key_sets.iter().all(|k| k.environment() != host_env) {
        let keys_env = f.sub_key_sets[0].environment();
        return Some(
            Diagnosis::new(Cause::WrongEnvironment).with_evidence(format!(
                "the subscription key belongs to {keys_env} keys; the host is in {host_env}"
            )),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{PreflightLayer, RuleId};
    use crate::{Cause, Environment, Hosts};

    #[test]
    fn unknown_host_with_secrets() {
        let b = good(http::Request::get(
            "https://api.vipps.no.evil.example/epayment/v1/payments/abcdefgh-1",
        ));
        let err = refused(b);
        assert_eq!(err.cause(), Cause::UnknownHost);
        assert!(err.diagnosis().evidence()[0].contains("api.vipps.no.evil.example"));
        assert_no_secret(&err, SUB_KEY);
        // A wrong port of an official host is unknown too.
        let b = good(http::Request::get(
            "https://api.vipps.no:8443/epayment/v1/payments/abcdefgh-1",
        ));
        assert_refused(b, Cause::UnknownHost);
        // Only a subscription key.
        let b = http::Request::get("https://example.com/x")
            .header("Ocp-Apim-Subscription-Key", SUB_KEY);
        assert_refused(b, Cause::UnknownHost);
    }

    #[test]
    fn unknown_host_near_misses() {
        // No secrets: not a Vipps call, untouched.
        let b = http::Request::post("https://example.com/epayment/v1/payments");
        assert_passes(b);
        // A proxy, allowed: the other rules run.
        let layer = strict(PreflightLayer::new().allow_unknown_hosts(true), &[]);
        let b = good(http::Request::get(
            "https://proxy.internal:8080/epayment/v1/payments/abcdefgh-1",
        ));
        run(&layer, b, "").unwrap();
        // ...over HTTPS only: keys never go to it over plain HTTP.
        let b = good(http::Request::get(
            "http://proxy.internal:8080/epayment/v1/payments/abcdefgh-1",
        ));
        assert_eq!(
            run(&layer, b, "").unwrap_err().cause(),
            Cause::InsecureScheme
        );
        let b = http::Request::get("https://proxy.internal:8080/epayment/v1/payments/abcdefgh-1")
            .header("Authorization", "bearer x.y.z");
        assert_eq!(
            run(&layer, b, "").unwrap_err().cause(),
            Cause::BearerWrongCase
        );
        // A registered host.
        let layer = strict(
            PreflightLayer::new().hosts(Hosts::default().with(Environment::Test, "127.0.0.1:9999")),
            &[],
        );
        let b = good(http::Request::get(
            "https://127.0.0.1:9999/epayment/v1/payments/abcdefgh-1",
        ));
        run(&layer, b, "").unwrap();
        // Plain HTTP to it only once it is registered as plaintext.
        let plain = "http://127.0.0.1:9999/epayment/v1/payments/abcdefgh-1";
        let err = run(&layer, good(http::Request::get(plain)), "").unwrap_err();
        assert_eq!(err.cause(), Cause::InsecureScheme);
        assert!(err.diagnosis().evidence()[0].contains("http://127.0.0.1:9999"));
        assert_no_secret(&err, SUB_KEY);
        let layer = strict(
            PreflightLayer::new()
                .hosts(Hosts::default().with_plaintext(Environment::Test, "127.0.0.1:9999")),
            &[],
        );
        run(&layer, good(http::Request::get(plain)), "").unwrap();
        // Never to an official host.
        for official in ["http://api.vipps.no", "http://apitest.vipps.no"] {
            let b = good(http::Request::get(format!(
                "{official}/epayment/v1/payments/abcdefgh-1"
            )));
            assert_refused(b, Cause::InsecureScheme);
            let b = http::Request::post(format!("{official}/accesstoken/get"))
                .header("client_id", "id")
                .header("client_secret", "s");
            assert_refused(b, Cause::InsecureScheme);
        }
        // The rule turned off.
        let layer = strict(PreflightLayer::new(), &[RuleId::UnknownHost]);
        let b = good(http::Request::get(
            "https://example.com/epayment/v1/payments/abcdefgh-1",
        ));
        run(&layer, b, "").unwrap();
    }

    #[test]
    fn wrong_environment_by_key() {
        let layer = keyed(vec![]);
        // Test key to production.
        let b = good(http::Request::get(format!(
            "{PROD}/epayment/v1/payments/abcdefgh-1"
        )));
        let err = run(&layer, b, "").unwrap_err();
        assert_eq!(err.cause(), Cause::WrongEnvironment);
        assert!(err.diagnosis().evidence()[0].contains("test keys"));
        assert_no_secret(&err, SUB_KEY);
        // Production key to production: fine.
        let b = good(http::Request::get(format!(
            "{PROD}/epayment/v1/payments/abcdefgh-1"
        )))
        .header("Ocp-Apim-Subscription-Key", PROD_SUB_KEY);
        let mut req = b.body(String::new()).unwrap();
        req.headers_mut().insert(
            "ocp-apim-subscription-key",
            http::HeaderValue::from_static(PROD_SUB_KEY),
        );
        layer.check(&req).unwrap();
        // A key the keyring does not know: nothing to say.
        let mut req = good(http::Request::get(format!(
            "{PROD}/epayment/v1/payments/abcdefgh-1"
        )))
        .body(String::new())
        .unwrap();
        req.headers_mut().insert(
            "ocp-apim-subscription-key",
            http::HeaderValue::from_static("unknown-key"),
        );
        layer.check(&req).unwrap();
    }

    #[test]
    fn wrong_environment_by_token() {
        let token = valid_jwt();
        let layer = keyed(vec![(
            token.clone(),
            minted(Environment::Production, "k", Some(MSN), false),
        )]);
        let b = http::Request::get(format!("{TEST}/epayment/v1/payments/abcdefgh-1"))
            .header("Authorization", bearer(token.clone()))
            .header("Ocp-Apim-Subscription-Key", "k")
            .header("Merchant-Serial-Number", MSN)
            .header("Vipps-System-Name", "acme")
            .header("Vipps-System-Version", "1");
        let err = run(&layer, b, "").unwrap_err();
        assert_eq!(err.cause(), Cause::WrongEnvironment);
        assert!(err.diagnosis().evidence()[0].contains("production environment"));
        assert_no_secret(&err, &token);
    }
}
