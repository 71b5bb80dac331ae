//! [`Diagnosis`]: a cause, the evidence it rests on, and the parsed error body.

use std::borrow::Cow;

use super::Cause;
use crate::diagnose::body::ErrorBody;

/// A diagnosis: the [`Cause`], the evidence it rests on, and the parsed error body.
///
/// ```
/// use tower_vipps::{Cause, Diagnosis};
///
/// let d = Diagnosis::new(Cause::BearerWrongCase).with_evidence("scheme is `bearer`");
/// assert_eq!(d.code(), "vipps::bearer_wrong_case");
/// assert!(d.steps()[0].contains("Bearer"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnosis {
    pub(super) cause: Cause,
    pub(super) evidence: Vec<Cow<'static, str>>,
    pub(super) body: Option<ErrorBody>,
}

impl Diagnosis {
    /// A diagnosis of a cause, with no evidence yet.
    pub fn new(cause: Cause) -> Self {
        Diagnosis {
            cause,
            evidence: Vec::new(),
            body: None,
        }
    }

    /// Adds one piece of evidence (never put a secret in it).
    pub fn with_evidence(mut self, evidence: impl Into<Cow<'static, str>>) -> Self {
        self.evidence.push(evidence.into());
        self
    }

    /// Attaches the parsed error body.
    pub fn with_body(mut self, body: ErrorBody) -> Self {
        self.body = Some(body);
        self
    }

    /// The cause.
    pub fn cause(&self) -> Cause {
        self.cause
    }

    /// The stable code of the cause.
    pub fn code(&self) -> &'static str {
        self.cause.code()
    }

    /// What the diagnosis rests on: the status, error codes, header facts.
    pub fn evidence(&self) -> &[Cow<'static, str>] {
        &self.evidence
    }

    /// The steps to fix it.
    pub fn steps(&self) -> &'static [&'static str] {
        self.cause.steps()
    }

    /// The docs link.
    pub fn docs_url(&self) -> &'static str {
        self.cause.docs_url()
    }

    /// The parsed error body, for error responses.
    pub fn body(&self) -> Option<&ErrorBody> {
        self.body.as_ref()
    }

    /// The trace id of the error response (`traceId` or `instance` of a problem
    /// body, an eCom `contextId`): give it to Vipps MobilePay support.
    pub fn trace_id(&self) -> Option<&str> {
        self.body.as_ref()?.trace_id()
    }

    /// A multi-line report: cause, evidence, the trace id, numbered steps, docs link.
    pub fn report(&self) -> String {
        let mut out = format!("{}\n  {}\n", self.code(), self.cause.summary());
        if !self.evidence.is_empty() {
            out.push_str("  evidence:\n");
            for e in &self.evidence {
                out.push_str(&format!("    - {e}\n"));
            }
        }
        if let Some(id) = self.trace_id() {
            // Server-sent: shown cut and without control characters.
            let id: String = id.chars().filter(|c| !c.is_control()).take(128).collect();
            out.push_str(&format!(
                "  trace id: {id} (quote it to Vipps MobilePay support)\n"
            ));
        }
        out.push_str("  to fix it:\n");
        for (i, step) in self.steps().iter().enumerate() {
            out.push_str(&format!("    {}. {step}\n", i + 1));
        }
        out.push_str(&format!("  docs: {}\n", self.docs_url()));
        out
    }
}
