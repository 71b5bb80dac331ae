//! Checkout v3 rules from the specification (`checkout.yaml`) and the Checkout
//! quick start; each function names its source.

use super::headers::Known;

use super::Facts;
use super::body::{Kind, at, known};
use super::epayment::text_problem;
use crate::context::Api;
use crate::{Cause, Diagnosis};

/// A Checkout call without `client_id`, `client_secret` or
/// `Merchant-Serial-Number`: Checkout authenticates with these headers, not an
/// access token (`checkout.yaml` POST /session and GET /session/{reference}
/// headers, and the quick start
/// <https://developer.vippsmobilepay.com/docs/APIs/checkout-api/checkout-api-quick-start/>,
/// which sends all three). A request with `Authorization` instead is left
/// alone: some official plugins read sessions with a bearer token.
pub(super) fn credentials(f: &Facts<'_>) -> Option<Diagnosis> {
    if f.api != Api::Checkout || f.operation.is_none() || f.headers.has(Known::AUTHORIZATION) {
        return None;
    }
    let missing: Vec<&str> = [Known::CLIENT_ID, Known::CLIENT_SECRET]
        .into_iter()
        .filter(|h| !f.headers.has(*h))
        .map(Known::name)
        .collect();
    if !missing.is_empty() {
        return Some(
            Diagnosis::new(Cause::MissingClientCredentials).with_evidence(format!(
                "no `{}` header on the Checkout call",
                missing.join("` or `")
            )),
        );
    }
    if !f.headers.has(Known::MERCHANT_SERIAL_NUMBER) {
        return Some(
            Diagnosis::new(Cause::MissingMsnHeader)
                .with_evidence("no `Merchant-Serial-Number` header on the Checkout call"),
        );
    }
    None
}

/// `transaction.paymentDescription` missing or not 3 to 100 characters
/// (`checkout.yaml` POST /session `transaction`: `paymentDescription` required,
/// `minLength: 3`, `maxLength: 100`). The `reference` (8 to 50 of
/// `[-a-zA-Z0-9]`) is the `InvalidReference` rule's.
pub(super) fn payment_description(f: &Facts<'_>) -> Option<Diagnosis> {
    let (Kind::CheckoutSession, json) = known(f)? else {
        return None;
    };
    let problem = match at(json, "transaction.paymentDescription") {
        None => "is missing: it is required".to_owned(),
        Some(v) => text_problem(v, 3, 100)?,
    };
    Some(
        Diagnosis::new(Cause::InvalidDescription)
            .with_evidence(format!("`transaction.paymentDescription` {problem}")),
    )
}
