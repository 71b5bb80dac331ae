//! `Vipps-System-*` rules.

use http::HeaderName;

use super::Facts;
use crate::headers::{
    VIPPS_SYSTEM_NAME, VIPPS_SYSTEM_PLUGIN_NAME, VIPPS_SYSTEM_PLUGIN_VERSION, VIPPS_SYSTEM_VERSION,
};
use crate::{Cause, Diagnosis};

/// The longest `Vipps-System-*` value this rule accepts: the ePayment API
/// specification gives the headers a maximum length of 30 characters.
pub(crate) const MAX_SYSTEM_HEADER: usize = 30;

const ALL: [(HeaderName, &str); 4] = [
    (VIPPS_SYSTEM_NAME, "Vipps-System-Name"),
    (VIPPS_SYSTEM_VERSION, "Vipps-System-Version"),
    (VIPPS_SYSTEM_PLUGIN_NAME, "Vipps-System-Plugin-Name"),
    (VIPPS_SYSTEM_PLUGIN_VERSION, "Vipps-System-Plugin-Version"),
];

/// `Vipps-System-Name` or `Vipps-System-Version` missing (the plugin headers are
/// only for plugins), or any `Vipps-System-*` value empty or longer than 30
/// characters.
pub(super) fn system_headers(f: &Facts<'_>) -> Option<Diagnosis> {
    let mut diagnosis: Option<Diagnosis> = None;
    let mut add = |evidence: String| {
        let d = diagnosis
            .take()
            .unwrap_or_else(|| Diagnosis::new(Cause::SystemHeaders));
        diagnosis = Some(d.with_evidence(evidence));
    };
    for (i, (name, shown)) in ALL.into_iter().enumerate() {
        match f.headers.get(name) {
            None if i < 2 => add(format!("no `{shown}` header")),
            None => {}
            Some(v) if v.as_bytes().iter().all(|b| b.is_ascii_whitespace()) => {
                add(format!("`{shown}` is empty"))
            }
            Some(v) if v.len() > MAX_SYSTEM_HEADER => add(format!(
                "`{shown}` is {} characters long, at most {MAX_SYSTEM_HEADER}",
                v.len()
            )),
            Some(_) => {}
        }
    }
    diagnosis
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{Action, PreflightLayer, RuleId};
    use crate::Cause;

    fn bare() -> http::request::Builder {
        http::Request::get(format!(
            "{TEST}/epayment/v1/payments/acme-shop-123-order123abc"
        ))
        .header("Authorization", bearer(valid_jwt()))
        .header("Ocp-Apim-Subscription-Key", SUB_KEY)
    }

    #[test]
    fn refuses_when_asked() {
        let layer = PreflightLayer::new().rule(RuleId::SystemHeaders, Action::Refuse);
        let err = run(&layer, bare(), "").unwrap_err();
        assert_eq!(err.cause(), Cause::SystemHeaders);
        assert_eq!(err.diagnosis().evidence().len(), 2);
        let long = bare()
            .header("Vipps-System-Name", "n".repeat(31))
            .header("Vipps-System-Version", "1");
        let err = run(&layer, long, "").unwrap_err();
        assert!(err.diagnosis().evidence()[0].contains("31 characters"));
        let ok = bare()
            .header("Vipps-System-Name", "n".repeat(30))
            .header("Vipps-System-Version", "1");
        run(&layer, ok, "").unwrap();
    }
}
