//! Every failure of the common-errors FAQ (and of the error corpus) that the request
//! itself reveals, sent through `Preflight` to a real loopback server: each is
//! refused with its cause, and the server sees nothing. Valid requests reach it.
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::request::Builder;
use http_body_util::Full;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_vipps::preflight::{Action, PreflightLayer, RuleId};
use tower_vipps::token::{KnownTokens, MintedFor};
use tower_vipps::{Cause, Environment, Fingerprint, KeySet, Keyring, Msn, VippsError};

const SUB_KEY: &str = "0123456789abcdef0123456789abcdef";
const PROD_SUB_KEY: &str = "fedcba9876543210fedcba9876543210";
const PARTNER_SUB_KEY: &str = "aaaabbbbccccddddeeeeffff00001111";
const MSN: &str = "123456";

fn msn(s: &str) -> Msn {
    s.parse().unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn jwt(name: &str, exp: u64) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"{name}","exp":{exp}}}"#));
    format!("{header}.{payload}.c2lnbmF0dXJlLXNlY3JldC1wYXJ0LXh5eg")
}

struct Tokens(HashMap<String, MintedFor>);

impl KnownTokens for Tokens {
    fn minted_for(&self, token: &str) -> Option<MintedFor> {
        self.0.get(token).cloned()
    }
}

fn minted(env: Environment, key: &str, msn_: Option<&str>, partner: bool) -> MintedFor {
    MintedFor {
        environment: env,
        client_id: Arc::from(if partner { "partner-id" } else { "merchant-id" }),
        subscription_key: Fingerprint::of(key.as_bytes()),
        msn: msn_.map(msn),
        partner,
    }
}

/// Two loopback servers, one standing for the test environment and one for
/// production, counting every request they see.
struct World {
    test: common::Server,
    prod: common::Server,
    seen: Arc<AtomicUsize>,
    layer: PreflightLayer,
    good: String,
    other_msn: String,
    prod_token: String,
    other_key: String,
    partner: String,
    expired: String,
}

impl World {
    async fn new() -> World {
        let seen = Arc::new(AtomicUsize::new(0));
        let handler = {
            let seen = seen.clone();
            move |_req: common::SeenRequest| {
                let seen = seen.clone();
                async move {
                    seen.fetch_add(1, Ordering::SeqCst);
                    common::respond(200, "application/json", "{}")
                }
            }
        };
        let test = common::serve(handler.clone()).await;
        let prod = common::serve(handler).await;
        let keyring = Keyring::builder()
            .merchant(
                Environment::Test,
                msn(MSN),
                "merchant-id",
                "secret",
                SUB_KEY,
            )
            .merchant(
                Environment::Production,
                msn(MSN),
                "prod-id",
                "secret",
                PROD_SUB_KEY,
            )
            .key_set(
                KeySet::partner(
                    Environment::Production,
                    "partner-id",
                    "secret",
                    PARTNER_SUB_KEY,
                )
                .unwrap()
                .connected_msns([msn("222222"), msn("333333")]),
            )
            .plaintext_host(Environment::Test, &test.authority())
            .plaintext_host(Environment::Production, &prod.authority())
            .build()
            .unwrap();
        let exp = now() + 3600;
        let good = jwt("good", exp);
        let other_msn = jwt("other-msn", exp);
        let prod_token = jwt("prod", exp);
        let other_key = jwt("other-key", exp);
        let partner = jwt("partner", exp);
        let expired = jwt("expired", 1_600_000_000);
        let tokens = Tokens(HashMap::from([
            (
                good.clone(),
                minted(Environment::Test, SUB_KEY, Some(MSN), false),
            ),
            (
                other_msn.clone(),
                minted(Environment::Test, SUB_KEY, Some("654321"), false),
            ),
            (
                prod_token.clone(),
                minted(Environment::Production, PROD_SUB_KEY, Some(MSN), false),
            ),
            (
                other_key.clone(),
                minted(
                    Environment::Test,
                    "ffffffffffffffffffffffffffffffff",
                    Some(MSN),
                    false,
                ),
            ),
            (
                partner.clone(),
                minted(Environment::Production, PARTNER_SUB_KEY, None, true),
            ),
        ]));
        let layer = PreflightLayer::new()
            .keyring(keyring)
            .known_tokens(Arc::new(tokens));
        World {
            test,
            prod,
            seen,
            layer,
            good,
            other_msn,
            prod_token,
            other_key,
            partner,
            expired,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.test.base_url())
    }

    /// A URL of production, where partner keys live.
    fn prod_url(&self, path: &str) -> String {
        format!("{}{path}", self.prod.base_url())
    }

    /// A good request of the test environment, without `Authorization`.
    fn base(&self, method: &str, path: &str) -> Builder {
        http::Request::builder()
            .method(method)
            .uri(self.url(path))
            .header("Ocp-Apim-Subscription-Key", SUB_KEY)
            .header("Merchant-Serial-Number", MSN)
            .header("Vipps-System-Name", "acme-shop")
            .header("Vipps-System-Version", "1.2.3")
            .header("Idempotency-Key", "49ca711a-acee-4d01-993b-9487112e1def")
    }

    fn authed(&self, method: &str, path: &str) -> Builder {
        self.base(method, path)
            .header("Authorization", format!("Bearer {}", self.good))
    }

    async fn send(
        &self,
        layer: &PreflightLayer,
        req: http::Request<Full<Bytes>>,
    ) -> Result<(), VippsError> {
        let mut svc = ServiceBuilder::new()
            .layer(layer.clone())
            .service(common::client::<Full<Bytes>>());
        let res = svc.ready().await?.call(req).await?;
        assert_eq!(res.status(), 200);
        Ok(())
    }
}

const CREATE: &str = r#"{"amount":{"currency":"NOK","value":1000},"paymentMethod":{"type":"WALLET"},"customer":{"phoneNumber":"4712345678"},"reference":"acme-shop-123-order123abc","returnUrl":"https://example.com/redirect?orderId=acme-shop-123-order123abc","userFlow":"WEB_REDIRECT","paymentDescription":"One pair of socks"}"#;
const INITIATE: &str = r#"{"customerInfo":{"mobileNumber":"91234567"},"merchantInfo":{"callbackPrefix":"https://example.com/vipps/callbacks","fallBack":"https://example.com/vipps/fallback","merchantSerialNumber":"123456"},"transaction":{"amount":20000,"orderId":"acme-order-123","transactionText":"One pair of socks"}}"#;
const CAPTURE: &str = r#"{"modificationAmount":{"value":1000,"currency":"NOK"}}"#;
const PAYMENTS: &str = "/epayment/v1/payments";
const GET: &str = "/epayment/v1/payments/acme-shop-123-order123abc";
const CAPTURE_PATH: &str = "/epayment/v1/payments/acme-shop-123-order123abc/capture";

fn swap(body: &str, from: &str, to: &str) -> String {
    assert!(body.contains(from), "{from}");
    body.replacen(from, to, 1)
}

/// One FAQ failure: what it is, the request, and the expected cause.
struct Case {
    faq: &'static str,
    request: http::Request<Full<Bytes>>,
    cause: Cause,
}

fn with_body(b: Builder, body: impl Into<String>) -> http::Request<Full<Bytes>> {
    b.body(Full::new(Bytes::from(body.into()))).unwrap()
}

fn empty(b: Builder) -> http::Request<Full<Bytes>> {
    with_body(b, "")
}

fn cases(w: &World) -> Vec<Case> {
    let bearer = |t: &str| format!("Bearer {t}");
    let prod_url = format!("{}{GET}", w.prod.base_url());
    vec![
        Case {
            faq: "401: no Authorization header",
            request: empty(w.base("GET", GET)),
            cause: Cause::MissingAuthorization,
        },
        Case {
            faq: "401: `Authorization` without `Bearer` (a bare token)",
            request: empty(w.base("GET", GET).header("Authorization", w.good.as_str())),
            cause: Cause::BearerMissing,
        },
        Case {
            faq: "401: Basic credentials on an API call",
            request: empty(
                w.base("GET", GET)
                    .header("Authorization", "Basic bWVyY2hhbnQtaWQ6c2VjcmV0"),
            ),
            cause: Cause::BearerMissing,
        },
        Case {
            faq: "401: `bearer <token>` is not `Bearer <token>`",
            request: empty(
                w.base("GET", GET)
                    .header("Authorization", format!("bearer {}", w.good)),
            ),
            cause: Cause::BearerWrongCase,
        },
        Case {
            faq: "401: `BEARER <token>`",
            request: empty(
                w.base("GET", GET)
                    .header("Authorization", format!("BEARER {}", w.good)),
            ),
            cause: Cause::BearerWrongCase,
        },
        Case {
            faq: "401: token in the wrong format (quoted)",
            request: empty(
                w.base("GET", GET)
                    .header("Authorization", format!("Bearer \"{}\"", w.good)),
            ),
            cause: Cause::MalformedAuthorization,
        },
        Case {
            faq: "401: token in the wrong format (two spaces)",
            request: empty(
                w.base("GET", GET)
                    .header("Authorization", format!("Bearer  {}", w.good)),
            ),
            cause: Cause::MalformedAuthorization,
        },
        Case {
            faq: "401: token in the wrong format (not a JWT)",
            request: empty(
                w.base("GET", GET)
                    .header("Authorization", "Bearer not-a-jwt"),
            ),
            cause: Cause::MalformedAuthorization,
        },
        Case {
            faq: "401: empty token",
            request: empty(w.base("GET", GET).header("Authorization", "Bearer ")),
            cause: Cause::MalformedAuthorization,
        },
        Case {
            faq: "401: the access token has expired",
            request: empty(
                w.base("GET", GET)
                    .header("Authorization", bearer(&w.expired)),
            ),
            cause: Cause::AccessTokenExpired,
        },
        Case {
            faq: "401: access denied due to missing subscription key",
            request: empty(
                http::Request::get(w.url(GET))
                    .header("Authorization", bearer(&w.good))
                    .header("Merchant-Serial-Number", MSN),
            ),
            cause: Cause::MissingSubscriptionKey,
        },
        Case {
            faq: "401: the token call without a subscription key",
            request: empty(
                http::Request::post(w.url("/accesstoken/get"))
                    .header("client_id", "merchant-id")
                    .header("client_secret", "secret"),
            ),
            cause: Cause::MissingSubscriptionKey,
        },
        Case {
            faq: "400/401: invalid API keys (an empty subscription key)",
            request: empty(
                http::Request::get(w.url(GET))
                    .header("Authorization", bearer(&w.good))
                    .header("Ocp-Apim-Subscription-Key", "")
                    .header("Merchant-Serial-Number", MSN),
            ),
            cause: Cause::MalformedSubscriptionKey,
        },
        Case {
            faq: "401: invalid API keys (a quoted subscription key)",
            request: empty(
                http::Request::get(w.url(GET))
                    .header("Authorization", bearer(&w.good))
                    .header("Ocp-Apim-Subscription-Key", format!("\"{SUB_KEY}\""))
                    .header("Merchant-Serial-Number", MSN),
            ),
            cause: Cause::MalformedSubscriptionKey,
        },
        Case {
            faq: "401: not the same subscription key for the token and the call",
            request: empty(
                w.base("GET", GET)
                    .header("Authorization", bearer(&w.other_key)),
            ),
            cause: Cause::SubscriptionKeyMismatch,
        },
        Case {
            faq: "401: a valid access token, but for a different MSN",
            request: empty(
                w.base("GET", GET)
                    .header("Authorization", bearer(&w.other_msn)),
            ),
            cause: Cause::TokenForOtherMsn,
        },
        Case {
            faq: "401: the right keys in the wrong environment (test key to production)",
            request: empty(
                http::Request::get(prod_url.as_str())
                    .header("Authorization", bearer(&w.good))
                    .header("Ocp-Apim-Subscription-Key", SUB_KEY)
                    .header("Merchant-Serial-Number", MSN),
            ),
            cause: Cause::WrongEnvironment,
        },
        Case {
            faq: "401: a production token in the test environment",
            request: empty(
                http::Request::get(w.url(GET))
                    .header("Authorization", bearer(&w.prod_token))
                    .header("Ocp-Apim-Subscription-Key", PROD_SUB_KEY)
                    .header("Merchant-Serial-Number", MSN),
            ),
            cause: Cause::WrongEnvironment,
        },
        Case {
            faq: "keys sent to a host of no environment",
            request: empty(
                http::Request::get(
                    "https://127.0.0.1:9/epayment/v1/payments/acme-shop-123-order123abc",
                )
                .header("Authorization", bearer(&w.good))
                .header("Ocp-Apim-Subscription-Key", SUB_KEY),
            ),
            cause: Cause::UnknownHost,
        },
        Case {
            faq: "keys sent over plain HTTP to the official host",
            request: empty(
                http::Request::get(
                    "http://apitest.vipps.no/epayment/v1/payments/acme-shop-123-order123abc",
                )
                .header("Authorization", bearer(&w.good))
                .header("Ocp-Apim-Subscription-Key", SUB_KEY)
                .header("Merchant-Serial-Number", MSN),
            ),
            cause: Cause::InsecureScheme,
        },
        Case {
            faq: "401: `Merchant-Serial-Number` misspelled as `merchantSerialNumber`",
            request: empty(
                http::Request::get(w.prod_url(GET))
                    .header("Authorization", bearer(&w.partner))
                    .header("Ocp-Apim-Subscription-Key", PARTNER_SUB_KEY)
                    .header("merchantSerialNumber", "222222"),
            ),
            cause: Cause::MsnHeaderMisspelled,
        },
        Case {
            faq: "401: the body's `merchantSerialNumber` is not the header's",
            request: with_body(
                w.authed("POST", "/ecomm/v2/payments"),
                swap(
                    INITIATE,
                    "\"merchantSerialNumber\":\"123456\"",
                    "\"merchantSerialNumber\":\"654321\"",
                ),
            ),
            cause: Cause::MsnHeaderBodyMismatch,
        },
        Case {
            faq: "MSN header not digits",
            request: empty(
                http::Request::get(w.url(GET))
                    .header("Authorization", bearer(&w.good))
                    .header("Ocp-Apim-Subscription-Key", SUB_KEY)
                    .header("Merchant-Serial-Number", "MSN-123456"),
            ),
            cause: Cause::MalformedMsn,
        },
        Case {
            faq: "403: partner keys without the `Merchant-Serial-Number` header",
            request: empty(
                http::Request::get(w.prod_url(GET))
                    .header("Authorization", bearer(&w.partner))
                    .header("Ocp-Apim-Subscription-Key", PARTNER_SUB_KEY),
            ),
            cause: Cause::PartnerMissingMsnHeader,
        },
        Case {
            faq: "403: partner keys for an MSN not connected to the partner",
            request: empty(
                http::Request::get(w.prod_url(GET))
                    .header("Authorization", bearer(&w.partner))
                    .header("Ocp-Apim-Subscription-Key", PARTNER_SUB_KEY)
                    .header("Merchant-Serial-Number", "444444"),
            ),
            cause: Cause::PartnerMsnNotConnected,
        },
        Case {
            faq: "400 (4040): invalid amount, decimals",
            request: with_body(
                w.authed("POST", PAYMENTS),
                swap(CREATE, "\"value\":1000", "\"value\":10.00"),
            ),
            cause: Cause::InvalidAmount,
        },
        Case {
            faq: "400 (eCom `amount`): invalid amount, zero",
            request: with_body(
                w.authed("POST", "/ecomm/v2/payments"),
                swap(INITIATE, "\"amount\":20000", "\"amount\":0"),
            ),
            cause: Cause::InvalidAmount,
        },
        Case {
            faq: "400 (4040): capture with a string amount",
            request: with_body(
                w.authed("POST", CAPTURE_PATH),
                swap(CAPTURE, "1000", "\"1000\""),
            ),
            cause: Cause::InvalidAmount,
        },
        Case {
            faq: "400 (5040): invalid currency",
            request: with_body(
                w.authed("POST", PAYMENTS),
                swap(CREATE, "\"NOK\"", "\"SEK\""),
            ),
            cause: Cause::InvalidCurrency,
        },
        Case {
            faq: "400 (4070): phone number not MSISDN (`+47`)",
            request: with_body(
                w.authed("POST", PAYMENTS),
                swap(CREATE, "4712345678", "+4712345678"),
            ),
            cause: Cause::InvalidPhoneNumber,
        },
        Case {
            faq: "400 (4070): phone number without country code",
            request: with_body(
                w.authed("POST", PAYMENTS),
                swap(CREATE, "4712345678", "12345678"),
            ),
            cause: Cause::InvalidPhoneNumber,
        },
        Case {
            faq: "400 (eCom `mobileNumber`): Invalid MSISDN: 004712345678",
            request: with_body(
                w.authed("POST", "/ecomm/v2/payments"),
                swap(INITIATE, "91234567", "004712345678"),
            ),
            cause: Cause::InvalidPhoneNumber,
        },
        Case {
            faq: "400 (4090): the parameter htt://example.com is invalid",
            request: with_body(
                w.authed("POST", PAYMENTS),
                swap(
                    CREATE,
                    "https://example.com/redirect?orderId=acme-shop-123-order123abc",
                    "htt://example.com",
                ),
            ),
            cause: Cause::InvalidUrl,
        },
        Case {
            faq: "400: callbackPrefix is not valid (http)",
            request: with_body(
                w.authed("POST", "/ecomm/v2/payments"),
                swap(
                    INITIATE,
                    "https://example.com/vipps/callbacks",
                    "http://example.com/vipps/callbacks",
                ),
            ),
            cause: Cause::InvalidUrl,
        },
        Case {
            faq: "400: the field Reference must match '^[a-zA-Z0-9-]{8,64}$'",
            request: with_body(
                w.authed("POST", PAYMENTS),
                swap(CREATE, "acme-shop-123-order123abc", "order_1"),
            ),
            cause: Cause::InvalidReference,
        },
        Case {
            faq: "ePayment POST without Idempotency-Key",
            request: with_body(
                http::Request::post(w.url(CAPTURE_PATH))
                    .header("Authorization", bearer(&w.good))
                    .header("Ocp-Apim-Subscription-Key", SUB_KEY)
                    .header("Merchant-Serial-Number", MSN),
                CAPTURE,
            ),
            cause: Cause::MissingIdempotencyKey,
        },
        Case {
            faq: "ePayment POST with an Idempotency-Key over 50 characters",
            request: with_body(
                http::Request::post(w.url(CAPTURE_PATH))
                    .header("Authorization", bearer(&w.good))
                    .header("Ocp-Apim-Subscription-Key", SUB_KEY)
                    .header("Merchant-Serial-Number", MSN)
                    .header("Idempotency-Key", "k".repeat(64)),
                CAPTURE,
            ),
            cause: Cause::MissingIdempotencyKey,
        },
    ]
}

#[tokio::test]
async fn every_faq_failure_is_refused_unsent() {
    let w = World::new().await;
    let (captured, _guard) = common::capture_tracing();
    let cases = cases(&w);
    let n = cases.len();
    assert!(n >= 30, "{n} cases");
    let mut covered = std::collections::HashSet::new();
    for case in cases {
        let err = w.send(&w.layer, case.request).await.expect_err(case.faq);
        assert!(err.is_refused(), "{}: {err}", case.faq);
        assert_eq!(err.cause(), case.cause, "{}: {err}", case.faq);
        assert!(!err.diagnosis().evidence().is_empty(), "{}", case.faq);
        // The context is filled; no secret is shown.
        assert!(err.context().method.is_some(), "{}", case.faq);
        let text = format!("{err} {err:?} {}", err.diagnosis().report());
        for secret in [
            SUB_KEY,
            PROD_SUB_KEY,
            PARTNER_SUB_KEY,
            "c2lnbmF0dXJlLXNlY3JldC1wYXJ0LXh5eg",
        ] {
            assert!(!text.contains(secret), "{}: {text}", case.faq);
        }
        for token in [
            &w.good,
            &w.other_msn,
            &w.prod_token,
            &w.other_key,
            &w.partner,
            &w.expired,
        ] {
            assert!(!text.contains(token.as_str()), "{}: {text}", case.faq);
        }
        covered.insert(case.cause);
        assert_eq!(
            w.seen.load(Ordering::SeqCst),
            0,
            "{} reached the server",
            case.faq
        );
    }
    assert!(covered.len() >= 20, "{covered:?}");
    assert_eq!(w.seen.load(Ordering::SeqCst), 0);
    let logged = captured.text();
    for secret in [SUB_KEY, PARTNER_SUB_KEY, w.good.as_str()] {
        assert!(!logged.contains(secret), "{logged}");
    }
}

#[tokio::test]
async fn valid_requests_reach_the_server() {
    let w = World::new().await;
    let mut sent = 0;
    let requests = vec![
        empty(w.authed("GET", GET)),
        empty(w.authed(
            "GET",
            "/epayment/v1/payments/acme-shop-123-order123abc/events",
        )),
        with_body(w.authed("POST", PAYMENTS), CREATE),
        with_body(w.authed("POST", CAPTURE_PATH), CAPTURE),
        with_body(
            w.authed(
                "POST",
                "/epayment/v1/payments/acme-shop-123-order123abc/refund",
            ),
            r#"{"modificationAmount":{"value":500,"currency":"NOK"}}"#,
        ),
        with_body(
            w.authed(
                "POST",
                "/epayment/v1/payments/acme-shop-123-order123abc/cancel",
            ),
            "",
        ),
        with_body(w.authed("POST", "/ecomm/v2/payments"), INITIATE),
        with_body(
            w.authed("POST", "/recurring/v3/agreements"),
            r#"{"pricing":{"type":"LEGACY","amount":49900,"currency":"NOK"},"interval":{"unit":"MONTH","count":1},"merchantRedirectUrl":"https://example.com/redirect","merchantAgreementUrl":"https://example.com/agreement","phoneNumber":"4791234567","productName":"Premier League subscription"}"#,
        ),
        empty(
            http::Request::post(w.url("/accesstoken/get"))
                .header("client_id", "merchant-id")
                .header("client_secret", "secret")
                .header("Ocp-Apim-Subscription-Key", SUB_KEY)
                .header("Merchant-Serial-Number", MSN)
                .header("Vipps-System-Name", "acme-shop")
                .header("Vipps-System-Version", "1.2.3"),
        ),
        // Partner keys with a connected MSN.
        empty(
            http::Request::get(w.prod_url(GET))
                .header("Authorization", format!("Bearer {}", w.partner))
                .header("Ocp-Apim-Subscription-Key", PARTNER_SUB_KEY)
                .header("Merchant-Serial-Number", "222222")
                .header("Vipps-System-Name", "acme-shop")
                .header("Vipps-System-Version", "1.2.3"),
        ),
        // Production keys to production.
        empty(
            http::Request::get(format!("{}{GET}", w.prod.base_url()))
                .header("Authorization", format!("Bearer {}", w.prod_token))
                .header("Ocp-Apim-Subscription-Key", PROD_SUB_KEY)
                .header("Merchant-Serial-Number", MSN)
                .header("Vipps-System-Name", "acme-shop")
                .header("Vipps-System-Version", "1.2.3"),
        ),
    ];
    // Every warning made a refusal: a valid request must not even warn.
    let strict = RuleId::ALL
        .iter()
        .fold(w.layer.clone(), |l, id| match id.default_action() {
            Action::Warn => l.rule(*id, Action::Refuse),
            _ => l,
        });
    for req in requests {
        let what = format!("{} {}", req.method(), req.uri().path());
        if let Err(err) = w.send(&strict, req).await {
            panic!("{what} refused: {err}");
        }
        sent += 1;
        assert_eq!(w.seen.load(Ordering::SeqCst), sent, "{what}");
    }
}

#[tokio::test]
async fn a_warning_is_logged_and_the_request_sent() {
    let w = World::new().await;
    let (captured, _guard) = common::capture_tracing();
    // No Vipps-System-* headers, and a NOK amount under the minimum: both warn.
    let req = http::Request::post(w.url(PAYMENTS))
        .header("Authorization", format!("Bearer {}", w.good))
        .header("Ocp-Apim-Subscription-Key", SUB_KEY)
        .header("Merchant-Serial-Number", MSN)
        .header("Idempotency-Key", "k-1")
        .body(Full::new(Bytes::from(swap(
            CREATE,
            "\"value\":1000",
            "\"value\":50",
        ))))
        .unwrap();
    w.send(&w.layer, req).await.unwrap();
    assert_eq!(w.seen.load(Ordering::SeqCst), 1);
    let logged = captured.text();
    assert!(logged.contains("vipps::system_headers"), "{logged}");
    assert!(logged.contains("no `Vipps-System-Name` header"), "{logged}");
    assert!(logged.contains("vipps::amount_too_small"), "{logged}");
    assert!(
        !logged.contains(SUB_KEY) && !logged.contains(w.good.as_str()),
        "{logged}"
    );
    // Turned off, nothing is logged.
    let quiet = w
        .layer
        .clone()
        .rule(RuleId::SystemHeaders, Action::Off)
        .rule(RuleId::AmountTooSmall, Action::Off);
    let (captured, _guard2) = common::capture_tracing();
    let req = http::Request::get(w.url(GET))
        .header("Authorization", format!("Bearer {}", w.good))
        .header("Ocp-Apim-Subscription-Key", SUB_KEY)
        .header("Merchant-Serial-Number", MSN)
        .body(Full::new(Bytes::new()))
        .unwrap();
    w.send(&quiet, req).await.unwrap();
    assert_eq!(w.seen.load(Ordering::SeqCst), 2);
    assert!(!captured.text().contains("WARN"), "{}", captured.text());
}

#[tokio::test]
async fn a_refusal_keeps_the_readied_inner_service() {
    // The inner service may be called once per readiness: a refused call must not
    // use it up, so the next call works without a new poll_ready.
    let calls = Arc::new(AtomicUsize::new(0));
    let inner = {
        let calls = calls.clone();
        tower::service_fn(move |_req: http::Request<Full<Bytes>>| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, std::convert::Infallible>(http::Response::new(())) }
        })
    };
    let mut svc = tower::Layer::layer(&PreflightLayer::new(), inner);
    let bad = http::Request::get("https://apitest.vipps.no/epayment/v1/payments/abcdefgh-1")
        .header("Authorization", "bearer x.y.z")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let err = svc.ready().await.unwrap().call(bad).await.unwrap_err();
    assert_eq!(err.cause(), Cause::BearerWrongCase);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    let good = http::Request::get("https://apitest.vipps.no/epayment/v1/payments/abcdefgh-1")
        .header("Authorization", format!("Bearer {}", jwt("x", now() + 60)))
        .header("Ocp-Apim-Subscription-Key", SUB_KEY)
        .header("Merchant-Serial-Number", MSN)
        .header("Vipps-System-Name", "a")
        .header("Vipps-System-Version", "1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    svc.call(good).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // The error is reachable through a BoxError too.
    let boxed: tower::BoxError = err.into();
    assert!(boxed.downcast_ref::<VippsError>().is_some());
}
