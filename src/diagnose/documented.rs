//! The documented error tables of each API, as declarative rows, keyed by the API
//! and (for eCom) the error group, so that the same number in two APIs or two
//! eCom groups maps to the right [`Cause`].
//!
//! Sources:
//! - eCom: the error codes table of the eCom API guide
//!   (<https://developer.vippsmobilepay.com/docs/APIs/ecom-api/vipps-ecom-api/#error-codes>,
//!   linked from `ecom-v2.yaml` `ErrorResponse.errorCode`), with its groups
//!   `Authentication`, `Payment`, `InvalidRequest`, `VippsError`, `User`,
//!   `Merchant`. A number the table does not list for the body's group is left
//!   to the message and the group (so `Merchant 51` is a merchant problem, not
//!   `Payment 51`, "cannot cancel a captured order").
//! - Recurring: the problem types of
//!   <https://developer.vippsmobilepay.com/docs/APIs/recurring-api/recurring-api-problems/>
//!   (`type` ends with `#<identifier>`).
//! - Checkout: `checkout.yaml` `CheckoutProblemDetails` (`errorCode`, `errors`),
//!   and the statuses of POST /session: 401 "Invalid credentials" (the
//!   `client_id`/`client_secret` headers), 403 "Invalid subscription or
//!   configuration", 409 "Duplicate reference".

use crate::Cause;
use crate::context::Api;

/// One row of the eCom table: the group (empty: a body without `errorGroup`),
/// the codes and the cause.
struct EcomRow {
    group: &'static str,
    codes: std::ops::RangeInclusive<u32>,
    cause: Cause,
}

const fn row(group: &'static str, from: u32, to: u32, cause: Cause) -> EcomRow {
    EcomRow {
        group,
        codes: from..=to,
        cause,
    }
}

/// The eCom error codes, by group. Rows without a group are for bodies that
/// carry no `errorGroup` (older answers): the meaning of the code in the group
/// that documents it.
static ECOM: &[EcomRow] = &[
    row("merchant", 21, 21, Cause::InvalidReference),
    row("merchant", 22, 22, Cause::InvalidPaymentState),
    row("merchant", 31, 33, Cause::NotAllowedForMerchant),
    row("merchant", 34, 34, Cause::IdempotencyConflict),
    row("merchant", 35, 35, Cause::ReferenceNotFound),
    row("merchant", 36, 39, Cause::NotAllowedForMerchant),
    row("payment", 41, 45, Cause::PaymentDeclined),
    row("payment", 51, 53, Cause::InvalidPaymentState),
    row("payment", 61, 61, Cause::CaptureExceedsReserved),
    row("payment", 62, 62, Cause::CaptureBeforeReservation),
    row("payment", 63, 63, Cause::CaptureFailed),
    row("payment", 71, 71, Cause::RefundExceedsCaptured),
    row("payment", 72, 73, Cause::InvalidPaymentState),
    row("payment", 74, 74, Cause::RefundFailed),
    row("payment", 92, 92, Cause::InvalidPaymentState),
    row("payment", 93, 93, Cause::IdempotencyConflict),
    row("payment", 94, 94, Cause::ConcurrentOperation),
    row("payment", 95, 96, Cause::InvalidPaymentState),
    row("user", 81, 82, Cause::UserUnknown),
    row("user", 1082, 1082, Cause::UserUnknown),
    row("user", 1501, 1501, Cause::UserUnknown),
    row("vippserror", 98, 98, Cause::ConcurrentOperation),
    row("vippserror", 99, 99, Cause::ServerError),
    // No group.
    row("", 21, 21, Cause::InvalidReference),
    row("", 22, 22, Cause::InvalidPaymentState),
    row("", 31, 33, Cause::NotAllowedForMerchant),
    row("", 34, 34, Cause::IdempotencyConflict),
    row("", 35, 35, Cause::ReferenceNotFound),
    row("", 36, 37, Cause::NotAllowedForMerchant),
    row("", 41, 45, Cause::PaymentDeclined),
    row("", 51, 53, Cause::InvalidPaymentState),
    row("", 61, 61, Cause::CaptureExceedsReserved),
    row("", 62, 62, Cause::CaptureBeforeReservation),
    row("", 63, 63, Cause::CaptureFailed),
    row("", 71, 71, Cause::RefundExceedsCaptured),
    row("", 72, 73, Cause::InvalidPaymentState),
    row("", 74, 74, Cause::RefundFailed),
    row("", 81, 82, Cause::UserUnknown),
    row("", 92, 92, Cause::InvalidPaymentState),
    row("", 93, 93, Cause::IdempotencyConflict),
    row("", 94, 94, Cause::ConcurrentOperation),
    row("", 95, 96, Cause::InvalidPaymentState),
    row("", 98, 98, Cause::ConcurrentOperation),
    row("", 99, 99, Cause::ServerError),
    row("", 1082, 1082, Cause::UserUnknown),
    row("", 1501, 1501, Cause::UserUnknown),
];

/// The cause of an eCom numeric `errorCode` in its `errorGroup`, when the table
/// lists it. `None` for a group the table knows but a code it does not list
/// there (the message and the group decide) and for unknown groups.
pub(super) fn ecom(group: Option<&str>, code: u32) -> Option<Cause> {
    let group = group
        .map(|g| g.trim().to_ascii_lowercase())
        .unwrap_or_default();
    ECOM.iter()
        .find(|r| r.group == group && r.codes.contains(&code))
        .map(|r| r.cause)
}

/// Whether an eCom group is one of the documented ones.
pub(super) fn is_ecom_group(group: &str) -> bool {
    let g = group.trim().to_ascii_lowercase();
    matches!(
        g.as_str(),
        "authentication" | "payment" | "invalidrequest" | "vippserror" | "user" | "merchant"
    )
}

/// The Recurring problem types: identifier (after `#` in `type`) → cause.
static RECURRING: &[(&str, Cause)] = &[
    ("validation-error", Cause::InvalidField),
    ("invalid-agreement-id", Cause::InvalidReference),
    ("invalid-json", Cause::InvalidJsonBody),
    ("unsupported-media-type", Cause::InvalidJsonBody),
    ("not-authorized", Cause::InvalidAccessToken),
    ("idempotency-key-header", Cause::MissingIdempotencyKey),
    ("charge-amount-too-high", Cause::ChargeAmountTooHigh),
    ("charge-due-too-soon", Cause::InvalidField),
    ("charge-due-in-too-long", Cause::InvalidField),
    ("unsupported-feature", Cause::NotAllowedForMerchant),
    ("illegal-agreement-update", Cause::AgreementNotActive),
    ("invalid-suggested-max-amount", Cause::InvalidAmount),
    ("cancel-charge-failed", Cause::InvalidPaymentState),
    ("charge-creation-failed", Cause::InvalidPaymentState),
    ("charge-capture-failed", Cause::CaptureFailed),
    ("missing-request-header", Cause::InvalidField),
    ("invalid-sale-unit", Cause::NotAllowedForMerchant),
    ("resource-not-found", Cause::ReferenceNotFound),
    ("internal-error", Cause::ServerError),
    ("agreement-not-active", Cause::AgreementNotActive),
    ("refund-failed", Cause::RefundFailed),
    ("charge-refund-failed", Cause::RefundFailed),
    // "The specified `idempotency-key` has previously been used in a different
    // context" (the problem types page, API version 3.0.0).
    ("idempotency-conflict", Cause::IdempotencyConflict),
];

/// The cause of a problem `type` of the API, when it is a documented one: the
/// identifier after `#` (Recurring), or a known suffix.
pub(super) fn problem_type(api: Api, r#type: &str) -> Option<Cause> {
    let id = r#type
        .rsplit(['#', '/'])
        .next()?
        .trim()
        .to_ascii_lowercase();
    if id.is_empty() {
        return None;
    }
    let recurring = api == Api::Recurring || r#type.contains("recurring-api");
    if recurring {
        if let Some((_, cause)) = RECURRING.iter().find(|(name, _)| *name == id) {
            return Some(*cause);
        }
        // An identifier added since: judged by its words.
        return Some(if id.ends_with("not-found") {
            Cause::ReferenceNotFound
        } else if id.contains("not-active") || id.contains("inactive") {
            Cause::AgreementNotActive
        } else if id.contains("idempotency") {
            Cause::MissingIdempotencyKey
        } else if id.contains("amount") {
            Cause::InvalidAmount
        } else {
            return None;
        });
    }
    None
}

/// A Checkout `errorCode` (`Session-00100`…) or status, when no field or wording
/// decided: the statuses documented for POST /session.
pub(super) fn checkout_status(status: u16) -> Option<Cause> {
    Some(match status {
        401 => Cause::InvalidClientCredentials,
        403 => Cause::SubscriptionNotFound,
        404 => Cause::ReferenceNotFound,
        409 => Cause::IdempotencyConflict,
        _ => return None,
    })
}
