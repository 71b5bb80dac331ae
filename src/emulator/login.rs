//! The Login API's OIDC endpoints under `/access-management-1.0/access/`:
//! discovery, the token endpoint and userinfo.
//!
//! As in the Login API reference (<https://developer.vippsmobilepay.com/api/login>)
//! and quick start: discovery takes no credentials; the token endpoint takes the
//! client's own credentials (`client_secret_basic`: `Authorization: Basic
//! base64(client_id:client_secret)`, or `client_secret_post`: both in the form) and
//! an authorization code (`grant_type=authorization_code`), and no subscription
//! key; userinfo takes the *user's* access token from the token endpoint as
//! `Authorization: Bearer`. Errors are OAuth 2.0 / OIDC bodies
//! (`{"error": "invalid_client", "error_description": …}`): a merchant access
//! token on the token endpoint is `invalid_client`, one on userinfo is
//! `request_unauthorized`.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method, Response};
use serde_json::json;

use super::bodies::{self, Body};
use super::server::same_secret;
use super::{Endpoint, Shared};
use crate::Environment;

/// The issued authorization codes (single use) and user access tokens.
#[derive(Default)]
pub(crate) struct LoginState {
    /// Code -> (environment, client id).
    codes: HashMap<String, (Environment, String)>,
    /// (environment, token) -> when it expires, in the emulator's epoch
    /// milliseconds.
    tokens: HashMap<(Environment, String), u64>,
}

/// A user access token's lifetime, as the token response's `expires_in` says.
const TOKEN_LIFETIME_SECS: u64 = 3599;

/// The most codes or tokens kept: older ones are forgotten (a test never needs
/// more).
const STATE_CAP: usize = 10_000;

impl LoginState {
    /// A fresh single-use authorization code for `client_id`.
    pub(crate) fn issue_code(&mut self, environment: Environment, client_id: &str) -> String {
        if self.codes.len() >= STATE_CAP {
            self.codes.clear();
        }
        let code = format!("code-{:032x}", fastrand::u128(..));
        self.codes
            .insert(code.clone(), (environment, client_id.to_owned()));
        code
    }
}

/// The endpoint of a Login path, if it is one.
pub(crate) fn endpoint(method: &Method, segments: &[&str]) -> Option<Endpoint> {
    match (method.as_str(), segments) {
        (
            "GET",
            [
                "access-management-1.0",
                "access",
                ".well-known",
                "openid-configuration",
            ],
        ) => Some(Endpoint::LoginDiscovery),
        ("POST", ["access-management-1.0", "access", "oauth2", "token"]) => {
            Some(Endpoint::LoginToken)
        }
        ("GET" | "POST", ["access-management-1.0", "access", "userinfo"]) => {
            Some(Endpoint::LoginUserInfo)
        }
        _ => None,
    }
}

fn oauth_error(status: u16, error: &str, description: &str) -> Response<Body> {
    let body = json!({ "error": error, "error_description": description });
    bodies::respond(status, bodies::JSON, body.to_string())
}

fn invalid_client() -> Response<Body> {
    bodies::respond(401, bodies::JSON, bodies::INVALID_CLIENT)
}

/// Answers a Login call.
pub(crate) fn handle(
    shared: &Shared,
    environment: Environment,
    endpoint: Endpoint,
    parts: &Parts,
    body: &Bytes,
) -> Response<Body> {
    match endpoint {
        Endpoint::LoginDiscovery => discovery(shared, environment),
        Endpoint::LoginToken => token(shared, environment, parts, body),
        _ => userinfo(shared, environment, parts),
    }
}

fn discovery(shared: &Shared, environment: Environment) -> Response<Body> {
    let base = &shared.base_urls[super::env_index(environment)];
    let access = format!("{base}/access-management-1.0/access");
    let body = json!({
        "issuer": format!("{access}/"),
        "authorization_endpoint": format!("{access}/oauth2/auth"),
        "token_endpoint": format!("{access}/oauth2/token"),
        "userinfo_endpoint": format!("{access}/userinfo"),
        "jwks_uri": format!("{access}/.well-known/jwks.json"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "grant_types_supported": ["authorization_code", "urn:openid:params:grant-type:ciba"],
        "scopes_supported": ["openid", "address", "name", "email", "phoneNumber", "nin", "birthDate"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "claims_parameter_supported": false,
        "request_parameter_supported": true,
        "request_uri_parameter_supported": true,
        "require_request_uri_registration": true,
    });
    bodies::respond(200, bodies::JSON, body.to_string())
}

/// The client id and secret of `Authorization: Basic …`, if that is the scheme.
fn basic(parts: &Parts) -> Option<Option<(String, String)>> {
    let value = parts.headers.get(http::header::AUTHORIZATION)?;
    let Some(encoded) = value.to_str().ok().and_then(|v| v.strip_prefix("Basic ")) else {
        // Another scheme (a Bearer token): no client authentication.
        return Some(None);
    };
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some(Some((id.to_owned(), secret.to_owned())))
}

fn token(shared: &Shared, environment: Environment, parts: &Parts, body: &Bytes) -> Response<Body> {
    let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let client = basic(parts).flatten().or_else(|| {
        Some((
            form.get("client_id")?.clone(),
            form.get("client_secret")?.clone(),
        ))
    });
    let Some((client_id, secret)) = client else {
        return invalid_client();
    };
    let known = shared.keys.values().any(|entry| {
        entry.environment == environment
            && entry.client_id == client_id
            && same_secret(&secret, &entry.client_secret)
    });
    if !known {
        return invalid_client();
    }
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {}
        Some(_) => {
            return oauth_error(
                400,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server.",
            );
        }
        None => {
            return oauth_error(
                400,
                "invalid_request",
                "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.",
            );
        }
    }
    let Ok(mut state) = shared.login.lock() else {
        return bodies::internal_error("/access-management-1.0/access/oauth2/token");
    };
    let issued = form
        .get("code")
        .and_then(|code| state.codes.remove(code))
        .filter(|(env, id)| *env == environment && *id == client_id);
    if issued.is_none() {
        return oauth_error(
            400,
            "invalid_grant",
            "The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.",
        );
    }
    if state.tokens.len() >= STATE_CAP {
        state.tokens.clear();
    }
    let access_token = format!("ory_at_{:032x}", fastrand::u128(..));
    state.tokens.insert(
        (environment, access_token.clone()),
        // To the millisecond (as access tokens are): a token issued late in a
        // second lives its whole `expires_in`, not up to a second less.
        shared
            .now_ms()
            .saturating_add(TOKEN_LIFETIME_SECS.saturating_mul(1000)),
    );
    let body = json!({
        "access_token": access_token,
        "expires_in": TOKEN_LIFETIME_SECS,
        "id_token": format!("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ7fSJ9.{:016x}", fastrand::u64(..)),
        "scope": "openid name phoneNumber",
        "token_type": "bearer",
    });
    bodies::respond(200, bodies::JSON, body.to_string())
}

fn userinfo(shared: &Shared, environment: Environment, parts: &Parts) -> Response<Body> {
    let token = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // A token it issued, until `expires_in` has passed.
    let now = shared.now_ms();
    let known = token.is_some_and(|token| {
        shared.login.lock().is_ok_and(|state| {
            state
                .tokens
                .get(&(environment, token.to_owned()))
                .is_some_and(|expires| now < *expires)
        })
    });
    if !known {
        let mut res = oauth_error(
            401,
            "request_unauthorized",
            "The request could not be authorized. Check that you provided valid credentials in the right format.",
        );
        res.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"request_unauthorized\""),
        );
        return res;
    }
    let body = json!({
        "sub": "c06c4afe-d9e1-4c5d-939a-177d752a0944",
        "sid": "7d78a726-af92-499e-b857-de263ef9a969",
        "name": "Ada Lovelace",
        "given_name": "Ada",
        "family_name": "Lovelace",
        "phone_number": "4791000001",
    });
    bodies::respond(200, bodies::JSON, body.to_string())
}
