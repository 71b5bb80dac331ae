//! Helpers for the rule tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::request::Builder;

use super::{Action, Policy, PreflightLayer, RuleId};
use crate::token::{KnownTokens, MintedFor};
use crate::{Cause, Environment, KeySet, Keyring, Msn, VippsError};

pub const TEST: &str = "https://apitest.vipps.no";
pub const PROD: &str = "https://api.vipps.no";
pub const SUB_KEY: &str = "0123456789abcdef0123456789abcdef";
pub const PROD_SUB_KEY: &str = "fedcba9876543210fedcba9876543210";
pub const PARTNER_SUB_KEY: &str = "aaaabbbbccccddddeeeeffff00001111";
pub const MSN: &str = "123456";

pub fn msn(s: &str) -> Msn {
    s.parse().unwrap()
}

/// A JWT-shaped token with the given `exp`.
pub fn jwt_with_exp(exp: Option<u64>) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let jti = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let payload = match exp {
        Some(exp) => format!(r#"{{"sub":"x","jti":{jti},"exp":{exp}}}"#),
        None => format!(r#"{{"sub":"x","jti":{jti}}}"#),
    };
    let payload = URL_SAFE_NO_PAD.encode(payload);
    format!("{header}.{payload}.c2lnbmF0dXJlX3NlY3JldF9wYXJ0")
}

/// A JWT expiring in an hour.
pub fn valid_jwt() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    jwt_with_exp(Some(now + 3600))
}

pub fn bearer(token: String) -> String {
    format!("Bearer {token}")
}

/// The headers every good test-environment call carries, except `Authorization`.
pub fn base(b: Builder) -> Builder {
    b.header("Ocp-Apim-Subscription-Key", SUB_KEY)
        .header("Merchant-Serial-Number", MSN)
        .header("Vipps-System-Name", "acme-shop")
        .header("Vipps-System-Version", "1.2.3")
        .header("Vipps-System-Plugin-Name", "tower-vipps")
        .header("Vipps-System-Plugin-Version", "0.1.0")
}

/// `GET /epayment/v1/payments/{reference}` in test, without `Authorization`.
pub fn epayment_get() -> Builder {
    base(http::Request::get(format!(
        "{TEST}/epayment/v1/payments/acme-shop-123-order123abc"
    )))
}

/// A fully valid call: base headers, a bearer token, and an idempotency key.
pub fn good(b: Builder) -> Builder {
    base(b)
        .header("Authorization", bearer(valid_jwt()))
        .header("Idempotency-Key", "49ca711a-acee-4d01-993b-9487112e1def")
}

/// The default layer, with every warning turned into a refusal except `allow`.
pub fn strict(layer: PreflightLayer, allow: &[RuleId]) -> PreflightLayer {
    let mut policy = Policy::default();
    for id in RuleId::ALL {
        if id.default_action() == Action::Warn {
            policy.set(*id, Action::Refuse);
        }
        if allow.contains(id) {
            policy.set(*id, Action::Off);
        }
    }
    layer.policy(policy)
}

pub fn run(layer: &PreflightLayer, b: Builder, body: &str) -> Result<(), VippsError> {
    let req = b.body(body.to_owned()).unwrap();
    layer.check(&req)
}

pub fn refused(b: Builder) -> VippsError {
    run(&PreflightLayer::new(), b, "").expect_err("expected a refusal")
}

pub fn refused_raw(b: Builder) -> VippsError {
    refused(b)
}

pub fn assert_refused(b: Builder, cause: Cause) {
    let err = refused(b);
    assert_eq!(err.cause(), cause, "{err}");
    assert!(err.is_refused());
}

pub fn assert_passes(b: Builder) {
    assert_passes_body(b, "", &[]);
}

pub fn assert_passes_body(b: Builder, body: &str, allow: &[RuleId]) {
    let layer = strict(PreflightLayer::new(), allow);
    if let Err(err) = run(&layer, b, body) {
        panic!("unexpected refusal: {err}\n{err:?}");
    }
}

/// The error says nothing of the secret.
pub fn assert_no_secret(err: &VippsError, secret: &str) {
    let text = format!("{err} {err:?} {}", err.diagnosis().report());
    let probe = secret.trim().trim_matches('"');
    let probe = probe.strip_prefix("Bearer ").unwrap_or(probe);
    if probe.len() >= 12 {
        // Any 12-character window of the secret.
        for start in (0..probe.len().saturating_sub(12)).step_by(4) {
            if let Some(window) = probe.get(start..start + 12) {
                assert!(!text.contains(window), "secret leaked: {text}");
            }
        }
    }
}

/// Keys: merchant 123456 in test (SUB_KEY) and production (PROD_SUB_KEY), and
/// partner keys in test listing 222222 and 333333 (PARTNER_SUB_KEY).
pub fn keyring() -> Keyring {
    Keyring::builder()
        .merchant(
            Environment::Test,
            msn(MSN),
            "merchant-id",
            "merchant-secret",
            SUB_KEY,
        )
        .merchant(
            Environment::Production,
            msn(MSN),
            "prod-id",
            "prod-secret",
            PROD_SUB_KEY,
        )
        .key_set(
            KeySet::partner(
                Environment::Production,
                "partner-id",
                "partner-secret",
                PARTNER_SUB_KEY,
            )
            .unwrap()
            .connected_msns([msn("222222"), msn("333333")]),
        )
        .build()
        .unwrap()
}

/// A token map standing in for the token cache.
#[derive(Default)]
pub struct MapTokens(pub HashMap<String, MintedFor>);

impl KnownTokens for MapTokens {
    fn minted_for(&self, token: &str) -> Option<MintedFor> {
        self.0.get(token).cloned()
    }
}

pub fn minted(
    environment: Environment,
    sub_key: &str,
    msn_: Option<&str>,
    partner: bool,
) -> MintedFor {
    MintedFor {
        environment,
        client_id: Arc::from(if partner { "partner-id" } else { "merchant-id" }),
        subscription_key: crate::Fingerprint::of(sub_key.as_bytes()),
        msn: msn_.map(msn),
        partner,
    }
}

/// A keyed layer knowing `tokens`, every warning strict.
pub fn keyed(tokens: Vec<(String, MintedFor)>) -> PreflightLayer {
    let map = MapTokens(tokens.into_iter().collect());
    strict(
        PreflightLayer::new()
            .keyring(keyring())
            .known_tokens(Arc::new(map)),
        &[],
    )
}
