//! The error body parsers and `classify` on malformed input: no panic, the cap
//! respected, the best reading of what is there.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body_util::{Full, StreamBody};
use proptest::prelude::*;
use tower_vipps::diagnose::body::ErrorBody;
use tower_vipps::diagnose::{BODY_CAP, classify, read_capped};
use tower_vipps::{Api, Cause, RequestContext};

/// The longest text an `ErrorBody` keeps (2 KiB and the ellipsis).
const TEXT_LIMIT: usize = 2048 + '…'.len_utf8();

fn text_len(body: &ErrorBody) -> usize {
    match body {
        ErrorBody::Json(t) | ErrorBody::Html(t) | ErrorBody::Text(t) => t.len(),
        _ => 0,
    }
}

fn epayment() -> RequestContext {
    RequestContext {
        api: Api::EPayment,
        ..Default::default()
    }
}

#[test]
fn empty_and_blank_bodies() {
    assert_eq!(ErrorBody::parse(b""), ErrorBody::Empty);
    assert_eq!(ErrorBody::parse(b" \r\n\t "), ErrorBody::Empty);
    assert_eq!(ErrorBody::parse(b"null"), ErrorBody::Json("null".into()));
    assert_eq!(ErrorBody::parse(b"{}"), ErrorBody::Json("{}".into()));
    assert_eq!(ErrorBody::parse(b"[]"), ErrorBody::Json("[]".into()));
}

#[test]
fn truncated_json_of_each_format_is_text() {
    for body in [
        &br#"{"type":"https://httpstatuses.io/400","title":"Invalid amo"#[..],
        br#"[{"errorGroup":"Payment","errorCode":"61","errorMess"#,
        br#"{"statusCode": 401, "message": "Access denied due to inv"#,
        br#"{"error":"invalid_cli"#,
        br#"{"#,
        br#"["#,
    ] {
        let parsed = ErrorBody::parse(body);
        assert!(matches!(parsed, ErrorBody::Text(_)), "{parsed:?}");
    }
    // Truncated JSON still classifies by its wording where the wording survived.
    let d = classify(
        &epayment(),
        StatusCode::UNAUTHORIZED,
        &HeaderMap::new(),
        br#"{"statusCode": 401, "message": "Access denied due to invalid subscription key. Make sure"#,
    );
    assert_eq!(d.cause(), Cause::InvalidSubscriptionKey);
}

#[test]
fn wrong_types_are_tolerated() {
    // Title a number, extraDetails not an array, status a string.
    let parsed = ErrorBody::parse(br#"{"title":5,"status":"400","extraDetails":"nope"}"#);
    let ErrorBody::Problem(p) = parsed else {
        panic!("{parsed:?}")
    };
    assert_eq!(p.title.as_deref(), Some("5"));
    assert_eq!(p.status, Some(400));
    assert!(p.extra_details.is_empty());

    // extraDetails entries of the wrong shape are skipped, the good one kept.
    let parsed = ErrorBody::parse(
        br#"{"title":"x","extraDetails":[1,"a",null,{"name":["x"],"reason":{}},{"name":"ErrorCode","reason":6090}]}"#,
    );
    let ErrorBody::Problem(p) = parsed else {
        panic!("{parsed:?}")
    };
    assert_eq!(p.error_code(), Some(6090));

    // eCom entries that are not objects are skipped.
    let parsed = ErrorBody::parse(br#"[1, "x", {"errorCode": 61}]"#);
    let ErrorBody::Ecom(errors) = parsed else {
        panic!("{parsed:?}")
    };
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].error_code.as_deref(), Some("61"));

    // A message that is not a string: not a gateway error.
    let parsed = ErrorBody::parse(br#"{"statusCode":401,"message":{"a":1}}"#);
    assert!(matches!(parsed, ErrorBody::Json(_)), "{parsed:?}");

    // OAuth error that is not a string.
    let parsed = ErrorBody::parse(br#"{"error":{"code":"x"}}"#);
    assert!(matches!(parsed, ErrorBody::Json(_)), "{parsed:?}");
}

#[test]
fn huge_numbers() {
    let parsed = ErrorBody::parse(br#"{"statusCode": 99999999999999999999999999, "message":"x"}"#);
    let ErrorBody::Gateway(g) = parsed else {
        panic!("{parsed:?}")
    };
    assert_eq!(g.status_code, None);
    assert_eq!(g.message, "x");

    let parsed = ErrorBody::parse(
        br#"{"title":"x","status":70000,"extraDetails":[{"name":"ErrorCode","reason":"99999999999999999999"}]}"#,
    );
    let ErrorBody::Problem(p) = parsed else {
        panic!("{parsed:?}")
    };
    assert_eq!(p.status, None);
    assert_eq!(p.error_code(), None);

    // Out of range for f64: not JSON at all for serde_json; kept as text.
    let parsed = ErrorBody::parse(br#"{"status": 1e999}"#);
    assert!(matches!(parsed, ErrorBody::Text(_)), "{parsed:?}");

    let d = classify(
        &epayment(),
        StatusCode::BAD_REQUEST,
        &HeaderMap::new(),
        br#"[{"errorCode": 123456789012345678901234567890}]"#,
    );
    assert_eq!(d.cause(), Cause::Unknown);
}

#[test]
fn deep_nesting_does_not_overflow() {
    for depth in [200usize, 100_000] {
        let mut body = Vec::new();
        body.extend(std::iter::repeat_n(b'[', depth));
        body.extend(std::iter::repeat_n(b']', depth));
        let parsed = ErrorBody::parse(&body);
        assert!(text_len(&parsed) <= TEXT_LIMIT, "{depth}");
        let _ = classify(
            &epayment(),
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            &body,
        );

        let mut body = Vec::new();
        for _ in 0..depth {
            body.extend_from_slice(br#"{"title":"#);
        }
        body.extend_from_slice(b"1");
        body.extend(std::iter::repeat_n(b'}', depth));
        let _ = ErrorBody::parse(&body);
    }
}

#[test]
fn non_utf8() {
    assert_eq!(
        ErrorBody::parse(&[0xff, 0xfe, 0x00, 0x81, 0x9f]),
        ErrorBody::Binary { len: 5 }
    );
    // Mostly text with a bad byte: the valid part is kept.
    let mut body = b"Access denied due to invalid subscription key".to_vec();
    body.push(0xff);
    let parsed = ErrorBody::parse(&body);
    assert_eq!(
        parsed,
        ErrorBody::Text("Access denied due to invalid subscription key".into())
    );
    // A multi-byte character cut at the end.
    let mut body = "Ugyldig beløp æ".as_bytes().to_vec();
    body.pop();
    assert!(matches!(ErrorBody::parse(&body), ErrorBody::Text(_)));
    // JSON with a non-UTF-8 byte inside a string is not JSON.
    let parsed = ErrorBody::parse(b"{\"title\":\"\xff\"}");
    assert!(matches!(parsed, ErrorBody::Text(_)), "{parsed:?}");
    assert_eq!(
        classify(
            &epayment(),
            StatusCode::UNAUTHORIZED,
            &HeaderMap::new(),
            &[0xff; 64]
        )
        .cause(),
        Cause::InvalidAccessToken
    );
}

#[test]
fn ten_megabyte_bodies_look_at_the_cap_only() {
    // Valid JSON whose end lies beyond the cap: parsed as cut text.
    let mut body = br#"{"title":"Invalid amount","detail":""#.to_vec();
    body.extend(std::iter::repeat_n(b'a', 10 * 1024 * 1024));
    body.extend_from_slice(br#""}"#);
    let parsed = ErrorBody::parse(&body);
    assert!(
        matches!(parsed, ErrorBody::Text(_)),
        "not JSON within the cap"
    );
    assert!(text_len(&parsed) <= TEXT_LIMIT);
    // Still classified by the wording in the first 64 KiB.
    let d = classify(
        &epayment(),
        StatusCode::BAD_REQUEST,
        &HeaderMap::new(),
        &body,
    );
    assert_eq!(d.cause(), Cause::InvalidAmount);

    // 10 MB of HTML and of text.
    let mut html = b"<html><body><h1>502 Bad Gateway</h1>".to_vec();
    html.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    let parsed = ErrorBody::parse(&html);
    assert!(matches!(parsed, ErrorBody::Html(_)));
    assert!(text_len(&parsed) <= TEXT_LIMIT + 1);
    let text = vec![b'y'; 10 * 1024 * 1024];
    assert!(text_len(&ErrorBody::parse(&text)) <= TEXT_LIMIT);

    // A JSON string field of 10 MB within... the cap cuts before its end; a long
    // field within the cap is cut to 2 KiB.
    let mut long_title = br#"{"title":""#.to_vec();
    long_title.extend(std::iter::repeat_n(b'z', BODY_CAP - 100));
    long_title.extend_from_slice(br#""}"#);
    let ErrorBody::Problem(p) = ErrorBody::parse(&long_title) else {
        panic!("a problem within the cap")
    };
    assert!(p.title.unwrap().len() <= TEXT_LIMIT);
}

#[tokio::test]
async fn read_capped_on_ten_megabytes_and_on_errors() {
    let big = Bytes::from(vec![7u8; 10 * 1024 * 1024]);
    let read = read_capped(Full::new(big), BODY_CAP).await.unwrap();
    assert_eq!(read.bytes.len(), BODY_CAP);
    assert!(read.truncated);

    let read = read_capped(Full::new(Bytes::new()), BODY_CAP)
        .await
        .unwrap();
    assert!(read.bytes.is_empty());
    assert!(!read.truncated);

    let frames = futures_util::stream::iter(vec![
        Ok(http_body::Frame::data(Bytes::from_static(b"abc"))),
        Err(std::io::Error::other("cut")),
    ]);
    assert!(
        read_capped(StreamBody::new(frames), BODY_CAP)
            .await
            .is_err()
    );

    let read = read_capped(Full::new(Bytes::from_static(b"abc")), 0)
        .await
        .unwrap();
    assert!(read.bytes.is_empty());
    assert!(read.truncated);
}

fn any_status() -> impl Strategy<Value = StatusCode> {
    (100u16..1000).prop_map(|s| StatusCode::from_u16(s).unwrap())
}

fn any_api() -> impl Strategy<Value = Api> {
    prop_oneof![
        Just(Api::EPayment),
        Just(Api::ECom),
        Just(Api::Recurring),
        Just(Api::Login),
        Just(Api::AccessToken),
        Just(Api::Other),
    ]
}

/// JSON-ish bodies built from the fragments the parsers look for.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    let fragment = prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(",".to_owned()),
        Just(":".to_owned()),
        Just("\"title\"".to_owned()),
        Just("\"extraDetails\"".to_owned()),
        Just("\"name\"".to_owned()),
        Just("\"ErrorCode\"".to_owned()),
        Just("\"reason\"".to_owned()),
        Just("\"errorCode\"".to_owned()),
        Just("\"errorGroup\"".to_owned()),
        Just("\"message\"".to_owned()),
        Just("\"error\"".to_owned()),
        Just("\"statusCode\"".to_owned()),
        "-?[0-9]{1,30}(\\.[0-9]{1,5})?(e[0-9]{1,4})?",
        "\"[ -~]{0,20}\"",
        Just("null".to_owned()),
        Just("true".to_owned()),
    ];
    prop::collection::vec(fragment, 0..60).prop_map(|parts| parts.concat().into_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn classify_never_panics_on_bytes(
        api in any_api(),
        status in any_status(),
        body in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let ctx = RequestContext { api, ..Default::default() };
        let d = classify(&ctx, status, &HeaderMap::new(), &body);
        prop_assert!(d.code().starts_with("vipps::"));
        let status_evidence = format!("status {}", status.as_u16());
        prop_assert_eq!(d.evidence()[0].as_ref(), status_evidence.as_str());
        prop_assert!(d.body().is_some());
        if status.is_server_error() {
            prop_assert_eq!(d.cause(), Cause::ServerError);
        }
    }

    #[test]
    fn classify_never_panics_on_jsonish(
        api in any_api(),
        status in any_status(),
        body in jsonish(),
    ) {
        let ctx = RequestContext { api, ..Default::default() };
        let d = classify(&ctx, status, &HeaderMap::new(), &body);
        prop_assert!(d.code().starts_with("vipps::"));
        for e in d.evidence() {
            prop_assert!(e.chars().count() <= 200, "evidence too long: {}", e);
        }
    }

    #[test]
    fn parse_keeps_text_small(body in prop::collection::vec(any::<u8>(), 0..8192)) {
        let parsed = ErrorBody::parse(&body);
        prop_assert!(text_len(&parsed) <= TEXT_LIMIT + 1);
    }
}
