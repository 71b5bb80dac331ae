//! Parsers for every error body format of the Vipps MobilePay APIs.
//!
//! [`ErrorBody::parse`] never panics and never looks at more than
//! [`BODY_CAP`] bytes.

use serde::Deserialize;
use serde_json::Value;

use super::BODY_CAP;

/// One `extraDetails` entry of a problem details body: ePayment's
/// `{name, reason}`, Recurring's `{field, text}`, or a Checkout `errors` entry
/// (`{"field": ["message"]}`) and its `errorCode` (as `ErrorCode`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraDetail {
    /// `name` (`field` in Recurring): a field name, or `ErrorCode`.
    pub name: String,
    /// `reason` (`text` in Recurring): the message, or the error code.
    pub reason: String,
}

/// An RFC 7807 problem details body (ePayment, Recurring, Checkout…).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProblemDetails {
    /// `type`.
    pub r#type: Option<String>,
    /// `title`.
    pub title: Option<String>,
    /// `status`.
    pub status: Option<u16>,
    /// `detail`.
    pub detail: Option<String>,
    /// `instance`.
    pub instance: Option<String>,
    /// `traceId`.
    pub trace_id: Option<String>,
    /// `extraDetails`.
    pub extra_details: Vec<ExtraDetail>,
}

impl ProblemDetails {
    /// The numeric domain error code: `extraDetails[name=ErrorCode].reason`.
    pub fn error_code(&self) -> Option<u32> {
        self.error_code_text().and_then(|c| c.parse().ok())
    }

    /// The domain error code as written: a number (ePayment `6080`) or a
    /// Checkout code (`Session-00100`).
    pub fn error_code_text(&self) -> Option<&str> {
        self.extra_details
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case("errorcode"))
            .map(|d| d.reason.trim())
    }
}

/// One entry of an eCom error array.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EcomError {
    /// `errorGroup`: Authentication, Payment, InvalidRequest, VippsError, User, Merchant.
    pub error_group: Option<String>,
    /// `errorCode`: a number (`"61"`) or a field name (`"amount"`).
    pub error_code: Option<String>,
    /// `errorMessage`.
    pub error_message: Option<String>,
    /// `contextId`.
    pub context_id: Option<String>,
}

/// The API gateway's `{"statusCode": N, "message": "…"}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GatewayError {
    /// `statusCode`.
    pub status_code: Option<u16>,
    /// `message`.
    pub message: String,
}

/// An OAuth-style `{"error": "…", "error_description": "…"}` (Login, token endpoints).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OAuthError {
    /// `error`.
    pub error: String,
    /// `error_description`.
    pub error_description: Option<String>,
}

/// A parsed error body.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorBody {
    /// RFC 7807 problem details.
    Problem(ProblemDetails),
    /// An eCom error array.
    Ecom(Vec<EcomError>),
    /// The API gateway's status and message.
    Gateway(GatewayError),
    /// An OAuth error.
    OAuth(OAuthError),
    /// Some other JSON.
    Json(String),
    /// An HTML page; its text (tags removed, cut).
    Html(String),
    /// Plain text (cut).
    Text(String),
    /// Bytes that are not UTF-8.
    Binary {
        /// The length looked at.
        len: usize,
    },
    /// No body.
    Empty,
}

const TEXT_CAP: usize = 2048;

impl ErrorBody {
    /// The id Vipps MobilePay support asks for: a problem's `traceId` (else its
    /// `instance`), or an eCom error's `contextId`.
    pub fn trace_id(&self) -> Option<&str> {
        let id = match self {
            ErrorBody::Problem(p) => p.trace_id.as_deref().or(p.instance.as_deref()),
            ErrorBody::Ecom(errors) => errors.iter().find_map(|e| e.context_id.as_deref()),
            _ => None,
        };
        id.map(str::trim).filter(|id| !id.is_empty())
    }

    /// Parses an error body; looks at most at [`BODY_CAP`] bytes.
    pub fn parse(bytes: &[u8]) -> ErrorBody {
        let bytes = &bytes[..bytes.len().min(BODY_CAP)];
        let trimmed = bytes.trim_ascii();
        if trimmed.is_empty() {
            return ErrorBody::Empty;
        }
        if let Ok(value) = serde_json::from_slice::<Value>(trimmed) {
            return ErrorBody::from_json(value);
        }
        let Ok(text) = std::str::from_utf8(trimmed) else {
            // Non-UTF-8 or cut inside a character: keep what is valid.
            let valid = match std::str::from_utf8(trimmed) {
                Ok(t) => t,
                Err(e) => std::str::from_utf8(&trimmed[..e.valid_up_to()]).unwrap_or(""),
            };
            if valid.len() * 2 < trimmed.len() {
                return ErrorBody::Binary { len: trimmed.len() };
            }
            return ErrorBody::from_text(valid);
        };
        ErrorBody::from_text(text)
    }

    fn from_text(text: &str) -> ErrorBody {
        let lower_start: String = text
            .chars()
            .take(64)
            .collect::<String>()
            .to_ascii_lowercase();
        if lower_start.starts_with("<!doctype html")
            || lower_start.starts_with("<html")
            || lower_start.starts_with('<') && text.contains("</")
        {
            return ErrorBody::Html(cut(&strip_tags(text), TEXT_CAP));
        }
        ErrorBody::Text(cut(text, TEXT_CAP))
    }

    fn from_json(value: Value) -> ErrorBody {
        match value {
            Value::Array(items) => {
                let errors: Vec<EcomError> = items.iter().filter_map(ecom_error).collect();
                if errors.is_empty() {
                    ErrorBody::Json(cut(&Value::Array(items).to_string(), TEXT_CAP))
                } else {
                    ErrorBody::Ecom(errors)
                }
            }
            Value::Object(ref map) => {
                // Checkout: problem details with a string `errorCode` and `errors`.
                let checkout = map.contains_key("errorCode")
                    && !map.contains_key("errorGroup")
                    && ["errors", "title", "type", "status", "traceId"]
                        .iter()
                        .any(|k| map.contains_key(*k));
                if checkout {
                    return ErrorBody::Problem(problem(map));
                }
                if map.contains_key("errorCode") || map.contains_key("errorGroup") {
                    if let Some(e) = ecom_error(&value) {
                        return ErrorBody::Ecom(vec![e]);
                    }
                }
                if let Some(e) = map.get("error").and_then(Value::as_str) {
                    return ErrorBody::OAuth(OAuthError {
                        error: cut(e, 256),
                        error_description: str_field(map, "error_description"),
                    });
                }
                if map.contains_key("title")
                    || map.contains_key("type")
                    || map.contains_key("extraDetails")
                    || map.contains_key("traceId")
                {
                    return ErrorBody::Problem(problem(map));
                }
                if let Some(message) =
                    str_field(map, "message").or_else(|| str_field(map, "Message"))
                {
                    return ErrorBody::Gateway(GatewayError {
                        status_code: map.get("statusCode").and_then(status_number),
                        message,
                    });
                }
                if map.contains_key("detail") || map.contains_key("status") {
                    return ErrorBody::Problem(problem(map));
                }
                ErrorBody::Json(cut(&value.to_string(), TEXT_CAP))
            }
            Value::String(s) => ErrorBody::Text(cut(&s, TEXT_CAP)),
            other => ErrorBody::Json(cut(&other.to_string(), TEXT_CAP)),
        }
    }

    /// The human-readable message of the body, whatever its format: problem
    /// `title` and `detail`, eCom `errorMessage`, gateway `message`, OAuth
    /// `error_description`, or the text.
    pub fn message(&self) -> Option<String> {
        match self {
            ErrorBody::Problem(p) => match (&p.title, &p.detail) {
                (Some(t), Some(d)) => Some(format!("{t}: {d}")),
                (Some(t), None) => Some(t.clone()),
                (None, d) => d.clone(),
            },
            ErrorBody::Ecom(errors) => errors.first().and_then(|e| e.error_message.clone()),
            ErrorBody::Gateway(g) => Some(g.message.clone()),
            ErrorBody::OAuth(o) => Some(match &o.error_description {
                Some(d) => format!("{}: {d}", o.error),
                None => o.error.clone(),
            }),
            ErrorBody::Json(t) | ErrorBody::Html(t) | ErrorBody::Text(t) => Some(t.clone()),
            ErrorBody::Binary { .. } | ErrorBody::Empty => None,
        }
    }
}

#[derive(Deserialize)]
struct Detail {
    #[serde(default, alias = "field")]
    name: Value,
    #[serde(default, alias = "text")]
    reason: Value,
}

fn problem(map: &serde_json::Map<String, Value>) -> ProblemDetails {
    // ePayment and Recurring: `extraDetails` (Recurring writes `field`/`text`);
    // Order Management: `invalidParams`; all `[{name, reason}]`.
    let mut extra_details: Vec<ExtraDetail> = ["extraDetails", "invalidParams"]
        .into_iter()
        .filter_map(|field| map.get(field).and_then(Value::as_array))
        .flat_map(|items| {
            items
                .iter()
                .take(64)
                .filter_map(|item| serde_json::from_value::<Detail>(item.clone()).ok())
                .map(|d| ExtraDetail {
                    name: scalar(&d.name).unwrap_or_default(),
                    reason: scalar(&d.reason).unwrap_or_default(),
                })
        })
        .take(64)
        .collect();
    // Checkout: `errorCode` and `errors: {field: [messages]}`.
    if let Some(code) = str_field(map, "errorCode") {
        extra_details.push(ExtraDetail {
            name: "ErrorCode".to_owned(),
            reason: code,
        });
    }
    if let Some(errors) = map.get("errors").and_then(Value::as_object) {
        for (field, messages) in errors.iter().take(64) {
            let reason = match messages {
                Value::Array(items) => items.first().and_then(scalar),
                other => scalar(other),
            };
            extra_details.push(ExtraDetail {
                name: cut(field, 256),
                reason: reason.unwrap_or_default(),
            });
        }
    }
    ProblemDetails {
        r#type: str_field(map, "type"),
        title: str_field(map, "title"),
        status: map.get("status").and_then(status_number),
        detail: str_field(map, "detail"),
        instance: str_field(map, "instance"),
        trace_id: str_field(map, "traceId").or_else(|| str_field(map, "traceid")),
        extra_details,
    }
}

fn ecom_error(value: &Value) -> Option<EcomError> {
    let map = value.as_object()?;
    let e = EcomError {
        error_group: str_field(map, "errorGroup"),
        error_code: str_field(map, "errorCode"),
        error_message: str_field(map, "errorMessage"),
        context_id: str_field(map, "contextId"),
    };
    (e.error_group.is_some() || e.error_code.is_some() || e.error_message.is_some()).then_some(e)
}

/// A string or number field, as a string (cut at 2 KiB).
fn str_field(map: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(scalar)
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(cut(s, TEXT_CAP)),
        Value::Number(n) => Some(cut(&n.to_string(), 64)),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn status_number(value: &Value) -> Option<u16> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    format!("{}…", crate::context::prefix(s, max))
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len().min(TEXT_CAP));
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                if !out.ends_with(' ') {
                    out.push(' ');
                }
            }
            c if !(in_tag || c.is_whitespace() && out.ends_with(' ')) => {
                out.push(if c.is_whitespace() { ' ' } else { c });
            }
            _ => {}
        }
        if out.len() > TEXT_CAP {
            break;
        }
    }
    out.trim().to_owned()
}
