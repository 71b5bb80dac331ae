//! The ePayment rate limit: create, capture, cancel and refund take at most 5 calls
//! a minute per `reference` and MSN; more answer the gateway's `429` with
//! `Retry-After` (see the ePayment API's rate limits,
//! <https://developer.vippsmobilepay.com/docs/APIs/epayment-api/operations/rate-limits>).

use std::collections::{HashMap, VecDeque};

use serde_json::Value;

use super::Endpoint;
use crate::{Environment, Msn};

/// Calls allowed per window.
pub(crate) const LIMIT: usize = 5;
/// The window, in seconds.
pub(crate) const WINDOW_SECS: u64 = 60;
/// The most keys tracked: older windows are forgotten beyond it.
const KEYS_CAP: usize = 100_000;

/// The calls of the current window, per environment, MSN, operation and reference.
#[derive(Default)]
pub(crate) struct RateLimits {
    calls: HashMap<(Environment, Msn, Endpoint, String), VecDeque<u64>>,
}

/// The `reference` a limited ePayment call acts on: the body's for a create, the
/// path's otherwise; `None` for calls that are not limited.
pub(crate) fn limited_reference(endpoint: Endpoint, path: &str, body: &[u8]) -> Option<String> {
    match endpoint {
        Endpoint::CreatePayment => serde_json::from_slice::<Value>(body)
            .ok()?
            .get("reference")?
            .as_str()
            .map(str::to_owned),
        Endpoint::Capture | Endpoint::Refund | Endpoint::Cancel => path
            .strip_prefix("/epayment/v1/payments/")?
            .split('/')
            .next()
            .map(str::to_owned),
        _ => None,
    }
}

impl RateLimits {
    /// Counts a call at `now` (epoch seconds): `Err(retry_after_secs)` when it is
    /// over the limit (and is then not counted).
    pub(crate) fn check(
        &mut self,
        key: (Environment, Msn, Endpoint, String),
        now: u64,
    ) -> Result<(), u64> {
        if self.calls.len() >= KEYS_CAP {
            self.calls
                .retain(|_, calls| calls.back().is_some_and(|t| now < t + WINDOW_SECS));
        }
        let calls = self.calls.entry(key).or_default();
        while calls.front().is_some_and(|t| now >= t + WINDOW_SECS) {
            calls.pop_front();
        }
        if calls.len() >= LIMIT {
            let oldest = calls.front().copied().unwrap_or(now);
            return Err((oldest + WINDOW_SECS).saturating_sub(now).max(1));
        }
        calls.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_a_minute_per_reference() {
        let mut limits = RateLimits::default();
        let msn = Msn::new(123456).unwrap();
        let key = |r: &str| (Environment::Test, msn, Endpoint::Capture, r.to_owned());
        for _ in 0..LIMIT {
            limits.check(key("a"), 1000).unwrap();
        }
        assert_eq!(limits.check(key("a"), 1010), Err(50));
        // Another reference is not limited.
        limits.check(key("b"), 1010).unwrap();
        // A minute after the first call, one more goes through.
        limits.check(key("a"), 1060).unwrap();
        assert_eq!(
            limited_reference(Endpoint::Refund, "/epayment/v1/payments/ref-1/refund", b""),
            Some("ref-1".to_owned())
        );
        assert_eq!(
            limited_reference(Endpoint::CreatePayment, "/x", br#"{"reference":"r-2"}"#),
            Some("r-2".to_owned())
        );
    }
}
