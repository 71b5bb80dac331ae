use super::policy::{Decision, Failure, Stop, failure_of_error, failure_of_status};
use super::*;

#[test]
fn a_token_request_is_safe_to_repeat() {
    let token = Request::post("https://apitest.vipps.no/accesstoken/get")
        .header("client_id", "id")
        .header("client_secret", "secret")
        .body(())
        .unwrap();
    assert!(safe_to_repeat(&token));
    let payment = Request::post("https://apitest.vipps.no/epayment/v1/payments")
        .body(())
        .unwrap();
    assert!(!safe_to_repeat(&payment));
    // A Checkout session carries `client_secret` and is no token request.
    let session = Request::post("https://apitest.vipps.no/checkout/v3/session")
        .header("client_id", "id")
        .header("client_secret", "secret")
        .body(())
        .unwrap();
    assert!(!safe_to_repeat(&session));
    // eCom's own idempotency header.
    let ecom = Request::post("https://apitest.vipps.no/ecomm/v2/payments")
        .header("X-Request-Id", "r-1")
        .body(())
        .unwrap();
    assert!(safe_to_repeat(&ecom));
    let other = Request::post("https://apitest.vipps.no/epayment/v1/payments")
        .header("X-Request-Id", "r-1")
        .body(())
        .unwrap();
    assert!(!safe_to_repeat(&other));
}
use crate::Diagnosis;
use crate::error::ErrorResponse;
use bytes::Bytes;
use http_body_util::{Full, StreamBody};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A budget that always allows and counts.
#[derive(Default)]
struct Counting {
    deposits: AtomicUsize,
    withdrawals: AtomicUsize,
    deny: bool,
}
impl Budget for Counting {
    fn deposit(&self) {
        self.deposits.fetch_add(1, Ordering::SeqCst);
    }
    fn withdraw(&self) -> bool {
        self.withdrawals.fetch_add(1, Ordering::SeqCst);
        !self.deny
    }
}

#[derive(Clone, Copy, Debug)]
enum Body {
    Empty,
    Full,
    Stream,
}

#[derive(Clone, Copy, Debug)]
enum Case {
    /// A plain response with this status.
    Plain(u16),
    /// A `VippsError` made from a response with this status (Diagnose below).
    Diagnosed(u16),
    ConnectRefused,
    Reset,
    Timeout,
    Refused,
}

fn error_response(status: u16, headers: HeaderMap) -> VippsError {
    let status = StatusCode::from_u16(status).unwrap();
    let cause = match status.as_u16() {
        429 => Cause::RateLimited,
        500..=599 => Cause::ServerError,
        _ => Cause::Unknown,
    };
    VippsError::from_response(
        ErrorResponse {
            status,
            headers,
            body: Bytes::new(),
            truncated: false,
        },
        Diagnosis::new(cause),
    )
}

fn result(outcome: Case) -> Result<Response<()>, VippsError> {
    let io = |kind| VippsError::transport(std::io::Error::new(kind, "io"));
    match outcome {
        Case::Plain(s) => Ok(Response::builder().status(s).body(()).unwrap()),
        Case::Diagnosed(s) => Err(error_response(s, HeaderMap::new())),
        Case::ConnectRefused => Err(io(std::io::ErrorKind::ConnectionRefused)),
        Case::Reset => Err(io(std::io::ErrorKind::ConnectionReset)),
        Case::Timeout => Err(io(std::io::ErrorKind::TimedOut)),
        Case::Refused => Err(VippsError::refused(Diagnosis::new(Cause::BearerMissing))),
    }
}

/// Runs one decision through the `Policy` methods, as `tower::retry` does.
fn would_retry(method: &Method, key: bool, body: Body, outcome: Case) -> bool {
    let mut req = Request::builder()
        .method(method.clone())
        .uri("https://apitest.vipps.no/epayment/v1/payments");
    if key {
        req = req.header("Idempotency-Key", "k-1");
    }
    match body {
        Body::Empty => decide_on(
            req.body(http_body_util::Empty::<Bytes>::new()).unwrap(),
            outcome,
        ),
        Body::Full => decide_on(
            req.body(Full::new(Bytes::from_static(b"{}"))).unwrap(),
            outcome,
        ),
        Body::Stream => decide_on(
            req.body(StreamBody::new(futures_util::stream::empty::<
                Result<http_body::Frame<Bytes>, std::io::Error>,
            >()))
            .unwrap(),
            outcome,
        ),
    }
}

fn decide_on<B: 'static>(mut req: Request<B>, outcome: Case) -> bool {
    let budget = Arc::new(Counting::default());
    let mut policy = RetryPolicy::new().shared_budget(budget.clone());
    let cloned = Policy::<_, Response<()>, VippsError>::clone_request(&mut policy, &req);
    assert_eq!(budget.deposits.load(Ordering::SeqCst), 1);
    if cloned.is_none() {
        // tower::retry never asks the policy without a clone.
        return false;
    }
    let mut res = result(outcome);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _enter = rt.enter();
    policy.retry(&mut req, &mut res).is_some()
}

#[test]
fn decision_table() {
    use Case::*;
    let methods = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];
    let outcomes = [
        Plain(200),
        Plain(201),
        Plain(204),
        Plain(400),
        Plain(401),
        Plain(403),
        Plain(404),
        Plain(409),
        Plain(423),
        Plain(429),
        Plain(500),
        Plain(501),
        Plain(502),
        Plain(503),
        Plain(504),
        Diagnosed(400),
        Diagnosed(401),
        Diagnosed(409),
        Diagnosed(429),
        Diagnosed(500),
        Diagnosed(502),
        Diagnosed(503),
        Diagnosed(504),
        ConnectRefused,
        Reset,
        Timeout,
        Refused,
    ];
    let mut rows = 0;
    for method in &methods {
        for key in [false, true] {
            for body in [Body::Empty, Body::Full, Body::Stream] {
                for outcome in outcomes {
                    let safe = key || *method == Method::GET || *method == Method::HEAD;
                    let transient = match outcome {
                        Plain(s) | Diagnosed(s) => [429, 502, 503, 504].contains(&s),
                        ConnectRefused | Reset | Timeout => true,
                        Refused => false,
                    };
                    let nothing_sent = matches!(outcome, ConnectRefused);
                    let replayable = !matches!(body, Body::Stream);
                    let expected = replayable && transient && (safe || nothing_sent);
                    assert_eq!(
                        would_retry(method, key, body, outcome),
                        expected,
                        "{method} key={key} body={body:?} outcome={outcome:?}"
                    );
                    rows += 1;
                }
            }
        }
    }
    assert_eq!(rows, 6 * 2 * 3 * outcomes.len());
}

#[test]
fn full_jitter_stays_under_the_ceiling() {
    let policy = RetryPolicy::new()
        .base_delay(Duration::from_millis(100))
        .max_delay(Duration::from_secs(1));
    assert_eq!(policy.backoff_ceiling(0), Duration::from_millis(100));
    assert_eq!(policy.backoff_ceiling(1), Duration::from_millis(200));
    assert_eq!(policy.backoff_ceiling(3), Duration::from_millis(800));
    assert_eq!(policy.backoff_ceiling(4), Duration::from_secs(1));
    assert_eq!(policy.backoff_ceiling(40), Duration::from_secs(1));
    let mut below_half = 0;
    for _ in 0..2000 {
        let d = policy.backoff(2);
        assert!(d <= Duration::from_millis(400), "{d:?}");
        if d < Duration::from_millis(200) {
            below_half += 1;
        }
    }
    // Uniform over [0, 400 ms]: about half fall below 200 ms (full, not equal, jitter).
    assert!((800..1200).contains(&below_half), "{below_half}");
}

#[test]
fn limits() {
    let budget = Arc::new(Counting::default());
    let mut policy = RetryPolicy::new()
        .max_retries(2)
        .retry_after_cap(Duration::from_secs(5))
        .shared_budget(budget.clone());
    let transient = Some(Failure::Status(StatusCode::SERVICE_UNAVAILABLE, None));
    assert!(matches!(
        policy.decide(transient, true, None),
        Decision::Retry(_)
    ));
    policy.attempts = 2;
    assert_eq!(
        policy.decide(transient, true, None),
        Decision::Stop(Stop::Exhausted)
    );
    policy.attempts = 0;
    let after = |s| {
        Some(Failure::Status(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(s)),
        ))
    };
    assert_eq!(
        policy.decide(after(5), true, None),
        Decision::Retry(Duration::from_secs(5))
    );
    assert_eq!(
        policy.decide(after(6), true, None),
        Decision::Stop(Stop::PastCap(Duration::from_secs(6)))
    );
    assert_eq!(
        policy.decide(transient, false, None),
        Decision::Stop(Stop::NotSafe)
    );
    let withdrawn = budget.withdrawals.load(Ordering::SeqCst);
    assert_eq!(withdrawn, 2, "only decisions to retry withdraw");

    // The call's total deadline: a wait that would pass it is not started.
    let left = |s| Some(Duration::from_secs(s));
    assert_eq!(
        policy.decide(after(5), true, left(5)),
        Decision::Stop(Stop::PastDeadline(Duration::from_secs(5)))
    );
    assert_eq!(
        policy.decide(after(5), true, left(6)),
        Decision::Retry(Duration::from_secs(5))
    );
    assert_eq!(budget.withdrawals.load(Ordering::SeqCst), 3);

    let deny = RetryPolicy::new().budget(Counting {
        deny: true,
        ..Counting::default()
    });
    assert_eq!(
        deny.decide(transient, true, None),
        Decision::Stop(Stop::Budget)
    );
}

#[test]
fn retry_after_from_a_diagnosed_error() {
    let mut headers = HeaderMap::new();
    headers.insert(http::header::RETRY_AFTER, "7".parse().unwrap());
    let err = error_response(429, headers);
    assert_eq!(
        failure_of_error(&err),
        Some(Failure::Status(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(7))
        ))
    );
    let mut headers = HeaderMap::new();
    let date = SystemTime::now() + Duration::from_secs(120);
    headers.insert(
        http::header::RETRY_AFTER,
        httpdate::fmt_http_date(date).parse().unwrap(),
    );
    let Some(Failure::Status(_, Some(after))) =
        failure_of_status(StatusCode::SERVICE_UNAVAILABLE, &headers)
    else {
        panic!("no Retry-After");
    };
    assert!(
        after > Duration::from_secs(110) && after <= Duration::from_secs(120),
        "{after:?}"
    );
}

#[test]
fn stopping_explains_why() {
    let mut headers = HeaderMap::new();
    headers.insert(http::header::RETRY_AFTER, "120".parse().unwrap());
    let mut res: Result<Response<()>, VippsError> = Err(error_response(429, headers));
    let mut req = Request::post("https://apitest.vipps.no/epayment/v1/payments")
        .header("Idempotency-Key", "k")
        .body(String::new())
        .unwrap();
    let mut policy = RetryPolicy::new();
    assert!(policy.retry(&mut req, &mut res).is_none());
    let err = res.unwrap_err();
    assert_eq!(err.cause(), Cause::RateLimited);
    assert!(
        err.diagnosis()
            .evidence()
            .iter()
            .any(|e| e.contains("past the cap of 30s")),
        "{:?}",
        err.diagnosis().evidence()
    );

    let mut res: Result<Response<()>, VippsError> = Err(error_response(503, HeaderMap::new()));
    let mut req = Request::post("https://apitest.vipps.no/epayment/v1/payments")
        .body(String::new())
        .unwrap();
    assert!(RetryPolicy::new().retry(&mut req, &mut res).is_none());
    assert_eq!(
        res.unwrap_err().diagnosis().evidence(),
        ["not retried: a POST without an `Idempotency-Key` is not safe to repeat"]
    );
}

#[tokio::test(start_paused = true)]
async fn an_adapter_loop_gets_the_same_decisions() {
    let budget = Arc::new(Counting::default());
    let mut policy = RetryPolicy::new()
        .max_retries(2)
        .shared_budget(budget.clone());
    let mut headers = HeaderMap::new();
    headers.insert(IDEMPOTENCY_KEY, "k".parse().unwrap());
    let none = HeaderMap::new();
    policy.start_call();
    let unavailable = Outcome::Response(StatusCode::SERVICE_UNAVAILABLE, &none);
    assert!(
        policy
            .next_delay(&Method::POST, &headers, None, unavailable)
            .is_ok()
    );
    assert!(
        policy
            .next_delay(&Method::POST, &headers, None, unavailable)
            .is_ok()
    );
    assert_eq!(
        policy.next_delay(&Method::POST, &headers, None, unavailable),
        Err(Some("gave up after 3 attempts".into()))
    );
    policy.start_call();
    assert_eq!(
        policy.next_delay(&Method::POST, &none, None, unavailable),
        Err(Some(
            "not retried: a POST without an `Idempotency-Key` is not safe to repeat".into()
        ))
    );
    let ok = Outcome::Response(StatusCode::OK, &none);
    assert_eq!(policy.next_delay(&Method::GET, &none, None, ok), Err(None));
    assert_eq!(budget.deposits.load(Ordering::SeqCst), 2);
    assert_eq!(budget.withdrawals.load(Ordering::SeqCst), 2);
}

#[test]
fn hyper_connect_errors_are_nothing_sent() {
    #[derive(Debug)]
    struct Fake;
    impl fmt::Display for Fake {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("client error (Connect)")
        }
    }
    impl std::error::Error for Fake {}
    assert!(nothing_sent(&VippsError::transport(Fake)));
    let timeout = VippsError::transport(std::io::Error::new(std::io::ErrorKind::TimedOut, "t"));
    assert_eq!(timeout.cause(), Cause::Timeout);
    assert!(!nothing_sent(&timeout));
}

/// Each API's own idempotency header makes a `POST` safe to repeat, and only it:
/// eCom reads `X-Request-Id`, Webhooks nothing (a second registration is a second
/// webhook), Login's token call nothing (a code is used once).
#[test]
fn the_apis_own_idempotency_header_makes_a_post_safe() {
    let post = |path: &str, header: Option<&str>| {
        let mut req = Request::post(format!("https://api.vipps.no{path}"));
        if let Some(header) = header {
            req = req.header(header, "k-1");
        }
        decide_on(
            req.body(Full::new(Bytes::from_static(b"{}"))).unwrap(),
            Case::Plain(503),
        )
    };
    let rows = [
        (
            "/epayment/v1/payments/r-1/capture",
            Some("Idempotency-Key"),
            true,
        ),
        (
            "/epayment/v1/payments/r-1/capture",
            Some("X-Request-Id"),
            false,
        ),
        ("/ecomm/v2/payments/o-1/capture", Some("X-Request-Id"), true),
        (
            "/ecomm/v2/payments/o-1/capture",
            Some("Idempotency-Key"),
            false,
        ),
        ("/ecomm/v2/payments/o-1/capture", None, false),
        (
            "/recurring/v3/agreements/a-1/charges",
            Some("Idempotency-Key"),
            true,
        ),
        ("/webhooks/v1/webhooks", Some("Idempotency-Key"), false),
        (
            "/access-management-1.0/access/oauth2/token",
            Some("Idempotency-Key"),
            false,
        ),
        ("/some/unknown/path", Some("Idempotency-Key"), true),
    ];
    for (path, header, retried) in rows {
        assert_eq!(post(path, header), retried, "{path} with {header:?}");
    }
}
