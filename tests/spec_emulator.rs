//! The emulator's ePayment, Recurring v3 and eCom v2 answers validate against the
//! schemas of the official specifications (`tests/data/specs/`, with
//! `jsonschema`); its cancel, metadata and user-flow behaviour follow the ePayment
//! guide, its agreements and charges the Recurring guide; and every error body of
//! the Recurring and eCom emulation is classified to its cause.
#![cfg(feature = "emulator")]

mod common;
mod emulator_spec;

mod emulator_follows_the_spec {
    use http::Method;
    use serde_json::{Value, json};
    use tower_vipps::emulator;

    use super::emulator_spec::{Client, Schemas};

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
        // `Metadata`: keys of at most 100 characters, values of at most 500, as
        // Preflight counts them; one over is a 400.
        for (key, value, status) in [
            ("k".repeat(100), "v".repeat(500), 201),
            ("k".repeat(100), "ø".repeat(500), 201),
            ("k".repeat(101), "v".to_owned(), 400),
            ("k".to_owned(), "v".repeat(501), 400),
        ] {
            let mut body = create(&reference(), "WEB_REDIRECT", emulator::READY_USER);
            body["metadata"] = json!({ key.clone(): value.clone() });
            let (got, answer) = c.send(Method::POST, PAYMENTS, Some(&body), &[]).await;
            assert_eq!(
                got,
                status,
                "key {} value {}: {answer}",
                key.len(),
                value.len()
            );
        }

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
}
