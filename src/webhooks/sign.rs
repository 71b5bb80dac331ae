//! The signing scheme: content hash, string to sign, HMAC-SHA256, and [`sign`].

use std::fmt;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

use crate::Secret;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// `x-ms-date`: when the webhook was signed, as an HTTP date.
pub const X_MS_DATE: HeaderName = HeaderName::from_static("x-ms-date");
/// `x-ms-content-sha256`: base64 of the SHA-256 of the body bytes.
pub const X_MS_CONTENT_SHA256: HeaderName = HeaderName::from_static("x-ms-content-sha256");

/// What `Authorization` holds before the base64 signature.
pub(crate) const AUTHORIZATION_PREFIX: &str =
    "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=";

/// A webhook URL that is not an absolute `http(s)://host/…` URL.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an absolute http(s) URL with a host: {0}")]
pub struct InvalidUrl(pub String);

/// The URL a webhook was registered with, as the signature sees it: its
/// authority (host and port, the scheme's default port left out, host in lower
/// case) and its path and query (`/` when empty).
///
/// ```
/// use tower_vipps::webhooks::RegisteredUrl;
///
/// let url = RegisteredUrl::parse("https://Shop.example:443/vipps/webhooks?tenant=7")?;
/// assert_eq!(url.authority(), "shop.example");
/// assert_eq!(url.path_and_query(), "/vipps/webhooks?tenant=7");
/// # Ok::<(), tower_vipps::webhooks::InvalidUrl>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredUrl {
    authority: String,
    path_and_query: String,
}

impl RegisteredUrl {
    /// Parses an absolute `http://` or `https://` URL.
    pub fn parse(url: &str) -> Result<RegisteredUrl, InvalidUrl> {
        let invalid = || InvalidUrl(url.chars().take(200).collect());
        let uri: http::Uri = url.parse().map_err(|_| invalid())?;
        let default_port = match uri.scheme_str() {
            Some("https") => 443,
            Some("http") => 80,
            _ => return Err(invalid()),
        };
        let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(invalid)?;
        let host = host.to_ascii_lowercase();
        let authority = match uri.port_u16() {
            Some(port) if port != default_port => format!("{host}:{port}"),
            _ => host,
        };
        let path_and_query = uri
            .path_and_query()
            .map(|p| p.as_str())
            .filter(|p| !p.is_empty())
            .unwrap_or("/")
            .to_owned();
        Ok(RegisteredUrl {
            authority,
            path_and_query,
        })
    }

    /// Host and port, as signed (the `Host` the request was sent with).
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Path and query, as signed.
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }
}

impl fmt::Display for RegisteredUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "//{}{}", self.authority, self.path_and_query)
    }
}

/// base64(SHA-256(body)), the value of `x-ms-content-sha256`.
///
/// ```
/// let hash = tower_vipps::webhooks::content_hash(
///     br#"{"some-unique-content":"ee6e441b-cc4a-46f8-895d-a5af79bcc233/hello-world"}"#,
/// );
/// assert_eq!(hash, "lNlsp1XA03N34HrQsVzPgJKtC+r7l/RBF4V3JQUWMj4=");
/// ```
pub fn content_hash(body: &[u8]) -> String {
    STANDARD.encode(Sha256::digest(body))
}

/// `POST\n{path and query}\n{date};{authority};{content hash}`.
pub(crate) fn string_to_sign(
    path_and_query: &str,
    date: &str,
    authority: &str,
    hash: &str,
) -> String {
    format!("POST\n{path_and_query}\n{date};{authority};{hash}")
}

/// The HMAC keyed with a secret's UTF-8 bytes (HMAC takes keys of any length).
pub(crate) fn keyed(secret: &Secret) -> HmacSha256 {
    HmacSha256::new_from_slice(secret.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"))
}

/// HMAC-SHA256 of `message` with a keyed state (cloned, so the key is hashed once).
pub(crate) fn mac(key: &HmacSha256, message: &str) -> [u8; 32] {
    let mut mac = key.clone();
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().into()
}

/// The headers Vipps MobilePay sends with a webhook: `Host`, `x-ms-date`,
/// `x-ms-content-sha256` and `Authorization`. Made by [`sign`].
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookHeaders {
    host: String,
    date: String,
    content_sha256: String,
    authorization: String,
}

impl WebhookHeaders {
    /// The `Host` header: the registered URL's authority.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The `x-ms-date` header.
    pub fn date(&self) -> &str {
        &self.date
    }

    /// The `x-ms-content-sha256` header.
    pub fn content_sha256(&self) -> &str {
        &self.content_sha256
    }

    /// The `Authorization` header, `HMAC-SHA256 SignedHeaders=…&Signature=…`.
    pub fn authorization(&self) -> &str {
        &self.authorization
    }

    /// The four headers as a map (`Authorization` marked sensitive).
    pub fn to_header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(4);
        self.apply(&mut map);
        map
    }

    /// Sets the four headers on `headers`, replacing any there.
    pub fn apply(&self, headers: &mut HeaderMap) {
        // Each value is ASCII built here (a URL authority, an HTTP date, base64).
        let value = |s: &str| HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""));
        headers.insert(http::header::HOST, value(&self.host));
        headers.insert(X_MS_DATE, value(&self.date));
        headers.insert(X_MS_CONTENT_SHA256, value(&self.content_sha256));
        let mut authorization = value(&self.authorization);
        authorization.set_sensitive(true);
        headers.insert(http::header::AUTHORIZATION, authorization);
    }
}

impl fmt::Debug for WebhookHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookHeaders")
            .field("host", &self.host)
            .field("date", &self.date)
            .field("content_sha256", &self.content_sha256)
            .finish_non_exhaustive()
    }
}

/// Signs a webhook body as Vipps MobilePay does, for your own tests: the headers
/// a delivery of `body` to the registered `url` at `date` carries, signed with
/// the registration's `secret`.
///
/// The official test vector of the
/// [request authentication page](https://developer.vippsmobilepay.com/docs/APIs/webhooks-api/request-authentication/):
///
/// ```
/// use tower_vipps::Secret;
/// use tower_vipps::webhooks::sign;
///
/// let secret = Secret::new("A0+AeKBRG2KRGvnNwJpQlb6IJFk48CKXCIcrLoHncVJKDILsQSxS6NWCccwWm6r6FhGKhiHTBsG2wo/xU6FY/A==");
/// let date = httpdate::parse_http_date("Thu, 30 Mar 2023 08:38:32 GMT").unwrap();
/// let headers = sign(
///     br#"{"some-unique-content":"ee6e441b-cc4a-46f8-895d-a5af79bcc233/hello-world"}"#,
///     "https://webhook.site/e2cee29b-012e-4f1d-8ef4-e95fd74a7a63",
///     date,
///     &secret,
/// )?;
/// assert_eq!(headers.content_sha256(), "lNlsp1XA03N34HrQsVzPgJKtC+r7l/RBF4V3JQUWMj4=");
/// assert!(headers.authorization().ends_with("&Signature=agAiSyogQbDHpeucoNwYz+yAr5nJ+v+zasdkSbqzv+U="));
/// # Ok::<(), tower_vipps::webhooks::InvalidUrl>(())
/// ```
pub fn sign(
    body: &[u8],
    url: &str,
    date: SystemTime,
    secret: &Secret,
) -> Result<WebhookHeaders, InvalidUrl> {
    let url = RegisteredUrl::parse(url)?;
    Ok(sign_for(
        body,
        &url,
        &httpdate::fmt_http_date(date),
        &keyed(secret),
    ))
}

/// [`sign`] with a parsed URL, a formatted date and a keyed HMAC.
pub(crate) fn sign_for(
    body: &[u8],
    url: &RegisteredUrl,
    date: &str,
    key: &HmacSha256,
) -> WebhookHeaders {
    let hash = content_hash(body);
    let text = string_to_sign(url.path_and_query(), date, url.authority(), &hash);
    let signature = STANDARD.encode(mac(key, &text));
    WebhookHeaders {
        host: url.authority().to_owned(),
        date: date.to_owned(),
        content_sha256: hash,
        authorization: format!("{AUTHORIZATION_PREFIX}{signature}"),
    }
}
