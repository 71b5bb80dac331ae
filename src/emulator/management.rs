//! The Management API, read side: `GET /management/v1/sales-units/{msn}` and
//! `GET /management/v1/merchants/{orgno}/sales-units`.
//!
//! Shapes from vippsas/management-api `docs/swagger.yaml` (`SalesUnit`,
//! `GetMSNResponse`, and the `Error` problem details); guide:
//! <https://developer.vippsmobilepay.com/docs/APIs/management-api/>. Credentials:
//! the standard access token and subscription key, checked by the same code as
//! every other access-token API. Partner keys see the sales units connected to the
//! partner ("When used by a partner: Only returns sales units connected to the
//! partner"); merchant keys see their own.
//!
//! Every preset sales unit belongs to one organization, `987654321` (the spec's
//! example). Product orders and updates are not emulated (`404`).

use http::request::Parts;
use http::{Method, Response};
use serde_json::{Value, json};

use super::Shared;
use super::bodies::{self, Body};
use super::server::{KeyEntry, KeyKind};
use crate::{Environment, Msn};

/// The organization number of every preset sales unit.
pub(crate) const ORGNO: &str = "987654321";

/// Whether a path belongs to the Management API.
pub(crate) fn handles(path: &str) -> bool {
    path.starts_with("/management/")
}

/// Answers an authenticated Management API call.
pub(crate) fn answer(
    shared: &Shared,
    environment: Environment,
    parts: &Parts,
    caller: &KeyEntry,
) -> Response<Body> {
    let path = parts.uri.path();
    let segments: Vec<&str> = path
        .trim_start_matches("/management/v1/")
        .split('/')
        .collect();
    if parts.method != Method::GET {
        return bodies::respond(404, bodies::JSON, bodies::NOT_FOUND);
    }
    // What the caller may see: a partner its connected units, a merchant its own.
    let visible = |msn: Msn| caller.connects(msn);
    match segments.as_slice() {
        ["sales-units", msn] => {
            let Some(msn) = msn.parse::<u64>().ok().and_then(|m| Msn::new(m).ok()) else {
                return error(400, "MSN validation error", "MSN must be digits", path);
            };
            if !visible(msn) {
                return error(
                    403,
                    "Forbidden",
                    "The sales unit is not available with these keys",
                    path,
                );
            }
            let login_only = shared.keys.values().any(|k| {
                k.environment == environment
                    && matches!(k.kind, KeyKind::Merchant { msn: m, ecommerce: false } if m == msn)
            });
            json_response(
                200,
                &json!({
                    "msn": msn.to_string(),
                    "name": format!("Sales unit {msn}"),
                    "orgno": ORGNO,
                    "additionalDetails": {
                        "skipLandingPage": false,
                        "isPureLogin": login_only,
                        "captureType": if login_only { "NotApplicable" } else { "ReserveCapture" },
                        "recurring": !login_only,
                    },
                }),
            )
        }
        ["merchants", orgno, "sales-units"] => {
            if orgno.len() != 9 || !orgno.bytes().all(|b| b.is_ascii_digit()) {
                return error(400, "Validation error", "orgno must be 9 digits", path);
            }
            if *orgno != ORGNO {
                return error(404, "Not Found", "No merchant with this orgno", path);
            }
            let mut msns: Vec<Msn> = match &caller.kind {
                KeyKind::Merchant { msn, .. } => vec![*msn],
                KeyKind::Partner {
                    connected: Some(set),
                } => set.iter().copied().collect(),
                // Partner keys without a list: every merchant of the environment.
                KeyKind::Partner { connected: None } => shared.merchant_msns(environment),
            };
            msns.sort();
            let msns: Vec<Value> = msns.iter().map(|m| Value::String(m.to_string())).collect();
            json_response(200, &json!({ "msn": msns }))
        }
        _ => bodies::respond(404, bodies::JSON, bodies::NOT_FOUND),
    }
}

/// The spec's `Error` problem details (`application/json`).
fn error(status: u16, title: &str, detail: &str, instance: &str) -> Response<Body> {
    bodies::plain_problem(status, title, detail, instance, bodies::JSON)
}

fn json_response(status: u16, value: &Value) -> Response<Body> {
    bodies::respond(
        status,
        bodies::JSON,
        serde_json::to_vec(value).unwrap_or_default(),
    )
}
