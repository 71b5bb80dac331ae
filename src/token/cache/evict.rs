//! Idle eviction: entries unused for `idle_eviction` are swept out, a little at a time.

use std::sync::atomic::Ordering;

use super::{Inner, TokenCache};
use crate::token::Ticks;

impl TokenCache {
    pub(super) fn maybe_sweep(&self, now: Ticks) {
        let secs = self.secs(now);
        let next = self.inner.next_sweep.load(Ordering::Relaxed);
        if secs < next {
            return;
        }
        let interval = (self.inner.config.idle_eviction.as_secs() / 4).max(1);
        if self
            .inner
            .next_sweep
            .compare_exchange(next, secs + interval, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
            || next == 0
        {
            // The first call only schedules the first sweep.
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = self.inner.clone();
        handle.spawn(async move { inner.sweep(secs) });
    }
}

impl Inner {
    pub(super) fn sweep(&self, now_secs: u64) -> usize {
        let idle = self.config.idle_eviction.as_secs();
        let mut evicted = Vec::new();
        let mut evicted_keys = Vec::new();
        self.slots.retain(|key, slot| {
            let keep = slot.inflight().is_some()
                || now_secs.saturating_sub(u64::from(slot.last_used.load(Ordering::Relaxed)))
                    < idle;
            if !keep {
                evicted_keys.push(*key);
                if let Some(token) = slot.token.take() {
                    evicted.push(token);
                }
            }
            keep
        });
        for token in &evicted {
            self.unindex(token);
        }
        // A rejected token is kept only to be refused from the store for its key:
        // with the key gone, so is it (and the secret it holds).
        for key in &evicted_keys {
            self.rejected.remove(key);
        }
        if !evicted.is_empty() {
            tracing::trace!(evicted = evicted.len(), "idle access tokens evicted");
        }
        evicted.len()
    }
}
