//! Fault injection: a [`Fault`] to inject, and the [`Faults`] handle that queues
//! them per [`Endpoint`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Endpoint, Shared, env_index};
use crate::Environment;

/// A failure to inject; see [`Faults`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// `500` `application/problem+json`, "Internal error" (code 3010).
    InternalError,
    /// `502` `text/html`, the gateway's HTML page.
    BadGateway,
    /// `429` with the gateway's JSON and `Retry-After` (whole seconds).
    TooManyRequests {
        /// The `Retry-After` delay.
        retry_after: Duration,
    },
    /// `503` `text/html`, the gateway's page for a backend that is down.
    ServiceUnavailable,
    /// `504` `text/html`, the gateway's page for a backend that did not answer.
    GatewayTimeout,
    /// The connection is closed without an answer, after the request was read.
    DropConnection,
}

#[derive(Default)]
pub(super) struct FaultState {
    pub(super) queues: HashMap<Endpoint, VecDeque<Fault>>,
    pub(super) token_delay: Duration,
    pub(super) drop_connections: usize,
}

/// A handle to inject failures into a running [`Emulator`](super::Emulator). Cheap to clone; every
/// fault is used once, in order, by the next requests to its endpoint. Requests
/// answered by a fault are counted like any other.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use tower_vipps::emulator::{Emulator, Endpoint};
///
/// let emulator = Emulator::start().await?;
/// let faults = emulator.faults();
/// faults.rate_limit_next(Endpoint::CreatePayment, 1, Duration::from_secs(2));
/// faults.fail_next(Endpoint::Capture, 2);
/// faults.drop_next(Endpoint::AccessToken, 1);
/// faults.token_delay(Duration::from_millis(50));
/// assert_eq!(faults.pending(Endpoint::Capture), 2);
/// faults.clear();
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Faults {
    pub(super) shared: Arc<Shared>,
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Faults").finish_non_exhaustive()
    }
}

impl Faults {
    fn with<R>(&self, f: impl FnOnce(&mut FaultState) -> R) -> R {
        let mut state = self
            .shared
            .faults
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut state)
    }

    /// Answers the next `times` requests to `endpoint` with `fault`, after the ones
    /// already queued.
    pub fn inject(&self, endpoint: Endpoint, fault: Fault, times: usize) -> &Self {
        self.with(|s| {
            s.queues
                .entry(endpoint)
                .or_default()
                .extend(std::iter::repeat_n(fault, times));
        });
        self
    }

    /// The next `times` requests to `endpoint` answer `500` problem details
    /// ("Internal error", code 3010).
    pub fn fail_next(&self, endpoint: Endpoint, times: usize) -> &Self {
        self.inject(endpoint, Fault::InternalError, times)
    }

    /// The next `times` requests to `endpoint` answer the gateway's `502` HTML page.
    pub fn bad_gateway_next(&self, endpoint: Endpoint, times: usize) -> &Self {
        self.inject(endpoint, Fault::BadGateway, times)
    }

    /// The next `times` requests to `endpoint` answer the gateway's `503` page.
    pub fn unavailable_next(&self, endpoint: Endpoint, times: usize) -> &Self {
        self.inject(endpoint, Fault::ServiceUnavailable, times)
    }

    /// The next `times` requests to `endpoint` answer the gateway's `504` page.
    pub fn gateway_timeout_next(&self, endpoint: Endpoint, times: usize) -> &Self {
        self.inject(endpoint, Fault::GatewayTimeout, times)
    }

    /// The next `times` requests to `endpoint` answer `429` with `Retry-After`
    /// (rounded down to whole seconds).
    pub fn rate_limit_next(
        &self,
        endpoint: Endpoint,
        times: usize,
        retry_after: Duration,
    ) -> &Self {
        self.inject(endpoint, Fault::TooManyRequests { retry_after }, times)
    }

    /// The next `times` requests to `endpoint` are read, counted, and their
    /// connection closed without an answer.
    pub fn drop_next(&self, endpoint: Endpoint, times: usize) -> &Self {
        self.inject(endpoint, Fault::DropConnection, times)
    }

    /// The next `times` connections, on either listener, are closed as soon as they
    /// are accepted, before any request is read (nothing is counted).
    pub fn drop_connections(&self, times: usize) -> &Self {
        self.with(|s| s.drop_connections += times);
        self
    }

    /// Every token request waits this long before it is answered (zero: no delay).
    pub fn token_delay(&self, delay: Duration) -> &Self {
        self.with(|s| s.token_delay = delay);
        self
    }

    /// The lifetime of the tokens minted from now on in `environment` (whole
    /// seconds, at least one).
    pub fn token_lifetime(&self, environment: Environment, lifetime: Duration) -> &Self {
        self.shared.lifetimes[env_index(environment)]
            .store(lifetime.as_secs().max(1), Ordering::Relaxed);
        self
    }

    /// The faults still queued for `endpoint`.
    pub fn pending(&self, endpoint: Endpoint) -> usize {
        self.with(|s| s.queues.get(&endpoint).map_or(0, VecDeque::len))
    }

    /// Removes every queued fault, connection drop and token delay.
    pub fn clear(&self) -> &Self {
        self.with(|s| *s = FaultState::default());
        self
    }
}
