//! The user's call, and the two paths that send it: the tower path and the reqwest path.

use super::*;

/// A call as the user writes it: method, environment, path, headers, JSON body.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) env: Environment,
    pub(crate) path: String,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Option<Value>,
}

impl Call {
    pub(crate) fn get(env: Environment, path: impl Into<String>) -> Call {
        Call {
            method: Method::GET,
            env,
            path: path.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub(crate) fn post(env: Environment, path: impl Into<String>, body: Value) -> Call {
        Call {
            method: Method::POST,
            env,
            path: path.into(),
            headers: vec![("Content-Type", "application/json".into())],
            body: Some(body),
        }
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Call {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn msn(self, msn: u64) -> Call {
        self.header("Merchant-Serial-Number", msn.to_string())
    }

    /// The headers of a user who manages their own token: everything right.
    pub(crate) fn own(self, keys: Credentials, msn: u64, token: &str) -> Call {
        let post = self.method == Method::POST;
        let call = self
            .header("Authorization", format!("Bearer {token}"))
            .header("Ocp-Apim-Subscription-Key", keys.subscription_key())
            .msn(msn)
            .header("Vipps-System-Name", "acme-shop")
            .header("Vipps-System-Version", "1.0.0");
        if post {
            call.header("Idempotency-Key", "e2e-own-token-call-0001")
        } else {
            call
        }
    }

    /// The same call to another environment's host.
    pub(crate) fn env(mut self, env: Environment) -> Call {
        self.env = env;
        self
    }

    pub(crate) fn without(mut self, name: &str) -> Call {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    pub(crate) fn replace(self, name: &'static str, value: impl Into<String>) -> Call {
        self.without(name).header(name, value)
    }

    pub(crate) fn url(&self, emu: &Emulator) -> String {
        format!("{}{}", emu.base_url(self.env), self.path)
    }

    pub(crate) fn body_bytes(&self) -> Bytes {
        self.body
            .as_ref()
            .map(|b| Bytes::from(b.to_string()))
            .unwrap_or_default()
    }

    pub(crate) fn http(&self, emu: &Emulator) -> Request<Full<Bytes>> {
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(self.url(emu));
        for (name, value) in &self.headers {
            builder = builder.header(*name, value);
        }
        builder.body(Full::new(self.body_bytes())).unwrap()
    }
}

pub(crate) type Answer = Result<(StatusCode, Value), VippsError>;
pub(crate) type BoxFut = Pin<Box<dyn Future<Output = Answer> + Send>>;
pub(crate) type Sender = Arc<dyn Fn(Request<Full<Bytes>>, Call) -> BoxFut + Send + Sync>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Path {
    Tower,
    Reqwest,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stack {
    /// `tower_vipps::layer(keyring)` / `VippsMiddleware::new(keyring, builder)`.
    Full,
    /// `DiagnoseLayer` over `PreflightLayer` (keyring + the user's token cache);
    /// the user sets `Authorization` and the keys.
    OwnTokens,
    /// `DiagnoseLayer` only; the user sets `Authorization` and the keys.
    DiagnoseOnly,
}

pub(crate) fn hyper() -> HyperClient<HttpConnector, Full<Bytes>> {
    HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>()
}

/// The user's client: reqwest's defaults (the middleware turns redirects off).
pub(crate) fn reqwest_client() -> ReqwestService {
    ring_provider();
    ReqwestService::new(reqwest::Client::builder()).unwrap()
}

/// The dev-dependency reqwest has `rustls-no-provider` (ring, no aws-lc): a
/// process-wide provider must be installed before a client is built.
pub(crate) fn ring_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub(crate) fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

pub(crate) fn tower_sender<S, RB>(service: S) -> Sender
where
    S: tower::Service<Request<Full<Bytes>>, Response = http::Response<RB>, Error = VippsError>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
    RB: http_body::Body + Send + 'static,
    RB::Data: Send,
    RB::Error: Into<tower_vipps::BoxError>,
{
    Arc::new(move |request, _call| {
        let service = service.clone();
        Box::pin(async move {
            let response = service.oneshot(request).await?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| VippsError::transport(e.into()))?
                .to_bytes();
            Ok((status, json_of(&body)))
        })
    })
}

pub(crate) fn reqwest_sender(
    client: reqwest_middleware::ClientWithMiddleware,
    emu: &Emulator,
) -> Sender {
    let bases = [emu.base_url(Test), emu.base_url(Production)];
    Arc::new(move |_request, call| {
        let client = client.clone();
        let url = format!(
            "{}{}",
            bases[usize::from(call.env == Production)],
            call.path
        );
        Box::pin(async move {
            let mut builder = client.request(call.method.clone(), url);
            for (name, value) in &call.headers {
                builder = builder.header(*name, value);
            }
            if call.body.is_some() {
                builder = builder.body(call.body_bytes());
            }
            match builder.send().await {
                Ok(response) => {
                    let status = response.status();
                    let body = response.bytes().await.expect("a readable body");
                    Ok((status, json_of(&body)))
                }
                Err(err) => {
                    Err(into_vipps_error(err)
                        .unwrap_or_else(|err| panic!("not a VippsError: {err:?}")))
                }
            }
        })
    })
}

/// The user's client: one stack, one path, one token cache.
pub(crate) struct UserClient {
    pub(crate) send: Sender,
    /// The cache the user fetches their own tokens with (own-token stacks).
    pub(crate) cache: TokenCache,
    pub(crate) keyring: Keyring,
}

impl UserClient {
    pub(crate) fn new(emu: &Emulator, path: Path, stack: Stack, keyring: Keyring) -> UserClient {
        let cache = TokenCache::new();
        let diagnose = DiagnoseLayer::new().keyring(&keyring);
        let preflight = PreflightLayer::new()
            .keyring(keyring.clone())
            .known_tokens(Arc::new(cache.clone()));
        let send = match (path, stack) {
            (Path::Tower, Stack::Full) => {
                tower_sender(tower_vipps::layer(keyring.clone()).layer(hyper()))
            }
            (Path::Tower, Stack::OwnTokens) => tower_sender(
                ServiceBuilder::new()
                    .layer(diagnose)
                    .layer(preflight)
                    .service(hyper()),
            ),
            (Path::Tower, Stack::DiagnoseOnly) => {
                tower_sender(ServiceBuilder::new().layer(diagnose).service(hyper()))
            }
            (Path::Reqwest, stack) => {
                ring_provider();
                let builder = reqwest_middleware::ClientBuilder::new(reqwest::Client::new());
                let client = match stack {
                    Stack::Full => builder.with(
                        VippsMiddleware::new(keyring.clone(), reqwest::Client::builder()).unwrap(),
                    ),
                    Stack::OwnTokens => builder.with(TowerMiddleware::new(
                        ServiceBuilder::new().layer(diagnose).layer(preflight),
                        reqwest_client(),
                    )),
                    Stack::DiagnoseOnly => {
                        builder.with(TowerMiddleware::new(diagnose, reqwest_client()))
                    }
                };
                reqwest_sender(client.build(), emu)
            }
        };
        UserClient {
            send,
            cache,
            keyring,
        }
    }

    pub(crate) async fn send(&self, emu: &Emulator, call: Call) -> Answer {
        (self.send)(call.http(emu), call).await
    }

    /// The user fetches their own token with `keys` (own-token stacks), through
    /// `TokenCache` and a plain hyper `TokenClient`.
    pub(crate) async fn own_token(
        &self,
        emu: &Emulator,
        keys: Credentials,
        msn: Option<u64>,
    ) -> String {
        let set = self
            .keyring
            .key_sets()
            .find(|k| k.subscription_key().expose() == keys.subscription_key())
            .cloned()
            .unwrap_or_else(|| keys.key_set());
        let base: http::Uri = emu.base_url(keys.environment()).parse().unwrap();
        let request = TokenRequest::new(
            set,
            msn.map(|m| Msn::new(m).unwrap()),
            SystemInfo::default(),
        )
        .base(&base)
        .allow_plaintext(true);
        let token = self
            .cache
            .get(&TokenClient::new(hyper()), &request)
            .await
            .expect("the user's own token");
        token.secret().expose().to_owned()
    }
}
