//! The loopback server of `tests/common` answers real HTTP.
mod common;

use http_body_util::{BodyExt, Full};

#[tokio::test]
async fn loopback_server_answers() {
    let server = common::serve(|req| async move {
        common::respond(
            200,
            "text/plain",
            format!("{} {}", req.method(), req.body().len()),
        )
    })
    .await;
    let client = common::client::<Full<bytes::Bytes>>();
    let req = http::Request::post(format!("{}/x", server.base_url()))
        .body(Full::new(bytes::Bytes::from_static(b"12345")))
        .unwrap();
    let res = client.request(req).await.unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"POST 5");
}
