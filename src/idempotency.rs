//! [`IdempotencyLayer`]: an `Idempotency-Key` on every request that changes state.
//!
//! Vipps MobilePay makes a retry safe through the `Idempotency-Key` header: a
//! request sent twice with the same key is carried out once, and the second answer
//! repeats the first. This layer gives every `POST`, `PUT`, `PATCH` and `DELETE`
//! that has no key a fresh one (a UUID v4, 36 characters; Vipps allows 50) and
//! keeps the caller's key when there is one. Only APIs that take the header get
//! one (see [`crate::api::APIS`]): not the Webhooks, Login or access token calls.
//! eCom v2 reads `X-Request-Id` instead, which its specification requires on a
//! capture and a refund: those get a fresh `X-Request-Id` when they have none
//! (36 characters; eCom allows 40), and no eCom call gets an `Idempotency-Key`,
//! which eCom ignores. The key is written into the request
//! *once*, so every retry below this layer (see [`crate::retry`]) carries the same
//! key, and it is put in the [`RequestContext`] of any
//! [`VippsError`] that comes back, so a caller can try again later with the same
//! key ([`VippsError::idempotency_key`]).
//!
//! ```
//! use http::{Method, Request, Response};
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_vipps::headers::IDEMPOTENCY_KEY;
//! use tower_vipps::idempotency::IdempotencyLayer;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let service = ServiceBuilder::new()
//!     .layer(IdempotencyLayer::new())
//!     .service_fn(|req: Request<String>| async move {
//!         // The key the server will see.
//!         let key = req.headers().get(IDEMPOTENCY_KEY).cloned();
//!         Ok::<_, std::convert::Infallible>(Response::new(key))
//!     });
//!
//! let req = Request::post("https://apitest.vipps.no/epayment/v1/payments")
//!     .body(String::from("{}"))
//!     .unwrap();
//! let res = service.clone().oneshot(req).await.unwrap();
//! assert_eq!(res.body().as_ref().unwrap().len(), 36); // a UUID v4
//!
//! // A caller's own key is kept.
//! let req = Request::post("https://apitest.vipps.no/epayment/v1/payments/ref-1/capture")
//!     .header("Idempotency-Key", "capture-ref-1")
//!     .body(String::from("{}"))
//!     .unwrap();
//! let res = service.clone().oneshot(req).await.unwrap();
//! assert_eq!(res.body().as_ref().unwrap(), "capture-ref-1");
//!
//! // A GET gets none.
//! let req = Request::get("https://apitest.vipps.no/epayment/v1/payments/ref-1")
//!     .body(String::new())
//!     .unwrap();
//! assert!(service.oneshot(req).await.unwrap().body().is_none());
//! # });
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{HeaderValue, Method, Request};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::api::{ApiSpec, IdempotencyHeader};
use crate::context::RequestContext;
use crate::{BoxError, VippsError};

/// Whether requests of this method get an `Idempotency-Key`: `POST`, `PUT`,
/// `PATCH` and `DELETE`.
pub fn needs_key(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// A fresh idempotency key: a hyphenated UUID v4 (36 characters).
///
/// The 122 random bits come from `rand`'s thread-local CSPRNG (ChaCha12, seeded
/// from the operating system and reseeded after every 64 KiB it yields), so a key
/// costs no system call.
pub fn fresh_key() -> HeaderValue {
    use rand::RngCore as _;
    let mut random = [0u8; 16];
    rand::rng().fill_bytes(&mut random);
    let uuid = uuid::Builder::from_random_bytes(random).into_uuid();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid.hyphenated().encode_lower(&mut text);
    // One reference-counted allocation that clones share (a `Bytes` copied from a
    // slice allocates again on its first clone, and the key is cloned per request).
    HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(text))
        .expect("a UUID is a valid header value")
}

/// Adds an `Idempotency-Key` to every `POST`, `PUT`, `PATCH` and `DELETE` that has
/// none; see the [module docs](self).
#[derive(Clone, Copy, Debug, Default)]
pub struct IdempotencyLayer {
    _priv: (),
}

impl IdempotencyLayer {
    /// The layer.
    pub fn new() -> Self {
        IdempotencyLayer::default()
    }
}

impl<S> Layer<S> for IdempotencyLayer {
    type Service = Idempotency<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Idempotency::new(inner)
    }
}

/// The service of [`IdempotencyLayer`].
#[derive(Clone, Debug)]
pub struct Idempotency<S> {
    inner: S,
}

impl<S> Idempotency<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Idempotency { inner }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for Idempotency<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = VippsError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner
            .poll_ready(cx)
            .map_err(|e| VippsError::from_boxed(e.into()))
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let key = match key_header(req.method(), req.uri().path()) {
            Some((header, name)) => match req.headers().get(&name) {
                // A reference count; made into text only if an error comes back.
                Some(own) => Some(own.clone()),
                None => {
                    let key = fresh_key();
                    if req.headers_mut().try_insert(name, key.clone()).is_err() {
                        // A full header map: refused, unsent, rather than a panic.
                        let diagnosis =
                            crate::headers::too_many_headers(req.headers(), header.shown());
                        return ResponseFuture {
                            inner: None,
                            key: None,
                            refused: Some(VippsError::refused(diagnosis)),
                        };
                    }
                    Some(key)
                }
            },
            None => None,
        };
        ResponseFuture {
            inner: Some(self.inner.call(req)),
            key,
            refused: None,
        }
    }
}

/// The idempotency header this layer makes sure a request carries: the API's own
/// ([`ApiSpec::idempotency`]), on a call that changes state and reads it.
/// `Idempotency-Key` on every `POST`, `PUT`, `PATCH` and `DELETE` of an API that
/// takes it; eCom v2's `X-Request-Id` on a capture or refund, the calls
/// `ecom-v2.yaml` declares it on (`required: true`; at most 40 characters, and a
/// key is 36). None elsewhere.
fn key_header(method: &Method, path: &str) -> Option<(IdempotencyHeader, http::HeaderName)> {
    if !needs_key(method) {
        return None;
    }
    let spec = ApiSpec::of_path(path);
    match spec.idempotency {
        IdempotencyHeader::RequestId
            if !matches!(
                crate::context::operation_in(spec.api, method, path),
                Some("capture" | "refund")
            ) =>
        {
            None
        }
        header => Some((header, header.header()?)),
    }
}

pin_project! {
    /// The response future of [`Idempotency`]: puts the key into the context of an
    /// error.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Option<F>,
        key: Option<HeaderValue>,
        refused: Option<VippsError>,
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, VippsError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(inner) = this.inner.as_pin_mut() else {
            let refused = this.refused.take();
            return Poll::Ready(Err(refused.unwrap_or_else(|| {
                VippsError::refused(crate::Diagnosis::new(crate::Cause::TooManyHeaders))
            })));
        };
        let result = ready!(inner.poll(cx));
        Poll::Ready(result.map_err(|e| {
            let err = VippsError::from_boxed(e.into());
            let key = this.key.take();
            match key.as_ref().and_then(|k| k.to_str().ok()) {
                Some(key) => err.fill_context(&RequestContext {
                    idempotency_key: Some(key.chars().take(128).collect()),
                    ..RequestContext::default()
                }),
                None => err,
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::IDEMPOTENCY_KEY;
    use crate::{Cause, Diagnosis};
    use tower::{ServiceExt, service_fn};

    fn echo_key()
    -> impl Service<Request<()>, Response = Option<HeaderValue>, Error = VippsError> + Clone {
        Idempotency::new(service_fn(|req: Request<()>| async move {
            Ok::<_, BoxError>(req.headers().get(IDEMPOTENCY_KEY).cloned())
        }))
    }

    async fn key_for(method: Method, key: Option<&'static str>) -> Option<HeaderValue> {
        let mut req = Request::builder()
            .method(method)
            .uri("https://apitest.vipps.no/epayment/v1/payments");
        if let Some(key) = key {
            req = req.header("Idempotency-Key", key);
        }
        echo_key().oneshot(req.body(()).unwrap()).await.unwrap()
    }

    #[tokio::test]
    async fn adds_keys_to_state_changing_methods_only() {
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let key = key_for(method.clone(), None).await.expect("a key");
            let text = key.to_str().unwrap();
            let uuid = uuid::Uuid::parse_str(text).unwrap();
            assert_eq!(uuid.get_version_num(), 4, "{method}");
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122, "{method}");
            assert_eq!(text, text.to_ascii_lowercase());
            assert_eq!(text.len(), 36);
        }
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert_eq!(key_for(method, None).await, None);
        }
        // Any method keeps the caller's key.
        assert_eq!(key_for(Method::POST, Some("mine")).await.unwrap(), "mine");
        assert_eq!(key_for(Method::GET, Some("mine")).await.unwrap(), "mine");
    }

    #[test]
    fn keys_from_every_thread_differ() {
        let keys: std::collections::HashSet<HeaderValue> = (0..4)
            .map(|_| std::thread::spawn(|| (0..2_000).map(|_| fresh_key()).collect::<Vec<_>>()))
            .flat_map(|t| t.join().unwrap())
            .collect();
        assert_eq!(keys.len(), 8_000);
    }

    #[tokio::test]
    async fn keys_are_fresh() {
        let a = key_for(Method::POST, None).await.unwrap();
        let b = key_for(Method::POST, None).await.unwrap();
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn errors_carry_the_key() {
        let svc = Idempotency::new(service_fn(|req: Request<()>| async move {
            let seen = req.headers().get(IDEMPOTENCY_KEY).cloned().unwrap();
            // A plain error from below: the key is filled in.
            Err::<(), BoxError>(seen.to_str().unwrap().to_owned().into())
        }));
        let req = Request::post("https://apitest.vipps.no/epayment/v1/payments")
            .body(())
            .unwrap();
        let err = svc.oneshot(req).await.unwrap_err();
        assert_eq!(err.cause(), Cause::Transport);
        let key = err.idempotency_key().expect("key in context").to_owned();
        assert_eq!(err.source().unwrap().to_string(), key);

        // A VippsError from below keeps its own context and gains the key.
        let svc = Idempotency::new(service_fn(|_req: Request<()>| async move {
            Err::<(), VippsError>(VippsError::refused(Diagnosis::new(Cause::Timeout)))
        }));
        let req = Request::put("https://apitest.vipps.no/x")
            .header("Idempotency-Key", "k-7")
            .body(())
            .unwrap();
        let err = svc.oneshot(req).await.unwrap_err();
        assert_eq!(err.cause(), Cause::Timeout);
        assert_eq!(err.idempotency_key(), Some("k-7"));
    }

    use std::error::Error as _;

    #[tokio::test]
    async fn ecom_captures_and_refunds_get_an_x_request_id() {
        let svc = Idempotency::new(service_fn(|req: Request<()>| async move {
            let h = req.headers();
            Ok::<_, BoxError>((
                h.get("x-request-id").cloned(),
                h.get(IDEMPOTENCY_KEY).cloned(),
            ))
        }));
        let call = |method: Method, path: &str, own: Option<&str>| {
            let mut req = Request::builder()
                .method(method)
                .uri(format!("https://apitest.vipps.no{path}"));
            if let Some(own) = own {
                req = req.header("X-Request-Id", own);
            }
            svc.clone().oneshot(req.body(()).unwrap())
        };
        for op in ["capture", "refund"] {
            let path = format!("/ecomm/v2/payments/order-1/{op}");
            let (id, key) = call(Method::POST, &path, None).await.unwrap();
            assert_eq!(id.unwrap().len(), 36, "{op}");
            assert_eq!(key, None, "eCom ignores an Idempotency-Key");
            let (id, _) = call(Method::POST, &path, Some("mine-1")).await.unwrap();
            assert_eq!(id.unwrap(), "mine-1", "the caller's own is kept");
        }
        // Initiate and cancel do not take the header.
        for (method, path) in [
            (Method::POST, "/ecomm/v2/payments"),
            (Method::PUT, "/ecomm/v2/payments/order-1/cancel"),
        ] {
            assert_eq!(
                call(method, path, None).await.unwrap(),
                (None, None),
                "{path}"
            );
        }
        // A webhook registration gets neither: the API reads no key.
        let (id, key) = call(Method::POST, "/webhooks/v1/webhooks", None)
            .await
            .unwrap();
        assert_eq!((id, key), (None, None));
    }

    #[tokio::test]
    async fn an_ecom_error_carries_its_x_request_id() {
        let svc = Idempotency::new(service_fn(|_req: Request<()>| async move {
            Err::<(), BoxError>("connection reset".into())
        }));
        let req = Request::post("https://apitest.vipps.no/ecomm/v2/payments/o-1/capture")
            .header("X-Request-Id", "capture-o-1")
            .body(())
            .unwrap();
        let err = svc.oneshot(req).await.unwrap_err();
        assert_eq!(err.idempotency_key(), Some("capture-o-1"));
    }
}
