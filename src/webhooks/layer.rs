//! [`WebhookLayer`] / [`Webhook`]: the server-side middleware.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use tower_layer::Layer;
use tower_service::Service;

use super::event::{Delivery, DeliveryKey, EPaymentEvent, VerifiedBody};
use super::rejection::WebhookRejection;
use super::sign::{InvalidUrl, content_hash};
use super::store::{DeliveryStore, MemoryDeliveryStore};
use super::verify::Verifier;
use crate::{Msn, Secret};

/// The default cap on a webhook body: 64 KiB (events are a few hundred bytes).
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
/// The default cap on the frames of a webhook body.
pub const DEFAULT_MAX_FRAMES: usize = 1024;
/// The default time allowed to read a webhook body.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);

type RejectHook = Arc<dyn Fn(&WebhookRejection, &Parts) + Send + Sync>;

/// Verifies, de-duplicates and types the webhooks Vipps MobilePay sends, in
/// front of any `Service<http::Request<Full<Bytes>>>`; see the
/// [module docs](super) for what it checks and passes on.
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use tower::{Layer, service_fn};
/// use tower_vipps::Msn;
/// use tower_vipps::webhooks::{Delivery, EPaymentEvent, WebhookLayer};
///
/// let layer = WebhookLayer::new("https://shop.example/vipps/webhooks")?
///     .secret("secret of the merchant's registration")
///     .secret_for_msn("300001".parse::<Msn>()?, "secret of a partner's registration for 300001")
///     .tolerance(Duration::from_secs(120))
///     .on_reject(|rejection, _parts| eprintln!("{rejection}"));
///
/// let service = layer.layer(service_fn(|req: http::Request<Full<Bytes>>| async move {
///     let event = req.extensions().get::<EPaymentEvent>();
///     if req.extensions().get::<Delivery>() == Some(&Delivery::Duplicate) {
///         // Already processed: acknowledge without acting again.
///     }
///     Ok::<_, std::convert::Infallible>(http::Response::new(Full::<Bytes>::default()))
/// }));
/// # let _ = service;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct WebhookLayer {
    verifier: Arc<Verifier>,
    store: Arc<dyn DeliveryStore>,
    body_limit: usize,
    max_frames: usize,
    read_timeout: Duration,
    on_reject: Option<RejectHook>,
}

impl fmt::Debug for WebhookLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookLayer")
            .field("verifier", &self.verifier)
            .field("body_limit", &self.body_limit)
            .field("max_frames", &self.max_frames)
            .field("read_timeout", &self.read_timeout)
            .field("on_reject", &self.on_reject.is_some())
            .finish_non_exhaustive()
    }
}

impl WebhookLayer {
    /// A layer for webhooks registered with `registered_url` (as given to
    /// `POST /webhooks/v1/webhooks`; a proxy may forward them to another host or
    /// path). Add each registration's secret with [`secret`](Self::secret) or
    /// [`secret_for_msn`](Self::secret_for_msn).
    pub fn new(registered_url: &str) -> Result<WebhookLayer, InvalidUrl> {
        Ok(WebhookLayer::with_verifier(Verifier::new(registered_url)?))
    }

    /// A layer around a configured [`Verifier`].
    pub fn with_verifier(verifier: Verifier) -> WebhookLayer {
        WebhookLayer {
            verifier: Arc::new(verifier),
            store: Arc::new(MemoryDeliveryStore::default()),
            body_limit: DEFAULT_BODY_LIMIT,
            max_frames: DEFAULT_MAX_FRAMES,
            read_timeout: DEFAULT_READ_TIMEOUT,
            on_reject: None,
        }
    }

    fn verifier_mut(&mut self) -> &mut Verifier {
        Arc::make_mut(&mut self.verifier)
    }

    fn map_verifier(mut self, f: impl FnOnce(Verifier) -> Verifier) -> Self {
        let verifier = self.verifier_mut().clone();
        *self.verifier_mut() = f(verifier);
        self
    }

    /// Adds a secret tried for every event; see [`Verifier::secret`].
    pub fn secret(self, secret: impl Into<Secret>) -> Self {
        self.map_verifier(|v| v.secret(secret))
    }

    /// Adds a secret for the events of one MSN; see [`Verifier::secret_for_msn`].
    pub fn secret_for_msn(self, msn: Msn, secret: impl Into<Secret>) -> Self {
        self.map_verifier(|v| v.secret_for_msn(msn, secret))
    }

    /// The clock tolerance (default ±5 minutes).
    pub fn tolerance(self, tolerance: Duration) -> Self {
        self.map_verifier(|v| v.tolerance(tolerance))
    }

    /// The most body bytes read (default 64 KiB).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The most body frames read (default 1024).
    pub fn max_frames(mut self, frames: usize) -> Self {
        self.max_frames = frames.max(1);
        self
    }

    /// The time allowed to read the body (default 10 s).
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Where processed events are remembered (default: a
    /// [`MemoryDeliveryStore`] of 100 000 events for 8 days).
    pub fn store(mut self, store: impl DeliveryStore) -> Self {
        self.store = Arc::new(store);
        self
    }

    /// The same, shared with other layers (several routes, one store).
    pub fn shared_store(mut self, store: Arc<dyn DeliveryStore>) -> Self {
        self.store = store;
        self
    }

    /// Called with each rejection, besides the warn log (count them, alert).
    /// The `401` response also carries the [`WebhookRejection`] in its
    /// extensions, for an outer layer.
    pub fn on_reject(
        mut self,
        hook: impl Fn(&WebhookRejection, &Parts) + Send + Sync + 'static,
    ) -> Self {
        self.on_reject = Some(Arc::new(hook));
        self
    }
}

impl<S> Layer<S> for WebhookLayer {
    type Service = Webhook<S>;

    fn layer(&self, inner: S) -> Webhook<S> {
        Webhook {
            inner,
            config: self.clone(),
        }
    }
}

/// The service of [`WebhookLayer`].
#[derive(Clone, Debug)]
pub struct Webhook<S> {
    inner: S,
    config: WebhookLayer,
}

impl<S, B, ResBody> Service<Request<B>> for Webhook<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Send,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // Keep the readied service; the clone waits for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let bytes = match read_body(body, &config).await {
                Ok(bytes) => bytes,
                Err(reason) => {
                    return Ok(reject(
                        &config,
                        &parts,
                        WebhookRejection::BodyUnreadable { reason },
                    ));
                }
            };
            let verified = config.verifier.verify(
                &parts.method,
                &parts.uri,
                &parts.headers,
                &bytes,
                SystemTime::now(),
            );
            let verified_by = match verified {
                Ok(by) => by,
                Err(rejection) => return Ok(reject(&config, &parts, rejection)),
            };
            let event: Option<EPaymentEvent> = serde_json::from_slice(&bytes).ok();
            let key = match &event {
                Some(event) => event.delivery_key(),
                None => DeliveryKey(format!("sha256:{}", content_hash(&bytes))),
            };
            let delivery = match config.store.seen(&key).await {
                Ok(true) => Delivery::Duplicate,
                Ok(false) => Delivery::New,
                Err(error) => {
                    tracing::warn!(%error, key = %key, "webhook delivery store failed; passing the event on as new");
                    Delivery::New
                }
            };
            let mut req = Request::from_parts(parts, Full::new(bytes.clone()));
            let extensions = req.extensions_mut();
            extensions.insert(VerifiedBody(bytes));
            extensions.insert(verified_by);
            extensions.insert(delivery);
            extensions.insert(key.clone());
            if let Some(event) = event {
                extensions.insert(event);
            }
            let response = inner.call(req).await?;
            if response.status().is_success() && delivery == Delivery::New {
                if let Err(error) = config.store.mark_processed(&key).await {
                    tracing::warn!(%error, key = %key, "webhook delivery store failed to record a processed event");
                }
            }
            Ok(response)
        })
    }
}

/// The `401` for the sender (no detail), the diagnosis for the operator.
fn reject<ResBody: Default>(
    config: &WebhookLayer,
    parts: &Parts,
    rejection: WebhookRejection,
) -> Response<ResBody> {
    let diagnosis = rejection.diagnosis();
    tracing::warn!(
        code = diagnosis.code(),
        registered_url = config.verifier.registered_url(),
        evidence = ?diagnosis.evidence(),
        "webhook rejected: {}",
        diagnosis.cause().summary()
    );
    if let Some(hook) = &config.on_reject {
        hook(&rejection, parts);
    }
    let mut response = Response::new(ResBody::default());
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response.extensions_mut().insert(rejection);
    response
}

/// Reads the body within the caps in bytes, frames and time; yields to the
/// runtime between frames.
async fn read_body<B>(body: B, config: &WebhookLayer) -> Result<Bytes, &'static str>
where
    B: Body,
{
    let limit = config.body_limit;
    if body.size_hint().lower() > limit as u64 {
        return Err("is longer than the cap");
    }
    let read = async {
        let mut body = std::pin::pin!(body);
        let mut buf = BytesMut::new();
        let mut frames = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| "could not be read: the connection broke")?;
            frames += 1;
            if frames > config.max_frames {
                return Err("came in more frames than the cap");
            }
            if let Ok(mut data) = frame.into_data() {
                use bytes::Buf;
                if buf.len().saturating_add(data.remaining()) > limit {
                    return Err("is longer than the cap");
                }
                while data.has_remaining() {
                    let chunk = data.chunk();
                    let n = chunk.len();
                    buf.extend_from_slice(chunk);
                    data.advance(n);
                }
            }
            tokio::task::consume_budget().await;
        }
        Ok(buf.freeze())
    };
    tokio::time::timeout(config.read_timeout, read)
        .await
        .unwrap_or(Err("took longer than the read timeout"))
}
