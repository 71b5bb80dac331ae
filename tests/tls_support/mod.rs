//! TLS test support: a certificate authority made at test time (rcgen), server
//! certificates from it (good, expired, for another name) or from a CA nobody
//! trusts, and an HTTPS front on 127.0.0.1 (tokio-rustls) that terminates TLS and
//! forwards the bytes to a plain-HTTP address: the emulator, or any loopback
//! server. Shared by the tower path's tests (tests/https.rs) and the reqwest
//! path's; include it with `mod tls_support;`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A certificate authority made at test time.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
}

/// Which server certificate to issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leaf {
    /// For `127.0.0.1` and `localhost`, valid now.
    Good,
    /// For `127.0.0.1` and `localhost`, expired in 2021.
    Expired,
    /// Valid now, but for `other.example` only.
    OtherName,
}

/// A server certificate chain and its private key.
pub struct ServerCert {
    /// The leaf, then the issuer.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's key (PKCS#8).
    pub key: PrivatePkcs8KeyDer<'static>,
}

impl Ca {
    /// A new CA named `name`.
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let der = params.self_signed(&key).unwrap().der().clone();
        Ca {
            issuer: Issuer::new(params, key),
            der,
        }
    }

    /// The CA certificate, DER: what `HttpsClient::builder().add_root_certificate`
    /// takes.
    pub fn der(&self) -> CertificateDer<'static> {
        self.der.clone()
    }

    /// The CA certificate as raw DER bytes.
    pub fn der_bytes(&self) -> Vec<u8> {
        self.der.to_vec()
    }

    /// Issues a server certificate.
    pub fn issue(&self, leaf: Leaf) -> ServerCert {
        let names: Vec<String> = match leaf {
            Leaf::Good | Leaf::Expired => vec!["127.0.0.1".into(), "localhost".into()],
            Leaf::OtherName => vec!["other.example".into()],
        };
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "tower-vipps test server");
        if leaf == Leaf::Expired {
            params.not_before = date_time_ymd(2020, 1, 1);
            params.not_after = date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        ServerCert {
            chain: vec![cert.der().clone(), self.der.clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    }
}

/// An HTTPS front on 127.0.0.1: terminates TLS with a given certificate and
/// forwards each connection to a plain-HTTP backend. Dropping it stops it.
pub struct TlsFront {
    /// The address it listens on.
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    handshakes: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl TlsFront {
    /// Listens on 127.0.0.1 with an ephemeral port.
    pub async fn start(cert: ServerCert, backend: SocketAddr) -> TlsFront {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(cert.chain, PrivateKeyDer::Pkcs8(cert.key))
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let handshakes = Arc::new(AtomicUsize::new(0));
        let (c, h) = (connections.clone(), handshakes.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                c.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                let h = h.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    h.fetch_add(1, Ordering::SeqCst);
                    let Ok(mut plain) = TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        TlsFront {
            addr,
            connections,
            handshakes,
            task,
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// `127.0.0.1:PORT`.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    /// TCP connections accepted so far (each a client's attempt).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// TLS handshakes completed so far.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A loopback port with nothing listening on it (bound, then closed).
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}
