#![doc = "tower-vipps: tower middleware for resilient Vipps MobilePay API clients."]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod auth;
pub mod context;
pub mod diagnose;
mod environment;
pub mod error;
pub mod headers;
mod keys;
mod msn;
pub mod replay;
pub mod token;

pub use auth::{Auth, AuthLayer};
pub use context::{Api, RequestContext};
pub use environment::{Environment, Hosts, ParseEnvironmentError};
pub use error::{BoxError, Cause, Diagnosis, ErrorResponse, Origin, VippsError};
pub use keys::{
    Fingerprint, KeyError, KeyScope, KeySet, Keyring, KeyringBuilder, Lookup, Secret, SystemInfo,
};
pub use msn::{Msn, MsnError};
