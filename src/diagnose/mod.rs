//! Diagnosis of error responses.

pub mod body;

/// The most bytes of an error body that are read and kept: 64 KiB.
pub const BODY_CAP: usize = 64 * 1024;
