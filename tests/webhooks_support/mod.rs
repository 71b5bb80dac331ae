//! Shared by the webhook tests: a recording handler, events, signed requests.
#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use tower::{Service, service_fn};
use tower_vipps::Secret;
use tower_vipps::webhooks::{Delivery, EPaymentEvent, EventName, VerifiedBody, sign};

/// An event in the order Vipps MobilePay writes its keys (not sorted).
pub fn event_body(msn: &str, name: &str, key: &str) -> String {
    format!(
        r#"{{"msn":"{msn}","reference":"acme-order-1001","pspReference":"7686f7788898767977","name":"{name}","amount":{{"currency":"NOK","value":49900}},"timestamp":"2025-01-01T12:00:00Z","idempotencyKey":"{key}","success":true}}"#
    )
}

pub type Seen = Arc<Mutex<Vec<(Option<EventName>, Delivery)>>>;

/// A handler that records what it got and answers the statuses given, in turn
/// (then 200).
pub fn recording(
    seen: Seen,
    statuses: Vec<u16>,
) -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    let statuses = Arc::new(Mutex::new(statuses.into_iter()));
    service_fn(move |req: Request<Full<Bytes>>| {
        let seen = seen.clone();
        let statuses = statuses.clone();
        async move {
            let event = req.extensions().get::<EPaymentEvent>().cloned();
            let delivery = *req.extensions().get::<Delivery>().expect("a delivery mark");
            let raw = req
                .extensions()
                .get::<VerifiedBody>()
                .expect("the raw body")
                .0
                .clone();
            let body = req.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(raw, body, "the body holds the verified bytes");
            let name = event.as_ref().map(|e| e.name.clone());
            seen.lock().unwrap().push((name.clone(), delivery));
            let status = statuses.lock().unwrap().next().unwrap_or(200);
            let mut res = Response::new(Full::new(Bytes::new()));
            *res.status_mut() = StatusCode::from_u16(status).unwrap();
            if let Some(name) = name {
                res.headers_mut()
                    .insert("x-event", HeaderValue::from_str(name.as_str()).unwrap());
            }
            Ok(res)
        }
    })
}

pub fn signed_request(url: &str, body: &str, secret: &Secret) -> Request<Full<Bytes>> {
    let path = url.parse::<Uri>().unwrap().path().to_owned();
    let mut req = Request::post(path)
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    sign(body.as_bytes(), url, SystemTime::now(), secret)
        .unwrap()
        .apply(req.headers_mut());
    req
}
