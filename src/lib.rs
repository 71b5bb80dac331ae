#![doc = "tower-vipps: tower middleware for resilient Vipps MobilePay API clients."]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod auth;
pub mod context;
pub mod diagnose;
#[cfg(feature = "emulator")]
#[cfg_attr(docsrs, doc(cfg(feature = "emulator")))]
pub mod emulator;
mod environment;
pub mod error;
pub mod headers;
pub mod idempotency;
mod keys;
mod msn;
pub mod preflight;
pub mod replay;
pub mod retry;
pub mod timeout;
pub mod token;

pub use auth::{Auth, AuthLayer};
pub use context::{Api, RequestContext};
pub use diagnose::{Diagnose, DiagnoseLayer};
pub use environment::{Environment, Hosts, ParseEnvironmentError};
pub use error::{BoxError, Cause, Diagnosis, ErrorResponse, Origin, VippsError};
pub use keys::{
    Fingerprint, KeyError, KeyScope, KeySet, Keyring, KeyringBuilder, Lookup, Secret, SystemInfo,
};
pub use msn::{Msn, MsnError};
pub use preflight::{Preflight, PreflightLayer};
