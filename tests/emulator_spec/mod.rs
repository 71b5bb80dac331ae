//! What the spec tests of the emulator share: the specifications as JSON Schema
//! ([`Schemas`]), a client with a merchant token ([`Client`]), dates and the
//! diagnosis of an answer; and the Recurring and eCom tests.

pub mod ecom;
pub mod recurring;

use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tower_vipps::Environment::Test;
use tower_vipps::diagnose::classify;
use tower_vipps::emulator::{self, Emulator};
use tower_vipps::{Api, Cause, RequestContext};

use crate::common;

pub fn spec(name: &str) -> Value {
    let path = format!("{}/tests/data/specs/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// OpenAPI 3.0 to JSON Schema: `nullable: true` becomes a `null` alternative,
/// boolean exclusive bounds become numbers;
/// references outside the document (the order-management receipt) are
/// dropped.
fn openapi_to_json_schema(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for child in map.values_mut() {
                openapi_to_json_schema(child);
            }
            if map
                .get("$ref")
                .and_then(Value::as_str)
                .is_some_and(|r| !r.starts_with('#'))
            {
                map.clear();
                return;
            }
            // OpenAPI 3.0's boolean `exclusiveMinimum`/`exclusiveMaximum`
            // qualify `minimum`/`maximum`; JSON Schema's are the bounds.
            for (flag, bound) in [
                ("exclusiveMinimum", "minimum"),
                ("exclusiveMaximum", "maximum"),
            ] {
                if let Some(Value::Bool(exclusive)) = map.get(flag).cloned() {
                    map.remove(flag);
                    if exclusive {
                        if let Some(b) = map.remove(bound) {
                            map.insert(flag.into(), b);
                        }
                    }
                }
            }
            if map.remove("nullable") == Some(Value::Bool(true)) {
                let inner = Value::Object(std::mem::take(map));
                map.insert("anyOf".into(), json!([inner, {"type": "null"}]));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(openapi_to_json_schema),
        _ => {}
    }
}

pub struct Schemas {
    pub doc: Value,
}

impl Schemas {
    /// A spec other than ePayment's, with its known errors fixed.
    pub fn of(name: &str) -> Schemas {
        let mut doc = spec(name);
        // recurring.yaml: `ChargeResponseV3.transactionId` has the pattern
        // `^\d{10+}$` (meant: ten digits or more), which is no regex.
        if let Some(tid) =
            doc["components"]["schemas"]["ChargeResponseV3"]["properties"]["transactionId"]
                .as_object_mut()
        {
            tid.insert("pattern".into(), json!("^\\d{10,}$"));
        }
        openapi_to_json_schema(&mut doc);
        Schemas { doc }
    }

    pub fn new() -> Schemas {
        let mut doc = spec("epayment.v1.yml");
        // Known errors of the spec (see its README): events still require
        // `paymentAction`, removed in 1.2.1.
        if let Some(required) =
            doc["components"]["schemas"]["PaymentEvent"]["required"].as_array_mut()
        {
            required.retain(|r| r != "paymentAction");
        }
        openapi_to_json_schema(&mut doc);
        Schemas { doc }
    }

    /// The schema of an operation's answer: `path`, `method`, `status`.
    pub fn response(&self, path: &str, method: &str, status: &str) -> Value {
        let mut r = &self.doc["paths"][path][method]["responses"][status];
        if let Some(name) = r.get("$ref").and_then(Value::as_str) {
            r = &self.doc["components"]["responses"][name.rsplit('/').next().unwrap()];
        }
        let content = r["content"].as_object().expect("content");
        content.values().next().unwrap()["schema"].clone()
    }

    pub fn errors(&self, schema: Value, instance: &Value) -> Vec<String> {
        let mut root = schema;
        root["components"] = self.doc["components"].clone();
        let validator = jsonschema::validator_for(&root).expect("schema compiles");
        validator
            .iter_errors(instance)
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect()
    }

    pub fn assert_valid(&self, what: &str, schema: Value, instance: &Value) {
        let errors = self.errors(schema, instance);
        assert!(
            errors.is_empty(),
            "{what}: {instance}\n{}",
            errors.join("\n")
        );
    }
}

pub struct Client {
    pub emu: Emulator,
    pub http: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
    pub token: String,
}

impl Client {
    pub async fn new() -> Client {
        let emu = Emulator::start().await.unwrap();
        let mut c = Client {
            emu,
            http: common::client(),
            token: String::new(),
        };
        let keys = emulator::TEST_MERCHANT;
        let (status, body) = c
            .send(
                Method::POST,
                "/accesstoken/get",
                None,
                &[
                    ("client_id", keys.client_id()),
                    ("client_secret", keys.client_secret()),
                ],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        c.token = body["access_token"].as_str().unwrap().to_owned();
        c
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        extra: &[(&str, &str)],
    ) -> (u16, Value) {
        let keys = emulator::TEST_MERCHANT;
        let mut b = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.emu.base_url(Test)))
            .header("Ocp-Apim-Subscription-Key", keys.subscription_key())
            .header("Merchant-Serial-Number", keys.msn().unwrap().to_string());
        // A key of the caller's own replaces the fresh one; an empty one
        // means none.
        if !extra
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("Idempotency-Key"))
        {
            b = b.header("Idempotency-Key", uuid::Uuid::new_v4().to_string());
        }
        if !self.token.is_empty() {
            b = b.header("Authorization", format!("Bearer {}", self.token));
        }
        for (k, v) in extra.iter().filter(|(_, v)| !v.is_empty()) {
            b = b.header(*k, *v);
        }
        let bytes = body
            .map(|v| serde_json::to_vec(v).unwrap())
            .unwrap_or_default();
        let res = self
            .http
            .request(b.body(Full::new(Bytes::from(bytes))).unwrap())
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)
                .unwrap_or(Value::String(String::from_utf8_lossy(&body).into_owned()))
        };
        (status, value)
    }
}

/// An Order Management receipt (`docs/swagger.yaml` of the API, version 2.1).
pub fn receipt() -> Value {
    json!({
        "orderLines": [{
            "name": "socks", "id": "line_item_1", "totalAmount": 2500,
            "totalAmountExcludingTax": 2000, "totalTaxAmount": 500, "taxRate": 2500,
            "unitInfo": {"unitPrice": 2500, "quantity": "1", "quantityUnit": "PCS"}
        }],
        "bottomLine": {"currency": "NOK", "posId": "pos_122"}
    })
}

/// The cause `tower_vipps` diagnoses for an answer of `api`.
pub fn cause(api: Api, status: u16, body: &Value) -> Cause {
    let context = RequestContext {
        api,
        ..Default::default()
    };
    classify(
        &context,
        http::StatusCode::from_u16(status).unwrap(),
        &http::HeaderMap::new(),
        body.to_string().as_bytes(),
    )
    .cause()
}

pub use crate::common::date_in;
