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

/// The templates of [`outgoing`], one per subset of [`COMMON`]: the keyring's
/// `Vipps-System-*` values (backed by static bytes, see [`interned`]), then
/// placeholders for `Authorization`, `Ocp-Apim-Subscription-Key` and
/// `Merchant-Serial-Number`, then one for each [`COMMON`] header `j` with bit `j`
/// of the template's index set: [`outgoing`] fills them by position, in this order.
pub(super) fn templates(system: &crate::keys::SystemInfo) -> [HeaderMap; 1 << COMMON_LEN] {
    let mut template = HeaderMap::with_capacity(12);
    for (name, value) in [
        (VIPPS_SYSTEM_NAME, &system.name),
        (VIPPS_SYSTEM_VERSION, &system.version),
        (VIPPS_SYSTEM_PLUGIN_NAME, &system.plugin_name),
        (VIPPS_SYSTEM_PLUGIN_VERSION, &system.plugin_version),
    ] {
        template.insert(name, interned(value));
    }
    debug_assert_eq!(template.len(), SYSTEM_HEADERS);
    for name in [
        AUTHORIZATION,
        OCP_APIM_SUBSCRIPTION_KEY,
        MERCHANT_SERIAL_NUMBER,
    ] {
        template.insert(name, HeaderValue::from_static(""));
    }
    std::array::from_fn(|variant| {
        let mut template = template.clone();
        for (j, name) in COMMON.iter().enumerate() {
            if variant & (1 << j) != 0 {
                template.insert(name.clone(), HeaderValue::from_static(""));
            }
        }
        template
    })
}

/// How many `Vipps-System-*` headers open a template.
const SYSTEM_HEADERS: usize = 4;

/// What a request's own header is to [`outgoing`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum HeaderRole {
    /// `Merchant-Serial-Number`.
    Msn,
    /// [`COMMON`]`[j]`.
    Common(usize),
    /// A header `Auth` replaces ([`set_by_auth`]).
    Replaced,
    /// Any other: sent as it is.
    Other,
}

#[inline]
fn role(name: &HeaderName) -> HeaderRole {
    if *name == MERCHANT_SERIAL_NUMBER {
        HeaderRole::Msn
    } else if let Some(j) = COMMON.iter().position(|c| name == c) {
        HeaderRole::Common(j)
    } else if set_by_auth(name) {
        HeaderRole::Replaced
    } else {
        HeaderRole::Other
    }
}

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
/// Built from a clone of a [`templates`] map: nothing is hashed for the
/// placeholders (filled by position), each of the request's headers is looked at
/// once, and a second pass appends the request's other headers only when it has
/// some, so a request with no other header than `Merchant-Serial-Number`,
/// `Content-Type` and `Idempotency-Key` fits without growing the map.
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
    // One look at each of the request's headers: the first value of each
    // placeholder's name, and whether anything is left to append.
    let mut msn = None;
    let mut common: [Option<&HeaderValue>; COMMON_LEN] = [None; COMMON_LEN];
    let mut rest = false;
    for (name, value) in original {
        match role(name) {
            HeaderRole::Msn if msn.is_none() => msn = Some(value),
            HeaderRole::Common(j) if common[j].is_none() => common[j] = Some(value),
            HeaderRole::Replaced => {}
            _ => rest = true,
        }
    }
    let variant = common
        .iter()
        .enumerate()
        .fold(0, |v, (j, c)| v | (usize::from(c.is_some()) << j));
    let mut headers = core.templates[variant].clone();
    let msn = match msn {
        Some(value) => Some(value.clone()),
        None => target.msn.map(Msn::to_header_value),
    };
    let remove_msn = msn.is_none();
    // The placeholders, in the order [`templates`] put them.
    let mut fills = [Some(authorization), Some(subscription_key), msn]
        .into_iter()
        .chain(common.iter().flatten().map(|v| Some((*v).clone())));
    for (_, value) in headers.iter_mut().skip(SYSTEM_HEADERS) {
        match fills.next() {
            Some(Some(fill)) => *value = fill,
            Some(None) => {}
            None => break,
        }
    }
    debug_assert!(fills.next().is_none());
    if remove_msn {
        headers.remove(MERCHANT_SERIAL_NUMBER);
    }
    if rest {
        // The values after each placeholder's first, and every other header.
        let (mut seen_msn, mut seen) = (false, [false; COMMON_LEN]);
        for (name, value) in original {
            let first = match role(name) {
                HeaderRole::Msn => !std::mem::replace(&mut seen_msn, true),
                HeaderRole::Common(j) => !std::mem::replace(&mut seen[j], true),
                HeaderRole::Replaced => continue,
                HeaderRole::Other => false,
            };
            if !first {
                headers.try_append(name.clone(), value.clone())?;
            }
        }
    }
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
    // The `Vipps-System-*` headers open every template (see [`templates`]).
    for (name, value) in core.templates[0].iter().take(SYSTEM_HEADERS) {
        headers.try_insert(name.clone(), value.clone())?;
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
