//! [`VippsError`]: one diagnosed error for every Vipps MobilePay failure.
//!
//! Whatever went wrong (a request refused before sending, an error response, a
//! failed token fetch, a transport error), the caller gets a [`VippsError`]. It
//! says where the error arose ([`Origin`]), what the known cause is ([`Cause`],
//! with a stable code such as `vipps::token_for_other_msn`), the evidence the
//! diagnosis rests on, numbered steps to fix it and a link to the docs
//! ([`Diagnosis`]), and the request's context ([`RequestContext`]). Error
//! responses keep their status, headers and body bytes.

mod cause;
mod diagnosis;

pub use cause::Cause;
pub use diagnosis::Diagnosis;

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use crate::context::RequestContext;

/// A boxed error, as tower uses.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error response, kept whole: status, headers and the body bytes (capped).
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorResponse {
    /// The status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body bytes, at most [`crate::diagnose::BODY_CAP`].
    pub body: Bytes,
    /// `true` when the body was not read to its end: longer than the cap, sent in
    /// too many frames, or stalled past the body deadline.
    pub truncated: bool,
}

/// Where a [`VippsError`] arose.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Origin {
    /// Refused before sending: nothing went on the wire.
    Refused,
    /// Vipps MobilePay answered with an error status.
    Response(ErrorResponse),
    /// Fetching the access token failed; the token endpoint's error response, if
    /// it answered.
    Token(Option<ErrorResponse>),
    /// The inner service failed (connection, timeout); see `source()`.
    Transport,
}

struct Inner {
    origin: Origin,
    diagnosis: Diagnosis,
    context: RequestContext,
    source: Option<BoxError>,
}

/// The one error of tower-vipps: where it arose, a [`Diagnosis`] and the request's
/// [`RequestContext`].
///
/// `Display` is one readable paragraph naming the cause and the first step; it never
/// shows a secret. Reach it from a `tower::BoxError` with `downcast_ref`.
///
/// ```
/// use tower_vipps::{Cause, Diagnosis, VippsError};
///
/// let err = VippsError::refused(Diagnosis::new(Cause::BearerWrongCase));
/// assert_eq!(err.cause(), Cause::BearerWrongCase);
/// assert!(err.to_string().contains("vipps::bearer_wrong_case"));
/// let boxed: tower::BoxError = err.into();
/// assert!(boxed.downcast_ref::<VippsError>().is_some());
/// ```
pub struct VippsError {
    inner: Box<Inner>,
}

impl VippsError {
    fn new(origin: Origin, diagnosis: Diagnosis, source: Option<BoxError>) -> Self {
        VippsError {
            inner: Box::new(Inner {
                origin,
                diagnosis,
                context: RequestContext::default(),
                source,
            }),
        }
    }

    /// A request refused before it was sent.
    pub fn refused(diagnosis: Diagnosis) -> Self {
        VippsError::new(Origin::Refused, diagnosis, None)
    }

    /// An error response.
    pub fn from_response(response: ErrorResponse, diagnosis: Diagnosis) -> Self {
        VippsError::new(Origin::Response(response), diagnosis, None)
    }

    /// A failed token fetch.
    pub fn token(
        response: Option<ErrorResponse>,
        diagnosis: Diagnosis,
        source: Option<BoxError>,
    ) -> Self {
        VippsError::new(Origin::Token(response), diagnosis, source)
    }

    /// A failure of the inner service, diagnosed from its source chain by
    /// [`diagnose::transport`](crate::diagnose::transport): a certificate problem,
    /// a TLS handshake, a connector without HTTPS, DNS, a refused or reset
    /// connection, a timeout, else [`Cause::Transport`]. The evidence quotes the
    /// chain's messages down to the innermost.
    pub fn transport(source: impl Into<BoxError>) -> Self {
        let source = source.into();
        let diagnosis = crate::diagnose::transport::diagnose_or_transport(&*source);
        VippsError::new(Origin::Transport, diagnosis, Some(source))
    }

    /// A transport-side error with a given diagnosis (a deadline, say).
    pub fn transport_with(diagnosis: Diagnosis, source: Option<BoxError>) -> Self {
        VippsError::new(Origin::Transport, diagnosis, source)
    }

    /// The error of a token request that failed in the stack below: the same
    /// diagnosis, context and source, with origin [`Origin::Token`] (a refusal
    /// stays a refusal: nothing was sent).
    pub(crate) fn into_token(mut self) -> Self {
        let origin = std::mem::replace(&mut self.inner.origin, Origin::Refused);
        self.inner.origin = match origin {
            Origin::Refused => Origin::Refused,
            Origin::Response(r) => Origin::Token(Some(r)),
            Origin::Token(r) => Origin::Token(r),
            Origin::Transport => Origin::Token(None),
        };
        self
    }

    /// Turns any boxed error into a `VippsError`: itself if it is one, else a
    /// transport error.
    pub fn from_boxed(error: BoxError) -> Self {
        match error.downcast::<VippsError>() {
            Ok(err) => *err,
            Err(other) => VippsError::transport(other),
        }
    }

    /// Sets the request context.
    pub fn with_context(mut self, context: RequestContext) -> Self {
        self.inner.context = context;
        self
    }

    /// Fills in what the context lacks from `context` (fields already set are kept).
    pub fn fill_context(mut self, context: &RequestContext) -> Self {
        self.inner.context.fill_from(context);
        self
    }

    /// Adds one piece of evidence to the diagnosis (never put a secret in it); the
    /// retry layer says here why it stopped retrying.
    pub fn with_evidence(mut self, evidence: impl Into<Cow<'static, str>>) -> Self {
        self.inner.diagnosis.evidence.push(evidence.into());
        self
    }

    /// Where the error arose.
    pub fn origin(&self) -> &Origin {
        &self.inner.origin
    }

    /// `true` if the request was refused before sending.
    pub fn is_refused(&self) -> bool {
        matches!(self.inner.origin, Origin::Refused)
    }

    /// The diagnosis.
    pub fn diagnosis(&self) -> &Diagnosis {
        &self.inner.diagnosis
    }

    /// The cause.
    pub fn cause(&self) -> Cause {
        self.inner.diagnosis.cause
    }

    /// The stable code of the cause.
    pub fn code(&self) -> &'static str {
        self.inner.diagnosis.code()
    }

    /// Whether the same request may succeed later.
    pub fn is_transient(&self) -> bool {
        self.inner.diagnosis.cause.is_transient()
    }

    /// The request context.
    pub fn context(&self) -> &RequestContext {
        &self.inner.context
    }

    /// The error response, for errors that came with one.
    pub fn error_response(&self) -> Option<&ErrorResponse> {
        match &self.inner.origin {
            Origin::Response(r) | Origin::Token(Some(r)) => Some(r),
            _ => None,
        }
    }

    /// The response status, for errors that came with one.
    pub fn status(&self) -> Option<StatusCode> {
        self.error_response().map(|r| r.status)
    }

    /// The response body bytes, for errors that came with one.
    pub fn body(&self) -> Option<&Bytes> {
        self.error_response().map(|r| &r.body)
    }

    /// The idempotency key of the request, to retry it later with the same key.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.inner.context.idempotency_key.as_deref()
    }

    /// The `Retry-After` of the response, in seconds or as an HTTP date, as a delay
    /// from now.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        let value = self
            .error_response()?
            .headers
            .get(http::header::RETRY_AFTER)?;
        parse_retry_after(value, std::time::SystemTime::now())
    }
}

/// Parses a `Retry-After` header value (delay seconds or HTTP date) as a delay from
/// `now`.
pub fn parse_retry_after(
    value: &http::HeaderValue,
    now: std::time::SystemTime,
) -> Option<std::time::Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(std::time::Duration::from_secs(secs));
    }
    let date = httpdate::parse_http_date(text).ok()?;
    Some(date.duration_since(now).unwrap_or_default())
}

impl fmt::Debug for VippsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VippsError")
            .field("code", &self.code())
            .field("origin", &self.inner.origin)
            .field("evidence", &self.inner.diagnosis.evidence)
            .field("body", &self.inner.diagnosis.body)
            .field("context", &self.inner.context)
            .field("source", &self.inner.source)
            .finish()
    }
}

impl fmt::Display for VippsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cause = self.cause();
        match &self.inner.origin {
            Origin::Refused => f.write_str("refused before sending: ")?,
            Origin::Response(r) => write!(f, "Vipps MobilePay answered {}: ", r.status)?,
            Origin::Token(Some(r)) => write!(f, "access token request failed with {}: ", r.status)?,
            Origin::Token(None) => f.write_str("access token request failed: ")?,
            Origin::Transport => f.write_str("request failed: ")?,
        }
        write!(f, "{} [{}]", cause.summary(), cause.code())?;
        // The status is already named above: quote the first other evidence.
        let has_status = self.status().is_some();
        let first = self
            .inner
            .diagnosis
            .evidence
            .iter()
            .find(|e| !(has_status && e.starts_with("status ")));
        if let Some(first) = first {
            write!(f, " Evidence: {}", first.trim_end_matches('.'))?;
            f.write_str(".")?;
        }
        let ctx = &self.inner.context;
        if !ctx.is_empty() {
            write!(f, " Request: {ctx}.")?;
        }
        if let Some(step) = cause.steps().first() {
            write!(f, " First step: {step}")?;
        }
        write!(f, " See {}", cause.docs_url())
    }
}

impl std::error::Error for VippsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(feature = "miette")]
impl miette::Diagnostic for VippsError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let steps = self.cause().steps();
        let text = steps
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{}. {s}", i + 1))
            .collect::<Vec<_>>()
            .join("\n");
        Some(Box::new(text))
    }

    fn url<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.cause().docs_url()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::body::ErrorBody;

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for cause in Cause::ALL {
            let code = cause.code();
            assert!(code.starts_with("vipps::"), "{code}");
            assert!(
                code["vipps::".len()..]
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code}"
            );
            assert!(seen.insert(code), "duplicate {code}");
            assert!(!cause.steps().is_empty(), "{code} has no steps");
            assert!(cause.docs_url().starts_with("https://"), "{code}");
        }
    }

    #[test]
    fn display_names_cause_and_first_step() {
        let err = VippsError::refused(
            Diagnosis::new(Cause::BearerWrongCase).with_evidence("scheme is `bearer`"),
        );
        let text = err.to_string();
        assert!(text.starts_with("refused before sending"));
        assert!(text.contains("vipps::bearer_wrong_case"));
        assert!(text.contains(Cause::BearerWrongCase.steps()[0]));
    }

    #[test]
    fn report_shows_the_trace_id() {
        let body = br#"{"type":"about:blank","title":"Bad Request","status":400,"instance":"/epayment/v1/payments","traceId":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#;
        let d = Diagnosis::new(Cause::InvalidField).with_body(ErrorBody::parse(body));
        assert_eq!(
            d.trace_id(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        assert!(
            d.report()
                .contains("trace id: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        let body = br#"{"title":"Bad Request","status":400,"instance":"f5d3c1a0-1b2c-4d5e-8f90-123456789abc"}"#;
        let d = Diagnosis::new(Cause::InvalidField).with_body(ErrorBody::parse(body));
        assert!(
            d.report()
                .contains("trace id: f5d3c1a0-1b2c-4d5e-8f90-123456789abc")
        );
        assert!(!Diagnosis::new(Cause::Unknown).report().contains("trace id"));
    }

    #[test]
    fn retry_after_forms() {
        let now = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        let v = http::HeaderValue::from_static("42");
        assert_eq!(
            parse_retry_after(&v, now),
            Some(std::time::Duration::from_secs(42))
        );
        let later = now + std::time::Duration::from_secs(10);
        let v = http::HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap();
        assert_eq!(
            parse_retry_after(&v, now),
            Some(std::time::Duration::from_secs(10))
        );
        let v = http::HeaderValue::from_static("soon");
        assert_eq!(parse_retry_after(&v, now), None);
    }
}
