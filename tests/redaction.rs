//! Every public type of tower-vipps, formatted with `{:?}`, `{:#?}` and (where
//! implemented) `{}`, with real-looking secrets inside: no secret, and no 12-byte
//! piece of one, may appear.
//!
//! To add a type: build a value holding the secrets below and add one line to
//! `every_public_type_is_redacted`: `debug("Name", &value);` or, when it also
//! implements `Display`, `both("Name", &value);`.

mod common;

use std::fmt::{Debug, Display};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Layer, ServiceExt};
use tower_vipps::diagnose::{BODY_CAP, body::ErrorBody, classify};
use tower_vipps::{
    Api, Cause, Diagnose, DiagnoseLayer, Diagnosis, Environment, ErrorResponse, Fingerprint, Hosts,
    KeySet, Keyring, Msn, RequestContext, Secret, VippsError,
};

/// A JWT-like access token.
const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiIwMDAwMDAwMi0wMDAwIiwiZXhwIjoxNzAwMDAwMDAwfQ.Zm9vYmFyYmF6cXV4Y29ycmVjdGhvcnNlYmF0dGVyeXN0YXBsZQ";
/// A 32-hex subscription key.
const SUBSCRIPTION_KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
/// A client secret.
const CLIENT_SECRET: &str = "Xq7~pL2.vN9_kR4-mT6wZ8sB1cD3fG5hJ0";
/// A JWT-like access token that expires in 2100.
const LIVE_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiIwMDAwMDAwMi0wMDAwIiwiZXhwIjo0MTAyNDQ0ODAwfQ.bGl2ZXRva2Vuc2lnbmF0dXJlZm9ydGhlc3RhY2t0ZXN0";
const SECRETS: &[&str] = &[TOKEN, LIVE_TOKEN, SUBSCRIPTION_KEY, CLIENT_SECRET];

fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        for window in secret.as_bytes().windows(12) {
            let piece = std::str::from_utf8(window).unwrap();
            assert!(
                !text.contains(piece),
                "{what} shows a piece of a secret ({piece}): {text}"
            );
        }
    }
}

/// Checks `{:?}` and `{:#?}`.
fn debug<T: Debug + ?Sized>(what: &str, value: &T) {
    assert_no_secret(what, &format!("{value:?}"));
    assert_no_secret(what, &format!("{value:#?}"));
}

/// Checks `{:?}`, `{:#?}`, `{}` and `{:#}`.
fn both<T: Debug + Display + ?Sized>(what: &str, value: &T) {
    debug(what, value);
    assert_no_secret(what, &format!("{value}"));
    assert_no_secret(what, &format!("{value:#}"));
}

fn msn() -> Msn {
    "123456".parse().unwrap()
}

fn merchant_keys() -> KeySet {
    KeySet::merchant(
        Environment::Test,
        msn(),
        "2a4c6e80-client-id",
        CLIENT_SECRET,
        SUBSCRIPTION_KEY,
    )
    .unwrap()
}

fn partner_keys() -> KeySet {
    KeySet::partner(
        Environment::Production,
        "partner-client-id",
        CLIENT_SECRET,
        SUBSCRIPTION_KEY,
    )
    .unwrap()
    .connected_msns([msn()])
}

/// A request as it goes on the wire, with every secret header.
fn secret_request() -> Request<Full<Bytes>> {
    let mut request = Request::post(
        "https://apitest.vipps.no/epayment/v1/payments/order-123456/capture?token=abc",
    )
    .header("Merchant-Serial-Number", "123456")
    .header("Idempotency-Key", "a0b1c2d3-idempotency")
    .header("client_id", "2a4c6e80-client-id")
    .body(Full::new(Bytes::from_static(b"{}")))
    .unwrap();
    let headers = request.headers_mut();
    let mut authorization = HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap();
    authorization.set_sensitive(true);
    headers.insert("authorization", authorization);
    headers.insert(
        "ocp-apim-subscription-key",
        HeaderValue::from_static(SUBSCRIPTION_KEY),
    );
    headers.insert("client_secret", HeaderValue::from_static(CLIENT_SECRET));
    request
}

/// A `VippsError` from `DiagnoseLayer` over a server that echoes the request's
/// credentials in its response headers (the worst case).
async fn echoed_error() -> VippsError {
    let echo = tower::service_fn(|req: Request<Full<Bytes>>| async move {
        let mut response = Response::builder()
            .status(401)
            .body(Full::new(Bytes::from_static(
                br#"{"statusCode":401,"message":"Access denied due to invalid subscription key."}"#,
            )))
            .unwrap();
        for name in [
            "authorization",
            "ocp-apim-subscription-key",
            "client_secret",
        ] {
            if let Some(value) = req.headers().get(name) {
                let mut value = value.clone();
                value.set_sensitive(false);
                response.headers_mut().insert(name, value);
            }
        }
        response.headers_mut().insert(
            "set-cookie",
            HeaderValue::from_str(&format!("session={SUBSCRIPTION_KEY}")).unwrap(),
        );
        Ok::<_, std::convert::Infallible>(response)
    });
    Diagnose::new(echo)
        .oneshot(secret_request())
        .await
        .unwrap_err()
}

#[tokio::test]
async fn every_public_type_is_redacted() {
    // Keys.
    let secret = Secret::new(TOKEN);
    debug("Secret", &secret);
    both("Fingerprint", &Fingerprint::of(SUBSCRIPTION_KEY.as_bytes()));
    both("Fingerprint of a Secret", &secret.fingerprint());
    debug("KeySet (merchant)", &merchant_keys());
    debug("KeySet (partner)", &partner_keys());
    debug("KeyScope", merchant_keys().scope());
    let builder = Keyring::builder()
        .key_set(merchant_keys())
        .key_set(partner_keys())
        .host(Environment::Test, "127.0.0.1:8080")
        .system("shop", "1.0");
    debug("KeyringBuilder", &builder);
    let keyring = builder.build().unwrap();
    debug("Keyring", &keyring);
    debug("SystemInfo", keyring.system());
    debug("Lookup", &keyring.lookup(Environment::Test, Some(msn())));
    debug(
        "Lookup",
        &keyring.lookup(Environment::Production, Some(msn())),
    );
    let bad = KeySet::merchant(
        Environment::Test,
        msn(),
        "id",
        format!("{CLIENT_SECRET}\n"),
        SUBSCRIPTION_KEY,
    )
    .unwrap_err();
    both("KeyError", &bad);
    debug(
        "sensitive header value",
        merchant_keys().subscription_key_header(),
    );
    debug(
        "sensitive header value",
        merchant_keys().client_secret_header(),
    );

    // Domain types.
    both("Msn", &msn());
    both("Environment", &Environment::Production);
    debug("Hosts", keyring.hosts());
    both("Api", &Api::EPayment);
    both("Cause", &Cause::InvalidSubscriptionKey);

    // Request context, from a request carrying every secret.
    let request = secret_request();
    let context = RequestContext::of(&request, &Hosts::default());
    both("RequestContext", &context);
    assert_eq!(context.msn, Some(msn()), "the context still names the MSN");

    // Diagnoses.
    let mut response_headers = HeaderMap::new();
    response_headers.insert(
        "www-authenticate",
        HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap(),
    );
    let diagnosis = classify(
        &context,
        StatusCode::UNAUTHORIZED,
        &response_headers,
        b"Something went wrong, please try again later",
    );
    debug("Diagnosis", &diagnosis);
    assert_no_secret("Diagnosis::report", &diagnosis.report());
    debug(
        "ErrorBody",
        &ErrorBody::parse(br#"{"error":"invalid_client"}"#),
    );

    // Errors, of each origin.
    let refused = VippsError::refused(
        Diagnosis::new(Cause::BearerWrongCase).with_evidence("scheme is `bearer`"),
    )
    .with_context(context.clone());
    both("VippsError (refused)", &refused);

    let mut sensitive = HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap();
    sensitive.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert("authorization", sensitive);
    let error_response = ErrorResponse {
        status: StatusCode::UNAUTHORIZED,
        headers,
        body: Bytes::from_static(b"{\"statusCode\":401,\"message\":\"Subscription not found.\"}"),
        truncated: false,
    };
    debug("ErrorResponse", &error_response);
    let response = VippsError::from_response(error_response.clone(), diagnosis.clone())
        .with_context(context.clone());
    both("VippsError (response)", &response);
    debug("Origin", response.origin());

    let token = VippsError::token(
        Some(error_response),
        Diagnosis::new(Cause::InvalidClientCredentials),
        None,
    )
    .with_context(context.clone());
    both("VippsError (token, response)", &token);
    both(
        "VippsError (token, no response)",
        &VippsError::token(
            None,
            Diagnosis::new(Cause::Transport),
            Some("connect failed".into()),
        ),
    );
    let transport = VippsError::transport(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "connection refused",
    ))
    .fill_context(&context);
    both("VippsError (transport)", &transport);
    both(
        "VippsError (transport_with)",
        &VippsError::transport_with(Diagnosis::new(Cause::Timeout), None),
    );

    // The layer, its service and an error it made from echoed credentials.
    let layer = DiagnoseLayer::new().keyring(&keyring).body_cap(BODY_CAP);
    debug("DiagnoseLayer", &layer);
    debug("Diagnose", &layer.layer(()));
    let echoed = echoed_error().await;
    assert_eq!(echoed.cause(), Cause::InvalidSubscriptionKey);
    both("VippsError (echoed credentials)", &echoed);
    debug(
        "ErrorResponse (echoed credentials)",
        echoed.error_response().unwrap(),
    );
}

#[test]
fn the_check_catches_a_leak() {
    let leak = std::panic::catch_unwind(|| debug("leaky", &format!("key={SUBSCRIPTION_KEY}")));
    assert!(leak.is_err());
    let partial = std::panic::catch_unwind(|| debug("partial", &TOKEN[40..60]));
    assert!(partial.is_err());
}

/// The stack's own types, formatted while they hold a real token: the preset, its
/// services warm, the token cache and its token, the token client and request, each
/// layer; all while a TRACE subscriber records everything.
#[tokio::test]
async fn stack_types_are_redacted() {
    use std::convert::Infallible;
    use std::sync::Arc;
    use tower_vipps::idempotency::IdempotencyLayer;
    use tower_vipps::retry::{RetryLayer, RetryPolicy};
    use tower_vipps::timeout::TimeoutLayer;
    use tower_vipps::token::{TokenCache, TokenClient, TokenRequest};
    use tower_vipps::{AuthLayer, PreflightLayer};

    let (captured, _guard) = common::capture_tracing();
    let keyring = Keyring::builder().key_set(merchant_keys()).build().unwrap();
    let keys = keyring.find(Environment::Test, Some(msn())).unwrap();
    // One service plays token endpoint and API.
    let service = tower::service_fn(|req: Request<Full<Bytes>>| async move {
        let body = if req.uri().path() == "/accesstoken/get" {
            format!(
                r#"{{"token_type":"Bearer","expires_in":"3600","access_token":"{LIVE_TOKEN}"}}"#
            )
        } else {
            String::from("{}")
        };
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
    });

    let preset = tower_vipps::layer(keyring.clone());
    debug("VippsLayer", &preset);
    let stack = preset.layer(service);
    debug("VippsService (cold)", &stack);
    let request = Request::get("https://apitest.vipps.no/epayment/v1/payments/order-123456")
        .header("Merchant-Serial-Number", "123456")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = stack.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    debug("VippsService (warm)", &stack);

    let cache = preset.cache();
    let token = cache
        .cached(&keys, Some(msn()))
        .expect("the stack cached a token");
    assert_eq!(
        token.secret().expose(),
        LIVE_TOKEN,
        "the token is the one fetched"
    );
    debug("TokenCache (warm)", cache);
    debug("AccessToken", &*token);
    debug("MintedFor", &token.minted_for());
    debug("TokenCacheBuilder", &TokenCache::builder());
    debug("TokenClient", &TokenClient::new(service));
    debug(
        "TokenRequest",
        &TokenRequest::new(keys.clone(), Some(msn()), keyring.system().clone()),
    );
    let auth = AuthLayer::new(keyring.clone()).with_cache(cache.clone());
    debug("AuthLayer", &auth);
    debug("Auth", &auth.layer(service));
    let preflight = PreflightLayer::new()
        .keyring(keyring.clone())
        .known_tokens(Arc::new(cache.clone()));
    debug("PreflightLayer", &preflight);
    debug("Preflight", &preflight.layer(service));
    debug("RetryPolicy", &RetryPolicy::new());
    debug("RetryLayer", &RetryLayer::new(RetryPolicy::new()));
    debug(
        "TimeoutLayer",
        &TimeoutLayer::total(std::time::Duration::from_secs(1)),
    );
    debug("IdempotencyLayer", &IdempotencyLayer::new());
    // The dev-dependency reqwest has `rustls-no-provider`: install ring first.
    #[cfg(feature = "reqwest")]
    let _ = rustls::crypto::ring::default_provider().install_default();
    #[cfg(feature = "reqwest")]
    debug(
        "VippsMiddleware",
        &tower_vipps::reqwest::VippsMiddleware::new(keyring.clone(), reqwest::Client::builder())
            .unwrap(),
    );

    // A request refused for carrying the cached token to the other environment.
    let mut wrong = Request::get("https://api.vipps.no/epayment/v1/payments/order-123456")
        .header("Merchant-Serial-Number", "123456")
        .body(Full::new(Bytes::new()))
        .unwrap();
    wrong
        .headers_mut()
        .insert("authorization", token.authorization().clone());
    let refused = preflight
        .layer(service)
        .oneshot(wrong)
        .await
        .expect_err("a token for test, sent to production");
    assert!(refused.is_refused());
    both("VippsError (token to the other environment)", &refused);

    let text = captured.text();
    assert!(!text.is_empty(), "the TRACE capture saw nothing");
    assert_no_secret("tracing output", &text);
}
