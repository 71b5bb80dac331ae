//! The names of the metrics tower-vipps records (feature `metrics`), and the
//! crate's one place that records them.
//!
//! Without the feature every recording function is empty and compiles away. With
//! it, each goes to the recorder installed through the `metrics` facade (none
//! installed: a no-op). Labels are `&'static str` (no string is built), but the
//! `metrics` macros gather a call's labels into a small vector: with the feature
//! on, each recording costs one allocation, installed recorder or not.
//! See the [module docs](super) for the table of metrics and labels.

use std::time::Duration;

use crate::{Api, Environment};

/// Counter: logical calls, when they end; labels `api`, `operation`, `outcome`.
pub const CALLS: &str = "vipps_calls_total";
/// Histogram (seconds): the whole call; labels `api`, `operation`.
pub const CALL_DURATION: &str = "vipps_call_duration_seconds";
/// Counter: calls refused before sending; labels `api`, `cause`.
pub const REFUSALS: &str = "vipps_refusals_total";
/// Counter: `429` answers, per attempt; label `api`.
pub const RATE_LIMITED: &str = "vipps_rate_limited_total";
/// Counter: retries made by the retry layer; label `reason`.
pub const RETRIES: &str = "vipps_retries_total";
/// Counter: token lookups by Auth; label `result` (`hit`, `refresh_ahead`, `miss`).
pub const TOKEN_CACHE: &str = "vipps_token_cache_total";
/// Histogram (seconds): a call's wait for a token after a miss.
pub const TOKEN_WAIT: &str = "vipps_token_wait_seconds";
/// Counter: token fetches of the cache; labels `environment`, `outcome`.
pub const TOKEN_FETCHES: &str = "vipps_token_fetches_total";

/// The `operation` label of a call that is no well-known operation.
pub const OTHER_OPERATION: &str = "other";

/// A call ended: `outcome` is `ok` or the cause code.
#[inline]
// Read only by the metrics of a call, made with the `metrics` feature.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) fn call(api: Api, operation: &'static str, outcome: &'static str, took: Duration) {
    #[cfg(feature = "metrics")]
    {
        ::metrics::counter!(CALLS, "api" => api.as_str(), "operation" => operation, "outcome" => outcome)
            .increment(1);
        ::metrics::histogram!(CALL_DURATION, "api" => api.as_str(), "operation" => operation)
            .record(took.as_secs_f64());
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (api, operation, outcome, took);
}

/// A call was refused before sending.
#[inline]
// Read only by the metrics of a call, made with the `metrics` feature.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) fn refusal(api: Api, cause: &'static str) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(REFUSALS, "api" => api.as_str(), "cause" => cause).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = (api, cause);
}

/// An attempt was answered `429`.
#[inline]
// Read only by the metrics of a call, made with the `metrics` feature.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) fn rate_limited(api: Api) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(RATE_LIMITED, "api" => api.as_str()).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = api;
}

/// The retry layer retries, for `reason`.
#[inline]
pub(crate) fn retry(reason: &'static str) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(RETRIES, "reason" => reason).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = reason;
}

/// Auth looked a token up: `hit`, `refresh_ahead` or `miss`.
#[inline]
pub(crate) fn token_cache(result: &'static str) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(TOKEN_CACHE, "result" => result).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = result;
}

/// A call waited this long for a token.
#[inline]
pub(crate) fn token_wait(wait: Duration) {
    #[cfg(feature = "metrics")]
    ::metrics::histogram!(TOKEN_WAIT).record(wait.as_secs_f64());
    #[cfg(not(feature = "metrics"))]
    let _ = wait;
}

/// The cache's fetch ended: `outcome` is `ok` or the cause code.
#[inline]
pub(crate) fn token_fetch(environment: Environment, outcome: &'static str) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(TOKEN_FETCHES, "environment" => environment.as_str(), "outcome" => outcome)
        .increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = (environment, outcome);
}
