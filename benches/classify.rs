//! How long `classify` takes per error response, over the corpus and over a
//! 64 KiB body (the cap).

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, StatusCode};
use std::hint::black_box;
use tower_vipps::diagnose::{BODY_CAP, classify};
use tower_vipps::{Api, RequestContext};

const CORPUS: &str = include_str!("../tests/data/error-corpus.jsonl");

fn cases() -> Vec<(RequestContext, StatusCode, Vec<u8>)> {
    CORPUS
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let context = RequestContext {
                api: Api::from_name(v["api"].as_str().unwrap()).unwrap(),
                ..Default::default()
            };
            let status = StatusCode::from_u16(v["status"].as_u64().unwrap() as u16).unwrap();
            (
                context,
                status,
                v["body"].as_str().unwrap().as_bytes().to_vec(),
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let cases = cases();
    let headers = HeaderMap::new();
    c.bench_function("classify/corpus (30 responses)", |b| {
        b.iter(|| {
            for (context, status, body) in &cases {
                black_box(classify(context, *status, &headers, black_box(body)));
            }
        })
    });
    let context = RequestContext {
        api: Api::EPayment,
        ..Default::default()
    };
    let big_text = vec![b'x'; BODY_CAP];
    c.bench_function("classify/64 KiB text body", |b| {
        b.iter(|| {
            black_box(classify(
                &context,
                StatusCode::BAD_REQUEST,
                &headers,
                black_box(&big_text),
            ))
        })
    });
    let mut big_json = br#"{"title":"Bad Request","detail":""#.to_vec();
    big_json.extend(std::iter::repeat_n(b'y', BODY_CAP - 64));
    big_json.extend_from_slice(br#""}"#);
    c.bench_function("classify/64 KiB problem details", |b| {
        b.iter(|| {
            black_box(classify(
                &context,
                StatusCode::BAD_REQUEST,
                &headers,
                black_box(&big_json),
            ))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
