//! `Merchant-Serial-Number` rules.
//!
//! MSNs are not secrets; evidence names them.

use super::headers::Known;
use super::sparse::Value;
use http::HeaderName;

use super::Facts;
use crate::context::Api;
use crate::{Cause, Diagnosis, KeyScope, Msn};

/// Header names people use by mistake for `Merchant-Serial-Number`.
/// Header names users give the MSN instead of `Merchant-Serial-Number`.
pub(crate) const MISSPELLED: [HeaderName; 3] = [
    HeaderName::from_static("merchantserialnumber"),
    HeaderName::from_static("merchant_serial_number"),
    HeaderName::from_static("merchant-serialnumber"),
];

/// The MSN of a valid, single `Merchant-Serial-Number` header.
fn header_msn(f: &Facts<'_>) -> Option<Msn> {
    if f.headers.number(Known::MERCHANT_SERIAL_NUMBER) != 1 {
        return None;
    }
    f.header_msn.as_ref()?.as_ref().ok().copied()
}

/// `Merchant-Serial-Number` is not a merchant serial number, or is sent twice.
pub(super) fn malformed(f: &Facts<'_>) -> Option<Diagnosis> {
    let parsed = f.header_msn.as_ref()?;
    let n = f.headers.number(Known::MERCHANT_SERIAL_NUMBER);
    let evidence = if n > 1 {
        format!("{n} `Merchant-Serial-Number` headers, expected 1")
    } else {
        match parsed {
            Ok(_) => return None,
            Err(e) => format!("`Merchant-Serial-Number`: {e}"),
        }
    };
    Some(Diagnosis::new(Cause::MalformedMsn).with_evidence(evidence))
}

/// A header named `merchantSerialNumber` (the body field's name) or
/// `merchant_serial_number`, and no `Merchant-Serial-Number`.
pub(super) fn misspelled(f: &Facts<'_>) -> Option<Diagnosis> {
    if f.headers.has(Known::MERCHANT_SERIAL_NUMBER) {
        return None;
    }
    let name = MISSPELLED.into_iter().find(|n| f.headers.contains_key(n))?;
    let shown = match name.as_str() {
        "merchantserialnumber" => "merchantSerialNumber",
        other => other,
    };
    Some(
        Diagnosis::new(Cause::MsnHeaderMisspelled).with_evidence(format!(
            "a `{shown}` header and no `Merchant-Serial-Number` header"
        )),
    )
}

/// Partner keys (the subscription key is the partner's, or the token was minted
/// with partner keys) and no `Merchant-Serial-Number` header.
///
/// Not on the access token call: partner keys may fetch a token without an MSN.
pub(super) fn partner_missing_header(f: &Facts<'_>) -> Option<Diagnosis> {
    if f.api == Api::AccessToken || f.headers.has(Known::MERCHANT_SERIAL_NUMBER) {
        return None;
    }
    let how = if f.key_set.as_ref().is_some_and(|k| k.is_partner()) {
        "the subscription key belongs to partner keys"
    } else if f.minted.as_ref().is_some_and(|m| m.partner) {
        "the access token was fetched with partner keys"
    } else {
        return None;
    };
    Some(
        Diagnosis::new(Cause::PartnerMissingMsnHeader).with_evidence(format!(
            "{how}, and there is no `Merchant-Serial-Number` header"
        )),
    )
}

/// The token is known to have been minted with merchant keys for another MSN than
/// the header's. A partner token serves every MSN connected to the partner,
/// whichever MSN it was fetched with (whether the header's MSN is connected is
/// [`partner_not_connected`]'s, or the API's, to say).
pub(super) fn token_for_other_msn(f: &Facts<'_>) -> Option<Diagnosis> {
    let header = header_msn(f)?;
    let minted = f.minted.as_ref().filter(|m| !m.partner)?.msn?;
    if minted == header {
        return None;
    }
    Some(Diagnosis::new(Cause::TokenForOtherMsn).with_evidence(format!(
        "the access token was fetched for MSN {minted}; the `Merchant-Serial-Number` header says {header}"
    )))
}

/// Partner keys that list their connected MSNs, and the header's MSN is not among
/// them.
pub(super) fn partner_not_connected(f: &Facts<'_>) -> Option<Diagnosis> {
    let header = header_msn(f)?;
    let keys = f.key_set.as_ref()?;
    let KeyScope::Partner {
        connected: Some(connected),
    } = keys.scope()
    else {
        return None;
    };
    if connected.contains(&header) {
        return None;
    }
    Some(
        Diagnosis::new(Cause::PartnerMsnNotConnected).with_evidence(format!(
            "MSN {header} is not among the {} MSNs listed for these partner keys",
            connected.len()
        )),
    )
}

/// A buffered JSON body whose `merchantSerialNumber` (top level, or
/// `merchantInfo.merchantSerialNumber` in eCom) differs from the header.
pub(super) fn body_mismatch(f: &Facts<'_>) -> Option<Diagnosis> {
    let header = header_msn(f)?;
    let json = f.json.as_ref()?.root();
    for (field, value) in [
        ("merchantSerialNumber", json.get("merchantSerialNumber")),
        (
            "merchantInfo.merchantSerialNumber",
            json.get("merchantInfo")
                .and_then(|m| m.get("merchantSerialNumber")),
        ),
    ] {
        let Some(value) = value else { continue };
        let body_msn = match value {
            Value::String(s) => s.parse::<Msn>().ok(),
            Value::Number(n) => n.as_u64().and_then(|n| Msn::new(n).ok()),
            Value::Null => continue,
            _ => None,
        };
        let evidence = match body_msn {
            Some(m) if m == header => continue,
            Some(m) => format!(
                "the body's `{field}` is {m}; the `Merchant-Serial-Number` header is {header}"
            ),
            None => format!(
                "the body's `{field}` is not an MSN; the `Merchant-Serial-Number` header is {header}"
            ),
        };
        return Some(Diagnosis::new(Cause::MsnHeaderBodyMismatch).with_evidence(evidence));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::PreflightLayer;
    use super::super::test_support::*;
    use crate::{Cause, Environment};

    /// A GET to production, where partner keys live.
    fn partner_get(msn_header: Option<&str>) -> http::request::Builder {
        let mut b = http::Request::get(format!("{PROD}/epayment/v1/payments/abcdefgh-1"))
            .header("Authorization", bearer(valid_jwt()))
            .header("Ocp-Apim-Subscription-Key", PARTNER_SUB_KEY)
            .header("Vipps-System-Name", "acme")
            .header("Vipps-System-Version", "1");
        if let Some(m) = msn_header {
            b = b.header("Merchant-Serial-Number", m);
        }
        b
    }

    fn get(msn_header: Option<&str>) -> http::request::Builder {
        let mut b = http::Request::get(format!("{TEST}/epayment/v1/payments/abcdefgh-1"))
            .header("Authorization", bearer(valid_jwt()))
            .header("Vipps-System-Name", "acme")
            .header("Vipps-System-Version", "1");
        if let Some(m) = msn_header {
            b = b.header("Merchant-Serial-Number", m);
        }
        b
    }

    #[test]
    fn malformed() {
        for value in ["", "12a456", " 123456", "12345678901", "-1"] {
            let b = get(Some(value)).header("Ocp-Apim-Subscription-Key", SUB_KEY);
            let err = refused(b);
            assert_eq!(err.cause(), Cause::MalformedMsn, "{value:?}");
        }
        let b = get(Some("123456"))
            .header("Merchant-Serial-Number", "123456")
            .header("Ocp-Apim-Subscription-Key", SUB_KEY);
        assert_refused(b, Cause::MalformedMsn);
        for value in ["1", "123456", "9999999999"] {
            assert_passes(get(Some(value)).header("Ocp-Apim-Subscription-Key", SUB_KEY));
        }
    }

    #[test]
    fn misspelled() {
        let b = get(None)
            .header("merchantSerialNumber", "123456")
            .header("Ocp-Apim-Subscription-Key", SUB_KEY);
        let err = refused(b);
        assert_eq!(err.cause(), Cause::MsnHeaderMisspelled);
        assert!(err.diagnosis().evidence()[0].contains("`merchantSerialNumber`"));
        // Both headers: the right one is there, nothing to refuse.
        let b = get(Some("123456"))
            .header("merchantSerialNumber", "123456")
            .header("Ocp-Apim-Subscription-Key", SUB_KEY);
        assert_passes(b);
    }

    #[test]
    fn partner_rules() {
        let layer = keyed(vec![]);
        // Partner key, no header.
        let b = partner_get(None);
        let err = run(&layer, b, "").unwrap_err();
        assert_eq!(err.cause(), Cause::PartnerMissingMsnHeader);
        assert_no_secret(&err, PARTNER_SUB_KEY);
        // Partner key, MSN not connected.
        let b = partner_get(Some("444444"));
        let err = run(&layer, b, "").unwrap_err();
        assert_eq!(err.cause(), Cause::PartnerMsnNotConnected);
        assert!(err.diagnosis().evidence()[0].contains("444444"));
        // Connected: passes. Merchant keys without a header: passes.
        let b = partner_get(Some("333333"));
        run(&layer, b, "").unwrap();
        let b = get(None).header("Ocp-Apim-Subscription-Key", SUB_KEY);
        // ePayment requires the header on every call (epayment.v1.yml); Recurring
        // does not.
        assert_eq!(
            run(&layer, b, "").unwrap_err().cause(),
            Cause::MissingMsnHeader
        );
        let b = http::Request::get(format!("{TEST}/recurring/v3/agreements/agr_123"))
            .header("Authorization", bearer(valid_jwt()))
            .header("Ocp-Apim-Subscription-Key", SUB_KEY)
            .header("Vipps-System-Name", "acme")
            .header("Vipps-System-Version", "1");
        run(&layer, b, "").unwrap();
        // The partner token call needs no MSN.
        let b = http::Request::post(format!("{PROD}/accesstoken/get"))
            .header("client_id", "partner-id")
            .header("client_secret", "partner-secret")
            .header("Ocp-Apim-Subscription-Key", PARTNER_SUB_KEY)
            .header("Vipps-System-Name", "acme")
            .header("Vipps-System-Version", "1");
        run(&layer, b, "").unwrap();
        // Without a keyring nothing is known about partners (only ePayment's own
        // requirement of the header applies).
        let b = partner_get(None);
        assert_eq!(
            run(&PreflightLayer::new(), b, "").unwrap_err().cause(),
            Cause::MissingMsnHeader
        );
    }

    #[test]
    fn partner_token_without_header() {
        let token = valid_jwt();
        let layer = keyed(vec![(
            token.clone(),
            minted(Environment::Production, "unknown-partner-key", None, true),
        )]);
        let b = http::Request::get(format!("{PROD}/epayment/v1/payments/abcdefgh-1"))
            .header("Authorization", bearer(token))
            .header("Ocp-Apim-Subscription-Key", "unknown-partner-key")
            .header("Vipps-System-Name", "acme")
            .header("Vipps-System-Version", "1");
        let err = run(&layer, b, "").unwrap_err();
        assert_eq!(err.cause(), Cause::PartnerMissingMsnHeader);
    }

    #[test]
    fn token_for_other_msn() {
        let token = valid_jwt();
        let layer = keyed(vec![(
            token.clone(),
            minted(Environment::Test, SUB_KEY, Some("654321"), false),
        )]);
        let b = base(http::Request::get(format!(
            "{TEST}/epayment/v1/payments/abcdefgh-1"
        )))
        .header("Authorization", bearer(token.clone()));
        let err = run(&layer, b, "").unwrap_err();
        assert_eq!(err.cause(), Cause::TokenForOtherMsn);
        let ev = &err.diagnosis().evidence()[0];
        assert!(ev.contains("654321") && ev.contains("123456"), "{ev}");
        assert_no_secret(&err, &token);
        // An unknown token: nothing to say.
        let b = base(http::Request::get(format!(
            "{TEST}/epayment/v1/payments/abcdefgh-1"
        )))
        .header("Authorization", bearer(valid_jwt()));
        run(&layer, b, "").unwrap();
    }

    #[test]
    fn a_partner_token_serves_every_connected_msn() {
        let token = valid_jwt();
        let layer = keyed(vec![(
            token.clone(),
            minted(
                Environment::Production,
                PARTNER_SUB_KEY,
                Some("222222"),
                true,
            ),
        )]);
        let get = |msn: &str| {
            http::Request::get(format!("{PROD}/epayment/v1/payments/abcdefgh-1"))
                .header("Authorization", bearer(token.clone()))
                .header("Ocp-Apim-Subscription-Key", PARTNER_SUB_KEY)
                .header("Merchant-Serial-Number", msn)
                .header("Vipps-System-Name", "acme")
                .header("Vipps-System-Version", "1")
        };
        // Fetched with 222222, used for 333333: both connected.
        run(&layer, get("333333"), "").unwrap();
        // Not connected: refused, for that reason and not the token's MSN.
        let err = run(&layer, get("444444"), "").unwrap_err();
        assert_eq!(err.cause(), Cause::PartnerMsnNotConnected);
    }

    #[test]
    fn body_mismatch() {
        let initiate = || good(http::Request::post(format!("{TEST}/ecomm/v2/payments")));
        let body = |msn: &str| {
            format!(
                r#"{{"customerInfo":{{"mobileNumber":"91234567"}},"merchantInfo":{{"callbackPrefix":"https://example.com/vipps","fallBack":"https://example.com/fallback","merchantSerialNumber":{msn}}},"transaction":{{"amount":20000,"orderId":"order-123","transactionText":"One pair of socks"}}}}"#
            )
        };
        let layer = PreflightLayer::new();
        let err = run(&layer, initiate(), &body("\"654321\"")).unwrap_err();
        assert_eq!(err.cause(), Cause::MsnHeaderBodyMismatch);
        assert!(err.diagnosis().evidence()[0].contains("merchantInfo.merchantSerialNumber"));
        let err = run(&layer, initiate(), &body("654321")).unwrap_err();
        assert_eq!(err.cause(), Cause::MsnHeaderBodyMismatch);
        let err = run(&layer, initiate(), &body("\"12x\"")).unwrap_err();
        assert_eq!(err.cause(), Cause::MsnHeaderBodyMismatch);
        assert_passes_body(initiate(), &body("\"123456\""), &[]);
        assert_passes_body(initiate(), &body("123456"), &[]);
        // Top level, on any API.
        let b = good(http::Request::post(format!(
            "{TEST}/recurring/v3/agreements/agr_1/charges"
        )));
        let err = run(
            &layer,
            b,
            r#"{"merchantSerialNumber":"999999","amount":100}"#,
        )
        .unwrap_err();
        assert_eq!(err.cause(), Cause::MsnHeaderBodyMismatch);
    }
}
