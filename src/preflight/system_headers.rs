//! `Vipps-System-*` rules.

use super::Facts;
use super::headers::Known;
use crate::context::Api;
use crate::{Cause, Diagnosis};

/// The longest `Vipps-System-*` value this rule accepts: the ePayment API
/// specification gives the headers a maximum length of 30 characters.
pub(crate) const MAX_SYSTEM_HEADER: usize = 30;

const ALL: [(Known, &str); 4] = [
    (Known::SYSTEM_NAME, "Vipps-System-Name"),
    (Known::SYSTEM_VERSION, "Vipps-System-Version"),
    (Known::SYSTEM_PLUGIN_NAME, "Vipps-System-Plugin-Name"),
    (Known::SYSTEM_PLUGIN_VERSION, "Vipps-System-Plugin-Version"),
];

/// `Vipps-System-Name` or `Vipps-System-Version` missing (the plugin headers are
/// only for plugins), or any `Vipps-System-*` value empty. (Too long is the
/// [`too_long`] rule's.)
pub(super) fn system_headers(f: &Facts<'_>) -> Option<Diagnosis> {
    let mut diagnosis: Option<Diagnosis> = None;
    let mut add = |evidence: String| {
        let d = diagnosis
            .take()
            .unwrap_or_else(|| Diagnosis::new(Cause::SystemHeaders));
        diagnosis = Some(d.with_evidence(evidence));
    };
    for (i, (name, shown)) in ALL.into_iter().enumerate() {
        match f.headers.first(name) {
            None if i < 2 => add(format!("no `{shown}` header")),
            None => {}
            Some(v) if v.as_bytes().iter().all(|b| b.is_ascii_whitespace()) => {
                add(format!("`{shown}` is empty"))
            }
            Some(_) => {}
        }
    }
    diagnosis
}

/// A `Vipps-System-*` header longer than 30 characters on an API whose
/// specification sets `maxLength: 30` on them: ePayment
/// (`epayment.v1.yml #/components/parameters/Vipps-System-Name` …), eCom
/// (`ecom-v2.yaml`), Recurring (`recurring.yaml`), Checkout (`checkout.yaml`) and
/// Webhooks (`webhooks.yaml`).
pub(super) fn too_long(f: &Facts<'_>) -> Option<Diagnosis> {
    let webhooks = f.api == Api::Webhooks;
    if !(webhooks
        || matches!(
            f.api,
            Api::EPayment | Api::ECom | Api::Recurring | Api::Checkout
        ))
    {
        return None;
    }
    let mut diagnosis: Option<Diagnosis> = None;
    for (name, shown) in ALL {
        for v in f.headers.all(name) {
            // The spec's `maxLength` counts characters, not UTF-8 bytes; no more
            // bytes than that is no more characters, without counting them.
            if v.len() <= MAX_SYSTEM_HEADER {
                continue;
            }
            let chars = std::str::from_utf8(v.as_bytes()).map_or(v.len(), |s| s.chars().count());
            if chars > MAX_SYSTEM_HEADER {
                let d = diagnosis
                    .take()
                    .unwrap_or_else(|| Diagnosis::new(Cause::SystemHeaderTooLong));
                diagnosis = Some(d.with_evidence(format!(
                    "`{shown}` is {chars} characters long, at most {MAX_SYSTEM_HEADER}"
                )));
            }
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
            .header("Merchant-Serial-Number", "123456")
            .header("Vipps-System-Name", "n".repeat(31))
            .header("Vipps-System-Version", "1");
        // Too long is refused by default: the specs set `maxLength: 30`.
        let err = run(&PreflightLayer::new(), long, "").unwrap_err();
        assert_eq!(err.cause(), Cause::SystemHeaderTooLong);
        assert!(err.diagnosis().evidence()[0].contains("31 characters"));
        let ok = bare()
            .header("Merchant-Serial-Number", "123456")
            .header("Vipps-System-Name", "n".repeat(30))
            .header("Vipps-System-Version", "1");
        run(&layer, ok, "").unwrap();
    }
}
