//! Which request bodies can be sent twice.
//!
//! A request is replayed (after a stale-token 401, or by a retry) only when its body
//! is known to be empty or is of a type whose clone is the same bytes: `Full<Bytes>`,
//! `Empty<Bytes>`, `String`, `Vec<u8>`, `Bytes`, `&'static str`, `()`, and (with the
//! `reqwest` feature) a buffered `reqwest::Body`. A streaming body is never replayed,
//! and never replaced by an empty one.

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
                let cloned: Box<dyn Any> = Box::new(b.clone());
                return cloned.downcast::<B>().ok().map(|b| *b);
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
        let cloned: Box<dyn Any> = Box::new(reqwest::Body::from(bytes));
        return cloned.downcast::<B>().ok().map(|b| *b);
    }
    None
}

/// A copy of a request (method, URI, version, headers, body) if its body can be
/// cloned; extensions are not copied.
pub fn try_clone_request<B: 'static>(request: &Request<B>) -> Option<Request<B>> {
    let body = try_clone_body(request.body())?;
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
