//! Which key set and MSN a request acts for, and the headers `Auth` sends.

use super::*;
use crate::headers::{CLIENT_ID, CLIENT_SECRET};

/// A key set, borrowed from the index or found by the keyring.
pub(super) enum KeysRef<'a> {
    Borrowed(&'a KeySet),
    Owned(KeySet),
}

impl std::ops::Deref for KeysRef<'_> {
    type Target = KeySet;
    fn deref(&self) -> &KeySet {
        match self {
            KeysRef::Borrowed(keys) => keys,
            KeysRef::Owned(keys) => keys,
        }
    }
}

/// The key set and MSN a request acts for.
pub(super) struct Target<'a> {
    pub(super) keys: KeysRef<'a>,
    /// The MSN to put in `Merchant-Serial-Number` when the request lacks it.
    pub(super) msn: Option<Msn>,
    /// Whether the request already carries the header.
    pub(super) has_msn_header: bool,
    /// Whether `keys` are known to cover `msn`: `false` for listed partner keys
    /// found without looking the MSN up ([`Core::find`]), which the token cache's
    /// entry for the MSN, or the key set, confirms ([`Target::covered`]).
    pub(super) verified: bool,
}

pub(super) fn refuse<B>(req: &Request<B>, keyring: &Keyring, diagnosis: Diagnosis) -> VippsError {
    tracing::debug!(code = diagnosis.code(), "request refused before sending");
    VippsError::refused(diagnosis).with_context(RequestContext::of(req, keyring.hosts()))
}

/// The first `Merchant-Serial-Number` value, as `HeaderMap::get` would return it,
/// found by comparing names (a request has few headers) instead of hashing one.
#[inline]
pub(super) fn msn_header(headers: &HeaderMap) -> Option<&HeaderValue> {
    headers
        .iter()
        .find_map(|(name, value)| (*name == MERCHANT_SERIAL_NUMBER).then_some(value))
}

pub(super) fn target<'a, B>(req: &Request<B>, shared: &'a Core) -> Result<Target<'a>, VippsError> {
    let keyring = &shared.keyring;
    let Some(env) = shared.environment_of(req.uri()) else {
        let evidence = match req.uri().host() {
            Some(_) => "the request's host belongs to no Vipps MobilePay environment",
            None => "the request URI has no host",
        };
        return Err(refuse(
            req,
            keyring,
            Diagnosis::new(Cause::UnknownHost).with_evidence(evidence),
        ));
    };
    // Keys and tokens over HTTPS only: one scheme compare on the hot path.
    if !crate::environment::is_https(req.uri()) && !keyring.hosts().allows_plaintext(req.uri()) {
        return Err(refuse(
            req,
            keyring,
            crate::environment::insecure_scheme_diagnosis(req.uri()).with_evidence(
                "Auth would add the access token and `Ocp-Apim-Subscription-Key` to it",
            ),
        ));
    }
    let header = msn_header(req.headers());
    let msn = match header {
        Some(value) => match Msn::from_header(value) {
            Ok(msn) => Some(msn),
            Err(e) => {
                return Err(refuse(
                    req,
                    keyring,
                    Diagnosis::new(Cause::MalformedMsn).with_evidence(e.to_string()),
                ));
            }
        },
        None => req.extensions().get::<Msn>().copied(),
    };
    let has_msn_header = header.is_some();
    if let Some(msn) = msn {
        if let Some((keys, verified)) = shared.find(env, msn) {
            return Ok(Target {
                msn: Some(keys.merchant_msn().unwrap_or(msn)),
                keys: KeysRef::Borrowed(keys),
                has_msn_header,
                verified,
            });
        }
    }
    looked_up(req, shared, env, msn, has_msn_header)
}

/// The target as the keyring finds it (every MSN looked up), or why there is none.
#[cold]
pub(super) fn looked_up<'a, B>(
    req: &Request<B>,
    shared: &'a Core,
    env: Environment,
    msn: Option<Msn>,
    has_msn_header: bool,
) -> Result<Target<'a>, VippsError> {
    let keyring = &shared.keyring;
    let keys = match keyring.lookup(env, msn) {
        Lookup::Found(keys) => keys,
        Lookup::MsnRequired => {
            let partner = keyring
                .key_sets()
                .any(|k| k.environment() == env && k.is_partner());
            let misspelled = crate::preflight::msn::MISSPELLED
                .into_iter()
                .find(|name| req.headers().contains_key(name));
            let diagnosis = if let Some(name) = misspelled {
                // The FAQ's classic: the body field's name used as the header's.
                Diagnosis::new(Cause::MsnHeaderMisspelled).with_evidence(format!(
                    "a `{}` header and no `Merchant-Serial-Number` header or `Msn` extension",
                    if name == "merchantserialnumber" {
                        "merchantSerialNumber"
                    } else {
                        name.as_str()
                    }
                ))
            } else if partner {
                Diagnosis::new(Cause::PartnerMissingMsnHeader).with_evidence(
                    "no `Merchant-Serial-Number` header or `Msn` extension, and the keys for this environment are partner keys",
                )
            } else {
                Diagnosis::new(Cause::NoKeysForMsn).with_evidence(
                    "no `Merchant-Serial-Number` header or `Msn` extension, and several merchants have keys in this environment",
                )
            };
            return Err(refuse(req, keyring, diagnosis));
        }
        Lookup::NotConnected(_) => {
            return Err(refuse(
                req,
                keyring,
                Diagnosis::new(Cause::PartnerMsnNotConnected).with_evidence(format!(
                    "MSN {} is not among the MSNs listed for the partner keys",
                    msn.map(|m| m.to_string()).unwrap_or_default()
                )),
            ));
        }
        _ => {
            let other = env.other();
            let diagnosis = if keyring.find(other, msn).is_some() {
                Diagnosis::new(Cause::WrongEnvironment).with_evidence(format!(
                    "the keys for this MSN belong to the {other} environment, and the request goes to a {env} host"
                ))
            } else {
                Diagnosis::new(Cause::NoKeysForMsn)
                    .with_evidence(format!("no key set for this MSN in the {env} environment"))
            };
            return Err(refuse(req, keyring, diagnosis));
        }
    };
    Ok(Target {
        msn: keys.merchant_msn().or(msn),
        keys: KeysRef::Owned(keys),
        has_msn_header,
        verified: true,
    })
}

impl Target<'_> {
    /// Whether the keys cover the MSN, asking the key set when it is not known
    /// (listed partner keys: a hash lookup in their list).
    pub(super) fn covered(&self) -> bool {
        self.verified || self.msn.is_some_and(|msn| self.keys.covers(msn))
    }
}

/// A [`Target`] that owns its key set, kept for a replay.
pub(super) struct OwnedTarget {
    pub(super) keys: KeySet,
    pub(super) msn: Option<Msn>,
    pub(super) has_msn_header: bool,
}

impl Target<'_> {
    pub(super) fn owned(&self) -> OwnedTarget {
        OwnedTarget {
            keys: (*self.keys).clone(),
            msn: self.msn,
            has_msn_header: self.has_msn_header,
        }
    }
}

impl OwnedTarget {
    pub(super) fn as_target(&self) -> Target<'_> {
        Target {
            keys: KeysRef::Borrowed(&self.keys),
            msn: self.msn,
            has_msn_header: self.has_msn_header,
            // Owned only once covered.
            verified: true,
        }
    }
}

/// Headers a request commonly carries of its own (a body's type, the
/// idempotency key): some templates hold a placeholder for them, filled in place,
/// so that a cloned template does not grow for them (a clone has no spare room).
pub(super) const COMMON_LEN: usize = 2;
pub(super) const COMMON: [HeaderName; COMMON_LEN] =
    [http::header::CONTENT_TYPE, crate::headers::IDEMPOTENCY_KEY];

/// Whether `Auth` replaces every value of this header.
#[inline]
pub(super) fn set_by_auth(name: &HeaderName) -> bool {
    *name == AUTHORIZATION
        || *name == OCP_APIM_SUBSCRIPTION_KEY
        || *name == VIPPS_SYSTEM_NAME
        || *name == VIPPS_SYSTEM_VERSION
        || *name == VIPPS_SYSTEM_PLUGIN_NAME
        || *name == VIPPS_SYSTEM_PLUGIN_VERSION
}

/// The headers to send: the request's own headers, with `Authorization`,
/// `Ocp-Apim-Subscription-Key` and the `Vipps-System-*` headers replaced by ours,
/// and `Merchant-Serial-Number` added when the request lacks it.
///
/// Built from a clone of [`Core::template`]: only the request's own headers are
/// hashed (the placeholders are filled in place), and a request with no other
/// header than `Merchant-Serial-Number` fits without growing the map.
///
/// `Err` when the request's headers and ours do not fit in one `HeaderMap`.
#[inline]
pub(super) fn outgoing(
    original: &HeaderMap,
    authorization: HeaderValue,
    subscription_key: HeaderValue,
    target: &Target<'_>,
    core: &Core,
) -> Result<HeaderMap, http::header::MaxSizeReached> {
    // The template with a placeholder for each common header the request has.
    let mut variant = 0;
    for name in original.keys() {
        if let Some(i) = COMMON.iter().position(|common| name == common) {
            variant |= 1 << i;
        }
    }
    let mut headers = core.templates[variant].clone();
    let mut msn = None;
    let mut common: [Option<HeaderValue>; COMMON_LEN] = Default::default();
    for (name, value) in original {
        if msn.is_none() && *name == MERCHANT_SERIAL_NUMBER {
            // Goes into the placeholder below; further values are appended after it.
            msn = Some(value.clone());
        } else if let Some(i) = COMMON.iter().position(|c| name == c) {
            // Likewise.
            if common[i].is_none() {
                common[i] = Some(value.clone());
            } else {
                headers.try_append(name.clone(), value.clone())?;
            }
        } else if !set_by_auth(name) {
            headers.try_append(name.clone(), value.clone())?;
        }
    }
    let mut msn = msn.or_else(|| target.msn.map(Msn::to_header_value));
    let remove_msn = msn.is_none();
    let mut authorization = Some(authorization);
    let mut subscription_key = Some(subscription_key);
    // Each placeholder is the first value of its name: fill it without hashing.
    for (name, value) in headers.iter_mut() {
        let fill = if *name == AUTHORIZATION {
            authorization.take()
        } else if *name == OCP_APIM_SUBSCRIPTION_KEY {
            subscription_key.take()
        } else if *name == MERCHANT_SERIAL_NUMBER {
            msn.take()
        } else if let Some(i) = COMMON.iter().position(|c| name == c) {
            common[i].take()
        } else {
            None
        };
        if let Some(fill) = fill {
            *value = fill;
            if authorization.is_none()
                && subscription_key.is_none()
                && msn.is_none()
                && common.iter().all(Option::is_none)
            {
                break;
            }
        }
    }
    if remove_msn {
        headers.remove(MERCHANT_SERIAL_NUMBER);
    }
    debug_assert!(authorization.is_none() && subscription_key.is_none() && msn.is_none());
    debug_assert!(common.iter().all(Option::is_none));
    Ok(headers)
}

/// Sets the Vipps headers on `headers` (see [`outgoing`]); `Err` (and `headers`
/// unchanged) when they do not fit.
pub(super) fn apply(
    headers: &mut HeaderMap,
    authorization: HeaderValue,
    target: &Target<'_>,
    core: &Core,
) -> Result<(), http::header::MaxSizeReached> {
    let subscription_key = target.keys.subscription_key_header().clone();
    *headers = outgoing(headers, authorization, subscription_key, target, core)?;
    Ok(())
}

/// Sets the client credentials a Checkout call takes: the key set's `client_id`,
/// `client_secret` and `Ocp-Apim-Subscription-Key` (marked sensitive, replacing the
/// caller's), `Merchant-Serial-Number` when the request lacks it, and the
/// keyring's `Vipps-System-*` headers. `Authorization` is left as it is.
///
/// `Err` when they do not fit in the map (the request is then refused, unsent).
pub(super) fn client_credentials(
    headers: &mut HeaderMap,
    target: &Target<'_>,
    api: crate::Api,
    core: &Core,
) -> Result<(), http::header::MaxSizeReached> {
    for name in [CLIENT_ID, CLIENT_SECRET, OCP_APIM_SUBSCRIPTION_KEY] {
        if headers.contains_key(&name) {
            tracing::debug!(
                api = api.as_str(),
                header = name.as_str(),
                "the request's own header is replaced by the key set's"
            );
        }
    }
    let keys = &target.keys;
    headers.try_insert(CLIENT_ID, keys.client_id_header().clone())?;
    headers.try_insert(CLIENT_SECRET, keys.client_secret_header().clone())?;
    headers.try_insert(
        OCP_APIM_SUBSCRIPTION_KEY,
        keys.subscription_key_header().clone(),
    )?;
    if !target.has_msn_header {
        if let Some(msn) = target.msn {
            headers.try_insert(MERCHANT_SERIAL_NUMBER, msn.to_header_value())?;
        }
    }
    for (name, value) in core.templates[0].iter() {
        if *name != AUTHORIZATION
            && *name != OCP_APIM_SUBSCRIPTION_KEY
            && *name != MERCHANT_SERIAL_NUMBER
        {
            headers.try_insert(name.clone(), value.clone())?;
        }
    }
    Ok(())
}

/// A `debug` event naming the credentials of the request's own that `Auth`
/// replaces with the access token and subscription key (no value in it).
#[cold]
pub(super) fn replaced_event(headers: &HeaderMap, api: crate::Api) {
    for name in [AUTHORIZATION, OCP_APIM_SUBSCRIPTION_KEY] {
        if headers.contains_key(&name) {
            tracing::debug!(
                api = api.as_str(),
                header = name.as_str(),
                "the request's own header is replaced by the access token's"
            );
        }
    }
}
