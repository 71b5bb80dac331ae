//! The wording rules of [`classify`](super::classify): the body's words,
//! normalized, matched against one table of stems per cause, most specific first,
//! so that a reworded, re-cased or truncated message of the same kind still
//! matches.

use super::body::ErrorBody;
use crate::error::Cause;

/// The body's words: lowercase, every run of non-alphanumerics one space, padded
/// with a space at both ends so that `" url "` matches the whole word only.
pub(super) struct Normalized(String);

impl Normalized {
    pub(super) fn of(body: &ErrorBody) -> Normalized {
        let mut raw = String::new();
        let mut push = |s: &str| {
            raw.push(' ');
            raw.push_str(s);
        };
        match body {
            ErrorBody::Problem(p) => {
                for s in [&p.title, &p.detail].into_iter().flatten() {
                    push(s);
                }
                for d in &p.extra_details {
                    push(&d.name);
                    push(&d.reason);
                }
            }
            ErrorBody::Ecom(errors) => {
                for e in errors {
                    for s in [&e.error_message, &e.error_code].into_iter().flatten() {
                        push(s);
                    }
                }
            }
            ErrorBody::Gateway(g) => push(&g.message),
            ErrorBody::OAuth(o) => {
                push(&o.error);
                if let Some(d) = &o.error_description {
                    push(d);
                }
            }
            ErrorBody::Json(t) | ErrorBody::Html(t) | ErrorBody::Text(t) => push(t),
            ErrorBody::Binary { .. } | ErrorBody::Empty => {}
        }
        let mut out = String::with_capacity(raw.len() + 2);
        out.push(' ');
        for c in raw.chars() {
            if c.is_alphanumeric() {
                out.extend(c.to_lowercase());
            } else if !out.ends_with(' ') {
                out.push(' ');
            }
        }
        if !out.ends_with(' ') {
            out.push(' ');
        }
        Normalized(out)
    }

    fn find(&self, needles: &[&'static str]) -> Option<&'static str> {
        needles.iter().copied().find(|n| self.0.contains(n))
    }

    pub(super) fn has_any(&self, needles: &[&'static str]) -> bool {
        self.find(needles).is_some()
    }

    /// The words of the text a needle matched, from the needle's start to the end
    /// of the word it ends in (`"subscription not f"` shows as
    /// `"subscription not found"`), at most 60 bytes.
    fn phrase(&self, needles: &[&'static str]) -> Option<&str> {
        let needle = self.find(needles)?;
        let start = self.0.find(needle)?;
        let rest = &self.0[start..];
        let trimmed = needle.trim_end();
        let mut end = rest[trimmed.len()..]
            .find(' ')
            .map_or(rest.len(), |i| trimmed.len() + i);
        if needle.ends_with(' ') {
            end = trimmed.len();
        }
        let mut end = end.min(60);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        Some(rest[..end].trim())
    }
}

/// A wording rule: every group must match (any needle of it), written in the
/// normalized form (lowercase words separated by single spaces).
pub(super) struct Rule {
    pub(super) cause: Cause,
    all: &'static [&'static [&'static str]],
    /// Only for these statuses, when not empty.
    statuses: &'static [u16],
}

impl Rule {
    pub(super) fn matches(&self, status: u16, text: &Normalized) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&status))
            && self.all.iter().all(|group| text.has_any(group))
    }

    pub(super) fn evidence(&self, text: &Normalized) -> String {
        let words: Vec<String> = self
            .all
            .iter()
            .filter_map(|group| text.phrase(group))
            .map(|n| format!("\"{n}\""))
            .collect();
        format!("the message mentions {}", words.join(" and "))
    }
}

const fn rule(cause: Cause, all: &'static [&'static [&'static str]]) -> Rule {
    Rule {
        cause,
        all,
        statuses: &[],
    }
}

const IDEMPOTENCY: &[&str] = &["idempotency", "idempotent"];
const MSN: &[&str] = &["merchant serial number", " msn "];

/// The wording rules, most specific first.
pub(super) static WORDING: &[Rule] = &[
    rule(
        Cause::MissingIdempotencyKey,
        &[IDEMPOTENCY, &["required", "missing", "must be provided"]],
    ),
    rule(
        Cause::IdempotencyConflict,
        &[&[
            "idempotency",
            "idempotent",
            "already exists",
            "already been used",
            "already used",
            "unique constraint",
        ]],
    ),
    rule(
        Cause::AgreementNotActive,
        &[
            &["agreement"],
            &[
                "not active",
                "inactive",
                "is stopped",
                "is pending",
                "is expired",
                "not in active",
            ],
        ],
    ),
    rule(Cause::NotAllowedForMerchant, &[&["illegal scope"]]),
    rule(Cause::InvalidSubscriptionKey, &[&["invalid subscr"]]),
    rule(Cause::MissingSubscriptionKey, &[&["missing subscr"]]),
    rule(
        Cause::InvalidSubscriptionKey,
        &[
            &["subscription key"],
            &["invalid", "not valid", "wrong", "unknown"],
        ],
    ),
    rule(
        Cause::MissingSubscriptionKey,
        &[
            &["subscription key"],
            &["missing", "required", "include", "no subscription key"],
        ],
    ),
    rule(
        Cause::SubscriptionNotFound,
        &[&[
            "subscription not f",
            "subscription was not f",
            "no subscription f",
        ]],
    ),
    rule(
        Cause::MerchantNotAllowedForEcommerce,
        &[&["not allowed for ecom", "not allowed for e com"]],
    ),
    rule(
        Cause::RateLimited,
        &[&["rate limit", "too many requests", "call volume quota"]],
    ),
    rule(
        Cause::PartnerMsnNotConnected,
        &[
            &["not connected"],
            &["partner", " msn ", "sales unit", "merchant"],
        ],
    ),
    rule(
        Cause::PartnerMissingMsnHeader,
        &[
            MSN,
            &["required", "missing", "must be provided", "not provided"],
        ],
    ),
    rule(
        Cause::UserUnknown,
        &[&[
            "customer not found",
            "user not found",
            "user unknown",
            "unknown user",
            "user not registered",
            "not registered with",
            "not a vipps",
            "does not belong to a vipps",
            "cannot pay businesses",
            "can not pay to companies",
            "cannot pay to companies",
        ]],
    ),
    rule(
        Cause::TestUserNotReady,
        &[&[
            "test app",
            "testapp",
            "15 years",
            "15 år",
            "test user",
            "real user",
            "no cards",
            "approve failed",
            "operation not supported",
        ]],
    ),
    rule(
        Cause::CaptureBeforeReservation,
        &[
            &["captur"],
            &[
                "before reservation",
                "not reserved",
                "not yet reserved",
                "before the user",
            ],
        ],
    ),
    rule(
        Cause::RefundExceedsCaptured,
        &[
            &["refund"],
            &[
                "more than",
                "exceed",
                "too large",
                "too hi",
                "not enough",
                "larger than",
                "higher than",
            ],
        ],
    ),
    rule(
        Cause::CaptureExceedsReserved,
        &[
            &["captur"],
            &[
                "too hi",
                "exceed",
                "higher than",
                "more than",
                "larger than",
                "too large",
            ],
        ],
    ),
    rule(
        Cause::AmountTooSmall,
        &[&[
            "too small",
            "too low",
            "below the minimum",
            "below minimum",
            "minimum amount",
            "less than the minimum",
        ]],
    ),
    rule(Cause::InvalidCurrency, &[&["currenc"]]),
    rule(
        Cause::InvalidAmount,
        &[
            &[" amount"],
            &[
                "invalid",
                "integer",
                "decimal",
                "minor unit",
                "not valid",
                "must be",
            ],
        ],
    ),
    rule(
        Cause::ReferenceNotFound,
        &[&["reference not f", "order not f", "payment not f"]],
    ),
    rule(
        Cause::ReferenceNotFound,
        &[
            &[" reference ", " order id ", " orderid "],
            &["not found", "does not exist", "doesn t exist", "unknown"],
        ],
    ),
    rule(
        Cause::ConcurrentOperation,
        &[&[
            "order processing",
            "concurrent",
            "being processed",
            "already processing",
            " locked",
        ]],
    ),
    rule(
        Cause::InvalidPaymentState,
        &[&[
            "already captured",
            "already cancelled",
            "already canceled",
            "already refunded",
            "already reserved",
            "already processed",
            "cannot cancel",
            "can t cancel",
            "cannot be cancelled",
            "cannot be canceled",
            "cannot be captured",
            "cannot be refunded",
            "period expired",
            "period has expired",
            "not in valid state",
            "invalid state",
            "cancelled order",
            "canceled order",
            "must capture full",
            "refund before",
            "refund for reserved",
            "cannot capture a cancelled",
            "can t capture cancelled",
        ]],
    ),
    rule(
        Cause::InvalidPhoneNumber,
        &[&["phone", "msisdn", "mobile number", "mobilenumber"]],
    ),
    rule(
        Cause::InvalidUrl,
        &[&[
            " url ",
            " urls ",
            " uri ",
            "returnurl",
            "callbackurl",
            "callbackprefix",
            "callback prefix",
            "fallback",
            "redirecturl",
        ]],
    ),
    rule(Cause::AccessTokenExpired, &[&[" token "], &["expired"]]),
    rule(
        Cause::InvalidAccessToken,
        &[&[" token "], &["invalid", "malformed", "not valid"]],
    ),
    rule(
        Cause::InvalidClientCredentials,
        &[&[
            "invalid client",
            "unauthorized client",
            "client secret",
            "client authentication",
            "aadsts7000215",
            "aadsts700016",
        ]],
    ),
    rule(
        Cause::NotAllowedForMerchant,
        &[
            &["merchant", "sales unit"],
            &[
                "not allowed",
                "not permitted",
                "not available",
                "deactivated",
                "blocked",
                "not signed",
                "not verified",
                "not enabled",
                "limit",
            ],
        ],
    ),
    rule(Cause::NotAllowedForMerchant, &[&["not allowed"]]),
    Rule {
        cause: Cause::InvalidField,
        all: &[&[
            "invalid",
            "required",
            "must ",
            "validation",
            "missing",
            "not valid",
        ]],
        statuses: &[400, 422],
    },
];
