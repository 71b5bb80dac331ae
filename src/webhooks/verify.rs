//! [`Verifier`]: the checks of one webhook request, with a diagnosis on failure.

use std::fmt;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, Method, Uri};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::event::VerifiedBy;
use super::rejection::WebhookRejection;
use super::sign::{
    AUTHORIZATION_PREFIX, HmacSha256, InvalidUrl, RegisteredUrl, X_MS_CONTENT_SHA256, X_MS_DATE,
    keyed, mac, string_to_sign,
};
use crate::{Msn, Secret};

/// The default clock tolerance: ±5 minutes (the official WooCommerce plugin's).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// How far around now a rejection looks for the date that was signed.
const DATE_SEARCH: i64 = 300;
/// How many secrets a rejection's diagnosis tries other URLs and dates with.
const DIAGNOSIS_SECRETS: usize = 2;

#[derive(Clone)]
struct Entry {
    msn: Option<Msn>,
    key: HmacSha256,
}

/// The checks of the webhook signing scheme for one registered URL and its
/// secrets. [`WebhookLayer`](super::WebhookLayer) runs one per request; use it
/// directly in a handler that already holds the raw body.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use http::{HeaderMap, Method};
/// use tower_vipps::Secret;
/// use tower_vipps::webhooks::{Verifier, WebhookRejection, sign};
///
/// let url = "https://shop.example/vipps/webhooks";
/// let secret = Secret::new("registration-secret");
/// let verifier = Verifier::new(url)?.secret(secret.clone());
///
/// let body = br#"{"msn":"123456","reference":"acme-1001","pspReference":"1","name":"CREATED","amount":{"currency":"NOK","value":100},"timestamp":"2025-01-01T00:00:00Z","idempotencyKey":"k","success":true}"#;
/// let now = SystemTime::now();
/// let headers = sign(body, url, now, &secret)?.to_header_map();
/// assert!(verifier.verify(&Method::POST, &"/vipps/webhooks".parse()?, &headers, body, now).is_ok());
///
/// // Re-serialized by a framework: diagnosed as an altered body, not a wrong secret.
/// let reordered = br#"{"reference":"acme-1001","msn":"123456","pspReference":"1","name":"CREATED","amount":{"value":100,"currency":"NOK"},"timestamp":"2025-01-01T00:00:00Z","idempotencyKey":"k","success":true}"#;
/// let err = verifier.verify(&Method::POST, &"/vipps/webhooks".parse()?, &headers, reordered, now).unwrap_err();
/// assert!(matches!(err, WebhookRejection::BodyAltered { .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    url: RegisteredUrl,
    registered: String,
    entries: Vec<Entry>,
    tolerance: Duration,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("url", &self.registered)
            .field("secrets", &self.entries.len())
            .field(
                "msns",
                &self
                    .entries
                    .iter()
                    .filter_map(|e| e.msn)
                    .collect::<Vec<_>>(),
            )
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

/// Just the `msn` of a body, to choose secrets before the signature is checked.
#[derive(Deserialize)]
struct MsnOnly {
    #[serde(default)]
    msn: Option<serde_json::Value>,
}

impl Verifier {
    /// A verifier for the URL the webhook was registered with (as given to
    /// `POST /webhooks/v1/webhooks`), not the one a proxy forwards to. No secret
    /// yet: add one per registration.
    pub fn new(registered_url: &str) -> Result<Verifier, InvalidUrl> {
        Ok(Verifier {
            url: RegisteredUrl::parse(registered_url)?,
            registered: registered_url.to_owned(),
            entries: Vec::new(),
            tolerance: DEFAULT_TOLERANCE,
        })
    }

    /// Adds a secret tried for every event (a merchant's registration; the old and
    /// the new one during a rotation).
    pub fn secret(mut self, secret: impl Into<Secret>) -> Verifier {
        self.entries.push(Entry {
            msn: None,
            key: keyed(&secret.into()),
        });
        self
    }

    /// Adds the secret of a registration made for one MSN (a partner's): tried
    /// for events naming that MSN, first.
    pub fn secret_for_msn(mut self, msn: Msn, secret: impl Into<Secret>) -> Verifier {
        self.entries.push(Entry {
            msn: Some(msn),
            key: keyed(&secret.into()),
        });
        self
    }

    /// The largest accepted difference between `x-ms-date` and the receiver's
    /// clock (default ±5 minutes).
    pub fn tolerance(mut self, tolerance: Duration) -> Verifier {
        self.tolerance = tolerance;
        self
    }

    /// The registered URL, as given.
    pub fn registered_url(&self) -> &str {
        &self.registered
    }

    /// Checks one request: the method, the three signing headers, the body's
    /// hash, the date against `now`, and the signature over the documented string
    /// with the registered URL, compared in constant time. On failure, says why.
    ///
    /// `uri` and the `Host` header are only read to diagnose a failure (a
    /// signature made for another host or path); they never make a request pass.
    pub fn verify(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<VerifiedBy, WebhookRejection> {
        if method != Method::POST {
            return Err(WebhookRejection::NotPost {
                method: method.as_str().chars().take(16).collect(),
            });
        }
        let date = text_header(headers, &X_MS_DATE, "x-ms-date")?;
        let signed_hash = text_header(headers, &X_MS_CONTENT_SHA256, "x-ms-content-sha256")?;
        let authorization = text_header(headers, &http::header::AUTHORIZATION, "authorization")?;
        let malformed = |header| WebhookRejection::HeaderMalformed { header };
        let signature = authorization
            .strip_prefix(AUTHORIZATION_PREFIX)
            .and_then(|s| STANDARD.decode(s).ok())
            .filter(|s| s.len() == 32)
            .ok_or(malformed("authorization"))?;
        let claimed: [u8; 32] = STANDARD
            .decode(signed_hash)
            .ok()
            .and_then(|h| h.try_into().ok())
            .ok_or(malformed("x-ms-content-sha256"))?;
        let received: [u8; 32] = Sha256::digest(body).into();
        if !bool::from(received.ct_eq(&claimed)) {
            return Err(WebhookRejection::BodyAltered {
                length: body.len(),
                received_hash: STANDARD.encode(received),
                signed_hash: signed_hash.to_owned(),
            });
        }
        let signed_at = httpdate::parse_http_date(date).map_err(|_| malformed("x-ms-date"))?;
        let skew = signed_secs(signed_at) - signed_secs(now);
        if skew.unsigned_abs() > self.tolerance.as_secs() {
            return Err(WebhookRejection::DateOutsideTolerance {
                skew_secs: skew,
                tolerance: self.tolerance,
            });
        }
        let msn = event_msn(body);
        let candidates = self.candidates(msn);
        let text = string_to_sign(
            self.url.path_and_query(),
            date,
            self.url.authority(),
            signed_hash,
        );
        for &i in &candidates {
            if let Some(entry) = self.entries.get(i) {
                if bool::from(mac(&entry.key, &text).ct_eq(signature.as_slice())) {
                    return Ok(VerifiedBy {
                        index: i,
                        msn: entry.msn,
                    });
                }
            }
        }
        Err(self.diagnose(
            &candidates,
            uri,
            headers,
            date,
            signed_hash,
            &signature,
            now,
            msn,
        ))
    }

    /// The secrets to try: those configured for the event's MSN, then those
    /// configured for any MSN. Secrets of other MSNs are never tried.
    fn candidates(&self, msn: Option<Msn>) -> Vec<usize> {
        let for_msn = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.msn.is_some() && e.msn == msn);
        let any = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.msn.is_none());
        for_msn.chain(any).map(|(i, _)| i).collect()
    }

    /// Why the signature failed: made for another host or path, for another
    /// date, or with another secret. Bounded work: a few secrets, a few URLs, the
    /// dates within ±5 minutes of now.
    #[allow(clippy::too_many_arguments)]
    fn diagnose(
        &self,
        candidates: &[usize],
        uri: &Uri,
        headers: &HeaderMap,
        date: &str,
        hash: &str,
        signature: &[u8],
        now: SystemTime,
        msn: Option<Msn>,
    ) -> WebhookRejection {
        let keys: Vec<&HmacSha256> = candidates
            .iter()
            .filter_map(|&i| self.entries.get(i))
            .take(DIAGNOSIS_SECRETS)
            .map(|e| &e.key)
            .collect();
        let matches = |text: &str| {
            keys.iter()
                .any(|k| bool::from(mac(k, text).ct_eq(signature)))
        };
        // 1. Another host or path: the request's own, or a proxy's forwarded host.
        let mut authorities = vec![self.url.authority().to_owned()];
        for name in ["x-forwarded-host", "host"] {
            if let Some(host) = headers.get(name).and_then(|v| v.to_str().ok()) {
                authorities.push(host.trim().to_ascii_lowercase());
            }
        }
        if let Some(authority) = uri.authority() {
            authorities.push(authority.as_str().to_ascii_lowercase());
        }
        let mut paths = vec![self.url.path_and_query().to_owned()];
        if let Some(path) = uri.path_and_query().map(|p| p.as_str()) {
            paths.push(path.to_owned());
        }
        for authority in authorities.iter().take(4) {
            for path in paths.iter().take(2) {
                if authority == self.url.authority() && path == self.url.path_and_query() {
                    continue;
                }
                if matches(&string_to_sign(path, date, authority, hash)) {
                    return WebhookRejection::UrlMismatch {
                        registered: self.registered.clone(),
                        signed_authority: authority.chars().take(200).collect(),
                        signed_path: path.chars().take(200).collect(),
                    };
                }
            }
        }
        // 2. Another date, within the search window around now.
        let now_secs = signed_secs(now);
        for offset in 0..=DATE_SEARCH {
            for sign in [1, -1] {
                if offset == 0 && sign < 0 {
                    continue;
                }
                let secs = now_secs + sign * offset;
                let Ok(secs) = u64::try_from(secs) else {
                    continue;
                };
                let candidate =
                    httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
                if candidate == date {
                    continue;
                }
                let text = string_to_sign(
                    self.url.path_and_query(),
                    &candidate,
                    self.url.authority(),
                    hash,
                );
                if matches(&text) {
                    return WebhookRejection::DateAltered {
                        signed_date: candidate,
                    };
                }
            }
        }
        // 3. None of the secrets.
        WebhookRejection::WrongSecret {
            tried: candidates.len(),
            msn: msn.map(|m| m.to_string()),
        }
    }
}

/// A header as text, or why not.
fn text_header<'a>(
    headers: &'a HeaderMap,
    name: &http::HeaderName,
    label: &'static str,
) -> Result<&'a str, WebhookRejection> {
    let value = headers
        .get(name)
        .ok_or(WebhookRejection::HeaderMissing { header: label })?;
    value
        .to_str()
        .map(str::trim)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(WebhookRejection::HeaderMalformed { header: label })
}

/// Seconds since the epoch, negative before it (never panics).
fn signed_secs(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// The `msn` a body names (a string or a number), if it parses as one.
fn event_msn(body: &[u8]) -> Option<Msn> {
    let parsed: MsnOnly = serde_json::from_slice(body).ok()?;
    match parsed.msn? {
        serde_json::Value::String(s) => s.parse().ok(),
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| Msn::new(n).ok()),
        _ => None,
    }
}
