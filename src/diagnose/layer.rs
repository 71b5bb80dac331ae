//! [`DiagnoseLayer`] / [`Diagnose`]: error responses become [`VippsError`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, response::Parts};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::{BODY_CAP, FRAME_CAP, classify};
use crate::context::{ContextSeed, RequestContext};
use crate::error::{BoxError, ErrorResponse, VippsError};
use crate::{Cause, Diagnosis, Hosts, Keyring};

/// A layer that turns every response with status ≥ 400 into
/// `Err(`[`VippsError`]`)` with a [`Diagnosis`](crate::Diagnosis), and any error of
/// the inner service into a [`VippsError`] (cause `Transport`, or the cause of a
/// `VippsError` from a deeper layer). Successful responses pass through untouched
/// and unbuffered.
///
/// Before calling the inner service it records the request's
/// [`RequestContext`] (API, operation, MSN, environment, idempotency key), kept in
/// every error. Error bodies are read up to [`BODY_CAP`] (64 KiB) and kept. The
/// read has its own deadline, [`body_timeout`](DiagnoseLayer::body_timeout)
/// (default [`DEFAULT_BODY_TIMEOUT`], 10 s, counted from the response head): a
/// body that stops coming still gives an error with the status and the bytes read.
/// The deadline needs a tokio runtime with its timer enabled once a body stalls.
///
/// ```no_run
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use tower::{ServiceBuilder, ServiceExt};
/// use tower_vipps::{DiagnoseLayer, VippsError};
///
/// # async fn run<S>(hyper_client: S) -> Result<(), VippsError>
/// # where
/// #     S: tower::Service<http::Request<Full<Bytes>>, Response = http::Response<Full<Bytes>>>,
/// #     S::Error: Into<tower::BoxError>,
/// # {
/// let client = ServiceBuilder::new()
///     .layer(DiagnoseLayer::new())
///     .service(hyper_client);
/// let request = http::Request::get("https://apitest.vipps.no/epayment/v1/payments/order-123456")
///     .header("Merchant-Serial-Number", "123456")
///     .body(Full::new(Bytes::new()))
///     .unwrap();
/// match client.oneshot(request).await {
///     Ok(response) => println!("{}", response.status()),
///     Err(err) => {
///         eprintln!("{err}");
///         eprintln!("{}", err.diagnosis().report());
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct DiagnoseLayer {
    config: Config,
}

/// How long [`Diagnose`] waits for an error body by default: 10 seconds from the
/// response head.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct Config {
    hosts: Arc<Hosts>,
    body_cap: usize,
    body_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hosts: Arc::new(Hosts::default()),
            body_cap: BODY_CAP,
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("hosts", &self.hosts)
            .field("body_cap", &self.body_cap)
            .field("body_timeout", &self.body_timeout)
            .finish()
    }
}

impl DiagnoseLayer {
    /// A layer that knows the official hosts and keeps up to [`BODY_CAP`] bytes of
    /// an error body.
    pub fn new() -> Self {
        DiagnoseLayer::default()
    }

    /// Uses this host table to tell a request's environment (for emulators and
    /// proxies).
    pub fn hosts(mut self, hosts: Hosts) -> Self {
        self.config.hosts = Arc::new(hosts);
        self
    }

    /// Uses the host table of a keyring.
    pub fn keyring(self, keyring: &Keyring) -> Self {
        self.hosts(keyring.hosts().clone())
    }

    /// Keeps at most `cap` bytes of an error body (never more than [`BODY_CAP`]).
    pub fn body_cap(mut self, cap: usize) -> Self {
        self.config.body_cap = cap.min(BODY_CAP);
        self
    }

    /// Waits at most this long for an error body, from the response head (default
    /// [`DEFAULT_BODY_TIMEOUT`]). When it passes, the error keeps the status and
    /// the bytes read, with evidence that the body stalled.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_vipps::DiagnoseLayer;
    ///
    /// let layer = DiagnoseLayer::new().body_timeout(Duration::from_secs(2));
    /// # let _ = layer;
    /// ```
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.config.body_timeout = timeout;
        self
    }
}

impl<S> Layer<S> for DiagnoseLayer {
    type Service = Diagnose<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Diagnose {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service of [`DiagnoseLayer`].
#[derive(Clone, Debug)]
pub struct Diagnose<S> {
    inner: S,
    config: Config,
}

impl<S> Diagnose<S> {
    /// Wraps a service with the defaults of [`DiagnoseLayer::new`].
    pub fn new(inner: S) -> Self {
        DiagnoseLayer::new().layer(inner)
    }

    /// A [`DiagnoseLayer`].
    pub fn layer() -> DiagnoseLayer {
        DiagnoseLayer::new()
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, ResBody> Service<Request<B>> for Diagnose<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    ResBody: Body,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<ResBody>;
    type Error = VippsError;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner
            .poll_ready(cx)
            .map_err(|e| VippsError::from_boxed(e.into()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let seed = ContextSeed::of(&request, &self.config.hosts);
        // Kept (a reference count, no copy) to explain a 401 by what was sent.
        let authorization = request.headers().get(http::header::AUTHORIZATION).cloned();
        // The inner service is called here, synchronously: the service that was
        // polled ready is the one that takes the request, and the future owns
        // no service.
        let future = self.inner.call(request);
        ResponseFuture {
            state: State::Calling { future },
            seed: Some(seed),
            authorization,
            explain_401: true,
            cap: self.config.body_cap,
            body_timeout: self.config.body_timeout,
        }
    }
}

pin_project! {
    /// The response future of [`Diagnose`].
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
        // What is kept of the request; made into a context only on an error
        // (which the reading state then holds: one of the two at a time).
        seed: Option<ContextSeed>,
        // The request's `Authorization` (sensitive; never formatted).
        authorization: Option<HeaderValue>,
        // Whether a 401 may be explained by that header (no layer below set it).
        explain_401: bool,
        cap: usize,
        body_timeout: Duration,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Calling {
            #[pin]
            future: F,
        },
        Reading {
            parts: Option<Parts>,
            #[pin]
            body: B,
            buf: BytesMut,
            frames: usize,
            // When the head came; the body deadline counts from here.
            started: tokio::time::Instant,
            // Armed the first time the body is not ready.
            deadline: Option<Pin<Box<tokio::time::Sleep>>>,
            context: RequestContext,
        },
        Done,
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (state, context) = match &self.state {
            State::Calling { .. } => ("calling", None),
            State::Reading { context, .. } => ("reading error body", Some(context)),
            State::Done => ("done", None),
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .field("context", &context)
            .finish()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<B>, VippsError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let result = ready!(future.poll(cx));
                    if let Ok(response) = &result {
                        if response.status().as_u16() < 400 {
                            // Success: untouched, and no context is built.
                            this.state.set(State::Done);
                            return Poll::Ready(
                                result.map_err(|e| VippsError::from_boxed(e.into())),
                            );
                        }
                    }
                    let context = this
                        .seed
                        .take()
                        .map(ContextSeed::into_context)
                        .unwrap_or_default();
                    let response = match result {
                        Ok(response) => response,
                        Err(e) => {
                            this.state.set(State::Done);
                            let err = VippsError::from_boxed(e.into()).fill_context(&context);
                            tracing::debug!(
                                code = err.code(),
                                api = context.api.as_str(),
                                operation = context.operation.unwrap_or("-"),
                                msn = %MsnField(&context),
                                "the inner service failed",
                            );
                            return Poll::Ready(Err(err));
                        }
                    };
                    if response
                        .extensions()
                        .get::<crate::auth::AuthorizationSetBelow>()
                        .is_some()
                    {
                        // What this layer saw is not what was sent.
                        *this.explain_401 = false;
                    }
                    let (parts, body) = response.into_parts();
                    this.state.set(State::Reading {
                        parts: Some(parts),
                        body,
                        buf: BytesMut::new(),
                        frames: 0,
                        started: tokio::time::Instant::now(),
                        deadline: None,
                        context,
                    });
                }
                StateProj::Reading {
                    parts,
                    body,
                    buf,
                    frames,
                    started,
                    deadline,
                    context,
                } => {
                    let cap = *this.cap;
                    let mut body = body;
                    let end = loop {
                        if *frames >= FRAME_CAP {
                            break BodyEnd::TooManyFrames;
                        }
                        // Every frame costs cooperative budget: a body that is
                        // always ready yields the thread like any other.
                        let coop = ready!(tokio::task::coop::poll_proceed(cx));
                        let Poll::Ready(frame) = body.as_mut().poll_frame(cx) else {
                            let timeout = *this.body_timeout;
                            let sleep = deadline.get_or_insert_with(|| {
                                Box::pin(tokio::time::sleep_until(*started + timeout))
                            });
                            if sleep.as_mut().poll(cx).is_ready() {
                                break BodyEnd::Stalled(timeout);
                            }
                            return Poll::Pending;
                        };
                        coop.made_progress();
                        *frames += 1;
                        match frame {
                            None => break BodyEnd::Whole,
                            Some(Err(e)) => break BodyEnd::Failed(e.into()),
                            Some(Ok(frame)) => {
                                let Ok(mut data) = frame.into_data() else {
                                    continue;
                                };
                                let room = cap - buf.len();
                                let take = room.min(data.remaining());
                                buf.extend_from_slice(&data.copy_to_bytes(take));
                                if data.has_remaining() {
                                    break BodyEnd::Cut;
                                }
                            }
                        }
                    };
                    let parts = parts.take().expect("error parts are taken once");
                    let bytes = std::mem::take(buf).freeze();
                    let context = std::mem::take(context);
                    this.state.set(State::Done);
                    return Poll::Ready(Err(error_response(
                        parts,
                        bytes,
                        end,
                        context,
                        this.explain_401.then(|| this.authorization.take()),
                    )));
                }
                StateProj::Done => panic!("ResponseFuture polled after completion"),
            }
        }
    }
}

/// A `401` that only says the token is invalid, explained by the request's own
/// `Authorization` header when that shows the mistake (missing, not `Bearer`,
/// `bearer`, a malformed token): the response's evidence and body are kept.
fn explain_by_request(
    diagnosis: Diagnosis,
    context: &RequestContext,
    authorization: Option<HeaderValue>,
) -> Diagnosis {
    let mut sent = HeaderMap::new();
    if let Some(value) = authorization {
        sent.insert(http::header::AUTHORIZATION, value);
    }
    let Some(mut refined) = crate::preflight::authorization::header_problem(context.api, &sent)
    else {
        return diagnosis;
    };
    for evidence in diagnosis.evidence() {
        refined = refined.with_evidence(evidence.clone());
    }
    match diagnosis.body() {
        Some(body) => refined.with_body(body.clone()),
        None => refined,
    }
}

/// How the reading of an error body ended.
enum BodyEnd {
    /// Read to its end.
    Whole,
    /// Longer than the cap: cut.
    Cut,
    /// More than [`FRAME_CAP`] frames.
    TooManyFrames,
    /// Not finished within the body deadline.
    Stalled(Duration),
    /// The body failed.
    Failed(BoxError),
}

fn error_response(
    parts: Parts,
    body: bytes::Bytes,
    end: BodyEnd,
    context: RequestContext,
    // `None`: the header that went on the wire is not known here.
    authorization: Option<Option<HeaderValue>>,
) -> VippsError {
    let status: StatusCode = parts.status;
    let mut headers: HeaderMap = parts.headers;
    crate::headers::mark_all_sensitive(&mut headers);
    let mut diagnosis = classify(&context, status, &headers, &body);
    if let Some(authorization) = authorization {
        if status == StatusCode::UNAUTHORIZED && diagnosis.cause() == Cause::InvalidAccessToken {
            diagnosis = explain_by_request(diagnosis, &context, authorization);
        }
    }
    let read = body.len();
    let evidence = match &end {
        BodyEnd::Whole => None,
        BodyEnd::Cut => Some(format!("the body was longer than {read} bytes and was cut")),
        BodyEnd::TooManyFrames => Some(format!(
            "the body came in more than {FRAME_CAP} frames; reading stopped after {read} bytes"
        )),
        BodyEnd::Stalled(timeout) => Some(format!(
            "the body stopped coming: not finished within {timeout:?} of the response head, after {read} bytes"
        )),
        BodyEnd::Failed(e) => Some(format!(
            "the body could not be read to its end after {read} bytes: {e}"
        )),
    };
    if let Some(evidence) = evidence {
        diagnosis = diagnosis.with_evidence(evidence);
    }
    let truncated = matches!(
        end,
        BodyEnd::Cut | BodyEnd::TooManyFrames | BodyEnd::Stalled(_)
    );
    let code = diagnosis.code();
    if status.is_server_error() || code == "vipps::unknown" {
        tracing::warn!(
            code,
            status = status.as_u16(),
            api = context.api.as_str(),
            operation = context.operation.unwrap_or("-"),
            msn = %MsnField(&context),
            "Vipps MobilePay error response",
        );
    } else {
        tracing::debug!(
            code,
            status = status.as_u16(),
            api = context.api.as_str(),
            operation = context.operation.unwrap_or("-"),
            msn = %MsnField(&context),
            "Vipps MobilePay error response",
        );
    }
    let response = ErrorResponse {
        status,
        headers,
        body,
        truncated,
    };
    VippsError::from_response(response, diagnosis).with_context(context)
}

struct MsnField<'a>(&'a RequestContext);

impl fmt::Display for MsnField<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.msn {
            Some(msn) => write!(f, "{msn}"),
            None => f.write_str("-"),
        }
    }
}
