//! The emulator answers like the Vipps MobilePay API, over real HTTP on loopback.
#![cfg(feature = "emulator")]

mod common;

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tower_vipps::Environment::{self, Production, Test};
use tower_vipps::emulator::{self, Credentials, Emulator, Endpoint};

const MISSING_KEY: &str = "{\"statusCode\": 401, \"message\": \"Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.\"}";
const INVALID_KEY: &str = "{\"statusCode\": 401, \"message\": \"Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.\"}";
const INVALID_CLIENT: &str = "{\"error\": \"invalid_client\", \"error_description\": \"Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method).\"}";
const SOMETHING_WRONG: &str = "Something went wrong, please try again later";

struct Answer {
    status: StatusCode,
    content_type: String,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// `extraDetails[name=ErrorCode].reason`.
    fn code(&self) -> String {
        let v = self.json();
        v["extraDetails"]
            .as_array()
            .and_then(|a| a.iter().find(|d| d["name"] == "ErrorCode"))
            .map(|d| d["reason"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    }

    #[track_caller]
    fn assert(&self, status: u16, content_type: &str, body: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(self.content_type, content_type);
        assert_eq!(self.body, body);
    }

    #[track_caller]
    fn assert_problem(&self, status: u16, code: &str, title: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(self.content_type, "application/problem+json");
        let v = self.json();
        assert_eq!(v["status"], status);
        assert_eq!(v["title"], title, "{}", self.body);
        assert_eq!(v["type"], format!("https://httpstatuses.io/{status}"));
        assert!(v["traceId"].as_str().unwrap().starts_with("00-"));
        assert_eq!(self.code(), code, "{}", self.body);
    }
}

struct Harness {
    emu: Emulator,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// A request in the making.
struct Call<'a> {
    h: &'a Harness,
    env: Environment,
    builder: http::request::Builder,
    body: Bytes,
}

impl Call<'_> {
    fn header(mut self, name: &str, value: impl AsRef<str>) -> Self {
        self.builder = self.builder.header(name, value.as_ref());
        self
    }

    fn header_bytes(mut self, name: &str, value: &[u8]) -> Self {
        let value = http::HeaderValue::from_bytes(value).unwrap();
        self.builder = self.builder.header(name, value);
        self
    }

    fn keys(self, keys: Credentials) -> Self {
        self.header("Ocp-Apim-Subscription-Key", keys.subscription_key())
    }

    fn bearer(self, token: &str) -> Self {
        self.header("Authorization", format!("Bearer {token}"))
    }

    fn msn(self, msn: impl ToString) -> Self {
        self.header("Merchant-Serial-Number", msn.to_string())
    }

    fn key(self, key: &str) -> Self {
        self.header("Idempotency-Key", key)
    }

    fn json(mut self, body: &Value) -> Self {
        self.body = Bytes::from(serde_json::to_vec(body).unwrap());
        self.header("content-type", "application/json")
    }

    fn raw(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    async fn send(self) -> Answer {
        let _ = self.env;
        let req = self.builder.body(Full::new(self.body)).unwrap();
        let res = self.h.client.request(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let content_type = headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            content_type,
            headers,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }
}

impl Harness {
    async fn new() -> Harness {
        Harness::with(Emulator::start().await.unwrap())
    }

    fn with(emu: Emulator) -> Harness {
        Harness {
            emu,
            client: common::client(),
        }
    }

    fn call(&self, env: Environment, method: Method, path: &str) -> Call<'_> {
        Call {
            h: self,
            env,
            builder: Request::builder()
                .method(method)
                .uri(format!("{}{path}", self.emu.base_url(env))),
            body: Bytes::new(),
        }
    }

    fn token_call(&self, env: Environment, keys: Credentials) -> Call<'_> {
        self.call(env, Method::POST, "/accesstoken/get")
            .header("client_id", keys.client_id())
            .header("client_secret", keys.client_secret())
            .keys(keys)
    }

    async fn token(&self, keys: Credentials) -> String {
        self.token_for(keys, None).await
    }

    async fn token_for(&self, keys: Credentials, msn: Option<u64>) -> String {
        let mut call = self.token_call(keys.environment(), keys);
        if let Some(msn) = msn {
            call = call.msn(msn);
        }
        let answer = call.send().await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.json()["access_token"].as_str().unwrap().to_owned()
    }

    /// An authenticated ePayment call with merchant keys.
    fn api(&self, keys: Credentials, token: &str, method: Method, path: &str) -> Call<'_> {
        self.call(keys.environment(), method, path)
            .keys(keys)
            .bearer(token)
    }

    /// A new 10.00 NOK payment, `AUTHORIZED` at once; its reference.
    async fn paid(&self, keys: Credentials, token: &str) -> String {
        let reference = new_reference();
        let created = self
            .create(
                keys,
                token,
                &payment(&reference, 1000, emulator::READY_USER),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
        reference
    }

    async fn create(&self, keys: Credentials, token: &str, body: &Value) -> Answer {
        self.api(keys, token, Method::POST, "/epayment/v1/payments")
            .key(&uuid::Uuid::new_v4().to_string())
            .json(body)
            .send()
            .await
    }

    async fn modify(
        &self,
        keys: Credentials,
        token: &str,
        reference: &str,
        op: &str,
        value: u64,
    ) -> Answer {
        self.api(
            keys,
            token,
            Method::POST,
            &format!("/epayment/v1/payments/{reference}/{op}"),
        )
        .key(&uuid::Uuid::new_v4().to_string())
        .json(&json!({"modificationAmount": {"value": value, "currency": "NOK"}}))
        .send()
        .await
    }

    async fn get(&self, keys: Credentials, token: &str, reference: &str) -> Answer {
        self.api(
            keys,
            token,
            Method::GET,
            &format!("/epayment/v1/payments/{reference}"),
        )
        .send()
        .await
    }
}

fn payment(reference: &str, value: u64, phone: &str) -> Value {
    json!({
        "amount": {"value": value, "currency": "NOK"},
        "paymentMethod": {"type": "WALLET"},
        "customer": {"phoneNumber": phone},
        "reference": reference,
        "returnUrl": "https://example.com/return",
        "userFlow": "WEB_REDIRECT",
        "paymentDescription": "A test payment",
    })
}

fn new_reference() -> String {
    format!("order-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn token_endpoint_mints_tokens_like_the_real_one() {
    let h = Harness::new().await;
    for (keys, lifetime) in [
        (emulator::TEST_MERCHANT, "3600"),
        (emulator::PRODUCTION_MERCHANT, "86400"),
    ] {
        let answer = h
            .token_call(keys.environment(), keys)
            .msn(keys.msn().unwrap())
            .send()
            .await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.content_type, "application/json");
        let v = answer.json();
        assert_eq!(v["token_type"], "Bearer");
        assert_eq!(v["expires_in"], lifetime);
        assert_eq!(v["ext_expires_in"], lifetime);
        assert_eq!(v["resource"], "00000002-0000-0000-c000-000000000000");
        let on: u64 = v["expires_on"].as_str().unwrap().parse().unwrap();
        let before: u64 = v["not_before"].as_str().unwrap().parse().unwrap();
        assert_eq!(on - before, lifetime.parse::<u64>().unwrap());
        let token = v["access_token"].as_str().unwrap();
        assert_eq!(token.split('.').count(), 3);
        let minted = h.emu.minted_for(token).unwrap();
        assert_eq!(minted.environment, keys.environment());
        assert_eq!(minted.msn, keys.msn());
        assert_eq!(&*minted.client_id, keys.client_id());
        assert_eq!(
            minted.subscription_key,
            tower_vipps::Secret::new(keys.subscription_key()).fingerprint()
        );
        assert!(!minted.partner);
        // The token says what it is for, but not the keys.
        assert!(!token.contains(keys.subscription_key()));
    }
    assert_eq!(h.emu.minted_for("not.a.token"), None);
    assert_eq!(h.emu.count(Endpoint::AccessToken), 2);
}

#[tokio::test]
async fn token_endpoint_failures() {
    let h = Harness::new().await;
    let keys = emulator::TEST_MERCHANT;
    let no_key = h
        .call(Test, Method::POST, "/accesstoken/get")
        .header("client_id", keys.client_id())
        .header("client_secret", keys.client_secret())
        .send()
        .await;
    no_key.assert(401, "application/json", MISSING_KEY);
    let unknown = h
        .call(Test, Method::POST, "/accesstoken/get")
        .header("client_id", keys.client_id())
        .header("client_secret", keys.client_secret())
        .header(
            "Ocp-Apim-Subscription-Key",
            "0123456789abcdef0123456789abcdef",
        )
        .send()
        .await;
    unknown.assert(401, "application/json", INVALID_KEY);
    // Test keys on the production listener.
    let wrong_env = h.token_call(Production, keys).send().await;
    wrong_env.assert(401, "application/json", INVALID_KEY);
    let wrong_secret = h
        .call(Test, Method::POST, "/accesstoken/get")
        .header("client_id", keys.client_id())
        .header("client_secret", "not-the-secret")
        .keys(keys)
        .send()
        .await;
    wrong_secret.assert(401, "application/json", INVALID_CLIENT);
    let other_client = h
        .call(Test, Method::POST, "/accesstoken/get")
        .header("client_id", emulator::TEST_LOGIN_ONLY.client_id())
        .header("client_secret", emulator::TEST_LOGIN_ONLY.client_secret())
        .keys(keys)
        .send()
        .await;
    other_client.assert(401, "application/json", INVALID_CLIENT);
    let no_client = h
        .call(Test, Method::POST, "/accesstoken/get")
        .keys(keys)
        .send()
        .await;
    no_client.assert(401, "application/json", INVALID_CLIENT);
    // Partner keys with an MSN that is not connected.
    let partner = emulator::PRODUCTION_PARTNER;
    let not_connected = h
        .token_call(Production, partner)
        .msn(emulator::PRODUCTION_MSN)
        .send()
        .await;
    assert_eq!(not_connected.status, 403);
    assert_eq!(not_connected.content_type, "application/problem+json");
    assert_eq!(
        not_connected.json()["detail"],
        "The sales unit (MSN) is not connected to this partner."
    );
    // Partner keys on the test listener: partner functionality is not available in
    // the test environment, so they are unknown keys there.
    let partner_in_test = h.token_call(Test, partner).send().await;
    partner_in_test.assert(401, "application/json", INVALID_KEY);
    assert_eq!(h.emu.count(Endpoint::AccessToken), 8);
    assert_eq!(h.emu.counts().total(), 8);
}

#[tokio::test]
async fn api_calls_are_checked_in_the_gateways_order() {
    let h = Harness::new().await;
    let keys = emulator::TEST_MERCHANT;
    let token = h.token(keys).await;
    let path = "/epayment/v1/payments/no-such-payment-1";
    let get = || h.call(Test, Method::GET, path);

    get()
        .bearer(&token)
        .send()
        .await
        .assert(401, "application/json", MISSING_KEY);
    get()
        .bearer(&token)
        .header("Ocp-Apim-Subscription-Key", "nope")
        .send()
        .await
        .assert(401, "application/json", INVALID_KEY);
    // Production keys on the test listener.
    get()
        .bearer(&token)
        .keys(emulator::PRODUCTION_MERCHANT)
        .send()
        .await
        .assert(401, "application/json", INVALID_KEY);

    let refused = |a: Answer| a.assert(401, "text/plain", SOMETHING_WRONG);
    refused(get().keys(keys).send().await);
    refused(
        get()
            .keys(keys)
            .header("Authorization", format!("bearer {token}"))
            .send()
            .await,
    );
    refused(
        get()
            .keys(keys)
            .header("Authorization", &token)
            .send()
            .await,
    );
    refused(
        get()
            .keys(keys)
            .header("Authorization", format!("Bearer  {token}"))
            .send()
            .await,
    );
    refused(get().keys(keys).bearer("eyJ.garbage.token").send().await);
    // A token for another MSN (the Login-only unit's), with this unit's key.
    let other = h.token(emulator::TEST_LOGIN_ONLY).await;
    refused(get().keys(keys).bearer(&other).send().await);
    // This unit's token with another subscription key.
    refused(
        get()
            .keys(emulator::TEST_LOGIN_ONLY)
            .bearer(&token)
            .send()
            .await,
    );
    // The MSN header names another sales unit.
    refused(get().keys(keys).bearer(&token).msn(999999).send().await);
    // A production token on the test listener, with production keys there too:
    // the key fails first.
    let prod = h.token(emulator::PRODUCTION_MERCHANT).await;
    get()
        .keys(emulator::PRODUCTION_MERCHANT)
        .bearer(&prod)
        .send()
        .await
        .assert(401, "application/json", INVALID_KEY);
    refused(get().keys(keys).bearer(&prod).send().await);

    // A key without an ePayment subscription gets tokens, not API calls.
    let unsubscribed = emulator::TEST_UNSUBSCRIBED;
    let its_token = h.token(unsubscribed).await;
    get()
        .keys(unsubscribed)
        .bearer(&its_token)
        .send()
        .await
        .assert(
            401,
            "application/json",
            "{\"statusCode\": 401, \"message\": \"Subscription not found.\"}",
        );

    // Everything right: the API answers (the payment does not exist).
    let found = get()
        .keys(keys)
        .bearer(&token)
        .msn(emulator::TEST_MSN)
        .send()
        .await;
    found.assert_problem(404, "5090", "Reference not found");
    assert_eq!(
        found.json()["detail"],
        "The reference no-such-payment-1 does not exist for MSN 123456"
    );
    assert_eq!(found.json()["instance"], "/v1/payments/no-such-payment-1");

    assert_eq!(h.emu.count(Endpoint::GetPayment), 15);
    assert_eq!(h.emu.count(Endpoint::AccessToken), 4);
}

/// Recurring v3 and eCom v2 take what ePayment takes (the access token and the
/// same subscription key, the MSN with partner keys), checked in the gateway's
/// order; Checkout's client credentials are no substitute for the token.
#[tokio::test]
async fn recurring_and_ecom_check_the_credentials_they_take() {
    let h = Harness::new().await;
    let keys = emulator::TEST_MERCHANT;
    let token = h.token(keys).await;
    let login_only = h.token(emulator::TEST_LOGIN_ONLY).await;
    // Partner keys exist in production only.
    let partner = h.token(emulator::PRODUCTION_PARTNER).await;
    let calls = [
        (
            Method::GET,
            "/recurring/v3/agreements/agr_unknown",
            Endpoint::RecurringGetAgreement,
        ),
        (
            Method::POST,
            "/recurring/v3/agreements",
            Endpoint::RecurringCreateAgreement,
        ),
        (
            Method::POST,
            "/recurring/v3/agreements/agr_unknown/charges",
            Endpoint::RecurringCreateCharge,
        ),
        (
            Method::GET,
            "/ecomm/v2/payments/acme-unknown/details",
            Endpoint::EcomDetails,
        ),
        (
            Method::POST,
            "/ecomm/v2/payments/acme-unknown/capture",
            Endpoint::EcomCapture,
        ),
    ];
    for (method, path, endpoint) in &calls {
        let call = || h.call(Test, method.clone(), path);
        call()
            .bearer(&token)
            .send()
            .await
            .assert(401, "application/json", MISSING_KEY);
        let refused = |a: Answer| a.assert(401, "text/plain", SOMETHING_WRONG);
        refused(call().keys(keys).send().await);
        refused(
            call()
                .keys(keys)
                .header("client_id", keys.client_id())
                .header("client_secret", keys.client_secret())
                .send()
                .await,
        );
        refused(
            call()
                .keys(keys)
                .header("Authorization", &token)
                .send()
                .await,
        );
        call()
            .keys(emulator::TEST_LOGIN_ONLY)
            .bearer(&login_only)
            .send()
            .await
            .assert(
                403,
                "text/plain",
                "Merchant Not Allowed for Ecommerce Payment",
            );
        let no_msn = h
            .call(Production, method.clone(), path)
            .keys(emulator::PRODUCTION_PARTNER)
            .bearer(&partner)
            .send()
            .await;
        assert_eq!(no_msn.status, 403, "{path}: {}", no_msn.body);
        assert_eq!(no_msn.json()["title"], "Forbidden");
        // Everything right: the API itself answers.
        let answer = call()
            .keys(keys)
            .bearer(&token)
            .msn(emulator::TEST_MSN)
            .key("acme-key-1")
            .json(&json!({}))
            .send()
            .await;
        assert!(
            answer.content_type.starts_with("application/json"),
            "{path}: {}",
            answer.content_type
        );
        if path.starts_with("/recurring") {
            assert!(
                matches!(answer.status.as_u16(), 400 | 404),
                "{path}: {}",
                answer.body
            );
            assert!(
                answer.json()["type"]
                    .as_str()
                    .unwrap()
                    .contains("recurring-api-problems#")
            );
        } else {
            assert_eq!(answer.status, 400, "{path}: {}", answer.body);
            assert!(
                answer.json()[0]["errorGroup"].is_string(),
                "{}",
                answer.body
            );
        }
        assert_eq!(h.emu.count(*endpoint), 7, "{path}");
    }
    // The test-only endpoints are not in production.
    let prod = h.token(emulator::PRODUCTION_MERCHANT).await;
    for path in [
        "/ecomm/v2/integration-test/payments/acme-unknown/approve",
        "/recurring/v3/agreements/agr_unknown/accept",
    ] {
        let method = if path.starts_with("/recurring") {
            Method::PATCH
        } else {
            Method::POST
        };
        h.call(Production, method, path)
            .keys(emulator::PRODUCTION_MERCHANT)
            .bearer(&prod)
            .key("acme-key-2")
            .json(&json!({"phoneNumber": "4791000001"}))
            .send()
            .await
            .assert(
                404,
                "application/json",
                "{\"statusCode\": 404, \"message\": \"Resource not found\"}",
            );
    }
    assert_eq!(h.emu.count(Endpoint::Other), 0);
}

#[tokio::test(start_paused = true)]
async fn tokens_expire_with_tokios_clock_and_the_emulators() {
    let emu = Emulator::builder()
        .token_lifetime(Test, Duration::from_secs(60))
        .start()
        .await
        .unwrap();
    let h = Harness::with(emu);
    let keys = emulator::TEST_MERCHANT;
    let token = h.token(keys).await;
    let reference = h.paid(keys, &token).await;
    assert_eq!(h.get(keys, &token, &reference).await.status, 200);
    tokio::time::advance(Duration::from_secs(61)).await;
    h.get(keys, &token, &reference)
        .await
        .assert(401, "text/plain", SOMETHING_WRONG);

    // The lifetime can change at run time, and the clock can jump.
    h.emu
        .faults()
        .token_lifetime(Test, Duration::from_secs(3600));
    let token = h.token(keys).await;
    assert_eq!(h.get(keys, &token, &reference).await.status, 200);
    h.emu.advance_clock(Duration::from_secs(3600));
    h.get(keys, &token, &reference)
        .await
        .assert(401, "text/plain", SOMETHING_WRONG);
}

#[tokio::test]
async fn partner_keys_need_a_connected_msn() {
    let h = Harness::new().await;
    let partner = emulator::PRODUCTION_PARTNER;
    let token = h.token(partner).await;
    assert!(h.emu.minted_for(&token).unwrap().partner);
    let reference = new_reference();
    let create = |msn: Option<u64>| {
        let mut call = h
            .api(partner, &token, Method::POST, "/epayment/v1/payments")
            .key(&uuid::Uuid::new_v4().to_string())
            .json(&payment(&reference, 1000, emulator::READY_USER));
        if let Some(msn) = msn {
            call = call.msn(msn);
        }
        call.send()
    };
    let missing = create(None).await;
    assert_eq!(missing.status, 403);
    assert_eq!(missing.content_type, "application/problem+json");
    let v = missing.json();
    assert_eq!(v["title"], "Forbidden");
    assert_eq!(v["status"], 403);
    assert_eq!(
        v["detail"],
        "The Merchant-Serial-Number header is required when using partner keys."
    );
    for msn in [
        emulator::PRODUCTION_MSN,
        399_999,
        emulator::PRODUCTION_PARTNER_MSNS.end() + 1,
    ] {
        let not_connected = create(Some(msn)).await;
        assert_eq!(not_connected.status, 403);
        assert_eq!(
            not_connected.json()["detail"],
            "The sales unit (MSN) is not connected to this partner."
        );
    }
    // One token serves every connected MSN; payments belong to their MSN.
    assert_eq!(create(Some(400_001)).await.status, 201);
    assert_eq!(create(Some(400_999)).await.status, 201);
    let get = |msn: u64| {
        h.api(
            partner,
            &token,
            Method::GET,
            &format!("/epayment/v1/payments/{reference}"),
        )
        .msn(msn)
        .send()
    };
    assert_eq!(get(400_001).await.json()["state"], "AUTHORIZED");
    get(400_500)
        .await
        .assert_problem(404, "5090", "Reference not found");
    // A partner token fetched with an MSN works for the others too.
    let with_msn = h.token_for(partner, Some(400_002)).await;
    let answer = h
        .api(
            partner,
            &with_msn,
            Method::GET,
            &format!("/epayment/v1/payments/{reference}"),
        )
        .msn(400_001)
        .send()
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(h.emu.count(Endpoint::CreatePayment), 6);
}

#[tokio::test]
async fn login_only_merchants_cannot_use_epayment() {
    let h = Harness::new().await;
    for keys in [emulator::TEST_LOGIN_ONLY, emulator::PRODUCTION_LOGIN_ONLY] {
        let token = h.token(keys).await;
        h.create(
            keys,
            &token,
            &payment(&new_reference(), 1000, emulator::READY_USER),
        )
        .await
        .assert(
            403,
            "text/plain",
            "Merchant Not Allowed for Ecommerce Payment",
        );
    }
    assert_eq!(h.emu.count(Endpoint::CreatePayment), 2);
}

#[tokio::test]
async fn create_payment_validates_like_epayment() {
    let h = Harness::new().await;
    let keys = emulator::TEST_MERCHANT;
    let token = h.token(keys).await;
    let base = payment(&new_reference(), 1000, emulator::READY_USER);
    let with = |path: &[&str], value: Value| {
        let mut body = base.clone();
        let mut at = &mut body;
        for p in &path[..path.len() - 1] {
            at = &mut at[*p];
        }
        at[path[path.len() - 1]] = value;
        body
    };
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            with(&["amount", "value"], json!(10.5)),
            400,
            "4040",
            "Invalid amount",
        ),
        (
            // The schema allows 0; the API answers that it is too small.
            with(&["amount", "value"], json!(0)),
            400,
            "6010",
            "Amount too small",
        ),
        (
            with(&["amount", "value"], json!(-100)),
            400,
            "4040",
            "Invalid amount",
        ),
        (
            with(&["amount", "value"], json!("1000")),
            400,
            "4040",
            "Invalid amount",
        ),
        (
            with(&["amount", "value"], json!(99)),
            400,
            "6010",
            "Amount too small",
        ),
        (
            with(&["amount", "currency"], json!("DKK")),
            400,
            "5040",
            "Invalid currency for merchant",
        ),
        (
            with(&["amount", "currency"], json!("EUR")),
            400,
            "5040",
            "Invalid currency for merchant",
        ),
        (
            with(&["customer", "phoneNumber"], json!("+4791000001")),
            400,
            "4070",
            "Invalid phone number",
        ),
        (
            with(&["customer", "phoneNumber"], json!("91000001")),
            400,
            "4070",
            "Invalid phone number",
        ),
        (
            with(&["returnUrl"], json!("htt://example.com")),
            400,
            "4090",
            "Invalid URL",
        ),
        (
            with(&["returnUrl"], json!("http://example.com")),
            400,
            "4090",
            "Invalid URL",
        ),
        (
            with(&["customer", "phoneNumber"], json!(emulator::UNKNOWN_USER)),
            400,
            "7010",
            "Customer not found",
        ),
        (
            with(&["customer", "phoneNumber"], json!(emulator::UNDER_15_USER)),
            400,
            "7010",
            "Customer not found",
        ),
        (
            with(
                &["customer", "phoneNumber"],
                json!(emulator::NOT_LOGGED_IN_USER),
            ),
            400,
            "10020",
            "Not allowed",
        ),
    ];
    for (body, status, code, title) in &cases {
        // One reference for every case: past ePayment's 5 creates a minute per
        // reference, the real API (and the emulator) answers 429.
        h.emu.advance_clock(Duration::from_secs(60));
        h.create(keys, &token, body)
            .await
            .assert_problem(*status, code, title);
    }
    let url = h
        .create(
            keys,
            &token,
            &with(&["returnUrl"], json!("htt://example.com")),
        )
        .await;
    assert_eq!(
        url.json()["detail"],
        "The parameter htt://example.com is invalid."
    );
    assert_eq!(url.json()["instance"], "/v1/payments");
    let not_ready = h
        .create(
            keys,
            &token,
            &with(
                &["customer", "phoneNumber"],
                json!(emulator::NOT_LOGGED_IN_USER),
            ),
        )
        .await;
    let detail = not_ready.json()["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("logged in") && detail.contains("15 years old"),
        "{detail}"
    );

    // The reference: the corpus' invalid-field shape.
    let bad_ref = h
        .create(keys, &token, &with(&["reference"], json!("short")))
        .await;
    bad_ref.assert_problem(400, "", "Bad Request");
    assert_eq!(
        bad_ref.json()["detail"],
        "See extraDetails for further details"
    );
    assert_eq!(
        bad_ref.json()["extraDetails"],
        json!([{"name": "reference", "reason": "The field Reference must match the regular expression '^[a-zA-Z0-9-]{8,64}$'."}])
    );
    // Garbage bodies.
    for garbage in [&b"not json"[..], b"[1,2,3]", b"{\"amount\":", b"\xff\xfe"] {
        let answer = h
            .api(keys, &token, Method::POST, "/epayment/v1/payments")
            .key("garbage-1")
            .raw(Bytes::copy_from_slice(garbage))
            .send()
            .await;
        assert_eq!(answer.status, 400);
        assert_eq!(answer.content_type, "application/problem+json");
    }
    // http://localhost is fine in test.
    let local = h
        .create(
            keys,
            &token,
            &with(&["returnUrl"], json!("http://localhost:8080/back")),
        )
        .await;
    assert_eq!(local.status, 201, "{}", local.body);

    // Nothing invalid was stored.
    assert_eq!(
        h.emu.count(Endpoint::CreatePayment),
        cases.len() + 2 + 1 + 4 + 1
    );
}

#[tokio::test]
async fn idempotency_and_references() {
    let h = Harness::new().await;
    let keys = emulator::TEST_MERCHANT;
    let token = h.token(keys).await;
    let reference = new_reference();
    let send = |key: &str, body: &Value| {
        h.api(keys, &token, Method::POST, "/epayment/v1/payments")
            .key(key)
            .json(body)
            .send()
    };
    let body = payment(&reference, 1000, emulator::READY_USER);
    let first = send("49ca711a-acee-4d01-993b-9487112e1def", &body).await;
    assert_eq!(first.status, 201);
    assert_eq!(first.content_type, "application/json");
    assert_eq!(first.json()["reference"], reference.as_str());
    // The same key and body: the same answer, no second payment.
    let again = send("49ca711a-acee-4d01-993b-9487112e1def", &body).await;
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    // The same key, another body: 409, the corpus body.
    let other = payment(&reference, 2000, emulator::READY_USER);
    let conflict = send("49ca711a-acee-4d01-993b-9487112e1def", &other).await;
    conflict.assert_problem(409, "4020", "Idempotency error");
    assert_eq!(
        conflict.json()["detail"],
        "Idempotency-Key 49ca711a-acee-4d01-993b-9487112e1def already exists."
    );
    // A new key with a taken reference.
    send("another-key", &other)
        .await
        .assert_problem(409, "4150", "Reference already exists");
    // No key at all, or one too long.
    let no_key = h
        .api(keys, &token, Method::POST, "/epayment/v1/payments")
        .json(&payment(&new_reference(), 1000, emulator::READY_USER))
        .send()
        .await;
    no_key.assert_problem(400, "", "Bad Request");
    assert_eq!(no_key.json()["extraDetails"][0]["name"], "Idempotency-Key");
    send(
        &"k".repeat(51),
        &payment(&new_reference(), 1000, emulator::READY_USER),
    )
    .await
    .assert_problem(400, "", "Bad Request");

    // A capture retried with its key captures once.
    let capture = json!({"modificationAmount": {"value": 600, "currency": "NOK"}});
    let path = format!("/epayment/v1/payments/{reference}/capture");
    let cap = |body: &Value| {
        h.api(keys, &token, Method::POST, &path)
            .key("capture-1")
            .json(body)
            .send()
    };
    let one = cap(&capture).await;
    assert_eq!(one.status, 200, "{}", one.body);
    let two = cap(&capture).await;
    assert_eq!(two.body, one.body);
    assert_eq!(
        h.get(keys, &token, &reference).await.json()["aggregate"]["capturedAmount"]["value"],
        600
    );
    let conflict = cap(&json!({"modificationAmount": {"value": 100, "currency": "NOK"}})).await;
    conflict.assert_problem(409, "4020", "Idempotency error");
    assert_eq!(
        conflict.json()["instance"],
        format!("/v1/payments/{reference}/capture")
    );
    // Payments belong to an environment and an MSN.
    let prod = h.token(emulator::PRODUCTION_MERCHANT).await;
    h.get(emulator::PRODUCTION_MERCHANT, &prod, &reference)
        .await
        .assert_problem(404, "5090", "Reference not found");
}

#[tokio::test]
async fn capture_refund_cancel_follow_the_state_rules() {
    let h = Harness::new().await;
    let keys = emulator::TEST_MERCHANT;
    let token = h.token(keys).await;

    // A user who has not accepted yet: nothing to capture or refund.
    let waiting = new_reference();
    assert_eq!(
        h.create(
            keys,
            &token,
            &payment(&waiting, 1000, emulator::WAITING_USER)
        )
        .await
        .status,
        201
    );
    assert_eq!(
        h.get(keys, &token, &waiting).await.json()["state"],
        "CREATED"
    );
    h.modify(keys, &token, &waiting, "capture", 100)
        .await
        .assert_problem(400, "6080", "Cannot capture before reservation");
    h.modify(keys, &token, &waiting, "refund", 100)
        .await
        .assert_problem(400, "6020", "Attempted refund before reservation");
    // The test API approves it.
    let approve = h
        .api(
            keys,
            &token,
            Method::POST,
            &format!("/epayment/v1/test/payments/{waiting}/approve"),
        )
        .send()
        .await;
    assert_eq!(approve.status, 200, "{}", approve.body);
    assert_eq!(
        h.get(keys, &token, &waiting).await.json()["state"],
        "AUTHORIZED"
    );
    h.api(
        keys,
        &token,
        Method::POST,
        &format!("/epayment/v1/test/payments/{waiting}/approve"),
    )
    .send()
    .await
    .assert_problem(400, "10010", "Approve failed");

    // Capture at most authorized minus captured.
    assert_eq!(
        h.modify(keys, &token, &waiting, "capture", 600)
            .await
            .status,
        200
    );
    h.modify(keys, &token, &waiting, "capture", 401)
        .await
        .assert_problem(400, "6090", "Capture amount too high");
    let rest = h.modify(keys, &token, &waiting, "capture", 400).await;
    assert_eq!(rest.status, 200);
    assert_eq!(
        rest.json()["aggregate"]["capturedAmount"],
        json!({"currency": "NOK", "value": 1000})
    );
    h.modify(keys, &token, &waiting, "capture", 1)
        .await
        .assert_problem(400, "6090", "Capture amount too high");
    // Refund at most captured minus refunded.
    assert_eq!(
        h.modify(keys, &token, &waiting, "refund", 700).await.status,
        200
    );
    let too_much = h.modify(keys, &token, &waiting, "refund", 301).await;
    too_much.assert_problem(400, "6150", "Not enough refundable");
    assert_eq!(
        too_much.json()["detail"],
        "Cannot refund more than the available amount. Check the payment event log."
    );
    assert_eq!(
        h.modify(keys, &token, &waiting, "refund", 300).await.status,
        200
    );
    // No cancel after capture.
    let cancel = h
        .api(
            keys,
            &token,
            Method::POST,
            &format!("/epayment/v1/payments/{waiting}/cancel"),
        )
        .key("cancel-1")
        .send()
        .await;
    cancel.assert_problem(400, "6040", "Cannot cancel a captured payment");
    // A currency other than the payment's; a bad amount. (A minute later: four
    // refunds of this reference were made in this one, and the limit is five.)
    h.emu.advance_clock(Duration::from_secs(60));
    h.api(
        keys,
        &token,
        Method::POST,
        &format!("/epayment/v1/payments/{waiting}/refund"),
    )
    .key("refund-dkk")
    .json(&json!({"modificationAmount": {"value": 1, "currency": "DKK"}}))
    .send()
    .await
    .assert_problem(400, "5040", "Invalid currency for merchant");
    h.api(
        keys,
        &token,
        Method::POST,
        &format!("/epayment/v1/payments/{waiting}/refund"),
    )
    .key("refund-bad")
    .json(&json!({"modificationAmount": {"value": 1.5, "currency": "NOK"}}))
    .send()
    .await
    .assert_problem(400, "4040", "Invalid amount");

    let events = h
        .api(
            keys,
            &token,
            Method::GET,
            &format!("/epayment/v1/payments/{waiting}/events"),
        )
        .send()
        .await;
    assert_eq!(events.status, 200);
    let names: Vec<String> = events
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "CREATED",
            "AUTHORIZED",
            "CAPTURED",
            "CAPTURED",
            "REFUNDED",
            "REFUNDED"
        ]
    );
    assert!(
        events.json()[0]["timestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    // Cancel an authorized payment: it stays AUTHORIZED with `cancelledAmount`
    // changed (the cancel guide); it cannot be captured afterwards.
    let ready = new_reference();
    assert_eq!(
        h.create(keys, &token, &payment(&ready, 500, emulator::READY_USER))
            .await
            .status,
        201
    );
    let cancelled = h
        .api(
            keys,
            &token,
            Method::POST,
            &format!("/epayment/v1/payments/{ready}/cancel"),
        )
        .key("cancel-2")
        .send()
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.json()["state"], "AUTHORIZED");
    assert_eq!(
        cancelled.json()["aggregate"]["cancelledAmount"]["value"],
        500
    );
    h.modify(keys, &token, &ready, "capture", 100)
        .await
        .assert_problem(400, "6070", "Cannot capture a cancelled payment");
    // Unknown references.
    h.modify(keys, &token, "no-such-reference", "capture", 100)
        .await
        .assert_problem(404, "5090", "Reference not found");

    // Approving through the handle.
    let later = new_reference();
    assert_eq!(
        h.create(keys, &token, &payment(&later, 500, emulator::WAITING_USER))
            .await
            .status,
        201
    );
    let msn = keys.msn().unwrap();
    assert!(h.emu.approve(Test, msn, &later));
    assert!(!h.emu.approve(Test, msn, &later));
    assert!(!h.emu.approve(Production, msn, &later));
    assert_eq!(
        h.get(keys, &token, &later).await.json()["aggregate"]["authorizedAmount"]["value"],
        500
    );

    let counts = h.emu.counts();
    assert_eq!(counts.get(Endpoint::Capture), 7);
    assert_eq!(counts.get(Endpoint::Refund), 6);
    assert_eq!(counts.get(Endpoint::Cancel), 2);
    assert_eq!(counts.get(Endpoint::ForceApprove), 2);
    assert_eq!(counts.get(Endpoint::PaymentEvents), 1);
}

#[tokio::test]
async fn injected_faults_answer_like_the_gateway() {
    let h = Harness::new().await;
    let keys = emulator::TEST_MERCHANT;
    let faults = h.emu.faults();
    faults
        .rate_limit_next(Endpoint::AccessToken, 1, Duration::from_secs(42))
        .bad_gateway_next(Endpoint::AccessToken, 1)
        .fail_next(Endpoint::AccessToken, 1);
    assert_eq!(faults.pending(Endpoint::AccessToken), 3);
    let limited = h.token_call(Test, keys).send().await;
    limited.assert(
        429,
        "application/json",
        "{\"statusCode\": 429, \"message\": \"Rate limit is exceeded. Try again in 42 seconds.\"}",
    );
    assert_eq!(limited.headers["retry-after"], "42");
    h.token_call(Test, keys).send().await.assert(
        502,
        "text/html",
        "<html><body><h1>502 Bad Gateway</h1></body></html>",
    );
    let internal = h.token_call(Test, keys).send().await;
    internal.assert_problem(500, "3010", "Internal error");
    let token = h.token(keys).await;

    // Faults are per endpoint, used in order.
    faults.fail_next(Endpoint::CreatePayment, 1);
    let reference = new_reference();
    h.create(
        keys,
        &token,
        &payment(&reference, 1000, emulator::READY_USER),
    )
    .await
    .assert_problem(500, "3010", "Internal error");
    assert_eq!(
        h.create(
            keys,
            &token,
            &payment(&reference, 1000, emulator::READY_USER)
        )
        .await
        .status,
        201
    );

    // A dropped connection: counted, never answered.
    faults.drop_next(Endpoint::GetPayment, 1);
    let req = Request::get(format!(
        "{}/epayment/v1/payments/{reference}",
        h.emu.base_url(Test)
    ))
    .header("Ocp-Apim-Subscription-Key", keys.subscription_key())
    .header("Authorization", format!("Bearer {token}"))
    .body(Full::default())
    .unwrap();
    let err = h.client.request(req).await.unwrap_err();
    assert!(
        err.to_string().contains("connection") || format!("{err:?}").contains("Incomplete"),
        "{err:?}"
    );
    assert_eq!(h.get(keys, &token, &reference).await.status, 200);
    assert_eq!(h.emu.count(Endpoint::GetPayment), 2);
    let seen = h.emu.requests();
    let dropped: Vec<_> = seen
        .iter()
        .filter(|r| r.endpoint == Endpoint::GetPayment)
        .collect();
    assert_eq!(dropped[0].status, None);
    assert_eq!(dropped[1].status, Some(StatusCode::OK));

    // Connections closed at once: nothing reaches an endpoint.
    let before = h.emu.counts();
    faults.drop_connections(1);
    let fresh = common::client::<Full<Bytes>>();
    let req = Request::get(format!(
        "{}/epayment/v1/payments/{reference}",
        h.emu.base_url(Production)
    ))
    .body(Full::default())
    .unwrap();
    assert!(fresh.request(req).await.is_err());
    assert_eq!(h.emu.counts(), before);
    faults.clear();
    assert_eq!(faults.pending(Endpoint::AccessToken), 0);
}

#[tokio::test(start_paused = true)]
async fn slow_token_endpoint() {
    let h = Harness::new().await;
    h.emu.faults().token_delay(Duration::from_secs(30));
    let start = tokio::time::Instant::now();
    let token = h.token(emulator::TEST_MERCHANT).await;
    assert!(start.elapsed() >= Duration::from_secs(30));
    assert!(!token.is_empty());
    // Other endpoints are not slowed.
    h.emu.faults().token_delay(Duration::ZERO);
    let start = tokio::time::Instant::now();
    let _ = h.get(emulator::TEST_MERCHANT, &token, "whatever-123").await;
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn caps_garbage_and_unknown_paths() {
    let h = Harness::new().await;
    let keys = emulator::TEST_MERCHANT;
    let token = h.token(keys).await;
    let big = h
        .api(keys, &token, Method::POST, "/epayment/v1/payments")
        .key("big-1")
        .raw(vec![b'{'; emulator::REQUEST_BODY_CAP + 1])
        .send()
        .await;
    assert_eq!(big.status, 413);
    assert_eq!(big.content_type, "application/json");
    let unknown = h.call(Test, Method::GET, "/nothing/here").send().await;
    unknown.assert(
        404,
        "application/json",
        "{\"statusCode\": 404, \"message\": \"Resource not found\"}",
    );
    let wrong_method = h
        .call(Test, Method::DELETE, "/epayment/v1/payments/abcdefgh")
        .send()
        .await;
    assert_eq!(wrong_method.status, 404);
    let weird = h
        .call(Test, Method::GET, "/epayment/v1/payments/%00%ff")
        .keys(keys)
        .bearer(&token)
        .send()
        .await;
    weird.assert_problem(404, "5090", "Reference not found");
    let binary_key = h
        .call(Test, Method::GET, "/epayment/v1/payments/abcdefgh")
        .header_bytes("Ocp-Apim-Subscription-Key", b"\xff\xfe")
        .header_bytes("Authorization", b"Bearer \xff")
        .send()
        .await;
    assert_eq!(binary_key.status, 401);
    assert_eq!(h.emu.count(Endpoint::Other), 2);
    assert_eq!(h.emu.count(Endpoint::CreatePayment), 1);
    assert_eq!(h.emu.count(Endpoint::GetPayment), 2);
}

#[tokio::test]
async fn hosts_keyring_and_presets() {
    let h = Harness::new().await;
    let hosts = h.emu.hosts();
    for env in Environment::ALL {
        let uri: http::Uri = format!("{}/epayment/v1/payments", h.emu.base_url(env))
            .parse()
            .unwrap();
        assert_eq!(hosts.environment_of(&uri), Some(env));
    }
    let keyring = h.emu.keyring();
    assert_eq!(keyring.hosts(), &hosts);
    assert_eq!(keyring.key_sets().count(), 7);
    let found = keyring
        .find(Test, Some(emulator::TEST_MSN.try_into().unwrap()))
        .unwrap();
    assert_eq!(found.client_id(), emulator::TEST_MERCHANT.client_id());
    let partner = keyring
        .find(Production, Some(400_123.try_into().unwrap()))
        .unwrap();
    assert!(partner.is_partner());
    assert!(
        keyring
            .find(Test, Some(300_123.try_into().unwrap()))
            .is_none()
    );
    assert_eq!(emulator::PRODUCTION_PARTNER.connected_msns().count(), 1000);
    assert_eq!(h.emu.merchant(Production), emulator::PRODUCTION_MERCHANT);
    assert_eq!(h.emu.partner(), emulator::PRODUCTION_PARTNER);
    assert_eq!(h.emu.login_only(Test), emulator::TEST_LOGIN_ONLY);

    // Extra keys.
    let msn: tower_vipps::Msn = "777777".parse().unwrap();
    let extra =
        tower_vipps::KeySet::merchant(Test, msn, "extra-id", "extra-secret", "extra-sub-key")
            .unwrap();
    let emu = Emulator::builder().key_set(extra).start().await.unwrap();
    let client = common::client::<Full<Bytes>>();
    let req = Request::post(format!("{}/accesstoken/get", emu.base_url(Test)))
        .header("client_id", "extra-id")
        .header("client_secret", "extra-secret")
        .header("Ocp-Apim-Subscription-Key", "extra-sub-key")
        .body(Full::default())
        .unwrap();
    assert_eq!(client.request(req).await.unwrap().status(), 200);
}

#[tokio::test]
async fn the_request_log_keeps_no_secret_in_debug() {
    let h = Harness::new().await;
    let keys = emulator::TEST_MERCHANT;
    let token = h.token(keys).await;
    let _ = h.get(keys, &token, "abcdefgh-1").await;
    let seen = h.emu.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].endpoint, Endpoint::AccessToken);
    assert_eq!(seen[1].path, "/epayment/v1/payments/abcdefgh-1");
    let out = format!("{seen:?} {:?} {:?}", h.emu, keys);
    assert!(!out.contains(keys.client_secret()));
    assert!(!out.contains(keys.subscription_key()));
    assert!(!out.contains(&token));
    h.emu.reset_counts();
    assert_eq!(h.emu.counts().total(), 0);
    assert!(h.emu.requests().is_empty());
}

#[tokio::test]
async fn shutdown_and_drop_stop_listening() {
    let emu = Emulator::start().await.unwrap();
    let addrs = [emu.addr(Test), emu.addr(Production)];
    let client = common::client::<Full<Bytes>>();
    // A kept-alive connection does not hold up the shutdown.
    let res = client
        .request(
            Request::get(format!("{}/x", emu.base_url(Test)))
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    emu.shutdown().await;
    for addr in addrs {
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
    let emu = Emulator::start().await.unwrap();
    let addr = emu.addr(Production);
    drop(emu);
    tokio::task::yield_now().await;
    let mut refused = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(refused);
}

#[tokio::test]
async fn garbage_never_breaks_it() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let h = Harness::new().await;
    let keys = emulator::TEST_MERCHANT;
    let token = h.token(keys).await;
    // Not HTTP at all.
    for junk in [
        &b"\x00\x01\x02garbage\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /accesstoken/get HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
    ] {
        let mut stream = tokio::net::TcpStream::connect(h.emu.addr(Test))
            .await
            .unwrap();
        stream.write_all(junk).await.unwrap();
        let mut buf = Vec::new();
        let _ = stream.read_to_end(&mut buf).await;
    }
    // Random bodies and headers on every endpoint.
    let mut rng = fastrand::Rng::with_seed(7);
    let paths = [
        "/accesstoken/get",
        "/epayment/v1/payments",
        "/epayment/v1/payments/abcdefgh-1",
        "/epayment/v1/payments/abcdefgh-1/events",
        "/epayment/v1/payments/abcdefgh-1/capture",
        "/epayment/v1/payments/abcdefgh-1/refund",
        "/epayment/v1/payments/abcdefgh-1/cancel",
        "/epayment/v1/test/payments/abcdefgh-1/approve",
    ];
    let jsonish: [&[u8]; 6] = [
        b"{\"amount\":{\"value\":1e400,\"currency\":\"NOK\"}}",
        b"{\"modificationAmount\":{\"value\":18446744073709551616,\"currency\":\"NOK\"}}",
        b"{\"modificationAmount\":null}",
        b"{\"reference\":[],\"amount\":\"x\"}",
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        b"",
    ];
    for i in 0..200 {
        let path = paths[rng.usize(..paths.len())];
        let method = if rng.bool() {
            Method::POST
        } else {
            Method::GET
        };
        let body: Vec<u8> = if i % 2 == 0 {
            jsonish[rng.usize(..jsonish.len())].to_vec()
        } else {
            (0..rng.usize(..300)).map(|_| rng.u8(..)).collect()
        };
        let mut call = h.call(Test, method, path).raw(body);
        if rng.bool() {
            call = call.keys(keys).bearer(&token);
        }
        if rng.bool() {
            call = call.header_bytes("Merchant-Serial-Number", &[rng.u8(0x80..)]);
        }
        if rng.bool() {
            call = call.key(&format!("k{i}"));
        }
        let answer = call.send().await;
        assert!(
            answer.status.as_u16() >= 200 && answer.status.as_u16() < 500,
            "{}",
            answer.body
        );
    }
    // Still answering.
    assert_eq!(h.token(keys).await.split('.').count(), 3);
}

#[test]
fn handles_are_send_and_sync() {
    fn is<T: Send + Sync + 'static>() {}
    is::<Emulator>();
    is::<emulator::Faults>();
    is::<emulator::Counts>();
    is::<emulator::SeenRequest>();
    is::<Credentials>();
}

/// The Order Management API v2 (specification 2.1): a receipt once, a category
/// replaced, the order read back; the spec's `ErrorResponse` for the rest.
#[tokio::test]
async fn order_management_receipts_categories_and_orders() {
    let h = Harness::new().await;
    let keys = emulator::TEST_MERCHANT;
    let token = h.token(keys).await;
    let reference = h.paid(keys, &token).await;
    let receipt = json!({
        "orderLines": [{
            "name": "socks", "id": "line_item_1", "totalAmount": 1000,
            "totalAmountExcludingTax": 800, "totalTaxAmount": 200, "taxRate": 2500,
            "unitInfo": {"unitPrice": 400, "quantity": "2.5", "quantityUnit": "KG"}
        }],
        "bottomLine": {"currency": "NOK", "posId": "pos_122"}
    });
    let call =
        |method: Method, path: String| h.api(keys, &token, method, &path).msn(emulator::TEST_MSN);
    let receipts = format!("/order-management/v2/ECOM/receipts/{reference}");
    let first = call(Method::POST, receipts.clone())
        .json(&receipt)
        .send()
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert!(uuid::Uuid::parse_str(first.json().as_str().unwrap()).is_ok());
    // Once only.
    let again = call(Method::POST, receipts.clone())
        .json(&receipt)
        .send()
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(again.content_type, "application/json");
    assert!(again.json()["instance"].is_string());
    // A category, then another: the latest is kept. `ecom` in lower case too.
    for category in ["GENERAL", "RECEIPT"] {
        let put = call(
            Method::PUT,
            format!("/order-management/v2/ecom/categories/{reference}"),
        )
        .json(&json!({"category": category, "orderDetailsUrl": "https://example.com/orders/1"}))
        .send()
        .await;
        assert_eq!(put.status, 200, "{}", put.body);
    }
    let order = call(
        Method::GET,
        format!("/order-management/v2/ECOM/{reference}"),
    )
    .send()
    .await;
    assert_eq!(order.status, 200, "{}", order.body);
    let order = order.json();
    assert_eq!(order["category"]["category"], "RECEIPT");
    assert_eq!(order["receipt"], receipt);
    // An order that does not exist, for this MSN: 404.
    let unknown = call(
        Method::POST,
        "/order-management/v2/ECOM/receipts/no-such-order".into(),
    )
    .json(&receipt)
    .send()
    .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    // What the spec refuses: 400 naming the field.
    let mut bad = receipt.clone();
    bad["orderLines"][0]["unitInfo"]["quantity"] = json!("2,5");
    let other = h.paid(keys, &token).await;
    let refused = call(
        Method::POST,
        format!("/order-management/v2/ECOM/receipts/{other}"),
    )
    .json(&bad)
    .send()
    .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    let v = refused.json();
    assert_eq!(v["title"], "One or more validation errors occurred.");
    assert_eq!(
        v["invalidParams"][0]["name"],
        "orderLines[0].unitInfo.quantity"
    );
    let wrong_type = call(
        Method::GET,
        format!("/order-management/v2/CARD/{reference}"),
    )
    .send()
    .await;
    assert_eq!(wrong_type.status, 400, "{}", wrong_type.body);
    // Without a token: the same 401 as every access-token API.
    let anonymous = h
        .call(
            Test,
            Method::GET,
            &format!("/order-management/v2/ECOM/{reference}"),
        )
        .keys(keys)
        .msn(emulator::TEST_MSN)
        .send()
        .await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
}
