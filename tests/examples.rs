//! The examples' logic, run offline against the emulator: each example file is
//! included as a module and its `run`/`checklist` called without printing.

#[path = "../examples/partner.rs"]
mod partner;

#[path = "../examples/reqwest.rs"]
mod reqwest_example;

#[path = "../src/bin/doctor.rs"]
mod doctor;

#[path = "../examples/webhooks.rs"]
mod webhooks_example;

use doctor::{Inputs, Outcome};
use tower_vipps::Environment;
use tower_vipps::emulator::{
    Credentials, Emulator, Endpoint, PRODUCTION_MERCHANT, TEST_LOGIN_ONLY, TEST_MERCHANT,
    TEST_UNSUBSCRIBED,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_serves_1000_msns_with_one_token_each() {
    let emulator = Emulator::start().await.unwrap();
    let summary = partner::run(&emulator, false).await.unwrap();
    assert_eq!(summary.msns, 1000);
    assert_eq!(summary.created, 1000);
    assert_eq!(summary.create_tokens, 1000);
    assert_eq!(summary.read_tokens, 0);
    assert_eq!(summary.shared_tokens, 1);
    assert_eq!(
        summary.mistakes,
        vec![
            ("vipps::partner_missing_msn_header", true, 0),
            ("vipps::partner_msn_not_connected", true, 0),
            ("vipps::partner_msn_not_connected", false, 1),
        ]
    );
    assert_eq!(emulator.count(Endpoint::CreatePayment), 1000);
    assert_eq!(emulator.count(Endpoint::GetPayment), 2000);
    assert_eq!(emulator.count(Endpoint::AccessToken), 1002);
}

#[tokio::test]
async fn reqwest_flow_and_recovered_errors() {
    let emulator = Emulator::start().await.unwrap();
    // The dev-dependency reqwest has `rustls-no-provider` (ring, no aws-lc).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let summary = reqwest_example::run(&emulator, false).await.unwrap();
    assert_eq!(summary.captured, 49900);
    assert_eq!(summary.refunded, 10000);
    assert_eq!(summary.tokens, 1);
    assert_eq!(
        summary.mistakes,
        vec![
            ("vipps::invalid_phone_number", true, 0),
            ("vipps::capture_exceeds_reserved", false, 1),
        ]
    );
}

fn inputs(keys: Credentials, env: Environment) -> Inputs {
    Inputs::of(
        keys.client_id(),
        keys.client_secret(),
        keys.subscription_key(),
        keys.msn().unwrap(),
        env,
    )
}

fn outcomes(checkup: &doctor::Checkup) -> Vec<(Outcome, Option<&'static str>)> {
    checkup.steps.iter().map(|s| (s.outcome, s.code)).collect()
}

fn assert_no_secret(checkup: &doctor::Checkup, keys: Credentials) {
    for secret in [keys.client_secret(), keys.subscription_key()] {
        assert!(
            !checkup.transcript.contains(secret),
            "a secret was printed:\n{}",
            checkup.transcript
        );
    }
    assert!(!checkup.transcript.contains("Bearer"));
}

#[tokio::test]
async fn doctor_passes_good_keys_and_diagnoses_bad_ones() {
    use Outcome::{Fail, Pass, Skip};
    let emulator = Emulator::start().await.unwrap();
    let base = emulator.base_url(Environment::Test);
    // The client of the real hosts: plain HTTP only to the emulator's loopback hosts.
    let client = tower_vipps::HttpsClient::new();

    // Good keys: all four pass, the API call is the expected 404.
    let checkup = doctor::checklist(
        &inputs(TEST_MERCHANT, Environment::Test),
        &base,
        client.clone(),
        false,
    )
    .await;
    assert_eq!(
        outcomes(&checkup),
        vec![
            (Pass, None),
            (Pass, None),
            (Pass, None),
            (Pass, Some("vipps::reference_not_found")),
        ],
        "{}",
        checkup.transcript
    );
    assert!(checkup.healthy());
    assert!(checkup.transcript.contains("All 4 checks passed."));
    assert_no_secret(&checkup, TEST_MERCHANT);
    // One token for step 2, one for the stack of step 4; one GET.
    assert_eq!(emulator.count(Endpoint::AccessToken), 2);
    assert_eq!(emulator.count(Endpoint::GetPayment), 1);

    // Tokens work, but no ePayment subscription.
    let checkup = doctor::checklist(
        &inputs(TEST_UNSUBSCRIBED, Environment::Test),
        &base,
        client.clone(),
        false,
    )
    .await;
    assert_eq!(
        outcomes(&checkup)[3],
        (Fail, Some("vipps::subscription_not_found"))
    );
    assert_no_secret(&checkup, TEST_UNSUBSCRIBED);

    // A Login-only sales unit.
    let checkup = doctor::checklist(
        &inputs(TEST_LOGIN_ONLY, Environment::Test),
        &base,
        client.clone(),
        false,
    )
    .await;
    assert_eq!(
        outcomes(&checkup)[3],
        (Fail, Some("vipps::merchant_not_allowed_for_ecommerce"))
    );

    // A wrong client secret: the token step fails, nothing else is sent.
    emulator.reset_counts();
    let mut wrong = inputs(TEST_MERCHANT, Environment::Test);
    wrong.client_secret = Some("not-the-secret".into());
    let checkup = doctor::checklist(&wrong, &base, client.clone(), false).await;
    assert_eq!(
        outcomes(&checkup),
        vec![
            (Pass, None),
            (Fail, Some("vipps::invalid_client_credentials")),
            (Skip, None),
            (Skip, None),
        ],
        "{}",
        checkup.transcript
    );
    assert_eq!(emulator.count(Endpoint::AccessToken), 1);
    assert_eq!(emulator.counts().api_calls(), 0);

    // Production keys sent to the test environment's host.
    let checkup = doctor::checklist(
        &inputs(PRODUCTION_MERCHANT, Environment::Test),
        &base,
        client.clone(),
        false,
    )
    .await;
    assert_eq!(
        outcomes(&checkup)[1],
        (Fail, Some("vipps::invalid_subscription_key")),
        "{}",
        checkup.transcript
    );
    assert_no_secret(&checkup, PRODUCTION_MERCHANT);

    // Bad inputs: refused before anything is sent.
    emulator.reset_counts();
    let mut bad = inputs(TEST_MERCHANT, Environment::Test);
    bad.msn = Some("12 3456".into());
    bad.env = Some("staging".into());
    bad.subscription_key = Some(format!(" {}", TEST_MERCHANT.subscription_key()));
    bad.client_id = None;
    let checkup = doctor::checklist(&bad, &base, client, false).await;
    assert_eq!(
        outcomes(&checkup),
        vec![(Fail, None), (Skip, None), (Skip, None), (Skip, None)]
    );
    for problem in [
        "not set: VIPPS_CLIENT_ID",
        "VIPPS_SUBSCRIPTION_KEY starts or ends with whitespace",
        "VIPPS_ENV must be `test` or `production`",
        "VIPPS_MSN is not an MSN",
    ] {
        assert!(
            checkup.transcript.contains(problem),
            "{problem}:\n{}",
            checkup.transcript
        );
    }
    assert_no_secret(&checkup, TEST_MERCHANT);
    assert_eq!(emulator.counts().total(), 0);
}

/// Keys never go out over plain HTTP: the official host over `http://` is refused
/// before anything is sent.
#[tokio::test]
async fn doctor_refuses_plain_http_to_the_official_host() {
    use Outcome::{Fail, Pass, Skip};
    let checkup = doctor::checklist(
        &inputs(TEST_MERCHANT, Environment::Test),
        "http://apitest.vipps.no",
        tower_vipps::HttpsClient::new(),
        false,
    )
    .await;
    assert_eq!(
        outcomes(&checkup),
        vec![
            (Pass, None),
            (Fail, Some("vipps::insecure_scheme")),
            (Skip, None),
            (Skip, None),
        ],
        "{}",
        checkup.transcript
    );
    assert!(checkup.transcript.contains("http://apitest.vipps.no"));
    assert_no_secret(&checkup, TEST_MERCHANT);
}

#[tokio::test]
async fn webhooks_receiver_gets_each_event_once_verified() {
    let emulator = Emulator::start().await.unwrap();
    let summary = webhooks_example::run(&emulator, false).await.unwrap();
    let new = tower_vipps::webhooks::Delivery::New;
    assert_eq!(
        summary.received,
        ["CREATED", "AUTHORIZED", "CAPTURED", "REFUNDED"].map(|n| (n.to_owned(), new))
    );
    assert_eq!(
        (
            summary.counts.delivered,
            summary.counts.retried,
            summary.counts.failed
        ),
        (4, 0, 0)
    );
}
