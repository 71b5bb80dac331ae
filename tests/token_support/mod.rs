//! A real loopback Vipps-like server for the token tests: `POST /accesstoken/get`
//! mints JWT-shaped tokens that say what they were minted for, and every other path
//! is an API call that decodes the token it got and checks it against the request.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_vipps::{Environment, Fingerprint, Secret};

/// How the token endpoint answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Ok,
    Status500,
    Garbage,
    Hang,
    Close,
}

/// Keys the server knows: client_id -> (secret, subscription key).
#[derive(Clone, Default)]
pub struct Known {
    pub keys: HashMap<String, (String, String)>,
}

pub struct State {
    pub env: Environment,
    pub known: Known,
    pub fetches: AtomicUsize,
    pub api_calls: AtomicUsize,
    pub mismatches: AtomicUsize,
    pub mode: Mutex<Mode>,
    pub delay: Mutex<Duration>,
    pub gate: watch::Sender<bool>,
    pub expires_in: AtomicU64,
    pub revoked: Mutex<HashSet<u64>>,
    pub revoke_all: AtomicBool,
    pub api_status: Mutex<Option<(u16, &'static str)>>,
    pub bodies: Mutex<Vec<Bytes>>,
    /// API calls: (msn header, token number).
    pub seen: Mutex<Vec<(Option<String>, u64)>>,
    /// Expected client id per MSN (for the API check).
    pub client_of_msn: Mutex<HashMap<String, String>>,
}

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

pub struct VippsServer {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for VippsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl VippsServer {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }
    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }
    pub fn api_calls(&self) -> usize {
        self.state.api_calls.load(Ordering::SeqCst)
    }
    pub fn mismatches(&self) -> usize {
        self.state.mismatches.load(Ordering::SeqCst)
    }
    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }
    pub fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }
    pub fn close_gate(&self) {
        self.state.gate.send_replace(false);
    }
    pub fn open_gate(&self) {
        self.state.gate.send_replace(true);
    }
    pub fn expect_msn(&self, msn: &str, client_id: &str) {
        self.state
            .client_of_msn
            .lock()
            .unwrap()
            .insert(msn.to_owned(), client_id.to_owned());
    }
    /// Waits (without a deadline of its own) until the server has seen `n` fetches.
    pub async fn wait_fetches(&self, n: usize) {
        while self.fetches() < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A JWT-shaped token saying what it was minted for.
pub fn mint(env: Environment, client_id: &str, sub_key: &str, msn: Option<&str>, n: u64) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = serde_json::json!({
        "env": env.as_str(),
        "cid": client_id,
        "sk": Secret::new(sub_key).fingerprint().to_string(),
        "msn": msn,
        "n": n,
    });
    let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
    let sig = URL_SAFE_NO_PAD.encode(format!("sig-{n}"));
    format!("{header}.{payload}.{sig}")
}

/// The payload of a token minted by [`mint`].
pub fn decode(token: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Reads up to the end of a request's head (at most 64 KiB, 5 s), then drops
/// the connection.
async fn read_head_then_close(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
    drop(stream);
}

fn respond(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .unwrap()
}

pub async fn start(env: Environment, known: Known) -> VippsServer {
    let (gate, _) = watch::channel(true);
    let state = Arc::new(State {
        env,
        known,
        fetches: AtomicUsize::new(0),
        api_calls: AtomicUsize::new(0),
        mismatches: AtomicUsize::new(0),
        mode: Mutex::new(Mode::Ok),
        delay: Mutex::new(Duration::ZERO),
        gate,
        expires_in: AtomicU64::new(3600),
        revoked: Mutex::new(HashSet::new()),
        revoke_all: AtomicBool::new(false),
        api_status: Mutex::new(None),
        bodies: Mutex::new(Vec::new()),
        seen: Mutex::new(Vec::new()),
        client_of_msn: Mutex::new(HashMap::new()),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let st = state.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            if *st.mode.lock().unwrap() == Mode::Close {
                // Read the request's head (so it was sent, whole: a token request
                // has no body), then close without an answer. Closing at once
                // raced the client's write: it could see the close first.
                tokio::spawn(read_head_then_close(stream));
                continue;
            }
            let st = st.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let st = st.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|c| c.to_bytes())
                            .unwrap_or_default();
                        Ok::<_, Infallible>(handle(&st, Request::from_parts(parts, body)).await)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    VippsServer { addr, state, task }
}

fn header<'a>(req: &'a Request<Bytes>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn handle(st: &Arc<State>, req: Request<Bytes>) -> Response<Full<Bytes>> {
    if req.uri().path() == "/accesstoken/get" {
        st.fetches.fetch_add(1, Ordering::SeqCst);
        let delay = *st.delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut gate = st.gate.subscribe();
        let _ = gate.wait_for(|open| *open).await;
        let mode = *st.mode.lock().unwrap();
        match mode {
            Mode::Status500 => return respond(500, "upstream failure"),
            Mode::Garbage => {
                return respond(200, "{\"access_token\": 42, \"expires_in\": \"soon\"");
            }
            Mode::Hang => std::future::pending::<()>().await,
            Mode::Close | Mode::Ok => {}
        }
        if req.method() != http::Method::POST || !req.body().is_empty() {
            return respond(400, "bad token request");
        }
        let (Some(cid), Some(secret), Some(sub)) = (
            header(&req, "client_id"),
            header(&req, "client_secret"),
            header(&req, "ocp-apim-subscription-key"),
        ) else {
            return respond(
                401,
                r#"{"error":"invalid_client","error_description":"missing"}"#,
            );
        };
        match st.known.keys.get(cid) {
            Some((s, k)) if s == secret && k == sub => {}
            _ => {
                return respond(
                    401,
                    r#"{"error":"invalid_client","error_description":"bad"}"#,
                );
            }
        }
        if header(&req, "vipps-system-name").is_none() {
            return respond(400, "no system name");
        }
        let n = NEXT_TOKEN.fetch_add(1, Ordering::SeqCst);
        let token = mint(st.env, cid, sub, header(&req, "merchant-serial-number"), n);
        let body = serde_json::json!({
            "token_type": "Bearer",
            "expires_in": st.expires_in.load(Ordering::SeqCst).to_string(),
            "ext_expires_in": "3600",
            "access_token": token,
        });
        return respond(200, body.to_string());
    }
    st.api_calls.fetch_add(1, Ordering::SeqCst);
    st.bodies.lock().unwrap().push(req.body().clone());
    let msn = header(&req, "merchant-serial-number").map(str::to_owned);
    let Some(token) = header(&req, "authorization").and_then(|v| v.strip_prefix("Bearer ")) else {
        st.mismatches.fetch_add(1, Ordering::SeqCst);
        return respond(401, "");
    };
    let Some(payload) = decode(token) else {
        st.mismatches.fetch_add(1, Ordering::SeqCst);
        return respond(401, "Something went wrong, please try again later");
    };
    let n = payload["n"].as_u64().unwrap_or(0);
    st.seen.lock().unwrap().push((msn.clone(), n));
    let sub = header(&req, "ocp-apim-subscription-key").unwrap_or("");
    let expected_client = msn
        .as_deref()
        .and_then(|m| st.client_of_msn.lock().unwrap().get(m).cloned());
    let ok = payload["env"] == st.env.as_str()
        && payload["msn"].as_str() == msn.as_deref()
        && payload["sk"] == Secret::new(sub).fingerprint().to_string()
        && expected_client.is_none_or(|c| payload["cid"] == c.as_str())
        && st
            .known
            .keys
            .get(payload["cid"].as_str().unwrap_or(""))
            .is_some_and(|(_, k)| k == sub);
    if !ok {
        st.mismatches.fetch_add(1, Ordering::SeqCst);
        return respond(409, "token minted for something else");
    }
    if st.revoke_all.load(Ordering::SeqCst) || st.revoked.lock().unwrap().contains(&n) {
        return Response::builder()
            .status(401)
            .header("content-type", "text/plain")
            .body(Full::new(Bytes::from_static(
                b"Something went wrong, please try again later",
            )))
            .unwrap();
    }
    if let Some((status, body)) = *st.api_status.lock().unwrap() {
        return respond(status, body);
    }
    respond(200, format!("ok {} {n}", msn.unwrap_or_default()))
}

/// The fingerprint of a subscription key.
pub fn fp(key: &str) -> Fingerprint {
    Secret::new(key).fingerprint()
}

pub use crate::common::Captured;

/// Everything traced by any thread of this test binary, at TRACE.
pub fn tracing_capture() -> &'static Captured {
    crate::common::capture_tracing_globally()
}

/// The token tests' check of a capture.
pub trait AssertClean {
    /// Asserts nothing secret was traced: secrets in these tests all contain
    /// `SECRETX`, subscription keys `SUBKEYX`, and every token starts with the
    /// base64url of `{"alg"` (`eyJhbGci`).
    fn assert_clean(&self);
}

impl AssertClean for Captured {
    fn assert_clean(&self) {
        let text = self.text();
        assert!(
            text.contains("fetching access token"),
            "the capture saw nothing"
        );
        for needle in ["SECRETX", "SUBKEYX", "eyJhbGci"] {
            assert!(
                !text.contains(needle),
                "`{needle}` leaked into tracing output"
            );
        }
    }
}

/// Client id, secret and subscription key of test merchant `i` in `env`.
pub fn merchant_keys(env: Environment, i: u64) -> (String, String, String) {
    (
        format!("{}-merchant-{i}", env.as_str()),
        format!("SECRETX-{}-{i}", env.as_str()),
        format!("SUBKEYX-{}-{i}", env.as_str()),
    )
}

/// Client id, secret and subscription key of the test partner in `env`.
pub fn partner_keys(env: Environment) -> (String, String, String) {
    (
        format!("{}-partner", env.as_str()),
        format!("SECRETX-{}-partner", env.as_str()),
        format!("SUBKEYX-{}-partner", env.as_str()),
    )
}
