//! End to end: every failure of the common-errors FAQ (and of issue 5's list), made
//! the way a user makes it, sent through the whole stack to the emulator, over both
//! the tower path (`tower_vipps::layer(keyring)` over a hyper client) and the reqwest
//! path (`VippsMiddleware` in `reqwest_middleware`).
//!
//! One table, [`rows`]: each row says how the mistake is made (the user's keyring,
//! headers, body), what the stack must answer (refused unsent, or a diagnosed error
//! response or token error, with its cause), and exactly how many requests the
//! emulator saw per endpoint. Every row runs on a fresh emulator per path.
//!
//! Three stacks:
//! - [`Stack::Full`]: the preset. Auth writes `Authorization`,
//!   `Ocp-Apim-Subscription-Key` and the system headers itself, so the header
//!   mistakes cannot be made through it: those rows assert that the user's own bad
//!   header is replaced and the call succeeds.
//! - [`Stack::OwnTokens`]: a user who manages their own tokens (fetched with
//!   `TokenCache`/`TokenClient`) and sets the headers by hand, with
//!   `DiagnoseLayer` over `PreflightLayer` (keyring + the known tokens of their
//!   cache). This is where the header mistakes are refused.
//! - [`Stack::DiagnoseOnly`]: the same user without Preflight: the mistake goes out
//!   and the emulator's answer comes back diagnosed.
//!
//! Run `cargo test --all-features --test e2e -- --nocapture` to print the table.
#![cfg(all(feature = "emulator", feature = "reqwest"))]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_vipps::Environment::{self, Production, Test};
use tower_vipps::emulator::{
    self, Credentials, Emulator, Endpoint, NOT_LOGGED_IN_USER, PRODUCTION_MERCHANT,
    PRODUCTION_PARTNER, READY_USER, TEST_LOGIN_ONLY, TEST_MERCHANT, TEST_UNSUBSCRIBED,
    UNDER_15_USER, UNKNOWN_USER,
};
use tower_vipps::preflight::PreflightLayer;
use tower_vipps::reqwest::{ReqwestService, TowerMiddleware, VippsMiddleware, into_vipps_error};
use tower_vipps::token::{TokenCache, TokenClient, TokenRequest};
use tower_vipps::{Cause, DiagnoseLayer, KeySet, Keyring, Msn, Origin, SystemInfo, VippsError};

// ---------------------------------------------------------------------------
// The user's call, and the two paths that send it.
// ---------------------------------------------------------------------------

/// A call as the user writes it: method, environment, path, headers, JSON body.
#[derive(Clone, Debug)]
struct Call {
    method: Method,
    env: Environment,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Option<Value>,
}

impl Call {
    fn get(env: Environment, path: impl Into<String>) -> Call {
        Call {
            method: Method::GET,
            env,
            path: path.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    fn post(env: Environment, path: impl Into<String>, body: Value) -> Call {
        Call {
            method: Method::POST,
            env,
            path: path.into(),
            headers: vec![("Content-Type", "application/json".into())],
            body: Some(body),
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Call {
        self.headers.push((name, value.into()));
        self
    }

    fn msn(self, msn: u64) -> Call {
        self.header("Merchant-Serial-Number", msn.to_string())
    }

    /// The headers of a user who manages their own token: everything right.
    fn own(self, keys: Credentials, msn: u64, token: &str) -> Call {
        let post = self.method == Method::POST;
        let call = self
            .header("Authorization", format!("Bearer {token}"))
            .header("Ocp-Apim-Subscription-Key", keys.subscription_key())
            .msn(msn)
            .header("Vipps-System-Name", "acme-shop")
            .header("Vipps-System-Version", "1.0.0");
        if post {
            call.header("Idempotency-Key", "e2e-own-token-call-0001")
        } else {
            call
        }
    }

    /// The same call to another environment's host.
    fn env(mut self, env: Environment) -> Call {
        self.env = env;
        self
    }

    fn without(mut self, name: &str) -> Call {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    fn replace(self, name: &'static str, value: impl Into<String>) -> Call {
        self.without(name).header(name, value)
    }

    fn url(&self, emu: &Emulator) -> String {
        format!("{}{}", emu.base_url(self.env), self.path)
    }

    fn body_bytes(&self) -> Bytes {
        self.body
            .as_ref()
            .map(|b| Bytes::from(b.to_string()))
            .unwrap_or_default()
    }

    fn http(&self, emu: &Emulator) -> Request<Full<Bytes>> {
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(self.url(emu));
        for (name, value) in &self.headers {
            builder = builder.header(*name, value);
        }
        builder.body(Full::new(self.body_bytes())).unwrap()
    }
}

type Answer = Result<(StatusCode, Value), VippsError>;
type BoxFut = Pin<Box<dyn Future<Output = Answer> + Send>>;
type Sender = Arc<dyn Fn(Request<Full<Bytes>>, Call) -> BoxFut + Send + Sync>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Tower,
    Reqwest,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stack {
    /// `tower_vipps::layer(keyring)` / `VippsMiddleware::new(keyring, builder)`.
    Full,
    /// `DiagnoseLayer` over `PreflightLayer` (keyring + the user's token cache);
    /// the user sets `Authorization` and the keys.
    OwnTokens,
    /// `DiagnoseLayer` only; the user sets `Authorization` and the keys.
    DiagnoseOnly,
}

fn hyper() -> HyperClient<HttpConnector, Full<Bytes>> {
    HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>()
}

/// The user's client: reqwest's defaults (the middleware turns redirects off).
fn reqwest_client() -> ReqwestService {
    ring_provider();
    ReqwestService::new(reqwest::Client::builder()).unwrap()
}

/// The dev-dependency reqwest has `rustls-no-provider` (ring, no aws-lc): a
/// process-wide provider must be installed before a client is built.
fn ring_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

fn tower_sender<S, RB>(service: S) -> Sender
where
    S: tower::Service<Request<Full<Bytes>>, Response = http::Response<RB>, Error = VippsError>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
    RB: http_body::Body + Send + 'static,
    RB::Data: Send,
    RB::Error: Into<tower_vipps::BoxError>,
{
    Arc::new(move |request, _call| {
        let service = service.clone();
        Box::pin(async move {
            let response = service.oneshot(request).await?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| VippsError::transport(e.into()))?
                .to_bytes();
            Ok((status, json_of(&body)))
        })
    })
}

fn reqwest_sender(client: reqwest_middleware::ClientWithMiddleware, emu: &Emulator) -> Sender {
    let bases = [emu.base_url(Test), emu.base_url(Production)];
    Arc::new(move |_request, call| {
        let client = client.clone();
        let url = format!(
            "{}{}",
            bases[usize::from(call.env == Production)],
            call.path
        );
        Box::pin(async move {
            let mut builder = client.request(call.method.clone(), url);
            for (name, value) in &call.headers {
                builder = builder.header(*name, value);
            }
            if call.body.is_some() {
                builder = builder.body(call.body_bytes());
            }
            match builder.send().await {
                Ok(response) => {
                    let status = response.status();
                    let body = response.bytes().await.expect("a readable body");
                    Ok((status, json_of(&body)))
                }
                Err(err) => {
                    Err(into_vipps_error(err)
                        .unwrap_or_else(|err| panic!("not a VippsError: {err:?}")))
                }
            }
        })
    })
}

/// The user's client: one stack, one path, one token cache.
struct UserClient {
    send: Sender,
    /// The cache the user fetches their own tokens with (own-token stacks).
    cache: TokenCache,
    keyring: Keyring,
}

impl UserClient {
    fn new(emu: &Emulator, path: Path, stack: Stack, keyring: Keyring) -> UserClient {
        let cache = TokenCache::new();
        let diagnose = DiagnoseLayer::new().keyring(&keyring);
        let preflight = PreflightLayer::new()
            .keyring(keyring.clone())
            .known_tokens(Arc::new(cache.clone()));
        let send = match (path, stack) {
            (Path::Tower, Stack::Full) => {
                tower_sender(tower_vipps::layer(keyring.clone()).layer(hyper()))
            }
            (Path::Tower, Stack::OwnTokens) => tower_sender(
                ServiceBuilder::new()
                    .layer(diagnose)
                    .layer(preflight)
                    .service(hyper()),
            ),
            (Path::Tower, Stack::DiagnoseOnly) => {
                tower_sender(ServiceBuilder::new().layer(diagnose).service(hyper()))
            }
            (Path::Reqwest, stack) => {
                ring_provider();
                let builder = reqwest_middleware::ClientBuilder::new(reqwest::Client::new());
                let client = match stack {
                    Stack::Full => builder.with(
                        VippsMiddleware::new(keyring.clone(), reqwest::Client::builder()).unwrap(),
                    ),
                    Stack::OwnTokens => builder.with(TowerMiddleware::new(
                        ServiceBuilder::new().layer(diagnose).layer(preflight),
                        reqwest_client(),
                    )),
                    Stack::DiagnoseOnly => {
                        builder.with(TowerMiddleware::new(diagnose, reqwest_client()))
                    }
                };
                reqwest_sender(client.build(), emu)
            }
        };
        UserClient {
            send,
            cache,
            keyring,
        }
    }

    async fn send(&self, emu: &Emulator, call: Call) -> Answer {
        (self.send)(call.http(emu), call).await
    }

    /// The user fetches their own token with `keys` (own-token stacks), through
    /// `TokenCache` and a plain hyper `TokenClient`.
    async fn own_token(&self, emu: &Emulator, keys: Credentials, msn: Option<u64>) -> String {
        let set = self
            .keyring
            .key_sets()
            .find(|k| k.subscription_key().expose() == keys.subscription_key())
            .cloned()
            .unwrap_or_else(|| keys.key_set());
        let base: http::Uri = emu.base_url(keys.environment()).parse().unwrap();
        let request = TokenRequest::new(
            set,
            msn.map(|m| Msn::new(m).unwrap()),
            SystemInfo::default(),
        )
        .base(&base)
        .allow_plaintext(true);
        let token = self
            .cache
            .get(&TokenClient::new(hyper()), &request)
            .await
            .expect("the user's own token");
        token.secret().expose().to_owned()
    }
}

// ---------------------------------------------------------------------------
// The table.
// ---------------------------------------------------------------------------

const REFERENCE: &str = "acme-order-0001";
const MSN: u64 = emulator::TEST_MSN;
const LOGIN_ONLY_MSN: u64 = emulator::TEST_LOGIN_ONLY_MSN;
const PROD_MSN: u64 = emulator::PRODUCTION_MSN;
const PARTNER_MSN: u64 = 400_000;
const NOT_CONNECTED_MSN: u64 = 999_999;
/// A well-formed subscription key the emulator does not know.
const WRONG_SUB_KEY: &str = "0badbadbadbadbadbadbadbadbadbad0";

/// Setup steps, run through the row's own client before the counts are reset.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// Create a 499.00 NOK payment [`REFERENCE`] for [`READY_USER`] as MSN
    /// [`MSN`] (it is `AUTHORIZED` at once); this caches the token.
    Create,
    /// Capture it in full.
    CaptureAll,
    /// The user fetches their own token with these keys (own-token stacks).
    OwnToken(Credentials),
    /// The emulator's clock moves 2 hours: every token minted so far has expired
    /// for the emulator (not for the client's cache).
    ExpireTokens,
    /// Queue faults.
    Faults(fn(&emulator::Faults)),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Refused unsent: origin `Refused`, this cause.
    Refused(Cause),
    /// An error response: origin `Response`, this cause and status.
    Response(Cause, u16),
    /// The token call failed: origin `Token` with the token endpoint's answer.
    Token(Cause, u16),
    /// The call succeeds with this status (the stack fixed or retried it).
    Ok(u16),
}

struct Row {
    /// The mistake, in the FAQ's words where it has them.
    name: &'static str,
    stack: Stack,
    /// The key sets in the user's keyring.
    keys: fn() -> Vec<KeySet>,
    setup: &'static [Step],
    call: fn(&Ctx) -> Call,
    expect: Expect,
    /// The requests the emulator sees for the call (after setup), per endpoint;
    /// every endpoint not listed must see none.
    counts: &'static [(Endpoint, usize)],
}

struct Ctx {
    /// The user's own token (own-token stacks).
    token: String,
}

fn merchant() -> Vec<KeySet> {
    vec![TEST_MERCHANT.key_set()]
}

fn create_body(phone: &str) -> Value {
    json!({
        "amount": {"value": 49900, "currency": "NOK"},
        "paymentMethod": {"type": "WALLET"},
        "customer": {"phoneNumber": phone},
        "reference": REFERENCE,
        "returnUrl": "https://acme.example/orders/return",
        "userFlow": "PUSH_MESSAGE",
        "paymentDescription": "Two bags of coffee"
    })
}

fn create(phone: &str) -> Call {
    Call::post(Test, "/epayment/v1/payments", create_body(phone))
}

fn create_with(edit: fn(&mut Value)) -> Call {
    let mut body = create_body(READY_USER);
    edit(&mut body);
    Call::post(Test, "/epayment/v1/payments", body)
}

fn get_payment(env: Environment) -> Call {
    Call::get(env, format!("/epayment/v1/payments/{REFERENCE}"))
}

fn modify(op: &str, value: u64) -> Call {
    Call::post(
        Test,
        format!("/epayment/v1/payments/{REFERENCE}/{op}"),
        json!({"modificationAmount": {"value": value, "currency": "NOK"}}),
    )
}

/// A JWT-shaped token whose `exp` is an hour in the past (what a cached token looks
/// like the day after).
fn expired_jwt() -> String {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3600;
    format!(
        "{}.{}.{}",
        b64(r#"{"alg":"HS256","typ":"JWT"}"#),
        b64(&format!(r#"{{"exp":{exp},"msn":123456}}"#)),
        b64("not-a-real-signature")
    )
}

use Endpoint::{AccessToken, Capture, CreatePayment, GetPayment, Other, Refund};
use Expect::{Ok as Succeeds, Refused, Response, Token};
use Step::{CaptureAll, Create, ExpireTokens, Faults, OwnToken};

fn rows() -> Vec<Row> {
    vec![
        // ---- Authorization header (FAQ 401, step 1 and 4) ----------------------
        Row {
            name: "`Authorization: bearer <token>` (lowercase scheme), own token",
            stack: Stack::OwnTokens,
            keys: merchant,
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| {
                create(READY_USER)
                    .own(TEST_MERCHANT, MSN, &c.token)
                    .replace("Authorization", format!("bearer {}", c.token))
            },
            expect: Refused(Cause::BearerWrongCase),
            counts: &[],
        },
        Row {
            name: "`Authorization: bearer <token>`, own token, no Preflight",
            stack: Stack::DiagnoseOnly,
            keys: merchant,
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| {
                create(READY_USER)
                    .own(TEST_MERCHANT, MSN, &c.token)
                    .replace("Authorization", format!("bearer {}", c.token))
            },
            // Vipps answers only "Something went wrong"; Diagnose saw the header
            // that was sent and names the mistake.
            expect: Response(Cause::BearerWrongCase, 401),
            counts: &[(CreatePayment, 1)],
        },
        Row {
            // Auth sets `Authorization` itself: the user's header is replaced.
            name: "`Authorization: bearer <token>` set by the user, full stack",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| {
                create(READY_USER)
                    .msn(MSN)
                    .header("Authorization", "bearer not-my-token")
            },
            expect: Succeeds(201),
            counts: &[(AccessToken, 1), (CreatePayment, 1)],
        },
        Row {
            name: "`Authorization: <token>` without `Bearer`, own token",
            stack: Stack::OwnTokens,
            keys: merchant,
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| {
                create(READY_USER)
                    .own(TEST_MERCHANT, MSN, &c.token)
                    .replace("Authorization", c.token.clone())
            },
            expect: Refused(Cause::BearerMissing),
            counts: &[],
        },
        Row {
            name: "`Authorization: <token>` without `Bearer`, own token, no Preflight",
            stack: Stack::DiagnoseOnly,
            keys: merchant,
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| {
                create(READY_USER)
                    .own(TEST_MERCHANT, MSN, &c.token)
                    .replace("Authorization", c.token.clone())
            },
            expect: Response(Cause::BearerMissing, 401),
            counts: &[(CreatePayment, 1)],
        },
        Row {
            name: "`Authorization: <token>` without `Bearer` set by the user, full stack",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| {
                create(READY_USER)
                    .msn(MSN)
                    .header("Authorization", "eyJhbGciOiJub25lIn0.e30.c2ln")
            },
            expect: Succeeds(201),
            counts: &[(AccessToken, 1), (CreatePayment, 1)],
        },
        Row {
            name: "no `Authorization` header, own token",
            stack: Stack::OwnTokens,
            keys: merchant,
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| {
                create(READY_USER)
                    .own(TEST_MERCHANT, MSN, &c.token)
                    .without("Authorization")
            },
            expect: Refused(Cause::MissingAuthorization),
            counts: &[],
        },
        Row {
            name: "expired token (a JWT whose `exp` has passed), own token",
            stack: Stack::OwnTokens,
            keys: merchant,
            setup: &[],
            call: |_| get_payment(Test).own(TEST_MERCHANT, MSN, &expired_jwt()),
            expect: Refused(Cause::AccessTokenExpired),
            counts: &[],
        },
        Row {
            name: "expired token (expired for Vipps, not for the client's clock), own token, no Preflight",
            stack: Stack::DiagnoseOnly,
            keys: merchant,
            setup: &[OwnToken(TEST_MERCHANT), ExpireTokens],
            call: |c| get_payment(Test).own(TEST_MERCHANT, MSN, &c.token),
            expect: Response(Cause::InvalidAccessToken, 401),
            counts: &[(GetPayment, 1)],
        },
        Row {
            // The cached token is expired for the emulator: 401, Auth drops it and
            // replays once with a fresh token.
            name: "expired token, full stack (the cache's clock disagrees with Vipps)",
            stack: Stack::Full,
            keys: merchant,
            setup: &[Create, ExpireTokens],
            call: |_| get_payment(Test).msn(MSN),
            expect: Succeeds(200),
            counts: &[(AccessToken, 1), (GetPayment, 2)],
        },
        // ---- Keys for the MSN (FAQ 401, step 2 and 3) ---------------------------
        Row {
            name: "token fetched for one MSN used for another, own token",
            stack: Stack::OwnTokens,
            keys: || vec![TEST_MERCHANT.key_set(), TEST_LOGIN_ONLY.key_set()],
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| get_payment(Test).own(TEST_MERCHANT, LOGIN_ONLY_MSN, &c.token),
            expect: Refused(Cause::TokenForOtherMsn),
            counts: &[],
        },
        Row {
            name: "token fetched for one MSN used for another, own token, no Preflight",
            stack: Stack::DiagnoseOnly,
            keys: || vec![TEST_MERCHANT.key_set(), TEST_LOGIN_ONLY.key_set()],
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| get_payment(Test).own(TEST_MERCHANT, LOGIN_ONLY_MSN, &c.token),
            expect: Response(Cause::InvalidAccessToken, 401),
            counts: &[(GetPayment, 1)],
        },
        Row {
            // The keyring files MSN 123456's keys under MSN 123457: the token is
            // minted for 123456, the call acts for 123457. Auth takes the 401 for a
            // stale token and replays once with a fresh one, which fails the same.
            name: "keys of one MSN configured for another MSN, full stack",
            stack: Stack::Full,
            keys: || {
                vec![
                    KeySet::merchant(
                        Test,
                        Msn::new(LOGIN_ONLY_MSN).unwrap(),
                        TEST_MERCHANT.client_id(),
                        TEST_MERCHANT.client_secret(),
                        TEST_MERCHANT.subscription_key(),
                    )
                    .unwrap(),
                ]
            },
            setup: &[],
            call: |_| get_payment(Test).msn(LOGIN_ONLY_MSN),
            expect: Response(Cause::InvalidAccessToken, 401),
            counts: &[(AccessToken, 2), (GetPayment, 2)],
        },
        Row {
            name: "subscription key differs between the token call and the API call, own token",
            stack: Stack::OwnTokens,
            keys: || vec![TEST_MERCHANT.key_set(), TEST_LOGIN_ONLY.key_set()],
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| {
                get_payment(Test).own(TEST_MERCHANT, MSN, &c.token).replace(
                    "Ocp-Apim-Subscription-Key",
                    TEST_LOGIN_ONLY.subscription_key(),
                )
            },
            expect: Refused(Cause::SubscriptionKeyMismatch),
            counts: &[],
        },
        Row {
            name: "subscription key differs between the token call and the API call, no Preflight",
            stack: Stack::DiagnoseOnly,
            keys: || vec![TEST_MERCHANT.key_set(), TEST_LOGIN_ONLY.key_set()],
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| {
                get_payment(Test).own(TEST_MERCHANT, MSN, &c.token).replace(
                    "Ocp-Apim-Subscription-Key",
                    TEST_LOGIN_ONLY.subscription_key(),
                )
            },
            expect: Response(Cause::InvalidAccessToken, 401),
            counts: &[(GetPayment, 1)],
        },
        Row {
            // Auth sends the subscription key the token was fetched with.
            name: "another subscription key set by the user, full stack",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| {
                create(READY_USER).msn(MSN).header(
                    "Ocp-Apim-Subscription-Key",
                    TEST_LOGIN_ONLY.subscription_key(),
                )
            },
            expect: Succeeds(201),
            counts: &[(AccessToken, 1), (CreatePayment, 1)],
        },
        Row {
            name: "invalid API keys: wrong subscription key",
            stack: Stack::Full,
            keys: || {
                vec![
                    KeySet::merchant(
                        Test,
                        Msn::new(MSN).unwrap(),
                        TEST_MERCHANT.client_id(),
                        TEST_MERCHANT.client_secret(),
                        WRONG_SUB_KEY,
                    )
                    .unwrap(),
                ]
            },
            setup: &[],
            call: |_| create(READY_USER).msn(MSN),
            expect: Token(Cause::InvalidSubscriptionKey, 401),
            counts: &[(AccessToken, 1)],
        },
        Row {
            name: "invalid API keys: wrong client secret",
            stack: Stack::Full,
            keys: || {
                vec![
                    KeySet::merchant(
                        Test,
                        Msn::new(MSN).unwrap(),
                        TEST_MERCHANT.client_id(),
                        "not-the-client-secret",
                        TEST_MERCHANT.subscription_key(),
                    )
                    .unwrap(),
                ]
            },
            setup: &[],
            call: |_| create(READY_USER).msn(MSN),
            expect: Token(Cause::InvalidClientCredentials, 401),
            counts: &[(AccessToken, 1)],
        },
        Row {
            name: "missing subscription key, own token",
            stack: Stack::OwnTokens,
            keys: merchant,
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| {
                get_payment(Test)
                    .own(TEST_MERCHANT, MSN, &c.token)
                    .without("Ocp-Apim-Subscription-Key")
            },
            expect: Refused(Cause::MissingSubscriptionKey),
            counts: &[],
        },
        Row {
            name: "missing subscription key, own token, no Preflight",
            stack: Stack::DiagnoseOnly,
            keys: merchant,
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| {
                get_payment(Test)
                    .own(TEST_MERCHANT, MSN, &c.token)
                    .without("Ocp-Apim-Subscription-Key")
            },
            expect: Response(Cause::MissingSubscriptionKey, 401),
            counts: &[(GetPayment, 1)],
        },
        Row {
            name: "subscription not found (keys without the ePayment product)",
            stack: Stack::Full,
            keys: || vec![TEST_UNSUBSCRIBED.key_set()],
            setup: &[],
            call: |_| create(READY_USER).msn(emulator::TEST_UNSUBSCRIBED_MSN),
            expect: Response(Cause::SubscriptionNotFound, 401),
            counts: &[(AccessToken, 1), (CreatePayment, 1)],
        },
        // ---- Environment (FAQ 401, step 5) -------------------------------------
        Row {
            name: "test keys sent to production",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| get_payment(Production).msn(MSN),
            expect: Refused(Cause::WrongEnvironment),
            counts: &[],
        },
        Row {
            name: "production keys sent to test",
            stack: Stack::Full,
            keys: || vec![PRODUCTION_MERCHANT.key_set()],
            setup: &[],
            call: |_| get_payment(Test).msn(PROD_MSN),
            expect: Refused(Cause::WrongEnvironment),
            counts: &[],
        },
        Row {
            name: "test keys filed as production keys (sent to production)",
            stack: Stack::Full,
            keys: || {
                vec![
                    KeySet::merchant(
                        Production,
                        Msn::new(MSN).unwrap(),
                        TEST_MERCHANT.client_id(),
                        TEST_MERCHANT.client_secret(),
                        TEST_MERCHANT.subscription_key(),
                    )
                    .unwrap(),
                ]
            },
            setup: &[],
            call: |_| get_payment(Production).msn(MSN),
            expect: Token(Cause::InvalidSubscriptionKey, 401),
            counts: &[(AccessToken, 1)],
        },
        Row {
            name: "production keys filed as test keys (sent to test)",
            stack: Stack::Full,
            keys: || {
                vec![
                    KeySet::merchant(
                        Test,
                        Msn::new(PROD_MSN).unwrap(),
                        PRODUCTION_MERCHANT.client_id(),
                        PRODUCTION_MERCHANT.client_secret(),
                        PRODUCTION_MERCHANT.subscription_key(),
                    )
                    .unwrap(),
                ]
            },
            setup: &[],
            call: |_| get_payment(Test).msn(PROD_MSN),
            expect: Token(Cause::InvalidSubscriptionKey, 401),
            counts: &[(AccessToken, 1)],
        },
        Row {
            name: "a test token sent to production, own token",
            stack: Stack::OwnTokens,
            keys: merchant,
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| get_payment(Production).own(TEST_MERCHANT, MSN, &c.token),
            expect: Refused(Cause::WrongEnvironment),
            counts: &[],
        },
        // ---- Partner keys (FAQ 403 and 401 step 7) -----------------------------
        Row {
            name: "partner keys without `Merchant-Serial-Number`",
            stack: Stack::Full,
            keys: || vec![PRODUCTION_PARTNER.key_set()],
            setup: &[],
            call: |_| create(READY_USER).env(Production),
            expect: Refused(Cause::PartnerMissingMsnHeader),
            counts: &[],
        },
        Row {
            name: "partner keys without `Merchant-Serial-Number`, own token, no Preflight",
            stack: Stack::DiagnoseOnly,
            keys: || vec![PRODUCTION_PARTNER.key_set()],
            setup: &[OwnToken(PRODUCTION_PARTNER)],
            call: |c| {
                create(READY_USER)
                    .env(Production)
                    .own(PRODUCTION_PARTNER, PARTNER_MSN, &c.token)
                    .without("Merchant-Serial-Number")
            },
            expect: Response(Cause::PartnerMissingMsnHeader, 403),
            counts: &[(CreatePayment, 1)],
        },
        Row {
            name: "partner keys with `merchantSerialNumber` as the header name",
            stack: Stack::Full,
            keys: || vec![PRODUCTION_PARTNER.key_set()],
            setup: &[],
            call: |_| {
                create(READY_USER)
                    .env(Production)
                    .header("merchantSerialNumber", PARTNER_MSN.to_string())
            },
            expect: Refused(Cause::MsnHeaderMisspelled),
            counts: &[],
        },
        Row {
            name: "partner keys with `merchantSerialNumber` as the header name, own token",
            stack: Stack::OwnTokens,
            keys: || vec![PRODUCTION_PARTNER.key_set()],
            setup: &[OwnToken(PRODUCTION_PARTNER)],
            call: |c| {
                create(READY_USER)
                    .env(Production)
                    .own(PRODUCTION_PARTNER, PARTNER_MSN, &c.token)
                    .without("Merchant-Serial-Number")
                    .header("merchantSerialNumber", PARTNER_MSN.to_string())
            },
            expect: Refused(Cause::MsnHeaderMisspelled),
            counts: &[],
        },
        Row {
            name: "partner keys for an MSN not connected (keyring lists the MSNs)",
            stack: Stack::Full,
            keys: || {
                vec![
                    PRODUCTION_PARTNER
                        .key_set()
                        .connected_msns(PRODUCTION_PARTNER.connected_msns()),
                ]
            },
            setup: &[],
            call: |_| create(READY_USER).env(Production).msn(NOT_CONNECTED_MSN),
            expect: Refused(Cause::PartnerMsnNotConnected),
            counts: &[],
        },
        Row {
            // The keyring cannot know: the token call for that MSN answers 403.
            name: "partner keys for an MSN not connected (keyring does not list them)",
            stack: Stack::Full,
            keys: || vec![PRODUCTION_PARTNER.key_set()],
            setup: &[],
            call: |_| create(READY_USER).env(Production).msn(NOT_CONNECTED_MSN),
            expect: Token(Cause::PartnerMsnNotConnected, 403),
            counts: &[(AccessToken, 1)],
        },
        Row {
            // Auth fetches the token before Preflight sees the body.
            name: "`merchantSerialNumber` in the body differs from the `Merchant-Serial-Number` header",
            stack: Stack::Full,
            keys: || vec![PRODUCTION_PARTNER.key_set()],
            setup: &[],
            call: |_| {
                create_with(|b| b["merchantSerialNumber"] = json!((PARTNER_MSN + 1).to_string()))
                    .env(Production)
                    .msn(PARTNER_MSN)
            },
            expect: Refused(Cause::MsnHeaderBodyMismatch),
            counts: &[(AccessToken, 1)],
        },
        // ---- 403 Login-only ------------------------------------------------------
        Row {
            name: "Login-only merchant -> Merchant Not Allowed for Ecommerce Payment",
            stack: Stack::Full,
            keys: || vec![TEST_LOGIN_ONLY.key_set()],
            setup: &[],
            call: |_| create(READY_USER).msn(LOGIN_ONLY_MSN),
            expect: Response(Cause::MerchantNotAllowedForEcommerce, 403),
            counts: &[(AccessToken, 1), (CreatePayment, 1)],
        },
        // ---- 400 Bad Request -----------------------------------------------------
        Row {
            name: "invalid amount (decimals, not minor units)",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| create_with(|b| b["amount"]["value"] = json!(499.5)).msn(MSN),
            expect: Refused(Cause::InvalidAmount),
            counts: &[(AccessToken, 1)],
        },
        Row {
            name: "invalid amount, own token, no Preflight",
            stack: Stack::DiagnoseOnly,
            keys: merchant,
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| {
                create_with(|b| b["amount"]["value"] = json!(-100)).own(
                    TEST_MERCHANT,
                    MSN,
                    &c.token,
                )
            },
            expect: Response(Cause::InvalidAmount, 400),
            counts: &[(CreatePayment, 1)],
        },
        Row {
            name: "returnUrl invalid (not https)",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| {
                create_with(|b| b["returnUrl"] = json!("http://acme.example/return")).msn(MSN)
            },
            expect: Refused(Cause::InvalidUrl),
            counts: &[(AccessToken, 1)],
        },
        Row {
            name: "returnUrl invalid, own token, no Preflight",
            stack: Stack::DiagnoseOnly,
            keys: merchant,
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| {
                create_with(|b| b["returnUrl"] = json!("acme.example/return")).own(
                    TEST_MERCHANT,
                    MSN,
                    &c.token,
                )
            },
            expect: Response(Cause::InvalidUrl, 400),
            counts: &[(CreatePayment, 1)],
        },
        Row {
            // eCom's callback: the emulator has no eCom API, and needs none here.
            name: "callbackUrl invalid (eCom `callbackPrefix` not https)",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| {
                Call::post(Test, "/ecomm/v2/payments", json!({
                    "merchantInfo": {
                        "merchantSerialNumber": MSN.to_string(),
                        "callbackPrefix": "http://acme.example/vipps/callbacks",
                        "fallBack": "https://acme.example/orders/return",
                    },
                    "customerInfo": {"mobileNumber": "91000001"},
                    "transaction": {"orderId": "acme-order-0001", "amount": 49900, "transactionText": "Coffee"}
                }))
                .msn(MSN)
            },
            expect: Refused(Cause::InvalidUrl),
            counts: &[(AccessToken, 1)],
        },
        Row {
            name: "captured amount exceeds the reserved amount",
            stack: Stack::Full,
            keys: merchant,
            setup: &[Create],
            call: |_| modify("capture", 100_000).msn(MSN),
            expect: Response(Cause::CaptureExceedsReserved, 400),
            counts: &[(Capture, 1)],
        },
        Row {
            name: "cannot refund more than captured amount",
            stack: Stack::Full,
            keys: merchant,
            setup: &[Create, CaptureAll],
            call: |_| modify("refund", 50_000).msn(MSN),
            expect: Response(Cause::RefundExceedsCaptured, 400),
            counts: &[(Refund, 1)],
        },
        Row {
            name: "user unknown (not a Vipps MobilePay user)",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| create(UNKNOWN_USER).msn(MSN),
            expect: Response(Cause::UserUnknown, 400),
            counts: &[(AccessToken, 1), (CreatePayment, 1)],
        },
        Row {
            name: "user unknown (under 15, cannot pay businesses)",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| create(UNDER_15_USER).msn(MSN),
            expect: Response(Cause::UserUnknown, 400),
            counts: &[(AccessToken, 1), (CreatePayment, 1)],
        },
        Row {
            name: "user unknown (a non-Norwegian phone number)",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| create("46701234567").msn(MSN),
            expect: Response(Cause::UserUnknown, 400),
            counts: &[(AccessToken, 1), (CreatePayment, 1)],
        },
        Row {
            name: "phone number incorrectly formatted (`+47 91 00 00 01`)",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| create("+47 91 00 00 01").msn(MSN),
            expect: Refused(Cause::InvalidPhoneNumber),
            counts: &[(AccessToken, 1)],
        },
        Row {
            name: "phone number incorrectly formatted, own token, no Preflight",
            stack: Stack::DiagnoseOnly,
            keys: merchant,
            setup: &[OwnToken(TEST_MERCHANT)],
            call: |c| create("+4791000001").own(TEST_MERCHANT, MSN, &c.token),
            expect: Response(Cause::InvalidPhoneNumber, 400),
            counts: &[(CreatePayment, 1)],
        },
        // ---- The app-installed-and-15 error (test environment) ------------------
        Row {
            name: "new test user who has not logged in to the test app",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| create(NOT_LOGGED_IN_USER).msn(MSN),
            expect: Response(Cause::TestUserNotReady, 400),
            counts: &[(AccessToken, 1), (CreatePayment, 1)],
        },
        Row {
            // The emulator, like the test environment, knows only its test users:
            // a real user's number is unknown there (7010). The diagnosis says to
            // use a test user in test (see `the_table_covers_the_faq`).
            name: "a real user's number in the test environment",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| create("4748059999").msn(MSN),
            expect: Response(Cause::UserUnknown, 400),
            counts: &[(AccessToken, 1), (CreatePayment, 1)],
        },
        // ---- Rate limits and server errors --------------------------------------
        Row {
            name: "429 once on create: retried with the same Idempotency-Key",
            stack: Stack::Full,
            keys: merchant,
            setup: &[Faults(|f| {
                f.rate_limit_next(CreatePayment, 1, Duration::ZERO);
            })],
            call: |_| create(READY_USER).msn(MSN),
            expect: Succeeds(201),
            counts: &[(AccessToken, 1), (CreatePayment, 2)],
        },
        Row {
            name: "429 on every attempt: retries exhausted (1 + 3)",
            stack: Stack::Full,
            keys: merchant,
            setup: &[Faults(|f| {
                f.rate_limit_next(CreatePayment, 10, Duration::ZERO);
            })],
            call: |_| create(READY_USER).msn(MSN),
            expect: Response(Cause::RateLimited, 429),
            counts: &[(AccessToken, 1), (CreatePayment, 4)],
        },
        Row {
            name: "502 once on capture: retried",
            stack: Stack::Full,
            keys: merchant,
            setup: &[
                Create,
                Faults(|f| {
                    f.bad_gateway_next(Capture, 1);
                }),
            ],
            call: |_| modify("capture", 49_900).msn(MSN),
            expect: Succeeds(200),
            counts: &[(Capture, 2)],
        },
        Row {
            name: "502 on every attempt: retries exhausted (1 + 3)",
            stack: Stack::Full,
            keys: merchant,
            setup: &[
                Create,
                Faults(|f| {
                    f.bad_gateway_next(Capture, 10);
                }),
            ],
            call: |_| modify("capture", 49_900).msn(MSN),
            expect: Response(Cause::ServerError, 502),
            counts: &[(Capture, 4)],
        },
        Row {
            // A 500 may come from a malformed request: not retried.
            name: "500 on capture: not retried",
            stack: Stack::Full,
            keys: merchant,
            setup: &[
                Create,
                Faults(|f| {
                    f.fail_next(Capture, 1);
                }),
            ],
            call: |_| modify("capture", 49_900).msn(MSN),
            expect: Response(Cause::ServerError, 500),
            counts: &[(Capture, 1)],
        },
        Row {
            name: "connection dropped on a GET: retried",
            stack: Stack::Full,
            keys: merchant,
            setup: &[
                Create,
                Faults(|f| {
                    f.drop_next(GetPayment, 1);
                }),
            ],
            call: |_| get_payment(Test).msn(MSN),
            expect: Succeeds(200),
            counts: &[(GetPayment, 2)],
        },
        Row {
            // A token request is safe to repeat (it changes nothing): one 502 is
            // retried (on the tower path through the stack's Retry, on the reqwest
            // path through the token client's own), and the call reaches the API
            // (which knows no such payment).
            name: "502 once on the token endpoint",
            stack: Stack::Full,
            keys: merchant,
            setup: &[Faults(|f| {
                f.bad_gateway_next(AccessToken, 1);
            })],
            call: |_| get_payment(Test).msn(MSN),
            expect: Response(Cause::ReferenceNotFound, 404),
            counts: &[(AccessToken, 2), (GetPayment, 1)],
        },
        Row {
            name: "429 once on the token endpoint",
            stack: Stack::Full,
            keys: merchant,
            setup: &[Faults(|f| {
                f.rate_limit_next(AccessToken, 1, Duration::ZERO);
            })],
            call: |_| get_payment(Test).msn(MSN),
            expect: Response(Cause::ReferenceNotFound, 404),
            counts: &[(AccessToken, 2), (GetPayment, 1)],
        },
        Row {
            // The default policy gives up after 3 retries: 4 token requests, then
            // the diagnosed error of the last; the API is never called.
            name: "502 every time on the token endpoint",
            stack: Stack::Full,
            keys: merchant,
            setup: &[Faults(|f| {
                f.bad_gateway_next(AccessToken, 10);
            })],
            call: |_| get_payment(Test).msn(MSN),
            expect: Token(Cause::ServerError, 502),
            counts: &[(AccessToken, 4)],
        },
        Row {
            name: "unknown path (a typo in the URL)",
            stack: Stack::Full,
            keys: merchant,
            setup: &[],
            call: |_| Call::get(Test, "/epayment/v1/payment/acme-order-0001").msn(MSN),
            expect: Response(Cause::Unknown, 404),
            counts: &[(AccessToken, 1), (Other, 1)],
        },
    ]
}

// ---------------------------------------------------------------------------
// The runner.
// ---------------------------------------------------------------------------

fn describe(answer: &Answer) -> String {
    match answer {
        Ok((status, _)) => format!("ok {status}"),
        Err(e) => {
            let origin = match e.origin() {
                Origin::Refused => "refused".to_owned(),
                Origin::Response(r) => format!("response {}", r.status.as_u16()),
                Origin::Token(Some(r)) => format!("token {}", r.status.as_u16()),
                Origin::Token(None) => "token (no answer)".to_owned(),
                Origin::Transport => "transport".to_owned(),
                _ => "other".to_owned(),
            };
            format!("{} ({origin})", e.code())
        }
    }
}

fn check(expect: Expect, answer: &Answer) -> Result<(), String> {
    let fail = || Err(format!("expected {expect:?}, got {}", describe(answer)));
    match (expect, answer) {
        (Expect::Ok(want), Ok((status, _))) if status.as_u16() == want => Ok(()),
        (Expect::Refused(cause), Err(e)) if e.is_refused() && e.cause() == cause => Ok(()),
        (Expect::Response(cause, status), Err(e))
            if matches!(e.origin(), Origin::Response(r) if r.status.as_u16() == status)
                && e.cause() == cause =>
        {
            Ok(())
        }
        (Expect::Token(cause, status), Err(e))
            if matches!(e.origin(), Origin::Token(Some(r)) if r.status.as_u16() == status)
                && e.cause() == cause =>
        {
            Ok(())
        }
        _ => fail(),
    }
}

fn check_counts(emu: &Emulator, want: &[(Endpoint, usize)]) -> Result<(), String> {
    let got = emu.counts();
    for endpoint in Endpoint::ALL {
        let expected = want
            .iter()
            .find(|(e, _)| *e == endpoint)
            .map_or(0, |(_, n)| *n);
        if got.get(endpoint) != expected {
            return Err(format!(
                "emulator counts {got:?}, expected {want:?} (every other endpoint 0)"
            ));
        }
    }
    Ok(())
}

/// Every attempt of the call (a retry, a replay with a fresh token) carried the same
/// `Idempotency-Key`: a retried POST is the same operation, never a second payment.
fn same_idempotency_key(emu: &Emulator) -> Result<(), String> {
    let keys: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|r| r.method == Method::POST && r.endpoint != AccessToken)
        .map(|r| r.headers.get("idempotency-key").cloned())
        .collect();
    match keys.first() {
        Some(None) => Err("a POST without an Idempotency-Key reached the emulator".into()),
        Some(first) if keys.iter().any(|k| k != first) => Err(format!(
            "the attempts carried different Idempotency-Keys: {keys:?}"
        )),
        _ => Ok(()),
    }
}

async fn setup(emu: &Emulator, client: &UserClient, row: &Row, ctx: &mut Ctx) {
    for step in row.setup {
        match *step {
            Step::Create => {
                let (status, _) = client
                    .send(emu, create(READY_USER).msn(MSN))
                    .await
                    .unwrap_or_else(|e| panic!("{}: setup create: {e}", row.name));
                assert_eq!(status, 201, "{}: setup create", row.name);
            }
            Step::CaptureAll => {
                let (status, body) = client
                    .send(emu, modify("capture", 49_900).msn(MSN))
                    .await
                    .unwrap_or_else(|e| panic!("{}: setup capture: {e}", row.name));
                assert_eq!(status, 200, "{}: setup capture", row.name);
                assert_eq!(body["aggregate"]["capturedAmount"]["value"], 49_900);
            }
            Step::OwnToken(keys) => {
                ctx.token = client.own_token(emu, keys, keys.msn().map(Msn::get)).await;
            }
            Step::ExpireTokens => emu.advance_clock(Duration::from_secs(2 * 3600)),
            Step::Faults(f) => f(&emu.faults()),
        }
    }
}

async fn run_row(row: &Row, path: Path) -> (String, Result<(), String>) {
    let emu = Emulator::start().await.unwrap();
    let keyring = (row.keys)()
        .into_iter()
        .fold(
            emu.keyring_builder().system("acme-shop", "1.0.0"),
            |b, k| b.key_set(k),
        )
        .build()
        .unwrap();
    let client = UserClient::new(&emu, path, row.stack, keyring);
    let mut ctx = Ctx {
        token: String::new(),
    };
    setup(&emu, &client, row, &mut ctx).await;
    emu.reset_counts();
    let answer = client.send(&emu, (row.call)(&ctx)).await;
    let line = format!(
        "{:<8} {:<13} {:<58} {:<45} {:?}",
        format!("{path:?}"),
        format!("{:?}", row.stack),
        describe(&answer),
        row.name,
        emu.counts()
    );
    let result = check(row.expect, &answer)
        .and_then(|()| check_counts(&emu, row.counts))
        .and_then(|()| same_idempotency_key(&emu));
    // No error shows a secret: not the keys, not a token that went on the wire.
    if let Err(e) = &answer {
        let shown = format!("{e} {e:?} {}", e.diagnosis().report());
        let mut secrets: Vec<String> = emulator::ALL_CREDENTIALS
            .iter()
            .flat_map(|c| [c.client_secret(), c.subscription_key()])
            .map(str::to_owned)
            .collect();
        secrets.extend(emu.requests().iter().filter_map(|r| {
            let value = r.headers.get("authorization")?.to_str().ok()?;
            Some(value.rsplit(' ').next()?.to_owned())
        }));
        if !ctx.token.is_empty() {
            secrets.push(ctx.token.clone());
        }
        for secret in secrets.iter().filter(|s| s.len() > 8) {
            assert!(
                !shown.contains(secret.as_str()),
                "{}: a secret in {shown}",
                row.name
            );
        }
    }
    emu.shutdown().await;
    (line, result)
}

#[tokio::test]
async fn every_faq_failure_on_both_paths() {
    let rows = rows();
    let mut failures = Vec::new();
    for row in &rows {
        for path in [Path::Tower, Path::Reqwest] {
            let (line, result) = run_row(row, path).await;
            println!("{line}");
            if let Err(why) = result {
                failures.push(format!("[{path:?}] {}: {why}", row.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} runs failed:\n{}",
        failures.len(),
        rows.len() * 2,
        failures.join("\n")
    );
}

/// The table covers every refusal and diagnosis it claims, on both paths: no row
/// may expect a cause the catalog does not have, and the FAQ's causes all appear.
#[test]
fn the_table_covers_the_faq() {
    let rows = rows();
    let causes: Vec<Cause> = rows
        .iter()
        .filter_map(|r| match r.expect {
            Expect::Refused(c) | Expect::Response(c, _) | Expect::Token(c, _) => Some(c),
            Expect::Ok(_) => None,
        })
        .collect();
    for cause in [
        Cause::BearerWrongCase,
        Cause::BearerMissing,
        Cause::MissingAuthorization,
        Cause::AccessTokenExpired,
        Cause::InvalidAccessToken,
        Cause::TokenForOtherMsn,
        Cause::SubscriptionKeyMismatch,
        Cause::InvalidSubscriptionKey,
        Cause::MissingSubscriptionKey,
        Cause::SubscriptionNotFound,
        Cause::InvalidClientCredentials,
        Cause::WrongEnvironment,
        Cause::PartnerMissingMsnHeader,
        Cause::PartnerMsnNotConnected,
        Cause::MsnHeaderBodyMismatch,
        Cause::MsnHeaderMisspelled,
        Cause::MerchantNotAllowedForEcommerce,
        Cause::InvalidAmount,
        Cause::InvalidUrl,
        Cause::CaptureExceedsReserved,
        Cause::RefundExceedsCaptured,
        Cause::UserUnknown,
        Cause::InvalidPhoneNumber,
        Cause::TestUserNotReady,
        Cause::RateLimited,
        Cause::ServerError,
    ] {
        assert!(causes.contains(&cause), "no row for {cause}");
    }
    // A real user in the test environment answers "user unknown": its steps point
    // to the test users.
    assert!(
        Cause::UserUnknown
            .steps()
            .iter()
            .any(|s| s.contains("test environment") && s.contains("test user"))
    );
}

// ---------------------------------------------------------------------------
// The happy path.
// ---------------------------------------------------------------------------

async fn happy_path(path: Path) {
    let emu = Emulator::start().await.unwrap();
    let keyring = emu
        .keyring_builder()
        .key_set(TEST_MERCHANT.key_set())
        .system("acme-shop", "1.0.0")
        .build()
        .unwrap();
    let client = UserClient::new(&emu, path, Stack::Full, keyring);

    let (status, body) = client
        .send(&emu, create(READY_USER).msn(MSN))
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["reference"], REFERENCE);

    let (status, body) = client.send(&emu, get_payment(Test).msn(MSN)).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "AUTHORIZED");

    let (status, body) = client
        .send(&emu, modify("capture", 49_900).msn(MSN))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["aggregate"]["capturedAmount"]["value"], 49_900);

    let (status, body) = client
        .send(&emu, modify("refund", 10_000).msn(MSN))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["aggregate"]["refundedAmount"]["value"], 10_000);

    // The merchant's own MSN is added when the request lacks the header.
    let (status, _) = client.send(&emu, get_payment(Test)).await.unwrap();
    assert_eq!(status, 200);

    // Many more calls, one token.
    for _ in 0..20 {
        let (status, _) = client.send(&emu, get_payment(Test).msn(MSN)).await.unwrap();
        assert_eq!(status, 200);
    }
    let counts = emu.counts();
    assert_eq!(counts.get(AccessToken), 1, "{counts:?}");
    assert_eq!(counts.get(CreatePayment), 1, "{counts:?}");
    assert_eq!(counts.get(GetPayment), 22, "{counts:?}");
    assert_eq!(counts.get(Capture), 1, "{counts:?}");
    assert_eq!(counts.get(Refund), 1, "{counts:?}");
    assert_eq!(counts.total(), 26, "{counts:?}");

    // What went on the wire: the right headers, the same key and token throughout.
    let seen = emu.requests();
    let api: Vec<_> = seen.iter().filter(|r| r.endpoint != AccessToken).collect();
    assert_eq!(api.len(), 25);
    let auth = api[0].headers.get("authorization").unwrap();
    for request in &api {
        assert_eq!(request.headers.get("authorization"), Some(auth));
        assert_eq!(
            request.headers.get("ocp-apim-subscription-key").unwrap(),
            TEST_MERCHANT.subscription_key()
        );
        assert_eq!(
            request.headers.get("merchant-serial-number").unwrap(),
            "123456"
        );
        assert_eq!(
            request.headers.get("vipps-system-name").unwrap(),
            "acme-shop"
        );
        if request.method == Method::POST {
            assert!(request.headers.contains_key("idempotency-key"));
        }
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn happy_path_tower() {
    happy_path(Path::Tower).await;
}

#[tokio::test]
async fn happy_path_reqwest() {
    happy_path(Path::Reqwest).await;
}

/// Partner keys over 50 MSNs, two concurrent calls per MSN, then two more: exactly
/// one token per MSN, each call carrying its own MSN's token.
async fn partner_over_many_msns(path: Path) {
    let emu = Emulator::start().await.unwrap();
    let keyring = emu
        .keyring_builder()
        .key_set(PRODUCTION_PARTNER.key_set())
        .system("acme-platform", "2.0.0")
        .build()
        .unwrap();
    let client = UserClient::new(&emu, path, Stack::Full, keyring);
    let msns: Vec<u64> = (0..50).map(|i| PARTNER_MSN + i * 7).collect();
    // Two payments per MSN, all 100 created at once: both calls of an MSN wait for
    // the same token fetch.
    let references: Vec<(u64, String)> = msns
        .iter()
        .flat_map(|msn| ["a", "b"].map(|x| (*msn, format!("partner-order-{msn}-{x}"))))
        .collect();
    let creates = references.iter().map(|(msn, reference)| {
        let mut body = create_body(READY_USER);
        body["reference"] = json!(reference);
        client.send(
            &emu,
            Call::post(Production, "/epayment/v1/payments", body).msn(*msn),
        )
    });
    for answer in futures_util::future::join_all(creates).await {
        assert_eq!(answer.unwrap().0, 201);
    }
    let gets = references.iter().map(|(msn, reference)| {
        client.send(
            &emu,
            Call::get(Production, format!("/epayment/v1/payments/{reference}")).msn(*msn),
        )
    });
    for answer in futures_util::future::join_all(gets).await {
        let (status, body) = answer.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["state"], "AUTHORIZED");
    }
    let counts = emu.counts();
    assert_eq!(counts.get(AccessToken), 50, "{counts:?}");
    assert_eq!(counts.get(CreatePayment), 100, "{counts:?}");
    assert_eq!(counts.get(GetPayment), 100, "{counts:?}");
    assert_eq!(counts.total(), 250, "{counts:?}");

    // One token per MSN: fetched with that MSN's header, used only for it.
    let seen = emu.requests();
    let mut token_of = std::collections::HashMap::new();
    for request in seen.iter().filter(|r| r.endpoint != AccessToken) {
        let msn = request
            .headers
            .get("merchant-serial-number")
            .unwrap()
            .clone();
        let auth = request.headers.get("authorization").unwrap().clone();
        let minted = emu
            .minted_for(auth.to_str().unwrap().strip_prefix("Bearer ").unwrap())
            .expect("a token the emulator minted");
        assert_eq!(
            minted.msn.map(|m| m.to_string()).as_deref(),
            Some(msn.to_str().unwrap())
        );
        assert!(minted.partner);
        let previous = token_of.insert(msn, auth.clone());
        if let Some(previous) = previous {
            assert_eq!(previous, auth, "one token per MSN");
        }
    }
    assert_eq!(token_of.len(), 50);
    emu.shutdown().await;
}

#[tokio::test]
async fn partner_keys_over_50_msns_tower() {
    partner_over_many_msns(Path::Tower).await;
}

#[tokio::test]
async fn partner_keys_over_50_msns_reqwest() {
    partner_over_many_msns(Path::Reqwest).await;
}

/// The full stack cannot send a request without a subscription key: a keyring will
/// not hold keys without one.
#[test]
fn a_keyring_cannot_hold_keys_without_a_subscription_key() {
    let msn = Msn::new(MSN).unwrap();
    assert!(
        KeySet::merchant(
            Test,
            msn,
            TEST_MERCHANT.client_id(),
            TEST_MERCHANT.client_secret(),
            ""
        )
        .is_err()
    );
}
