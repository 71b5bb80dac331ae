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
/// whose bytes are then compared (the rules ask some 20 questions per request).
#[inline]
fn slot(name: &str) -> Option<usize> {
    let candidates: &[usize] = match name.len() {
        9 => &[4],
        12 => &[10],
        13 => &[0, 5],
        15 => &[3],
        17 => &[6],
        20 => &[7, 11],
        21 => &[13],
        22 => &[2, 12],
        24 => &[8],
        25 => &[1],
        27 => &[9],
        _ => return None,
    };
    candidates
        .iter()
        .copied()
        .find(|&i| NAMES.get(i).is_some_and(|n| *n == name))
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

    /// Every value of `name`.
    pub(crate) fn get_all<N: AsHeaderName + AsRef<str>>(
        &self,
        name: N,
    ) -> impl Iterator<Item = &'a HeaderValue> + use<'a, N> {
        // A header seen once (or never) is answered from the pass; more values
        // are read from the map.
        let (one, all) = match slot(name.as_ref()) {
            Some(i) if self.count.get(i).is_some_and(|c| *c <= 1) => {
                (self.first.get(i).copied().flatten(), None)
            }
            _ => (None, Some(self.map.get_all(name).iter())),
        };
        one.into_iter().chain(all.into_iter().flatten())
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
            assert!(h.get_all(&name).eq(map.get_all(&name).iter()), "{name}");
        }
    }
}
