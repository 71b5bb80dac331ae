//! [`DeliveryStore`]: which events were processed, to recognise redeliveries.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::event::DeliveryKey;
use crate::BoxError;

/// Where [`WebhookLayer`](super::WebhookLayer) remembers the events it has seen
/// processed. Async, so that a shared store (Redis) can serve a fleet of
/// receivers; [`MemoryDeliveryStore`] is the default.
///
/// A store error never rejects a webhook: the delivery is passed on as
/// [`Delivery::New`](super::Delivery::New) and the error logged.
///
/// ```
/// use futures_util::future::BoxFuture;
/// use tower_vipps::BoxError;
/// use tower_vipps::webhooks::{DeliveryKey, DeliveryStore};
///
/// /// Remembers nothing: every delivery is new.
/// struct Forgetful;
///
/// impl DeliveryStore for Forgetful {
///     fn seen<'a>(&'a self, _key: &'a DeliveryKey) -> BoxFuture<'a, Result<bool, BoxError>> {
///         Box::pin(async { Ok(false) })
///     }
///     fn mark_processed<'a>(&'a self, _key: &'a DeliveryKey) -> BoxFuture<'a, Result<(), BoxError>> {
///         Box::pin(async { Ok(()) })
///     }
/// }
/// ```
pub trait DeliveryStore: Send + Sync + 'static {
    /// Whether the event was processed before (and is still remembered).
    fn seen<'a>(&'a self, key: &'a DeliveryKey) -> BoxFuture<'a, Result<bool, BoxError>>;
    /// Records that the event was processed (the handler answered `2xx`).
    fn mark_processed<'a>(&'a self, key: &'a DeliveryKey) -> BoxFuture<'a, Result<(), BoxError>>;
}

/// The default capacity of a [`MemoryDeliveryStore`].
pub const DEFAULT_CAPACITY: usize = 100_000;
/// The default time a [`MemoryDeliveryStore`] remembers an event: 8 days (Vipps
/// MobilePay redelivers for up to 7).
pub const DEFAULT_TTL: Duration = Duration::from_secs(8 * 24 * 3600);

#[derive(Default)]
struct Inner {
    /// When each key was last marked.
    marked: HashMap<DeliveryKey, Instant>,
    /// Each key once, in the order it was first marked.
    order: VecDeque<DeliveryKey>,
}

/// An in-process [`DeliveryStore`], bounded in entries and in time: the oldest
/// entries go first when it is full, and entries older than the TTL are
/// forgotten. Follows tokio's clock.
///
/// ```
/// use std::time::Duration;
/// use tower_vipps::webhooks::{DeliveryKey, DeliveryStore, MemoryDeliveryStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryDeliveryStore::new(2, Duration::from_secs(3600));
/// let key = DeliveryKey::new("epayment:123456:acme-1001:1:CAPTURED:k:2025-01-01T00:00:00Z");
/// assert!(!store.seen(&key).await?);
/// store.mark_processed(&key).await?;
/// assert!(store.seen(&key).await?);
/// # Ok::<(), tower_vipps::BoxError>(())
/// # }).unwrap();
/// ```
pub struct MemoryDeliveryStore {
    inner: Mutex<Inner>,
    capacity: usize,
    ttl: Duration,
}

impl Default for MemoryDeliveryStore {
    fn default() -> Self {
        MemoryDeliveryStore::new(DEFAULT_CAPACITY, DEFAULT_TTL)
    }
}

impl fmt::Debug for MemoryDeliveryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryDeliveryStore")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl MemoryDeliveryStore {
    /// A store of at most `capacity` events (at least one), each remembered for
    /// `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> MemoryDeliveryStore {
        MemoryDeliveryStore {
            inner: Mutex::default(),
            capacity: capacity.max(1),
            ttl,
        }
    }

    /// The events remembered now (expired ones not yet evicted included).
    pub fn len(&self) -> usize {
        self.inner.lock().map_or(0, |i| i.marked.len())
    }

    /// Whether no event is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn is_seen(&self, key: &DeliveryKey) -> bool {
        let now = Instant::now();
        self.inner.lock().is_ok_and(|inner| {
            inner
                .marked
                .get(key)
                .is_some_and(|at| now.saturating_duration_since(*at) < self.ttl)
        })
    }

    fn mark(&self, key: &DeliveryKey) {
        let now = Instant::now();
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.marked.insert(key.clone(), now).is_none() {
            inner.order.push_back(key.clone());
        }
        // Evict from the oldest: expired entries, and any while over capacity.
        while let Some(front) = inner.order.front() {
            let expired = inner
                .marked
                .get(front)
                .is_none_or(|at| now.saturating_duration_since(*at) >= self.ttl);
            if !expired && inner.order.len() <= self.capacity {
                break;
            }
            if let Some(front) = inner.order.pop_front() {
                inner.marked.remove(&front);
            }
        }
    }
}

impl DeliveryStore for MemoryDeliveryStore {
    fn seen<'a>(&'a self, key: &'a DeliveryKey) -> BoxFuture<'a, Result<bool, BoxError>> {
        let seen = self.is_seen(key);
        Box::pin(async move { Ok(seen) })
    }

    fn mark_processed<'a>(&'a self, key: &'a DeliveryKey) -> BoxFuture<'a, Result<(), BoxError>> {
        self.mark(key);
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bounded_in_entries_and_time() {
        let store = MemoryDeliveryStore::new(2, Duration::from_secs(60));
        let keys: Vec<DeliveryKey> = (0..3).map(|i| DeliveryKey::new(format!("k{i}"))).collect();
        for key in &keys {
            store.mark(key);
        }
        assert_eq!(store.len(), 2);
        assert!(!store.is_seen(&keys[0]), "the oldest went first");
        assert!(store.is_seen(&keys[1]) && store.is_seen(&keys[2]));
        // Re-marking keeps one entry per key.
        for _ in 0..100 {
            store.mark(&keys[2]);
        }
        assert_eq!(store.inner.lock().unwrap().order.len(), 2);
        assert!(store.is_seen(&keys[1]));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(!store.is_seen(&keys[2]), "expired");
        store.mark(&keys[0]);
        assert_eq!(store.len(), 1, "expired entries evicted on the next mark");
    }
}
