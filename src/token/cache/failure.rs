//! A failed fetch, shared by every caller that waited for it.

use std::fmt;
use std::sync::Arc;

use crate::{Diagnosis, ErrorResponse, VippsError};

/// A failure shared by every waiter of one fetch.
#[derive(Clone)]
pub(super) struct SharedFailure(Arc<FailureInner>);

struct FailureInner {
    response: Option<ErrorResponse>,
    diagnosis: Diagnosis,
    source: Option<Arc<VippsError>>,
}

impl SharedFailure {
    pub(super) fn from_error(err: VippsError) -> SharedFailure {
        let response = match err.origin() {
            crate::Origin::Token(r) => r.clone(),
            _ => err.error_response().cloned(),
        };
        SharedFailure(Arc::new(FailureInner {
            response,
            diagnosis: err.diagnosis().clone(),
            source: std::error::Error::source(&err)
                .is_some()
                .then(|| Arc::new(err)),
        }))
    }

    /// The cause code.
    pub(super) fn code(&self) -> &'static str {
        self.0.diagnosis.code()
    }

    pub(super) fn to_error(&self) -> VippsError {
        VippsError::token(
            self.0.response.clone(),
            self.0.diagnosis.clone(),
            self.0
                .source
                .clone()
                .map(|s| Box::new(SharedSource(s)) as crate::BoxError),
        )
    }
}

/// The source of a shared failure: shows the original error's source.
struct SharedSource(Arc<VippsError>);

impl fmt::Debug for SharedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::error::Error::source(&*self.0) {
            Some(s) => fmt::Debug::fmt(s, f),
            None => f.write_str("SharedSource"),
        }
    }
}

impl fmt::Display for SharedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::error::Error::source(&*self.0) {
            Some(s) => fmt::Display::fmt(s, f),
            None => f.write_str("the access token fetch failed"),
        }
    }
}

impl std::error::Error for SharedSource {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.0)
    }
}
