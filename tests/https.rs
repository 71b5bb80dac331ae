//! The boundary with the real hosts, over real TLS on loopback: the quick start
//! over HTTPS with a CA made at test time; certificates from an unknown CA,
//! expired, or for another name (one attempt, never retried, diagnosed with the TLS
//! library's words), for API calls and token requests; no key, secret or token
//! over plain HTTP to the official hosts; DNS failures and refused connections.

mod tls_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower::{Layer, Service, ServiceExt};
use tower_vipps::emulator::{
    Emulator, Endpoint, PRODUCTION_MERCHANT, PRODUCTION_PARTNER, TEST_MERCHANT,
};
use tower_vipps::retry::RetryPolicy;
use tower_vipps::token::{TokenClient, TokenRequest};
use tower_vipps::{
    BoxError, Cause, Environment, HttpsClient, Keyring, Origin, SystemInfo, VippsError,
};

use tls_support::{Ca, Leaf, TlsFront, closed_port};

/// An HTTPS front with a certificate of `leaf` from `ca`, before the emulator.
async fn front(ca: &Ca, leaf: Leaf, emulator: &Emulator) -> TlsFront {
    TlsFront::start(ca.issue(leaf), emulator.addr(Environment::Test)).await
}

fn get(url: String) -> Request<Full<Bytes>> {
    Request::get(url)
        .header("Merchant-Serial-Number", "123456")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn assert_no_secret(text: &str) {
    for secret in [
        TEST_MERCHANT.client_secret(),
        TEST_MERCHANT.subscription_key(),
    ] {
        assert!(!text.contains(secret), "a secret in: {text}");
    }
}

/// The quick start as the README writes it, with the test CA added the documented
/// way, against the emulator behind TLS: token request and API calls over HTTPS.
#[tokio::test]
async fn quick_start_reaches_an_https_server_with_a_private_ca() {
    let emulator = Emulator::start().await.unwrap();
    let ca = Ca::new("tower-vipps test CA");
    let server = front(&ca, Leaf::Good, &emulator).await;

    let keyring = Keyring::builder()
        .merchant(
            Environment::Test,
            "123456".parse().unwrap(),
            TEST_MERCHANT.client_id(),
            TEST_MERCHANT.client_secret(),
            TEST_MERCHANT.subscription_key(),
        )
        .system("acme-shop", "1.4.2")
        // The test server stands in for apitest.vipps.no (HTTPS: no plaintext).
        .host(Environment::Test, &server.authority())
        .build()
        .unwrap();
    let https = HttpsClient::builder()
        .add_root_certificate(ca.der())
        .build()
        .unwrap();
    let client = tower_vipps::layer(keyring).layer(https);

    let request = get(format!(
        "{}/epayment/v1/payments/acme-order-1001",
        server.base_url()
    ));
    let err = match client.clone().oneshot(request).await {
        Ok(response) => panic!("unexpected {}", response.status()),
        Err(err) => err,
    };
    // The answer of the API, through TLS: no such payment.
    assert_eq!(err.cause(), Cause::ReferenceNotFound, "{err}");
    assert_eq!(emulator.count(Endpoint::AccessToken), 1);
    assert_eq!(emulator.counts().api_calls(), 1);
    assert!(server.handshakes() >= 1);

    // A success streams through.
    let body = serde_json::json!({
        "amount": {"value": 1000, "currency": "NOK"},
        "paymentMethod": {"type": "WALLET"},
        "customer": {"phoneNumber": tower_vipps::emulator::READY_USER},
        "reference": "acme-order-https-1",
        "returnUrl": "https://acme.example/return",
        "userFlow": "PUSH_MESSAGE",
    });
    let request = Request::post(format!("{}/epayment/v1/payments", server.base_url()))
        .header("Merchant-Serial-Number", "123456")
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = client.oneshot(request).await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(emulator.count(Endpoint::AccessToken), 1);
}

/// `tower_vipps::client(keyring)`: the one-call preset is the same stack.
#[tokio::test]
async fn the_one_call_client_refuses_what_the_preset_refuses() {
    let keyring = Keyring::builder()
        .key_set(TEST_MERCHANT.key_set())
        .build()
        .unwrap();
    let client = tower_vipps::client(keyring);
    let err = client
        .oneshot(get(
            "http://apitest.vipps.no/epayment/v1/payments/acme-order-1001".into(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.cause(), Cause::InsecureScheme);
    assert!(err.is_refused());
}

/// One certificate failure: one connection, no retry, a cause naming the
/// certificate problem, rustls's own words in `Display`, for an API call (whose
/// token request fails first) and for a token request on its own.
async fn certificate_case(ca: &Ca, trusted: &Ca, leaf: Leaf, cause: Cause, words: &str) {
    let emulator = Emulator::start().await.unwrap();
    let server = front(ca, leaf, &emulator).await;
    let https = HttpsClient::builder()
        .add_root_certificate(trusted.der())
        .build()
        .unwrap();

    // Through the preset: the token request goes first and fails.
    let keyring = Keyring::builder()
        .key_set(TEST_MERCHANT.key_set())
        .host(Environment::Test, &server.authority())
        .build()
        .unwrap();
    let client = tower_vipps::layer(keyring).layer(https.clone());
    let request = Request::post(format!("{}/epayment/v1/payments", server.base_url()))
        .header("Merchant-Serial-Number", "123456")
        .header("Idempotency-Key", "safe-to-repeat-1")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let err = client.oneshot(request).await.unwrap_err();
    assert_eq!(err.cause(), cause, "{err}");
    assert!(!err.is_transient());
    assert!(
        matches!(err.origin(), Origin::Token(None)),
        "{:?}",
        err.origin()
    );
    let text = err.to_string();
    assert!(text.contains(words), "{words:?} not in: {text}");
    assert!(err.diagnosis().report().contains(words));
    // Not wrapped in another VippsError: the source is the transport's own error.
    let source = std::error::Error::source(&err).unwrap();
    assert!(source.downcast_ref::<VippsError>().is_none());
    assert_no_secret(&text);
    assert_no_secret(&format!("{err:?}"));
    assert_eq!(server.connections(), 1, "retried: {text}");
    assert_eq!(server.handshakes(), 0);
    assert_eq!(emulator.counts().total(), 0);

    // A token request on its own, through a TokenClient over the same client.
    let request = TokenRequest::new(TEST_MERCHANT.key_set(), None, SystemInfo::default())
        .base(&server.base_url().parse().unwrap());
    let err = TokenClient::new(https).fetch(&request).await.unwrap_err();
    assert_eq!(err.cause(), cause, "{err}");
    assert!(err.to_string().contains(words), "{err}");
    assert_no_secret(&err.to_string());
    assert_eq!(server.connections(), 2);
    assert_eq!(emulator.counts().total(), 0);
}

#[tokio::test]
async fn certificate_from_an_unknown_ca() {
    let trusted = Ca::new("the CA the client trusts");
    let stranger = Ca::new("a CA nobody trusts");
    certificate_case(
        &stranger,
        &trusted,
        Leaf::Good,
        Cause::CertificateUntrusted,
        "invalid peer certificate: UnknownIssuer",
    )
    .await;
}

#[tokio::test]
async fn expired_certificate() {
    let ca = Ca::new("tower-vipps test CA");
    certificate_case(
        &ca,
        &ca,
        Leaf::Expired,
        Cause::CertificateExpired,
        "invalid peer certificate: certificate expired",
    )
    .await;
}

#[tokio::test]
async fn certificate_for_another_name() {
    let ca = Ca::new("tower-vipps test CA");
    certificate_case(
        &ca,
        &ca,
        Leaf::OtherName,
        Cause::CertificateNameMismatch,
        "certificate not valid for name",
    )
    .await;
}

/// An inner service that counts the requests reaching it.
#[derive(Clone)]
struct Counting<S> {
    inner: S,
    calls: Arc<AtomicUsize>,
}

impl<S> Counting<S> {
    fn new(inner: S) -> (Self, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        (
            Counting {
                inner,
                calls: calls.clone(),
            },
            calls,
        )
    }
}

impl<S, B> Service<Request<B>> for Counting<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> S::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.call(req)
    }
}

/// A stand-in for the network that answers a token to anything.
#[derive(Clone)]
struct AnythingOk;

impl Service<Request<Full<Bytes>>> for AnythingOk {
    type Response = Response<Full<Bytes>>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<Full<Bytes>>) -> Self::Future {
        std::future::ready(Ok(Response::new(Full::new(Bytes::from_static(
            br#"{"token_type":"Bearer","expires_in":3600,"access_token":"eyJhbGciOiJub25lIn0.e30.c2ln"}"#,
        )))))
    }
}

/// `http://api.vipps.no` and `http://apitest.vipps.no`, merchant and partner keys,
/// API calls and token requests: refused unsent, the inner service sees nothing.
#[tokio::test]
async fn plain_http_to_the_official_hosts_is_refused_unsent() {
    for (keys, msn) in [
        (TEST_MERCHANT.key_set(), "123456"),
        (PRODUCTION_MERCHANT.key_set(), "654321"),
        (PRODUCTION_PARTNER.key_set(), "400001"),
    ] {
        let env = keys.environment();
        let keyring = Keyring::builder().key_set(keys.clone()).build().unwrap();
        let (inner, calls) = Counting::new(AnythingOk);
        for host in ["http://api.vipps.no", "http://apitest.vipps.no"] {
            // An API call through the preset.
            let client = tower_vipps::layer(keyring.clone()).layer(inner.clone());
            let request = Request::get(format!("{host}/epayment/v1/payments/acme-order-1001"))
                .header("Merchant-Serial-Number", msn)
                .body(Full::new(Bytes::new()))
                .unwrap();
            let err = client.oneshot(request).await.unwrap_err();
            assert_eq!(err.cause(), Cause::InsecureScheme, "{host} {env}: {err}");
            assert!(err.is_refused());
            assert!(err.to_string().contains(host), "{err}");
            assert_no_secret(&format!("{err} {err:?}"));

            // A token request.
            let request = TokenRequest::new(keys.clone(), None, SystemInfo::default())
                .base(&host.parse().unwrap());
            let err = TokenClient::new(inner.clone())
                .fetch(&request)
                .await
                .unwrap_err();
            assert_eq!(err.cause(), Cause::InsecureScheme, "{host}: {err}");
            assert!(err.is_refused());

            // Hand-made requests with a key or a secret, through Preflight alone.
            let preflight = tower_vipps::PreflightLayer::new()
                .keyring(keyring.clone())
                .layer(inner.clone());
            let token_call = Request::post(format!("{host}/accesstoken/get"))
                .header("client_id", keys.client_id())
                .header("client_secret", keys.client_secret().expose())
                .header(
                    "Ocp-Apim-Subscription-Key",
                    keys.subscription_key().expose(),
                )
                .body(Full::new(Bytes::new()))
                .unwrap();
            let err = preflight.clone().oneshot(token_call).await.unwrap_err();
            assert_eq!(err.cause(), Cause::InsecureScheme, "{host}: {err}");
            let api_call = Request::get(format!("{host}/epayment/v1/payments/acme-order-1001"))
                .header("Authorization", "Bearer eyJhbGciOiJub25lIn0.e30.c2ln")
                .header(
                    "Ocp-Apim-Subscription-Key",
                    keys.subscription_key().expose(),
                )
                .header("Merchant-Serial-Number", msn)
                .body(Full::new(Bytes::new()))
                .unwrap();
            let err = preflight.oneshot(api_call).await.unwrap_err();
            assert_eq!(err.cause(), Cause::InsecureScheme, "{host}: {err}");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 0, "{env}");
    }
}

/// A custom host over plain HTTP only when registered as plaintext.
#[tokio::test]
async fn a_custom_host_takes_plain_http_only_when_registered_as_plaintext() {
    let emulator = Emulator::start().await.unwrap();
    let authority = emulator.addr(Environment::Test).to_string();
    let url = format!("http://{authority}/epayment/v1/payments/acme-order-1001");
    for (plaintext, expected) in [
        (false, Cause::InsecureScheme),
        (true, Cause::ReferenceNotFound),
    ] {
        let builder = Keyring::builder().key_set(TEST_MERCHANT.key_set());
        let builder = if plaintext {
            builder.plaintext_host(Environment::Test, &authority)
        } else {
            builder.host(Environment::Test, &authority)
        };
        let client = tower_vipps::layer(builder.build().unwrap()).layer(HttpsClient::new());
        let err = client.oneshot(get(url.clone())).await.unwrap_err();
        assert_eq!(err.cause(), expected, "{err}");
    }
    // One token request and one API call, both from the plaintext round.
    assert_eq!(emulator.counts().total(), 2);
}

/// The preset over `inner`, with `authority` as the test host, retrying twice
/// with short waits.
fn retrying_stack<S: Clone>(authority: &str, inner: S) -> tower_vipps::VippsService<S> {
    let keyring = Keyring::builder()
        .key_set(TEST_MERCHANT.key_set())
        .host(Environment::Test, authority)
        .build()
        .unwrap();
    tower_vipps::layer(keyring)
        .retry(
            RetryPolicy::new()
                .max_retries(2)
                .base_delay(Duration::from_millis(1))
                .max_delay(Duration::from_millis(5)),
        )
        .layer(inner)
}

/// DNS failure: its own cause; nothing was sent, so it is retried for any request
/// (here a token request, a POST without an idempotency key), as the retry docs
/// say. A `.invalid` name never resolves.
#[tokio::test]
async fn dns_failure_is_diagnosed_and_retried_as_nothing_sent() {
    let keys = TEST_MERCHANT.key_set();
    let (inner, calls) = Counting::new(HttpsClient::new());
    // The token request alone: one attempt, the cause and the resolver's words.
    let request = TokenRequest::new(keys.clone(), None, SystemInfo::default())
        .base(&"https://vipps-test.invalid".parse().unwrap());
    let err = TokenClient::new(inner.clone())
        .fetch(&request)
        .await
        .unwrap_err();
    assert_eq!(err.cause(), Cause::DnsFailure, "{err}");
    assert!(err.is_transient());
    assert!(err.to_string().contains("dns error"), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Through the preset: the API call's token request (a POST without an
    // idempotency key) goes through the retry layer below Auth, which repeats it
    // since nothing was sent: 1 + 2 attempts.
    let (inner, calls) = Counting::new(HttpsClient::new());
    let client = retrying_stack("vipps-test.invalid", inner);
    let err = client
        .oneshot(get(
            "https://vipps-test.invalid/epayment/v1/payments/acme-order-1001".into(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.cause(), Cause::DnsFailure, "{err}");
    assert!(err.diagnosis().report().contains("dns error"));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

/// A refused connection: its own cause, retried for any request (nothing was
/// sent): 1 + 2 attempts of an API call that is not safe to repeat.
#[tokio::test]
async fn refused_connection_is_diagnosed_and_retried_as_nothing_sent() {
    let addr = closed_port().await;
    let (inner, calls) = Counting::new(HttpsClient::new());
    let client = retrying_stack(&addr.to_string(), inner);
    let url = format!("https://{addr}/epayment/v1/payments/acme-order-1001");
    let err = client.oneshot(get(url)).await.unwrap_err();
    assert_eq!(err.cause(), Cause::ConnectionRefused, "{err}");
    assert!(err.is_transient());
    assert!(err.to_string().contains("tcp connect error"), "{err}");
    // The token request (a POST without an idempotency key) went out 3 times: the
    // first attempt and 2 retries, since nothing was sent.
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

/// A client that cannot do HTTPS (hyper's bare `HttpConnector`), to an https URL:
/// its own cause, never retried.
#[tokio::test]
async fn a_client_without_https_is_diagnosed_and_not_retried() {
    let bare = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let (inner, calls) = Counting::new(bare);
    let keyring = Keyring::builder()
        .key_set(TEST_MERCHANT.key_set())
        .build()
        .unwrap();
    let client = tower_vipps::layer(keyring).layer(inner);
    let err = client
        .oneshot(get(
            "https://apitest.vipps.no/epayment/v1/payments/acme-order-1001".into(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.cause(), Cause::HttpsNotSupported, "{err}");
    assert!(err.to_string().contains("scheme is not http"), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// Inner service bounds: a boxed `BoxCloneService` (`Send`, not `Sync`) works
/// under the preset, tokens included.
#[tokio::test]
async fn a_boxed_inner_service_works_under_the_preset() {
    let emulator = Emulator::start().await.unwrap();
    let inner: tower::util::BoxCloneService<
        Request<Full<Bytes>>,
        Response<hyper::body::Incoming>,
        BoxError,
    > = tower::util::BoxCloneService::new(HttpsClient::new().map_err(BoxError::from));
    let keyring = emulator
        .keyring_builder()
        .key_set(TEST_MERCHANT.key_set())
        .build()
        .unwrap();
    let client = tower_vipps::layer(keyring).layer(inner);
    let url = format!(
        "{}/epayment/v1/payments/acme-order-1001",
        emulator.base_url(Environment::Test)
    );
    let err = client.oneshot(get(url)).await.unwrap_err();
    assert_eq!(err.cause(), Cause::ReferenceNotFound, "{err}");
}
