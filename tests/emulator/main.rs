//! The emulator answers like the Vipps MobilePay API, over real HTTP on loopback.
#![cfg(feature = "emulator")]

#[path = "../common/mod.rs"]
mod common;
mod epayment;
mod gateway;
mod lifecycle;
mod login;
mod management;
mod order_management;
mod report;
mod token;

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
