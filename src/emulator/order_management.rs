//! Order Management API v2: `POST /order-management/v2/{paymentType}/receipts/{orderId}`,
//! `PUT /order-management/v2/{paymentType}/categories/{orderId}` and
//! `GET /order-management/v2/{paymentType}/{orderId}`.
//!
//! Shapes from the official specification (vippsas/vipps-order-management-api,
//! `docs/swagger.yaml`, version 2.1; guide:
//! <https://developer.vippsmobilepay.com/docs/APIs/order-management-api/>):
//!
//! - credentials: `Authorization: Bearer` access token, `Ocp-Apim-Subscription-Key`
//!   and `Merchant-Serial-Number`, checked by the same code as ePayment's;
//! - `paymentType` is `ECOM` (eCom and ePayment payments) or `RECURRING`;
//! - a receipt (`orderLines` and `bottomLine`) can be added once: a second one is
//!   `409` (the API's FAQ: "It is only possible to do POST receipts once");
//! - a category replaces the one before (`PUT`, `200`);
//! - success bodies are the new id as a JSON string; errors are the spec's
//!   `ErrorResponse` (`title`, `detail`, `instance`, `invalidParams`).
//!
//! The emulator checks what the specification states (required fields, types,
//! enums, the `orderId` pattern, `quantity`'s pattern and length, tax between 0 and
//! 100 % and that one of `taxPercentage` and `taxRate` is set) and nothing more.

use std::collections::HashMap;

use bytes::Bytes;
use http::request::Parts;
use http::{Method, Response};
use serde_json::{Map, Value, json};

use super::Shared;
use super::bodies::{self, Body};
use crate::{Environment, Msn};

/// The path prefix of the Order Management API v2.
const PREFIX: &str = "/order-management/v2/";

/// What merchants added to their orders, per environment, MSN, payment type and
/// order id.
#[derive(Default)]
pub(crate) struct Orders {
    by_order: HashMap<(Environment, Msn, PaymentKind, String), Order>,
}

#[derive(Default)]
struct Order {
    category: Option<Value>,
    receipt: Option<Value>,
}

/// Whether a path belongs to the Order Management API v2.
pub(crate) fn handles(path: &str) -> bool {
    path.starts_with(PREFIX)
}

/// Answers an authenticated Order Management call for `msn`; `known` says whether
/// an order of that payment type and id exists for the sales unit.
pub(crate) fn answer(
    shared: &Shared,
    environment: Environment,
    msn: Msn,
    parts: &Parts,
    body: &Bytes,
    known: impl Fn(PaymentKind, &str) -> bool,
) -> Response<Body> {
    let instance = bodies::trace_id();
    let Some(rest) = parts.uri.path().strip_prefix(PREFIX) else {
        return bodies::respond(404, bodies::JSON, bodies::NOT_FOUND);
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let (payment_type, op, order_id) = match (&parts.method, segments.as_slice()) {
        (&Method::POST, [t, "receipts", id]) => (*t, Op::Receipt, *id),
        (&Method::PUT, [t, "categories", id]) => (*t, Op::Category, *id),
        (&Method::GET, [t, id]) => (*t, Op::Get, *id),
        _ => return bodies::respond(404, bodies::JSON, bodies::NOT_FOUND),
    };
    // ASP.NET binds the enum without regard to case; the official WooCommerce
    // plugin writes `ecom`.
    let kind = if payment_type.eq_ignore_ascii_case("ECOM") {
        PaymentKind::Ecom
    } else if payment_type.eq_ignore_ascii_case("RECURRING") {
        PaymentKind::Recurring
    } else {
        return invalid(
            &instance,
            "paymentType",
            &format!("The value '{payment_type}' is not valid. Use ECOM or RECURRING."),
        );
    };
    if !valid_order_id(order_id) {
        return invalid(
            &instance,
            "orderId",
            "The field orderId must match the regular expression '^[0-9A-Za-z-_\\.]+$'.",
        );
    }
    if !known(kind, order_id) {
        return not_found(&instance, order_id);
    }
    let Ok(mut orders) = shared.orders.lock() else {
        return bodies::respond(500, bodies::JSON, "{}");
    };
    let key = (environment, msn, kind, order_id.to_owned());
    match op {
        Op::Get => match orders.by_order.get(&key) {
            Some(order) => {
                let mut out = Map::new();
                if let Some(category) = &order.category {
                    out.insert("category".into(), category.clone());
                }
                if let Some(receipt) = &order.receipt {
                    out.insert("receipt".into(), receipt.clone());
                }
                json(200, &Value::Object(out))
            }
            None => not_found(&instance, order_id),
        },
        Op::Receipt => {
            let receipt = match parse(body).and_then(|v| check_receipt(&v).map(|()| v)) {
                Ok(receipt) => receipt,
                Err((name, reason)) => return invalid(&instance, &name, &reason),
            };
            let order = orders.by_order.entry(key).or_default();
            if order.receipt.is_some() {
                return error(
                    409,
                    "Conflict",
                    &format!("Order lines have already been added to order {order_id}"),
                    &instance,
                    None,
                );
            }
            order.receipt = Some(receipt);
            json(201, &Value::String(uuid::Uuid::new_v4().to_string()))
        }
        Op::Category => {
            let category = match parse(body).and_then(|v| check_category(&v).map(|()| v)) {
                Ok(category) => category,
                Err((name, reason)) => return invalid(&instance, &name, &reason),
            };
            orders.by_order.entry(key).or_default().category = Some(category);
            json(200, &Value::String(uuid::Uuid::new_v4().to_string()))
        }
    }
}

/// The kind of payment an order id names (the path's `paymentType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum PaymentKind {
    /// An ePayment or eCom payment (`ECOM`).
    Ecom,
    /// A Recurring charge (`RECURRING`).
    Recurring,
}

enum Op {
    Receipt,
    Category,
    Get,
}

type Invalid = (String, String);

fn parse(body: &Bytes) -> Result<Value, Invalid> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(("$".into(), "The JSON value must be an object.".into())),
        Err(e) => Err(("$".into(), format!("The JSON value could not be read: {e}"))),
    }
}

fn valid_order_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn required<'a>(obj: &'a Value, path: &str, field: &str) -> Result<&'a Value, Invalid> {
    match obj.get(field) {
        Some(Value::Null) | None => Err((
            format!("{path}{field}"),
            format!("The {field} field is required."),
        )),
        Some(v) => Ok(v),
    }
}

fn integer(v: &Value, name: &str, min: Option<i64>, max: Option<i64>) -> Result<(), Invalid> {
    let Some(n) = v.as_i64() else {
        return Err((name.into(), format!("The field {name} must be an integer.")));
    };
    if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
        return Err((
            name.into(),
            format!(
                "The field {name} must be between {} and {}.",
                min.unwrap_or(i64::MIN),
                max.unwrap_or(i64::MAX)
            ),
        ));
    }
    Ok(())
}

/// An optional, nullable integer.
fn optional_integer(
    obj: &Value,
    path: &str,
    field: &str,
    min: Option<i64>,
    max: Option<i64>,
) -> Result<bool, Invalid> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(v) => integer(v, &format!("{path}{field}"), min, max).map(|()| true),
    }
}

fn string<'a>(v: &'a Value, name: &str) -> Result<&'a str, Invalid> {
    v.as_str()
        .ok_or_else(|| (name.into(), format!("The field {name} must be a string.")))
}

fn one_of(v: &Value, name: &str, allowed: &[&str]) -> Result<(), Invalid> {
    match v {
        // The enums are nullable in the specification.
        Value::Null => Ok(()),
        Value::String(s) if allowed.contains(&s.as_str()) => Ok(()),
        _ => Err((
            name.into(),
            format!("The field {name} must be one of {}.", allowed.join(", ")),
        )),
    }
}

fn check_receipt(receipt: &Value) -> Result<(), Invalid> {
    let lines = required(receipt, "", "orderLines")?;
    let Some(lines) = lines.as_array() else {
        return Err((
            "orderLines".into(),
            "The field orderLines must be an array.".into(),
        ));
    };
    if lines.is_empty() {
        return Err((
            "orderLines".into(),
            "The field orderLines must have at least 1 item.".into(),
        ));
    }
    for (i, line) in lines.iter().enumerate() {
        let path = format!("orderLines[{i}].");
        if !line.is_object() {
            return Err((path, "An order line must be an object.".into()));
        }
        string(required(line, &path, "name")?, &format!("{path}name"))?;
        string(required(line, &path, "id")?, &format!("{path}id"))?;
        for field in ["totalAmount", "totalAmountExcludingTax", "totalTaxAmount"] {
            integer(
                required(line, &path, field)?,
                &format!("{path}{field}"),
                None,
                None,
            )?;
        }
        let percentage = optional_integer(line, &path, "taxPercentage", Some(0), Some(100))?;
        let rate = optional_integer(line, &path, "taxRate", Some(0), Some(10_000))?;
        if !percentage && !rate {
            return Err((
                format!("{path}taxRate"),
                "Either taxRate or taxPercentage must be set.".into(),
            ));
        }
        optional_integer(line, &path, "discount", Some(0), None)?;
        if let Some(info) = line.get("unitInfo").filter(|v| !v.is_null()) {
            let path = format!("{path}unitInfo.");
            if !info.is_object() {
                return Err((path, "unitInfo must be an object.".into()));
            }
            // `unitPrice` is required and nullable.
            if info.get("unitPrice").is_none() {
                return Err((
                    format!("{path}unitPrice"),
                    "The unitPrice field is required.".into(),
                ));
            }
            optional_integer(info, &path, "unitPrice", Some(0), None)?;
            let quantity = string(
                required(info, &path, "quantity")?,
                &format!("{path}quantity"),
            )?;
            if !valid_quantity(quantity) {
                return Err((
                    format!("{path}quantity"),
                    "The field quantity must match the regular expression '^\\d+([\\.]\\d{1,8})?$' and be at most 10 characters.".into(),
                ));
            }
            if let Some(unit) = info.get("quantityUnit") {
                one_of(
                    unit,
                    &format!("{path}quantityUnit"),
                    &["PCS", "KG", "KM", "MINUTE", "LITRE", "KWH"],
                )?;
            }
        }
    }
    let bottom = receipt.get("bottomLine");
    let Some(bottom) = bottom.filter(|v| v.is_object()) else {
        return Err((
            "bottomLine".into(),
            "The bottomLine field is required.".into(),
        ));
    };
    let Some(currency) = bottom.get("currency") else {
        return Err((
            "bottomLine.currency".into(),
            "The currency field is required.".into(),
        ));
    };
    one_of(currency, "bottomLine.currency", &["NOK", "DKK", "EUR"])?;
    for field in [
        "tipAmount",
        "giftCardAmount",
        "totalTax",
        "totalDiscount",
        "shippingAmount",
    ] {
        optional_integer(bottom, "bottomLine.", field, Some(0), None)?;
    }
    Ok(())
}

fn valid_quantity(q: &str) -> bool {
    if q.is_empty() || q.len() > 10 {
        return false;
    }
    let (whole, fraction) = match q.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (q, None),
    };
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction
            .is_none_or(|f| (1..=8).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()))
}

fn check_category(order: &Value) -> Result<(), Invalid> {
    let Some(category) = order.get("category") else {
        return Err(("category".into(), "The category field is required.".into()));
    };
    one_of(
        category,
        "category",
        &[
            "GENERAL",
            "RECEIPT",
            "ORDER_CONFIRMATION",
            "DELIVERY",
            "TICKET",
            "BOOKING",
        ],
    )?;
    let url = string(required(order, "", "orderDetailsUrl")?, "orderDetailsUrl")?;
    let absolute = url
        .parse::<http::Uri>()
        .is_ok_and(|u| u.scheme().is_some() && u.host().is_some_and(|h| !h.is_empty()));
    if !absolute {
        return Err((
            "orderDetailsUrl".into(),
            "The orderDetailsUrl field is not a valid fully-qualified http, https, or ftp URL."
                .into(),
        ));
    }
    if let Some(id) = order.get("imageId").filter(|v| !v.is_null()) {
        let id = string(id, "imageId")?;
        if id.len() > 128 || !valid_order_id(id) {
            return Err((
                "imageId".into(),
                "The field imageId must match the regular expression '^[0-9A-Za-z-_\\.]+$' and be at most 128 characters.".into(),
            ));
        }
    }
    Ok(())
}

fn json(status: u16, value: &Value) -> Response<Body> {
    bodies::respond(
        status,
        bodies::JSON,
        serde_json::to_vec(value).unwrap_or_default(),
    )
}

/// The specification's `ErrorResponse`.
fn error(
    status: u16,
    title: &str,
    detail: &str,
    instance: &str,
    invalid: Option<(&str, &str)>,
) -> Response<Body> {
    let mut body = json!({
        "type": format!("https://httpstatuses.io/{status}"),
        "title": title,
        "detail": detail,
        "instance": instance,
    });
    if let (Some((name, reason)), Some(map)) = (invalid, body.as_object_mut()) {
        map.insert(
            "invalidParams".into(),
            json!([{ "name": name, "reason": reason }]),
        );
    }
    json(status, &body)
}

fn invalid(instance: &str, name: &str, reason: &str) -> Response<Body> {
    error(
        400,
        "One or more validation errors occurred.",
        "BadRequest",
        instance,
        Some((name, reason)),
    )
}

fn not_found(instance: &str, order_id: &str) -> Response<Body> {
    error(
        404,
        "Not Found",
        &format!("Order {order_id} was not found"),
        instance,
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt() -> Value {
        json!({
            "orderLines": [{
                "name": "socks", "id": "line_item_1", "totalAmount": 1000,
                "totalAmountExcludingTax": 800, "totalTaxAmount": 200, "taxPercentage": 25,
                "unitInfo": {"unitPrice": 400, "quantity": "2.5", "quantityUnit": "KG"},
                "discount": 0, "productUrl": "https://example.com/store/socks",
                "isReturn": false, "isShipping": false
            }],
            "bottomLine": {"currency": "NOK", "tipAmount": 0, "posId": "pos_122",
                "barcode": {"format": "CODE 39", "data": "SC0527013501 "},
                "receiptNumber": "0527013501"}
        })
    }

    #[test]
    fn the_spec_example_receipt_passes() {
        check_receipt(&receipt()).unwrap();
        // taxRate instead of the deprecated taxPercentage.
        let mut r = receipt();
        r["orderLines"][0]
            .as_object_mut()
            .unwrap()
            .remove("taxPercentage");
        r["orderLines"][0]["taxRate"] = json!(2500);
        check_receipt(&r).unwrap();
        // unitInfo is optional, and so is quantityUnit.
        let mut r = receipt();
        r["orderLines"][0]
            .as_object_mut()
            .unwrap()
            .remove("unitInfo");
        check_receipt(&r).unwrap();
    }

    #[test]
    fn what_the_spec_refuses() {
        type Edit = fn(&mut Value);
        let cases: [(&str, Edit); 9] = [
            ("orderLines", |r| r["orderLines"] = json!([])),
            ("bottomLine", |r| {
                r.as_object_mut().unwrap().remove("bottomLine");
            }),
            ("bottomLine.currency", |r| {
                r["bottomLine"]["currency"] = json!("SEK")
            }),
            ("orderLines[0].totalAmount", |r| {
                r["orderLines"][0]["totalAmount"] = json!(10.5)
            }),
            ("orderLines[0].name", |r| {
                r["orderLines"][0].as_object_mut().unwrap().remove("name");
            }),
            ("orderLines[0].taxPercentage", |r| {
                r["orderLines"][0]["taxPercentage"] = json!(101)
            }),
            ("orderLines[0].taxRate", |r| {
                r["orderLines"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("taxPercentage");
            }),
            ("orderLines[0].unitInfo.quantity", |r| {
                r["orderLines"][0]["unitInfo"]["quantity"] = json!("2,5")
            }),
            ("orderLines[0].discount", |r| {
                r["orderLines"][0]["discount"] = json!(-1)
            }),
        ];
        for (field, edit) in cases {
            let mut r = receipt();
            edit(&mut r);
            let (name, _) = check_receipt(&r).unwrap_err();
            assert_eq!(name, field);
        }
    }

    #[test]
    fn quantities_and_ids() {
        for q in ["1", "0.822", "12345678.1", "1.12345678"] {
            assert!(valid_quantity(q), "{q}");
        }
        for q in ["", "1.", ".5", "1.123456789", "12345678901", "-1", "1e3"] {
            assert!(!valid_quantity(q), "{q}");
        }
        assert!(valid_order_id("acme-shop-123.order_1"));
        assert!(!valid_order_id("a b"));
        assert!(!valid_order_id(""));
    }

    #[test]
    fn categories() {
        check_category(&json!({"category": "GENERAL", "orderDetailsUrl": "https://example.com"}))
            .unwrap();
        check_category(&json!({"category": "TICKET", "orderDetailsUrl": "https://example.com", "imageId": "socks-orange-123"}))
            .unwrap();
        for bad in [
            json!({"orderDetailsUrl": "https://example.com"}),
            json!({"category": "general", "orderDetailsUrl": "https://example.com"}),
            json!({"category": "GENERAL"}),
            json!({"category": "GENERAL", "orderDetailsUrl": "not a url"}),
            json!({"category": "GENERAL", "orderDetailsUrl": "https://example.com", "imageId": "a b"}),
        ] {
            assert!(check_category(&bad).is_err(), "{bad}");
        }
    }
}
