//! Replicas of one service for the shared-store tests: each a full preset stack
//! with its own `TokenCache`, over a real hyper client to the emulator, counting
//! the 401s it received and bounding its open connections.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tower::{BoxError, Layer, ServiceExt};
use tower_vipps::emulator::{Emulator, PRODUCTION_PARTNER, READY_USER};
use tower_vipps::token::{AccessToken, TokenCache, TokenClient, TokenRequest};
use tower_vipps::{Environment, KeySet, Msn, SystemInfo, VippsError, VippsLayer};

/// Connections a replica opens at most (the emulator shares this process's fds).
const CONNECTIONS: usize = 128;

static NEXT_REFERENCE: AtomicU64 = AtomicU64::new(1);

/// One replica: a stack with its own token cache.
#[derive(Clone)]
pub struct Replica {
    pub cache: TokenCache,
    stack: VippsLayer,
    gated: Gated,
    /// The 401s this replica received.
    pub unauthorized: Arc<AtomicUsize>,
    base: String,
    tokens: TokenClient,
    /// The key set of its keyring (the cache is keyed by this instance).
    pub keys: KeySet,
}

impl Replica {
    /// A replica of the partner service, with `cache`.
    pub fn new(emulator: &Emulator, cache: TokenCache) -> Replica {
        let keys = PRODUCTION_PARTNER.key_set();
        let keyring = emulator
            .keyring_builder()
            .key_set(keys.clone())
            .system("fleet-test", "1.0.0")
            .build()
            .expect("a keyring");
        let unauthorized = Arc::new(AtomicUsize::new(0));
        let gated = Gated {
            client: Client::builder(TokioExecutor::new()).build_http(),
            gate: Arc::new(Semaphore::new(CONNECTIONS)),
            token_gate: Arc::new(Semaphore::new(CONNECTIONS)),
            unauthorized: unauthorized.clone(),
        };
        Replica {
            tokens: TokenClient::new(gated.clone()),
            gated,
            keys,
            stack: tower_vipps::layer(keyring).token_cache(cache.clone()),
            cache,
            unauthorized,
            base: emulator.base_url(Environment::Production),
        }
    }

    pub fn unauthorized(&self) -> usize {
        self.unauthorized.load(Ordering::SeqCst)
    }

    /// A token for `msn` from this replica's cache (what its stack does first).
    pub async fn token(&self, msn: Msn) -> Result<Arc<AccessToken>, VippsError> {
        let base: http::Uri = self.base.parse().expect("the emulator's base URL");
        let request = TokenRequest::new(self.keys.clone(), Some(msn), SystemInfo::default())
            .base(&base)
            .allow_plaintext(true);
        self.cache.get(&self.tokens, &request).await
    }

    /// Creates one payment for `msn` (a fresh reference each call).
    pub async fn create_payment(&self, msn: Msn) -> Result<(), VippsError> {
        let inner = self.gated.clone();
        let n = NEXT_REFERENCE.fetch_add(1, Ordering::Relaxed);
        let body = json!({
            "amount": {"value": 1000, "currency": "NOK"},
            "paymentMethod": {"type": "WALLET"},
            "customer": {"phoneNumber": READY_USER},
            "reference": format!("fleet-{}-{msn}-{n}", std::process::id()),
            "returnUrl": "https://fleet.example/return",
            "userFlow": "PUSH_MESSAGE",
            "paymentDescription": "fleet"
        });
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}/epayment/v1/payments", self.base))
            .header("Content-Type", "application/json")
            .header("Merchant-Serial-Number", msn.to_string())
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("a valid request");
        let response = self.stack.layer(inner).oneshot(request).await?;
        let _ = response.into_body().collect().await;
        Ok(())
    }
}

/// The replica's HTTP client: the permit is taken inside the call (never while
/// waiting for a token), and the body is read before it is given back.
#[derive(Clone)]
struct Gated {
    client: Client<HttpConnector, Full<Bytes>>,
    gate: Arc<Semaphore>,
    token_gate: Arc<Semaphore>,
    unauthorized: Arc<AtomicUsize>,
}

impl tower::Service<Request<Full<Bytes>>> for Gated {
    type Response = Response<Full<Bytes>>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<Full<Bytes>>, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Full<Bytes>>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            // Token fetches have a gate of their own: they never queue behind
            // API calls (which wait for them).
            let gate = match req.uri().path() {
                "/accesstoken/get" => this.token_gate,
                _ => this.gate,
            };
            let _permit = gate.acquire_owned().await.map_err(boxed)?;
            let response = this.client.request(req).await.map_err(boxed)?;
            if response.status() == StatusCode::UNAUTHORIZED {
                this.unauthorized.fetch_add(1, Ordering::SeqCst);
            }
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(boxed)?.to_bytes();
            Ok(Response::from_parts(parts, Full::new(body)))
        })
    }
}

fn boxed<E: std::error::Error + Send + Sync + 'static>(e: E) -> BoxError {
    Box::new(e)
}

/// What each call of [`run`] and [`tokens`] does.
#[derive(Clone, Copy)]
enum Call {
    Payment,
    Token,
}

/// `per_msn` concurrent payments for each MSN on each replica, all at once;
/// the errors, if any.
pub async fn run(replicas: &[Replica], msns: &[Msn], per_msn: usize) -> Vec<VippsError> {
    each(replicas, msns, per_msn, Call::Payment).await
}

/// `per_msn` concurrent token requests for each MSN on each replica, all at once;
/// the errors, if any.
pub async fn tokens(replicas: &[Replica], msns: &[Msn], per_msn: usize) -> Vec<VippsError> {
    each(replicas, msns, per_msn, Call::Token).await
}

async fn each(replicas: &[Replica], msns: &[Msn], per_msn: usize, call: Call) -> Vec<VippsError> {
    let mut tasks = JoinSet::new();
    for replica in replicas {
        for &msn in msns {
            // One task per MSN and replica, its calls concurrent inside it.
            let replica = replica.clone();
            tasks.spawn(async move {
                let calls = (0..per_msn).map(|_| async {
                    match call {
                        Call::Payment => replica.create_payment(msn).await,
                        Call::Token => replica.token(msn).await.map(drop),
                    }
                });
                futures_util::future::join_all(calls).await
            });
        }
    }
    let mut errors = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let results = joined.expect("no task panics");
        errors.extend(results.into_iter().filter_map(Result::err));
    }
    errors
}

/// The partner's first `n` connected MSNs.
pub fn msns(n: usize) -> Vec<Msn> {
    PRODUCTION_PARTNER.connected_msns().take(n).collect()
}
