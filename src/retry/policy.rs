//! [`RetryPolicy`]: what is safe to repeat, what failed, and whether and when to
//! try again.

use super::*;

/// Whether a request may be sent twice without being carried out twice (see
/// [`safe_to_repeat`](super::safe_to_repeat)). With the path, the API's own
/// idempotency header counts ([`ApiSpec::idempotency`](crate::api::ApiSpec)): an
/// `Idempotency-Key` on an eCom or Webhooks call does not make it safe, since those
/// APIs do not read it. Without the path (`next_delay`), an `Idempotency-Key` does.
pub(super) fn safe(method: &Method, path: Option<&str>, headers: &HeaderMap) -> bool {
    let non_empty = |name: &http::HeaderName| {
        headers
            .get(name)
            .is_some_and(|k: &http::HeaderValue| !k.is_empty())
    };
    if matches!(*method, Method::GET | Method::HEAD) {
        return true;
    }
    let spec = path.map(crate::api::ApiSpec::of_path);
    let keyed = match spec {
        Some(spec) => spec.idempotency.header().is_some_and(|h| non_empty(&h)),
        None => non_empty(&IDEMPOTENCY_KEY),
    };
    keyed
        // An access token request changes nothing: fetching a token twice is
        // harmless. Without the path (`next_delay`), `client_secret` alone says so.
        || (headers.contains_key(crate::headers::CLIENT_SECRET)
            && spec.is_none_or(|spec| spec.api == crate::Api::AccessToken))
}

/// A transient failure, as the policy sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Failure {
    /// A retryable status, with the `Retry-After` delay if one was given.
    Status(StatusCode, Option<Duration>),
    /// The connection could not be opened: the request was never sent.
    NothingSent,
    /// A timeout or a broken connection: the request may have been carried out.
    MaybeSent,
}

impl Failure {
    /// The `reason` label of `vipps_retries_total`.
    fn reason(&self) -> &'static str {
        match self {
            Failure::Status(status, _) => match status.as_u16() {
                429 => "status_429",
                500 => "status_500",
                502 => "status_502",
                503 => "status_503",
                504 => "status_504",
                _ => "status_other",
            },
            Failure::NothingSent => "nothing_sent",
            Failure::MaybeSent => "maybe_sent",
        }
    }
}

/// Why the policy does not retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stop {
    /// Success, or a failure that is not transient.
    Final,
    /// Transient, but the request is not safe to repeat.
    NotSafe,
    /// `max_retries` reached.
    Exhausted,
    /// The `Retry-After` is longer than the cap.
    PastCap(Duration),
    /// The retry budget is spent.
    Budget,
    /// The wait would end past the call's total deadline.
    PastDeadline(Duration),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Decision {
    Retry(Duration),
    Stop(Stop),
}

/// The [`tower::retry::Policy`] of tower-vipps; see the [module docs](crate::retry).
///
/// Clones share the retry budget. Use it through [`RetryLayer`] (which converts
/// the inner errors to [`VippsError`]), or with `tower::retry::RetryLayer` over a
/// service whose error already is [`VippsError`].
#[derive(Clone)]
pub struct RetryPolicy {
    max_retries: u32,
    base_delay: Duration,
    max_delay: Duration,
    retry_after_cap: Duration,
    budget: Arc<dyn Budget + Send + Sync>,
    /// Retries made so far in this call (each call works on its own clone).
    pub(super) attempts: u32,
    /// The call's total deadline when a scoped total timeout passed it (the
    /// preset) rather than a [`CallDeadline`] extension.
    deadline: Option<tokio::time::Instant>,
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_retries", &self.max_retries)
            .field("base_delay", &self.base_delay)
            .field("max_delay", &self.max_delay)
            .field("retry_after_cap", &self.retry_after_cap)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::new()
    }
}

impl RetryPolicy {
    /// The default policy: 3 retries, backoff from 200 ms up to 10 s, a
    /// `Retry-After` honoured up to 30 s, and a budget of 10 retries per second plus
    /// 20 % of the calls of the last 10 seconds.
    pub fn new() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            retry_after_cap: Duration::from_secs(30),
            budget: Arc::new(TpsBudget::new(Duration::from_secs(10), 10, 0.2)),
            attempts: 0,
            deadline: None,
        }
    }

    /// The most retries per call (attempts = retries + 1).
    pub fn max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// The backoff before the first retry is uniform in `[0, base_delay]`; it
    /// doubles with every retry.
    pub fn base_delay(mut self, base_delay: Duration) -> Self {
        self.base_delay = base_delay;
        self
    }

    /// The longest backoff (the `Retry-After` has its own cap).
    pub fn max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// The longest `Retry-After` waited out; a longer one ends the retries and the
    /// failure goes to the caller.
    pub fn retry_after_cap(mut self, cap: Duration) -> Self {
        self.retry_after_cap = cap;
        self
    }

    /// The retry budget, e.g. `TpsBudget::new(ttl, min_per_sec, retry_percent)`.
    /// It is shared by every clone of this policy.
    pub fn budget(self, budget: impl Budget + Send + Sync + 'static) -> Self {
        self.shared_budget(Arc::new(budget))
    }

    /// A retry budget shared with other policies (several clients of one API).
    pub fn shared_budget(mut self, budget: Arc<dyn Budget + Send + Sync>) -> Self {
        self.budget = budget;
        self
    }

    /// The upper bound of the backoff before retry `n` (from 0):
    /// `min(max_delay, base_delay * 2^n)`.
    pub(super) fn backoff_ceiling(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n).unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// Full jitter: uniform in `[0, ceiling]`.
    pub(super) fn backoff(&self, n: u32) -> Duration {
        let ceiling = u64::try_from(self.backoff_ceiling(n).as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=ceiling))
    }

    /// The decision for one failure, given the request's safety and the time left
    /// before the call's total deadline. Withdraws from the budget when it decides
    /// to retry.
    pub(super) fn decide(
        &self,
        failure: Option<Failure>,
        safe: bool,
        left: Option<Duration>,
    ) -> Decision {
        let Some(failure) = failure else {
            return Decision::Stop(Stop::Final);
        };
        if !safe && failure != Failure::NothingSent {
            return Decision::Stop(Stop::NotSafe);
        }
        if self.attempts >= self.max_retries {
            return Decision::Stop(Stop::Exhausted);
        }
        let delay = match failure {
            Failure::Status(_, Some(after)) if after > self.retry_after_cap => {
                return Decision::Stop(Stop::PastCap(after));
            }
            Failure::Status(_, Some(after)) => after,
            _ => self.backoff(self.attempts),
        };
        if left.is_some_and(|left| delay >= left) {
            // Waiting would only end in a timeout; the caller gets the real failure.
            return Decision::Stop(Stop::PastDeadline(delay));
        }
        if !self.budget.withdraw() {
            return Decision::Stop(Stop::Budget);
        }
        Decision::Retry(delay)
    }
}

/// The outcome of one attempt, for an adapter that runs its own retry loop (a
/// `reqwest_middleware` middleware, say) with [`RetryPolicy::next_delay`].
#[derive(Clone, Copy, Debug)]
pub enum Outcome<'a> {
    /// A response came: its status and headers (a success is never retried).
    Response(StatusCode, &'a HeaderMap),
    /// The attempt failed.
    Error(&'a VippsError),
}

impl RetryPolicy {
    /// For adapters: call once per logical call, before its first attempt (it
    /// deposits into the retry budget). `tower::retry` does this through
    /// `clone_request`.
    pub fn start_call(&mut self) {
        self.attempts = 0;
        self.budget.deposit();
    }

    /// For adapters: what to do after an attempt of a request with this method and
    /// these headers. `Some(delay)`: wait that long, then send the same request
    /// again (only if its body can be sent twice); `None`: stop and hand the outcome
    /// to the caller. `deadline` is the call's total deadline, if any. Counts the
    /// retry and withdraws from the budget; when it stops on an error it returns
    /// the reason to add as evidence.
    pub fn next_delay(
        &mut self,
        method: &Method,
        headers: &HeaderMap,
        deadline: Option<tokio::time::Instant>,
        outcome: Outcome<'_>,
    ) -> Result<Duration, Option<String>> {
        self.next_delay_at(method, None, headers, deadline, outcome)
    }

    /// [`RetryPolicy::next_delay`] knowing the request's path, so that what is safe
    /// to repeat follows the API (see [`safe_to_repeat`]).
    pub(crate) fn next_delay_at(
        &mut self,
        method: &Method,
        path: Option<&str>,
        headers: &HeaderMap,
        deadline: Option<tokio::time::Instant>,
        outcome: Outcome<'_>,
    ) -> Result<Duration, Option<String>> {
        let failure = match outcome {
            Outcome::Response(status, headers) => failure_of_status(status, headers),
            Outcome::Error(err) => failure_of_error(err),
        };
        if failure.is_none() {
            // A final answer (the common case): nothing to weigh.
            return Err(None);
        }
        let safe = safe(method, path, headers);
        let left = deadline.map(|d| d.saturating_duration_since(tokio::time::Instant::now()));
        let attempt = self.attempts + 1;
        match self.decide(failure, safe, left) {
            Decision::Retry(delay) => {
                self.attempts += 1;
                if let Some(failure) = &failure {
                    crate::observe::metrics::retry(failure.reason());
                }
                tracing::debug!(
                    attempt,
                    retry = self.attempts,
                    delay_ms = delay.as_millis() as u64,
                    failure = ?failure,
                    "vipps: retrying"
                );
                Ok(delay)
            }
            Decision::Stop(stop) => {
                if stop != Stop::Final {
                    tracing::debug!(attempt, stop = ?stop, failure = ?failure, "vipps: not retrying");
                }
                Err(stop_evidence(stop, attempt, self.retry_after_cap, method))
            }
        }
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    parse_retry_after(headers.get(http::header::RETRY_AFTER)?, SystemTime::now())
}

pub(super) fn failure_of_status(status: StatusCode, headers: &HeaderMap) -> Option<Failure> {
    RETRY_STATUSES
        .contains(&status)
        .then(|| Failure::Status(status, retry_after(headers)))
}

pub(super) fn failure_of_error(err: &VippsError) -> Option<Failure> {
    match err.origin() {
        Origin::Response(r) => failure_of_status(r.status, &r.headers),
        // A permanent transport failure (a certificate problem, a client without
        // HTTPS) fails the same way every time: never retried.
        Origin::Transport if !err.is_transient() => None,
        Origin::Transport if nothing_sent(err) => Some(Failure::NothingSent),
        Origin::Transport => Some(Failure::MaybeSent),
        _ => None,
    }
}

/// Whether a transport error happened before any byte of the request was sent:
/// a DNS failure, a refused connection, a reset while connecting, a connect
/// timeout, or another failure of the connect stage (hyper-util's
/// `client error (Connect)`, reqwest's `is_connect()`); see
/// [`diagnose::transport::nothing_sent`](crate::diagnose::transport::nothing_sent).
/// A deadline of the [timeout layer](crate::timeout) is not: the request may have
/// gone out. A permanent failure (a certificate problem) is never "nothing sent":
/// it is not retried at all.
pub fn nothing_sent(err: &VippsError) -> bool {
    err.is_transient()
        && std::error::Error::source(err).is_some_and(crate::diagnose::transport::nothing_sent)
}

impl<B: 'static, R> Policy<Request<B>, Response<R>, VippsError> for RetryPolicy {
    type Future = Sleep;

    fn retry(
        &mut self,
        req: &mut Request<B>,
        result: &mut Result<Response<R>, VippsError>,
    ) -> Option<Self::Future> {
        let outcome = match result {
            // A success is final: nothing to look up.
            Ok(res) if res.status().is_success() => return None,
            Ok(res) => Outcome::Response(res.status(), res.headers()),
            Err(err) => Outcome::Error(err),
        };
        let extension = req.extensions().get::<CallDeadline>().map(|d| d.0);
        let deadline = match (self.deadline, extension) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let path = Some(req.uri().path());
        match self.next_delay_at(req.method(), path, req.headers(), deadline, outcome) {
            Ok(delay) => Some(tokio::time::sleep(delay)),
            Err(why) => {
                if let (Err(err), Some(why)) = (result, why) {
                    let taken = std::mem::replace(
                        err,
                        VippsError::refused(crate::Diagnosis::new(Cause::Unknown)),
                    );
                    *err = taken.with_evidence(why);
                }
                None
            }
        }
    }

    fn clone_request(&mut self, req: &Request<B>) -> Option<Request<B>> {
        if self.attempts == 0 {
            // The first attempt of a call: it earns the budget its share, and takes
            // the deadline of a scoped total timeout (called synchronously above).
            self.budget.deposit();
            self.deadline = crate::timeout::scope::current();
        }
        let mut copy = crate::replay::try_clone_request(req)?;
        *copy.extensions_mut() = req.extensions().clone();
        Some(copy)
    }
}

fn stop_evidence(stop: Stop, attempt: u32, cap: Duration, method: &Method) -> Option<String> {
    Some(match stop {
        Stop::Final => return None,
        Stop::NotSafe => {
            format!("not retried: a {method} without an `Idempotency-Key` is not safe to repeat")
        }
        Stop::PastDeadline(wait) => format!(
            "not retried: waiting {wait:?} would pass the total deadline (attempt {attempt})"
        ),
        Stop::Exhausted => format!("gave up after {attempt} attempts"),
        Stop::PastCap(after) => format!(
            "not retried: Retry-After of {after:?} is past the cap of {cap:?} (attempt {attempt})"
        ),
        Stop::Budget => format!("not retried: the retry budget is spent (attempt {attempt})"),
    })
}
