//! What is kept of a token endpoint's answer: never a token, never a key.
//!
//! A failed token fetch keeps the endpoint's body for diagnosis. That body may be a
//! 200 with a usable `access_token` and one rejected field, or an error page that
//! echoes the request's headers. Before it is kept (or parsed), every
//! `access_token`-like value, every JWT-shaped run and every piece of the request's
//! own secrets is replaced by `[redacted]`. Works on bytes, so a body cut at the cap,
//! form-encoded or not JSON at all is redacted the same way.

use bytes::Bytes;

const REDACTED: &[u8] = b"[redacted]";

/// The length of a secret's piece that is looked for: a secret of at least this
/// length is redacted wherever any such piece of it appears.
const PIECE: usize = 12;

/// The body with every token and secret replaced by `[redacted]`; the same
/// `Bytes` when there was nothing to redact. The body of a *successful* answer
/// that is not a token response may hold a live token in any shape (a bare
/// string, an array, an unknown key): there every run of 20 or more token
/// characters goes too.
pub(crate) fn redact_body(body: &Bytes, secrets: &[&[u8]], success: bool) -> Bytes {
    let mut hide = vec![false; body.len()];
    if success {
        mark_long_runs(body, &mut hide);
    }
    mark_token_values(body, &mut hide);
    mark_bearer_values(body, &mut hide);
    mark_jwts(body, &mut hide);
    for secret in secrets {
        mark_secret(body, secret, &mut hide);
    }
    if !hide.contains(&true) {
        return body.clone();
    }
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if hide[i] {
            out.extend_from_slice(REDACTED);
            while i < body.len() && hide[i] {
                i += 1;
            }
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    Bytes::from(out)
}

/// The value after every key that names a token (`access_token`, `id_token`,
/// `refresh_token`, `token`, any case), quoted or bare.
fn mark_token_values(body: &[u8], hide: &mut [bool]) {
    const KEY: &[u8] = b"token";
    let mut at = 0;
    while let Some(found) = find_ascii_case(&body[at..], KEY) {
        let mut i = at + found + KEY.len();
        at = i;
        // The key's closing quote, then `:` or `=`, with spaces around.
        while i < body.len() && matches!(body[i], b'"' | b'\'' | b' ' | b'\t' | b'\r' | b'\n') {
            i += 1;
        }
        if i >= body.len() || !matches!(body[i], b':' | b'=') {
            continue;
        }
        i += 1;
        // Spaces, and the brackets of a value wrapped in an array or object.
        while i < body.len() && (body[i].is_ascii_whitespace() || matches!(body[i], b'[' | b'{')) {
            i += 1;
        }
        let start = i;
        if i < body.len() && body[i] == b'"' {
            i += 1;
            while i < body.len() && body[i] != b'"' {
                i += if body[i] == b'\\' { 2 } else { 1 };
            }
            let end = i.min(body.len());
            hide[start + 1..end].iter_mut().for_each(|h| *h = true);
        } else {
            while i < body.len()
                && !matches!(
                    body[i],
                    b',' | b'&' | b'}' | b']' | b';' | b'"' | b'\'' | b'<'
                )
                && !body[i].is_ascii_whitespace()
            {
                i += 1;
            }
            hide[start..i].iter_mut().for_each(|h| *h = true);
        }
        at = i.min(body.len());
    }
}

/// The word after every `Bearer ` (any case): an opaque token in a page that
/// quotes an `Authorization` header.
fn mark_bearer_values(body: &[u8], hide: &mut [bool]) {
    const KEY: &[u8] = b"bearer";
    let mut at = 0;
    while let Some(found) = find_ascii_case(&body[at..], KEY) {
        let mut i = at + found + KEY.len();
        at = i;
        if i >= body.len() || !matches!(body[i], b' ' | b'\t') {
            continue;
        }
        while i < body.len() && matches!(body[i], b' ' | b'\t') {
            i += 1;
        }
        let start = i;
        while i < body.len()
            && !matches!(body[i], b'"' | b'\'' | b'<' | b',' | b';' | b'&')
            && !body[i].is_ascii_whitespace()
        {
            i += 1;
        }
        hide[start..i].iter_mut().for_each(|h| *h = true);
        at = i;
    }
}

/// Runs of 20 or more characters a token is made of (base64, base64url, `.~`).
fn mark_long_runs(body: &[u8], hide: &mut [bool]) {
    const LONG: usize = 20;
    let token_char = |b: u8| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'+' | b'/' | b'=')
    };
    let mut i = 0;
    while i < body.len() {
        let start = i;
        while i < body.len() && token_char(body[i]) {
            i += 1;
        }
        if i - start >= LONG {
            hide[start..i].iter_mut().for_each(|h| *h = true);
        }
        i += 1;
    }
}

fn find_ascii_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Runs shaped like a JWT: `ey…` (a base64url JSON header of 10 characters or
/// more), a payload and a signature (empty when unsigned), dot-separated.
fn mark_jwts(body: &[u8], hide: &mut [bool]) {
    let mut i = 0;
    while i < body.len() {
        if !(is_b64url(body[i]) || body[i] == b'.') {
            i += 1;
            continue;
        }
        let start = i;
        while i < body.len() && (is_b64url(body[i]) || body[i] == b'.') {
            i += 1;
        }
        let run = &body[start..i];
        // Each dot-separated segment that starts with `ey` and is long enough to
        // be a JSON header, followed by a payload and a signature, starts a JWT
        // that runs to the end of the run. One pass over the segments.
        let segments: Vec<(usize, &[u8])> = run
            .split(|&b| b == b'.')
            .scan(0, |at, segment| {
                let here = *at;
                *at += segment.len() + 1;
                Some((here, segment))
            })
            .collect();
        for (k, (offset, segment)) in segments.iter().enumerate() {
            let jwt = segment.len() >= 10
                && segment.starts_with(b"ey")
                && segments
                    .get(k + 1)
                    .is_some_and(|(_, payload)| payload.len() >= 2)
                && k + 2 < segments.len();
            if jwt {
                hide[start + offset..i].iter_mut().for_each(|h| *h = true);
                break;
            }
        }
    }
}

/// Every place a piece of `secret` appears (the whole secret, when it is shorter
/// than a piece).
fn mark_secret(body: &[u8], secret: &[u8], hide: &mut [bool]) {
    if secret.len() < 4 {
        return;
    }
    let piece = secret.len().min(PIECE);
    if body.len() < piece {
        return;
    }
    let pieces: std::collections::HashSet<&[u8]> = secret.windows(piece).collect();
    for (i, window) in body.windows(piece).enumerate() {
        if pieces.contains(window) {
            hide[i..i + piece].iter_mut().for_each(|h| *h = true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(body: &str, secrets: &[&str]) -> String {
        redact_as(body, secrets, false)
    }

    fn redact_as(body: &str, secrets: &[&str], success: bool) -> String {
        let secrets: Vec<&[u8]> = secrets.iter().map(|s| s.as_bytes()).collect();
        let out = redact_body(&Bytes::copy_from_slice(body.as_bytes()), &secrets, success);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn a_success_keeps_no_long_run() {
        let body = r#"["0K5NZfm3EV7v78yQ0SK52N6nqMRFUcSHsC7PxKdo"]"#;
        assert_eq!(redact_as(body, &[], true), r#"["[redacted]"]"#);
        // An error keeps its trace id.
        let error = r#"{"traceId":"00-6614b5c7ea5c404b17e45c3a398c4754-01"}"#;
        assert_eq!(redact_as(error, &[], false), error);
        assert_eq!(
            redact_as(r#"{"expires_in":"3600"}"#, &[], true),
            r#"{"expires_in":"3600"}"#
        );
    }

    #[test]
    fn token_values_in_every_shape() {
        assert_eq!(
            redact(
                r#"{"token_type":"Bearer","expires_in":"0","access_token":"opaque-1234"}"#,
                &[]
            ),
            r#"{"token_type":"Bearer","expires_in":"0","access_token":"[redacted]"}"#
        );
        assert_eq!(
            redact("access_token=abc.def&expires_in=3600", &[]),
            "access_token=[redacted]&expires_in=3600"
        );
        // Cut at the cap, in the middle of the value.
        assert_eq!(
            redact(r#"{"access_token":"abcdef"#, &[]),
            r#"{"access_token":"[redacted]"#
        );
        assert_eq!(
            redact(r#"{"Access_Token" : "x\"y", "a":1}"#, &[]),
            r#"{"Access_Token" : "[redacted]", "a":1}"#
        );
        assert_eq!(
            redact(r#"{"access_token":["opaque1234"]}"#, &[]),
            r#"{"access_token":["[redacted]"]}"#
        );
        // `token_type` is a key, not a token: its value is kept.
        assert_eq!(
            redact(r#"{"token_type":"MAC"}"#, &[]),
            r#"{"token_type":"MAC"}"#
        );
    }

    #[test]
    fn opaque_bearer_tokens() {
        assert_eq!(
            redact("<p>Authorization: Bearer opaque_T0ken-value</p>", &[]),
            "<p>Authorization: Bearer [redacted]</p>"
        );
        assert_eq!(redact("bearer\tx1y2", &[]), "bearer\t[redacted]");
        assert_eq!(redact("the Bearer scheme", &[]), "the Bearer [redacted]");
    }

    #[test]
    fn jwts_anywhere() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
        assert_eq!(
            redact(&format!("<p>Bearer {jwt}</p>"), &[]),
            "<p>Bearer [redacted]</p>"
        );
        assert_eq!(redact(&format!("token={jwt}"), &[]), "token=[redacted]");
        assert_eq!(redact(&format!("v1.{jwt}"), &[]), "v1.[redacted]");
        // Host names and versions are not JWTs.
        assert_eq!(redact("eyJhbGciOiJub25lIn0.eyJhIjoxfQ.", &[]), "[redacted]");
        let plain = "see developer.vippsmobilepay.com, survey.vipps.no, version 1.2.3";
        assert_eq!(redact(plain, &[]), plain);
    }

    #[test]
    fn pieces_of_secrets() {
        let secret = "client-secret-0123456789";
        let out = redact(
            &format!("echo: {secret}; cut: {}", &secret[..14]),
            &[secret],
        );
        assert!(!out.contains("secret-0123"), "{out}");
        assert!(!out.contains("client-secre"), "{out}");
        assert_eq!(redact("nothing here", &[secret]), "nothing here");
    }
}
