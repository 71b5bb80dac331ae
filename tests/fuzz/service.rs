//! The counting inner service of the preset trial: a token endpoint answering
//! every shape and an API answering every status, with bodies that come whole, a
//! byte at a time, stall, spin or break.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use fastrand::Rng;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::Full;

use super::generate::{body, response_headers, retry_after, status};

/// How a body comes.
#[derive(Clone, Copy, Debug)]
pub(super) enum Delivery {
    Whole,
    /// One byte per frame.
    Trickle,
    /// Some bytes, then never anything more.
    Stall,
    /// Empty frames, always ready, `n` of them.
    Spin(usize),
    /// Some bytes, then an error.
    Break,
}

pub(super) fn delivery(rng: &mut Rng) -> Delivery {
    match rng.u8(..10) {
        0 => Delivery::Trickle,
        1 => Delivery::Stall,
        2 => Delivery::Spin(if rng.bool() {
            usize::MAX
        } else {
            rng.usize(..10_000)
        }),
        3 => Delivery::Break,
        _ => Delivery::Whole,
    }
}

pub(super) struct FuzzBody {
    pub(super) bytes: Bytes,
    pub(super) delivery: Delivery,
    pub(super) sent: usize,
}

impl http_body::Body for FuzzBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = &mut *self;
        let half = this.bytes.len() / 2;
        match this.delivery {
            Delivery::Whole => {
                if this.sent > 0 {
                    return Poll::Ready(None);
                }
                this.sent = 1;
                Poll::Ready(Some(Ok(Frame::data(this.bytes.clone()))))
            }
            Delivery::Trickle => {
                if this.sent >= this.bytes.len() {
                    return Poll::Ready(None);
                }
                this.sent += 1;
                Poll::Ready(Some(Ok(Frame::data(
                    this.bytes.slice(this.sent - 1..this.sent),
                ))))
            }
            Delivery::Stall => {
                if this.sent == 0 {
                    this.sent = 1;
                    return Poll::Ready(Some(Ok(Frame::data(this.bytes.slice(..half)))));
                }
                Poll::Pending
            }
            Delivery::Spin(n) => {
                if this.sent >= n {
                    return Poll::Ready(None);
                }
                this.sent += 1;
                Poll::Ready(Some(Ok(Frame::data(Bytes::new()))))
            }
            Delivery::Break => {
                if this.sent == 0 {
                    this.sent = 1;
                    return Poll::Ready(Some(Ok(Frame::data(this.bytes.slice(..half)))));
                }
                Poll::Ready(Some(Err(std::io::Error::other("connection reset"))))
            }
        }
    }
}

/// What the token endpoint answers in one case.
#[derive(Clone, Copy, Debug)]
pub(super) enum TokenShape {
    Good,
    WrongTypes,
    Missing,
    Html,
    Huge,
    Slow,
    RateLimited,
    Echo,
    RejectedField,
    Random,
}

pub(super) const SHAPES: [TokenShape; 10] = [
    TokenShape::Good,
    TokenShape::WrongTypes,
    TokenShape::Missing,
    TokenShape::Html,
    TokenShape::Huge,
    TokenShape::Slow,
    TokenShape::RateLimited,
    TokenShape::Echo,
    TokenShape::RejectedField,
    TokenShape::Random,
];

pub(super) fn fresh_token(rng: &mut Rng) -> String {
    let b64 = |rng: &mut Rng, n: usize| -> String {
        (0..n)
            .map(|_| {
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[rng.usize(..64)]
                    as char
            })
            .collect()
    };
    if rng.u8(..4) == 0 {
        b64(rng, 40)
    } else {
        format!("eyJ{}.{}.{}", b64(rng, 30), b64(rng, 60), b64(rng, 43))
    }
}

pub(super) struct Case {
    pub(super) shape: TokenShape,
    pub(super) token: String,
    pub(super) token_delivery: Delivery,
    pub(super) api_status: StatusCode,
    pub(super) api_body: Bytes,
    pub(super) api_headers: HeaderMap,
    pub(super) api_delivery: Delivery,
    pub(super) echo_api: bool,
    pub(super) api_calls: AtomicUsize,
}

pub(super) fn token_answer(
    case: &Case,
    rng: &mut Rng,
    req: &Request<Full<Bytes>>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let token = &case.token;
    let json = |s: String| (StatusCode::OK, HeaderMap::new(), s.into_bytes());
    match case.shape {
        TokenShape::Good | TokenShape::Slow => json(format!(
            r#"{{"token_type":"Bearer","expires_in":"3600","ext_expires_in":"3600","access_token":"{token}"}}"#
        )),
        TokenShape::WrongTypes => {
            let bodies = [
                format!(r#"{{"token_type":5,"expires_in":"3600","access_token":"{token}"}}"#),
                format!(r#"{{"token_type":"Bearer","expires_in":{{}},"access_token":"{token}"}}"#),
                format!(
                    r#"{{"token_type":"Bearer","expires_in":3600,"access_token":["{token}"]}}"#
                ),
                r#"{"token_type":"Bearer","expires_in":3600,"access_token":42}"#.to_owned(),
                format!(r#"["{token}"]"#),
            ];
            json(bodies[rng.usize(..bodies.len())].clone())
        }
        TokenShape::Missing => {
            let bodies = [
                format!(r#"{{"token_type":"Bearer","access_token":"{token}"}}"#),
                r#"{"token_type":"Bearer","expires_in":"3600"}"#.to_owned(),
                "{}".to_owned(),
                String::new(),
            ];
            json(bodies[rng.usize(..bodies.len())].clone())
        }
        TokenShape::Html => (
            StatusCode::OK,
            HeaderMap::new(),
            format!("<html><body>Bearer {token}</body></html>").into_bytes(),
        ),
        TokenShape::Huge => {
            let mut body = format!(r#"{{"access_token":"{token}","padding":""#).into_bytes();
            body.resize(100 * 1024, b'p');
            (StatusCode::OK, HeaderMap::new(), body)
        }
        TokenShape::RateLimited => {
            let mut headers = HeaderMap::new();
            headers.insert("retry-after", retry_after(rng));
            (
                StatusCode::TOO_MANY_REQUESTS,
                headers,
                br#"{"statusCode": 429, "message": "Rate limit is exceeded."}"#.to_vec(),
            )
        }
        TokenShape::Echo => {
            let statuses = [200, 400, 401, 403, 500];
            let mut headers = HeaderMap::new();
            let mut body = String::new();
            for (name, value) in req.headers() {
                if matches!(name.as_str(), "content-length" | "transfer-encoding") {
                    continue;
                }
                headers.append(name.clone(), value.clone());
                body.push_str(&format!(
                    "{name}: {}\n",
                    String::from_utf8_lossy(value.as_bytes())
                ));
            }
            (
                StatusCode::from_u16(statuses[rng.usize(..statuses.len())]).unwrap(),
                headers,
                body.into_bytes(),
            )
        }
        TokenShape::RejectedField => {
            let bodies = [
                format!(r#"{{"token_type":"Bearer","expires_in":"0","access_token":"{token}"}}"#),
                format!(
                    r#"{{"token_type":"Bearer","expires_in":3600.5,"access_token":"{token}"}}"#
                ),
                format!(
                    r#"{{"token_type":"Bearer","expires_in":691200,"access_token":"{token}"}}"#
                ),
                format!(r#"{{"token_type":"MAC","expires_in":"3600","access_token":"{token}"}}"#),
                format!(
                    r#"{{"token_type":"Bearer","expires_in":"3600","access_token":"{token} x"}}"#
                ),
            ];
            json(bodies[rng.usize(..bodies.len())].clone())
        }
        TokenShape::Random => {
            let mut body = body(rng);
            if rng.bool() {
                body.extend_from_slice(format!(r#"{{"access_token":"{token}"}}"#).as_bytes());
            }
            (status(rng), response_headers(rng), body)
        }
    }
}

pub(super) type Inner =
    tower::util::BoxCloneSyncService<Request<Full<Bytes>>, Response<FuzzBody>, Infallible>;

pub(super) fn inner(case: Arc<Case>, seed: u64) -> Inner {
    let rng = Arc::new(Mutex::new(Rng::with_seed(seed)));
    tower::util::BoxCloneSyncService::new(tower::service_fn(move |req: Request<Full<Bytes>>| {
        let case = case.clone();
        let rng = rng.clone();
        async move {
            let mut rng = rng.lock().unwrap().fork();
            if req.uri().path() == "/accesstoken/get" {
                if matches!(case.shape, TokenShape::Slow) {
                    tokio::time::sleep(Duration::from_secs(rng.u64(..40))).await;
                }
                let (status, headers, body) = token_answer(&case, &mut rng, &req);
                let mut res = Response::new(FuzzBody {
                    bytes: Bytes::from(body),
                    delivery: case.token_delivery,
                    sent: 0,
                });
                *res.status_mut() = status;
                *res.headers_mut() = headers;
                return Ok(res);
            }
            case.api_calls.fetch_add(1, Ordering::Relaxed);
            let mut res = Response::new(FuzzBody {
                bytes: case.api_body.clone(),
                delivery: case.api_delivery,
                sent: 0,
            });
            *res.status_mut() = case.api_status;
            *res.headers_mut() = case.api_headers.clone();
            if case.echo_api {
                for (name, value) in req.headers() {
                    if !matches!(name.as_str(), "content-length" | "transfer-encoding") {
                        res.headers_mut().append(name.clone(), value.clone());
                    }
                }
            }
            Ok(res)
        }
    }))
}
