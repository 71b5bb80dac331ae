//! `miette::Diagnostic` for `VippsError` (feature `miette`; `cargo test --all-features`).
#![cfg(feature = "miette")]

use http::{HeaderMap, StatusCode};
use miette::Diagnostic;
use tower_vipps::diagnose::classify;
use tower_vipps::{Api, Cause, Diagnosis, ErrorResponse, RequestContext, VippsError};

#[test]
fn code_help_and_url() {
    let err = VippsError::refused(Diagnosis::new(Cause::BearerWrongCase));
    assert_eq!(err.code().to_string(), "vipps::bearer_wrong_case");
    let diagnostic: &dyn Diagnostic = &err;
    assert_eq!(
        diagnostic.code().unwrap().to_string(),
        "vipps::bearer_wrong_case"
    );
    assert_eq!(
        diagnostic.url().unwrap().to_string(),
        Cause::BearerWrongCase.docs_url()
    );
    let help = diagnostic.help().unwrap().to_string();
    let steps = Cause::BearerWrongCase.steps();
    assert_eq!(help.lines().count(), steps.len());
    assert_eq!(help.lines().next().unwrap(), format!("1. {}", steps[0]));
}

#[test]
fn a_diagnosed_response_reports_through_miette() {
    let context = RequestContext {
        api: Api::EPayment,
        ..Default::default()
    };
    let body = br#"{"statusCode":401,"message":"Subscription not found."}"#;
    let diagnosis = classify(&context, StatusCode::UNAUTHORIZED, &HeaderMap::new(), body);
    let err = VippsError::from_response(
        ErrorResponse {
            status: StatusCode::UNAUTHORIZED,
            headers: HeaderMap::new(),
            body: bytes::Bytes::from_static(body),
            truncated: false,
        },
        diagnosis,
    );
    let report = miette::Report::new(err);
    assert_eq!(
        report.code().unwrap().to_string(),
        "vipps::subscription_not_found"
    );
    let help = report.help().unwrap().to_string();
    assert!(help.starts_with("1. Check in portal.vipps.no"), "{help}");
    assert_eq!(
        report.url().unwrap().to_string(),
        "https://developer.vippsmobilepay.com/docs/APIs/"
    );
}
