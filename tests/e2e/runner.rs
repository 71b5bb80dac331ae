//! The runner: each row on a fresh emulator per path, and the checks of its answer.

use super::*;

pub(crate) fn describe(answer: &Answer) -> String {
    match answer {
        Ok((status, _)) => format!("ok {status}"),
        Err(e) => {
            let origin = match e.origin() {
                Origin::Refused => "refused".to_owned(),
                Origin::Response(r) => format!("response {}", r.status.as_u16()),
                Origin::Token(Some(r)) => format!("token {}", r.status.as_u16()),
                Origin::Token(None) => "token (no answer)".to_owned(),
                Origin::Transport => "transport".to_owned(),
                _ => "other".to_owned(),
            };
            format!("{} ({origin})", e.code())
        }
    }
}

pub(crate) fn check(expect: Expect, answer: &Answer) -> Result<(), String> {
    let fail = || Err(format!("expected {expect:?}, got {}", describe(answer)));
    match (expect, answer) {
        (Expect::Ok(want), Ok((status, _))) if status.as_u16() == want => Ok(()),
        (Expect::Refused(cause), Err(e)) if e.is_refused() && e.cause() == cause => Ok(()),
        (Expect::Response(cause, status), Err(e))
            if matches!(e.origin(), Origin::Response(r) if r.status.as_u16() == status)
                && e.cause() == cause =>
        {
            Ok(())
        }
        (Expect::Token(cause, status), Err(e))
            if matches!(e.origin(), Origin::Token(Some(r)) if r.status.as_u16() == status)
                && e.cause() == cause =>
        {
            Ok(())
        }
        _ => fail(),
    }
}

pub(crate) fn check_counts(emu: &Emulator, want: &[(Endpoint, usize)]) -> Result<(), String> {
    let got = emu.counts();
    for endpoint in Endpoint::ALL {
        let expected = want
            .iter()
            .find(|(e, _)| *e == endpoint)
            .map_or(0, |(_, n)| *n);
        if got.get(endpoint) != expected {
            return Err(format!(
                "emulator counts {got:?}, expected {want:?} (every other endpoint 0)"
            ));
        }
    }
    Ok(())
}

/// Every attempt of the call (a retry, a replay with a fresh token) carried the same
/// `Idempotency-Key`: a retried POST is the same operation, never a second payment.
pub(crate) fn same_idempotency_key(emu: &Emulator) -> Result<(), String> {
    let keys: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|r| r.method == Method::POST && r.endpoint != AccessToken)
        .map(|r| r.headers.get("idempotency-key").cloned())
        .collect();
    match keys.first() {
        Some(None) => Err("a POST without an Idempotency-Key reached the emulator".into()),
        Some(first) if keys.iter().any(|k| k != first) => Err(format!(
            "the attempts carried different Idempotency-Keys: {keys:?}"
        )),
        _ => Ok(()),
    }
}

pub(crate) async fn setup(emu: &Emulator, client: &UserClient, row: &Row, ctx: &mut Ctx) {
    for step in row.setup {
        match *step {
            Step::Create => {
                let (status, _) = client
                    .send(emu, create(READY_USER).msn(MSN))
                    .await
                    .unwrap_or_else(|e| panic!("{}: setup create: {e}", row.name));
                assert_eq!(status, 201, "{}: setup create", row.name);
            }
            Step::CaptureAll => {
                let (status, body) = client
                    .send(emu, modify("capture", 49_900).msn(MSN))
                    .await
                    .unwrap_or_else(|e| panic!("{}: setup capture: {e}", row.name));
                assert_eq!(status, 200, "{}: setup capture", row.name);
                assert_eq!(body["aggregate"]["capturedAmount"]["value"], 49_900);
            }
            Step::OwnToken(keys) => {
                ctx.token = client.own_token(emu, keys, keys.msn().map(Msn::get)).await;
            }
            Step::ExpireTokens => emu.advance_clock(Duration::from_secs(2 * 3600)),
            Step::Faults(f) => f(&emu.faults()),
        }
    }
}

pub(crate) async fn run_row(row: &Row, path: Path) -> (String, Result<(), String>) {
    let emu = Emulator::start().await.unwrap();
    let keyring = (row.keys)()
        .into_iter()
        .fold(
            emu.keyring_builder().system("acme-shop", "1.0.0"),
            |b, k| b.key_set(k),
        )
        .build()
        .unwrap();
    let client = UserClient::new(&emu, path, row.stack, keyring);
    let mut ctx = Ctx {
        token: String::new(),
    };
    setup(&emu, &client, row, &mut ctx).await;
    emu.reset_counts();
    let answer = client.send(&emu, (row.call)(&ctx)).await;
    let line = format!(
        "{:<8} {:<13} {:<58} {:<45} {:?}",
        format!("{path:?}"),
        format!("{:?}", row.stack),
        describe(&answer),
        row.name,
        emu.counts()
    );
    let result = check(row.expect, &answer)
        .and_then(|()| check_counts(&emu, row.counts))
        .and_then(|()| same_idempotency_key(&emu));
    // No error shows a secret: not the keys, not a token that went on the wire.
    if let Err(e) = &answer {
        let shown = format!("{e} {e:?} {}", e.diagnosis().report());
        let mut secrets: Vec<String> = emulator::ALL_CREDENTIALS
            .iter()
            .flat_map(|c| [c.client_secret(), c.subscription_key()])
            .map(str::to_owned)
            .collect();
        secrets.extend(emu.requests().iter().filter_map(|r| {
            let value = r.headers.get("authorization")?.to_str().ok()?;
            Some(value.rsplit(' ').next()?.to_owned())
        }));
        if !ctx.token.is_empty() {
            secrets.push(ctx.token.clone());
        }
        for secret in secrets.iter().filter(|s| s.len() > 8) {
            assert!(
                !shown.contains(secret.as_str()),
                "{}: a secret in {shown}",
                row.name
            );
        }
    }
    emu.shutdown().await;
    (line, result)
}

#[tokio::test]
pub(crate) async fn every_faq_failure_on_both_paths() {
    let rows = rows();
    let mut failures = Vec::new();
    for row in &rows {
        for path in [Path::Tower, Path::Reqwest] {
            let (line, result) = run_row(row, path).await;
            println!("{line}");
            if let Err(why) = result {
                failures.push(format!("[{path:?}] {}: {why}", row.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} runs failed:\n{}",
        failures.len(),
        rows.len() * 2,
        failures.join("\n")
    );
}

/// The table covers every refusal and diagnosis it claims, on both paths: no row
/// may expect a cause the catalog does not have, and the FAQ's causes all appear.
#[test]
pub(crate) fn the_table_covers_the_faq() {
    let rows = rows();
    let causes: Vec<Cause> = rows
        .iter()
        .filter_map(|r| match r.expect {
            Expect::Refused(c) | Expect::Response(c, _) | Expect::Token(c, _) => Some(c),
            Expect::Ok(_) => None,
        })
        .collect();
    for cause in [
        Cause::BearerWrongCase,
        Cause::BearerMissing,
        Cause::MissingAuthorization,
        Cause::AccessTokenExpired,
        Cause::InvalidAccessToken,
        Cause::TokenForOtherMsn,
        Cause::SubscriptionKeyMismatch,
        Cause::InvalidSubscriptionKey,
        Cause::MissingSubscriptionKey,
        Cause::SubscriptionNotFound,
        Cause::InvalidClientCredentials,
        Cause::WrongEnvironment,
        Cause::PartnerMissingMsnHeader,
        Cause::PartnerMsnNotConnected,
        Cause::MsnHeaderBodyMismatch,
        Cause::MsnHeaderMisspelled,
        Cause::MerchantNotAllowedForEcommerce,
        Cause::InvalidAmount,
        Cause::InvalidUrl,
        Cause::CaptureExceedsReserved,
        Cause::RefundExceedsCaptured,
        Cause::UserUnknown,
        Cause::InvalidPhoneNumber,
        Cause::TestUserNotReady,
        Cause::RateLimited,
        Cause::ServerError,
    ] {
        assert!(causes.contains(&cause), "no row for {cause}");
    }
    // A real user in the test environment answers "user unknown": its steps point
    // to the test users.
    assert!(
        Cause::UserUnknown
            .steps()
            .iter()
            .any(|s| s.contains("test environment") && s.contains("test user"))
    );
}
