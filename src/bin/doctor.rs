//! The doctor: checks your Vipps MobilePay keys against the real API, step by
//! step, the way the common-errors FAQ asks you to, and tells you what is wrong.
//!
//! ```sh
//! # Your keys, against the real API over HTTPS:
//! VIPPS_CLIENT_ID=… VIPPS_CLIENT_SECRET=… VIPPS_SUBSCRIPTION_KEY=… \
//! VIPPS_MSN=123456 VIPPS_ENV=test \
//!     cargo run --example doctor --features emulator
//!
//! # No variables: the same checklist against the embedded emulator, offline.
//! cargo run --example doctor --features emulator
//! ```
//!
//! The checklist, one `PASS`/`FAIL` line per step, with the diagnosis of any failure:
//!
//! 1. **inputs**: the variables are set, the MSN is a valid MSN, the environment is
//!    `test` or `production`, no value carries stray spaces or quotes from a
//!    copy-paste, and no key is given twice.
//! 2. **token**: `POST /accesstoken/get` with `client_id`, `client_secret`,
//!    `Ocp-Apim-Subscription-Key` and `Merchant-Serial-Number`.
//! 3. **token shape**: the token is a JWT that has not expired, and what it is
//!    valid for.
//! 4. **API call**: a harmless `GET /epayment/v1/payments/<a random reference>`.
//!    The expected answer is `404` `vipps::reference_not_found`: it proves that the
//!    token, the subscription key, the MSN and access to the ePayment API all work.
//!
//! Secrets are never printed: the client secret, the subscription key and the
//! token are shown as lengths and `sha256:` fingerprints only.
//!
//! HTTPS goes through the crate's own `HttpsClient` (hyper-rustls with ring and
//! Mozilla's roots, on hyper's legacy client), the client of the quick start, which
//! never follows redirects: a key is never sent on to
//! another host.
//!
//! `VIPPS_BASE_URL` (e.g. `http://127.0.0.1:8080`) sends the checklist to another
//! base URL than the official host of `VIPPS_ENV`: an emulator, or a proxy. That
//! host is registered for `VIPPS_ENV`.

use std::env;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::Full;
use tower::{Layer, ServiceExt};
use tower_vipps::emulator::{Emulator, TEST_MERCHANT, TEST_UNSUBSCRIBED};
use tower_vipps::token::{AccessToken, TokenClient, TokenRequest};
use tower_vipps::{
    BoxError, Cause, Environment, HttpsClient, KeySet, Keyring, Msn, Secret, VippsError,
};

/// The variables the doctor reads.
const VARIABLES: [&str; 5] = [
    "VIPPS_CLIENT_ID",
    "VIPPS_CLIENT_SECRET",
    "VIPPS_SUBSCRIPTION_KEY",
    "VIPPS_MSN",
    "VIPPS_ENV",
];

/// The raw inputs, as given. No `Debug`: it holds secrets.
#[derive(Clone, Default)]
pub struct Inputs {
    /// `VIPPS_CLIENT_ID`.
    pub client_id: Option<String>,
    /// `VIPPS_CLIENT_SECRET`.
    pub client_secret: Option<String>,
    /// `VIPPS_SUBSCRIPTION_KEY`.
    pub subscription_key: Option<String>,
    /// `VIPPS_MSN`.
    pub msn: Option<String>,
    /// `VIPPS_ENV`: `test` or `production`.
    pub env: Option<String>,
}

impl Inputs {
    /// Reads the `VIPPS_*` variables.
    pub fn from_env() -> Inputs {
        let var = |name: &str| env::var(name).ok().filter(|v| !v.is_empty());
        Inputs {
            client_id: var(VARIABLES[0]),
            client_secret: var(VARIABLES[1]),
            subscription_key: var(VARIABLES[2]),
            msn: var(VARIABLES[3]),
            env: var(VARIABLES[4]),
        }
    }

    /// Inputs from preset keys (the emulator's).
    #[allow(dead_code)] // used by main and by tests/examples.rs
    pub fn of(
        client_id: &str,
        client_secret: &str,
        subscription_key: &str,
        msn: Msn,
        env: Environment,
    ) -> Inputs {
        Inputs {
            client_id: Some(client_id.into()),
            client_secret: Some(client_secret.into()),
            subscription_key: Some(subscription_key.into()),
            msn: Some(msn.to_string()),
            env: Some(env.to_string()),
        }
    }

    fn is_empty(&self) -> bool {
        self.values().iter().all(|(_, v)| v.is_none())
    }

    fn values(&self) -> [(&'static str, Option<&str>); 5] {
        [
            (VARIABLES[0], self.client_id.as_deref()),
            (VARIABLES[1], self.client_secret.as_deref()),
            (VARIABLES[2], self.subscription_key.as_deref()),
            (VARIABLES[3], self.msn.as_deref()),
            (VARIABLES[4], self.env.as_deref()),
        ]
    }
}

/// How a step went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It worked.
    Pass,
    /// It failed; the diagnosis was printed.
    Fail,
    /// Not run, since an earlier step failed.
    Skip,
}

/// One step of the checklist.
#[derive(Clone, Debug)]
#[allow(dead_code)] // read by tests/examples.rs
pub struct Step {
    /// Its name.
    pub name: &'static str,
    /// How it went.
    pub outcome: Outcome,
    /// The diagnosis code of the error it saw (a failure, or the expected 404).
    pub code: Option<&'static str>,
}

/// The outcome of the checklist.
#[derive(Clone, Debug)]
pub struct Checkup {
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// What was printed (or would have been).
    #[allow(dead_code)] // read by tests/examples.rs
    pub transcript: String,
}

impl Checkup {
    /// Whether every step passed.
    pub fn healthy(&self) -> bool {
        self.steps.iter().all(|s| s.outcome == Outcome::Pass)
    }
}

const STEP_NAMES: [&str; 4] = ["inputs", "token", "token shape", "API call"];

#[allow(dead_code)] // `main` is not used when tests/examples.rs includes this file
#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let inputs = Inputs::from_env();
    let base_override = env::var("VIPPS_BASE_URL").ok().filter(|v| !v.is_empty());

    if inputs.is_empty() {
        return emulator_mode().await;
    }

    // Your keys: the official host of VIPPS_ENV over HTTPS, or VIPPS_BASE_URL.
    let environment = inputs
        .env
        .as_deref()
        .and_then(|e| e.parse::<Environment>().ok());
    let base = match (&base_override, environment) {
        (Some(base), _) => base.trim_end_matches('/').to_owned(),
        (None, Some(environment)) => environment.base_url().to_owned(),
        (None, None) => Environment::Test.base_url().to_owned(),
    };
    match (&base_override, environment) {
        (None, None) => println!("tower-vipps doctor: checking your keys\n"),
        _ => println!("tower-vipps doctor: checking your keys against {base}\n"),
    }
    let client = HttpsClient::new();
    if !checklist(&inputs, &base, client, true).await.healthy() {
        std::process::exit(1);
    }
    Ok(())
}

/// No variables: the checklist against the embedded emulator.
async fn emulator_mode() -> Result<(), BoxError> {
    let emulator = Emulator::start().await?;
    let base = emulator.base_url(Environment::Test);
    println!("No VIPPS_* variables are set, so the doctor starts the embedded Vipps MobilePay");
    println!("emulator on {base} and checks its test merchant's keys. Nothing leaves");
    println!("this machine. To check your own keys against the real API, set");
    println!("{}.\n", VARIABLES.join(", "));

    // The same client as for the real hosts: the emulator speaks plain HTTP on
    // loopback, which the client does to hosts registered as plaintext.
    let client = HttpsClient::new();
    let msn = TEST_MERCHANT.msn().expect("a merchant has an MSN");
    let inputs = Inputs::of(
        TEST_MERCHANT.client_id(),
        TEST_MERCHANT.client_secret(),
        TEST_MERCHANT.subscription_key(),
        msn,
        Environment::Test,
    );
    let healthy = checklist(&inputs, &base, client.clone(), true)
        .await
        .healthy();

    println!("\nAnd what a failure looks like: keys whose subscription key gets tokens but has");
    println!("no ePayment subscription (the emulator's TEST_UNSUBSCRIBED keys).\n");
    let unsubscribed = Inputs::of(
        TEST_UNSUBSCRIBED.client_id(),
        TEST_UNSUBSCRIBED.client_secret(),
        TEST_UNSUBSCRIBED.subscription_key(),
        TEST_UNSUBSCRIBED.msn().expect("a merchant has an MSN"),
        Environment::Test,
    );
    checklist(&unsubscribed, &base, client, true).await;
    emulator.shutdown().await;
    if !healthy {
        std::process::exit(1);
    }
    Ok(())
}

/// The checklist for `inputs` against `base` (`https://apitest.vipps.no`, or any
/// other base, registered for the inputs' environment). Prints when `print` is set.
pub async fn checklist(inputs: &Inputs, base: &str, client: HttpsClient, print: bool) -> Checkup {
    let mut steps = Vec::new();
    let mut report = Report {
        print,
        transcript: String::new(),
    };

    // 1. The inputs, checked here.
    let checked = match check_inputs(inputs, base, &mut report) {
        Ok(checked) => {
            report.pass(
                1,
                "inputs: the MSN, the environment and the key shapes look right",
            );
            steps.push(step(0, Outcome::Pass, None));
            checked
        }
        Err(problems) => {
            report.fail(1, "inputs: fix these before anything is sent");
            for problem in problems {
                report.detail(&format!("- {problem}"));
            }
            steps.push(step(0, Outcome::Fail, None));
            return skip_rest(steps, &mut report);
        }
    };
    let Checked {
        keys,
        keyring,
        msn,
        environment,
        base_uri,
    } = checked;

    // 2. An access token.
    let request = TokenRequest::new(keys.clone(), Some(msn), keyring.system().clone())
        .base(&base_uri)
        .allow_plaintext(keyring.hosts().allows_plaintext(&base_uri));
    let started = Instant::now();
    let token = match TokenClient::new(client.clone()).fetch(&request).await {
        Ok(token) => {
            report.pass(
                2,
                &format!(
                    "token: POST /accesstoken/get answered 200 in {} ms",
                    started.elapsed().as_millis()
                ),
            );
            steps.push(step(1, Outcome::Pass, None));
            token
        }
        Err(err) => {
            report.fail(2, "token: POST /accesstoken/get failed");
            report.diagnosis(&err);
            steps.push(step(1, Outcome::Fail, Some(err.code())));
            return skip_rest(steps, &mut report);
        }
    };

    // 3. The token's shape and expiry.
    match check_token(&token, environment) {
        Ok(summary) => {
            report.pass(3, &format!("token shape: {summary}"));
            steps.push(step(2, Outcome::Pass, None));
        }
        Err(problem) => {
            report.fail(
                3,
                "token shape: the token is not what Vipps MobilePay issues",
            );
            report.detail(&format!("- {problem}"));
            steps.push(step(2, Outcome::Fail, None));
            return skip_rest(steps, &mut report);
        }
    }

    // 4. A harmless API call: read a payment that does not exist.
    let reference = format!("tower-vipps-doctor-{}", uuid::Uuid::new_v4().simple());
    let path = "/epayment/v1/payments/<random reference>";
    let request = Request::get(format!("{base}/epayment/v1/payments/{reference}"))
        .header("Merchant-Serial-Number", msn.to_string())
        .body(Full::new(Bytes::new()))
        .expect("a valid request");
    let stack = tower_vipps::layer(keyring).layer(client);
    match stack.oneshot(request).await {
        Err(err) if err.cause() == Cause::ReferenceNotFound => {
            report.pass(
                4,
                &format!(
                    "API call: GET {path} answered 404 {}, as expected",
                    err.code()
                ),
            );
            report.detail("The token, the subscription key, the MSN and ePayment access all work.");
            steps.push(step(3, Outcome::Pass, Some(err.code())));
        }
        Ok(response) => {
            report.pass(
                4,
                &format!("API call: GET {path} answered {}", response.status()),
            );
            steps.push(step(3, Outcome::Pass, None));
        }
        Err(err) => {
            report.fail(4, &format!("API call: GET {path} failed"));
            report.diagnosis(&err);
            steps.push(step(3, Outcome::Fail, Some(err.code())));
        }
    }
    report.total(&steps);
    Checkup {
        steps,
        transcript: std::mem::take(&mut report.transcript),
    }
}

/// What step 1 produced.
struct Checked {
    keys: KeySet,
    keyring: Keyring,
    msn: Msn,
    environment: Environment,
    base_uri: Uri,
}

/// Step 1: every problem found in the inputs, or the keys.
fn check_inputs(inputs: &Inputs, base: &str, report: &mut Report) -> Result<Checked, Vec<String>> {
    let mut problems = Vec::new();
    let missing: Vec<&str> = inputs
        .values()
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(name, _)| *name)
        .collect();
    if !missing.is_empty() {
        problems.push(format!("not set: {}", missing.join(", ")));
    }
    for (name, value) in inputs.values() {
        let Some(value) = value else { continue };
        if value.trim() != value {
            problems.push(format!(
                "{name} starts or ends with whitespace (a copy-paste?): remove it"
            ));
        }
        if value.starts_with(['"', '\'']) || value.ends_with(['"', '\'']) {
            problems.push(format!("{name} is wrapped in quotes: remove them"));
        }
    }

    let environment = match inputs.env.as_deref().map(str::parse::<Environment>) {
        Some(Ok(environment)) => Some(environment),
        Some(Err(_)) => {
            problems.push("VIPPS_ENV must be `test` or `production`".into());
            None
        }
        None => None,
    };
    let msn = match inputs.msn.as_deref().map(str::parse::<Msn>) {
        Some(Ok(msn)) => Some(msn),
        Some(Err(err)) => {
            problems.push(format!("VIPPS_MSN is not an MSN: {err}"));
            None
        }
        None => None,
    };

    // Show what was given, secrets as lengths and fingerprints only.
    if let Some(id) = inputs.client_id.as_deref() {
        // A UUID is a client id: its first 8 characters help tell key sets
        // apart. Anything else may be another key put here: shown as a
        // fingerprint, as the secrets are.
        if is_uuid(id) {
            report.note(&format!(
                "client_id         {}… ({} chars, a UUID, as Vipps MobilePay client ids are)",
                id.chars().take(8).collect::<String>(),
                id.chars().count()
            ));
        } else {
            report.note(&format!(
                "client_id         {} chars, fingerprint {} (not a UUID: Vipps MobilePay client ids are; is it another key?)",
                id.chars().count(),
                tower_vipps::Secret::new(id).fingerprint()
            ));
        }
    }
    if let Some(secret) = inputs.client_secret.as_deref() {
        report.note(&format!(
            "client_secret     {} chars, {}",
            secret.chars().count(),
            Secret::new(secret).fingerprint()
        ));
    }
    if let Some(key) = inputs.subscription_key.as_deref() {
        let shape = if key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
            "32 hex digits, as subscription keys are"
        } else {
            "not 32 hex digits: is it the subscription key?"
        };
        report.note(&format!(
            "subscription key  {} chars, {}, {shape}",
            key.chars().count(),
            Secret::new(key).fingerprint()
        ));
    }
    if let Some(msn) = msn {
        report.note(&format!("MSN               {msn}"));
    }
    if let Some(environment) = environment {
        report.note(&format!("environment       {environment}, base {base}"));
    }

    // The same value twice: a key pasted into the wrong variable.
    let given = [
        ("VIPPS_CLIENT_ID", inputs.client_id.as_deref()),
        ("VIPPS_CLIENT_SECRET", inputs.client_secret.as_deref()),
        ("VIPPS_SUBSCRIPTION_KEY", inputs.subscription_key.as_deref()),
    ];
    for (i, (a, va)) in given.iter().enumerate() {
        for (b, vb) in &given[i + 1..] {
            if va.is_some() && va == vb {
                problems.push(format!(
                    "{a} and {b} hold the same value: one of them is wrong"
                ));
            }
        }
    }

    let base_uri: Option<Uri> = match base.parse::<Uri>() {
        Ok(uri) if uri.scheme().is_some() && uri.authority().is_some() => Some(uri),
        _ => {
            problems.push(format!("the base URL {base} is not an absolute URL"));
            None
        }
    };

    if !problems.is_empty() {
        return Err(problems);
    }
    let (Some(environment), Some(msn), Some(base_uri)) = (environment, msn, base_uri) else {
        return Err(vec!["the inputs are incomplete".into()]);
    };
    let (Some(id), Some(secret), Some(key)) = (
        inputs.client_id.as_deref(),
        inputs.client_secret.as_deref(),
        inputs.subscription_key.as_deref(),
    ) else {
        return Err(vec!["the inputs are incomplete".into()]);
    };
    let keys = KeySet::merchant(environment, msn, id, secret, key)
        .map_err(|err| vec![format!("the keys cannot be used: {err}")])?;
    let mut builder = Keyring::builder()
        .key_set(keys.clone())
        .system("tower-vipps-doctor", env!("CARGO_PKG_VERSION"));
    let authority = base_uri.authority().map(|a| a.as_str()).unwrap_or_default();
    if authority != environment.host() {
        // VIPPS_BASE_URL: register its host for this environment; plain HTTP only
        // to loopback (an emulator), so keys never cross a network unencrypted.
        builder = if base_uri.scheme_str() == Some("http") && is_loopback(&base_uri) {
            builder.plaintext_host(environment, authority)
        } else {
            builder.host(environment, authority)
        };
    }
    let keyring = builder
        .build()
        .map_err(|err| vec![format!("the keys cannot be used: {err}")])?;
    Ok(Checked {
        keys,
        keyring,
        msn,
        environment,
        base_uri,
    })
}

fn is_loopback(uri: &Uri) -> bool {
    match uri
        .host()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
    {
        Some("localhost") => true,
        Some(host) => host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// Step 3: a JWT whose `exp` is ahead, and for how long.
fn check_token(token: &AccessToken, environment: Environment) -> Result<String, String> {
    let raw = token.secret().expose();
    let parts: Vec<&str> = raw.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(format!(
            "expected a JWT (three dot-separated parts), got {} part(s)",
            parts.len()
        ));
    }
    let claims: serde_json::Value = URL_SAFE_NO_PAD
        .decode(parts[1].trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or("the JWT's payload is not base64url JSON")?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    if let Some(exp) = claims.get("exp").and_then(serde_json::Value::as_u64) {
        if exp <= now {
            return Err(format!(
                "the token's `exp` is {} s in the past: check this machine's clock",
                now - exp
            ));
        }
    }
    let left = token.remaining(tokio::time::Instant::now());
    if left.is_zero() {
        return Err("the token expired on arrival (`expires_in` is 0)".into());
    }
    let usual = match environment {
        Environment::Test => Duration::from_secs(3600),
        Environment::Production => Duration::from_secs(86_400),
    };
    let note = if left.as_secs().abs_diff(usual.as_secs()) <= 60 {
        String::new()
    } else {
        format!(" (usual in {environment}: {})", fmt_duration(usual))
    };
    Ok(format!(
        "a JWT ({} chars, {}), valid for {}{note}",
        raw.len(),
        token.secret().fingerprint(),
        fmt_duration(left)
    ))
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

fn fmt_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

fn step(index: usize, outcome: Outcome, code: Option<&'static str>) -> Step {
    Step {
        name: STEP_NAMES[index],
        outcome,
        code,
    }
}

fn skip_rest(mut steps: Vec<Step>, report: &mut Report) -> Checkup {
    for (index, name) in STEP_NAMES.iter().enumerate().skip(steps.len()) {
        report.line(&format!(
            "SKIP {}. {name}: an earlier step failed",
            index + 1
        ));
        steps.push(step(index, Outcome::Skip, None));
    }
    report.total(&steps);
    Checkup {
        steps,
        transcript: std::mem::take(&mut report.transcript),
    }
}

/// Prints the checklist (when `print` is set) and keeps its transcript.
struct Report {
    print: bool,
    transcript: String,
}

impl Report {
    fn line(&mut self, line: &str) {
        if self.print {
            println!("{line}");
        }
        self.transcript.push_str(line);
        self.transcript.push('\n');
    }

    fn note(&mut self, line: &str) {
        self.line(&format!("  {line}"));
    }

    fn pass(&mut self, n: usize, line: &str) {
        self.line(&format!("PASS {n}. {line}"));
    }

    fn fail(&mut self, n: usize, line: &str) {
        self.line(&format!("FAIL {n}. {line}"));
    }

    fn detail(&mut self, line: &str) {
        self.line(&format!("        {line}"));
    }

    fn diagnosis(&mut self, err: &VippsError) {
        if err.is_refused() {
            self.detail("Refused before sending:");
        }
        for line in err.diagnosis().report().lines() {
            self.detail(line);
        }
        // For failures without an answer (DNS, TLS, connection), the lower errors
        // tell which: they hold no header values, so no secret.
        if err.status().is_none() {
            let mut source = std::error::Error::source(err);
            let mut chain = Vec::new();
            while let Some(e) = source {
                let text = e.to_string();
                if chain.last() != Some(&text) {
                    chain.push(text);
                }
                source = e.source();
            }
            if !chain.is_empty() {
                self.detail(&format!("  underlying error: {}", chain.join(": ")));
            }
        }
    }

    fn total(&mut self, steps: &[Step]) {
        let passed = steps.iter().filter(|s| s.outcome == Outcome::Pass).count();
        if passed == steps.len() {
            self.line(&format!("\nAll {passed} checks passed."));
        } else {
            self.line(&format!("\n{passed} of {} checks passed.", steps.len()));
        }
    }
}
