//! `classify` against every line of the error corpus, and against reworded,
//! truncated and re-cased variants of the same kinds of error.

use http::{HeaderMap, StatusCode};
use tower_vipps::diagnose::classify;
use tower_vipps::{Api, Cause, Msn, RequestContext};

/// A copy of `shared/reference/error-corpus.jsonl`, so that a clean checkout has it.
const CORPUS: &str = include_str!("data/error-corpus.jsonl");

fn context(api: &str) -> RequestContext {
    RequestContext {
        api: Api::from_name(api).unwrap_or_else(|| panic!("unknown api {api}")),
        ..Default::default()
    }
}

fn code_of(api: &str, status: u16, body: &str) -> &'static str {
    classify(
        &context(api),
        StatusCode::from_u16(status).unwrap(),
        &HeaderMap::new(),
        body.as_bytes(),
    )
    .code()
}

#[test]
fn every_corpus_line_classifies_to_its_code() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for (n, line) in CORPUS.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let api = case["api"].as_str().unwrap();
        let status = case["status"].as_u64().unwrap() as u16;
        let body = case["body"].as_str().unwrap();
        let expected = case["cause"].as_str().unwrap();
        let got = code_of(api, status, body);
        if got != expected {
            failures.push(format!(
                "line {}: {api} {status}: expected {expected}, got {got}",
                n + 1
            ));
        }
        checked += 1;
    }
    assert_eq!(checked, 30, "the corpus has 30 lines");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_corpus_code_is_a_cause_code() {
    for line in CORPUS.lines().filter(|l| !l.trim().is_empty()) {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let expected = case["cause"].as_str().unwrap();
        assert!(
            Cause::ALL.iter().any(|c| c.code() == expected),
            "{expected} is not the code of a Cause"
        );
    }
}

/// (api, status, body, expected code): the kinds of the corpus, reworded,
/// truncated mid-word, re-cased, with extra fields, numeric instead of string
/// codes, and without the domain code so that only the wording is left.
const VARIANTS: &[(&str, u16, &str, &str)] = &[
    // Gateway messages: reworded, truncated, re-cased, text instead of JSON.
    (
        "epayment",
        401,
        r#"{"statusCode":401,"message":"Access denied due to invalid subscr"}"#,
        "vipps::invalid_subscription_key",
    ),
    (
        "epayment",
        401,
        r#"{"statusCode":"401","message":"ACCESS DENIED DUE TO INVALID SUBSCRIPTION KEY.","extra":true}"#,
        "vipps::invalid_subscription_key",
    ),
    (
        "epayment",
        401,
        "Access denied due to invalid subscription key. Make sure to provide a valid key",
        "vipps::invalid_subscription_key",
    ),
    (
        "recurring",
        401,
        r#"{"message":"The subscription key is not valid for this API."}"#,
        "vipps::invalid_subscription_key",
    ),
    (
        "epayment",
        401,
        r#"{"statusCode":401,"message":"Access denied due to missing subscription k"}"#,
        "vipps::missing_subscription_key",
    ),
    (
        "epayment",
        401,
        r#"{"statusCode":401,"message":"Please include a subscription key in the request."}"#,
        "vipps::missing_subscription_key",
    ),
    (
        "ecom",
        401,
        r#"{"statusCode":401,"message":"subscription NOT found"}"#,
        "vipps::subscription_not_found",
    ),
    (
        "epayment",
        401,
        "Subscription not fou",
        "vipps::subscription_not_found",
    ),
    (
        "epayment",
        401,
        r#"{"statusCode":401,"message":"Something went wrong, please try ag"}"#,
        "vipps::invalid_access_token",
    ),
    ("epayment", 401, "", "vipps::invalid_access_token"),
    (
        "ecom",
        401,
        "<html><body>Unauthorized</body></html>",
        "vipps::invalid_access_token",
    ),
    (
        "epayment",
        401,
        r#"{"title":"Unauthorized","status":401,"detail":"The access token has expired."}"#,
        "vipps::access_token_expired",
    ),
    (
        "epayment",
        403,
        "merchant not allowed for ecommerce payment",
        "vipps::merchant_not_allowed_for_ecommerce",
    ),
    (
        "ecom",
        403,
        r#"{"statusCode":403,"message":"Merchant Not Allowed for Ecom"}"#,
        "vipps::merchant_not_allowed_for_ecommerce",
    ),
    (
        "epayment",
        403,
        r#"{"title":"Forbidden","status":403}"#,
        "vipps::forbidden",
    ),
    (
        "epayment",
        403,
        r#"{"title":"Forbidden","status":403,"detail":"The Merchant-Serial-Number header is required when using partner keys."}"#,
        "vipps::partner_missing_msn_header",
    ),
    (
        "epayment",
        403,
        r#"{"title":"Forbidden","status":403,"detail":"The sales unit (MSN) is not connected to this partner."}"#,
        "vipps::partner_msn_not_connected",
    ),
    (
        "epayment",
        403,
        r#"{"title":"Forbidden","detail":"This MSN is NOT CONNECTED to the partn"}"#,
        "vipps::partner_msn_not_connected",
    ),
    (
        "epayment",
        429,
        r#"{"statusCode":429,"message":"Rate limit is exceeded. Try again in 1 seconds."}"#,
        "vipps::rate_limited",
    ),
    ("epayment", 429, "", "vipps::rate_limited"),
    (
        "epayment",
        400,
        r#"{"statusCode":400,"message":"Rate limit exceeded"}"#,
        "vipps::rate_limited",
    ),
    // ePayment problem details: titles reworded, code as a number, extra fields.
    (
        "epayment",
        400,
        r#"{"title":"Amount not accepted","status":400,"extraDetails":[{"name":"ErrorCode","reason":4040}],"x":[1,2]}"#,
        "vipps::invalid_amount",
    ),
    (
        "epayment",
        400,
        r#"{"title":"Some new title","extraDetails":[{"name":"errorcode","reason":" 6090 "}]}"#,
        "vipps::capture_exceeds_reserved",
    ),
    (
        "epayment",
        400,
        r#"{"title":"Whatever","extraDetails":[{"name":"ErrorCode","reason":"6150"}]}"#,
        "vipps::refund_exceeds_captured",
    ),
    (
        "recurring",
        400,
        r#"{"title":"X","extraDetails":[{"name":"ErrorCode","reason":"7010"}]}"#,
        "vipps::user_unknown",
    ),
    (
        "epayment",
        400,
        r#"{"title":"Bad Request","status":400,"extraDetails":[{"name":"ErrorCode","reason":"10020"}],"detail":"The user must have logged in to the test app and be 15 years old."}"#,
        "vipps::test_user_not_ready",
    ),
    (
        "epayment",
        400,
        r#"{"title":"X","extraDetails":[{"name":"ErrorCode","reason":"6200"}]}"#,
        "vipps::invalid_payment_state",
    ),
    (
        "epayment",
        400,
        r#"{"title":"X","extraDetails":[{"name":"ErrorCode","reason":"5020"}]}"#,
        "vipps::not_allowed_for_merchant",
    ),
    (
        "epayment",
        400,
        r#"{"title":"X","extraDetails":[{"name":"ErrorCode","reason":"4150"}]}"#,
        "vipps::idempotency_conflict",
    ),
    // The same kinds without ErrorCode: wording only, reworded and cut.
    (
        "epayment",
        400,
        r#"{"title":"INVALID AMOUNT","status":400}"#,
        "vipps::invalid_amount",
    ),
    (
        "epayment",
        400,
        r#"{"title":"Bad Request","detail":"Amounts must be integers in minor units"}"#,
        "vipps::invalid_amount",
    ),
    (
        "epayment",
        400,
        r#"{"title":"Amount is too small for this mark"}"#,
        "vipps::amount_too_small",
    ),
    (
        "epayment",
        400,
        r#"{"title":"Bad Request","detail":"The amount is below the minimum"}"#,
        "vipps::amount_too_small",
    ),
    (
        "epayment",
        400,
        r#"{"title":"Invalid return URL"}"#,
        "vipps::invalid_url",
    ),
    (
        "epayment",
        400,
        r#"{"title":"Bad Request","detail":"returnUrl must be https"}"#,
        "vipps::invalid_url",
    ),
    (
        "epayment",
        400,
        r#"{"title":"Invalid phone num"}"#,
        "vipps::invalid_phone_number",
    ),
    (
        "epayment",
        400,
        r#"{"detail":"The MSISDN is not valid"}"#,
        "vipps::invalid_phone_number",
    ),
    (
        "epayment",
        400,
        r#"{"title":"Customer not found","detail":"The phone number does not belong"}"#,
        "vipps::user_unknown",
    ),
    (
        "epayment",
        400,
        r#"{"title":"Capture amount too hi"}"#,
        "vipps::capture_exceeds_reserved",
    ),
    (
        "epayment",
        400,
        r#"{"title":"Bad Request","detail":"The total capture exceeds the authorized amount"}"#,
        "vipps::capture_exceeds_reserved",
    ),
    (
        "epayment",
        400,
        r#"{"title":"Not enough refundab"}"#,
        "vipps::refund_exceeds_captured",
    ),
    (
        "epayment",
        400,
        r#"{"title":"Refund exceeds the captured amount"}"#,
        "vipps::refund_exceeds_captured",
    ),
    (
        "epayment",
        400,
        r#"{"title":"Cannot capture before reservation"}"#,
        "vipps::capture_before_reservation",
    ),
    (
        "epayment",
        400,
        r#"{"title":"Capture failed","detail":"The amount is not yet reserved"}"#,
        "vipps::capture_before_reservation",
    ),
    (
        "epayment",
        400,
        r#"{"title":"Bad Request","extraDetails":[{"name":"Reference","reason":"Must match"}]}"#,
        "vipps::invalid_field",
    ),
    (
        "epayment",
        400,
        r#"{"title":"Bad Request","extraDetails":[{"name":"customer.phoneNumber","reason":"bad"}]}"#,
        "vipps::invalid_phone_number",
    ),
    (
        "epayment",
        409,
        r#"{"title":"Conflict"}"#,
        "vipps::idempotency_conflict",
    ),
    (
        "epayment",
        400,
        r#"{"title":"Idempotency error","detail":"Idempotency-Key abc already exi"}"#,
        "vipps::idempotency_conflict",
    ),
    (
        "epayment",
        404,
        r#"{"title":"Reference not fou"}"#,
        "vipps::reference_not_found",
    ),
    (
        "epayment",
        404,
        r#"{"title":"Not Found","detail":"The reference abc-123 does not exist for MSN 123456"}"#,
        "vipps::reference_not_found",
    ),
    (
        "epayment",
        400,
        r#"{"title":"Invalid currency"}"#,
        "vipps::invalid_currency",
    ),
    (
        "epayment",
        400,
        r#"{"title":"Bad Request","detail":"EUR is not a currency of this sales unit"}"#,
        "vipps::invalid_currency",
    ),
    (
        "epayment",
        423,
        r#"{"title":"Locked"}"#,
        "vipps::concurrent_operation",
    ),
    (
        "epayment",
        400,
        r#"{"title":"Order processing","detail":"Too many concurrent req"}"#,
        "vipps::concurrent_operation",
    ),
    (
        "epayment",
        400,
        r#"{"title":"Payment already captured"}"#,
        "vipps::invalid_payment_state",
    ),
    (
        "epayment",
        400,
        "You need the test app and to be over 15 years",
        "vipps::test_user_not_ready",
    ),
    ("epayment", 500, "", "vipps::server_error"),
    (
        "epayment",
        503,
        "Service Unavailable",
        "vipps::server_error",
    ),
    (
        "epayment",
        500,
        r#"{"title":"Internal error","extraDetails":[{"name":"ErrorCode","reason":3010}]}"#,
        "vipps::server_error",
    ),
    (
        "epayment",
        504,
        "<!DOCTYPE html><html><h1>Gateway Time-out</h1>",
        "vipps::server_error",
    ),
    ("epayment", 302, "", "vipps::unexpected_redirect"),
    // eCom arrays: numeric codes, field names, groups, single objects, messages only.
    (
        "ecom",
        400,
        r#"[{"errorGroup":"Payment","errorCode":61,"errorMessage":"x"}]"#,
        "vipps::capture_exceeds_reserved",
    ),
    (
        "ecom",
        400,
        r#"[{"errorGroup":"payment","errorCode":"71"}]"#,
        "vipps::refund_exceeds_captured",
    ),
    (
        "ecom",
        400,
        r#"[{"errorGroup":"User","errorCode":"82","errorMessage":"User App version not supported"}]"#,
        "vipps::user_unknown",
    ),
    (
        "ecom",
        400,
        r#"{"errorGroup":"User","errorCode":"81"}"#,
        "vipps::user_unknown",
    ),
    (
        "ecom",
        400,
        r#"[{"errorGroup":"InvalidRequest","errorCode":"transaction.amount","errorMessage":"?"}]"#,
        "vipps::invalid_amount",
    ),
    (
        "ecom",
        400,
        r#"[{"errorGroup":"InvalidRequest","errorCode":"customerInfo.mobileNumber"}]"#,
        "vipps::invalid_phone_number",
    ),
    (
        "ecom",
        400,
        r#"[{"errorGroup":"InvalidRequest","errorCode":"merchantInfo.fallBack"}]"#,
        "vipps::invalid_url",
    ),
    (
        "ecom",
        400,
        r#"[{"errorGroup":"InvalidRequest","errorCode":"url"}]"#,
        "vipps::invalid_url",
    ),
    (
        "ecom",
        400,
        r#"[{"errorGroup":"InvalidRequest","errorCode":"orderId","errorMessage":"bad"}]"#,
        "vipps::invalid_field",
    ),
    (
        "ecom",
        400,
        r#"[{"errorGroup":"Payment","errorMessage":"Captured amount exceeds the reserv"}]"#,
        "vipps::capture_exceeds_reserved",
    ),
    (
        "ecom",
        400,
        r#"[{"errorGroup":"Payment","errorMessage":"Refunded amount too large"}]"#,
        "vipps::refund_exceeds_captured",
    ),
    (
        "ecom",
        400,
        r#"[{"errorMessage":"User not registered with vipps"}]"#,
        "vipps::user_unknown",
    ),
    (
        "ecom",
        400,
        r#"[{"errorMessage":"Invalid MSISDN: 0047"}]"#,
        "vipps::invalid_phone_number",
    ),
    (
        "ecom",
        400,
        r#"[{"errorMessage":"Merchant not available, deactivated or blocked"}]"#,
        "vipps::not_allowed_for_merchant",
    ),
    (
        "ecom",
        400,
        r#"[{"errorGroup":"Merchant","errorCode":"37"}]"#,
        "vipps::not_allowed_for_merchant",
    ),
    (
        "ecom",
        400,
        r#"[{"errorGroup":"Merchant","errorCode":"35","errorMessage":"Registered order not found"}]"#,
        "vipps::reference_not_found",
    ),
    (
        "ecom",
        401,
        r#"[{"errorGroup":"Authentication","errorMessage":"x"}]"#,
        "vipps::invalid_access_token",
    ),
    (
        "ecom",
        400,
        r#"[{"errorGroup":"Merchant","errorMessage":"something new"}]"#,
        "vipps::not_allowed_for_merchant",
    ),
    (
        "ecom",
        400,
        r#"[{"errorGroup":"VippsError","errorCode":"98","errorMessage":"Too many concurrent requests"}]"#,
        "vipps::concurrent_operation",
    ),
    // OAuth.
    (
        "login",
        400,
        r#"{"error":"INVALID_CLIENT"}"#,
        "vipps::invalid_client_credentials",
    ),
    (
        "login",
        401,
        r#"{"error":"unauthorized_client","error_description":"AADSTS700016"}"#,
        "vipps::invalid_client_credentials",
    ),
    (
        "login",
        400,
        r#"{"error":"invalid_grant","error_description":"code expired"}"#,
        "vipps::login_error",
    ),
    (
        "accesstoken",
        401,
        r#"{"error":"invalid_client","error_description":"bad secret"}"#,
        "vipps::invalid_client_credentials",
    ),
    (
        "accesstoken",
        400,
        r#"{"error":"invalid_request"}"#,
        "vipps::invalid_client_credentials",
    ),
    ("accesstoken", 401, "", "vipps::invalid_client_credentials"),
    (
        "epayment",
        401,
        r#"{"error":"invalid_token","error_description":"The token is expired"}"#,
        "vipps::access_token_expired",
    ),
    (
        "other",
        401,
        r#"{"error":"invalid_token"}"#,
        "vipps::invalid_access_token",
    ),
    // Unknown stays unknown.
    ("epayment", 418, "I'm a teapot", "vipps::unknown"),
    ("epayment", 404, "", "vipps::unknown"),
    ("epayment", 400, r#"{"foo":"bar"}"#, "vipps::unknown"),
];

#[test]
fn reworded_truncated_and_recased_variants_keep_their_cause() {
    let mut failures = Vec::new();
    for (api, status, body, expected) in VARIANTS {
        let got = code_of(api, *status, body);
        if got != *expected {
            failures.push(format!(
                "{api} {status} {body}: expected {expected}, got {got}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} variants failed:\n{}",
        failures.len(),
        VARIANTS.len(),
        failures.join("\n")
    );
}

#[test]
fn partner_403_uses_the_requests_msn() {
    let body = r#"{"title":"Forbidden","status":403,"detail":"Partner keys cannot be used here"}"#;
    let mut ctx = context("epayment");
    let d = classify(
        &ctx,
        StatusCode::FORBIDDEN,
        &HeaderMap::new(),
        body.as_bytes(),
    );
    assert_eq!(d.cause(), Cause::PartnerMissingMsnHeader);
    ctx.msn = Some("123456".parse::<Msn>().unwrap());
    let d = classify(
        &ctx,
        StatusCode::FORBIDDEN,
        &HeaderMap::new(),
        body.as_bytes(),
    );
    assert_eq!(d.cause(), Cause::PartnerMsnNotConnected);
    assert!(d.evidence().iter().any(|e| e.contains("123456")));
}

#[test]
fn evidence_quotes_codes_and_messages() {
    let d = classify(
        &context("ecom"),
        StatusCode::BAD_REQUEST,
        &HeaderMap::new(),
        br#"[{"errorGroup":"Payment","errorCode":"61","errorMessage":"Captured amount exceeds the reserved amount"}]"#,
    );
    let evidence: Vec<&str> = d.evidence().iter().map(|e| e.as_ref()).collect();
    assert_eq!(evidence[0], "status 400");
    assert!(evidence.contains(&"eCom errorCode 61"), "{evidence:?}");
    let d = classify(
        &context("epayment"),
        StatusCode::UNAUTHORIZED,
        &HeaderMap::new(),
        br#"{"statusCode":401,"message":"Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."}"#,
    );
    assert!(
        d.evidence().iter().any(
            |e| e.starts_with("gateway message: Access denied due to invalid subscription key")
        ),
        "{:?}",
        d.evidence()
    );
}

#[test]
fn evidence_never_quotes_request_or_response_header_values() {
    let mut headers = HeaderMap::new();
    headers.insert(
        "www-authenticate",
        "Bearer error=\"invalid_token\" secret-ish-value"
            .parse()
            .unwrap(),
    );
    headers.insert(
        "x-trace",
        "abcdef0123456789abcdef0123456789".parse().unwrap(),
    );
    headers.insert("retry-after", "4242".parse().unwrap());
    for status in [401, 403, 429, 500] {
        let d = classify(
            &context("epayment"),
            StatusCode::from_u16(status).unwrap(),
            &headers,
            b"",
        );
        for e in d.evidence() {
            assert!(!e.contains("secret-ish-value"), "{e}");
            assert!(!e.contains("abcdef0123456789"), "{e}");
            assert!(!e.contains("4242"), "{e}");
        }
    }
}
