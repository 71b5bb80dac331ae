//! Which request bodies can be sent twice.
//!
//! A request is replayed (after a stale-token 401, or by a retry) only when its body
//! is known to be empty or is of a type whose clone is the same bytes: `Full<Bytes>`,
//! `Empty<Bytes>`, `String`, `Vec<u8>`, `Bytes`, `&'static str`, `()`, and (with the
//! `reqwest` feature) a buffered `reqwest::Body`; or when
//! [`BufferLayer`](crate::buffer::BufferLayer) buffered an opaque body (`BoxBody`,
//! `UnsyncBoxBody`, any [`RebuildBody`]) of an exact, small size: then its bytes
//! ride along in the request's extensions ([`Buffered`]), and
//! [`peek_request`]/[`try_clone_request`] use them. A streaming body is never
//! replayed, and never replaced by an empty one.

use std::any::Any;

use bytes::Bytes;
use http::Request;
use http_body_util::{Empty, Full};

/// A clone of `body` if it can be sent again with the same bytes, else `None`.
pub fn try_clone_body<B: 'static>(body: &B) -> Option<B> {
    let any = body as &dyn Any;
    macro_rules! try_types {
        ($($t:ty),*) => {$(
            if let Some(b) = any.downcast_ref::<$t>() {
                // `B` is `$t` here: move the clone out through `Option<B>`
                // (no allocation, unlike a `Box<dyn Any>` round trip).
                let mut out: Option<B> = None;
                if let Some(slot) = (&mut out as &mut dyn Any).downcast_mut::<Option<$t>>() {
                    *slot = Some(b.clone());
                }
                return out;
            }
        )*};
    }
    try_types!(
        Full<Bytes>,
        Empty<Bytes>,
        String,
        Vec<u8>,
        Bytes,
        &'static str,
        ()
    );
    #[cfg(feature = "reqwest")]
    if let Some(b) = any.downcast_ref::<reqwest::Body>() {
        let bytes = Bytes::copy_from_slice(b.as_bytes()?);
        let mut out: Option<B> = None;
        if let Some(slot) = (&mut out as &mut dyn Any).downcast_mut::<Option<reqwest::Body>>() {
            *slot = Some(reqwest::Body::from(bytes));
        }
        return out;
    }
    None
}

/// The bytes of a buffered body, seen without consuming it: borrowed from the body,
/// or a shared handle on its [`Bytes`] (no copy). Dereferences to `[u8]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeekedBody<'a> {
    /// Borrowed from the body (`String`, `Vec<u8>`, `Bytes`, `&'static str`, empty bodies).
    Borrowed(&'a [u8]),
    /// The body's own `Bytes`, shared (a `Full<Bytes>`).
    Shared(Bytes),
}

impl std::ops::Deref for PeekedBody<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            PeekedBody::Borrowed(b) => b,
            PeekedBody::Shared(b) => b,
        }
    }
}

/// The bytes of `body` if it is one of the buffered types [`try_clone_body`] can
/// clone, without consuming or copying it; `None` for any other (streaming) body,
/// which is never polled.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use tower_vipps::replay::peek_bytes;
///
/// let body = Full::new(Bytes::from_static(b"{\"a\":1}"));
/// assert_eq!(&*peek_bytes(&body).unwrap(), b"{\"a\":1}");
/// assert_eq!(&*peek_bytes(&String::from("x")).unwrap(), b"x");
/// assert!(peek_bytes(&http_body_util::Empty::<Bytes>::new()).unwrap().is_empty());
/// ```
pub fn peek_bytes<B: 'static>(body: &B) -> Option<PeekedBody<'_>> {
    let any = body as &dyn Any;
    if let Some(s) = any.downcast_ref::<String>() {
        return Some(PeekedBody::Borrowed(s.as_bytes()));
    }
    if let Some(v) = any.downcast_ref::<Vec<u8>>() {
        return Some(PeekedBody::Borrowed(v));
    }
    if let Some(b) = any.downcast_ref::<Bytes>() {
        return Some(PeekedBody::Borrowed(b));
    }
    if let Some(s) = any.downcast_ref::<&'static str>() {
        return Some(PeekedBody::Borrowed(s.as_bytes()));
    }
    if any.is::<()>() || any.is::<Empty<Bytes>>() {
        return Some(PeekedBody::Borrowed(&[]));
    }
    if let Some(full) = any.downcast_ref::<Full<Bytes>>() {
        // `Full` keeps its bytes private: poll a clone (a reference count, not a
        // copy). `Full` is always ready, so a no-op waker is enough.
        use http_body::Body as _;
        let mut clone = full.clone();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        return match std::pin::Pin::new(&mut clone).poll_frame(&mut cx) {
            std::task::Poll::Ready(Some(Ok(frame))) => {
                frame.into_data().ok().map(PeekedBody::Shared)
            }
            std::task::Poll::Ready(None) => Some(PeekedBody::Borrowed(&[])),
            _ => None,
        };
    }
    #[cfg(feature = "reqwest")]
    if let Some(b) = any.downcast_ref::<reqwest::Body>() {
        return b.as_bytes().map(PeekedBody::Borrowed);
    }
    None
}

/// A body type that can be rebuilt from its bytes: what
/// [`BufferLayer`](crate::buffer::BufferLayer) needs to buffer an opaque body (read
/// it whole, then send a body of the same type with the same bytes) so that it gets
/// every check and can be retried.
///
/// Implemented for `Full<Bytes>`, `String`, `Vec<u8>`, `Bytes`, `Empty<Bytes>`,
/// `()`, `BoxBody<Bytes, E>`, `UnsyncBoxBody<Bytes, E>`, and with the `reqwest`
/// feature `reqwest::Body`; `StreamBody<S>` is a streaming type
/// ([`RebuildBody::REBUILDS`] is `false`: it is never buffered). For a body type of
/// your own, implement it (or set `REBUILDS = false`).
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Full, combinators::BoxBody};
/// use tower_vipps::replay::RebuildBody;
///
/// let body = BoxBody::<Bytes, std::io::Error>::rebuild(Bytes::from_static(b"{}")).unwrap();
/// assert_eq!(http_body::Body::size_hint(&body).exact(), Some(2));
/// ```
pub trait RebuildBody: Sized {
    /// Whether bodies of this type can be rebuilt at all (`false` for a streaming
    /// type: it is then never read ahead).
    const REBUILDS: bool = true;

    /// A body of this type holding exactly `bytes`, if it can hold them (a
    /// `String` needs UTF-8, an `Empty` no bytes).
    fn rebuild(bytes: Bytes) -> Option<Self>;
}

impl RebuildBody for Full<Bytes> {
    fn rebuild(bytes: Bytes) -> Option<Self> {
        Some(Full::new(bytes))
    }
}

impl RebuildBody for String {
    fn rebuild(bytes: Bytes) -> Option<Self> {
        String::from_utf8(bytes.to_vec()).ok()
    }
}

impl RebuildBody for Vec<u8> {
    fn rebuild(bytes: Bytes) -> Option<Self> {
        Some(bytes.to_vec())
    }
}

impl RebuildBody for Bytes {
    fn rebuild(bytes: Bytes) -> Option<Self> {
        Some(bytes)
    }
}

impl RebuildBody for Empty<Bytes> {
    fn rebuild(bytes: Bytes) -> Option<Self> {
        bytes.is_empty().then(Empty::new)
    }
}

impl RebuildBody for () {
    fn rebuild(bytes: Bytes) -> Option<Self> {
        bytes.is_empty().then_some(())
    }
}

impl<E: 'static> RebuildBody for http_body_util::combinators::BoxBody<Bytes, E> {
    fn rebuild(bytes: Bytes) -> Option<Self> {
        use http_body_util::BodyExt as _;
        Some(
            Full::new(bytes)
                .map_err(|never: std::convert::Infallible| match never {})
                .boxed(),
        )
    }
}

impl<E: 'static> RebuildBody for http_body_util::combinators::UnsyncBoxBody<Bytes, E> {
    fn rebuild(bytes: Bytes) -> Option<Self> {
        use http_body_util::BodyExt as _;
        Some(
            Full::new(bytes)
                .map_err(|never: std::convert::Infallible| match never {})
                .boxed_unsync(),
        )
    }
}

impl<S> RebuildBody for http_body_util::StreamBody<S> {
    const REBUILDS: bool = false;

    fn rebuild(_bytes: Bytes) -> Option<Self> {
        None
    }
}

#[cfg(feature = "reqwest")]
impl RebuildBody for reqwest::Body {
    fn rebuild(bytes: Bytes) -> Option<Self> {
        Some(reqwest::Body::from(bytes))
    }
}

/// The bytes of a body that [`BufferLayer`](crate::buffer::BufferLayer) read ahead,
/// kept in the request's extensions next to a [`Rebuild`] for its body type.
#[derive(Clone, Debug)]
pub struct Buffered(pub Bytes);

/// How to build the body of a buffered request again (see [`Buffered`]).
pub struct Rebuild<B>(pub fn(Bytes) -> Option<B>);

impl<B> Clone for Rebuild<B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B> Copy for Rebuild<B> {}

impl<B> std::fmt::Debug for Rebuild<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rebuild")
    }
}

/// The body bytes of a request, seen without consuming it: [`peek_bytes`] of its
/// body, or the [`Buffered`] bytes that [`BufferLayer`](crate::buffer::BufferLayer)
/// read ahead.
pub fn peek_request<B: 'static>(request: &Request<B>) -> Option<PeekedBody<'_>> {
    peek_bytes(request.body()).or_else(|| {
        let Buffered(bytes) = request.extensions().get::<Buffered>()?;
        Some(PeekedBody::Shared(bytes.clone()))
    })
}

/// A clone of a request's body: [`try_clone_body`], or the body rebuilt from the
/// [`Buffered`] bytes.
pub fn try_clone_request_body<B: 'static>(request: &Request<B>) -> Option<B> {
    try_clone_body(request.body()).or_else(|| {
        let Buffered(bytes) = request.extensions().get::<Buffered>()?;
        let Rebuild(rebuild) = request.extensions().get::<Rebuild<B>>()?;
        rebuild(bytes.clone())
    })
}

/// A copy of a request (method, URI, version, headers, body) if its body can be
/// cloned (see [`try_clone_request_body`]); extensions are not copied.
pub fn try_clone_request<B: 'static>(request: &Request<B>) -> Option<Request<B>> {
    let body = try_clone_request_body(request)?;
    let mut copy = Request::new(body);
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    Some(copy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn clones_known_bodies_only() {
        assert_eq!(try_clone_body(&String::from("abc")).as_deref(), Some("abc"));
        let full = Full::new(Bytes::from_static(b"xyz"));
        assert!(try_clone_body(&full).is_some());
        let stream = http_body_util::StreamBody::new(futures_util::stream::empty::<
            Result<http_body::Frame<Bytes>, std::io::Error>,
        >());
        assert!(try_clone_body(&stream).is_none());
        let boxed = Full::new(Bytes::from_static(b"x"))
            .map_err(|never| match never {})
            .boxed();
        assert!(try_clone_body(&boxed).is_none());
    }

    #[test]
    fn peeks_known_bodies_only() {
        let full = Full::new(Bytes::from_static(b"xyz"));
        assert_eq!(&*peek_bytes(&full).unwrap(), b"xyz");
        // Peeking did not consume it.
        assert_eq!(&*peek_bytes(&full).unwrap(), b"xyz");
        assert_eq!(&*peek_bytes(&vec![1u8, 2]).unwrap(), &[1, 2]);
        assert_eq!(&*peek_bytes(&Bytes::from_static(b"b")).unwrap(), b"b");
        assert_eq!(&*peek_bytes(&"s").unwrap(), b"s");
        assert!(peek_bytes(&()).unwrap().is_empty());
        let stream = http_body_util::StreamBody::new(futures_util::stream::empty::<
            Result<http_body::Frame<Bytes>, std::io::Error>,
        >());
        assert!(peek_bytes(&stream).is_none());
    }

    #[test]
    fn clones_request() {
        let req = Request::post("https://apitest.vipps.no/x")
            .header("a", "b")
            .body(String::from("body"))
            .unwrap();
        let copy = try_clone_request(&req).unwrap();
        assert_eq!(copy.uri(), req.uri());
        assert_eq!(copy.headers(), req.headers());
        assert_eq!(copy.body(), "body");
    }
}
