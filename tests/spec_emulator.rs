//! The emulator's ePayment, Recurring v3 and eCom v2 answers validate against the
//! schemas of the official specifications (`tests/data/specs/`, with
//! `jsonschema`); its cancel, metadata and user-flow behaviour follow the ePayment
//! guide, its agreements and charges the Recurring guide; and every error body of
//! the Recurring and eCom emulation is classified to its cause.
#![cfg(feature = "emulator")]

mod common;

mod emulator_follows_the_spec {
    use bytes::Bytes;
    use http::Method;
    use http_body_util::{BodyExt, Full};
    use serde_json::{Value, json};
    use tower_vipps::Environment::Test;
    use tower_vipps::diagnose::classify;
    use tower_vipps::emulator::{self, Emulator};
    use tower_vipps::{Api, Cause, RequestContext};

    use super::common;

    fn spec(name: &str) -> Value {
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
                for (flag, bound) in [("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")] {
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

    struct Schemas {
        doc: Value,
    }

    impl Schemas {
        /// A spec other than ePayment's, with its known errors fixed.
        fn of(name: &str) -> Schemas {
            let mut doc = spec(name);
            // recurring.yaml: `ChargeResponseV3.transactionId` has the pattern
            // `^\d{10+}$` (meant: ten digits or more), which is no regex.
            if let Some(tid) = doc["components"]["schemas"]["ChargeResponseV3"]["properties"]
                ["transactionId"]
                .as_object_mut()
            {
                tid.insert("pattern".into(), json!("^\\d{10,}$"));
            }
            openapi_to_json_schema(&mut doc);
            Schemas { doc }
        }

        fn new() -> Schemas {
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
        fn response(&self, path: &str, method: &str, status: &str) -> Value {
            let mut r = &self.doc["paths"][path][method]["responses"][status];
            if let Some(name) = r.get("$ref").and_then(Value::as_str) {
                r = &self.doc["components"]["responses"][name.rsplit('/').next().unwrap()];
            }
            let content = r["content"].as_object().expect("content");
            content.values().next().unwrap()["schema"].clone()
        }

        fn errors(&self, schema: Value, instance: &Value) -> Vec<String> {
            let mut root = schema;
            root["components"] = self.doc["components"].clone();
            let validator = jsonschema::validator_for(&root).expect("schema compiles");
            validator
                .iter_errors(instance)
                .map(|e| format!("{e} at {}", e.instance_path))
                .collect()
        }

        fn assert_valid(&self, what: &str, schema: Value, instance: &Value) {
            let errors = self.errors(schema, instance);
            assert!(
                errors.is_empty(),
                "{what}: {instance}\n{}",
                errors.join("\n")
            );
        }
    }

    struct Client {
        emu: Emulator,
        http: hyper_util::client::legacy::Client<
            hyper_util::client::legacy::connect::HttpConnector,
            Full<Bytes>,
        >,
        token: String,
    }

    impl Client {
        async fn new() -> Client {
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

        async fn send(
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

    impl Client {
        /// Creates a WEB_REDIRECT payment for `user`, then cancels it.
        async fn create_and_cancel(&self, user: &str) -> (u16, Value) {
            let r = reference();
            let body = create(&r, "WEB_REDIRECT", user);
            let (status, answer) = self.send(Method::POST, PAYMENTS, Some(&body), &[]).await;
            assert_eq!(status, 201, "{answer}");
            self.send(Method::POST, &format!("{PAYMENTS}/{r}/cancel"), None, &[])
                .await
        }
    }

    fn create(reference: &str, flow: &str, phone: &str) -> Value {
        json!({
            "amount": {"value": 1000, "currency": "NOK"},
            "paymentMethod": {"type": "WALLET"},
            "customer": {"phoneNumber": phone},
            "reference": reference,
            "returnUrl": "https://example.com/return",
            "userFlow": flow,
            "paymentDescription": "One pair of socks",
        })
    }

    fn reference() -> String {
        format!("order-{}", uuid::Uuid::new_v4().simple())
    }

    const PAYMENTS: &str = "/epayment/v1/payments";
    const ONE: &str = "/epayment/v1/payments/{reference}";

    #[tokio::test]
    async fn every_answer_validates_and_the_guide_is_followed() {
        let s = Schemas::new();
        let c = Client::new().await;
        let created = s.response(PAYMENTS, "post", "201");
        let adjusted = s.response(&format!("{ONE}/capture"), "post", "200");
        let problem = s.response(&format!("{ONE}/capture"), "post", "400");
        // The check can fail: answers off the schema are caught.
        assert!(
            !s.errors(created.clone(), &json!({"redirectUrl": "x"}))
                .is_empty()
        );
        assert!(
            !s.errors(
                s.response(ONE, "get", "200"),
                &json!({"state": "PAID", "reference": "acme-shop-123"})
            )
            .is_empty()
        );

        // WEB_REDIRECT with metadata, a user who accepts at once.
        let r = reference();
        let mut body = create(&r, "WEB_REDIRECT", emulator::READY_USER);
        body["metadata"] = json!({"location": "Q-Park Magasin du Nord", "date": "2025-06-05"});
        let (status, answer) = c.send(Method::POST, PAYMENTS, Some(&body), &[]).await;
        assert_eq!(status, 201, "{answer}");
        s.assert_valid("create WEB_REDIRECT", created.clone(), &answer);
        let path = format!("{PAYMENTS}/{r}");
        let (status, got) = c.send(Method::GET, &path, None, &[]).await;
        assert_eq!(status, 200);
        s.assert_valid("get", s.response(ONE, "get", "200"), &got);
        // The metadata guide: what was sent is returned on GET.
        assert_eq!(got["metadata"], body["metadata"]);
        assert_eq!(got["state"], "AUTHORIZED");

        // Capture part, then cancel: allowed until fully captured, releases the
        // rest, and the payment stays AUTHORIZED (the cancel guide).
        let capture = json!({"modificationAmount": {"value": 300, "currency": "NOK"}});
        let (status, answer) = c
            .send(
                Method::POST,
                &format!("{path}/capture"),
                Some(&capture),
                &[],
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        s.assert_valid("capture", adjusted.clone(), &answer);
        let (status, answer) = c
            .send(Method::POST, &format!("{path}/cancel"), None, &[])
            .await;
        assert_eq!(status, 200, "{answer}");
        s.assert_valid(
            "cancel",
            s.response(&format!("{ONE}/cancel"), "post", "200"),
            &answer,
        );
        assert_eq!(answer["state"], "AUTHORIZED");
        assert_eq!(answer["aggregate"]["cancelledAmount"]["value"], 700);
        assert_eq!(answer["aggregate"]["capturedAmount"]["value"], 300);
        let refund = json!({"modificationAmount": {"value": 100, "currency": "NOK"}});
        let (status, answer) = c
            .send(Method::POST, &format!("{path}/refund"), Some(&refund), &[])
            .await;
        assert_eq!(status, 200, "{answer}");
        s.assert_valid(
            "refund",
            s.response(&format!("{ONE}/refund"), "post", "200"),
            &answer,
        );
        let (status, events) = c
            .send(Method::GET, &format!("{path}/events"), None, &[])
            .await;
        assert_eq!(status, 200);
        s.assert_valid(
            "events",
            s.response(&format!("{ONE}/events"), "get", "200"),
            &events,
        );
        // A capture after the cancel is refused, with a problem body.
        let (status, answer) = c
            .send(
                Method::POST,
                &format!("{path}/capture"),
                Some(&capture),
                &[],
            )
            .await;
        assert_eq!(status, 400, "{answer}");
        s.assert_valid("capture after cancel", problem.clone(), &answer);

        // Cancel an AUTHORIZED payment with nothing captured: still AUTHORIZED.
        let (status, answer) = c.create_and_cancel(emulator::READY_USER).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["state"], "AUTHORIZED");
        assert_eq!(answer["aggregate"]["cancelledAmount"]["value"], 1000);

        // Cancel before authorization: TERMINATED, the whole amount cancelled.
        let (status, answer) = c.create_and_cancel(emulator::WAITING_USER).await;
        assert_eq!(status, 200, "{answer}");
        s.assert_valid("cancel before authorization", adjusted.clone(), &answer);
        assert_eq!(answer["state"], "TERMINATED");
        assert_eq!(answer["aggregate"]["cancelledAmount"]["value"], 1000);

        // NATIVE_REDIRECT with an app's scheme.
        let r = reference();
        let mut native = create(&r, "NATIVE_REDIRECT", emulator::WAITING_USER);
        native["returnUrl"] = json!("myapp://payment/return");
        let (status, answer) = c.send(Method::POST, PAYMENTS, Some(&native), &[]).await;
        assert_eq!(status, 201, "{answer}");
        s.assert_valid("create NATIVE_REDIRECT", created.clone(), &answer);

        // PUSH_MESSAGE: no landing-page redirect.
        let r = reference();
        let mut push = create(&r, "PUSH_MESSAGE", emulator::WAITING_USER);
        push.as_object_mut().unwrap().remove("returnUrl");
        let (status, answer) = c.send(Method::POST, PAYMENTS, Some(&push), &[]).await;
        assert_eq!(status, 201, "{answer}");
        s.assert_valid("create PUSH_MESSAGE", created.clone(), &answer);
        assert!(answer.get("redirectUrl").is_none(), "{answer}");
        // The test approve, then the GET of a payment without a redirect.
        let (status, _) = c
            .send(
                Method::POST,
                &format!("/epayment/v1/test/payments/{r}/approve"),
                None,
                &[],
            )
            .await;
        assert_eq!(status, 200);
        let (_, got) = c
            .send(Method::GET, &format!("{PAYMENTS}/{r}"), None, &[])
            .await;
        s.assert_valid("get PUSH_MESSAGE", s.response(ONE, "get", "200"), &got);
        assert_eq!(got["state"], "AUTHORIZED");

        // QR: the QR code's URL, not the landing page.
        let r = reference();
        let mut qr = create(&r, "QR", emulator::WAITING_USER);
        qr.as_object_mut().unwrap().remove("customer");
        qr["qrFormat"] = json!({"format": "TEXT/TARGETURL"});
        let (status, answer) = c.send(Method::POST, PAYMENTS, Some(&qr), &[]).await;
        assert_eq!(status, 201, "{answer}");
        s.assert_valid("create QR", created, &answer);
        let url = answer["redirectUrl"].as_str().unwrap();
        assert!(!url.contains("/landing"), "{url}");

        // An unknown reference: a problem body of the spec's shape.
        let (status, answer) = c
            .send(
                Method::GET,
                &format!("{PAYMENTS}/no-such-reference"),
                None,
                &[],
            )
            .await;
        assert_eq!(status, 404, "{answer}");
        s.assert_valid("not found", problem, &answer);
    }

    /// `YYYY-MM-DD`, `days` from today (UTC).
    fn date_in(days: i64) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        // Howard Hinnant's civil_from_days.
        let z = now.div_euclid(86_400) + days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        format!("{year:04}-{month:02}-{day:02}")
    }

    /// The cause `tower_vipps` diagnoses for an answer of `api`.
    fn cause(api: Api, status: u16, body: &Value) -> Cause {
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

    const AGREEMENTS: &str = "/recurring/v3/agreements";
    const AGREEMENT: &str = "/recurring/v3/agreements/{agreementId}";
    const CHARGE: &str = "/recurring/v3/agreements/{agreementId}/charges/{chargeId}";

    fn draft() -> Value {
        json!({
            "pricing": {"type": "LEGACY", "amount": 2500, "currency": "NOK"},
            "interval": {"unit": "MONTH", "count": 1},
            "merchantRedirectUrl": "https://example.com/redirect",
            "merchantAgreementUrl": "https://example.com/agreement",
            "phoneNumber": "4791234567",
            "productName": "MyNews Digital",
            "initialCharge": {
                "amount": 2500,
                "currency": "NOK",
                "description": "Initial Charge",
                "transactionType": "DIRECT_CAPTURE",
            },
        })
    }

    fn charge(due: &str) -> Value {
        json!({
            "amount": 2500,
            "transactionType": "DIRECT_CAPTURE",
            "description": "October",
            "due": due,
            "retryDays": 5,
        })
    }

    #[tokio::test]
    async fn recurring_answers_validate_and_follow_the_guide() {
        let s = Schemas::of("recurring.yaml");
        let c = Client::new().await;
        let error = s.response(AGREEMENTS, "post", "default");
        // The checks can fail.
        assert!(
            !s.errors(s.response(AGREEMENTS, "post", "201"), &json!({"agreementId": 1}))
                .is_empty()
        );
        let mut errors = Vec::new();
        let mut check = |what: &str, status: u16, body: &Value, expected: Cause| {
            s.assert_valid(what, error.clone(), body);
            assert!(
                body["type"]
                    .as_str()
                    .unwrap()
                    .starts_with("https://developer.vippsmobilepay.com/docs/APIs/recurring-api/recurring-api-problems#"),
                "{what}: {body}"
            );
            assert!(body["contextId"].is_string(), "{what}: {body}");
            errors.push((what.to_owned(), cause(Api::Recurring, status, body), expected));
        };

        // A draft with an initial charge: PENDING, the charge's id given.
        let (status, created) = c.send(Method::POST, AGREEMENTS, Some(&draft()), &[]).await;
        assert_eq!(status, 201, "{created}");
        s.assert_valid("draft", s.response(AGREEMENTS, "post", "201"), &created);
        let id = created["agreementId"].as_str().unwrap().to_owned();
        let initial = created["chargeId"].as_str().unwrap().to_owned();
        assert!(created["vippsConfirmationUrl"].as_str().unwrap().starts_with("http"));
        let one = format!("{AGREEMENTS}/{id}");
        let (status, got) = c.send(Method::GET, &one, None, &[]).await;
        assert_eq!(status, 200, "{got}");
        s.assert_valid("get pending", s.response(AGREEMENT, "get", "200"), &got);
        assert_eq!((got["status"].as_str(), got["start"].is_null()), (Some("PENDING"), true));
        assert_eq!(got["uuid"], created["uuid"]);

        // A charge on a PENDING agreement is refused.
        let charges = format!("{one}/charges");
        let (status, answer) = c
            .send(Method::POST, &charges, Some(&charge(&date_in(3))), &[])
            .await;
        assert_eq!(status, 400, "{answer}");
        check("charge on pending", status, &answer, Cause::AgreementNotActive);

        // The test environment's force accept: ACTIVE, the initial charge CHARGED.
        let accept = format!("{one}/accept");
        let phone = json!({"phoneNumber": "4791234567"});
        let (status, answer) = c.send(Method::PATCH, &accept, Some(&phone), &[]).await;
        assert_eq!(status, 204, "{answer}");
        let (_, got) = c.send(Method::GET, &one, None, &[]).await;
        s.assert_valid("get active", s.response(AGREEMENT, "get", "200"), &got);
        assert_eq!(got["status"], "ACTIVE");
        assert!(got["start"].is_string());
        let (status, got) = c
            .send(Method::GET, &format!("{charges}/{initial}"), None, &[])
            .await;
        assert_eq!(status, 200, "{got}");
        s.assert_valid("initial charge", s.response(CHARGE, "get", "200"), &got);
        assert_eq!((got["status"].as_str(), got["type"].as_str()), (Some("CHARGED"), Some("INITIAL")));
        // Accepting again is an illegal update.
        let (status, answer) = c.send(Method::PATCH, &accept, Some(&phone), &[]).await;
        assert_eq!(status, 400, "{answer}");
        check("accept twice", status, &answer, Cause::AgreementNotActive);

        // A charge, its idempotent replay, and the same key with another body.
        let key = [("Idempotency-Key", "charge-october-1")];
        let body = charge(&date_in(3));
        let (status, first) = c.send(Method::POST, &charges, Some(&body), &key).await;
        assert_eq!(status, 201, "{first}");
        s.assert_valid(
            "charge",
            s.response(&format!("{AGREEMENT}/charges"), "post", "201"),
            &first,
        );
        let (status, again) = c.send(Method::POST, &charges, Some(&body), &key).await;
        assert_eq!((status, &again), (201, &first));
        let (status, answer) = c
            .send(Method::POST, &charges, Some(&charge(&date_in(4))), &key)
            .await;
        assert_eq!(status, 409, "{answer}");
        check("idempotency conflict", status, &answer, Cause::IdempotencyConflict);
        let charge_id = first["chargeId"].as_str().unwrap();
        let (status, got) = c
            .send(Method::GET, &format!("{charges}/{charge_id}"), None, &[])
            .await;
        assert_eq!(status, 200, "{got}");
        s.assert_valid("charge", s.response(CHARGE, "get", "200"), &got);
        assert_eq!((got["status"].as_str(), got["retryDays"].as_u64()), (Some("PENDING"), Some(5)));
        assert_eq!(got["history"][0]["idempotencyKey"], "charge-october-1");
        // An orderId is the chargeId.
        let mut with_order = charge(&date_in(5));
        with_order["orderId"] = json!("acme-chg-01");
        let (status, answer) = c.send(Method::POST, &charges, Some(&with_order), &[]).await;
        assert_eq!((status, answer["chargeId"].as_str()), (201, Some("acme-chg-01")));

        // The due date: not today, not beyond two years.
        let (status, answer) = c
            .send(Method::POST, &charges, Some(&charge(&date_in(0))), &[])
            .await;
        assert_eq!(status, 400, "{answer}");
        check("due today", status, &answer, Cause::InvalidField);
        let (status, answer) = c
            .send(Method::POST, &charges, Some(&charge(&date_in(800))), &[])
            .await;
        assert_eq!(status, 400, "{answer}");
        check("due in 800 days", status, &answer, Cause::InvalidField);
        let (status, answer) = c
            .send(Method::POST, &charges, Some(&charge("31.12.2030")), &[])
            .await;
        assert_eq!(status, 400, "{answer}");
        check("due not a date", status, &answer, Cause::InvalidField);
        let mut low = charge(&date_in(3));
        low["amount"] = json!(99);
        let (status, answer) = c.send(Method::POST, &charges, Some(&low), &[]).await;
        assert_eq!(status, 400, "{answer}");
        check("charge amount 99", status, &answer, Cause::InvalidAmount);

        // No Idempotency-Key; a key too long.
        let (status, answer) = c
            .send(Method::POST, &charges, Some(&body), &[("Idempotency-Key", "")])
            .await;
        assert_eq!(status, 400, "{answer}");
        check("no Idempotency-Key", status, &answer, Cause::MissingIdempotencyKey);
        let long = "k".repeat(41);
        let (status, answer) = c
            .send(Method::POST, &charges, Some(&body), &[("Idempotency-Key", &long)])
            .await;
        assert_eq!(status, 400, "{answer}");
        check("Idempotency-Key of 41", status, &answer, Cause::MissingIdempotencyKey);

        // Drafts the spec refuses.
        let mut cheap = draft();
        cheap["pricing"]["amount"] = json!(50);
        let (status, answer) = c.send(Method::POST, AGREEMENTS, Some(&cheap), &[]).await;
        assert_eq!(status, 400, "{answer}");
        check("price 50", status, &answer, Cause::InvalidAmount);
        let mut http_url = draft();
        http_url["merchantAgreementUrl"] = json!("http://example.com/agreement");
        let (status, answer) = c.send(Method::POST, AGREEMENTS, Some(&http_url), &[]).await;
        assert_eq!(status, 400, "{answer}");
        check("agreement URL http", status, &answer, Cause::InvalidUrl);
        let mut long_name = draft();
        long_name["productName"] = json!("n".repeat(46));
        let (status, answer) = c.send(Method::POST, AGREEMENTS, Some(&long_name), &[]).await;
        assert_eq!(status, 400, "{answer}");
        check("product name of 46", status, &answer, Cause::InvalidField);
        let (status, answer) = c
            .send(Method::POST, AGREEMENTS, Some(&json!("not an object")), &[])
            .await;
        assert_eq!(status, 400, "{answer}");
        check("body a string", status, &answer, Cause::InvalidField);
        // An app's deeplink as the redirect is allowed.
        let mut app = draft();
        app["merchantRedirectUrl"] = json!("myapp://home");
        let (status, answer) = c.send(Method::POST, AGREEMENTS, Some(&app), &[]).await;
        assert_eq!(status, 201, "{answer}");

        // Unknown agreement and charge.
        let (status, answer) = c
            .send(Method::GET, &format!("{AGREEMENTS}/agr_unknown"), None, &[])
            .await;
        assert_eq!(status, 404, "{answer}");
        check("unknown agreement", status, &answer, Cause::ReferenceNotFound);
        let (status, answer) = c
            .send(Method::GET, &format!("{charges}/chr_unknown"), None, &[])
            .await;
        assert_eq!(status, 404, "{answer}");
        check("unknown charge", status, &answer, Cause::ReferenceNotFound);

        // VARIABLE: the user's maximum bounds each charge.
        let mut variable = draft();
        variable["pricing"] = json!({"type": "VARIABLE", "suggestedMaxAmount": 3000, "currency": "NOK"});
        variable.as_object_mut().unwrap().remove("initialCharge");
        let (status, created) = c.send(Method::POST, AGREEMENTS, Some(&variable), &[]).await;
        assert_eq!(status, 201, "{created}");
        assert!(created["chargeId"].is_null());
        let vid = created["agreementId"].as_str().unwrap();
        assert!(c.emu.accept_agreement(Test, tower_vipps::Msn::new(emulator::TEST_MSN).unwrap(), vid));
        let (_, got) = c.send(Method::GET, &format!("{AGREEMENTS}/{vid}"), None, &[]).await;
        s.assert_valid("get variable", s.response(AGREEMENT, "get", "200"), &got);
        assert_eq!(got["pricing"]["maxAmount"], 3000);
        let mut high = charge(&date_in(3));
        high["amount"] = json!(3001);
        let (status, answer) = c
            .send(Method::POST, &format!("{AGREEMENTS}/{vid}/charges"), Some(&high), &[])
            .await;
        assert_eq!(status, 400, "{answer}");
        check("above maxAmount", status, &answer, Cause::ChargeAmountTooHigh);

        drop(check);
        let wrong: Vec<_> = errors
            .iter()
            .filter(|(_, got, expected)| got != expected)
            .collect();
        assert!(wrong.is_empty(), "{wrong:?}");
        assert!(errors.iter().all(|(_, got, _)| *got != Cause::Unknown));
    }

    const ECOM: &str = "/ecomm/v2/payments";
    const ECOM_ONE: &str = "/ecomm/v2/payments/{orderId}";

    fn initiate(order_id: &str, mobile: Option<&str>) -> Value {
        let mut body = json!({
            "customerInfo": {},
            "merchantInfo": {
                "callbackPrefix": "https://example.com/vipps",
                "fallBack": "https://example.com/fallback",
                "merchantSerialNumber": emulator::TEST_MSN.to_string(),
            },
            "transaction": {"amount": 20000, "orderId": order_id, "transactionText": "One pair of socks"},
        });
        if let Some(m) = mobile {
            body["customerInfo"]["mobileNumber"] = json!(m);
        }
        body
    }

    fn action(amount: Option<u64>) -> Value {
        let mut body = json!({
            "merchantInfo": {"merchantSerialNumber": emulator::TEST_MSN.to_string()},
            "transaction": {"transactionText": "Shipped"},
        });
        if let Some(a) = amount {
            body["transaction"]["amount"] = json!(a);
        }
        body
    }

    #[tokio::test]
    async fn ecom_answers_validate_and_errors_are_arrays() {
        let s = Schemas::of("ecom-v2.yaml");
        let c = Client::new().await;
        let error = s.response(ECOM, "post", "default");
        let ready = &emulator::READY_USER[2..];
        let waiting = &emulator::WAITING_USER[2..];
        let mut errors = Vec::new();
        let mut check = |what: &str, status: u16, body: &Value, expected: Cause| {
            s.assert_valid(what, error.clone(), body);
            let first = &body[0];
            assert!(
                first["errorGroup"].is_string() && first["errorCode"].is_string() && first["contextId"].is_string(),
                "{what}: {body}"
            );
            errors.push((what.to_owned(), cause(Api::ECom, status, body), expected));
        };

        // Reserved at once (the ready user): details, partial capture, replay.
        let (status, answer) = c
            .send(Method::POST, ECOM, Some(&initiate("acme-ecom-1", Some(ready))), &[])
            .await;
        assert_eq!(status, 200, "{answer}");
        s.assert_valid("initiate", s.response(ECOM, "post", "200"), &answer);
        assert_eq!(answer["orderId"], "acme-ecom-1");
        let one = format!("{ECOM}/acme-ecom-1");
        let (status, got) = c.send(Method::GET, &format!("{one}/details"), None, &[]).await;
        assert_eq!(status, 200, "{got}");
        s.assert_valid("details", s.response(&format!("{ECOM_ONE}/details"), "get", "200"), &got);
        assert_eq!(got["transactionLogHistory"][0]["operation"], "RESERVE");
        let capture = format!("{one}/capture");
        let rid = [("X-Request-Id", "capture-1")];
        let (status, first) = c.send(Method::POST, &capture, Some(&action(Some(5000))), &rid).await;
        assert_eq!(status, 200, "{first}");
        s.assert_valid("capture", s.response(&format!("{ECOM_ONE}/capture"), "post", "200"), &first);
        assert_eq!(first["transactionSummary"]["remainingAmountToCapture"], 15000);
        let (status, again) = c.send(Method::POST, &capture, Some(&action(Some(5000))), &rid).await;
        assert_eq!((status, &again), (200, &first));
        let (status, answer) = c.send(Method::POST, &capture, Some(&action(Some(6000))), &rid).await;
        assert_eq!(status, 409, "{answer}");
        check("X-Request-Id reused", status, &answer, Cause::IdempotencyConflict);
        let (status, answer) = c.send(Method::POST, &capture, Some(&action(Some(1000))), &[]).await;
        assert_eq!(status, 400, "{answer}");
        check("partial capture without X-Request-Id", status, &answer, Cause::InvalidField);
        let (status, answer) = c
            .send(Method::POST, &capture, Some(&action(Some(15001))), &[("X-Request-Id", "capture-2")])
            .await;
        assert_eq!(status, 400, "{answer}");
        check("capture above reserved", status, &answer, Cause::CaptureExceedsReserved);

        // Refunds.
        let refund = format!("{one}/refund");
        let (status, answer) = c
            .send(Method::POST, &refund, Some(&action(Some(5001))), &[("X-Request-Id", "refund-1")])
            .await;
        assert_eq!(status, 400, "{answer}");
        check("refund above captured", status, &answer, Cause::RefundExceedsCaptured);
        let (status, answer) = c
            .send(Method::POST, &refund, Some(&action(Some(2000))), &[("X-Request-Id", "refund-2")])
            .await;
        assert_eq!(status, 200, "{answer}");
        s.assert_valid("refund", s.response(&format!("{ECOM_ONE}/refund"), "post", "200"), &answer);
        assert_eq!(answer["transactionSummary"]["remainingAmountToRefund"], 3000);
        let (status, answer) = c
            .send(Method::PUT, &format!("{one}/cancel"), Some(&action(None)), &[])
            .await;
        assert_eq!(status, 400, "{answer}");
        check("cancel after capture", status, &answer, Cause::InvalidPaymentState);

        // Waiting for the user: capture before approval, then the test approve.
        let (status, _) = c
            .send(Method::POST, ECOM, Some(&initiate("acme-ecom-2", Some(waiting))), &[])
            .await;
        assert_eq!(status, 200);
        let two = format!("{ECOM}/acme-ecom-2");
        let (status, answer) = c.send(Method::POST, &format!("{two}/capture"), Some(&action(None)), &[]).await;
        assert_eq!(status, 400, "{answer}");
        check("capture before reservation", status, &answer, Cause::CaptureBeforeReservation);
        let (status, answer) = c.send(Method::POST, &format!("{two}/refund"), Some(&action(None)), &[]).await;
        assert_eq!(status, 400, "{answer}");
        check("refund before capture", status, &answer, Cause::InvalidPaymentState);
        let (status, _) = c
            .send(
                Method::POST,
                "/ecomm/v2/integration-test/payments/acme-ecom-2/approve",
                Some(&json!({"customerPhoneNumber": waiting})),
                &[],
            )
            .await;
        assert_eq!(status, 200);
        let (status, answer) = c.send(Method::POST, &format!("{two}/capture"), Some(&action(None)), &[]).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["transactionInfo"]["amount"], 20000);

        // Cancel before the user answers; the Emulator's approve on a cancelled one.
        let (status, _) = c
            .send(Method::POST, ECOM, Some(&initiate("acme-ecom-3", None)), &[])
            .await;
        assert_eq!(status, 200);
        let (status, answer) = c
            .send(Method::PUT, &format!("{ECOM}/acme-ecom-3/cancel"), Some(&action(None)), &[])
            .await;
        assert_eq!(status, 200, "{answer}");
        s.assert_valid("cancel", s.response(&format!("{ECOM_ONE}/cancel"), "put", "200"), &answer);
        let msn = tower_vipps::Msn::new(emulator::TEST_MSN).unwrap();
        assert!(!c.emu.approve_ecom(Test, msn, "acme-ecom-3"));

        // Initiations the API refuses.
        let (status, answer) = c
            .send(Method::POST, ECOM, Some(&initiate("acme-ecom-1", Some(ready))), &[])
            .await;
        assert_eq!(status, 400, "{answer}");
        check("orderId taken", status, &answer, Cause::IdempotencyConflict);
        let mut other_msn = initiate("acme-ecom-4", Some(ready));
        other_msn["merchantInfo"]["merchantSerialNumber"] = json!("654321");
        let (status, answer) = c.send(Method::POST, ECOM, Some(&other_msn), &[]).await;
        assert_eq!(status, 400, "{answer}");
        check("body MSN another", status, &answer, Cause::NotAllowedForMerchant);
        let (status, answer) = c
            .send(Method::POST, ECOM, Some(&initiate("acme-ecom-5", Some("99999999"))), &[])
            .await;
        assert_eq!(status, 400, "{answer}");
        check("user unknown", status, &answer, Cause::UserUnknown);
        let (status, answer) = c
            .send(Method::POST, ECOM, Some(&initiate("acme-ecom-6", Some("004712345678"))), &[])
            .await;
        assert_eq!(status, 400, "{answer}");
        check("mobile number 0047", status, &answer, Cause::InvalidPhoneNumber);
        let mut http_callback = initiate("acme-ecom-7", None);
        http_callback["merchantInfo"]["callbackPrefix"] = json!("http://example.com/vipps");
        let (status, answer) = c.send(Method::POST, ECOM, Some(&http_callback), &[]).await;
        assert_eq!(status, 400, "{answer}");
        check("callbackPrefix http", status, &answer, Cause::InvalidUrl);
        let mut small = initiate("acme-ecom-8", None);
        small["transaction"]["amount"] = json!(99);
        let (status, answer) = c.send(Method::POST, ECOM, Some(&small), &[]).await;
        assert_eq!(status, 400, "{answer}");
        check("amount 99", status, &answer, Cause::InvalidAmount);
        let (status, answer) = c
            .send(Method::POST, ECOM, Some(&initiate("not a valid id!", None)), &[])
            .await;
        assert_eq!(status, 400, "{answer}");
        check("orderId invalid", status, &answer, Cause::InvalidReference);
        let (status, answer) = c
            .send(Method::GET, &format!("{ECOM}/acme-no-such/details"), None, &[])
            .await;
        assert_eq!(status, 400, "{answer}");
        check("unknown orderId", status, &answer, Cause::ReferenceNotFound);

        drop(check);
        let wrong: Vec<_> = errors
            .iter()
            .filter(|(_, got, expected)| got != expected)
            .collect();
        assert!(wrong.is_empty(), "{wrong:?}");
    }
}
