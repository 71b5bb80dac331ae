//! [`Facts`]: what the rules know of a request, gathered once.

use std::sync::Arc;

use http::{HeaderMap, Method, Request, Uri};

use super::headers::{self, Known};
use super::layer::Config;
use super::{authorization, body, sparse};
use crate::context::Api;
use crate::headers::{CLIENT_SECRET, OCP_APIM_SUBSCRIPTION_KEY};
use crate::token::{AccessToken, MintedFor};
use crate::{Environment, KeySet};

/// What the rules know of a request, gathered once.
pub(crate) struct Facts<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: headers::Headers<'a>,
    pub api: Api,
    pub operation: Option<&'static str>,
    /// The first `Merchant-Serial-Number` header, parsed (`None` without one).
    pub header_msn: Option<Result<crate::Msn, crate::MsnError>>,
    /// The path's segments ([`crate::context::segments`]; none past 8).
    pub segments: ([&'a str; 8], usize),
    /// The environment of the host, if it is a known one.
    pub environment: Option<Environment>,
    /// The URI names a host that belongs to no environment.
    pub unknown_host: bool,
    /// The scheme is not `https` and the host is not registered as plaintext.
    pub insecure_scheme: bool,
    pub allow_unknown_hosts: bool,
    /// The token of a well-formed `Authorization: Bearer <token>`, read when the
    /// value is not the cache's own (`token` is `None`): the cache's token answers
    /// every question a rule asks of it.
    pub bearer_token: Option<&'a str>,
    /// What the token was minted for, if the token cache knows it.
    pub minted: Option<MintedFor>,
    /// The cached token whose own `Authorization` value the request carries
    /// ([`KnownTokens::identify`]): its facts were worked out once.
    pub token: Option<Arc<AccessToken>>,
    /// The key set the request's keys belong to: the one whose subscription key the
    /// request carries, else the one the token was minted with.
    pub key_set: Option<&'a KeySet>,
    /// The key sets whose subscription key the request carries, any environment.
    pub sub_key_sets: &'a [KeySet],
    /// The body as JSON, when it is a well-known body or may hold an MSN.
    pub json: Option<sparse::Doc<'a>>,
    /// The well-known operation whose body the body rules read, worked out once.
    pub(super) kind: Option<body::Kind>,
    /// A well-known body was buffered, and it is not valid JSON.
    pub body_not_json: bool,
}

impl<'a> Facts<'a> {
    /// The environment of the request and whether its host is unknown, or `None`
    /// when an unknown host carries no secret (not a Vipps MobilePay call: not checked).
    pub(super) fn scope<B>(
        config: &Config,
        request: &Request<B>,
    ) -> Option<(Option<Environment>, bool)> {
        let uri = request.uri();
        let environment = config.hosts.environment_of(uri);
        let unknown_host = environment.is_none() && uri.host().is_some();
        if unknown_host && !config.allow_unknown_hosts && !carries_secrets(request.headers()) {
            return None;
        }
        Some((environment, unknown_host))
    }

    pub(super) fn gather<B: 'static>(
        config: &'a Config,
        request: &'a Request<B>,
        (environment, unknown_host): (Option<Environment>, bool),
        body: Option<&'a [u8]>,
    ) -> Facts<'a> {
        let uri = request.uri();
        let headers = headers::Headers::new(request.headers());
        let path = uri.path();
        let api = Api::from_path(path);
        let segments = crate::context::segments(path).unwrap_or_default();
        let op = segments
            .0
            .get(..segments.1)
            .and_then(|segments| crate::context::operation_of(api, request.method(), segments));
        let authorization_value = headers.first(Known::AUTHORIZATION);
        let sub_key_sets: &[KeySet] =
            match (&config.keyring, headers.first(Known::SUBSCRIPTION_KEY)) {
                (Some(keyring), Some(value)) => keyring.by_subscription_key(value.as_bytes()),
                _ => &[],
            };
        let env_key_set = sub_key_sets
            .iter()
            .find(|k| Some(k.environment()) == environment);
        // The first `Merchant-Serial-Number`, parsed once for every rule.
        let header_msn = headers
            .first(Known::MERCHANT_SERIAL_NUMBER)
            .map(crate::Msn::from_header);
        let msn = header_msn.as_ref().and_then(|m| m.as_ref().ok()).copied();
        // The cache holds one token for the key set and MSN the request names: the
        // request carries it, or it gets every check below.
        let token = match (&config.known_tokens, authorization_value, env_key_set) {
            (Some(known), Some(value), Some(keys)) => known.identify(value, keys, msn),
            _ => None,
        };
        let bearer_token = match token {
            Some(_) => None,
            None => authorization::bearer_token(headers.map()),
        };
        let minted = match (&token, &config.known_tokens, bearer_token) {
            (Some(token), _, _) => Some(token.minted_for()),
            (None, Some(known), Some(bearer)) => known.minted_for(bearer),
            _ => None,
        };
        let key_set = env_key_set.or(sub_key_sets.first()).or_else(|| {
            // The request's subscription key is not ours: the key set the token
            // was minted with, if the token is known (a mistake path).
            let minted = minted.as_ref()?;
            config.keyring.as_ref()?.key_sets().find(|k| {
                k.environment() == minted.environment
                    && *k.client_id() == *minted.client_id
                    && k.subscription_key_fingerprint() == minted.subscription_key
            })
        });
        let body = body.filter(|b| b.len() <= config.body_cap);
        let kind = body::kind(api, op);
        let mut body_not_json = false;
        let json = match body {
            Some(bytes) if !bytes.is_empty() => {
                let well_known = kind.is_some();
                let wanted = well_known
                    || (headers.has(Known::MERCHANT_SERIAL_NUMBER)
                        && contains(bytes, b"merchantSerialNumber"));
                let json =
                    if wanted && bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
                        sparse::parse(bytes)
                    } else {
                        None
                    };
                // Every well-known body is a JSON object: anything else is refused.
                body_not_json = well_known && json.is_none();
                json
            }
            _ => None,
        };
        Facts {
            method: request.method(),
            uri,
            headers,
            api,
            operation: op,
            header_msn,
            segments,
            environment,
            unknown_host,
            insecure_scheme: !crate::environment::is_https(uri)
                && !config.hosts.allows_plaintext(uri),
            allow_unknown_hosts: config.allow_unknown_hosts,
            bearer_token,
            minted,
            token,
            key_set,
            sub_key_sets,
            json,
            kind,
            body_not_json,
        }
    }
}

/// Whether a request carries a token or a key.
fn carries_secrets(headers: &HeaderMap) -> bool {
    headers.contains_key(http::header::AUTHORIZATION)
        || headers.contains_key(OCP_APIM_SUBSCRIPTION_KEY)
        || headers.contains_key(CLIENT_SECRET)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
