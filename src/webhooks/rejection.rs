//! [`WebhookRejection`]: why a webhook was refused, in the crate's error language.

use std::fmt;
use std::time::Duration;

use crate::{Cause, Diagnosis};

/// Why [`WebhookLayer`](super::WebhookLayer) (or [`Verifier::verify`](super::Verifier::verify))
/// refused a webhook. The sender only sees `401`; the operator gets this, as a
/// [`Diagnosis`] with a [`Cause`], in the log (`tracing`, level warn), in the
/// `on_reject` hook and in the extensions of the `401` response.
///
/// No variant holds a secret or a signature.
///
/// ```
/// use tower_vipps::Cause;
/// use tower_vipps::webhooks::WebhookRejection;
///
/// let rejection = WebhookRejection::HeaderMissing { header: "x-ms-date" };
/// assert_eq!(rejection.cause(), Cause::WebhookHeaderMissing);
/// assert!(rejection.diagnosis().report().contains("x-ms-date"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebhookRejection {
    /// Vipps MobilePay only POSTs webhooks.
    NotPost {
        /// The method received.
        method: String,
    },
    /// A signing header is absent.
    HeaderMissing {
        /// Its name.
        header: &'static str,
    },
    /// A signing header is not in the documented form.
    HeaderMalformed {
        /// Its name.
        header: &'static str,
    },
    /// The body is longer than the cap, came in too many frames, too slowly, or
    /// the connection broke.
    BodyUnreadable {
        /// What went wrong.
        reason: &'static str,
    },
    /// The body's SHA-256 differs from `x-ms-content-sha256`.
    BodyAltered {
        /// The bytes received.
        length: usize,
        /// base64 SHA-256 of the bytes received.
        received_hash: String,
        /// What `x-ms-content-sha256` says.
        signed_hash: String,
    },
    /// `x-ms-date` is further from now than the tolerance.
    DateOutsideTolerance {
        /// Seconds the date is ahead of the receiver's clock (negative: behind).
        skew_secs: i64,
        /// The tolerance.
        tolerance: Duration,
    },
    /// The signature is right for another `x-ms-date` than the one received.
    DateAltered {
        /// The date that was signed.
        signed_date: String,
    },
    /// The signature is right for another host or path than the registered URL.
    UrlMismatch {
        /// The registered URL the verifier was given.
        registered: String,
        /// The authority the signature was made for.
        signed_authority: String,
        /// The path and query the signature was made for.
        signed_path: String,
    },
    /// The signature matches none of the secrets tried.
    WrongSecret {
        /// How many secrets were tried.
        tried: usize,
        /// The MSN the event names, when it names one.
        msn: Option<String>,
    },
}

impl WebhookRejection {
    /// The cause.
    pub fn cause(&self) -> Cause {
        match self {
            WebhookRejection::NotPost { .. }
            | WebhookRejection::HeaderMissing { .. }
            | WebhookRejection::HeaderMalformed { .. } => Cause::WebhookHeaderMissing,
            WebhookRejection::BodyUnreadable { .. } => Cause::WebhookBodyUnreadable,
            WebhookRejection::BodyAltered { .. } => Cause::WebhookBodyAltered,
            WebhookRejection::DateOutsideTolerance { .. } => Cause::WebhookDateOutsideTolerance,
            WebhookRejection::DateAltered { .. } => Cause::WebhookDateAltered,
            WebhookRejection::UrlMismatch { .. } => Cause::WebhookUrlMismatch,
            WebhookRejection::WrongSecret { .. } => Cause::WebhookWrongSecret,
        }
    }

    /// The diagnosis: the cause, the evidence, the steps to fix it, the docs link.
    pub fn diagnosis(&self) -> Diagnosis {
        Diagnosis::new(self.cause()).with_evidence(self.evidence())
    }

    fn evidence(&self) -> String {
        match self {
            WebhookRejection::NotPost { method } => {
                format!("the request is a {method}, webhooks are POSTed")
            }
            WebhookRejection::HeaderMissing { header } => format!("no `{header}` header"),
            WebhookRejection::HeaderMalformed { header } => {
                format!("the `{header}` header is not in the documented form")
            }
            WebhookRejection::BodyUnreadable { reason } => format!("the body {reason}"),
            WebhookRejection::BodyAltered {
                length,
                received_hash,
                signed_hash,
            } => format!(
                "the {length} bytes received hash to {received_hash}, `x-ms-content-sha256` says {signed_hash}"
            ),
            WebhookRejection::DateOutsideTolerance {
                skew_secs,
                tolerance,
            } => format!(
                "`x-ms-date` is {} s {} the receiver's clock, the tolerance is {} s",
                skew_secs.unsigned_abs(),
                if *skew_secs < 0 { "behind" } else { "ahead of" },
                tolerance.as_secs()
            ),
            WebhookRejection::DateAltered { signed_date } => {
                format!("the signature is right for `x-ms-date: {signed_date}`")
            }
            WebhookRejection::UrlMismatch {
                registered,
                signed_authority,
                signed_path,
            } => format!(
                "the signature is right for host `{signed_authority}` and path `{signed_path}`, the verifier was given `{registered}`"
            ),
            WebhookRejection::WrongSecret { tried, msn } => match msn {
                Some(msn) => format!("tried {tried} secret(s) for MSN {msn}, none matches"),
                None => format!("tried {tried} secret(s), none matches"),
            },
        }
    }
}

impl fmt::Display for WebhookRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cause = self.cause();
        write!(
            f,
            "webhook rejected: {} [{}] Evidence: {}.",
            cause.summary(),
            cause.code(),
            self.evidence()
        )
    }
}

impl std::error::Error for WebhookRejection {}
