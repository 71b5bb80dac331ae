//! Diagnosis of error responses: [`classify`] (a pure function from a response to
//! a [`Diagnosis`](crate::Diagnosis)), the body parsers of [`body`], and
//! [`DiagnoseLayer`] / [`Diagnose`], which turn error responses into
//! [`VippsError`](crate::VippsError).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_vipps::{Cause, DiagnoseLayer};
//!
//! // Any `Service<http::Request<B>>`: a hyper client, or here a stand-in that
//! // answers like the API gateway does to a wrong subscription key.
//! let gateway = tower::service_fn(|_req: http::Request<Full<Bytes>>| async {
//!     let body = r#"{"statusCode":401,"message":"Access denied due to invalid subscription key."}"#;
//!     Ok::<_, std::convert::Infallible>(
//!         http::Response::builder().status(401).body(Full::new(Bytes::from(body))).unwrap(),
//!     )
//! });
//! let client = ServiceBuilder::new().layer(DiagnoseLayer::new()).service(gateway);
//!
//! let request = http::Request::get("https://apitest.vipps.no/epayment/v1/payments/order-123456")
//!     .header("Merchant-Serial-Number", "123456")
//!     .body(Full::new(Bytes::new()))
//!     .unwrap();
//! let err = client.oneshot(request).await.unwrap_err();
//! assert_eq!(err.cause(), Cause::InvalidSubscriptionKey);
//! assert_eq!(err.code(), "vipps::invalid_subscription_key");
//! assert_eq!(err.status(), Some(http::StatusCode::UNAUTHORIZED));
//! println!("{}", err.diagnosis().report());
//! # });
//! ```

pub mod body;
mod catalog;
mod documented;
mod layer;
pub mod transport;
mod wording;

pub use catalog::classify;
pub use layer::{DEFAULT_BODY_TIMEOUT, Diagnose, DiagnoseLayer, ResponseFuture};

use bytes::{Bytes, BytesMut};
use http_body::Body;
use http_body_util::BodyExt;

use crate::BoxError;

/// The most bytes of an error body that are read and kept: 64 KiB.
pub const BODY_CAP: usize = 64 * 1024;

/// The most frames of a body that are read, whatever their size: a body sent one
/// byte (or nothing) per frame stops being read here, as one past [`BODY_CAP`] does.
pub(crate) const FRAME_CAP: usize = 4096;

/// A body read up to a cap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capped {
    /// The bytes read, at most the cap.
    pub bytes: Bytes,
    /// `true` when the body had more bytes than the cap; the rest was not read.
    pub truncated: bool,
}

/// Reads a body, keeping at most `cap` bytes. Stops reading as soon as the cap is
/// passed, so an endless body cannot exhaust memory, and after 4096 frames (a body
/// sent in tiny or empty frames counts as cut there too). Each frame consumes
/// tokio's cooperative budget, so a body that is always ready cannot hold the
/// worker thread. Trailers are ignored.
///
/// ```
/// # tokio_test_block_on(async {
/// use http_body_util::Full;
/// use tower_vipps::diagnose::read_capped;
///
/// let read = read_capped(Full::new(bytes::Bytes::from_static(b"hello world")), 5).await.unwrap();
/// assert_eq!(&read.bytes[..], b"hello");
/// assert!(read.truncated);
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub async fn read_capped<B>(body: B, cap: usize) -> Result<Capped, BoxError>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(body);
    let mut buf = BytesMut::new();
    let mut frames = 0;
    while let Some(frame) = tokio::task::coop::cooperative(body.frame()).await {
        frames += 1;
        if frames > FRAME_CAP {
            return Ok(Capped {
                bytes: buf.freeze(),
                truncated: true,
            });
        }
        let frame = frame.map_err(Into::into)?;
        if let Ok(data) = frame.into_data() {
            use bytes::Buf;
            let mut data = data;
            let room = cap - buf.len();
            let take = room.min(data.remaining());
            buf.extend_from_slice(&data.copy_to_bytes(take));
            if data.has_remaining() {
                return Ok(Capped {
                    bytes: buf.freeze(),
                    truncated: true,
                });
            }
        }
    }
    Ok(Capped {
        bytes: buf.freeze(),
        truncated: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Full, StreamBody};

    #[tokio::test]
    async fn caps_endless_body() {
        let endless = futures_util::stream::repeat_with(|| {
            Ok::<_, std::io::Error>(http_body::Frame::data(Bytes::from(vec![b'x'; 1000])))
        });
        let read = read_capped(StreamBody::new(endless), BODY_CAP)
            .await
            .unwrap();
        assert_eq!(read.bytes.len(), BODY_CAP);
        assert!(read.truncated);
    }

    #[tokio::test]
    async fn exact_cap_is_not_truncated() {
        let read = read_capped(Full::new(Bytes::from(vec![1u8; 10])), 10)
            .await
            .unwrap();
        assert_eq!(read.bytes.len(), 10);
        assert!(!read.truncated);
    }
}
