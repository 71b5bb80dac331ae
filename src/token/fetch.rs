//! The access token call: `POST {base}/accesstoken/get`, through a [`TokenClient`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body::Body;
use tokio::time::Instant;
use tower::{Service, ServiceExt};

use super::{AccessToken, MintedFor};
use crate::diagnose::{BODY_CAP, Capped, read_capped};
use crate::headers::{
    CLIENT_ID, CLIENT_SECRET, MERCHANT_SERIAL_NUMBER, OCP_APIM_SUBSCRIPTION_KEY, VIPPS_SYSTEM_NAME,
    VIPPS_SYSTEM_PLUGIN_NAME, VIPPS_SYSTEM_PLUGIN_VERSION, VIPPS_SYSTEM_VERSION,
};
use crate::{Api, RequestContext};
use crate::{
    BoxError, Cause, Diagnosis, ErrorResponse, KeySet, Msn, Secret, SystemInfo, VippsError,
};

/// The path of the access token endpoint.
pub const TOKEN_PATH: &str = "/accesstoken/get";

/// The longest `expires_in` accepted: 7 days. Anything longer is treated as garbage.
const MAX_EXPIRES_IN: u64 = 7 * 24 * 3600;

type Call =
    dyn Fn(Request<()>) -> BoxFuture<'static, Result<Response<Capped>, BoxError>> + Send + Sync;

/// A client for the access token endpoint: any HTTP service (a hyper client, the
/// inner service of [`Auth`](crate::auth::Auth), a test double), type-erased and cheap
/// to clone.
///
/// The request body is the service's `B::default()` (empty); the response body is
/// read up to [`BODY_CAP`]. A 3xx answer is an error ([`Cause::UnexpectedRedirect`]):
/// give it a client that does not follow redirects itself (hyper's does not), so the
/// client secret never goes to another host.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use tower_vipps::token::TokenClient;
///
/// let svc = tower::service_fn(|_req: http::Request<Full<Bytes>>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(b"{}"))))
/// });
/// let client = TokenClient::new(svc);
/// # let _ = client;
/// ```
#[derive(Clone)]
pub struct TokenClient {
    call: Arc<Call>,
}

impl fmt::Debug for TokenClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenClient").finish_non_exhaustive()
    }
}

impl TokenClient {
    /// Wraps an HTTP service. Its request body type must have an empty `Default`
    /// (`Full<Bytes>`, `Empty<Bytes>`, `String`, …).
    pub fn new<S, B, RB>(service: S) -> TokenClient
    where
        S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
        B: Default + Send + 'static,
        RB: Body + Send + 'static,
        RB::Data: Send,
        RB::Error: Into<BoxError>,
    {
        // Behind a mutex, so that a service that is `Send` but not `Sync` (a
        // `tower::util::BoxCloneService`) will do; it is locked only to clone it,
        // once per token fetch.
        let service = std::sync::Mutex::new(service);
        TokenClient {
            call: Arc::new(move |req: Request<()>| {
                let svc = match service.lock() {
                    Ok(svc) => svc.clone(),
                    Err(poisoned) => poisoned.into_inner().clone(),
                };
                Box::pin(async move {
                    let req = req.map(|()| B::default());
                    let res = svc.oneshot(req).await.map_err(Into::into)?;
                    let (parts, body) = res.into_parts();
                    let capped = read_capped(body, BODY_CAP).await?;
                    Ok(Response::from_parts(parts, capped))
                })
            }),
        }
    }

    /// Fetches a token for `request`. Every failure is a [`VippsError`] with origin
    /// [`Token`](crate::Origin::Token) and a diagnosis.
    pub async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, VippsError> {
        self.fetch_before(request, None).await
    }

    /// [`fetch`](Self::fetch), with the instant by which the caller stops waiting
    /// put on the request as a [`CallDeadline`](crate::timeout::CallDeadline), so a
    /// retry layer below does not wait out a `Retry-After` that ends past it.
    pub(crate) async fn fetch_before(
        &self,
        request: &TokenRequest,
        deadline: Option<Instant>,
    ) -> Result<AccessToken, VippsError> {
        let (mut http_request, minted_for) = request.build()?;
        if let Some(deadline) = deadline {
            http_request
                .extensions_mut()
                .insert(crate::timeout::CallDeadline(deadline));
        }
        let started = Instant::now();
        tracing::debug!(
            environment = %minted_for.environment,
            msn = ?minted_for.msn,
            partner = minted_for.partner,
            subscription_key = %minted_for.subscription_key,
            "fetching access token"
        );
        let response = (self.call)(http_request)
            .await
            .map_err(failed_before_answer)?;
        let (parts, capped) = response.into_parts();
        let secrets = [
            request.keys.client_secret().expose().as_bytes(),
            request.keys.subscription_key().expose().as_bytes(),
        ];
        let mut token = parse_response(
            parts.status,
            &parts.headers,
            &capped,
            started,
            minted_for,
            &secrets,
        )?;
        token.set_minter(request.keys.minter().clone());
        tracing::debug!(environment = %request.keys.environment(), msn = ?token.msn(), "access token fetched");
        Ok(token)
    }
}

/// The error of a token request that got no answer. A `VippsError` from the
/// service (a refusal of Preflight, a diagnosed transport error of the stack
/// below Auth) is kept as it is, not wrapped in another; any other error is
/// diagnosed from its source chain.
fn failed_before_answer(source: BoxError) -> VippsError {
    match source.downcast::<VippsError>() {
        Ok(err) => err.into_token(),
        Err(source) => VippsError::token(
            None,
            crate::diagnose::transport::diagnose_or_transport(&*source)
                .with_evidence("the access token request failed before an answer was read"),
            Some(source),
        ),
    }
}

/// What to fetch a token for: the key set, the MSN to name in the
/// `Merchant-Serial-Number` header, where the endpoint is, and the `Vipps-System-*`
/// headers.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    /// The keys.
    pub keys: KeySet,
    /// The MSN: the merchant's own for merchant keys; for partner keys the sales
    /// unit the token is for (or `None` for a token shared by every MSN).
    pub msn: Option<Msn>,
    /// The scheme of the token endpoint.
    pub scheme: Scheme,
    /// The host (and port) of the token endpoint.
    pub authority: Authority,
    /// The `Vipps-System-*` headers.
    pub system: SystemInfo,
    /// The endpoint may be reached over plain `http://` (a host registered as
    /// plaintext); see [`TokenRequest::allow_plaintext`].
    plaintext: bool,
}

impl TokenRequest {
    /// A request to the official host of the keys' environment.
    pub fn new(keys: KeySet, msn: Option<Msn>, system: SystemInfo) -> TokenRequest {
        let msn = keys.merchant_msn().or(msn);
        TokenRequest {
            authority: Authority::from_static(keys.environment().host()),
            scheme: Scheme::HTTPS,
            keys,
            msn,
            system,
            plaintext: false,
        }
    }

    /// Lets the request go over plain `http://` when [`base`](TokenRequest::base)
    /// is an `http://` URL: only for an emulator or test server on loopback
    /// (`Hosts::allows_plaintext`). Without it such a request is refused unsent
    /// ([`Cause::InsecureScheme`]): it carries `client_secret` and the subscription
    /// key.
    pub fn allow_plaintext(mut self, allow: bool) -> TokenRequest {
        self.plaintext = allow;
        self
    }

    /// Sends it to another base (an emulator, a proxy): scheme and authority of `uri`.
    pub fn base(mut self, uri: &Uri) -> TokenRequest {
        if let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) {
            self.scheme = scheme.clone();
            self.authority = authority.clone();
        }
        self
    }

    /// What a token fetched by this request is minted for.
    pub fn minted_for(&self) -> MintedFor {
        MintedFor {
            environment: self.keys.environment(),
            client_id: self.keys.client_id_shared(),
            subscription_key: self.keys.subscription_key_fingerprint(),
            msn: self.msn,
            partner: self.keys.is_partner(),
        }
    }

    fn build(&self) -> Result<(Request<()>, MintedFor), VippsError> {
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(PathAndQuery::from_static(TOKEN_PATH))
            .build()
            .map_err(|e| {
                VippsError::token(
                    None,
                    Diagnosis::new(Cause::UnknownHost)
                        .with_evidence("the token endpoint URI could not be built"),
                    Some(e.into()),
                )
            })?;
        if self.scheme != Scheme::HTTPS && !self.plaintext {
            return Err(VippsError::refused(
                crate::environment::insecure_scheme_diagnosis(&uri).with_evidence(
                    "the access token request carries `client_secret` and `Ocp-Apim-Subscription-Key`",
                ),
            ));
        }
        let mut req = Request::new(());
        *req.method_mut() = Method::POST;
        *req.uri_mut() = uri;
        let h = req.headers_mut();
        h.insert(CLIENT_ID, self.keys.client_id_header().clone());
        h.insert(CLIENT_SECRET, self.keys.client_secret_header().clone());
        h.insert(
            OCP_APIM_SUBSCRIPTION_KEY,
            self.keys.subscription_key_header().clone(),
        );
        if let Some(msn) = self.msn {
            h.insert(MERCHANT_SERIAL_NUMBER, msn.to_header_value());
        }
        h.insert(VIPPS_SYSTEM_NAME, self.system.name.clone());
        h.insert(VIPPS_SYSTEM_VERSION, self.system.version.clone());
        h.insert(VIPPS_SYSTEM_PLUGIN_NAME, self.system.plugin_name.clone());
        h.insert(
            VIPPS_SYSTEM_PLUGIN_VERSION,
            self.system.plugin_version.clone(),
        );
        h.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from_static("0"),
        );
        Ok((req, self.minted_for()))
    }
}

#[derive(serde::Deserialize)]
struct TokenBody {
    access_token: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

fn parse_expires_in(value: &serde_json::Value) -> Option<u64> {
    let secs = match value {
        serde_json::Value::Number(n) => n.as_u64()?,
        serde_json::Value::String(s) => {
            let s = s.trim();
            if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()?
        }
        _ => return None,
    };
    (1..=MAX_EXPIRES_IN).contains(&secs).then_some(secs)
}

/// What is kept of a token endpoint's answer: the body without any token or
/// secret (see [`super::redact`]), every header marked sensitive.
fn error_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: Bytes,
    truncated: bool,
) -> ErrorResponse {
    let mut headers = headers.clone();
    crate::headers::mark_all_sensitive(&mut headers);
    ErrorResponse {
        status,
        headers,
        body,
        truncated,
    }
}

/// Parses the token endpoint's answer. `secrets` are the request's own secrets,
/// redacted from any body kept in an error.
pub(crate) fn parse_response(
    status: StatusCode,
    headers: &HeaderMap,
    capped: &Capped,
    started: Instant,
    minted_for: MintedFor,
    secrets: &[&[u8]],
) -> Result<AccessToken, VippsError> {
    let kept = || super::redact::redact_body(&capped.bytes, secrets, status.is_success());
    if !status.is_success() {
        let body = kept();
        let diagnosis = classify_token_error(status, headers, &body, &minted_for);
        return Err(VippsError::token(
            Some(error_response(status, headers, body, capped.truncated)),
            diagnosis,
            None,
        ));
    }
    let invalid = |evidence: &'static str| {
        VippsError::token(
            Some(error_response(status, headers, kept(), capped.truncated)),
            Diagnosis::new(Cause::InvalidTokenResponse).with_evidence(evidence),
            None,
        )
    };
    if capped.truncated {
        return Err(invalid("the token response is longer than 64 KiB"));
    }
    let body: TokenBody = serde_json::from_slice(&capped.bytes)
        .map_err(|_| invalid("the token response is not a JSON object"))?;
    if let Some(kind) = &body.token_type {
        if !kind.eq_ignore_ascii_case("bearer") {
            return Err(invalid("the token response's `token_type` is not `Bearer`"));
        }
    }
    let expires_in = body
        .expires_in
        .as_ref()
        .and_then(parse_expires_in)
        .ok_or_else(|| {
            invalid("the token response's `expires_in` is missing or not a number of seconds")
        })?;
    let value = body
        .access_token
        .ok_or_else(|| invalid("the token response has no `access_token`"))?;
    AccessToken::issued(
        Secret::new(value),
        started,
        Duration::from_secs(expires_in),
        minted_for,
    )
    .map_err(|_| invalid("the token response's `access_token` is empty or not header-safe"))
}

/// The diagnosis of a token endpoint's error response: [`crate::diagnose::classify`]
/// with the context of a token call.
fn classify_token_error(
    status: StatusCode,
    headers: &HeaderMap,
    bytes: &Bytes,
    minted: &MintedFor,
) -> Diagnosis {
    let context = RequestContext {
        api: Api::AccessToken,
        operation: Some("get_access_token"),
        method: Some(Method::POST),
        path: Some(TOKEN_PATH.to_owned()),
        environment: Some(minted.environment),
        msn: minted.msn,
        ..RequestContext::default()
    };
    crate::diagnose::classify(&context, status, headers, bytes)
        .with_evidence(format!("the token endpoint answered {status}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Environment;

    fn minted() -> MintedFor {
        MintedFor {
            environment: Environment::Test,
            client_id: Arc::from("id"),
            subscription_key: Secret::new("k").fingerprint(),
            msn: None,
            partner: true,
        }
    }

    fn parse(status: u16, body: &str) -> Result<AccessToken, VippsError> {
        let capped = Capped {
            bytes: Bytes::copy_from_slice(body.as_bytes()),
            truncated: false,
        };
        parse_response(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            &capped,
            Instant::now(),
            minted(),
            &[],
        )
    }

    #[test]
    fn partner_403_on_the_token_endpoint() {
        let body = r#"{"type":"about:blank","title":"Forbidden","status":403,"detail":"The sales unit (MSN) is not connected to this partner."}"#;
        let err = parse(403, body).unwrap_err();
        assert_eq!(err.cause(), Cause::PartnerMsnNotConnected);
        let body = r#"{"title":"Forbidden","status":403,"detail":"The Merchant-Serial-Number header is required when using partner keys."}"#;
        let err = parse(403, body).unwrap_err();
        assert_eq!(err.cause(), Cause::PartnerMissingMsnHeader);
        let err = parse(403, r#"{"title":"Forbidden","status":403}"#).unwrap_err();
        assert_eq!(err.cause(), Cause::Forbidden);
    }

    #[test]
    fn expires_in_string_or_number() {
        let t = parse(
            200,
            r#"{"token_type":"Bearer","expires_in":"3600","access_token":"a.b.c"}"#,
        )
        .unwrap();
        assert_eq!(t.expires_at() - t.issued_at(), Duration::from_secs(3600));
        let t = parse(200, r#"{"expires_in":86399,"access_token":"a.b.c"}"#).unwrap();
        assert_eq!(t.expires_at() - t.issued_at(), Duration::from_secs(86399));
        for bad in [
            r#"{"expires_in":"soon","access_token":"a.b.c"}"#,
            r#"{"expires_in":"-5","access_token":"a.b.c"}"#,
            r#"{"expires_in":0,"access_token":"a.b.c"}"#,
            r#"{"expires_in":1.5,"access_token":"a.b.c"}"#,
            r#"{"expires_in":"99999999999","access_token":"a.b.c"}"#,
            r#"{"access_token":"a.b.c"}"#,
            r#"{"expires_in":"3600","access_token":""}"#,
            r#"{"expires_in":"3600","access_token":"a b"}"#,
            r#"{"expires_in":"3600"}"#,
            r#"{"expires_in":"3600","token_type":"MAC","access_token":"a.b.c"}"#,
            "<html>hi</html>",
            "",
        ] {
            let err = parse(200, bad).unwrap_err();
            assert_eq!(err.cause(), Cause::InvalidTokenResponse, "{bad}");
        }
    }

    #[test]
    fn error_statuses() {
        let cause = |status, body| parse(status, body).unwrap_err().cause();
        assert_eq!(cause(500, "oops"), Cause::ServerError);
        assert_eq!(cause(302, ""), Cause::UnexpectedRedirect);
        assert_eq!(
            cause(401, r#"{"error":"invalid_client","error_description":"x"}"#),
            Cause::InvalidClientCredentials
        );
        assert_eq!(
            cause(
                401,
                r#"{"statusCode":401,"message":"Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."}"#
            ),
            Cause::InvalidSubscriptionKey
        );
        assert_eq!(
            cause(
                401,
                r#"{"statusCode":401,"message":"Access denied due to missing subscription key."}"#
            ),
            Cause::MissingSubscriptionKey
        );
        assert_eq!(cause(418, "teapot"), Cause::Unknown);
        // Partner keys naming an MSN not connected to them, as the token endpoint
        // answers it (problem details).
        assert_eq!(
            cause(
                403,
                r#"{"type":"https://httpstatuses.io/403","title":"Forbidden","status":403,"detail":"The sales unit (MSN) is not connected to this partner.","instance":"/accesstoken/get"}"#
            ),
            Cause::PartnerMsnNotConnected
        );
    }
}
