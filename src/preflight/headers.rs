//! The request's headers as the rules read them: one pass over the map when the
//! facts are gathered records, for each header a rule asks about, its first value
//! and how many there are, so the rules' many questions are answered without
//! hashing a name again.

use http::header::AsHeaderName;
use http::{HeaderMap, HeaderName, HeaderValue};

/// The header names the rules ask about.
const NAMES: [&str; 14] = [
    "authorization",
    "ocp-apim-subscription-key",
    "merchant-serial-number",
    "idempotency-key",
    "client_id",
    "client_secret",
    "vipps-system-name",
    "vipps-system-version",
    "vipps-system-plugin-name",
    "vipps-system-plugin-version",
    "x-request-id",
    "merchantserialnumber",
    "merchant_serial_number",
    "merchant-serialnumber",
];

/// The index of `name` in [`NAMES`]: its length picks at most two candidates,
/// each compared with a literal of that length (which the compiler turns into a
/// few word compares, not a call); the test checks this table against [`NAMES`].
#[inline]
fn slot(name: &str) -> Option<usize> {
    let is = |literal: &str, i: usize| (name == literal).then_some(i);
    match name.len() {
        9 => is("client_id", 4),
        12 => is("x-request-id", 10),
        13 => is("authorization", 0).or_else(|| is("client_secret", 5)),
        15 => is("idempotency-key", 3),
        17 => is("vipps-system-name", 6),
        20 => is("vipps-system-version", 7).or_else(|| is("merchantserialnumber", 11)),
        21 => is("merchant-serialnumber", 13),
        22 => is("merchant-serial-number", 2).or_else(|| is("merchant_serial_number", 12)),
        24 => is("vipps-system-plugin-name", 8),
        25 => is("ocp-apim-subscription-key", 1),
        27 => is("vipps-system-plugin-version", 9),
        _ => None,
    }
}

/// One of the headers the rules ask about, by its place in [`NAMES`]: answered
/// from the one pass without comparing names again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Known(usize);

impl Known {
    pub(crate) const AUTHORIZATION: Known = Known(0);
    pub(crate) const SUBSCRIPTION_KEY: Known = Known(1);
    pub(crate) const MERCHANT_SERIAL_NUMBER: Known = Known(2);
    pub(crate) const IDEMPOTENCY_KEY: Known = Known(3);
    pub(crate) const CLIENT_ID: Known = Known(4);
    pub(crate) const CLIENT_SECRET: Known = Known(5);
    pub(crate) const SYSTEM_NAME: Known = Known(6);
    pub(crate) const SYSTEM_VERSION: Known = Known(7);
    pub(crate) const SYSTEM_PLUGIN_NAME: Known = Known(8);
    pub(crate) const SYSTEM_PLUGIN_VERSION: Known = Known(9);
    pub(crate) const X_REQUEST_ID: Known = Known(10);

    /// The header's name, lower case.
    pub(crate) fn name(self) -> &'static str {
        NAMES.get(self.0).copied().unwrap_or_default()
    }
}

/// The values of a [`Known`] header: [`Headers::all`].
pub(crate) enum Values<'a> {
    One(Option<&'a HeaderValue>),
    Many(http::header::ValueIter<'a, HeaderValue>),
}

impl<'a> Iterator for Values<'a> {
    type Item = &'a HeaderValue;
    #[inline]
    fn next(&mut self) -> Option<&'a HeaderValue> {
        match self {
            Values::One(one) => one.take(),
            Values::Many(many) => many.next(),
        }
    }
}

/// A header map with the rules' headers looked up once.
#[derive(Clone, Copy)]
pub(crate) struct Headers<'a> {
    map: &'a HeaderMap,
    first: [Option<&'a HeaderValue>; NAMES.len()],
    count: [u16; NAMES.len()],
}

impl<'a> Headers<'a> {
    pub(crate) fn new(map: &'a HeaderMap) -> Self {
        let mut first = [None; NAMES.len()];
        let mut count = [0u16; NAMES.len()];
        for (name, value) in map {
            if let Some(i) = slot(name.as_str()) {
                if let (Some(f), Some(c)) = (first.get_mut(i), count.get_mut(i)) {
                    if f.is_none() {
                        *f = Some(value);
                    }
                    *c = c.saturating_add(1);
                }
            }
        }
        Headers { map, first, count }
    }

    /// The map itself.
    pub(crate) fn map(&self) -> &'a HeaderMap {
        self.map
    }

    /// The first value of a [`Known`] header.
    #[inline]
    pub(crate) fn first(&self, known: Known) -> Option<&'a HeaderValue> {
        self.first.get(known.0).copied().flatten()
    }

    /// Whether a [`Known`] header is there.
    #[inline]
    pub(crate) fn has(&self, known: Known) -> bool {
        self.first(known).is_some()
    }

    /// How many values a [`Known`] header has.
    #[inline]
    pub(crate) fn number(&self, known: Known) -> usize {
        self.count.get(known.0).map_or(0, |c| usize::from(*c))
    }

    /// Every value of a [`Known`] header (the map is read only for a header sent
    /// more than once).
    pub(crate) fn all(&self, known: Known) -> Values<'a> {
        match self.number(known) {
            0 | 1 => Values::One(self.first(known)),
            _ => Values::Many(self.map.get_all(known.name()).iter()),
        }
    }

    /// The first value of `name`.
    pub(crate) fn get<N: AsHeaderName + AsRef<str>>(&self, name: N) -> Option<&'a HeaderValue> {
        match slot(name.as_ref()) {
            Some(i) => self.first.get(i).copied().flatten(),
            None => self.map.get(name),
        }
    }

    pub(crate) fn contains_key<N: AsHeaderName + AsRef<str>>(&self, name: N) -> bool {
        self.get(name).is_some()
    }

    /// How many values `name` has.
    pub(crate) fn count<N: AsHeaderName + AsRef<str>>(&self, name: N) -> usize {
        match slot(name.as_ref()) {
            Some(i) => self.count.get(i).map_or(0, |c| usize::from(*c)),
            None => self.map.get_all(name).iter().count(),
        }
    }
}

/// What the header checks shared with other modules ask of a header map.
pub(crate) trait Lookup {
    fn get_value(&self, name: &HeaderName) -> Option<&HeaderValue>;
    fn has(&self, name: &HeaderName) -> bool {
        self.get_value(name).is_some()
    }
    fn number(&self, name: &HeaderName) -> usize;
}

impl Lookup for HeaderMap {
    fn get_value(&self, name: &HeaderName) -> Option<&HeaderValue> {
        self.get(name)
    }
    fn number(&self, name: &HeaderName) -> usize {
        self.get_all(name).iter().count()
    }
}

impl Lookup for Headers<'_> {
    fn get_value(&self, name: &HeaderName) -> Option<&HeaderValue> {
        self.get(name)
    }
    fn number(&self, name: &HeaderName) -> usize {
        self.count(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_the_names_indices() {
        for (i, name) in NAMES.iter().enumerate() {
            assert_eq!(slot(name), Some(i), "{name}");
        }
        assert_eq!(slot("x-other"), None);
        assert_eq!(slot("x-request-ie"), None);
        for known in [
            Known::AUTHORIZATION,
            Known::SUBSCRIPTION_KEY,
            Known::MERCHANT_SERIAL_NUMBER,
            Known::IDEMPOTENCY_KEY,
            Known::CLIENT_ID,
            Known::CLIENT_SECRET,
            Known::SYSTEM_NAME,
            Known::SYSTEM_VERSION,
            Known::SYSTEM_PLUGIN_NAME,
            Known::SYSTEM_PLUGIN_VERSION,
            Known::X_REQUEST_ID,
        ] {
            assert_eq!(slot(known.name()), Some(known.0));
        }
        assert_eq!(
            Known::AUTHORIZATION.name(),
            http::header::AUTHORIZATION.as_str()
        );
        assert_eq!(
            Known::SUBSCRIPTION_KEY.name(),
            crate::headers::OCP_APIM_SUBSCRIPTION_KEY.as_str()
        );
    }

    #[test]
    fn answers_as_the_map_does() {
        let mut map = HeaderMap::new();
        map.append("authorization", HeaderValue::from_static("Bearer a"));
        map.append("authorization", HeaderValue::from_static("Bearer b"));
        map.append("merchant-serial-number", HeaderValue::from_static("123456"));
        map.append("x-other", HeaderValue::from_static("o"));
        let h = Headers::new(&map);
        for name in NAMES.iter().copied().chain(["x-other", "x-absent"]) {
            let name = HeaderName::from_static(name);
            assert_eq!(h.get(&name), map.get(&name), "{name}");
            assert_eq!(h.contains_key(&name), map.contains_key(&name), "{name}");
            assert_eq!(h.count(&name), map.get_all(&name).iter().count(), "{name}");
            if let Some(i) = slot(name.as_str()) {
                let known = Known(i);
                assert_eq!(h.first(known), map.get(&name), "{name}");
                assert_eq!(h.has(known), map.contains_key(&name), "{name}");
                assert!(h.all(known).eq(map.get_all(&name).iter()), "{name}");
                assert_eq!(h.number(known), map.get_all(&name).iter().count(), "{name}");
            }
        }
    }
}
