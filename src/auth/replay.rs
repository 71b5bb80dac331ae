//! The stale-token 401: look at it, drop the token, replay the request once.

use super::headers::{apply, target};
use super::*;
use crate::diagnose::FRAME_CAP;

/// Handles the response: a stale-token 401 invalidates the token and, when the
/// request can be replayed, replays it once.
pub(super) async fn finish<S, B, RB, T>(
    response: Response<RB>,
    sent: Sent<S, B, T>,
) -> Result<Response<AuthBody<RB>>, VippsError>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    B: 'static,
    RB: Body + Send + 'static,
    T: TokenSource<S, B>,
{
    if response.status() != StatusCode::UNAUTHORIZED {
        return Ok(response.map(AuthBody::new));
    }
    let (response, stale) = inspect_401(response).await;
    if !stale {
        return Ok(response);
    }
    let shared = &sent.shared;
    let cache = &shared.cache;
    cache.invalidate_generation(sent.key, sent.generation);
    let Some(replay) = sent.replay else {
        tracing::debug!("stale access token: not replayed (body cannot be sent again)");
        return Ok(response);
    };
    let Replay {
        method,
        uri,
        version,
        headers,
        extensions,
        body,
        msn,
    } = replay;
    let mut request = Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    *request.extensions_mut() = extensions;
    if let Some(msn) = msn {
        request.extensions_mut().insert(msn);
    }
    let mut inner = shared.inner();
    let target = match target(&request, shared) {
        Ok(target) => target,
        Err(_) => return Ok(response),
    };
    let client = shared.tokens.token_client(&inner);
    let treq = token_request(&request, cache, &target, &shared.keyring);
    let token = match cache.wait(sent.key, &client, &treq).await {
        Ok(token) if token.generation != sent.generation => token,
        // No fresh token: return the 401 as it came.
        _ => return Ok(response),
    };
    drop(response);
    tracing::debug!("stale access token: replaying the request once with a fresh token");
    if apply(
        request.headers_mut(),
        token.authorization().clone(),
        &target,
        shared,
    )
    .is_err()
    {
        // Cannot happen for a request that fitted the first time; never a panic.
        return Err(super::headers::refuse(
            &request,
            &shared.keyring,
            crate::headers::too_many_headers(request.headers(), "Authorization"),
        ));
    }
    let ready = inner
        .ready()
        .await
        .map_err(|e| VippsError::from_boxed(e.into()))?;
    // The total deadline of the preset's timeout, as it was when the call came.
    let response = crate::timeout::scope::within(sent.deadline, || ready.call(request))
        .await
        .map_err(|e| VippsError::from_boxed(e.into()))?;
    if response.status() != StatusCode::UNAUTHORIZED {
        return Ok(response.map(AuthBody::new));
    }
    let (response, stale) = inspect_401(response).await;
    if stale {
        cache.invalidate(&token);
    }
    Ok(response)
}

/// Whether a 401 says the access token is invalid or expired (and not that the
/// subscription key is wrong or missing).
pub(super) fn says_token_invalid(headers: &HeaderMap, body: &[u8]) -> bool {
    if let Some(value) = headers.get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()) {
        if value.to_ascii_lowercase().contains("invalid_token") {
            return true;
        }
    }
    let parsed = ErrorBody::parse(body);
    if matches!(parsed, ErrorBody::Empty) {
        return true;
    }
    let message = parsed.message().unwrap_or_default().to_ascii_lowercase();
    if message.contains("subscription") {
        return false;
    }
    message.contains("something went wrong")
        || (message.contains("token") || message.contains("jwt"))
            && (message.contains("invalid") || message.contains("expired"))
}

/// Reads up to [`BODY_CAP`] bytes (and at most [`FRAME_CAP`] frames) of a 401's
/// body, keeping every frame so the body can still be read whole. Each frame costs
/// tokio's cooperative budget, so an always-ready body yields the thread.
pub(super) async fn inspect_401<RB>(response: Response<RB>) -> (Response<AuthBody<RB>>, bool)
where
    RB: Body + Send + 'static,
{
    let (mut parts, body) = response.into_parts();
    parts.extensions.insert(AuthorizationSetBelow);
    let mut body = Box::pin(body);
    let mut frames = VecDeque::new();
    let mut seen = BytesMut::new();
    let mut error = None;
    let mut ended = false;
    while seen.len() < BODY_CAP && frames.len() < FRAME_CAP {
        match tokio::task::coop::cooperative(body.frame()).await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let mut slices = [std::io::IoSlice::new(&[]); 64];
                    let n = data.chunks_vectored(&mut slices);
                    for slice in &slices[..n] {
                        let room = BODY_CAP - seen.len();
                        seen.extend_from_slice(&slice[..slice.len().min(room)]);
                    }
                }
                frames.push_back(frame);
            }
            Some(Err(e)) => {
                error = Some(e);
                ended = true;
                break;
            }
            None => {
                ended = true;
                break;
            }
        }
    }
    // A body still coming after `FRAME_CAP` frames with nothing in them is not the
    // empty body of a stale-token 401.
    let stale =
        error.is_none() && (ended || !seen.is_empty()) && says_token_invalid(&parts.headers, &seen);
    let body = AuthBody {
        kind: Kind::Buffered {
            frames,
            error,
            rest: (!ended).then_some(body),
        },
    };
    (Response::from_parts(parts, body), stale)
}

pin_project! {
    /// The response body of [`Auth`]: the inner service's body, unchanged. After a
    /// `401` was looked at, the frames read are yielded first, then the rest.
    pub struct AuthBody<B: Body> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B: Body> {
        Inner { #[pin] body: B },
        Buffered {
            frames: VecDeque<Frame<B::Data>>,
            error: Option<B::Error>,
            rest: Option<Pin<Box<B>>>,
        },
    }
}

impl<B: Body> AuthBody<B> {
    pub(super) fn new(body: B) -> Self {
        AuthBody {
            kind: Kind::Inner { body },
        }
    }
}

impl<B: Body> fmt::Debug for AuthBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthBody").finish_non_exhaustive()
    }
}

impl<B: Body> Body for AuthBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Buffered {
                frames,
                error,
                rest,
            } => {
                if let Some(frame) = frames.pop_front() {
                    return Poll::Ready(Some(Ok(frame)));
                }
                if let Some(e) = error.take() {
                    return Poll::Ready(Some(Err(e)));
                }
                match rest {
                    Some(body) => {
                        let next = ready!(body.as_mut().poll_frame(cx));
                        if next.is_none() {
                            *rest = None;
                        }
                        Poll::Ready(next)
                    }
                    None => Poll::Ready(None),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Buffered {
                frames,
                error,
                rest,
            } => {
                frames.is_empty()
                    && error.is_none()
                    && rest.as_ref().is_none_or(|b| b.is_end_stream())
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Buffered { frames, rest, .. } => {
                let buffered: u64 = frames
                    .iter()
                    .filter_map(|f| f.data_ref().map(|d| d.remaining() as u64))
                    .sum();
                let mut hint = rest
                    .as_ref()
                    .map(|b| b.size_hint())
                    .unwrap_or_else(|| SizeHint::with_exact(0));
                hint.set_lower(hint.lower() + buffered);
                if let Some(upper) = hint.upper() {
                    hint.set_upper(upper + buffered);
                }
                hint
            }
        }
    }
}
