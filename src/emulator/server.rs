//! The HTTP side: listeners, connections, and the gateway checks of each request.

// A refusal is the response itself; it is built once per request, never hot.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::bodies::{self, Body};
use super::epayment::Call;
use super::jwt::{self, Claims};
use super::{Endpoint, Fault, SeenRequest, Shared};
use crate::headers::{CLIENT_ID, CLIENT_SECRET, MERCHANT_SERIAL_NUMBER, OCP_APIM_SUBSCRIPTION_KEY};
use crate::{Environment, Msn};

/// The most bytes of a request body that are read.
pub const REQUEST_BODY_CAP: usize = 64 * 1024;

/// How long a shutdown waits for a connection's request in progress.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Which keys a subscription key belongs to.
#[derive(Clone, Debug)]
pub(crate) enum KeyKind {
    Merchant {
        msn: Msn,
        ecommerce: bool,
    },
    Partner {
        connected: Option<Arc<crate::keys::MsnSet>>,
    },
}

/// One registered key set.
#[derive(Clone, Debug)]
pub(crate) struct KeyEntry {
    pub environment: Environment,
    pub client_id: String,
    pub client_secret: String,
    pub subscription_key: String,
    pub kind: KeyKind,
    /// Whether the subscription key is subscribed to the ePayment API product.
    pub subscribed: bool,
}

impl KeyEntry {
    pub(crate) fn connects(&self, msn: Msn) -> bool {
        match &self.kind {
            KeyKind::Merchant { msn: own, .. } => *own == msn,
            KeyKind::Partner { connected: None } => true,
            KeyKind::Partner {
                connected: Some(set),
            } => set.contains(&msn),
        }
    }
}

/// The error that makes hyper close the connection without answering.
#[derive(Debug)]
pub(crate) struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

/// Resolves once the emulator is stopping (or gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Accepts connections until `stop` turns true, then shuts every connection down
/// gracefully and waits for them.
pub(crate) async fn run(
    listener: TcpListener,
    environment: Environment,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of file descriptors or similar: do not spin.
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    continue;
                };
                if shared.take_connection_drop() {
                    drop(stream);
                    continue;
                }
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let mut stop = stop.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let shared = shared.clone();
                        async move { handle(shared, environment, req).await }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    let mut conn = std::pin::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = stopped(&mut stop) => {
                            // Let a request in progress finish, within a bound: a
                            // client that never completes its request cannot hang
                            // the shutdown.
                            conn.as_mut().graceful_shutdown();
                            let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
                        }
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

async fn handle(
    shared: Arc<Shared>,
    environment: Environment,
    req: Request<Incoming>,
) -> Result<Response<Body>, Dropped> {
    let endpoint = Endpoint::of(req.method(), req.uri().path());
    shared.counts[endpoint.index()].fetch_add(1, Ordering::Relaxed);
    let (parts, body) = req.into_parts();
    let result = answer(&shared, environment, endpoint, &parts, body).await;
    shared.record(SeenRequest::new(
        &shared,
        environment,
        endpoint,
        &parts,
        result.as_ref().ok().map(|r| r.status()),
    ));
    result
}

enum ReadError {
    TooLarge,
    Broken,
}

async fn read_body(parts: &Parts, body: Incoming) -> Result<Bytes, ReadError> {
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > REQUEST_BODY_CAP as u64) {
        return Err(ReadError::TooLarge);
    }
    match Limited::new(body, REQUEST_BODY_CAP).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ReadError::TooLarge),
        Err(_) => Err(ReadError::Broken),
    }
}

async fn answer(
    shared: &Arc<Shared>,
    environment: Environment,
    endpoint: Endpoint,
    parts: &Parts,
    body: Incoming,
) -> Result<Response<Body>, Dropped> {
    let body = match read_body(parts, body).await {
        Ok(body) => body,
        Err(ReadError::TooLarge) => {
            let mut res = bodies::respond(413, bodies::JSON, bodies::TOO_LARGE);
            res.headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            return Ok(res);
        }
        Err(ReadError::Broken) => return Err(Dropped),
    };
    if endpoint == Endpoint::AccessToken {
        let delay = shared
            .faults
            .lock()
            .map(|f| f.token_delay)
            .unwrap_or_default();
        if !delay.is_zero() {
            let mut stop = shared.stop.clone();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stopped(&mut stop) => {}
            }
        }
    }
    let instance = parts
        .uri
        .path()
        .strip_prefix("/epayment")
        .unwrap_or(parts.uri.path());
    match shared.take_fault(endpoint) {
        Some(Fault::DropConnection) => return Err(Dropped),
        Some(Fault::InternalError) => return Ok(bodies::internal_error(instance)),
        Some(Fault::BadGateway) => {
            return Ok(bodies::respond(502, bodies::HTML, bodies::BAD_GATEWAY));
        }
        Some(Fault::TooManyRequests { retry_after }) => {
            return Ok(bodies::rate_limited(retry_after.as_secs()));
        }
        Some(Fault::ServiceUnavailable) => {
            return Ok(bodies::respond(
                503,
                bodies::HTML,
                bodies::SERVICE_UNAVAILABLE,
            ));
        }
        Some(Fault::GatewayTimeout) => {
            return Ok(bodies::respond(504, bodies::HTML, bodies::GATEWAY_TIMEOUT));
        }
        None => {}
    }
    let response = route(shared, environment, endpoint, parts, &body);
    // Hand the ePayment events of this call to the Webhooks API's deliveries.
    if endpoint.changes_payments() {
        super::webhooks::publish(shared);
    }
    Ok(response)
}

fn route(
    shared: &Shared,
    environment: Environment,
    endpoint: Endpoint,
    parts: &Parts,
    body: &Bytes,
) -> Response<Body> {
    match endpoint {
        Endpoint::Other if super::webhooks::handles(parts.uri.path()) => {
            match authenticate(shared, environment, endpoint, parts) {
                Ok(msn) => super::webhooks::answer(shared, environment, msn, parts, body),
                Err(res) => res,
            }
        }
        Endpoint::SpecializedToken => super::report::token(shared, environment, &parts.headers),
        Endpoint::Other if super::report::handles(parts.uri.path()) => {
            super::report::answer(shared, environment, parts, || {
                let msn = authenticate(shared, environment, endpoint, parts)?;
                let partner = subscription(shared, environment, &parts.headers)
                    .is_ok_and(|entry| matches!(entry.kind, KeyKind::Partner { .. }));
                Ok(Authenticated { msn, partner })
            })
        }
        Endpoint::Other if super::management::handles(parts.uri.path()) => {
            match authenticate(shared, environment, endpoint, parts)
                .and_then(|_| subscription(shared, environment, &parts.headers))
            {
                Ok(entry) => super::management::answer(shared, environment, parts, entry),
                Err(res) => res,
            }
        }
        Endpoint::Other if super::order_management::handles(parts.uri.path()) => {
            match authenticate(shared, environment, endpoint, parts) {
                Ok(msn) => {
                    // `ECOM` orders are ePayment and eCom payments; `RECURRING`
                    // ones are Recurring charges.
                    let known = |kind, order_id: &str| match kind {
                        super::order_management::PaymentKind::Ecom => {
                            shared
                                .payments
                                .lock()
                                .is_ok_and(|p| p.contains(environment, msn, order_id))
                                || shared
                                    .ecom
                                    .lock()
                                    .is_ok_and(|p| p.contains(environment, msn, order_id))
                        }
                        super::order_management::PaymentKind::Recurring => shared
                            .recurring
                            .lock()
                            .is_ok_and(|a| a.has_charge(environment, msn, order_id)),
                    };
                    super::order_management::answer(shared, environment, msn, parts, body, known)
                }
                Err(res) => res,
            }
        }
        Endpoint::Other => bodies::respond(404, bodies::JSON, bodies::NOT_FOUND),
        Endpoint::AccessToken => access_token(shared, environment, &parts.headers),
        Endpoint::CheckoutCreateSession | Endpoint::CheckoutGetSession => {
            super::checkout::handle(shared, environment, endpoint, parts, body)
        }
        Endpoint::LoginToken | Endpoint::LoginUserInfo | Endpoint::LoginDiscovery => {
            super::login::handle(shared, environment, endpoint, parts, body)
        }
        Endpoint::RecurringCreateAgreement
        | Endpoint::RecurringGetAgreement
        | Endpoint::RecurringUpdateAgreement
        | Endpoint::RecurringAcceptAgreement
        | Endpoint::RecurringCreateCharge
        | Endpoint::RecurringGetCharge => {
            match authenticate(shared, environment, endpoint, parts) {
                Ok(msn) => {
                    super::recurring::handle(shared, environment, msn, endpoint, parts, body)
                }
                Err(res) => res,
            }
        }
        Endpoint::EcomInitiate
        | Endpoint::EcomCapture
        | Endpoint::EcomRefund
        | Endpoint::EcomCancel
        | Endpoint::EcomDetails
        | Endpoint::EcomForceApprove => match authenticate(shared, environment, endpoint, parts) {
            Ok(msn) => super::ecom::handle(shared, environment, msn, endpoint, parts, body),
            Err(res) => res,
        },
        _ => {
            let msn = match authenticate(shared, environment, endpoint, parts) {
                Ok(msn) => msn,
                Err(res) => return res,
            };
            if let Some(reference) =
                super::limits::limited_reference(endpoint, parts.uri.path(), body)
            {
                let now = shared.now();
                let over = shared
                    .rate_limits
                    .lock()
                    .map(|mut limits| limits.check((environment, msn, endpoint, reference), now));
                if let Ok(Err(retry_after)) = over {
                    return bodies::rate_limited(retry_after);
                }
            }
            let call = Call {
                currency: shared.currency(environment, msn),
                environment,
                msn,
                endpoint,
                path: parts.uri.path(),
                headers: &parts.headers,
                body,
                now: shared.now(),
                base_url: &shared.base_urls[super::env_index(environment)],
            };
            match shared.payments.lock() {
                Ok(mut payments) => payments.handle(&call),
                Err(_) => bodies::internal_error(call.path),
            }
        }
    }
}

/// The subscription key's entry in this environment, or the gateway's 401.
pub(crate) fn subscription<'a>(
    shared: &'a Shared,
    environment: Environment,
    headers: &HeaderMap,
) -> Result<&'a KeyEntry, Response<Body>> {
    let key = headers
        .get(OCP_APIM_SUBSCRIPTION_KEY)
        .map(|v| v.as_bytes())
        .filter(|v| !v.trim_ascii().is_empty());
    let Some(key) = key else {
        return Err(bodies::respond(
            401,
            bodies::JSON,
            bodies::MISSING_SUBSCRIPTION_KEY,
        ));
    };
    std::str::from_utf8(key)
        .ok()
        .and_then(|k| shared.keys.get(k))
        .filter(|entry| entry.environment == environment)
        .ok_or_else(|| bodies::respond(401, bodies::JSON, bodies::INVALID_SUBSCRIPTION_KEY))
}

pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &http::HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Timing-independent string comparison, for secrets.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[derive(Serialize)]
struct TokenResponse {
    token_type: &'static str,
    expires_in: String,
    ext_expires_in: String,
    expires_on: String,
    not_before: String,
    resource: &'static str,
    access_token: String,
}

fn access_token(shared: &Shared, environment: Environment, headers: &HeaderMap) -> Response<Body> {
    let entry = match subscription(shared, environment, headers) {
        Ok(entry) => entry,
        Err(res) => return res,
    };
    if !client_matches(headers, &entry.client_id, &entry.client_secret) {
        return bodies::respond(401, bodies::JSON, bodies::INVALID_CLIENT);
    }
    let msn = match (&entry.kind, headers.get(MERCHANT_SERIAL_NUMBER)) {
        // Merchant tokens are bound to the keys' own MSN, whatever the header says.
        (KeyKind::Merchant { msn, .. }, _) => Some(*msn),
        (KeyKind::Partner { .. }, None) => None,
        (KeyKind::Partner { .. }, Some(value)) => match Msn::from_header(value) {
            Ok(msn) if entry.connects(msn) => Some(msn),
            _ => {
                return bodies::forbidden("/accesstoken/get", bodies::PARTNER_MSN_NOT_CONNECTED);
            }
        },
    };
    let now_ms = shared.now_ms();
    let now = now_ms / 1000;
    let lifetime = shared.lifetimes[super::env_index(environment)].load(Ordering::Relaxed);
    // Expiry counts from the millisecond of issue: the token is good for its whole
    // lifetime (the client counts it from before it sent the request), checked to
    // the millisecond in `authenticate`.
    let exp_ms = now_ms.saturating_add(lifetime.saturating_mul(1000));
    let exp = exp_ms / 1000;
    let claims = Claims {
        iss: jwt::ISSUER.to_owned(),
        aud: jwt::RESOURCE.to_owned(),
        iat: now,
        nbf: now,
        exp,
        exp_ms,
        env: environment.as_str().to_owned(),
        msn: msn.map(Msn::get),
        partner: matches!(entry.kind, KeyKind::Partner { .. }),
        accounting: false,
        client_id: entry.client_id.clone(),
        skf: jwt::key_fingerprint(&entry.subscription_key),
        jti: format!("{:016x}", fastrand::u64(..)),
    };
    let body = TokenResponse {
        token_type: "Bearer",
        expires_in: lifetime.to_string(),
        ext_expires_in: lifetime.to_string(),
        expires_on: exp.to_string(),
        not_before: now.to_string(),
        resource: jwt::RESOURCE,
        access_token: jwt::mint(&shared.signing_key, &claims),
    };
    bodies::respond(
        200,
        bodies::JSON,
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

/// The claims of the request's `Authorization: Bearer` token when it is one of
/// this emulator's, of this environment and not expired (to the millisecond).
pub(crate) fn bearer_claims(
    shared: &Shared,
    environment: Environment,
    headers: &HeaderMap,
) -> Option<Claims> {
    header_str(headers, &http::header::AUTHORIZATION)
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|t| !t.is_empty() && !t.bytes().any(|b| b.is_ascii_whitespace()))
        .and_then(|t| jwt::verify(&shared.signing_key, t))
        .filter(|claims| {
            claims.environment() == Some(environment) && shared.now_ms() < claims.exp_ms
        })
}

/// Whether the request's `client_id` and `client_secret` headers are these.
pub(crate) fn client_matches(headers: &HeaderMap, client_id: &str, client_secret: &str) -> bool {
    header_str(headers, &CLIENT_ID).is_some_and(|id| id == client_id)
        && header_str(headers, &CLIENT_SECRET)
            .is_some_and(|secret| same_secret(secret, client_secret))
}

/// A call that passed the gateway's checks of standard keys.
pub(crate) struct Authenticated {
    /// The MSN it acts for.
    pub msn: Msn,
    /// Whether the keys are partner keys.
    pub partner: bool,
}

/// The gateway's and the API's checks of an API call, in the gateway's order; the
/// MSN the call acts for, or the refusal.
fn authenticate(
    shared: &Shared,
    environment: Environment,
    endpoint: Endpoint,
    parts: &Parts,
) -> Result<Msn, Response<Body>> {
    let headers = &parts.headers;
    let entry = subscription(shared, environment, headers)?;
    if !entry.subscribed {
        return Err(bodies::respond(
            401,
            bodies::JSON,
            bodies::SUBSCRIPTION_NOT_FOUND,
        ));
    }
    let invalid_token = || bodies::respond(401, bodies::TEXT, bodies::INVALID_TOKEN);
    let claims = bearer_claims(shared, environment, headers).ok_or_else(invalid_token)?;
    let msn_header = headers.get(MERCHANT_SERIAL_NUMBER);
    if !claims.minted_for(entry) {
        return Err(invalid_token());
    }
    let instance = parts
        .uri
        .path()
        .strip_prefix("/epayment")
        .unwrap_or(parts.uri.path());
    match &entry.kind {
        KeyKind::Merchant { msn, ecommerce } => {
            let header_ok = match msn_header {
                None => true,
                Some(v) => Msn::from_header(v).is_ok_and(|m| m == *msn),
            };
            if claims.msn != Some(msn.get()) || !header_ok {
                return Err(invalid_token());
            }
            if !ecommerce && endpoint != Endpoint::Other {
                return Err(bodies::respond(
                    403,
                    bodies::TEXT,
                    bodies::NOT_ALLOWED_FOR_ECOMMERCE,
                ));
            }
            Ok(*msn)
        }
        KeyKind::Partner { .. } => {
            let Some(value) = msn_header else {
                return Err(bodies::forbidden(instance, bodies::PARTNER_MSN_REQUIRED));
            };
            match Msn::from_header(value) {
                Ok(msn) if entry.connects(msn) => Ok(msn),
                _ => Err(bodies::forbidden(
                    instance,
                    bodies::PARTNER_MSN_NOT_CONNECTED,
                )),
            }
        }
    }
}

/// Marks the secret headers of a recorded request sensitive: the credential
/// headers, any header named like one, and any header whose value carries a
/// known secret or a token (a secret put in the wrong header).
pub(crate) fn redact(headers: &HeaderMap, keys: &HashMap<String, KeyEntry>) -> HeaderMap {
    const NAMED: [&str; 7] = [
        "auth",
        "secret",
        "token",
        "password",
        "subscription",
        "apikey",
        "api-key",
    ];
    let mut headers = headers.clone();
    let mut current: Option<HeaderName> = None;
    let mut named = false;
    for (name, value) in headers.iter_mut() {
        if current.as_ref() != Some(name) {
            named = NAMED.iter().any(|n| name.as_str().contains(n))
                || *name == OCP_APIM_SUBSCRIPTION_KEY;
            current = Some(name.clone());
        }
        if named || carries_secret(value.as_bytes(), keys) {
            value.set_sensitive(true);
        }
    }
    headers
}

/// Whether a header value holds a registered key's secret or subscription key, or
/// something shaped like a bearer token or JWT.
fn carries_secret(value: &[u8], keys: &HashMap<String, KeyEntry>) -> bool {
    let contains = |needle: &str| {
        !needle.is_empty() && value.windows(needle.len()).any(|w| w == needle.as_bytes())
    };
    let jwt_shaped =
        value.windows(3).any(|w| w == b"eyJ") && value.iter().filter(|&&b| b == b'.').count() >= 2;
    jwt_shaped
        || value.len() >= 7 && value[..7].eq_ignore_ascii_case(b"bearer ")
        || keys
            .iter()
            .any(|(sub_key, entry)| contains(sub_key) || contains(&entry.client_secret))
        || contains(super::PRODUCTION_ACCOUNTING.client_secret())
}
