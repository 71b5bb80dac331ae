//! One key's entry: its token, and the fetch in flight or the recent failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use futures_util::future::{BoxFuture, Shared};
use tokio::time::Instant;

use super::failure::SharedFailure;
use crate::token::{AccessToken, Ticks, TokenRequest};

pub(super) type Outcome = Result<Arc<AccessToken>, SharedFailure>;
pub(super) type Inflight = Shared<BoxFuture<'static, Outcome>>;

/// One key's entry. What belongs to its token (the hard expiry, the soft expiry
/// from which one background refresh starts, the generation that identifies the
/// token a request carried) is kept in the token itself, so a warm entry is three
/// words in the map and one allocation besides the token's bytes.
pub(super) struct Slot {
    pub(super) token: Option<Arc<AccessToken>>,
    /// Set by the one caller that starts the background refresh.
    pub(super) refresh_claimed: AtomicBool,
    /// Coarse time of the last use, in seconds since the cache's epoch
    /// (saturating: 136 years).
    pub(super) last_used: AtomicU32,
    /// Whether the key set is known to cover the key's MSN (merchant keys, or
    /// partner keys that list it; not for a token shared across a partner's
    /// MSNs): `Auth` then need not look the MSN up in the partner's list.
    pub(super) covered: bool,
    /// A fetch in flight or a recent failure: boxed, so the many slots with
    /// neither (a warm cache) stay small.
    pending: Option<Box<Pending>>,
}

/// What a slot holds only while a fetch runs or after one failed.
#[derive(Default)]
pub(super) struct Pending {
    /// The fetch in flight: its id, its shared result, and its span (which the
    /// spans of the calls that wait for it follow from).
    inflight: Option<(u64, Inflight, Option<tracing::Id>)>,
    failure: Option<(SharedFailure, Instant)>,
}

impl Slot {
    pub(super) fn empty(now_secs: u64, covered: bool) -> Slot {
        Slot {
            token: None,
            covered,
            refresh_claimed: AtomicBool::new(false),
            last_used: AtomicU32::new(coarse(now_secs)),
            pending: None,
        }
    }

    pub(super) fn touch(&self, secs: u64) {
        let secs = coarse(secs);
        if self.last_used.load(Ordering::Relaxed) != secs {
            self.last_used.store(secs, Ordering::Relaxed);
        }
    }

    pub(super) fn inflight(&self) -> Option<&(u64, Inflight, Option<tracing::Id>)> {
        self.pending.as_ref()?.inflight.as_ref()
    }

    pub(super) fn failure(&self) -> Option<&(SharedFailure, Instant)> {
        self.pending.as_ref()?.failure.as_ref()
    }

    /// Whether a refresh may not start now: one runs, or the last one failed and
    /// its backoff has not passed (the still-valid token is kept meanwhile).
    #[cold]
    pub(super) fn refresh_held(&self, now: Ticks) -> bool {
        let Some(pending) = &self.pending else {
            return false;
        };
        pending.inflight.is_some()
            || pending
                .failure
                .as_ref()
                .is_some_and(|(_, until)| now < Ticks::of(*until))
    }

    pub(super) fn set_inflight(&mut self, inflight: Option<(u64, Inflight, Option<tracing::Id>)>) {
        if inflight.is_none() && self.pending.is_none() {
            return;
        }
        self.edit_pending(|p| p.inflight = inflight);
    }

    pub(super) fn set_failure(&mut self, failure: Option<(SharedFailure, Instant)>) {
        if failure.is_none() && self.pending.is_none() {
            return;
        }
        self.edit_pending(|p| p.failure = failure);
    }

    /// Edits the pending state, dropping its box once it holds nothing.
    fn edit_pending(&mut self, f: impl FnOnce(&mut Pending)) {
        let pending = self.pending.get_or_insert_with(Box::default);
        f(pending);
        if pending.inflight.is_none() && pending.failure.is_none() {
            self.pending = None;
        }
    }
}

/// Whether the request's key set covers the MSN its token is fetched for (see
/// [`Slot::covered`]).
pub(super) fn covers(request: &TokenRequest) -> bool {
    match (request.keys.merchant_msn(), request.msn) {
        (Some(own), msn) => msn.is_none_or(|msn| msn == own),
        (None, Some(msn)) => request.keys.covers(msn),
        (None, None) => false,
    }
}

/// Seconds since the cache's epoch, as a slot keeps them.
fn coarse(secs: u64) -> u32 {
    u32::try_from(secs).unwrap_or(u32::MAX)
}
