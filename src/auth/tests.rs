use super::headers::*;
use super::replay::*;
use super::*;

#[test]
fn official_host_fast_path_matches_hosts() {
    let keyring = Keyring::builder()
        .merchant(Environment::Test, Msn::new(1).unwrap(), "a", "b", "c")
        .build()
        .unwrap();
    let core = Core::new(keyring.clone(), TokenCache::new(), true);
    assert!(core.official_hosts_only);
    for uri in [
        "https://apitest.vipps.no/x",
        "https://API.vipps.no/x",
        "https://api.vipps.no:443/x",
        "https://api.vipps.no:8443/x",
        "https://api.vipps.no.evil.example/x",
        "https://user@api.vipps.no/x",
        "/relative",
    ] {
        let uri: http::Uri = uri.parse().unwrap();
        assert_eq!(
            core.environment_of(&uri),
            keyring.hosts().environment_of(&uri),
            "{uri}"
        );
    }
}

/// A token endpoint answering every request with a JWT-shaped token.
fn endpoint() -> TokenClient {
    TokenClient::new(tower::service_fn(
        |_req: Request<http_body_util::Full<bytes::Bytes>>| async {
            let body =
                r#"{"token_type":"Bearer","expires_in":"3600","access_token":"eyJ0.eyJ1.c2ln"}"#;
            Ok::<_, std::convert::Infallible>(Response::new(http_body_util::Full::new(
                bytes::Bytes::from_static(body.as_bytes()),
            )))
        },
    ))
}

type Full = http_body_util::Full<bytes::Bytes>;

/// The headers the inner service got for a request with this MSN header.
async fn sent<S>(svc: S, env: Environment, msn: &str) -> Result<HeaderMap, VippsError>
where
    S: Service<Request<Full>, Response = Response<AuthBody<Full>>, Error = VippsError>,
{
    let req = Request::get(format!("https://{}/epayment/v1/payments/ref-1", env.host()))
        .header("merchant-serial-number", msn)
        .body(Full::default())
        .unwrap();
    let response = svc.oneshot(req).await?;
    Ok(response.headers().clone())
}

/// Echoes the request's headers as the response's.
fn echo() -> impl Service<
    Request<Full>,
    Response = Response<Full>,
    Error = std::convert::Infallible,
    Future = std::future::Ready<Result<Response<Full>, std::convert::Infallible>>,
> + Clone {
    tower::service_fn(|req: Request<Full>| {
        let mut response = Response::new(Full::default());
        *response.headers_mut() = req.headers().clone();
        std::future::ready(Ok(response))
    })
}

/// Listed partner keys are found without looking the MSN up; an MSN they do
/// not list is still refused, even when the cache holds a token for it (one
/// fetched through the cache directly).
#[tokio::test]
async fn listed_partner_keys_refuse_an_unlisted_msn_with_a_cached_token() {
    let env = Environment::Production;
    let listed = Msn::new(100_001).unwrap();
    let unlisted = Msn::new(100_002).unwrap();
    let keys = KeySet::partner(env, "p-id", "p-secret", "p-sub")
        .unwrap()
        .connected_msns([listed]);
    let keyring = Keyring::builder().key_set(keys.clone()).build().unwrap();
    let cache = TokenCache::new();
    let client = endpoint();
    cache
        .get(
            &client,
            &TokenRequest::new(keys, Some(unlisted), Default::default()),
        )
        .await
        .unwrap();
    let svc = AuthLayer::new(keyring)
        .with_cache(cache.clone())
        .token_client(client)
        .layer(echo());
    for _ in 0..2 {
        let err = sent(svc.clone(), env, "100002").await.unwrap_err();
        assert_eq!(err.cause(), Cause::PartnerMsnNotConnected);
        let headers = sent(svc.clone(), env, "100001").await.unwrap();
        assert!(headers.contains_key(AUTHORIZATION));
    }
}

/// A clone serving many requests uses its own handle and copy of the
/// subscription key from its second request on: the same headers, sensitive,
/// for its first key set and for another.
#[tokio::test]
async fn a_busy_clone_sends_the_same_headers_from_its_own_copies() {
    use tower::ServiceExt as _;
    let env = Environment::Test;
    let keyring = Keyring::builder()
        .merchant(env, "1001".parse().unwrap(), "a", "b", "sub-1001")
        .merchant(env, "1002".parse().unwrap(), "c", "d", "sub-1002")
        .build()
        .unwrap();
    let mut svc = AuthLayer::new(keyring)
        .token_client(endpoint())
        .layer(echo());
    for msn in ["1001", "1001", "1001", "1002", "1001", "1002"] {
        let req = Request::get(format!("https://{}/epayment/v1/payments/ref-1", env.host()))
            .header("merchant-serial-number", msn)
            .body(Full::default())
            .unwrap();
        let response = svc.ready().await.unwrap().call(req).await.unwrap();
        let sub = &response.headers()[OCP_APIM_SUBSCRIPTION_KEY];
        assert_eq!(sub, format!("sub-{msn}").as_str());
        assert!(sub.is_sensitive());
        assert!(response.headers()[AUTHORIZATION].is_sensitive());
    }
    assert!(svc.own.calls >= 2);
    assert!(svc.own.subscription_key.is_some());
}

/// `0123` and `123` are two MSNs: each gets its own keys (and token).
#[tokio::test]
async fn leading_zeros_make_another_msn() {
    let env = Environment::Test;
    let keyring = Keyring::builder()
        .merchant(env, "0123".parse().unwrap(), "a", "b", "sub-0123")
        .merchant(env, "123".parse().unwrap(), "c", "d", "sub-123")
        .build()
        .unwrap();
    let svc = AuthLayer::new(keyring)
        .token_client(endpoint())
        .layer(echo());
    for msn in ["0123", "123", "0123"] {
        let headers = sent(svc.clone(), env, msn).await.unwrap();
        assert_eq!(
            headers[OCP_APIM_SUBSCRIPTION_KEY],
            format!("sub-{msn}").as_str()
        );
        assert_eq!(headers[MERCHANT_SERIAL_NUMBER], msn);
    }
    assert_eq!(svc.cache().len(), 2);
}

/// The old way: insert every Vipps header into the request's own map.
fn reference(
    headers: &mut HeaderMap,
    authorization: HeaderValue,
    target: &Target<'_>,
    keyring: &Keyring,
) {
    headers.insert(AUTHORIZATION, authorization);
    headers.insert(
        OCP_APIM_SUBSCRIPTION_KEY,
        target.keys.subscription_key_header().clone(),
    );
    if !target.has_msn_header {
        if let Some(msn) = target.msn {
            headers.insert(MERCHANT_SERIAL_NUMBER, msn.to_header_value());
        }
    }
    let system = keyring.system();
    for (name, value) in [
        (VIPPS_SYSTEM_NAME, &system.name),
        (VIPPS_SYSTEM_VERSION, &system.version),
        (VIPPS_SYSTEM_PLUGIN_NAME, &system.plugin_name),
        (VIPPS_SYSTEM_PLUGIN_VERSION, &system.plugin_version),
    ] {
        headers.insert(name, value.clone());
    }
}

/// A header value's bytes and whether it is sensitive.
type Value = (Vec<u8>, bool);

/// Every name with its values in order, sensitivity included.
fn by_name(headers: &HeaderMap) -> Vec<(String, Vec<Value>)> {
    let mut names: Vec<String> = headers.keys().map(|n| n.to_string()).collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let values = headers
                .get_all(n.as_str())
                .iter()
                .map(|v| (v.as_bytes().to_vec(), v.is_sensitive()))
                .collect();
            (n, values)
        })
        .collect()
}

#[test]
fn outgoing_headers_match_inserting_into_the_request() {
    let msn = Msn::new(123456).unwrap();
    let keyring = Keyring::builder()
        .merchant(Environment::Test, msn, "a", "b", "sub-key")
        .system("my-system", "9.9.9")
        .build()
        .unwrap();
    let core = Core::new(keyring.clone(), TokenCache::new(), true);
    let mut token = HeaderValue::from_static("Bearer t0k3n");
    token.set_sensitive(true);
    let originals: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("merchant-serial-number", "123456")],
        vec![
            ("merchant-serial-number", "123456"),
            ("merchant-serial-number", "654321"),
        ],
        vec![("content-type", "a"), ("content-type", "b")],
        vec![
            ("idempotency-key", "k"),
            ("x-other", "1"),
            ("merchant-serial-number", "123456"),
        ],
        vec![
            ("idempotency-key", "k"),
            ("content-type", "application/json"),
            ("idempotency-key", "k2"),
        ],
        vec![
            ("content-type", "application/json"),
            ("authorization", "Bearer stale"),
            ("authorization", "Basic x"),
            ("ocp-apim-subscription-key", "other"),
            ("vipps-system-name", "theirs"),
            ("vipps-system-plugin-version", "1"),
            ("idempotency-key", "k1"),
            ("x-many", "1"),
            ("x-many", "2"),
            ("merchant-serial-number", "123456"),
        ],
    ];
    for original in originals {
        let mut map = HeaderMap::new();
        for (n, v) in &original {
            map.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let req = {
            let mut req = Request::new(());
            *req.uri_mut() = "https://apitest.vipps.no/x".parse().unwrap();
            *req.headers_mut() = map.clone();
            req
        };
        let target = target(&req, &core).unwrap();
        let mut expected = map.clone();
        reference(&mut expected, token.clone(), &target, &keyring);
        let sub = target.keys.subscription_key_header().clone();
        let got = outgoing(&map, token.clone(), sub, &target, &core).unwrap();
        assert_eq!(by_name(&got), by_name(&expected), "{original:?}");
        assert_eq!(got.len(), expected.len(), "{original:?}");
        assert!(got.values().all(|v| !v.is_empty()), "{original:?}");
    }
}

#[test]
fn which_401s_say_the_token_is_stale() {
    let none = HeaderMap::new();
    assert!(says_token_invalid(&none, b""));
    assert!(says_token_invalid(
        &none,
        b"Something went wrong, please try again later"
    ));
    assert!(says_token_invalid(
        &none,
        br#"{"statusCode":401,"message":"Something went wrong, please try again later"}"#
    ));
    assert!(says_token_invalid(
        &none,
        br#"{"title":"Unauthorized","detail":"The access token is expired"}"#
    ));
    assert!(!says_token_invalid(
        &none,
        br#"{"statusCode":401,"message":"Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."}"#
    ));
    assert!(!says_token_invalid(
        &none,
        br#"{"statusCode":401,"message":"Access denied due to missing subscription key."}"#
    ));
    assert!(!says_token_invalid(
        &none,
        br#"{"statusCode":401,"message":"Subscription not found."}"#
    ));
    let mut www = HeaderMap::new();
    www.insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Bearer error="invalid_token""#),
    );
    assert!(says_token_invalid(&www, b"{}"));
}
