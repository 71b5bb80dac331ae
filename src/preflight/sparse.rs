//! A sparse JSON parse: only the fields the rules read are kept; every other value
//! is validated and skipped without allocating (a long `paymentDescription`, order
//! lines, metadata). Arrays are skipped: no rule looks into one.

use std::fmt;

use std::borrow::Cow;

use serde::Deserializer;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Number;
use smallvec::SmallVec;

/// The object keys the rules read, at any depth.
const KEPT: &[&str] = &[
    "amount",
    "value",
    "currency",
    "modificationAmount",
    "customer",
    "phoneNumber",
    "reference",
    "returnUrl",
    "callbackUrl",
    "termsAndConditionsUrl",
    "userFlow",
    "merchantInfo",
    "merchantSerialNumber",
    "callbackPrefix",
    "fallBack",
    "consentRemovalPrefix",
    "shippingDetailsPrefix",
    "isApp",
    "transaction",
    "orderId",
    "customerInfo",
    "mobileNumber",
    "pricing",
    "suggestedMaxAmount",
    "initialCharge",
    "merchantRedirectUrl",
    "merchantAgreementUrl",
    "paymentDescription",
    "expiresAt",
    "metadata",
    "qrFormat",
    "format",
    "size",
    "personalQr",
    "productName",
    "productDescription",
    "interval",
    "period",
    "type",
    "count",
    "unit",
    "transactionText",
    "url",
];

/// Kept keys whose value is kept whole, every key of it: `metadata` (the ePayment
/// rules count its properties and measure its keys and values).
const WHOLE: &[&str] = &["metadata"];

/// A parsed body: every kept value in one vector (inline up to [`INLINE`]
/// values: no allocation for the bodies the rules read), strings borrowed from
/// the body unless they hold escapes.
pub(crate) struct Doc<'a> {
    nodes: Nodes<'a>,
}

/// Kept values held without an allocation: an ePayment create keeps about ten.
const INLINE: usize = 16;

type Nodes<'a> = SmallVec<[Node<'a>; INLINE]>;

struct Node<'a> {
    /// The index of the object holding this value (`u32::MAX` for the root).
    parent: u32,
    key: Cow<'a, str>,
    value: Scalar<'a>,
}

enum Scalar<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    /// An array, its elements skipped: no rule looks into one.
    Array,
    /// An object; its kept members are the nodes whose `parent` is this one.
    Object,
}

const ROOT: u32 = u32::MAX;

/// A value of a [`Doc`], as the rules read it.
#[derive(Clone, Copy)]
pub(crate) enum Value<'d> {
    Null,
    Bool(bool),
    Number(&'d Number),
    String(&'d str),
    Array,
    Object(Object<'d>),
}

/// An object of a [`Doc`]: its kept members.
#[derive(Clone, Copy)]
pub(crate) struct Object<'d> {
    nodes: &'d [Node<'d>],
    index: u32,
}

impl<'a> Doc<'a> {
    /// The top-level value.
    pub(crate) fn root(&self) -> Value<'_> {
        self.value(0)
    }

    fn value(&self, index: u32) -> Value<'_> {
        let nodes: &[Node<'_>] = &self.nodes;
        value_at(nodes, index)
    }
}

/// The kept key equal to `key`, if any: candidates of the same length only.
fn kept(key: &str) -> Option<&'static str> {
    KEPT.iter()
        .copied()
        .find(|k| k.len() == key.len() && *k == key)
}

fn value_at<'d>(nodes: &'d [Node<'d>], index: u32) -> Value<'d> {
    let Some(node) = nodes.get(index as usize) else {
        return Value::Null;
    };
    match &node.value {
        Scalar::Null => Value::Null,
        Scalar::Bool(b) => Value::Bool(*b),
        Scalar::Number(n) => Value::Number(n),
        Scalar::String(s) => Value::String(s),
        Scalar::Array => Value::Array,
        Scalar::Object => Value::Object(Object { nodes, index }),
    }
}

impl<'d> Value<'d> {
    /// The member `key` of an object (the last one when a key repeats, as
    /// `serde_json::Value` keeps it); `None` for other values.
    pub(crate) fn get(self, key: &str) -> Option<Value<'d>> {
        match self {
            Value::Object(o) => o.get(key),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> Option<&'d str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_i64(self) -> Option<i64> {
        match self {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    pub(crate) fn as_bool(self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }
}

impl<'d> Object<'d> {
    fn members(self) -> impl Iterator<Item = (usize, &'d Node<'d>)> {
        let first = self.index as usize + 1;
        self.nodes
            .iter()
            .enumerate()
            .skip(first)
            .filter(move |(_, n)| n.parent == self.index)
    }

    pub(crate) fn get(self, key: &str) -> Option<Value<'d>> {
        // Members come after their object: the last match is the last value.
        let first = self.index as usize + 1;
        let after = self.nodes.get(first..)?;
        let i = after
            .iter()
            .rposition(|n| n.parent == self.index && n.key.len() == key.len() && n.key == key)?;
        Some(value_at(self.nodes, (first + i) as u32))
    }

    /// The members, each key once (its last value), in key order, as
    /// `serde_json::Map` iterates them.
    pub(crate) fn entries(self) -> Vec<(&'d str, Value<'d>)> {
        let mut all: Vec<(&'d str, Value<'d>)> = self
            .members()
            .map(|(i, n)| (&*n.key, value_at(self.nodes, i as u32)))
            .collect();
        // Stable: of equal keys the last stays last; keep it.
        all.sort_by(|a, b| a.0.cmp(b.0));
        let mut out: Vec<(&'d str, Value<'d>)> = Vec::with_capacity(all.len());
        for entry in all {
            match out.last_mut() {
                Some(last) if last.0 == entry.0 => *last = entry,
                _ => out.push(entry),
            }
        }
        out
    }
}

pub(crate) fn parse(bytes: &[u8]) -> Option<Doc<'_>> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut nodes = Nodes::new();
    nodes.push(Node {
        parent: ROOT,
        key: Cow::Borrowed(""),
        value: Scalar::Null,
    });
    let value = Sparse {
        nodes: &mut nodes,
        index: 0,
        whole: false,
    }
    .deserialize(&mut de)
    .ok()?;
    de.end().ok()?;
    if let Some(root) = nodes.first_mut() {
        root.value = value;
    }
    Some(Doc { nodes })
}

/// Parses one value into `nodes[index]`'s scalar (returned), its kept members
/// pushed as nodes with `index` as their parent. `whole`: the members of an
/// object are kept whatever their keys, one level deep (`metadata`).
struct Sparse<'n, 'a> {
    nodes: &'n mut Nodes<'a>,
    index: u32,
    whole: bool,
}

impl<'de, 'n> DeserializeSeed<'de> for Sparse<'n, 'de> {
    type Value = Scalar<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Scalar<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, 'n> Visitor<'de> for Sparse<'n, 'de> {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Scalar<'de>, E> {
        Ok(Number::from_f64(v).map_or(Scalar::Null, Scalar::Number))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::String(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::String(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Scalar<'de>, E> {
        Ok(Scalar::String(Cow::Owned(v)))
    }

    fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }

    fn visit_none<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
        let parent = self.index;
        while let Some(key) = map.next_key_seed(KeySeed { whole: self.whole })? {
            let Some(key) = key else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let Ok(index) = u32::try_from(self.nodes.len()) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let whole_member = self.whole;
            let whole = !whole_member && WHOLE.contains(&&*key);
            self.nodes.push(Node {
                parent,
                key,
                value: Scalar::Null,
            });
            let value = if whole_member {
                // A member of a whole object: a scalar kept, nothing inside.
                map.next_value_seed(Shallow)?
            } else {
                map.next_value_seed(Sparse {
                    nodes: self.nodes,
                    index,
                    whole,
                })?
            };
            if let Some(node) = self.nodes.get_mut(index as usize) {
                node.value = value;
            }
        }
        Ok(Scalar::Object)
    }
}

/// A member of a whole object: a string or number kept, the type alone of anything
/// else.
struct Shallow;

impl<'de> DeserializeSeed<'de> for Shallow {
    type Value = Scalar<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Scalar<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Shallow {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Scalar<'de>, E> {
        Ok(Number::from_f64(v).map_or(Scalar::Null, Scalar::Number))
    }

    // Strings are kept (borrowed unless they hold escapes): the `metadata` rule
    // measures its values.
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::String(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::String(Cow::Owned(v.to_owned())))
    }

    fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }

    fn visit_none<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Object)
    }
}

/// An object key: a kept one (or any, in a whole object), or `None`.
struct KeySeed {
    whole: bool,
}

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Option<Cow<'de, str>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(match self.whole {
            true => Some(Cow::Borrowed(v)),
            false => kept(v).map(Cow::Borrowed),
        })
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(match self.whole {
            true => Some(Cow::Owned(v.to_owned())),
            false => kept(v).map(Cow::Borrowed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Value, parse};
    use serde_json::json;

    /// The kept values as a `serde_json::Value`, to compare.
    fn to_json(v: Value<'_>) -> serde_json::Value {
        match v {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => b.into(),
            Value::Number(n) => serde_json::Value::Number(n.clone()),
            Value::String(s) => s.into(),
            Value::Array => json!([]),
            Value::Object(o) => serde_json::Value::Object(
                o.entries()
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), to_json(v)))
                    .collect(),
            ),
        }
    }

    fn parsed(bytes: &[u8]) -> Option<serde_json::Value> {
        parse(bytes).map(|doc| to_json(doc.root()))
    }

    #[test]
    fn keeps_only_the_fields_read() {
        let v = parsed(
            br#"{"amount":{"value":1000,"currency":"NOK","x":[1,2]},"paymentDescription":"long","orderLines":[{"amount":1}],"reference":"r","isApp":true,"v":1.5,"merchantInfo":{"merchantSerialNumber":123456}}"#,
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"amount":{"value":1000,"currency":"NOK"},"paymentDescription":"long","reference":"r","isApp":true,"merchantInfo":{"merchantSerialNumber":123456}})
        );
        assert_eq!(
            parsed(br#"{"amount":{"value":10.5}}"#).unwrap(),
            json!({"amount":{"value":10.5}})
        );
        assert_eq!(parsed(br#"{"amount":[1]}"#).unwrap(), json!({"amount":[]}));
        // Metadata members: every key, strings and numbers whole (the rule measures
        // them), the type only of anything else.
        assert_eq!(
            parsed(br#"{"metadata":{"b":2,"a":"1","c":{"d":1},"e\u00e6":[1]}}"#).unwrap(),
            json!({"metadata":{"a":"1","b":2,"c":{},"eæ":[]}})
        );
        assert_eq!(
            parsed(br#"{"reference":"a\"b\u00e6"}"#).unwrap(),
            json!({"reference":"a\"bæ"})
        );
        assert_eq!(
            parsed(br#"{"value":-5,"currency":null}"#).unwrap(),
            json!({"value":-5,"currency":null})
        );
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value() {
        let doc = parse(br#"{"amount":{"value":1},"amount":{"currency":"NOK"},"metadata":{"a":1,"a":{},"b":2}}"#).unwrap();
        let root = doc.root();
        assert!(root.get("amount").unwrap().get("value").is_none());
        assert_eq!(
            root.get("amount")
                .unwrap()
                .get("currency")
                .unwrap()
                .as_str(),
            Some("NOK")
        );
        let Some(Value::Object(metadata)) = root.get("metadata") else {
            panic!("metadata is an object");
        };
        assert_eq!(metadata.entries().len(), 2);
        assert!(matches!(metadata.entries()[0], ("a", Value::Object(_))));
    }

    #[test]
    fn rejects_invalid_json() {
        for bad in [&b"{"[..], b"{\"a\":}", b"{} x", b"", b"{\"a\":1,}", b"\xff"] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
        let deep = format!("{}{}", "{\"amount\":".repeat(1000), "}".repeat(1000));
        assert!(parse(deep.as_bytes()).is_none());
    }
}
