//! eCom v2 rules from the specification (`ecom-v2.yaml`, 2.0.3); each function
//! names its source.

use super::headers::Known;
use super::sparse::Value;

use super::Facts;
use super::body::{Kind, at, known};
use super::epayment::text_problem;
use crate::context::Api;
use crate::{Cause, Diagnosis};

/// No `X-Request-Id` on an eCom capture or refund: `ecom-v2.yaml`
/// capturePaymentUsingPOST and refundPaymentUsingPOST declare the header
/// `required: true`.
pub(super) fn request_id(f: &Facts<'_>) -> Option<Diagnosis> {
    if f.api != Api::ECom {
        return None;
    }
    let op @ ("capture" | "refund") = f.operation? else {
        return None;
    };
    let what = format!("the eCom {op} call");
    let evidence = super::missing_header(&f.headers, Known::X_REQUEST_ID, "X-Request-Id", &what)?;
    Some(Diagnosis::new(Cause::MissingRequestId).with_evidence(evidence))
}

/// `transaction.transactionText` missing where required (initiate, cancel) or
/// longer than 100 characters (`ecom-v2.yaml` initiatePaymentV3UsingPOST,
/// cancelPaymentRequestUsingPUT and `#/components/schemas/Transaction`:
/// `maxLength: 100`).
pub(super) fn transaction_text(f: &Facts<'_>) -> Option<Diagnosis> {
    let (kind, json) = known(f)?;
    let required = match kind {
        Kind::EComInitiate | Kind::EComCancel => true,
        Kind::EComAdjust => false,
        _ => return None,
    };
    let problem = match at(json, "transaction.transactionText") {
        None | Some(Value::Null) if required => "is missing: it is required".to_owned(),
        None => return None,
        Some(v) => text_problem(v, 0, 100)?,
    };
    Some(
        Diagnosis::new(Cause::InvalidDescription)
            .with_evidence(format!("`transaction.transactionText` {problem}")),
    )
}

/// `merchantInfo.merchantSerialNumber` not 5 or 6 digits (`ecom-v2.yaml`
/// `merchantInfo.merchantSerialNumber`: `pattern: ^\d{5,}$`, `minLength: 5`,
/// `maxLength: 6`). The spec's type is string; a JSON number of 5 or 6 digits
/// is accepted too, since the API reads it.
pub(super) fn body_msn(f: &Facts<'_>) -> Option<Diagnosis> {
    let (kind, json) = known(f)?;
    if !matches!(
        kind,
        Kind::EComInitiate | Kind::EComAdjust | Kind::EComCancel
    ) {
        return None;
    }
    let text = match at(json, "merchantInfo.merchantSerialNumber")? {
        Value::Null => return None,
        Value::String(s) => s.to_owned(),
        Value::Number(n) => n.to_string(),
        _ => {
            return Some(
                Diagnosis::new(Cause::InvalidBodyMsn)
                    .with_evidence("`merchantInfo.merchantSerialNumber` is not a string"),
            );
        }
    };
    let ok = (5..=6).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
    (!ok).then(|| {
        Diagnosis::new(Cause::InvalidBodyMsn).with_evidence(format!(
            "`merchantInfo.merchantSerialNumber` has {} characters; the eCom API takes 5 or 6 digits",
            text.chars().count()
        ))
    })
}
