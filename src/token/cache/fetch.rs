//! One fetch per key at a time: the slow path that waits for it, the background
//! refresh, the spawned fetch (through the store, if any) and its completion.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::time::Instant;
use tracing::Instrument;

use super::failure::SharedFailure;
use super::slot::{Inflight, Outcome, Slot, covers};
use super::{CacheKey, Inner, TokenCache};
use crate::token::fetch::{TokenClient, TokenRequest};
use crate::token::store::{Claim, Lease, TokenStore};
use crate::token::{AccessToken, Ticks};
use crate::{Cause, Diagnosis, VippsError};

impl TokenCache {
    /// Starts the background refresh this caller claimed in [`Fast::Refresh`].
    ///
    /// [`Fast::Refresh`]: super::Fast::Refresh
    pub(crate) fn start_refresh(
        &self,
        key: CacheKey,
        client: &TokenClient,
        request: &TokenRequest,
    ) {
        let now = Instant::now();
        self.maybe_sweep(Ticks::of(now));
        let Some(mut slot) = self.inner.slots.get_mut(&key) else {
            return;
        };
        if slot.inflight().is_some() {
            return;
        }
        tracing::trace!("refreshing an access token ahead of expiry");
        if let Err(failure) = self.start_fetch(key, &mut slot, client, request) {
            slot.refresh_claimed.store(false, Ordering::Release);
            slot.set_failure(Some((failure, now + self.inner.config.failure_backoff)));
        }
    }

    /// The slow path: waits for the one fetch of this key.
    pub(crate) async fn wait(
        &self,
        key: CacheKey,
        client: &TokenClient,
        request: &TokenRequest,
    ) -> Result<Arc<AccessToken>, VippsError> {
        let now = Instant::now();
        let ticks = Ticks::of(now);
        self.maybe_sweep(ticks);
        let inflight = {
            let secs = self.secs(ticks);
            let mut slot = self
                .inner
                .slots
                .entry(key)
                .or_insert_with(|| Slot::empty(secs, false));
            if !slot.covered {
                slot.covered = covers(request);
            }
            slot.touch(secs);
            if let Some(token) = slot.token.as_ref().filter(|t| ticks < t.expires_ticks()) {
                return Ok(token.clone());
            }
            match slot.failure() {
                Some((failure, until)) if now < *until && slot.inflight().is_none() => {
                    return Err(failure.to_error());
                }
                _ => {}
            }
            match slot.inflight() {
                Some((_, inflight, span)) => {
                    tracing::Span::current().follows_from(span.clone());
                    inflight.clone()
                }
                None => self
                    .start_fetch(key, &mut slot, client, request)
                    .map_err(|f| f.to_error())?,
            }
        };
        let wait = self.inner.config.hard_expiry_wait;
        match tokio::time::timeout(wait, inflight).await {
            Ok(Ok(token)) => Ok(token),
            Ok(Err(failure)) => Err(failure.to_error()),
            Err(_) => Err(VippsError::token(
                None,
                Diagnosis::new(Cause::Timeout).with_evidence(format!(
                    "no access token within {wait:?}: the token endpoint did not answer in time"
                )),
                None,
            )),
        }
    }

    fn start_fetch(
        &self,
        key: CacheKey,
        slot: &mut Slot,
        client: &TokenClient,
        request: &TokenRequest,
    ) -> Result<Inflight, SharedFailure> {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return Err(SharedFailure::from_error(VippsError::token(
                None,
                Diagnosis::new(Cause::Transport).with_evidence(
                    "access tokens are fetched on a tokio runtime, and there is none",
                ),
                None,
            )));
        };
        let id = self.inner.next_fetch_id.fetch_add(1, Ordering::Relaxed);
        self.inner.fetches.fetch_add(1, Ordering::Relaxed);
        let inner = self.inner.clone();
        let client = client.clone();
        let request = request.clone();
        // A root span: the fetch is shared by every caller that waits for it.
        let span = tracing::info_span!(
            parent: None,
            "vipps.token_fetch",
            vipps.environment = request.keys.environment().as_str(),
            vipps.key_set = %request.keys.subscription_key_fingerprint(),
            vipps.msn = tracing::field::Empty,
            vipps.outcome = tracing::field::Empty,
            vipps.duration_ms = tracing::field::Empty,
        );
        if let Some(msn) = request.msn {
            span.record("vipps.msn", tracing::field::display(msn));
        }
        let span_id = span.id();
        tracing::Span::current().follows_from(span_id.clone());
        let after_panic = inner.clone();
        let task = handle.spawn(
            async move {
                let started = Instant::now();
                let outcome = inner.run_fetch(key, id, &client, &request).await;
                let code = match &outcome {
                    Ok(_) => "ok",
                    Err(failure) => failure.code(),
                };
                let span = tracing::Span::current();
                span.record("vipps.outcome", code);
                span.record(
                    "vipps.duration_ms",
                    started.elapsed().as_secs_f64() * 1000.0,
                );
                crate::observe::metrics::token_fetch(request.keys.environment(), code);
                inner.complete(key, id, &outcome);
                outcome
            }
            .instrument(span),
        );
        let inflight: Inflight = async move {
            match task.await {
                Ok(outcome) => outcome,
                Err(_) => {
                    let failed: Outcome = Err(SharedFailure::from_error(VippsError::token(
                        None,
                        Diagnosis::new(Cause::Unknown)
                            .with_evidence("the access token fetch task was cancelled or panicked"),
                        None,
                    )));
                    // The task did not finish its slot: do it here, so that the
                    // key is not left waiting on a fetch that is gone.
                    after_panic.complete(key, id, &failed);
                    failed
                }
            }
        }
        .boxed()
        .shared();
        slot.set_inflight(Some((id, inflight.clone(), span_id)));
        Ok(inflight)
    }
}

impl Inner {
    async fn run_fetch(
        &self,
        key: CacheKey,
        id: u64,
        client: &TokenClient,
        request: &TokenRequest,
    ) -> Outcome {
        let limit = self
            .config
            .fetch_timeout
            .unwrap_or(self.config.hard_expiry_wait);
        // A retry layer below must not wait out a `Retry-After` past this: the
        // caller gets the 429 (`vipps::rate_limited`, with its wait) instead.
        let now = Instant::now();
        let deadline = crate::timeout::saturating_add(now, limit);
        let fetch = async {
            let Some(store) = &self.store else {
                return client.fetch_before(request, Some(deadline)).await;
            };
            let lease = match self.ask_store(key, store, request).await {
                Ok(token) => return Ok(token),
                Err(lease) => lease,
            };
            let fetched = client.fetch_before(request, Some(deadline)).await;
            if let Ok(token) = &fetched {
                self.rejected.remove(&key);
                store.put(token).await;
            }
            if let Some(lease) = lease {
                store.release(&request.minted_for(), lease).await;
            }
            fetched
        };
        match tokio::time::timeout_at(deadline, fetch).await {
            Ok(Ok(mut token)) => {
                // What the slot keeps of it: when its refresh is due, and which
                // fetch installed it.
                token.refresh_at = self.refresh_at(&token);
                token.generation = id;
                Ok(Arc::new(token))
            }
            Ok(Err(err)) => {
                tracing::debug!(code = err.code(), "access token fetch failed");
                Err(SharedFailure::from_error(err))
            }
            Err(_) => {
                tracing::debug!("access token fetch timed out");
                Err(SharedFailure::from_error(VippsError::token(
                    None,
                    Diagnosis::new(Cause::Timeout).with_evidence(format!(
                        "the token endpoint did not answer within {limit:?}"
                    )),
                    None,
                )))
            }
        }
    }

    /// Asks the store on a local miss or refresh: its token, or the answer to fetch
    /// (with the fleet's lease when the store runs one). The token this cache last
    /// rejected for `key` is removed from the store first and never taken back.
    async fn ask_store(
        &self,
        key: CacheKey,
        store: &Arc<dyn TokenStore>,
        request: &TokenRequest,
    ) -> Result<AccessToken, Option<Lease>> {
        let minted_for = request.minted_for();
        let rejected = self.rejected.get(&key).map(|r| r.value().clone());
        if let Some(rejected) = &rejected {
            store.remove(rejected).await;
        }
        // On a refresh, only a token fresher than the one held will do: the store
        // would otherwise hand this replica its own token back, and the refresh
        // would start over at once.
        let held = self
            .slots
            .get(&key)
            .and_then(|slot| slot.token.as_ref().map(|t| t.expires_at()));
        let fresh_for = held.map_or(self.config.refresh_buffer, |expires| {
            expires
                .saturating_duration_since(Instant::now())
                .saturating_add(Duration::from_secs(1))
                .max(self.config.refresh_buffer)
        });
        let mut token = match store.claim(&minted_for, fresh_for).await {
            Claim::Token(token) => token,
            Claim::Fetch(lease) => return Err(lease),
        };
        let due = token
            .expires_at()
            .checked_sub(self.config.refresh_buffer)
            .unwrap_or(token.issued_at());
        // Neither the rejected token nor an older one (a revocation that rejected
        // it rejected every token issued before it too).
        let taken_back = rejected
            .as_ref()
            .is_some_and(|r| r.same_token(&token) || token.expires_at() <= r.expires_at());
        if !token.is_minted_for(&minted_for) || Instant::now() >= due || taken_back {
            return Err(None);
        }
        if let Some(rejected) = &rejected {
            self.rejected
                .remove_if(&key, |_, r| Arc::ptr_eq(r, rejected));
        }
        token.set_minter(request.keys.minter().clone());
        Ok(token)
    }

    fn refresh_at(&self, token: &AccessToken) -> Ticks {
        let jitter = self.config.jitter.mul_f64(fastrand::f64());
        let lead = self.config.refresh_buffer.saturating_add(jitter);
        token
            .expires_ticks()
            .saturating_sub(lead)
            .max(token.issued_ticks())
    }

    fn complete(&self, key: CacheKey, id: u64, outcome: &Outcome) {
        let now = Instant::now();
        let mut replaced = None;
        {
            // A slot swept while its fetch ran comes back as used now: not idle
            // at once, and so not swept again with its new token.
            let secs = Ticks::of(now).secs_since(self.epoch);
            let mut slot = self
                .slots
                .entry(key)
                .or_insert_with(|| Slot::empty(secs, false));
            if slot.inflight().is_some_and(|(i, _, _)| *i == id) {
                slot.set_inflight(None);
            }
            slot.refresh_claimed.store(false, Ordering::Release);
            match outcome {
                Ok(token) => {
                    self.index(token);
                    slot.set_failure(None);
                    replaced = slot.token.replace(token.clone());
                }
                Err(failure) => {
                    // A still-valid token is kept; its refresh is retried after the
                    // backoff (`Slot::refresh_held`).
                    let until = now + self.config.failure_backoff;
                    slot.set_failure(Some((failure.clone(), until)));
                }
            }
        }
        if let Some(old) = replaced {
            match outcome {
                // The very same allocation: nothing to drop.
                Ok(token) if Arc::ptr_eq(token, &old) => {}
                // The same token read back from a store: another allocation; the
                // hash entry is the new one's now.
                Ok(token) if token.same_token(&old) => {}
                _ => self.unindex(&old),
            }
        }
    }
}
