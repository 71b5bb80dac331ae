//! [`HttpsClient`]: a ready HTTPS client for the Vipps MobilePay hosts (feature
//! `https`, on by default), and [`client`]: the preset stack over it in one call.
//!
//! It is hyper-util's legacy [`Client`] over a hyper-rustls connector: rustls with
//! the *ring* provider (no OpenSSL, no aws-lc), TLS 1.2 and 1.3, HTTP/1.1, and
//! Mozilla's root certificates from `webpki-roots` (feature `native-roots` adds the
//! operating system's). It never follows redirects, so a key is never sent on to
//! another host. Plain `http://` works too, but only to hosts registered as
//! plaintext (an emulator on loopback): Auth and Preflight refuse keys and tokens
//! over plain HTTP anywhere else.
//!
//! ```no_run
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use tower::ServiceExt;
//! use tower_vipps::{Environment, Keyring};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let keyring = Keyring::builder()
//!     .merchant(Environment::Test, "123456".parse()?, "client-id", "client-secret", "sub-key")
//!     .build()?;
//! let client = tower_vipps::client(keyring);
//! let request = http::Request::get("https://apitest.vipps.no/epayment/v1/payments/acme-order-1001")
//!     .header("Merchant-Serial-Number", "123456")
//!     .body(Full::new(Bytes::new()))?;
//! let response = client.oneshot(request).await?;
//! # let _ = response;
//! # Ok(()) }
//! ```
//!
//! # Your own roots, TLS settings or connector
//!
//! A private CA (a TLS-inspecting proxy, a test server) is added to the default
//! roots with [`HttpsClientBuilder::add_root_certificate`]; a whole
//! `rustls::ClientConfig` (client certificates, your own verifier) replaces them
//! with [`HttpsClientBuilder::with_tls_config`]; TCP settings (connect timeout,
//! keepalive, local address) go in [`HttpsClientBuilder::http_connector`]:
//!
//! ```no_run
//! use std::time::Duration;
//! use hyper_util::client::legacy::connect::HttpConnector;
//! use tower::Layer;
//! use tower_vipps::{Environment, HttpsClient, Keyring};
//!
//! # fn run(ca_der: Vec<u8>) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! # let keyring = Keyring::builder()
//! #     .merchant(Environment::Test, "123456".parse()?, "client-id", "client-secret", "sub-key")
//! #     .build()?;
//! let mut tcp = HttpConnector::new();
//! tcp.set_connect_timeout(Some(Duration::from_secs(5)));
//! let https = HttpsClient::builder()
//!     .add_root_certificate(ca_der) // DER bytes, e.g. from `rustls-pemfile`
//!     .http_connector(tcp)
//!     .build()?;
//! let client = tower_vipps::layer(keyring).layer(https);
//! # let _ = client;
//! # Ok(()) }
//! ```
//!
//! Any other `Service<http::Request<B>>` works under [`layer`](crate::layer) as
//! well: a hyper client over a connector of your own, a tower-http stack. It must
//! speak HTTPS to reach the real hosts (a bare `HttpConnector` fails with
//! [`Cause::HttpsNotSupported`](crate::Cause::HttpsNotSupported)) and must not
//! follow redirects.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use tower_layer::Layer;
use tower_service::Service;

use crate::{Keyring, VippsLayer, VippsService};

/// The connector of [`HttpsClient`]: hyper-rustls over hyper-util's TCP connector.
pub type HttpsConnector = hyper_rustls::HttpsConnector<HttpConnector>;

/// The preset stack over an [`HttpsClient`]: what [`client`] returns.
pub type VippsClient = VippsService<HttpsClient>;

/// The preset stack ([`crate::layer`]) over a new [`HttpsClient`] with the default
/// roots: everything a client of the real Vipps MobilePay hosts needs, in one call.
///
/// ```no_run
/// use tower_vipps::{Environment, Keyring};
///
/// # fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let keyring = Keyring::builder()
///     .merchant(Environment::Test, "123456".parse()?, "client-id", "client-secret", "sub-key")
///     .build()?;
/// let client = tower_vipps::client(keyring); // a `Service<http::Request<Full<Bytes>>>`
/// # let _ = client;
/// # Ok(()) }
/// ```
pub fn client(keyring: Keyring) -> VippsClient {
    VippsLayer::new(keyring).layer(HttpsClient::new())
}

/// A ready HTTPS client: hyper-util's legacy client over hyper-rustls (ring,
/// webpki roots), with `Full<Bytes>` request bodies; see the [module docs](self).
///
/// Cheap to clone (clones share the connection pool).
///
/// ```no_run
/// use tower::Layer;
/// use tower_vipps::{Environment, HttpsClient, Keyring};
///
/// # fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// # let keyring = Keyring::builder()
/// #     .merchant(Environment::Test, "123456".parse()?, "client-id", "client-secret", "sub-key")
/// #     .build()?;
/// let client = tower_vipps::layer(keyring).layer(HttpsClient::new());
/// # let _ = client;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct HttpsClient {
    inner: Client<HttpsConnector, Full<Bytes>>,
}

impl fmt::Debug for HttpsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpsClient").finish_non_exhaustive()
    }
}

impl Default for HttpsClient {
    fn default() -> Self {
        HttpsClient::new()
    }
}

impl HttpsClient {
    /// A client with the default roots (Mozilla's, from `webpki-roots`).
    pub fn new() -> HttpsClient {
        let config = tls_config(default_roots());
        HttpsClient::from_parts(config, HttpConnector::new())
    }

    /// A builder: your own root certificates, TLS settings or TCP connector.
    pub fn builder() -> HttpsClientBuilder {
        HttpsClientBuilder::new()
    }

    /// A client over an hyper-rustls connector of your own.
    pub fn from_connector(connector: HttpsConnector) -> HttpsClient {
        HttpsClient {
            inner: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// The hyper-util client inside.
    pub fn inner(&self) -> &Client<HttpsConnector, Full<Bytes>> {
        &self.inner
    }

    fn from_parts(config: ClientConfig, mut http: HttpConnector) -> HttpsClient {
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        HttpsClient::from_connector(connector)
    }
}

impl Service<Request<Full<Bytes>>> for HttpsClient {
    type Response = Response<Incoming>;
    type Error = hyper_util::client::legacy::Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, req: Request<Full<Bytes>>) -> Self::Future {
        Service::call(&mut self.inner, req)
    }
}

/// The error of [`HttpsClientBuilder::build`]: a root certificate that could not
/// be added, or system roots that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum HttpsClientError {
    /// A root certificate given to [`HttpsClientBuilder::add_root_certificate`] is
    /// not a valid DER-encoded X.509 certificate.
    #[error("root certificate {index} could not be added: {source}")]
    RootCertificate {
        /// Its position among the added certificates, from 0.
        index: usize,
        /// rustls's reason.
        #[source]
        source: rustls::Error,
    },
    /// The operating system's root certificates could not be loaded.
    #[error("the system's root certificates could not be loaded: {0}")]
    NativeRoots(String),
}

/// Builds an [`HttpsClient`]; see [`HttpsClient::builder`].
///
/// ```
/// use tower_vipps::HttpsClient;
///
/// // Not a certificate: refused when building, not at the first request.
/// let err = HttpsClient::builder().add_root_certificate(vec![1, 2, 3]).build().unwrap_err();
/// assert!(err.to_string().contains("root certificate 0"));
/// ```
#[derive(Clone)]
pub struct HttpsClientBuilder {
    webpki_roots: bool,
    #[cfg(feature = "native-roots")]
    native_roots: bool,
    extra_roots: Vec<CertificateDer<'static>>,
    tls_config: Option<ClientConfig>,
    http: Option<HttpConnector>,
}

impl fmt::Debug for HttpsClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpsClientBuilder")
            .field("webpki_roots", &self.webpki_roots)
            .field("extra_roots", &self.extra_roots.len())
            .field("tls_config", &self.tls_config.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for HttpsClientBuilder {
    fn default() -> Self {
        HttpsClientBuilder::new()
    }
}

impl HttpsClientBuilder {
    /// The defaults: Mozilla's roots, a default `HttpConnector`.
    pub fn new() -> Self {
        HttpsClientBuilder {
            webpki_roots: true,
            #[cfg(feature = "native-roots")]
            native_roots: false,
            extra_roots: Vec::new(),
            tls_config: None,
            http: None,
        }
    }

    /// Trusts this root certificate (DER bytes) too: a private CA, a corporate
    /// TLS-inspecting proxy's, or a test server's.
    pub fn add_root_certificate(mut self, der: impl Into<CertificateDer<'static>>) -> Self {
        self.extra_roots.push(der.into());
        self
    }

    /// Leaves out Mozilla's roots: only the certificates added with
    /// [`add_root_certificate`](Self::add_root_certificate) (and the system's, with
    /// [`native_roots`](Self::native_roots)) are trusted.
    pub fn without_webpki_roots(mut self) -> Self {
        self.webpki_roots = false;
        self
    }

    /// Trusts the operating system's root certificates too (feature `native-roots`).
    #[cfg(feature = "native-roots")]
    #[cfg_attr(docsrs, doc(cfg(feature = "native-roots")))]
    pub fn native_roots(mut self) -> Self {
        self.native_roots = true;
        self
    }

    /// Uses this rustls configuration as it is (client certificates, your own
    /// verifier); the roots of this builder are then not used. Its ALPN protocols
    /// should be empty or `http/1.1`.
    pub fn with_tls_config(mut self, config: ClientConfig) -> Self {
        self.tls_config = Some(config);
        self
    }

    /// Uses this TCP connector (connect timeout, keepalive, nodelay, local address).
    pub fn http_connector(mut self, connector: HttpConnector) -> Self {
        self.http = Some(connector);
        self
    }

    /// The client.
    pub fn build(self) -> Result<HttpsClient, HttpsClientError> {
        let http = self.http.unwrap_or_else(HttpConnector::new);
        if let Some(config) = self.tls_config {
            return Ok(HttpsClient::from_parts(config, http));
        }
        let mut roots = if self.webpki_roots {
            default_roots()
        } else {
            RootCertStore::empty()
        };
        #[cfg(feature = "native-roots")]
        if self.native_roots {
            let loaded = rustls_native_certs::load_native_certs();
            if loaded.certs.is_empty() {
                if let Some(e) = loaded.errors.first() {
                    return Err(HttpsClientError::NativeRoots(e.to_string()));
                }
            }
            roots.add_parsable_certificates(loaded.certs);
        }
        for (index, der) in self.extra_roots.into_iter().enumerate() {
            roots
                .add(der)
                .map_err(|source| HttpsClientError::RootCertificate { index, source })?;
        }
        Ok(HttpsClient::from_parts(tls_config(roots), http))
    }
}

fn default_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

fn tls_config(roots: RootCertStore) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth()
}
