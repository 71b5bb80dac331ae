//! The `explain` example's logic, run over the corpus in-process (the example's
//! functions are compiled into this test).

#[path = "../src/bin/explain.rs"]
#[allow(dead_code)]
mod explain;

use http::StatusCode;
use tower_vipps::Api;

const CORPUS: &str = include_str!("data/error-corpus.jsonl");

#[test]
fn jsonl_reproduces_every_corpus_code_in_order() {
    let mut out = Vec::new();
    explain::jsonl(CORPUS.as_bytes(), &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    let answers: Vec<&str> = out.lines().collect();
    let inputs: Vec<&str> = CORPUS.lines().collect();
    assert_eq!(answers.len(), inputs.len());
    assert_eq!(answers.len(), 30);
    for (input, answer) in inputs.iter().zip(&answers) {
        let expected: serde_json::Value = serde_json::from_str(input).unwrap();
        let expected = expected["cause"].as_str().unwrap();
        assert_eq!(*answer, format!("{{\"code\":\"{expected}\"}}"));
    }
}

#[test]
fn bad_lines_answer_null_and_keep_the_count() {
    let input = "not json\n{\"api\":\"epayment\",\"status\":429,\"body\":\"\"}\n\n[1]\n{\"api\":\"nope\",\"status\":400}\n{\"api\":\"ecom\",\"status\":99999}\n{\"api\":\"ecom\",\"status\":\"400\",\"body\":[{\"errorCode\":\"61\"}]}\r\n{\"status\":500}";
    let mut out = Vec::new();
    explain::jsonl(input.as_bytes(), &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 8);
    let codes: Vec<Option<&str>> = lines.iter().map(|l| l["code"].as_str()).collect();
    assert_eq!(
        codes,
        [
            None,
            Some("vipps::rate_limited"),
            None,
            None,
            None,
            None,
            Some("vipps::capture_exceeds_reserved"),
            Some("vipps::server_error"),
        ]
    );
    for (line, code) in lines.iter().zip(&codes) {
        assert_eq!(code.is_none(), line["error"].is_string(), "{line}");
    }
}

#[test]
fn non_utf8_input_line_is_answered() {
    let mut out = Vec::new();
    explain::jsonl(&b"\xff\xfe\n"[..], &mut out).unwrap();
    let line: serde_json::Value = serde_json::from_slice(out.trim_ascii()).unwrap();
    assert!(line["code"].is_null());
}

#[test]
fn text_report_has_code_summary_evidence_steps_and_docs() {
    let text = explain::explain(
        Api::EPayment,
        StatusCode::UNAUTHORIZED,
        br#"{"statusCode":401,"message":"Access denied due to missing subscription key."}"#,
    );
    assert!(
        text.starts_with("epayment answered 401 Unauthorized\n"),
        "{text}"
    );
    assert!(text.contains("vipps::missing_subscription_key\n"), "{text}");
    assert!(text.contains("evidence:\n    - status 401\n"), "{text}");
    assert!(
        text.contains("gateway message: Access denied due to missing subscription key."),
        "{text}"
    );
    assert!(text.contains("    1. "), "{text}");
    assert!(text.contains("  docs: https://"), "{text}");
}

#[test]
fn text_report_shows_the_trace_id_support_asks_for() {
    let text = explain::explain(
        Api::EPayment,
        StatusCode::BAD_REQUEST,
        br#"{"type":"https://developer.vippsmobilepay.com/docs/APIs/epayment-api/errors","title":"Bad Request","detail":"Invalid amount","status":400,"instance":"/epayment/v1/payments","traceId":"00-a1b2c3d4e5f60718293a4b5c6d7e8f90-1a2b3c4d5e6f7081-00","extraDetails":[{"name":"ErrorCode","reason":"4040"}]}"#,
    );
    assert!(
        text.contains("  trace id: 00-a1b2c3d4e5f60718293a4b5c6d7e8f90-1a2b3c4d5e6f7081-00"),
        "{text}"
    );
}

#[test]
fn hand_written_arguments() {
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        explain::parse_args(&args(&["--api", "ecom", "--status", "401", "body"])).unwrap(),
        explain::Command::Explain {
            api: Api::ECom,
            status: StatusCode::UNAUTHORIZED,
            body: Some("body".into())
        }
    );
    assert_eq!(
        explain::parse_args(&args(&["--status=403", "-"])).unwrap(),
        explain::Command::Explain {
            api: Api::Other,
            status: StatusCode::FORBIDDEN,
            body: None
        }
    );
    assert_eq!(
        explain::parse_args(&args(&["--jsonl"])).unwrap(),
        explain::Command::Jsonl
    );
    assert!(explain::parse_args(&args(&["--api"])).is_err());
    assert!(explain::parse_args(&args(&["--api", "soap"])).is_err());
    assert!(explain::parse_args(&args(&["--status", "abc"])).is_err());
    assert!(explain::parse_args(&args(&["--verbose"])).is_err());
    assert!(explain::parse_args(&args(&["a", "b"])).is_err());
}

/// A huge bad value is not echoed whole (issue 11, item 10).
#[test]
fn bad_input_is_echoed_capped() {
    let huge = "x".repeat(1_000_000);
    for line in [
        format!(r#"{{"api":"{huge}","status":400}}"#),
        format!(r#"{{"api":"epayment","status":"{huge}"}}"#),
        huge.clone(),
    ] {
        let out = explain::jsonl_line(&line);
        assert!(out.len() < 1_000, "{} bytes echoed", out.len());
        let out: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(out["code"].is_null());
    }
}
