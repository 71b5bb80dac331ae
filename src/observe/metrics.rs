//! The names of the metrics tower-vipps records (feature `metrics`), and the
//! crate's one place that records them.
//!
//! Without the feature every recording function is empty and compiles away. With
//! it, each goes to the recorder installed through the `metrics` facade (none
//! installed: a no-op). Labels are `&'static str`, and each distinct set of them
//! is gathered once per process into a static slice: a recording builds
//! no string and allocates nothing (the `metrics` macros would gather the labels
//! into a new vector every time). See the [module docs](super) for the table of
//! metrics and labels.

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

#[cfg(feature = "metrics")]
mod keys {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::sync::Mutex;

    use metrics::{Key, Label, Level, Metadata};

    /// What the `metrics` macros gave the recorder from this module (its parent:
    /// `module_path!()` here would name `keys`).
    const MODULE: &str = "tower_vipps::observe::metrics";
    pub(super) static METADATA: Metadata<'static> =
        Metadata::new(MODULE, Level::INFO, Some(MODULE));

    /// The most distinct label sets kept (the labels are drawn from the crate's
    /// own finite tables, so this is a bound that is never reached in practice).
    const CAP: usize = 4096;

    /// A metric's name and its label values (its label names follow from the name).
    type Id = (&'static str, [&'static str; 3]);
    pub(super) type Kept = HashMap<Id, &'static [Label], foldhash::fast::FixedState>;

    /// Every label set made, so that each is made (and leaked) once per process.
    static MADE: Mutex<Option<Kept>> = Mutex::new(None);

    /// Where the name and label values are (a `&'static str` is found again at the
    /// same address): a few words to hash, no string to read.
    type At = [(usize, usize); 4];

    thread_local! {
        /// This thread's keys, by where their strings are: a hit reads no shared
        /// line and hashes nothing more (a key keeps its hash).
        static USED: RefCell<HashMap<At, Key, foldhash::fast::FixedState>> = RefCell::default();
    }

    /// The key of `name` with `labels`: its label set is made once per process
    /// and shared by every recording after (past [`CAP`] sets, a key that owns its
    /// labels, as the macros make).
    pub(super) fn key(name: &'static str, labels: &[(&'static str, &'static str)]) -> Key {
        let mut values = [""; 3];
        for (slot, (_, value)) in values.iter_mut().zip(labels) {
            *slot = value;
        }
        if labels.len() > values.len() {
            return Key::from_parts(name, owned(labels));
        }
        let at = |s: &str| (s.as_ptr() as usize, s.len());
        let place = [at(name), at(values[0]), at(values[1]), at(values[2])];
        let found = USED.try_with(|used| {
            if let Some(key) = used.borrow().get(&place) {
                return Some(key.clone());
            }
            let key = Key::from_static_parts(name, made((name, values), labels)?);
            used.borrow_mut().insert(place, key.clone());
            Some(key)
        });
        match found {
            Ok(Some(key)) => key,
            _ => Key::from_parts(name, owned(labels)),
        }
    }

    /// The process's label set for `id`, made now if it is new; `None` past [`CAP`].
    #[cold]
    fn made(id: Id, labels: &[(&'static str, &'static str)]) -> Option<&'static [Label]> {
        let mut made = MADE.lock().ok()?;
        kept(made.get_or_insert_with(Kept::default), id, labels, CAP)
    }

    /// The set for `id` in `made`, made and leaked now if it is new and `made`
    /// holds fewer than `cap`.
    pub(super) fn kept(
        made: &mut Kept,
        id: Id,
        labels: &[(&'static str, &'static str)],
        cap: usize,
    ) -> Option<&'static [Label]> {
        if let Some(found) = made.get(&id) {
            return Some(*found);
        }
        if made.len() >= cap {
            return None;
        }
        let labels: &'static [Label] = Box::leak(owned(labels).into_boxed_slice());
        made.insert(id, labels);
        Some(labels)
    }

    fn owned(labels: &[(&'static str, &'static str)]) -> Vec<Label> {
        labels
            .iter()
            .map(|(k, v)| Label::from_static_parts(k, v))
            .collect()
    }

    /// Adds `by` to the counter `name` with `labels`.
    pub(super) fn count(name: &'static str, labels: &[(&'static str, &'static str)], by: u64) {
        let key = key(name, labels);
        metrics::with_recorder(|r| r.register_counter(&key, &METADATA)).increment(by);
    }

    /// Records `value` in the histogram `name` with `labels`.
    pub(super) fn record(name: &'static str, labels: &[(&'static str, &'static str)], value: f64) {
        let key = key(name, labels);
        metrics::with_recorder(|r| r.register_histogram(&key, &METADATA)).record(value);
    }
}

/// A call ended: `outcome` is `ok` or the cause code.
#[inline]
// Read only by the metrics of a call, made with the `metrics` feature.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) fn call(api: Api, operation: &'static str, outcome: &'static str, took: Duration) {
    #[cfg(feature = "metrics")]
    {
        let api = api.as_str();
        let labels = [("api", api), ("operation", operation), ("outcome", outcome)];
        keys::count(CALLS, &labels, 1);
        keys::record(CALL_DURATION, &labels[..2], took.as_secs_f64());
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
    keys::count(REFUSALS, &[("api", api.as_str()), ("cause", cause)], 1);
    #[cfg(not(feature = "metrics"))]
    let _ = (api, cause);
}

/// An attempt was answered `429`.
#[inline]
// Read only by the metrics of a call, made with the `metrics` feature.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) fn rate_limited(api: Api) {
    #[cfg(feature = "metrics")]
    keys::count(RATE_LIMITED, &[("api", api.as_str())], 1);
    #[cfg(not(feature = "metrics"))]
    let _ = api;
}

/// The retry layer retries, for `reason`.
#[inline]
pub(crate) fn retry(reason: &'static str) {
    #[cfg(feature = "metrics")]
    keys::count(RETRIES, &[("reason", reason)], 1);
    #[cfg(not(feature = "metrics"))]
    let _ = reason;
}

/// Auth looked a token up: `hit`, `refresh_ahead` or `miss`.
#[inline]
pub(crate) fn token_cache(result: &'static str) {
    #[cfg(feature = "metrics")]
    keys::count(TOKEN_CACHE, &[("result", result)], 1);
    #[cfg(not(feature = "metrics"))]
    let _ = result;
}

/// A call waited this long for a token.
#[inline]
pub(crate) fn token_wait(wait: Duration) {
    #[cfg(feature = "metrics")]
    keys::record(TOKEN_WAIT, &[], wait.as_secs_f64());
    #[cfg(not(feature = "metrics"))]
    let _ = wait;
}

/// The cache's fetch ended: `outcome` is `ok` or the cause code.
#[inline]
pub(crate) fn token_fetch(environment: Environment, outcome: &'static str) {
    #[cfg(feature = "metrics")]
    keys::count(
        TOKEN_FETCHES,
        &[("environment", environment.as_str()), ("outcome", outcome)],
        1,
    );
    #[cfg(not(feature = "metrics"))]
    let _ = (environment, outcome);
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use super::keys::key;

    fn labels(key: &metrics::Key) -> Vec<(String, String)> {
        key.labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect()
    }

    #[test]
    fn a_label_set_is_made_once_and_keys_say_what_the_macros_say() {
        let pairs = [
            ("api", "epayment"),
            ("operation", "get_payment"),
            ("outcome", "ok"),
        ];
        let (a, b) = (key(super::CALLS, &pairs), key(super::CALLS, &pairs));
        assert_eq!(a, b);
        assert_eq!(a, metrics::Key::from_parts(super::CALLS, &pairs[..]));
        assert_eq!(
            labels(&a),
            labels(&metrics::Key::from_parts(super::CALLS, &pairs[..]))
        );
        // The same static slice, from this thread and from another.
        let slice = |k: &metrics::Key| k.labels().next().map(|l| l as *const _);
        assert_eq!(slice(&a), slice(&b));
        let other = std::thread::spawn(move || {
            let k = key(super::CALLS, &pairs);
            k.labels().next().map(|l| l as *const _ as usize)
        })
        .join()
        .unwrap();
        assert_eq!(other, slice(&a).map(|p| p as usize));
        // Another value is another set; no labels is an empty one.
        let c = key(
            super::CALLS,
            &[
                ("api", "epayment"),
                ("operation", "get_payment"),
                ("outcome", "x"),
            ],
        );
        assert_ne!(a, c);
        assert_eq!(
            key(super::TOKEN_WAIT, &[]),
            metrics::Key::from_name(super::TOKEN_WAIT)
        );
    }

    #[test]
    fn the_recorder_hears_from_this_module_as_from_the_macros() {
        let module = module_path!().trim_end_matches("::tests");
        assert_eq!(super::keys::METADATA.target(), module);
        assert_eq!(super::keys::METADATA.module_path(), Some(module));
    }

    #[test]
    fn past_the_cap_no_set_is_made() {
        let mut made = super::keys::Kept::default();
        let id = |v: &'static str| (super::RETRIES, [v, "", ""]);
        let a = super::keys::kept(&mut made, id("a"), &[("reason", "a")], 2).unwrap();
        assert_eq!(a.len(), 1);
        assert!(super::keys::kept(&mut made, id("b"), &[("reason", "b")], 2).is_some());
        // Full: a new set is not made, a kept one is still found.
        assert!(super::keys::kept(&mut made, id("c"), &[("reason", "c")], 2).is_none());
        let again = super::keys::kept(&mut made, id("a"), &[("reason", "a")], 2).unwrap();
        assert!(std::ptr::eq(a, again));
    }
}
