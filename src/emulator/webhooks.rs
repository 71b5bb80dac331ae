//! The Webhooks API: registrations (`/webhooks/v1/webhooks`), and signed
//! deliveries of the ePayment events to the registered URLs, retried with backoff,
//! in order per payment.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use base64::Engine;
use bytes::Bytes;
use http::request::Parts;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::bodies::{self, Body};
use super::epayment::valid_url;
use super::{Shared, server::stopped};
use crate::webhooks::{RegisteredUrl, keyed, sign_for};
use crate::{Environment, Msn, Secret};

/// The path of the Webhooks API's collection.
const COLLECTION: &str = "/webhooks/v1/webhooks";
/// The problem `instance` of the collection.
const INSTANCE: &str = "/v1/webhooks";
/// At most this many registrations per event type and MSN (the API guide's limit).
const PER_EVENT_LIMIT: usize = 25;

/// How the emulator retries a webhook delivery answered with a non-`2xx` status
/// (or not answered): exponential backoff from `first_delay`, doubling up to
/// `max_delay`, `attempts` tries in all. Vipps MobilePay retries for up to 7 days;
/// the defaults are fast, for tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookRetry {
    /// The wait before the second attempt.
    pub first_delay: Duration,
    /// The longest wait between attempts.
    pub max_delay: Duration,
    /// Attempts in all (at least one).
    pub attempts: u32,
    /// How long one attempt may take, connection included.
    pub attempt_timeout: Duration,
}

impl Default for WebhookRetry {
    fn default() -> Self {
        WebhookRetry {
            first_delay: Duration::from_millis(20),
            max_delay: Duration::from_secs(1),
            attempts: 8,
            attempt_timeout: Duration::from_secs(5),
        }
    }
}

impl WebhookRetry {
    /// A policy of `attempts` tries, starting at `first_delay` and doubling up to
    /// `max_delay`.
    pub fn new(first_delay: Duration, max_delay: Duration, attempts: u32) -> WebhookRetry {
        WebhookRetry {
            first_delay,
            max_delay,
            attempts: attempts.max(1),
            ..WebhookRetry::default()
        }
    }

    /// How long one attempt may take, connection included (default 5 s).
    pub fn attempt_timeout(mut self, timeout: Duration) -> WebhookRetry {
        self.attempt_timeout = timeout;
        self
    }
}

/// What the emulator's webhook deliveries came to; see
/// [`Emulator::webhook_counts`](super::Emulator::webhook_counts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookCounts {
    /// Events delivered (answered `2xx`).
    pub delivered: usize,
    /// Attempts answered with a non-`2xx` status, or not answered, and tried again.
    pub retried: usize,
    /// Events given up after the last attempt.
    pub failed: usize,
    /// Events for registrations whose URL the emulator does not send to (not
    /// `http://` on loopback): never sent.
    pub undeliverable: usize,
}

struct Registration {
    id: String,
    environment: Environment,
    msn: Msn,
    url: String,
    events: Vec<String>,
    secret: Secret,
}

/// One event for one registration.
#[derive(Clone)]
struct Job {
    registration: String,
    body: Bytes,
}

type QueueKey = (String, String);

/// The webhooks of one emulator.
pub(crate) struct Hub {
    registrations: Mutex<Vec<Registration>>,
    queues: Mutex<HashMap<QueueKey, VecDeque<Job>>>,
    retry: WebhookRetry,
    runtime: tokio::runtime::Handle,
    counts: [AtomicUsize; 4],
    in_flight: watch::Sender<usize>,
}

const DELIVERED: usize = 0;
const RETRIED: usize = 1;
const FAILED: usize = 2;
const UNDELIVERABLE: usize = 3;

impl super::Endpoint {
    /// Whether a call to this endpoint may record ePayment events.
    pub(crate) fn changes_payments(self) -> bool {
        use super::Endpoint::*;
        matches!(
            self,
            CreatePayment | Capture | Refund | Cancel | ForceApprove
        )
    }
}

impl Hub {
    /// Call from within a tokio runtime: deliveries run on it.
    pub(crate) fn new(retry: WebhookRetry) -> Hub {
        Hub {
            registrations: Mutex::default(),
            queues: Mutex::default(),
            retry,
            runtime: tokio::runtime::Handle::current(),
            counts: Default::default(),
            in_flight: watch::channel(0).0,
        }
    }

    pub(crate) fn counts(&self) -> WebhookCounts {
        let get = |i: usize| self.counts[i].load(Ordering::Relaxed);
        WebhookCounts {
            delivered: get(DELIVERED),
            retried: get(RETRIED),
            failed: get(FAILED),
            undeliverable: get(UNDELIVERABLE),
        }
    }

    /// Resolves once no delivery is queued or in progress.
    pub(crate) async fn idle(&self) {
        let mut rx = self.in_flight.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    fn count(&self, i: usize) {
        self.counts[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// Whether a path belongs to the Webhooks API.
pub(crate) fn handles(path: &str) -> bool {
    path == COLLECTION || path.starts_with("/webhooks/v1/webhooks/")
}

/// Answers an authenticated Webhooks API call for `msn`.
pub(crate) fn answer(
    shared: &Shared,
    environment: Environment,
    msn: Msn,
    parts: &Parts,
    body: &Bytes,
) -> Response<Body> {
    let hub = &shared.webhooks;
    let path = parts.uri.path();
    let id = path
        .strip_prefix(COLLECTION)
        .and_then(|rest| rest.strip_prefix('/'));
    match (&parts.method, id) {
        (&Method::POST, None) => register(hub, environment, msn, body),
        (&Method::GET, None) => list(hub, environment, msn),
        (&Method::DELETE, Some(id)) => delete(hub, environment, msn, id),
        _ => bodies::respond(404, bodies::JSON, bodies::NOT_FOUND),
    }
}

fn json_response(status: u16, value: &Value) -> Response<Body> {
    bodies::respond(
        status,
        bodies::JSON,
        serde_json::to_vec(value).unwrap_or_default(),
    )
}

fn register(hub: &Hub, environment: Environment, msn: Msn, body: &Bytes) -> Response<Body> {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
        return bodies::invalid_field(
            INSTANCE,
            "request",
            "The request body must be a JSON object.",
        );
    };
    let url = match body.get("url") {
        Some(Value::String(url)) if valid_url(url, environment) => url.clone(),
        Some(Value::String(_)) => {
            return bodies::invalid_field(
                INSTANCE,
                "url",
                "The url must be a valid absolute URL using HTTPS.",
            );
        }
        _ => {
            return bodies::invalid_field(
                INSTANCE,
                "url",
                "The property is required and cannot be null or empty.",
            );
        }
    };
    let events: Vec<String> = match body.get("events") {
        Some(Value::Array(items)) if !items.is_empty() => {
            let names: Vec<String> = items
                .iter()
                .filter_map(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned)
                .collect();
            if names.len() != items.len() {
                return bodies::invalid_field(
                    INSTANCE,
                    "events",
                    "Every event must be a non-empty string.",
                );
            }
            names
        }
        _ => {
            return bodies::invalid_field(
                INSTANCE,
                "events",
                "The property is required and cannot be null or empty.",
            );
        }
    };
    let Ok(mut registrations) = hub.registrations.lock() else {
        return bodies::internal_error(INSTANCE);
    };
    let full = events.iter().find(|event| {
        registrations
            .iter()
            .filter(|r| r.environment == environment && r.msn == msn)
            .filter(|r| r.events.contains(event))
            .count()
            >= PER_EVENT_LIMIT
    });
    if let Some(event) = full {
        return bodies::invalid_field(
            INSTANCE,
            "events",
            &format!("At most {PER_EVENT_LIMIT} webhooks can be registered for {event}."),
        );
    }
    let id = uuid::Uuid::new_v4().to_string();
    let mut secret = [0u8; 48];
    secret.fill_with(|| fastrand::u8(..));
    let secret = base64::engine::general_purpose::STANDARD.encode(secret);
    let response = json_response(201, &json!({"id": id, "secret": secret}));
    registrations.push(Registration {
        id,
        environment,
        msn,
        url,
        events,
        secret: Secret::new(secret),
    });
    response
}

fn list(hub: &Hub, environment: Environment, msn: Msn) -> Response<Body> {
    let Ok(registrations) = hub.registrations.lock() else {
        return bodies::internal_error(INSTANCE);
    };
    let webhooks: Vec<Value> = registrations
        .iter()
        .filter(|r| r.environment == environment && r.msn == msn)
        .map(|r| json!({"id": r.id, "url": r.url, "events": r.events}))
        .collect();
    json_response(200, &json!({ "webhooks": webhooks }))
}

fn delete(hub: &Hub, environment: Environment, msn: Msn, id: &str) -> Response<Body> {
    let instance = format!("{INSTANCE}/{id}");
    if uuid::Uuid::parse_str(id).is_err() {
        return bodies::invalid_field(&instance, "id", &format!("The value '{id}' is not valid."));
    }
    let Ok(mut registrations) = hub.registrations.lock() else {
        return bodies::internal_error(&instance);
    };
    let before = registrations.len();
    registrations.retain(|r| {
        !(r.environment == environment && r.msn == msn && r.id.eq_ignore_ascii_case(id))
    });
    if registrations.len() == before {
        return bodies::problem(404, "Not Found", "No webhook with this id.", &instance, &[]);
    }
    bodies::respond(204, bodies::JSON, Bytes::new())
}

/// Queues a delivery of every event the ePayment API recorded since the last
/// call, for every registration of its MSN and environment that asked for its
/// type. Runs under the payments lock, so the queues keep the events' order.
pub(crate) fn publish(shared: &Arc<Shared>) {
    let hub = &shared.webhooks;
    let Ok(mut payments) = shared.payments.lock() else {
        return;
    };
    let Ok(registrations) = hub.registrations.lock() else {
        return;
    };
    // Nobody listens: only move past the events, build no payloads.
    let events = payments.take_events(!registrations.is_empty());
    if events.is_empty() {
        return;
    }
    for event in events {
        let event_type = format!("epayments.payment.{}.v1", event.name.to_ascii_lowercase());
        for registration in registrations.iter().filter(|r| {
            r.environment == event.environment
                && r.msn == event.msn
                && r.events.contains(&event_type)
        }) {
            let job = Job {
                registration: registration.id.clone(),
                body: event.body.clone(),
            };
            enqueue(
                shared,
                (registration.id.clone(), event.reference.clone()),
                job,
            );
        }
    }
    drop(registrations);
    drop(payments);
}

fn enqueue(shared: &Arc<Shared>, key: QueueKey, job: Job) {
    let hub = &shared.webhooks;
    let Ok(mut queues) = hub.queues.lock() else {
        return;
    };
    hub.in_flight.send_modify(|n| *n += 1);
    match queues.get_mut(&key) {
        Some(queue) => queue.push_back(job),
        None => {
            queues.insert(key.clone(), VecDeque::from([job]));
            hub.runtime.spawn(drain(Arc::downgrade(shared), key));
        }
    }
}

/// Delivers a queue's jobs one after the other, each until delivered or given up.
async fn drain(shared: Weak<Shared>, key: QueueKey) {
    loop {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let hub = &shared.webhooks;
        let job = match hub.queues.lock() {
            Ok(queues) => queues.get(&key).and_then(|q| q.front().cloned()),
            Err(_) => return,
        };
        let Some(job) = job else {
            return;
        };
        let mut stop = shared.stop.clone();
        tokio::select! {
            _ = deliver(&shared, &job) => {}
            _ = stopped(&mut stop) => return,
        }
        let Ok(mut queues) = hub.queues.lock() else {
            return;
        };
        let empty = queues.get_mut(&key).is_none_or(|q| {
            q.pop_front();
            q.is_empty()
        });
        hub.in_flight.send_modify(|n| *n = n.saturating_sub(1));
        if empty {
            queues.remove(&key);
            return;
        }
    }
}

/// Where a registration's deliveries go: only `http://` on loopback.
struct Target {
    url: RegisteredUrl,
    port: u16,
}

fn target(url: &str) -> Option<Target> {
    let uri: http::Uri = url.parse().ok()?;
    if uri.scheme_str() != Some("http") {
        return None;
    }
    if !matches!(uri.host()?, "127.0.0.1" | "localhost") {
        return None;
    }
    Some(Target {
        url: RegisteredUrl::parse(url).ok()?,
        port: uri.port_u16().unwrap_or(80),
    })
}

/// One job, with its retries. Each attempt is signed with the date it is sent at.
async fn deliver(shared: &Shared, job: &Job) {
    let hub = &shared.webhooks;
    let registration = hub.registrations.lock().ok().and_then(|regs| {
        regs.iter()
            .find(|r| r.id == job.registration)
            .map(|r| (r.url.clone(), keyed(&r.secret)))
    });
    // Deleted since: nothing to deliver.
    let Some((url, key)) = registration else {
        return;
    };
    let Some(target) = target(&url) else {
        hub.count(UNDELIVERABLE);
        return;
    };
    let retry = hub.retry;
    let mut delay = retry.first_delay;
    for attempt in 1..=retry.attempts.max(1) {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(shared.now());
        let headers = sign_for(&job.body, &target.url, &httpdate::fmt_http_date(now), &key);
        let sent = tokio::time::timeout(
            retry.attempt_timeout,
            send(&target, headers, job.body.clone()),
        )
        .await;
        if matches!(sent, Ok(Some(status)) if status.is_success()) {
            hub.count(DELIVERED);
            return;
        }
        if attempt == retry.attempts.max(1) {
            hub.count(FAILED);
            return;
        }
        hub.count(RETRIED);
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(retry.max_delay);
    }
}

async fn send(
    target: &Target,
    headers: crate::webhooks::WebhookHeaders,
    body: Bytes,
) -> Option<StatusCode> {
    let stream = TcpStream::connect(("127.0.0.1", target.port)).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut request = Request::post(target.url.path_and_query())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .ok()?;
    headers.apply(request.headers_mut());
    let response = sender.send_request(request).await.ok()?;
    Some(response.status())
}
