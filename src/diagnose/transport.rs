//! Diagnosis of transport failures: [`diagnose`] walks an error's source chain
//! (hyper-util's legacy client errors, `std::io::Error` kinds, rustls errors found
//! by downcast) and names what went wrong.
//!
//! | cause | found by | retried |
//! | --- | --- | --- |
//! | [`Cause::CertificateUntrusted`] | `rustls::Error::InvalidCertificate(UnknownIssuer, BadSignature, …)` | never |
//! | [`Cause::CertificateExpired`] | `InvalidCertificate(Expired, NotValidYet, …)` | never |
//! | [`Cause::CertificateNameMismatch`] | `InvalidCertificate(NotValidForName, …)` | never |
//! | [`Cause::TlsHandshake`] | any other `rustls::Error` (an alert, no common version) | never |
//! | [`Cause::HttpsNotSupported`] | hyper-util's `HttpConnector`: "invalid URL, scheme is not http" | never |
//! | [`Cause::DnsFailure`] | hyper-util's "dns error" | any request: nothing was sent |
//! | [`Cause::ConnectionRefused`] | `io::ErrorKind::ConnectionRefused` | any request: nothing was sent |
//! | [`Cause::ResetBeforeSent`] | reset, abort or close while connecting, or hyper's "canceled" | any request: nothing was sent |
//! | [`Cause::ResetAfterSent`] | reset, abort, close or an incomplete message after the request went out | only a request safe to repeat |
//! | [`Cause::Timeout`] | `tower`/`tokio` `Elapsed`, `io::ErrorKind::TimedOut` | a connect timeout: any request; otherwise only one safe to repeat |
//! | [`Cause::Transport`] | anything else | only a request safe to repeat |
//!
//! The evidence is the chain's messages, outermost first, down to the innermost
//! (the TLS library's or the operating system's own words), so `Display` and
//! [`Diagnosis::report`] show them. Transport errors carry no header values, so no
//! secret reaches the evidence.
//!
//! ```
//! use tower_vipps::Cause;
//! use tower_vipps::diagnose::transport;
//!
//! let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused (os error 111)");
//! let diagnosis = transport::diagnose(&refused).unwrap();
//! assert_eq!(diagnosis.cause(), Cause::ConnectionRefused);
//! assert!(diagnosis.evidence()[0].contains("os error 111"));
//! assert!(transport::nothing_sent(&refused));
//! ```

use std::error::Error;
use std::io::ErrorKind;

use crate::error::{Cause, Diagnosis, VippsError};

type DynError = dyn Error + 'static;

/// The longest chain walked (a guard against a cycle of sources).
const MAX_DEPTH: usize = 32;
/// The longest evidence text kept.
const EVIDENCE_CAP: usize = 400;

/// The errors of a chain, outermost first. An `std::io::Error` wrapping another
/// error is followed into it (`io::Error::source` would skip it).
pub fn chain(err: &DynError) -> impl Iterator<Item = &DynError> {
    let mut next = Some(err);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &DynError),
            None => current.source(),
        };
        Some(current)
    })
    .take(MAX_DEPTH)
}

/// The messages of the chain joined by `: `, outermost first, a message equal to
/// the one before skipped (an `io::Error` shows the message of the error it
/// wraps), cut at 400 characters.
pub fn messages(err: &DynError) -> String {
    let mut out = String::new();
    let mut last = String::new();
    for e in chain(err) {
        let text = e.to_string();
        if text.is_empty() || text == last {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
        last = text;
    }
    if out.chars().count() > EVIDENCE_CAP {
        out = out.chars().take(EVIDENCE_CAP).collect();
        out.push('…');
    }
    out
}

/// The message of the innermost error of the chain.
pub fn innermost(err: &DynError) -> String {
    chain(err).last().map(|e| e.to_string()).unwrap_or_default()
}

/// The cause of a transport failure, with the chain's messages as evidence.
/// `None` only when the error is none of the known kinds (the caller then uses
/// [`Cause::Transport`]); a `VippsError` found in the chain gives its own diagnosis.
pub fn diagnose(err: &DynError) -> Option<Diagnosis> {
    if let Some(inner) = chain(err).find_map(|e| e.downcast_ref::<VippsError>()) {
        return Some(inner.diagnosis().clone());
    }
    let cause = cause_of(err)?;
    Some(Diagnosis::new(cause).with_evidence(messages(err)))
}

/// The cause and the evidence of a transport failure: [`diagnose`], or
/// [`Cause::Transport`] with the chain's messages.
pub fn diagnose_or_transport(err: &DynError) -> Diagnosis {
    diagnose(err).unwrap_or_else(|| Diagnosis::new(Cause::Transport).with_evidence(messages(err)))
}

/// Whether the failure happened before any byte of the request was sent, so that
/// sending it again cannot repeat an operation: a DNS failure, a refused
/// connection, a reset while connecting, a connect timeout, or any other error of
/// the connect stage (hyper-util's `client error (Connect)`, reqwest's
/// `is_connect()`). A permanent failure (a certificate problem) is not "nothing
/// sent" for the retry layer: it is never retried at all.
pub fn nothing_sent(err: &DynError) -> bool {
    if let Some(inner) = chain(err).find_map(|e| e.downcast_ref::<VippsError>()) {
        // Sent nothing only if it is transport-side and says so.
        return matches!(inner.origin(), crate::Origin::Transport)
            && inner.is_transient()
            && std::error::Error::source(inner).is_some_and(nothing_sent);
    }
    match cause_of(err) {
        Some(Cause::ConnectionRefused | Cause::DnsFailure | Cause::ResetBeforeSent) => true,
        Some(cause) if !cause.is_transient() => false,
        _ => chain(err).any(|e| {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if matches!(
                    io.kind(),
                    ErrorKind::AddrNotAvailable
                        | ErrorKind::HostUnreachable
                        | ErrorKind::NetworkUnreachable
                ) {
                    return true;
                }
            }
            #[cfg(feature = "reqwest")]
            if let Some(r) = e.downcast_ref::<reqwest::Error>() {
                if r.is_connect() {
                    return true;
                }
            }
            is_connect_stage(e)
        }),
    }
}

/// hyper-util's legacy client error of the connect stage: the connector failed,
/// before the request was written.
fn is_connect_stage(e: &DynError) -> bool {
    #[cfg(feature = "https")]
    if let Some(client) = e.downcast_ref::<hyper_util::client::legacy::Error>() {
        return client.is_connect();
    }
    // Without the `https` feature the type is not known here: its message is.
    e.to_string() == "client error (Connect)"
}

fn cause_of(err: &DynError) -> Option<Cause> {
    #[cfg(feature = "https")]
    if let Some(tls) = chain(err).find_map(|e| e.downcast_ref::<rustls::Error>()) {
        return Some(rustls_cause(tls));
    }
    let mut connect_stage = false;
    let mut timeout = false;
    let mut reset = false;
    let mut canceled = false;
    for e in chain(err) {
        connect_stage |= is_connect_stage(e);
        if let Some(cause) = tls_cause(e) {
            return Some(cause);
        }
        if e.is::<tower::timeout::error::Elapsed>() || e.is::<tokio::time::error::Elapsed>() {
            timeout = true;
        }
        #[cfg(feature = "https")]
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            timeout |= h.is_timeout();
            canceled |= h.is_canceled();
            reset |= h.is_incomplete_message() || h.is_closed() || h.is_body_write_aborted();
        }
        let text = e.to_string();
        // hyper's own words, for builds where its type is not known here.
        canceled |= text.starts_with("operation was canceled");
        reset |= text.starts_with("connection closed before message completed");
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                ErrorKind::ConnectionRefused => return Some(Cause::ConnectionRefused),
                ErrorKind::TimedOut => timeout = true,
                ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe
                | ErrorKind::UnexpectedEof => reset = true,
                _ => {}
            }
        }
        if text.contains("scheme is not http") || text.starts_with("unsupported scheme") {
            return Some(Cause::HttpsNotSupported);
        }
        if text == "dns error" || text.contains("failed to lookup address information") {
            return Some(Cause::DnsFailure);
        }
    }
    if timeout {
        Some(Cause::Timeout)
    } else if canceled || (reset && connect_stage) {
        Some(Cause::ResetBeforeSent)
    } else if reset {
        Some(Cause::ResetAfterSent)
    } else {
        None
    }
}

/// The cause of a TLS failure of a library other than rustls (rustls errors are
/// found by downcast), from the words of its message.
fn tls_cause(e: &DynError) -> Option<Cause> {
    let text = e.to_string().to_ascii_lowercase();
    if !(text.contains("certificate") || text.contains("tls") || text.contains("ssl")) {
        return None;
    }
    if text.contains("expired") || text.contains("not valid yet") || text.contains("notvalidyet") {
        Some(Cause::CertificateExpired)
    } else if text.contains("not valid for name")
        || text.contains("notvalidforname")
        || text.contains("hostname mismatch")
    {
        Some(Cause::CertificateNameMismatch)
    } else if text.contains("unknownissuer")
        || text.contains("unknown issuer")
        || text.contains("self signed")
        || text.contains("self-signed")
        || text.contains("unable to get local issuer")
    {
        Some(Cause::CertificateUntrusted)
    } else if text.contains("handshake") {
        Some(Cause::TlsHandshake)
    } else {
        None
    }
}

#[cfg(feature = "https")]
fn rustls_cause(tls: &rustls::Error) -> Cause {
    use rustls::CertificateError as C;
    match tls {
        rustls::Error::InvalidCertificate(cert) => match cert {
            C::Expired
            | C::ExpiredContext { .. }
            | C::NotValidYet
            | C::NotValidYetContext { .. } => Cause::CertificateExpired,
            C::NotValidForName | C::NotValidForNameContext { .. } => Cause::CertificateNameMismatch,
            _ => Cause::CertificateUntrusted,
        },
        _ => Cause::TlsHandshake,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    #[derive(Debug)]
    struct Wrap(&'static str, Box<dyn Error + Send + Sync>);
    impl fmt::Display for Wrap {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }
    impl Error for Wrap {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&*self.1)
        }
    }

    fn io(kind: ErrorKind, msg: &str) -> std::io::Error {
        std::io::Error::new(kind, msg.to_string())
    }

    #[test]
    fn io_kinds_and_stages() {
        let refused = Wrap(
            "client error (Connect)",
            Box::new(Wrap(
                "tcp connect error",
                Box::new(io(
                    ErrorKind::ConnectionRefused,
                    "Connection refused (os error 111)",
                )),
            )),
        );
        let d = diagnose(&refused).unwrap();
        assert_eq!(d.cause(), Cause::ConnectionRefused);
        assert_eq!(
            d.evidence()[0],
            "client error (Connect): tcp connect error: Connection refused (os error 111)"
        );
        assert!(nothing_sent(&refused));

        let reset_connecting = Wrap(
            "client error (Connect)",
            Box::new(io(ErrorKind::ConnectionReset, "reset")),
        );
        assert_eq!(cause_of(&reset_connecting), Some(Cause::ResetBeforeSent));
        assert!(nothing_sent(&reset_connecting));
        let reset_after = Wrap(
            "client error (SendRequest)",
            Box::new(io(ErrorKind::ConnectionReset, "reset")),
        );
        assert_eq!(cause_of(&reset_after), Some(Cause::ResetAfterSent));
        assert!(!nothing_sent(&reset_after));

        let dns = Wrap(
            "client error (Connect)",
            Box::new(Wrap(
                "dns error",
                Box::new(io(
                    ErrorKind::Other,
                    "failed to lookup address information: Name or service not known",
                )),
            )),
        );
        assert_eq!(cause_of(&dns), Some(Cause::DnsFailure));
        assert!(nothing_sent(&dns));

        let not_http = Wrap(
            "client error (Connect)",
            Box::new(Wrap(
                "invalid URL, scheme is not http",
                Box::new(io(ErrorKind::Other, "x")),
            )),
        );
        assert_eq!(cause_of(&not_http), Some(Cause::HttpsNotSupported));
        assert!(!nothing_sent(&not_http));

        let timeout = io(ErrorKind::TimedOut, "t");
        assert_eq!(cause_of(&timeout), Some(Cause::Timeout));
        assert!(!nothing_sent(&timeout));
        let connect_timeout = Wrap(
            "client error (Connect)",
            Box::new(io(ErrorKind::TimedOut, "t")),
        );
        assert!(nothing_sent(&connect_timeout));

        let other = io(ErrorKind::Other, "something");
        assert_eq!(diagnose(&other), None);
        assert_eq!(diagnose_or_transport(&other).cause(), Cause::Transport);
    }

    #[test]
    fn io_errors_are_followed_into_the_error_they_wrap() {
        // hyper-rustls wraps tokio-rustls' io::Error (which wraps the rustls error)
        // in another io::Error; `io::Error::source` would skip both.
        let inner = std::io::Error::new(
            ErrorKind::InvalidData,
            Wrap("deep", Box::new(io(ErrorKind::Other, "deepest"))),
        );
        let outer = std::io::Error::other(inner);
        assert_eq!(innermost(&outer), "deepest");
        assert_eq!(messages(&outer), "deep: deepest");
    }

    #[cfg(feature = "https")]
    #[test]
    fn rustls_certificate_errors() {
        use rustls::CertificateError as C;
        let wrap = |e: rustls::Error| {
            Wrap(
                "client error (Connect)",
                Box::new(std::io::Error::other(std::io::Error::new(
                    ErrorKind::InvalidData,
                    e,
                ))),
            )
        };
        for (err, cause) in [
            (C::UnknownIssuer, Cause::CertificateUntrusted),
            (C::BadSignature, Cause::CertificateUntrusted),
            (C::Expired, Cause::CertificateExpired),
            (C::NotValidYet, Cause::CertificateExpired),
            (C::NotValidForName, Cause::CertificateNameMismatch),
        ] {
            let e = wrap(rustls::Error::InvalidCertificate(err));
            let d = diagnose(&e).unwrap();
            assert_eq!(d.cause(), cause);
            assert!(
                d.evidence()[0].starts_with("client error (Connect): invalid peer certificate")
            );
            assert!(!nothing_sent(&e));
        }
        let alert = wrap(rustls::Error::AlertReceived(
            rustls::AlertDescription::HandshakeFailure,
        ));
        assert_eq!(cause_of(&alert), Some(Cause::TlsHandshake));
    }

    #[test]
    fn other_tls_libraries_by_their_words() {
        for (text, cause) in [
            (
                "certificate verify failed: self-signed certificate in certificate chain",
                Cause::CertificateUntrusted,
            ),
            ("certificate has expired", Cause::CertificateExpired),
            ("TLS handshake failed", Cause::TlsHandshake),
        ] {
            assert_eq!(cause_of(&io(ErrorKind::Other, text)), Some(cause), "{text}");
        }
    }
}
