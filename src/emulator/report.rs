//! The specialized token endpoint, `POST /miami/v1/token`, and the Report API:
//! `GET /settlement/v1/ledgers`, `GET /report/v2/ledgers/{ledgerId}/{topic}/dates/{ledgerDate}`
//! and `GET /report/v2/ledgers/{ledgerId}/{topic}/feed`.
//!
//! From the official sources:
//!
//! - `/miami/v1/token` takes `client_id` and `client_secret` headers and no
//!   subscription key, and answers `{token_type, expires_in, access_token}`; the
//!   token lives 15 minutes (`access-token.yaml`, `TokenResponse`).
//! - Accounting keys give the Report API only, in production only ("The Management
//!   API and Report API are not available in the test environment, so you will
//!   only need production keys":
//!   <https://developer.vippsmobilepay.com/docs/APIs/access-token-api/partner-authentication>).
//! - Merchants read their own sales unit's reports with their standard keys (access
//!   token and subscription key); other partner keys have no access
//!   (<https://developer.vippsmobilepay.com/docs/APIs/report-api/api-guide/overview/>).
//! - Shapes from vippsas/vipps-report-api `docs/swagger.yaml` (2.0): a `Ledger` per
//!   sales unit with `settlesForRecipientHandles: ["api:<msn>"]`; reports are
//!   `{cursor, items, tryLater}`; a date not yet available is `404`; `401` is
//!   `{"code": "Unauthorized", "message": "Please check your API keys"}`.
//!
//! The emulator settles nothing: a closed date's report has no items, today's says
//! `tryLater`, and the feed is at its end.

use http::request::Parts;
use http::{HeaderMap, Method, Response};
use serde_json::{Value, json};

use super::bodies::{self, Body};
use super::dates::epoch_day;
use super::jwt::{self, Claims};
use super::presets::PRODUCTION_ACCOUNTING;
use super::server::{Authenticated, bearer_claims, client_matches};
use super::{Endpoint, Shared};

use crate::{Environment, Msn};

/// The lifetime of a `/miami/v1/token` token, in both environments.
pub(crate) const LIFETIME_SECS: u64 = 15 * 60;

const UNAUTHORIZED: &str = r#"{"code": "Unauthorized", "message": "Please check your API keys"}"#;

/// `POST /miami/v1/token`: accounting keys in production.
pub(crate) fn token(
    shared: &Shared,
    environment: Environment,
    headers: &HeaderMap,
) -> Response<Body> {
    let keys = PRODUCTION_ACCOUNTING;
    if environment != Environment::Production
        || !client_matches(headers, keys.client_id(), keys.client_secret())
    {
        return bodies::respond(401, bodies::JSON, bodies::INVALID_CLIENT);
    }
    let now_ms = shared.now_ms();
    let exp_ms = now_ms.saturating_add(LIFETIME_SECS * 1000);
    let claims = Claims {
        iss: jwt::ISSUER.to_owned(),
        aud: jwt::RESOURCE.to_owned(),
        iat: now_ms / 1000,
        nbf: now_ms / 1000,
        exp: exp_ms / 1000,
        exp_ms,
        env: environment.as_str().to_owned(),
        msn: None,
        partner: true,
        accounting: true,
        client_id: keys.client_id().to_owned(),
        skf: String::new(),
        jti: format!("{:016x}", fastrand::u64(..)),
    };
    let body = json!({
        "token_type": "Bearer",
        "expires_in": LIFETIME_SECS.to_string(),
        "access_token": jwt::mint(&shared.signing_key, &claims),
    });
    json_response(200, &body)
}

/// Whether a path belongs to the Report API.
pub(crate) fn handles(path: &str) -> bool {
    path == "/settlement/v1/ledgers" || path.starts_with("/report/v2/ledgers/")
}

/// Answers a Report API call. `merchant` authenticates a call with standard keys
/// (the gateway's checks) and gives its MSN.
pub(crate) fn answer(
    shared: &Shared,
    environment: Environment,
    parts: &Parts,
    merchant: impl FnOnce() -> Result<Authenticated, Response<Body>>,
) -> Response<Body> {
    // An accounting token needs no subscription key; anything else goes through
    // the gateway's checks of standard keys.
    let msns: Vec<Msn> = match accounting_token(shared, environment, &parts.headers) {
        Some(msns) => msns,
        None => match merchant() {
            Ok(Authenticated {
                msn,
                partner: false,
            }) => vec![msn],
            // Only accounting partners have access.
            Ok(Authenticated { partner: true, .. }) => {
                return bodies::respond(401, bodies::JSON, UNAUTHORIZED);
            }
            Err(refused) => return refused,
        },
    };
    if parts.method != Method::GET {
        return bodies::respond(404, bodies::JSON, bodies::NOT_FOUND);
    }
    let path = parts.uri.path();
    if path == "/settlement/v1/ledgers" {
        let items: Vec<Value> = msns
            .iter()
            .map(|msn| {
                json!({
                    "ledgerId": ledger_id(*msn),
                    "currency": shared.currency(environment, *msn),
                    "payoutBankAccount": {"scheme": "BBAN:NO", "id": "86011117947"},
                    "firstPayout": null,
                    "lastPayout": null,
                    "owner": {"scheme": "business:NO:ORG", "id": "987654321"},
                    "settlesForRecipientHandles": [format!("api:{msn}")],
                })
            })
            .collect();
        return json_response(200, &json!({"cursor": "", "items": items}));
    }
    let segments: Vec<&str> = path
        .trim_start_matches("/report/v2/ledgers/")
        .split('/')
        .collect();
    let (ledger, topic, date) = match segments.as_slice() {
        [ledger, topic, "dates", date] => (*ledger, *topic, Some(*date)),
        [ledger, topic, "feed"] => (*ledger, *topic, None),
        _ => return bodies::respond(404, bodies::JSON, bodies::NOT_FOUND),
    };
    if !msns.iter().any(|msn| ledger_id(*msn) == ledger) {
        return problem(
            403,
            "Forbidden",
            &format!("No access to ledger {ledger}"),
            path,
        );
    }
    if !matches!(topic, "funds" | "fees") {
        return problem(400, "Bad Request", "topic must be one of funds, fees", path);
    }
    let Some(date) = date else {
        // The feed: at its end, with a cursor to poll again.
        return json_response(
            200,
            &json!({"cursor": format!("{ledger}-{topic}-end"), "items": [], "tryLater": true}),
        );
    };
    let Some(day) = epoch_day(date) else {
        return problem(
            400,
            "Bad Request",
            "ledgerDate must be a date in the format yyyy-MM-dd",
            path,
        );
    };
    let today = i64::try_from(shared.now() / 86_400).unwrap_or(i64::MAX);
    match day.cmp(&today) {
        std::cmp::Ordering::Greater => problem(
            404,
            "Not Found",
            "The report for this date is not available yet",
            path,
        ),
        // Not closed yet: try again later.
        std::cmp::Ordering::Equal => {
            json_response(200, &json!({"cursor": "", "items": [], "tryLater": true}))
        }
        std::cmp::Ordering::Less => {
            json_response(200, &json!({"cursor": "", "items": [], "tryLater": false}))
        }
    }
}

/// The MSNs of a valid accounting token in the request, if it has one.
fn accounting_token(
    shared: &Shared,
    environment: Environment,
    headers: &HeaderMap,
) -> Option<Vec<Msn>> {
    let claims = bearer_claims(shared, environment, headers)?;
    let valid = claims.accounting && claims.client_id == PRODUCTION_ACCOUNTING.client_id();
    valid.then(|| {
        PRODUCTION_ACCOUNTING
            .msns()
            .iter()
            .filter_map(|m| Msn::new(*m).ok())
            .collect()
    })
}

/// The counted endpoint of the specialized token call.
pub(crate) fn endpoint(method: &Method, segments: &[&str]) -> Option<Endpoint> {
    (method == Method::POST && segments == ["miami", "v1", "token"])
        .then_some(Endpoint::SpecializedToken)
}

fn ledger_id(msn: Msn) -> String {
    format!("30{msn}")
}

fn problem(status: u16, title: &str, detail: &str, instance: &str) -> Response<Body> {
    bodies::plain_problem(status, title, detail, instance, bodies::PROBLEM_JSON)
}

fn json_response(status: u16, value: &Value) -> Response<Body> {
    bodies::respond(
        status,
        bodies::JSON,
        serde_json::to_vec(value).unwrap_or_default(),
    )
}
