//! End to end, per API of `tower_vipps::api::APIS`: a valid request through the
//! preset stack (`tower_vipps::layer` over hyper, and `VippsMiddleware` in reqwest)
//! reaches the emulator with exactly the headers its API takes, asserted header by
//! header on the emulator's request log, and gets the API's success body (ePayment,
//! Checkout, Login, Recurring v3, eCom v2, Webhooks); and one classic mistake per
//! API is refused unsent or diagnosed, with its cause.
#![cfg(all(feature = "emulator", feature = "reqwest"))]

mod common;

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tower::{Layer, ServiceExt};
use tower_vipps::Environment::{self, Production, Test};
use tower_vipps::emulator::{self, Emulator, Endpoint, READY_USER, SeenRequest, TEST_MERCHANT};
use tower_vipps::reqwest::{VippsMiddleware, into_vipps_error};
use tower_vipps::{Cause, VippsError};

const MSN: u64 = emulator::TEST_MSN;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Tower,
    Reqwest,
}

type Answer = Result<(StatusCode, Value), VippsError>;

/// The user's client on one path: the preset stack, the emulator's keys.
struct Client {
    path: Path,
    emu: Arc<Emulator>,
    tower: tower_vipps::VippsService<
        HyperClient<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    >,
    reqwest: reqwest_middleware::ClientWithMiddleware,
}

impl Client {
    async fn new(path: Path) -> Client {
        let emu = Arc::new(Emulator::start().await.unwrap());
        let keyring = emu.keyring();
        let hyper = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let reqwest = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(VippsMiddleware::new(keyring.clone(), reqwest::Client::builder()).unwrap())
            .build();
        Client {
            path,
            tower: tower_vipps::layer(keyring).layer(hyper),
            reqwest,
            emu,
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Answer {
        self.send_in(Test, method, path, headers, body).await
    }

    /// [`Client::send`] to another environment's host.
    async fn send_in(
        &self,
        env: Environment,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Answer {
        let url = format!("{}{}", self.emu.base_url(env), path);
        match self.path {
            Path::Tower => {
                let mut b = Request::builder().method(method).uri(url);
                for (n, v) in headers {
                    b = b.header(*n, *v);
                }
                let body = Full::new(Bytes::from(body.unwrap_or("").to_owned()));
                let response = self.tower.clone().oneshot(b.body(body).unwrap()).await?;
                let status = response.status();
                let bytes = response.into_body().collect().await.unwrap().to_bytes();
                Ok((
                    status,
                    serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                ))
            }
            Path::Reqwest => {
                let mut b = self.reqwest.request(method, url);
                for (n, v) in headers {
                    b = b.header(*n, *v);
                }
                if let Some(body) = body {
                    b = b.body(body.to_owned());
                }
                match b.send().await {
                    Ok(response) => {
                        let status = response.status();
                        let bytes = response.bytes().await.unwrap();
                        Ok((
                            status,
                            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                        ))
                    }
                    Err(err) => Err(into_vipps_error(err).unwrap()),
                }
            }
        }
    }

    /// The last request the emulator saw on this path.
    fn seen(&self, path: &str) -> SeenRequest {
        self.emu
            .requests()
            .into_iter()
            .rev()
            .find(|r| r.path == path)
            .unwrap_or_else(|| panic!("the emulator saw no {path}"))
    }
}

fn has(headers: &HeaderMap, name: &str) -> bool {
    headers.contains_key(name)
}

fn value<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
}

/// The headers an access-token API takes: Bearer, the key set's subscription key,
/// the MSN, the system headers; no client credentials.
fn assert_access_token_headers(seen: &SeenRequest, idempotency: bool) {
    let h = &seen.headers;
    assert!(value(h, "authorization").starts_with("Bearer ey"), "{h:?}");
    assert_eq!(
        value(h, "ocp-apim-subscription-key"),
        TEST_MERCHANT.subscription_key()
    );
    assert_eq!(value(h, "merchant-serial-number"), MSN.to_string());
    assert!(has(h, "vipps-system-name"));
    assert!(!has(h, "client_id") && !has(h, "client_secret"), "{h:?}");
    assert_eq!(
        has(h, "idempotency-key"),
        idempotency,
        "{} {h:?}",
        seen.path
    );
}

/// The user's own headers arrived as they were written, and nothing was added.
fn assert_untouched(seen: &SeenRequest, sent: &[(&str, &str)]) {
    for (name, v) in sent {
        assert_eq!(value(&seen.headers, name), *v, "{name}");
    }
    for name in [
        "ocp-apim-subscription-key",
        "merchant-serial-number",
        "idempotency-key",
        "vipps-system-name",
        "client_id",
        "client_secret",
    ] {
        if !sent.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            assert!(
                !has(&seen.headers, name),
                "{name} was added: {:?}",
                seen.headers
            );
        }
    }
    if !sent
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("authorization"))
    {
        assert!(!has(&seen.headers, "authorization"));
    }
}

const CHECKOUT_SESSION: &str = r#"{"merchantInfo":{"callbackUrl":"https://example.com/cb","returnUrl":"https://example.com/return","callbackAuthorizationToken":"c172ad8d-9499-41d4-b8ff-c689be6455e9"},"transaction":{"amount":{"value":2000,"currency":"NOK"},"reference":"acme-checkout-0001","paymentDescription":"One pair of socks"}}"#;

async fn every_api(path: Path) {
    let c = Client::new(path).await;
    let msn = MSN.to_string();
    let with_msn: &[(&str, &str)] = &[
        ("Merchant-Serial-Number", &msn),
        ("Content-Type", "application/json"),
    ];

    // ePayment: access token, subscription key, MSN, Idempotency-Key.
    let create = json!({
        "amount": {"value": 49900, "currency": "NOK"},
        "paymentMethod": {"type": "WALLET"},
        "customer": {"phoneNumber": READY_USER},
        "reference": "acme-apis-0001",
        "returnUrl": "https://example.com/return",
        "userFlow": "WEB_REDIRECT",
        "paymentDescription": "socks",
    })
    .to_string();
    let (status, _) = c
        .send(
            Method::POST,
            "/epayment/v1/payments",
            with_msn,
            Some(&create),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{path:?}");
    assert_access_token_headers(&c.seen("/epayment/v1/payments"), true);
    // Mistake: a phone number with `+` is refused unsent.
    let bad = create.replace(READY_USER, &format!("+{READY_USER}"));
    let err = c
        .send(Method::POST, "/epayment/v1/payments", with_msn, Some(&bad))
        .await
        .unwrap_err();
    assert!(err.is_refused(), "{err}");
    assert_eq!(err.cause(), Cause::InvalidPhoneNumber);

    // Checkout v3: client_id, client_secret, subscription key, MSN; no token.
    let tokens_before = c.emu.count(Endpoint::AccessToken);
    let (status, body) = c
        .send(
            Method::POST,
            "/checkout/v3/session",
            with_msn,
            Some(CHECKOUT_SESSION),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{path:?} {body}");
    assert!(
        body["pollingUrl"]
            .as_str()
            .unwrap()
            .ends_with("/checkout/v3/session/acme-checkout-0001")
    );
    let seen = c.seen("/checkout/v3/session");
    let h = &seen.headers;
    assert_eq!(value(h, "client_id"), TEST_MERCHANT.client_id());
    assert_eq!(value(h, "client_secret"), TEST_MERCHANT.client_secret());
    assert!(h.get("client_secret").unwrap().is_sensitive());
    assert_eq!(
        value(h, "ocp-apim-subscription-key"),
        TEST_MERCHANT.subscription_key()
    );
    assert_eq!(value(h, "merchant-serial-number"), msn);
    assert!(has(h, "idempotency-key") && has(h, "vipps-system-name"));
    assert!(!has(h, "authorization"), "{h:?}");
    let get = "/checkout/v3/session/acme-checkout-0001";
    let (status, body) = c.send(Method::GET, get, with_msn, None).await.unwrap();
    assert_eq!(
        (status.as_u16(), body["sessionState"].as_str()),
        (200, Some("SessionCreated"))
    );
    assert!(!has(&c.seen(get).headers, "authorization"));
    assert_eq!(
        c.emu.count(Endpoint::AccessToken),
        tokens_before,
        "no token for Checkout"
    );
    // Mistake: the same reference twice is a 409, diagnosed with its body kept.
    let err = c
        .send(
            Method::POST,
            "/checkout/v3/session",
            with_msn,
            Some(CHECKOUT_SESSION),
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::CONFLICT));
    assert!(String::from_utf8_lossy(err.body().unwrap()).contains("DuplicateReference"));

    // Login discovery: nothing added.
    let discovery = "/access-management-1.0/access/.well-known/openid-configuration";
    let (status, body) = c.send(Method::GET, discovery, &[], None).await.unwrap();
    assert_eq!(status, 200);
    assert!(
        body["token_endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/oauth2/token")
    );
    assert_untouched(&c.seen(discovery), &[]);

    // Login token endpoint: the client's own Basic credentials, byte for byte.
    let token_path = "/access-management-1.0/access/oauth2/token";
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            TEST_MERCHANT.client_id(),
            TEST_MERCHANT.client_secret()
        ))
    );
    let code = c.emu.login_code(Test, TEST_MERCHANT.client_id());
    let form = format!(
        "grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Fexample.com%2Flogin"
    );
    let sent = [
        ("Authorization", basic.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let (status, body) = c
        .send(Method::POST, token_path, &sent, Some(&form))
        .await
        .unwrap();
    assert_eq!(status, 200, "{path:?} {body}");
    assert_untouched(&c.seen(token_path), &sent);
    let user_token = body["access_token"].as_str().unwrap().to_owned();
    // Mistake: the code again (single use) is the OIDC `invalid_grant`, diagnosed.
    let err = c
        .send(Method::POST, token_path, &sent, Some(&form))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
    assert!(String::from_utf8_lossy(err.body().unwrap()).contains("invalid_grant"));

    // Userinfo: the user's token, byte for byte.
    let userinfo = "/access-management-1.0/access/userinfo";
    let bearer = format!("Bearer {user_token}");
    let sent = [("Authorization", bearer.as_str())];
    let (status, body) = c.send(Method::GET, userinfo, &sent, None).await.unwrap();
    assert_eq!(
        (status.as_u16(), body["given_name"].as_str()),
        (200, Some("Ada"))
    );
    assert_untouched(&c.seen(userinfo), &sent);
    // Mistake: no user token is `request_unauthorized`, diagnosed.
    let err = c.send(Method::GET, userinfo, &[], None).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));

    // A user's own access token request: untouched.
    let sent = [
        ("client_id", TEST_MERCHANT.client_id()),
        ("client_secret", TEST_MERCHANT.client_secret()),
        (
            "Ocp-Apim-Subscription-Key",
            TEST_MERCHANT.subscription_key(),
        ),
    ];
    let (status, body) = c
        .send(Method::POST, "/accesstoken/get", &sent, Some(""))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(body["access_token"].is_string());
    assert_untouched(&c.seen("/accesstoken/get"), &sent);

    // eCom v2: access token, no Idempotency-Key (eCom's is `X-Request-Id`).
    // The ready test user: reserved at once.
    let ready = &READY_USER[2..];
    let ecom_initiate = |order_id: &str, mobile: &str| {
        format!(
            r#"{{"customerInfo":{{"mobileNumber":"{mobile}"}},"merchantInfo":{{"callbackPrefix":"https://example.com/vipps","fallBack":"https://example.com/fallback","merchantSerialNumber":"{MSN}"}},"transaction":{{"amount":20000,"orderId":"{order_id}","transactionText":"socks"}}}}"#
        )
    };
    let initiate = ecom_initiate("acme-ecom-0001", ready);
    let (status, body) = c
        .send(
            Method::POST,
            "/ecomm/v2/payments",
            with_msn,
            Some(&initiate),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{path:?} {body}");
    assert_eq!(body["orderId"], "acme-ecom-0001");
    assert!(body["url"].as_str().unwrap().starts_with("http"));
    assert_access_token_headers(&c.seen("/ecomm/v2/payments"), false);
    let capture_body = format!(
        r#"{{"merchantInfo":{{"merchantSerialNumber":"{MSN}"}},"transaction":{{"amount":5000,"transactionText":"shipped"}}}}"#
    );
    let with_request_id: &[(&str, &str)] = &[
        ("Merchant-Serial-Number", &msn),
        ("Content-Type", "application/json"),
        ("X-Request-Id", "acme-capture-1"),
    ];
    let capture = "/ecomm/v2/payments/acme-ecom-0001/capture";
    let (status, body) = c
        .send(Method::POST, capture, with_request_id, Some(&capture_body))
        .await
        .unwrap();
    assert_eq!(status, 200, "{path:?} {body}");
    assert_eq!(body["transactionInfo"]["status"], "Captured");
    assert_eq!(body["transactionSummary"]["capturedAmount"], 5000);
    let seen = c.seen(capture);
    assert_access_token_headers(&seen, false);
    assert_eq!(value(&seen.headers, "x-request-id"), "acme-capture-1");
    let details = "/ecomm/v2/payments/acme-ecom-0001/details";
    let (status, body) = c.send(Method::GET, details, with_msn, None).await.unwrap();
    assert_eq!(status, 200, "{path:?} {body}");
    assert_eq!(body["transactionLogHistory"][0]["operation"], "CAPTURE");
    assert_access_token_headers(&c.seen(details), false);
    // Mistake: the body's MSN is another than the header's: refused unsent.
    let other = initiate.replace(&MSN.to_string(), "654321");
    let err = c
        .send(Method::POST, "/ecomm/v2/payments", with_msn, Some(&other))
        .await
        .unwrap_err();
    assert!(err.is_refused(), "{err}");
    assert_eq!(err.cause(), Cause::MsnHeaderBodyMismatch);
    // Mistake: capture before the user approved: the emulator's array body,
    // diagnosed and kept.
    let waiting = ecom_initiate("acme-ecom-0002", &emulator::WAITING_USER[2..]);
    let (status, _) = c
        .send(Method::POST, "/ecomm/v2/payments", with_msn, Some(&waiting))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let err = c
        .send(
            Method::POST,
            "/ecomm/v2/payments/acme-ecom-0002/capture",
            with_request_id,
            Some(&capture_body),
        )
        .await
        .unwrap_err();
    assert!(!err.is_refused(), "{err}");
    assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
    assert_eq!(err.cause(), Cause::CaptureBeforeReservation, "{err}");
    let kept: Value = serde_json::from_slice(err.body().unwrap()).unwrap();
    assert_eq!(
        (
            kept[0]["errorGroup"].as_str(),
            kept[0]["errorCode"].as_str()
        ),
        (Some("Payment"), Some("62"))
    );

    // Recurring v3: access token and Idempotency-Key on the POSTs.
    let agreements = "/recurring/v3/agreements";
    let (status, body) = c
        .send(Method::POST, agreements, with_msn, Some(RECURRING_DRAFT))
        .await
        .unwrap();
    assert_eq!(status, 201, "{path:?} {body}");
    assert_access_token_headers(&c.seen(agreements), true);
    let agreement_id = body["agreementId"].as_str().unwrap().to_owned();
    assert!(agreement_id.starts_with("agr_"));
    assert!(body["vippsConfirmationUrl"].is_string());
    let one = format!("{agreements}/{agreement_id}");
    let (status, body) = c.send(Method::GET, &one, with_msn, None).await.unwrap();
    assert_eq!(
        (status.as_u16(), body["status"].as_str()),
        (200, Some("PENDING"))
    );
    assert_access_token_headers(&c.seen(&one), false);
    // Mistake: a charge on an agreement the user has not accepted yet: the
    // emulator's problem, diagnosed and kept.
    let charges = format!("{one}/charges");
    let charge = r#"{"amount":49900,"transactionType":"DIRECT_CAPTURE","description":"October","due":"2099-01-01","retryDays":5}"#;
    let soon = charge.replace("2099-01-01", &common::date_in(7));
    let err = c
        .send(Method::POST, &charges, with_msn, Some(&soon))
        .await
        .unwrap_err();
    assert!(!err.is_refused(), "{err}");
    assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
    assert_eq!(err.cause(), Cause::AgreementNotActive, "{err}");
    assert!(String::from_utf8_lossy(err.body().unwrap()).contains("charge-creation-failed"));
    assert_access_token_headers(&c.seen(&charges), true);
    // Once accepted, a charge due a week ahead is created; one due in 2099 is
    // beyond the two years the API takes.
    assert!(
        c.emu
            .accept_agreement(Test, tower_vipps::Msn::new(MSN).unwrap(), &agreement_id)
    );
    let err = c
        .send(Method::POST, &charges, with_msn, Some(charge))
        .await
        .unwrap_err();
    assert_eq!(err.cause(), Cause::InvalidField, "{err}");
    assert!(String::from_utf8_lossy(err.body().unwrap()).contains("charge-due-in-too-long"));
    let (status, body) = c
        .send(Method::POST, &charges, with_msn, Some(&soon))
        .await
        .unwrap();
    assert_eq!(status, 201, "{path:?} {body}");
    assert!(body["chargeId"].is_string());
    assert_access_token_headers(&c.seen(&charges), true);

    // Order Management: access token and Idempotency-Key; a receipt for the
    // ePayment payment above.
    let receipt = "/order-management/v2/ecom/receipts/acme-apis-0001";
    let (status, body) = c
        .send(Method::POST, receipt, with_msn, Some(OM_RECEIPT))
        .await
        .unwrap();
    assert_eq!(status, 201, "{path:?} {body}");
    assert!(body.as_str().is_some_and(|id| id.len() == 36), "{body}");
    assert_access_token_headers(&c.seen(receipt), true);
    // Mistake: the MSN in a header named like the body field: refused unsent.
    let misspelled: &[(&str, &str)] = &[
        ("merchantSerialNumber", &msn),
        ("Content-Type", "application/json"),
    ];
    let before = c.emu.counts().total();
    let err = c
        .send(Method::POST, receipt, misspelled, Some("{}"))
        .await
        .unwrap_err();
    assert!(err.is_refused(), "{err}");
    assert_eq!(err.cause(), Cause::MsnHeaderMisspelled);
    assert_eq!(c.emu.counts().total(), before, "nothing sent");

    // Webhooks: access token, no Idempotency-Key.
    let webhooks = "/webhooks/v1/webhooks";
    let (status, body) = c
        .send(Method::POST, webhooks, with_msn, Some(WEBHOOK_REGISTRATION))
        .await
        .unwrap();
    assert_eq!(status, 201, "{path:?} {body}");
    assert!(body["id"].is_string() && body["secret"].is_string());
    assert_access_token_headers(&c.seen(webhooks), false);
    // Mistake: a plain `http://` URL for the deliveries: the emulator's 400,
    // diagnosed with its body kept.
    let plain = WEBHOOK_REGISTRATION.replace("https://", "http://");
    let err = c
        .send(Method::POST, webhooks, with_msn, Some(&plain))
        .await
        .unwrap_err();
    assert!(!err.is_refused(), "{err}");
    assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
    assert_eq!(err.cause(), Cause::InvalidUrl, "{err}");
    assert!(String::from_utf8_lossy(err.body().unwrap()).contains("\"url\""));

    // Management: access token and subscription key; a caller's own token stands.
    let sales_unit = format!("/management/v1/sales-units/{MSN}");
    let (status, body) = c
        .send(Method::GET, &sales_unit, with_msn, None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{path:?} {body}");
    assert_eq!(body["msn"], MSN.to_string());
    assert_access_token_headers(&c.seen(&sales_unit), false);
    // Mistake: the caller's own token with the scheme in lower case: refused unsent.
    let before = c.emu.counts().total();
    let err = c
        .send(
            Method::GET,
            &sales_unit,
            &[("Authorization", "bearer eyJhbGciOiJub25lIn0.e30.c2ln")],
            None,
        )
        .await
        .unwrap_err();
    assert!(err.is_refused(), "{err}");
    assert_eq!(err.cause(), Cause::BearerWrongCase);
    assert_eq!(c.emu.counts().total(), before, "nothing sent");

    // Report with a partner's own token (from /miami/v1/token): untouched, no
    // subscription key added.
    let report = "/report/v2/ledgers";
    let sent = [(
        "Authorization",
        "Bearer eyJhbGciOiJub25lIn0.eyJwYXJ0bmVyIjoxfQ.c2ln",
    )];
    let _ = c.send(Method::GET, report, &sent, None).await;
    assert_untouched(&c.seen(report), &sent);
    // Without a token of its own, Report gets the standard access token.
    let _ = c.send(Method::GET, report, with_msn, None).await;
    assert_access_token_headers(&c.seen(report), false);
    // Mistake: a partner token kept past its 15 minutes: refused unsent.
    let expired = format!(
        "Bearer eyJhbGciOiJub25lIn0.{}.c2ln",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"exp":1600000000}"#)
    );
    let before = c.emu.counts().total();
    let err = c
        .send(Method::GET, report, &[("Authorization", &expired)], None)
        .await
        .unwrap_err();
    assert!(err.is_refused(), "{err}");
    assert_eq!(err.cause(), Cause::AccessTokenExpired);
    assert_eq!(c.emu.counts().total(), before, "nothing sent");
}

/// A Recurring v3 draft agreement as the spec's example writes it.
const RECURRING_DRAFT: &str = r#"{"pricing":{"type":"LEGACY","amount":49900,"currency":"NOK"},"interval":{"unit":"MONTH","count":1},"merchantRedirectUrl":"https://acme.example/redirect","merchantAgreementUrl":"https://acme.example/agreement","productName":"Coffee subscription"}"#;

/// An Order Management receipt as the spec's example writes it.
const OM_RECEIPT: &str = r#"{"orderLines":[{"name":"socks","id":"line_item_1","totalAmount":49900,"totalAmountExcludingTax":39920,"totalTaxAmount":9980,"taxRate":2500,"unitInfo":{"unitPrice":49900,"quantity":"1","quantityUnit":"PCS"}}],"bottomLine":{"currency":"NOK","posId":"pos_122"}}"#;

/// A Webhooks registration.
const WEBHOOK_REGISTRATION: &str =
    r#"{"url":"https://acme.example/vipps/webhooks","events":["epayments.payment.captured.v1"]}"#;

/// An accounting partner's Report flow through the stack: the token call to
/// `/miami/v1/token` with its own `client_id` and `client_secret`, then the Report
/// API with that token: both pass untouched (no subscription key, no standard
/// token, no MSN added), and the emulator answers them.
async fn report_with_an_accounting_token(path: Path) {
    let c = Client::new(path).await;
    let keys = emulator::PRODUCTION_ACCOUNTING;
    let sent = [
        ("client_id", keys.client_id()),
        ("client_secret", keys.client_secret()),
    ];
    let (status, body) = c
        .send_in(Production, Method::POST, "/miami/v1/token", &sent, None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_untouched(&c.seen("/miami/v1/token"), &sent);
    let token = format!("Bearer {}", body["access_token"].as_str().unwrap());
    let sent = [("Authorization", token.as_str())];
    let (status, body) = c
        .send_in(
            Production,
            Method::GET,
            "/settlement/v1/ledgers",
            &sent,
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["items"][0]["settlesForRecipientHandles"][0],
        format!("api:{}", emulator::PRODUCTION_MSN)
    );
    assert_untouched(&c.seen("/settlement/v1/ledgers"), &sent);
    assert_eq!(c.emu.count(Endpoint::AccessToken), 0, "no standard token");
    assert_eq!(c.emu.count(Endpoint::SpecializedToken), 1);
}

#[tokio::test]
async fn report_with_an_accounting_token_tower() {
    report_with_an_accounting_token(Path::Tower).await;
}

#[tokio::test]
async fn report_with_an_accounting_token_reqwest() {
    report_with_an_accounting_token(Path::Reqwest).await;
}

#[tokio::test]
async fn every_api_tower() {
    every_api(Path::Tower).await;
}

#[tokio::test]
async fn every_api_reqwest() {
    every_api(Path::Reqwest).await;
}

/// ePayment's per-reference limit: 5 cancels a minute for one reference and MSN;
/// the sixth is the gateway's 429 with `Retry-After`, another reference is not
/// limited.
#[tokio::test]
async fn epayment_limits_calls_per_reference() {
    let emu = Emulator::start().await.unwrap();
    let hyper = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let client = tower_vipps::layer(emu.keyring())
        .retry(tower_vipps::retry::RetryPolicy::new().max_retries(0))
        .layer(hyper);
    let cancel = |reference: &str| {
        Request::post(format!(
            "{}/epayment/v1/payments/{reference}/cancel",
            emu.base_url(Test)
        ))
        .header("Merchant-Serial-Number", MSN.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap()
    };
    for _ in 0..5 {
        let err = client
            .clone()
            .oneshot(cancel("acme-limited-1"))
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    }
    let err = client
        .clone()
        .oneshot(cancel("acme-limited-1"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::TOO_MANY_REQUESTS), "{err}");
    let retry_after = err.error_response().unwrap().headers.get("retry-after");
    assert!(retry_after.is_some_and(|v| v.to_str().unwrap().parse::<u64>().unwrap() <= 60));
    let err = client
        .clone()
        .oneshot(cancel("acme-limited-2"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
}

/// DKK and EUR sales units: their own currency is taken, another is 5040.
#[tokio::test]
async fn epayment_in_dkk_and_eur() {
    for currency in ["DKK", "EUR"] {
        let msn = tower_vipps::Msn::new(MSN).unwrap();
        let emu = Emulator::builder()
            .currency(Test, msn, currency)
            .start()
            .await
            .unwrap();
        let hyper = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let client = tower_vipps::layer(emu.keyring()).layer(hyper);
        let create = |reference: &str, currency: &str| {
            let body = json!({
                "amount": {"value": 4990, "currency": currency},
                "paymentMethod": {"type": "WALLET"},
                "customer": {"phoneNumber": READY_USER},
                "reference": reference,
                "returnUrl": "https://example.com/return",
                "userFlow": "WEB_REDIRECT",
                "paymentDescription": "socks",
            });
            Request::post(format!("{}/epayment/v1/payments", emu.base_url(Test)))
                .header("Merchant-Serial-Number", MSN.to_string())
                .header("Content-Type", "application/json")
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap()
        };
        let response = client
            .clone()
            .oneshot(create("acme-currency-1", currency))
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{currency}");
        let err = client
            .clone()
            .oneshot(create("acme-currency-2", "NOK"))
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST), "{currency}");
        assert!(
            String::from_utf8_lossy(err.body().unwrap()).contains("5040"),
            "{err}"
        );
    }
}

/// Where Auth replaces a caller's own credentials, a debug event names the header,
/// never its value; the emulator sees the keyring's.
#[tokio::test]
async fn replaced_credentials_are_said_at_debug_without_secrets() {
    // Global: a thread-local subscriber can miss callsites whose interest another
    // test's thread cached while this binary's tests run in parallel.
    let captured = common::capture_tracing_globally();
    let c = Client::new(Path::Tower).await;
    let msn = MSN.to_string();
    let own_token = "Bearer eyJzZWtyaXQifQ.eyJzZWtyaXQtdG9rZW4ifQ.c2VrcmV0c2ln";
    let headers = [
        ("Merchant-Serial-Number", msn.as_str()),
        ("Authorization", own_token),
        ("Ocp-Apim-Subscription-Key", "my-own-subscription-key-1234"),
    ];
    let path = "/epayment/v1/payments/acme-replaced-1";
    let _ = c.send(Method::GET, path, &headers, None).await;
    let seen = c.seen(path);
    assert_ne!(value(&seen.headers, "authorization"), own_token);
    assert_access_token_headers(&seen, false);
    let headers = [
        ("Merchant-Serial-Number", msn.as_str()),
        ("client_secret", "my-own-client-secret-5678"),
    ];
    let get = "/checkout/v3/session/acme-replaced-2";
    let _ = c.send(Method::GET, get, &headers, None).await;
    assert_eq!(
        value(&c.seen(get).headers, "client_secret"),
        TEST_MERCHANT.client_secret()
    );
    let text = captured.text();
    for header in [
        "authorization",
        "ocp-apim-subscription-key",
        "client_secret",
    ] {
        assert!(
            text.lines()
                .any(|l| l.contains("DEBUG") && l.contains("replaced") && l.contains(header)),
            "{header}: {text}"
        );
    }
    for secret in [
        "eyJzZWtyaXQifQ",
        "my-own-subscription-key",
        "my-own-client-secret",
        TEST_MERCHANT.client_secret(),
        TEST_MERCHANT.subscription_key(),
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}
