//! HTTPS on the reqwest path: a loopback server with a certificate from a CA made
//! at test time (rcgen), reached through `VippsMiddleware` with the user's client
//! settings (the CA added to the reqwest builder), token requests included.
//!
//! The TLS server here is deliberately minimal and local to this file (tokio-rustls
//! over hyper, ring provider).
#![cfg(all(feature = "reqwest", feature = "emulator"))]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use reqwest_middleware::ClientBuilder;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower_vipps::reqwest::{VippsMiddleware, into_vipps_error};
use tower_vipps::{Environment, Keyring, Origin};

const MSN: &str = "123456";

/// A CA made now: its certificate (DER) and what signs with it.
struct Ca {
    der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let der = params.self_signed(&key).unwrap().der().clone();
    Ca {
        der,
        issuer: Issuer::new(params, key),
    }
}

/// What the TLS server saw: token requests and API calls (requests, not handshakes).
#[derive(Default)]
struct Seen {
    tokens: AtomicUsize,
    api_calls: AtomicUsize,
}

struct TlsServer {
    addr: SocketAddr,
    seen: Arc<Seen>,
    task: JoinHandle<()>,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn respond(status: u16, body: &'static str) -> Response<Full<Bytes>> {
    common::respond(status, "application/json", body)
}

/// A token endpoint and an API on `https://127.0.0.1:PORT`, with a certificate for
/// 127.0.0.1 signed by `ca`.
async fn tls_server(ca: &Ca) -> TlsServer {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca.issuer)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let counts = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, counts) = (acceptor.clone(), counts.clone());
            tokio::spawn(async move {
                // A failed handshake is simply a closed connection.
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let service = service_fn(move |request: Request<Incoming>| {
                    let counts = counts.clone();
                    async move { Ok::<_, Infallible>(answer(&counts, &request)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    TlsServer { addr, seen, task }
}

fn answer(seen: &Seen, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    if request.uri().path() == "/accesstoken/get" {
        seen.tokens.fetch_add(1, Ordering::SeqCst);
        if header("client_secret") != Some("secret") || header("client_id") != Some("id") {
            return respond(401, r#"{"error":"invalid_client"}"#);
        }
        return respond(
            200,
            r#"{"token_type":"Bearer","expires_in":"3600","access_token":"eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ0ZXN0In0.c2ln"}"#,
        );
    }
    seen.api_calls.fetch_add(1, Ordering::SeqCst);
    if header("authorization").is_none_or(|v| !v.starts_with("Bearer "))
        || header("merchant-serial-number") != Some(MSN)
    {
        return respond(401, "{}");
    }
    respond(200, r#"{"reference":"acme-order-0001"}"#)
}

fn keyring(server: &TlsServer) -> Keyring {
    Keyring::builder()
        .host(Environment::Test, &server.addr.to_string())
        .merchant(
            Environment::Test,
            MSN.parse().unwrap(),
            "id",
            "secret",
            "sub-key",
        )
        .system("acme-shop", "1.0.0")
        .build()
        .unwrap()
}

/// `builder` as the user's client, through the middleware: a GET of a payment.
async fn get(
    server: &TlsServer,
    builder: reqwest::ClientBuilder,
) -> Result<reqwest::Response, reqwest_middleware::Error> {
    let vipps = VippsMiddleware::new(keyring(server), builder).unwrap();
    ClientBuilder::new(reqwest::Client::new())
        .with(vipps)
        .build()
        .get(format!(
            "https://{}/epayment/v1/payments/acme-order-0001",
            server.addr
        ))
        .header("Merchant-Serial-Number", MSN)
        .send()
        .await
}

fn user_builder(ca: &Ca) -> reqwest::ClientBuilder {
    // The dev-dependency reqwest has `rustls-no-provider` (ring, no aws-lc).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = reqwest::Certificate::from_der(&ca.der).unwrap();
    reqwest::Client::builder().tls_certs_only([cert])
}

#[tokio::test]
async fn https_with_the_users_ca_for_api_calls_and_token_requests() {
    let ca = ca("tower-vipps test CA");
    let server = tls_server(&ca).await;
    let response = get(&server, user_builder(&ca)).await.expect("HTTPS works");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.url().as_str(),
        format!(
            "https://{}/epayment/v1/payments/acme-order-0001",
            server.addr
        )
    );
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"reference":"acme-order-0001"}"#
    );
    // The token request went over the same TLS, trusted through the same CA.
    assert_eq!(server.seen.tokens.load(Ordering::SeqCst), 1);
    assert_eq!(server.seen.api_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn without_the_ca_the_token_request_never_gets_through() {
    let ca = ca("tower-vipps test CA");
    let server = tls_server(&ca).await;
    // The user's client trusts another CA only: the token request is the first to
    // fail, and no request (token or API) is ever read by the server.
    let other = self::ca("another CA");
    let err = get(&server, user_builder(&other))
        .await
        .expect_err("an unknown issuer is refused");
    let err = into_vipps_error(err).expect("a VippsError");
    assert!(matches!(err.origin(), Origin::Token(None)), "{err:?}");
    assert_eq!(server.seen.tokens.load(Ordering::SeqCst), 0);
    assert_eq!(server.seen.api_calls.load(Ordering::SeqCst), 0);
}
