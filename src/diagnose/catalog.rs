//! The catalogue from an error response to a [`Cause`]: [`classify`].

use std::borrow::Cow;

use http::{HeaderMap, StatusCode};

use super::body::{EcomError, ErrorBody, ProblemDetails};
use super::documented;
use super::wording::{Normalized, WORDING};
use crate::context::{Api, RequestContext};
use crate::error::{Cause, Diagnosis};

/// What the docs say of a 500 (https://developer.vippsmobilepay.com/docs/knowledge-base/errors/),
/// and so why the retry layer does not repeat one.
const DOCS_ON_500: &str = "a 500 is \"an internal Vipps MobilePay problem\"; the docs name 423 and 429, not 500, as errors to retry with the same Idempotency-Key: https://developer.vippsmobilepay.com/docs/knowledge-base/errors/";

/// The longest piece of body text quoted in evidence.
const QUOTE_CAP: usize = 120;

/// Classifies an error response: from the request's context, the status, the
/// response headers and the body bytes (at most [`BODY_CAP`](super::BODY_CAP) are
/// looked at) to a [`Diagnosis`] with its evidence and the parsed body.
///
/// A pure function: no I/O, never panics. Evidence quotes the status, the domain
/// codes and (cut) messages of the body, and the MSN; never another header value.
///
/// Classification works on structure first and wording second:
///
/// 1. the status where it alone decides (5xx, 429, 3xx);
/// 2. the domain codes: ePayment/Recurring `extraDetails` `ErrorCode`, eCom
///    `errorCode` numbers and field names, OAuth `error`;
/// 3. the status where it decides once codes are absent (409, 423), and problem
///    details naming an invalid field;
/// 4. the wording of titles and messages: case-insensitive stems, so that a
///    reworded, re-cased or truncated message of the same kind still matches;
/// 5. eCom `errorGroup`, then what a bare 401 or 403 means for the request's API
///    and MSN;
/// 6. [`Cause::Unknown`] for the rest (the caller keeps status, headers and body).
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use tower_vipps::{Api, Cause, RequestContext};
/// use tower_vipps::diagnose::classify;
///
/// let context = RequestContext { api: Api::EPayment, ..Default::default() };
/// let body = br#"{"statusCode": 401, "message": "Access denied due to invalid subscription key."}"#;
/// let diagnosis = classify(&context, StatusCode::UNAUTHORIZED, &HeaderMap::new(), body);
/// assert_eq!(diagnosis.cause(), Cause::InvalidSubscriptionKey);
/// assert_eq!(diagnosis.code(), "vipps::invalid_subscription_key");
/// ```
pub fn classify(
    context: &RequestContext,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Diagnosis {
    let parsed = ErrorBody::parse(body);
    let mut evidence: Vec<Cow<'static, str>> = vec![format!("status {}", status.as_u16()).into()];
    describe(context, &parsed, &mut evidence);
    let text = Normalized::of(&parsed);
    let cause = decide(context, status, headers, &parsed, &text, &mut evidence);
    let mut diagnosis = Diagnosis::new(cause);
    for e in evidence {
        diagnosis = diagnosis.with_evidence(e);
    }
    diagnosis.with_body(parsed)
}

fn decide(
    context: &RequestContext,
    status: StatusCode,
    headers: &HeaderMap,
    body: &ErrorBody,
    text: &Normalized,
    evidence: &mut Vec<Cow<'static, str>>,
) -> Cause {
    let code = status.as_u16();

    // 1. The status alone.
    if status.is_server_error() {
        if code == 500 {
            evidence.push(DOCS_ON_500.into());
        }
        return Cause::ServerError;
    }
    if code == 429 {
        if headers.contains_key(http::header::RETRY_AFTER) {
            evidence.push("a Retry-After header is present".into());
        }
        return Cause::RateLimited;
    }
    if status.is_redirection() {
        evidence.push("a redirect is never followed with credentials".into());
        return Cause::UnexpectedRedirect;
    }

    // 2. Domain codes.
    match body {
        ErrorBody::Problem(problem) => {
            if let Some(cause) = problem.error_code().and_then(|c| epayment_code(c, status)) {
                return cause;
            }
            // Documented problem types (Recurring `#identifier`); a validation
            // error names its fields.
            if let Some(cause) = problem
                .r#type
                .as_deref()
                .and_then(|t| documented::problem_type(context.api, t))
            {
                if cause == Cause::InvalidField {
                    if let Some(field) = problem_field(problem) {
                        return field;
                    }
                }
                // `charge-creation-failed` and the like are generic; the detail
                // says when the agreement is why.
                if cause == Cause::InvalidPaymentState
                    && WORDING
                        .iter()
                        .any(|r| r.cause == Cause::AgreementNotActive && r.matches(code, text))
                {
                    return Cause::AgreementNotActive;
                }
                return cause;
            }
            if context.api == Api::Checkout && matches!(code, 401 | 404 | 409) {
                if let Some(cause) = documented::checkout_status(code) {
                    evidence.push(format!("Checkout answers {code} for this").into());
                    return cause;
                }
            }
        }
        ErrorBody::Ecom(errors) => {
            if let Some(cause) = errors.iter().find_map(|e| ecom_code(context, status, e)) {
                return cause;
            }
        }
        ErrorBody::OAuth(oauth) => {
            let error = oauth.error.trim().to_ascii_lowercase();
            if error == "invalid_token" && context.api != Api::AccessToken {
                return if text.has_any(&["expired"]) {
                    Cause::AccessTokenExpired
                } else {
                    Cause::InvalidAccessToken
                };
            }
            if matches!(error.as_str(), "invalid_client" | "unauthorized_client")
                || context.api == Api::AccessToken
            {
                return Cause::InvalidClientCredentials;
            }
            if matches!(context.api, Api::Login | Api::Other) {
                return Cause::LoginError;
            }
        }
        _ => {}
    }

    // 3. The status once codes are absent; fields named by problem details.
    match code {
        409 => return Cause::IdempotencyConflict,
        423 => return Cause::ConcurrentOperation,
        _ => {}
    }
    if let ErrorBody::Problem(problem) = body {
        if matches!(code, 400 | 422) {
            if let Some(cause) = problem_field(problem) {
                return cause;
            }
        }
    }

    // 4. Wording.
    if let Some(rule) = WORDING.iter().find(|rule| rule.matches(code, text)) {
        evidence.push(rule.evidence(text).into());
        return rule.cause;
    }

    // 5. eCom error groups; bare 401 and 403.
    if let ErrorBody::Ecom(errors) = body {
        if let Some(cause) = errors.iter().find_map(|e| ecom_group(context, e)) {
            return cause;
        }
    }
    match code {
        401 => unauthorized(context, headers, evidence),
        403 => forbidden(context, text, evidence),
        _ => Cause::Unknown,
    }
}

/// The ePayment (and Recurring) `ErrorCode` catalogue.
fn epayment_code(code: u32, status: StatusCode) -> Option<Cause> {
    Some(match code {
        3010 if status.is_server_error() => Cause::ServerError,
        3010 => Cause::InvalidField,
        4010 | 4020 | 4150 => Cause::IdempotencyConflict,
        4040 => Cause::InvalidAmount,
        4050 | 4060 | 4080 | 4100..=4130 | 4140 => Cause::InvalidField,
        4070 => Cause::InvalidPhoneNumber,
        4090 => Cause::InvalidUrl,
        5010 | 5020 | 5030 | 5050 | 5060 | 5070 | 5080 | 5100 => Cause::NotAllowedForMerchant,
        5040 => Cause::InvalidCurrency,
        5090 => Cause::ReferenceNotFound,
        6010 => Cause::AmountTooSmall,
        6080 => Cause::CaptureBeforeReservation,
        6090 => Cause::CaptureExceedsReserved,
        6150 => Cause::RefundExceedsCaptured,
        6160 => Cause::ConcurrentOperation,
        6020..=6230 => Cause::InvalidPaymentState,
        7010 => Cause::UserUnknown,
        10010..=10070 => Cause::TestUserNotReady,
        _ => return None,
    })
}

/// One eCom error: a numeric `errorCode`, or a field name for `InvalidRequest`.
fn ecom_code(context: &RequestContext, status: StatusCode, error: &EcomError) -> Option<Cause> {
    let code = error.error_code.as_deref()?.trim();
    let group = error.error_group.as_deref().map(str::trim);
    if let Ok(number) = code.parse::<u32>() {
        if number == 1 {
            return Some(authentication(context));
        }
        // The documented table, by group (see `documented.rs`).
        if let Some(cause) = documented::ecom(group, number) {
            return Some(cause);
        }
        // A documented group, a number not listed for it: the message and the
        // group decide.
        if group.is_some_and(documented::is_ecom_group) {
            return None;
        }
        return (number >= 1000)
            .then(|| epayment_code(number, status))
            .flatten();
    }
    let is_field = code
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".[]_-/".contains(c))
        && code.chars().any(|c| c.is_ascii_alphabetic());
    if is_field && group.is_none_or(|g| g.eq_ignore_ascii_case("InvalidRequest")) {
        return Some(field_cause(code));
    }
    None
}

/// eCom `errorGroup`, when no code decided.
fn ecom_group(context: &RequestContext, error: &EcomError) -> Option<Cause> {
    let group = error.error_group.as_deref()?.trim().to_ascii_lowercase();
    Some(match group.as_str() {
        "authentication" => authentication(context),
        "merchant" => Cause::NotAllowedForMerchant,
        "user" | "customer" => Cause::UserUnknown,
        "invalidrequest" => Cause::InvalidField,
        "vippserror" => Cause::ServerError,
        "payment" => Cause::InvalidPaymentState,
        _ => return None,
    })
}

fn authentication(context: &RequestContext) -> Cause {
    match context.api {
        Api::AccessToken => Cause::InvalidClientCredentials,
        _ => Cause::InvalidAccessToken,
    }
}

/// A field named in problem details' `extraDetails` (other than `ErrorCode`).
fn problem_field(problem: &ProblemDetails) -> Option<Cause> {
    let field = problem
        .extra_details
        .iter()
        .find(|d| !d.name.eq_ignore_ascii_case("errorcode") && !d.name.trim().is_empty())?;
    Some(field_cause(&field.name))
}

/// What an invalid field means, by its name (`amount`, `customer.phoneNumber`,
/// `callbackPrefix`…); any other field is [`Cause::InvalidField`].
fn field_cause(name: &str) -> Cause {
    let lower = name.trim().to_ascii_lowercase();
    let mut segments = lower
        .split(['.', '/', '[', ']'])
        .filter(|s| !s.is_empty() && !s.chars().all(|c| c.is_ascii_digit()));
    let mut last = segments.next_back().unwrap_or("");
    if last == "value" {
        last = segments.next_back().unwrap_or(last);
    }
    match last {
        "amount" | "transactionamount" | "modificationamount" => Cause::InvalidAmount,
        "mobilenumber" | "phonenumber" | "msisdn" | "phone" => Cause::InvalidPhoneNumber,
        "currency" => Cause::InvalidCurrency,
        "fallback"
        | "url"
        | "callbackprefix"
        | "returnurl"
        | "callbackurl"
        | "redirecturl"
        | "consentremovalprefix"
        | "shippingdetailsprefix" => Cause::InvalidUrl,
        other if other.ends_with("url") => Cause::InvalidUrl,
        _ => Cause::InvalidField,
    }
}

/// A bare 401: what it means depends on the endpoint.
fn unauthorized(
    context: &RequestContext,
    headers: &HeaderMap,
    evidence: &mut Vec<Cow<'static, str>>,
) -> Cause {
    match context.api {
        Api::AccessToken => {
            evidence.push("401 from the access token endpoint".into());
            return Cause::InvalidClientCredentials;
        }
        Api::Login => return Cause::LoginError,
        // checkout.yaml POST /session: 401 "Unauthorized: Invalid credentials",
        // the `client_id`/`client_secret` headers (Checkout takes no token).
        Api::Checkout => {
            evidence.push(
                "401 from Checkout: it authenticates with client_id and client_secret".into(),
            );
            return Cause::InvalidClientCredentials;
        }
        _ => {}
    }
    let challenge = headers
        .get(http::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if challenge.contains("expired") {
        evidence.push("the WWW-Authenticate challenge says the token expired".into());
        return Cause::AccessTokenExpired;
    }
    evidence.push("401 on an API call: the gateway rejected the access token".into());
    Cause::InvalidAccessToken
}

/// A 403 that no wording explained: partner keys, or the product is missing.
fn forbidden(
    context: &RequestContext,
    text: &Normalized,
    evidence: &mut Vec<Cow<'static, str>>,
) -> Cause {
    let mentions_msn = text.has_any(&["merchant serial number", " msn ", "partner"]);
    match context.msn {
        None if mentions_msn => {
            evidence.push("the request carried no Merchant-Serial-Number header".into());
            Cause::PartnerMissingMsnHeader
        }
        Some(msn) if text.has_any(&["partner"]) => {
            evidence.push(format!("the request acted for Merchant-Serial-Number {msn}").into());
            Cause::PartnerMsnNotConnected
        }
        _ => Cause::Forbidden,
    }
}

/// The evidence the body itself gives: its kind, codes and (cut) messages.
fn describe(context: &RequestContext, body: &ErrorBody, evidence: &mut Vec<Cow<'static, str>>) {
    match body {
        ErrorBody::Problem(p) => {
            if let Some(code) = p.error_code() {
                let api = match context.api {
                    Api::Recurring => "Recurring",
                    Api::Checkout => "Checkout",
                    _ => "ePayment",
                };
                evidence.push(format!("{api} ErrorCode {code}").into());
            }
            if let Some(title) = &p.title {
                evidence.push(format!("title: {}", quote(title)).into());
            }
            if let Some(detail) = &p.detail {
                evidence.push(format!("detail: {}", quote(detail)).into());
            }
            for d in p
                .extra_details
                .iter()
                .filter(|d| !d.name.eq_ignore_ascii_case("errorcode"))
                .take(3)
            {
                evidence.push(format!("field {}: {}", quote(&d.name), quote(&d.reason)).into());
            }
        }
        ErrorBody::Ecom(errors) => {
            for e in errors.iter().take(3) {
                if let Some(code) = &e.error_code {
                    evidence.push(format!("eCom errorCode {}", quote(code)).into());
                }
                if let Some(group) = &e.error_group {
                    evidence.push(format!("eCom errorGroup {}", quote(group)).into());
                }
                if let Some(message) = &e.error_message {
                    evidence.push(format!("eCom errorMessage: {}", quote(message)).into());
                }
            }
        }
        ErrorBody::Gateway(g) => {
            evidence.push(format!("gateway message: {}", quote(&g.message)).into());
        }
        ErrorBody::OAuth(o) => {
            evidence.push(format!("OAuth error {}", quote(&o.error)).into());
            if let Some(d) = &o.error_description {
                evidence.push(format!("error_description: {}", quote(d)).into());
            }
        }
        ErrorBody::Json(t) => evidence.push(format!("JSON body: {}", quote(t)).into()),
        ErrorBody::Html(t) => evidence.push(format!("HTML body: {}", quote(t)).into()),
        ErrorBody::Text(t) => evidence.push(format!("message: {}", quote(t)).into()),
        ErrorBody::Binary { len } => {
            evidence.push(format!("a body of {len} bytes that is not text").into());
        }
        ErrorBody::Empty => evidence.push("empty body".into()),
    }
}

/// Cuts a piece of body text for evidence, on one line.
fn quote(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let one_line = one_line.trim();
    if one_line.len() <= QUOTE_CAP {
        return one_line.to_owned();
    }
    let mut end = QUOTE_CAP;
    while !one_line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &one_line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(api: Api) -> RequestContext {
        RequestContext {
            api,
            ..Default::default()
        }
    }

    fn run(api: Api, status: u16, body: &str) -> Diagnosis {
        classify(
            &ctx(api),
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body.as_bytes(),
        )
    }

    #[test]
    fn every_epayment_code_maps() {
        for code in [
            4010, 4020, 4040, 4050, 4060, 4070, 4080, 4090, 4100, 4110, 4120, 4130, 4140, 4150,
            5010, 5020, 5030, 5040, 5050, 5060, 5070, 5080, 5090, 5100, 6010, 6020, 6030, 6040,
            6050, 6060, 6070, 6080, 6090, 6100, 6110, 6120, 6130, 6140, 6150, 6160, 6170, 6180,
            6190, 6200, 6210, 6220, 6230, 7010, 10010, 10020, 10030, 10040, 10050, 10060, 10070,
        ] {
            let cause = epayment_code(code, StatusCode::BAD_REQUEST);
            assert!(cause.is_some(), "{code}");
            assert_ne!(cause, Some(Cause::Unknown), "{code}");
        }
        assert_eq!(
            epayment_code(3010, StatusCode::INTERNAL_SERVER_ERROR),
            Some(Cause::ServerError)
        );
        assert_eq!(
            epayment_code(3010, StatusCode::BAD_REQUEST),
            Some(Cause::InvalidField)
        );
        assert_eq!(
            epayment_code(6170, StatusCode::BAD_REQUEST),
            Some(Cause::InvalidPaymentState)
        );
        assert_eq!(epayment_code(9999, StatusCode::BAD_REQUEST), None);
    }

    #[test]
    fn ecom_card_declines() {
        for code in 41..=45 {
            let body = format!(
                r#"[{{"errorGroup":"Payment","errorCode":"{code}","errorMessage":"Refused by issuer","contextId":"x"}}]"#
            );
            assert_eq!(
                run(Api::ECom, 402, &body).cause(),
                Cause::PaymentDeclined,
                "{code}"
            );
        }
    }

    #[test]
    fn evidence_names_code_and_status() {
        let d = run(
            Api::EPayment,
            400,
            r#"{"title":"x","extraDetails":[{"name":"ErrorCode","reason":"6090"}]}"#,
        );
        assert_eq!(d.cause(), Cause::CaptureExceedsReserved);
        assert_eq!(d.evidence()[0], "status 400");
        assert!(d.evidence().iter().any(|e| e == "ePayment ErrorCode 6090"));
        assert!(matches!(d.body(), Some(ErrorBody::Problem(_))));
    }

    #[test]
    fn partner_403_depends_on_msn() {
        let body = r#"{"type":"https://httpstatuses.io/403","title":"Forbidden","status":403}"#;
        assert_eq!(run(Api::EPayment, 403, body).cause(), Cause::Forbidden);
        let missing = r#"{"title":"Forbidden","status":403,"detail":"The Merchant-Serial-Number header is required when using partner keys."}"#;
        assert_eq!(
            run(Api::EPayment, 403, missing).cause(),
            Cause::PartnerMissingMsnHeader
        );
        let partner = "Forbidden: partner keys";
        assert_eq!(
            run(Api::EPayment, 403, partner).cause(),
            Cause::PartnerMissingMsnHeader
        );
        let mut with_msn = ctx(Api::EPayment);
        with_msn.msn = Some("123456".parse().unwrap());
        let d = classify(
            &with_msn,
            StatusCode::FORBIDDEN,
            &HeaderMap::new(),
            partner.as_bytes(),
        );
        assert_eq!(d.cause(), Cause::PartnerMsnNotConnected);
        assert!(d.evidence().iter().any(|e| e.contains("123456")));
    }

    #[test]
    fn field_names() {
        assert_eq!(
            field_cause("customer.phoneNumber"),
            Cause::InvalidPhoneNumber
        );
        assert_eq!(field_cause("amount.value"), Cause::InvalidAmount);
        assert_eq!(field_cause("Amount.Currency"), Cause::InvalidCurrency);
        assert_eq!(field_cause("merchantInfo.fallBack"), Cause::InvalidUrl);
        assert_eq!(field_cause("returnUrl"), Cause::InvalidUrl);
        assert_eq!(field_cause("reference"), Cause::InvalidField);
        assert_eq!(field_cause(""), Cause::InvalidField);
    }
}
