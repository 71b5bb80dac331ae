//! `PATCH /recurring/v3/agreements/{agreementId}` (`UpdateAgreementPatchV3`, body
//! `PatchAgreementV3`) → `204`.
//!
//! Every property is optional. Each is checked against `recurring.yaml`
//! (2.6.17): `productName` at most 45 characters, `productDescription` at most
//! 100, `merchantAgreementUrl` at most 1024 (an `https` URL, as on a draft that
//! is not `isApp`),
//! `externalId` 1 to 64, `status` only `STOPPED`, `pricing.amount` at least 100,
//! `pricing.suggestedMaxAmount` 100 to 2,000,000, and `interval`:
//!
//! ```yaml
//! interval:
//!   type: object
//!   description: The interval is specified by the `type` and `period` properties.
//!     When the type is `RECURRING`, then the property `period` is required.
//!   properties:
//!     type: {type: string, default: RECURRING, enum: [RECURRING]}
//!     period: {$ref: '#/components/schemas/TimePeriod'}   # unit, count: required
//! ```
//!
//! so an `interval` needs a `period` (its `type` can only be `RECURRING`, the
//! default). Then the Recurring guide ("Update an agreement", "Stop an
//! agreement"): an unknown agreement is `404`; a `STOPPED` agreement cannot be
//! updated (`illegal-agreement-update`, "Might be stopped or pending": the
//! guide lets a pending agreement be stopped, so only a stopped one is
//! refused); stopping takes no other change ("Attempts at changing other
//! properties while stopping an agreement will result in a `400 Bad
//! Request`"), and cancels the charges that are `DUE`, `PENDING` or
//! `RESERVED`; `amount` applies to a `LEGACY` agreement and
//! `suggestedMaxAmount` to a `VARIABLE` one, the other is ignored (the guide's
//! own example sends both).

use http::Response;
use serde_json::{Map, Value};

use super::{
    Agreements, Call, EXTERNAL_ID, JSON_UTF8, Status, external_id, illegal_update, invalid,
    not_found, string, time_period,
};
use crate::emulator::bodies::{self, Body};
use crate::emulator::epayment::valid_url;

/// What a checked `PatchAgreementV3` changes.
struct Patch {
    product_name: Option<String>,
    product_description: Option<String>,
    merchant_agreement_url: Option<String>,
    external_id: Option<String>,
    stop: bool,
    amount: Option<u64>,
    suggested_max_amount: Option<u64>,
    interval: Option<(String, u64)>,
}

impl Patch {
    /// Whether it changes anything but the status.
    fn changes_more_than_status(&self) -> bool {
        self.product_name.is_some()
            || self.product_description.is_some()
            || self.merchant_agreement_url.is_some()
            || self.external_id.is_some()
            || self.amount.is_some()
            || self.suggested_max_amount.is_some()
            || self.interval.is_some()
    }
}

impl Agreements {
    pub(super) fn update(&mut self, call: &Call<'_>, key: &str) -> Response<Body> {
        let instance = call.instance;
        let body = match call.json() {
            Ok(body) => body,
            Err(res) => return res,
        };
        let patch = match patch(&body, call) {
            Ok(patch) => patch,
            Err(res) => return res,
        };
        if patch.stop && patch.changes_more_than_status() {
            return invalid(
                instance,
                "status",
                "no other property can change when an agreement is stopped",
            );
        }
        let Some(agreement) = self.agreements.get_mut(&call.agreement_key()) else {
            return not_found(instance, "Agreement");
        };
        if agreement.status == Status::Stopped {
            return illegal_update(instance, "Cannot modify an agreement which is stopped.");
        }
        if patch.stop {
            agreement.status = Status::Stopped;
            agreement.stop = Some(call.now);
            for charge in &mut agreement.charges {
                if matches!(charge.status, "DUE" | "PENDING" | "RESERVED") {
                    charge.status = "CANCELLED";
                    let amount = charge.amount;
                    charge.event("CANCEL", amount, call.now, key);
                }
            }
            return bodies::respond(204, JSON_UTF8, "");
        }
        if let Some(name) = patch.product_name {
            agreement.product_name = name;
        }
        if let Some(description) = patch.product_description {
            agreement.product_description = Some(description);
        }
        if let Some(url) = patch.merchant_agreement_url {
            agreement.merchant_agreement_url = url;
        }
        if let Some(external) = patch.external_id {
            agreement.external_id = Some(external);
        }
        match (agreement.variable, patch.amount, patch.suggested_max_amount) {
            (false, Some(amount), _) | (true, _, Some(amount)) => agreement.amount = amount,
            _ => {}
        }
        if let Some(interval) = patch.interval {
            agreement.interval = interval;
        }
        bodies::respond(204, JSON_UTF8, "")
    }
}

/// The body checked against `PatchAgreementV3`.
fn patch(body: &Map<String, Value>, call: &Call<'_>) -> Result<Patch, Response<Body>> {
    let instance = call.instance;
    let product_name = string(body, "productName", 45)
        .map_err(|()| invalid(instance, "productName", "size must be at most 45"))?;
    let product_description = string(body, "productDescription", 100)
        .map_err(|()| invalid(instance, "productDescription", "size must be at most 100"))?;
    let merchant_agreement_url = match string(body, "merchantAgreementUrl", 1024) {
        Ok(None) => None,
        Ok(Some(u)) if valid_url(&u, call.environment) => Some(u),
        _ => {
            return Err(invalid(
                instance,
                "merchantAgreementUrl",
                "must be a valid https URL",
            ));
        }
    };
    let Ok(external_id) = external_id(body, "externalId") else {
        return Err(invalid(instance, "externalId", EXTERNAL_ID));
    };
    let stop = match body.get("status") {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) if s == "STOPPED" => true,
        Some(_) => return Err(invalid(instance, "status", "must be STOPPED")),
    };
    let (amount, suggested_max_amount) = match body.get("pricing") {
        None | Some(Value::Null) => (None, None),
        Some(Value::Object(pricing)) => (
            price(pricing, "amount", i32::MAX as u64, instance)?,
            price(pricing, "suggestedMaxAmount", 2_000_000, instance)?,
        ),
        Some(_) => return Err(invalid(instance, "pricing", "must be an object")),
    };
    // A `null` is taken as absent, as for every other property here: nothing in
    // `PatchAgreementV3` is required, and the emulator reads `null` as a JSON
    // binder reads a non-nullable property it does not require.
    let interval = match body.get("interval") {
        None | Some(Value::Null) => None,
        Some(Value::Object(interval)) => {
            match interval.get("type") {
                None | Some(Value::Null) => {}
                Some(Value::String(t)) if t == "RECURRING" => {}
                Some(_) => return Err(invalid(instance, "interval.type", "must be RECURRING")),
            }
            match interval.get("period") {
                Some(Value::Object(period)) => {
                    Some(time_period(period, instance, "interval.period")?)
                }
                None | Some(Value::Null) => {
                    return Err(invalid(
                        instance,
                        "interval.period",
                        "must not be null when interval.type is RECURRING",
                    ));
                }
                Some(_) => return Err(invalid(instance, "interval.period", "must be an object")),
            }
        }
        Some(_) => return Err(invalid(instance, "interval", "must be an object")),
    };
    Ok(Patch {
        product_name,
        product_description,
        merchant_agreement_url,
        external_id,
        stop,
        amount,
        suggested_max_amount,
        interval,
    })
}

/// An optional `pricing` amount: an integer from 100 to `max`.
fn price(
    pricing: &Map<String, Value>,
    field: &str,
    max: u64,
    instance: &str,
) -> Result<Option<u64>, Response<Body>> {
    match pricing.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(a) if (100..=max).contains(&a) => Ok(Some(a)),
            _ => Err(invalid(
                instance,
                &format!("pricing.{field}"),
                &format!("must be an integer from 100 to {max}"),
            )),
        },
    }
}
