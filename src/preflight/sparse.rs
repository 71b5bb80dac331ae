//! A sparse JSON parse: only the fields the rules read are kept; every other value
//! is validated and skipped without allocating (a long `paymentDescription`, order
//! lines, metadata). Arrays are skipped: no rule looks into one.

use std::fmt;

use serde::Deserializer;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

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
    "count",
    "unit",
    "transactionText",
    "url",
];

/// Kept keys whose value is kept whole, every key of it: `metadata` (the ePayment
/// rules count its properties).
const WHOLE: &[&str] = &["metadata"];

/// Parses a JSON document keeping only the [`KEPT`] keys of objects; `None` if it
/// is not valid JSON.
pub(crate) fn parse(bytes: &[u8]) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Sparse.deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(value)
}

struct Sparse;

impl<'de> DeserializeSeed<'de> for Sparse {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Sparse {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::Array(Vec::new()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<Key>()? {
            match key.0 {
                Some(name) if WHOLE.contains(&name) => {
                    let value = map.next_value::<Value>()?;
                    out.insert(name.to_owned(), value);
                }
                Some(name) => {
                    let value = map.next_value_seed(Sparse)?;
                    out.insert(name.to_owned(), value);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// An object key: `Some` of the kept name, `None` for any other (not copied).
struct Key(Option<&'static str>);

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct KeyVisitor;

        impl Visitor<'_> for KeyVisitor {
            type Value = Key;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }

            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(Key(KEPT.iter().copied().find(|k| *k == v)))
            }
        }

        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::parse;
    use serde_json::json;

    #[test]
    fn keeps_only_the_fields_read() {
        let v = parse(
            br#"{"amount":{"value":1000,"currency":"NOK","x":[1,2]},"paymentDescription":"long","orderLines":[{"amount":1}],"reference":"r","isApp":true,"v":1.5,"merchantInfo":{"merchantSerialNumber":123456}}"#,
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"amount":{"value":1000,"currency":"NOK"},"paymentDescription":"long","reference":"r","isApp":true,"merchantInfo":{"merchantSerialNumber":123456}})
        );
        assert_eq!(
            parse(br#"{"amount":{"value":10.5}}"#).unwrap(),
            json!({"amount":{"value":10.5}})
        );
        assert_eq!(parse(br#"{"amount":[1]}"#).unwrap(), json!({"amount":[]}));
        assert_eq!(
            parse(br#"{"metadata":{"a":"1","b":2,"c":{"d":1}}}"#).unwrap(),
            json!({"metadata":{"a":"1","b":2,"c":{"d":1}}})
        );
        assert_eq!(
            parse(br#"{"reference":"a\"b\u00e6"}"#).unwrap(),
            json!({"reference":"a\"bæ"})
        );
        assert_eq!(
            parse(br#"{"value":-5,"currency":null}"#).unwrap(),
            json!({"value":-5,"currency":null})
        );
    }

    #[test]
    fn rejects_invalid_json() {
        for bad in [&b"{"[..], b"{\"a\":}", b"{} x", b"", b"{\"a\":1,}", b"\xff"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        // Deep nesting is bounded by serde_json's recursion limit, not a crash.
        let deep = format!("{}{}", "{\"amount\":".repeat(1000), "}".repeat(1000));
        assert_eq!(parse(deep.as_bytes()), None);
    }
}
