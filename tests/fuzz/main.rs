//! A seeded fuzz-style trial of the crate (issue 11): `classify` and the body
//! parsers, `PreflightLayer`, and the whole preset (`tower_vipps::layer`) over a
//! counting inner service whose token endpoint answers every shape (good, wrong
//! types, missing fields, HTML, huge, slow, 429, echoing the request's headers) and
//! whose API answers every status with mutated, chunked, stalled, endless or broken
//! bodies.
//!
//! For every case: no panic, a response (`< 400`) or a diagnosed `VippsError` with
//! a known code, a refusal that sent nothing, and no 12-byte piece of any secret
//! (client secret, subscription key, every access token handed out) in `Debug`,
//! `{:#?}`, `Display`, `report()`, miette's rendering or TRACE-level tracing.
//!
//! Fast by default (a few seconds in a debug build). The long mode:
//! `TOWER_VIPPS_FUZZ_CASES=1000000 cargo test --release --all-features --test fuzz`
//! (cases per test; `TOWER_VIPPS_FUZZ_SECONDS=n` stops each test after `n`
//! seconds); `TOWER_VIPPS_FUZZ_SEED=n` picks another seed. A failure prints its
//! seed and case number.

#[path = "../common/mod.rs"]
mod common;
mod generate;
mod service;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use fastrand::Rng;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt};

use generate::{api, body, request, response_headers, status};
use service::{Case, SHAPES, delivery, fresh_token, inner};
use tower_vipps::diagnose::body::ErrorBody;
use tower_vipps::diagnose::classify;
use tower_vipps::{
    Cause, Environment, KeySet, Keyring, Msn, PreflightLayer, RequestContext, VippsError,
};

/// Cases per test: `TOWER_VIPPS_FUZZ_CASES`, or `default`.
fn cases(default: u64) -> u64 {
    std::env::var("TOWER_VIPPS_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn seed() -> u64 {
    std::env::var("TOWER_VIPPS_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x11_5EED)
}

/// Runs `case` for each case number with its own seeded generator; a panic names
/// the seed and the case.
fn run(name: &str, default: u64, mut case: impl FnMut(u64, &mut Rng)) {
    let seed = seed();
    let n = cases(default);
    let started = std::time::Instant::now();
    // `TOWER_VIPPS_FUZZ_SECONDS`: stop after this long, whatever the case count.
    let budget = std::env::var("TOWER_VIPPS_FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_secs);
    let mut done = 0;
    for i in 0..n {
        if budget.is_some_and(|b| started.elapsed() > b) {
            break;
        }
        done += 1;
        if budget.is_some() && done % 1000 == 0 {
            eprintln!("{name}: {done} cases, {:?}", started.elapsed());
        }
        let mut rng = Rng::with_seed(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(i, &mut rng)));
        if let Err(panic) = outcome {
            eprintln!("{name}: case {i} of seed {seed} failed");
            std::panic::resume_unwind(panic);
        }
    }
    eprintln!("{name}: {done} cases, seed {seed}, {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------
// Secrets and what is printed.

/// The secrets of a case, as the set of their 12-byte pieces.
#[derive(Clone)]
struct Secrets(std::collections::HashSet<Vec<u8>>);

const PIECE: usize = 12;

impl Secrets {
    fn new(secrets: &[&str]) -> Secrets {
        let mut pieces = std::collections::HashSet::new();
        for secret in secrets {
            assert!(secret.len() >= PIECE, "a test secret shorter than a piece");
            pieces.extend(secret.as_bytes().windows(PIECE).map(<[u8]>::to_vec));
        }
        Secrets(pieces)
    }

    fn with(&self, secret: &str) -> Secrets {
        let mut more = self.clone();
        more.0
            .extend(secret.as_bytes().windows(PIECE).map(<[u8]>::to_vec));
        more
    }

    /// No 12-byte piece of any secret in `text`.
    fn assert_absent(&self, what: &str, text: &str) {
        if let Some(window) = text.as_bytes().windows(PIECE).find(|w| self.0.contains(*w)) {
            panic!(
                "`{}` of a secret in {what}:\n{text}",
                String::from_utf8_lossy(window)
            );
        }
    }
}

fn assert_diagnosed(err: &VippsError, secrets: &Secrets) {
    assert!(Cause::ALL.contains(&err.cause()), "{err:?}");
    assert!(err.code().starts_with("vipps::"));
    let mut texts = vec![
        ("Debug", format!("{err:?}")),
        ("{:#?}", format!("{err:#?}")),
        ("Display", err.to_string()),
        ("report", err.diagnosis().report()),
    ];
    #[cfg(feature = "miette")]
    {
        let mut out = String::new();
        miette::NarratableReportHandler::new()
            .render_report(&mut out, err)
            .unwrap();
        texts.push(("miette", out));
    }
    for (what, text) in &texts {
        secrets.assert_absent(what, text);
    }
}

// ---------------------------------------------------------------------------
// 1. classify and the body parsers.

#[test]
fn classify_and_parsers_take_anything() {
    let secrets = Secrets::new(&[]);
    run("classify", 2000, |_, rng| {
        let bytes = body(rng);
        let parsed = ErrorBody::parse(&bytes);
        let _ = format!("{parsed:?}");
        let _ = parsed.message();
        let context = RequestContext {
            api: api(rng),
            msn: rng.bool().then(|| "123456".parse().unwrap()),
            ..RequestContext::default()
        };
        let status = status(rng);
        let headers = response_headers(rng);
        let diagnosis = classify(&context, status, &headers, &bytes);
        assert!(Cause::ALL.contains(&diagnosis.cause()));
        let report = diagnosis.report();
        secrets.assert_absent("report", &report);
        if status.is_server_error() {
            assert_eq!(diagnosis.cause(), Cause::ServerError);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(diagnosis.cause(), Cause::RateLimited);
        }
    });
}

const CLIENT_SECRET: &str = "fz-client-secret-Q2w9Lk3Xv7Tr";
const SUB_KEY: &str = "fz-sub-key-Hn4Jp8Ws1Yc6Bz0M";
const PARTNER_SECRET: &str = "fz-partner-secret-Rt5Gv2Kd8Np";
const PARTNER_SUB_KEY: &str = "fz-partner-subkey-Ue7Mx3Qa9Lw";
/// A token of the caller's own, sent in a request.
const USER_TOKEN: &str =
    "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoib3duLXRva2VuLWZ1enoifQ.dXNlci10b2tlbi1zaWduYXR1cmU";

fn keyring() -> Keyring {
    let msn: Msn = "123456".parse().unwrap();
    let partner = KeySet::partner(
        Environment::Production,
        "partner-id",
        PARTNER_SECRET,
        PARTNER_SUB_KEY,
    )
    .unwrap()
    .connected_msns((300_000..300_010).map(|m| Msn::try_from(m).unwrap()));
    Keyring::builder()
        .merchant(
            Environment::Test,
            msn,
            "merchant-id",
            CLIENT_SECRET,
            SUB_KEY,
        )
        .key_set(partner)
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------
// 2. PreflightLayer.

/// The secrets a request may carry or the stack may add.
fn request_secrets() -> Secrets {
    Secrets::new(&[
        CLIENT_SECRET,
        SUB_KEY,
        PARTNER_SECRET,
        PARTNER_SUB_KEY,
        USER_TOKEN,
    ])
}

#[test]
fn preflight_takes_anything() {
    let secrets = request_secrets();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (captured, _guard) = common::capture_tracing();
    let sent = Arc::new(AtomicUsize::new(0));
    let count = sent.clone();
    let inner = tower::service_fn(move |_req: Request<Full<Bytes>>| {
        count.fetch_add(1, Ordering::Relaxed);
        async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
    });
    let layer = PreflightLayer::new().keyring(keyring());
    run("preflight", 1500, |_, rng| {
        let before = sent.load(Ordering::Relaxed);
        let req = request(rng);
        let result = rt.block_on(layer.layer(inner.clone()).oneshot(req));
        match result {
            Ok(_) => assert_eq!(sent.load(Ordering::Relaxed), before + 1),
            Err(err) => {
                assert_diagnosed(&err, &secrets);
                if err.is_refused() {
                    assert_eq!(sent.load(Ordering::Relaxed), before, "refused yet sent");
                }
            }
        }
        secrets.assert_absent("tracing", &captured.take());
    });
}

#[test]
fn the_preset_takes_anything() {
    let secrets = request_secrets();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let (captured, _guard) = common::capture_tracing();
    let keyring = keyring();
    run("preset", 1500, |i, rng| {
        let case = Arc::new(Case {
            shape: SHAPES[rng.usize(..SHAPES.len())],
            token: fresh_token(rng),
            token_delivery: delivery(rng),
            api_status: status(rng),
            api_body: Bytes::from(body(rng)),
            api_headers: response_headers(rng),
            api_delivery: delivery(rng),
            echo_api: rng.u8(..3) == 0,
            api_calls: AtomicUsize::new(0),
        });
        let secrets = secrets.with(&case.token);
        let stack = tower_vipps::layer(keyring.clone()).layer(inner(case.clone(), seed() ^ i));
        let req = request(rng);
        let outcome = rt.block_on(async {
            let result = tokio::time::timeout(Duration::from_secs(600), stack.oneshot(req))
                .await
                .expect("no answer within 10 minutes (virtual) of a 30 s deadline");
            match result {
                Ok(res) => {
                    let status = res.status();
                    // A success body passes unread: read some of it, bounded.
                    let mut body = std::pin::pin!(res.into_body());
                    for _ in 0..256 {
                        match tokio::time::timeout(Duration::from_secs(5), body.frame()).await {
                            Ok(Some(Ok(_))) => {}
                            _ => break,
                        }
                    }
                    Ok(status)
                }
                Err(err) => Err(err),
            }
        });
        match outcome {
            Ok(status) => assert!(status.as_u16() < 400, "{status} passed as a success"),
            Err(err) => {
                assert_diagnosed(&err, &secrets);
                if err.is_refused() {
                    assert_eq!(
                        case.api_calls.load(Ordering::Relaxed),
                        0,
                        "refused yet sent: {err:?}"
                    );
                }
            }
        }
        secrets.assert_absent("tracing", &captured.take());
    });
}
