//! Single flight across the fleet: the claim script and its lease, and waiting for
//! the token another replica announces it put.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ::redis::Value;
use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Counters, Inner, RedisStore};
use crate::token::MintedFor;
use crate::token::store::{Claim, Lease};

/// The answer to a local miss: a token with at least `ARGV[1]` ms left, or the
/// lease (`ARGV[2]` for `ARGV[3]` ms), or how long the lease has left.
pub(super) const CLAIM: &str = r"
local v = redis.call('GET', KEYS[1])
if v then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > tonumber(ARGV[1]) then return {1, v, ttl} end
end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return {2} end
return {3, redis.call('PTTL', KEYS[2])}
";

/// A waiting claim's registration for put announcements of one token key.
struct Waiter<'a> {
    store: &'a RedisStore,
    key: &'a str,
    notify: Arc<Notify>,
}

impl<'a> Waiter<'a> {
    fn new(store: &'a RedisStore, key: &'a str) -> Waiter<'a> {
        let notify = store
            .inner
            .waiters
            .entry(key.to_owned())
            .or_default()
            .clone();
        Waiter { store, key, notify }
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        // The map's reference and ours: no other waiter is left.
        self.store
            .inner
            .waiters
            .remove_if(self.key, |_, n| Arc::strong_count(n) <= 2);
    }
}

/// Listens for put announcements on the store's channel and wakes the waiters of
/// that key; reconnects after a second when the subscription drops.
async fn listen(store: std::sync::Weak<Inner>, channel: String) {
    loop {
        let Some(client) = store.upgrade().map(|inner| inner.client.clone()) else {
            return;
        };
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await.ok()?;
            pubsub.subscribe(&channel).await.ok()?;
            Some(pubsub)
        };
        if let Ok(Some(pubsub)) = tokio::time::timeout(Duration::from_secs(1), subscribed).await {
            let mut messages = pubsub.into_on_message();
            if let Some(inner) = store.upgrade() {
                inner.subscribed.store(true, Ordering::Release);
                tracing::debug!("redis token store: listening for token puts");
            }
            loop {
                let next = tokio::time::timeout(Duration::from_secs(5), messages.next()).await;
                let Some(inner) = store.upgrade() else {
                    return;
                };
                match next {
                    Ok(Some(message)) => {
                        if let Ok(key) = message.get_payload::<String>() {
                            if let Some(waiters) = inner.waiters.get(&key) {
                                waiters.notify_waiters();
                            }
                        }
                    }
                    Ok(None) => {
                        inner.subscribed.store(false, Ordering::Release);
                        break;
                    }
                    Err(_) => {}
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A lease's value in Redis: fixed width, so comparing a prefix compares it all.
pub(super) fn lease_value(lease: Lease) -> String {
    format!("{:020}", lease.id())
}

/// What the claim script answered.
enum Answer {
    Token(Vec<u8>, u64),
    Leased,
    Held(u64),
}

impl RedisStore {
    pub(super) fn channel(&self) -> String {
        format!("{}token-puts", self.inner.prefix)
    }

    /// Starts the listener for put announcements (once, on a runtime).
    fn subscribe(&self) {
        self.inner.subscriber.get_or_init(|| {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(listen(Arc::downgrade(&self.inner), self.channel()));
            }
        });
    }

    async fn answer(
        &self,
        key: &MintedFor,
        fresh_for: Duration,
        lease: Lease,
    ) -> Result<Answer, ()> {
        let base = self.base(key);
        let (token_key, lease_key) = (format!("{base}:token"), format!("{base}:lease"));
        let fresh_ms = u64::try_from(fresh_for.as_millis()).unwrap_or(u64::MAX);
        let lease_ms = u64::try_from(self.inner.lease.as_millis()).unwrap_or(u64::MAX);
        let script = &self.inner.claim;
        let reply: Vec<Value> = self
            .trip("claim", async |c| {
                script
                    .key(&token_key)
                    .key(&lease_key)
                    .arg(fresh_ms)
                    .arg(lease_value(lease))
                    .arg(lease_ms)
                    .invoke_async(c)
                    .await
            })
            .await?;
        let int = |v: Option<&Value>| match v {
            Some(Value::Int(n)) => u64::try_from(*n).ok(),
            _ => None,
        };
        match (int(reply.first()), reply.get(1)) {
            (Some(1), Some(Value::BulkString(value))) => {
                Ok(Answer::Token(value.clone(), int(reply.get(2)).unwrap_or(0)))
            }
            (Some(2), _) => Ok(Answer::Leased),
            (Some(3), ttl) => Ok(Answer::Held(int(ttl).unwrap_or(0))),
            _ => {
                Counters::bump(&self.inner.counters.fallbacks);
                tracing::debug!("redis token store: an unexpected claim answer");
                Err(())
            }
        }
    }

    pub(super) async fn claim_token(&self, key: &MintedFor, fresh_for: Duration) -> Claim {
        let counters = &self.inner.counters;
        let lease = Lease::new(fastrand::u64(1..));
        let started = Instant::now();
        // One poll past the lease: by then it was put, released or expired. A
        // lease another replica took is waited for as long as Redis says it has
        // left (at most its holder's lease, or twice ours).
        let margin = Duration::from_millis(50);
        // Saturating: a caller's `Duration::MAX` lease is a long wait, not a panic.
        let after = |d: Duration| crate::timeout::saturating_add(started, d.saturating_add(margin));
        let mut deadline = after(self.inner.lease);
        let longest = after(self.inner.lease.saturating_mul(2));
        let mut pause = Duration::from_millis(5);
        let mut waited = false;
        self.subscribe();
        let token_key = self.token_key(key);
        let _waiter = Waiter::new(self, &token_key);
        loop {
            // Armed before asking, so a put announced meanwhile is not missed.
            let put = _waiter.notify.notified();
            match self.answer(key, fresh_for, lease).await {
                Err(()) => return Claim::Fetch(None),
                Ok(Answer::Token(value, ttl)) => {
                    if let Some(token) = self.token(&token_key, key, &value, ttl) {
                        Counters::bump(&counters.hits);
                        tracing::trace!(msn = ?key.msn, waited, "access token from redis");
                        return Claim::Token(token);
                    }
                    Counters::bump(&counters.misses);
                    return Claim::Fetch(None);
                }
                Ok(Answer::Leased) => {
                    Counters::bump(&counters.leases);
                    if !waited {
                        Counters::bump(&counters.misses);
                    }
                    tracing::trace!(msn = ?key.msn, waited, "redis lease taken: fetching for the fleet");
                    return Claim::Fetch(Some(lease));
                }
                Ok(Answer::Held(left)) => {
                    if !waited {
                        waited = true;
                        Counters::bump(&counters.misses);
                        Counters::bump(&counters.lease_waits);
                        tracing::trace!(msn = ?key.msn, "another replica is fetching: waiting for its token");
                    }
                    let now = Instant::now();
                    let left = Duration::from_millis(left.max(1));
                    deadline = deadline.max(now + left + margin).min(longest);
                    if now >= deadline {
                        Counters::bump(&counters.fallbacks);
                        tracing::debug!(msn = ?key.msn, "no token within the redis lease: fetching alone");
                        return Claim::Fetch(None);
                    }
                    // Announced puts wake us; polling covers a lease that expires
                    // (its holder died) and a subscription that is down.
                    let poll = if self.inner.subscribed.load(Ordering::Acquire) {
                        left.min(Duration::from_millis(250))
                    } else {
                        let poll = pause;
                        pause = (pause * 2).min(Duration::from_millis(50));
                        poll.min(left)
                    };
                    tokio::select! {
                        () = put => {}
                        () = tokio::time::sleep(poll.min(deadline - now)) => {}
                    }
                }
            }
        }
    }
}
