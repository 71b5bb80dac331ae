//! The events: [`EPaymentEvent`], and what a verified request carries.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};

use crate::Msn;

/// The `name` of an ePayment event.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
#[non_exhaustive]
pub enum EventName {
    /// `CREATED` (`epayments.payment.created.v1`).
    Created,
    /// `ABORTED`: the user cancelled in the app.
    Aborted,
    /// `EXPIRED`: the user did not act in time.
    Expired,
    /// `CANCELLED`: the merchant cancelled.
    Cancelled,
    /// `CAPTURED`.
    Captured,
    /// `REFUNDED`.
    Refunded,
    /// `AUTHORIZED`: the user accepted, the amount is reserved.
    Authorized,
    /// `TERMINATED`.
    Terminated,
    /// A name this version does not know, kept as sent.
    Other(String),
}

impl EventName {
    /// The name as sent, e.g. `AUTHORIZED`.
    pub fn as_str(&self) -> &str {
        match self {
            EventName::Created => "CREATED",
            EventName::Aborted => "ABORTED",
            EventName::Expired => "EXPIRED",
            EventName::Cancelled => "CANCELLED",
            EventName::Captured => "CAPTURED",
            EventName::Refunded => "REFUNDED",
            EventName::Authorized => "AUTHORIZED",
            EventName::Terminated => "TERMINATED",
            EventName::Other(name) => name,
        }
    }

    /// The Webhooks API event type, e.g. `epayments.payment.authorized.v1`.
    pub fn event_type(&self) -> String {
        format!(
            "epayments.payment.{}.v1",
            self.as_str().to_ascii_lowercase()
        )
    }
}

impl From<String> for EventName {
    fn from(name: String) -> Self {
        match name.as_str() {
            "CREATED" => EventName::Created,
            "ABORTED" => EventName::Aborted,
            "EXPIRED" => EventName::Expired,
            "CANCELLED" => EventName::Cancelled,
            "CAPTURED" => EventName::Captured,
            "REFUNDED" => EventName::Refunded,
            "AUTHORIZED" => EventName::Authorized,
            "TERMINATED" => EventName::Terminated,
            _ => EventName::Other(name),
        }
    }
}

impl From<EventName> for String {
    fn from(name: EventName) -> Self {
        match name {
            EventName::Other(name) => name,
            known => known.as_str().to_owned(),
        }
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount in minor units (øre, cent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Amount {
    /// `NOK`, `DKK`, `EUR`.
    pub currency: String,
    /// Minor units: `49900` is 499.00.
    pub value: i64,
}

/// An ePayment webhook event, as documented for the ePayment API's webhooks.
/// Passed on as a request extension by [`WebhookLayer`](super::WebhookLayer)
/// once the request is verified and its body parses as one.
///
/// ```
/// use tower_vipps::webhooks::{EPaymentEvent, EventName};
///
/// let event: EPaymentEvent = serde_json::from_str(r#"{
///     "msn": "123456", "reference": "acme-order-1001", "pspReference": "7686f7788898767977",
///     "name": "AUTHORIZED", "amount": {"currency": "NOK", "value": 49900},
///     "timestamp": "2023-08-14T12:17:39.432Z", "idempotencyKey": null, "success": true
/// }"#)?;
/// assert_eq!(event.name, EventName::Authorized);
/// assert_eq!(event.merchant_serial_number().map(|m| m.get()), Some(123456));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct EPaymentEvent {
    /// The merchant serial number of the sales unit, as sent (a string).
    #[serde(deserialize_with = "string_or_number")]
    pub msn: String,
    /// The payment's reference.
    pub reference: String,
    /// The PSP reference of the operation.
    pub psp_reference: String,
    /// What happened.
    pub name: EventName,
    /// The amount of the operation.
    pub amount: Amount,
    /// When it happened (RFC 3339).
    pub timestamp: String,
    /// The `Idempotency-Key` of the operation that caused it, if any.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Whether the operation succeeded.
    pub success: bool,
}

impl EPaymentEvent {
    /// The MSN, when `msn` is a valid one: route by it.
    pub fn merchant_serial_number(&self) -> Option<Msn> {
        self.msn.parse().ok()
    }

    /// What identifies this event across redeliveries.
    pub fn delivery_key(&self) -> DeliveryKey {
        DeliveryKey(format!(
            "epayment:{}:{}:{}:{}:{}:{}",
            self.msn,
            self.reference,
            self.psp_reference,
            self.name,
            self.idempotency_key.as_deref().unwrap_or("-"),
            self.timestamp
        ))
    }
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Number(u64),
    }
    Ok(match Either::deserialize(d)? {
        Either::Text(s) => s,
        Either::Number(n) => n.to_string(),
    })
}

/// What identifies one event across redeliveries: for an ePayment event its MSN,
/// reference, `pspReference`, name, `idempotencyKey` and timestamp; for any other
/// body, the SHA-256 of its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryKey(pub(crate) String);

impl DeliveryKey {
    /// A key from any text (for your own [`DeliveryStore`](super::DeliveryStore)
    /// tests).
    pub fn new(key: impl Into<String>) -> DeliveryKey {
        DeliveryKey(key.into())
    }

    /// The key as text (e.g. a Redis key suffix).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeliveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether this event was already processed: a request extension set by
/// [`WebhookLayer`](super::WebhookLayer). Duplicates are passed on, not dropped,
/// so the handler decides (answer `2xx` without acting again, usually).
///
/// An event counts as processed once the inner service answered it with `2xx`;
/// a delivery answered `500` is delivered again as [`Delivery::New`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// Not processed before (as far as the store remembers).
    New,
    /// Processed before: a redelivery.
    Duplicate,
}

/// The verified body bytes, exactly as received and hashed: a request extension
/// set by [`WebhookLayer`](super::WebhookLayer) (the request's body holds them
/// too).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedBody(pub Bytes);

/// Which configured secret verified the request: a request extension set by
/// [`WebhookLayer`](super::WebhookLayer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedBy {
    /// The position of the secret, in the order they were configured.
    pub index: usize,
    /// The MSN it was configured for, if any.
    pub msn: Option<Msn>,
}
