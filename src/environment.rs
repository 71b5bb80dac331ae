//! The two Vipps MobilePay environments and which hosts belong to each.

use std::fmt;
use std::str::FromStr;

use http::Uri;

use crate::error::{Cause, Diagnosis};

/// A Vipps MobilePay environment.
///
/// The test environment ("MT") and production are completely separate: merchant
/// serial numbers and API keys of one never work in the other.
///
/// ```
/// use tower_vipps::Environment;
///
/// assert_eq!(Environment::Test.base_url(), "https://apitest.vipps.no");
/// assert_eq!("production".parse::<Environment>().unwrap(), Environment::Production);
/// assert_eq!(Environment::of_host("api.vipps.no"), Some(Environment::Production));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Environment {
    /// The merchant test environment (MT), `https://apitest.vipps.no`.
    Test,
    /// Production, `https://api.vipps.no`.
    Production,
}

impl Environment {
    /// Both environments.
    pub const ALL: [Environment; 2] = [Environment::Test, Environment::Production];

    /// The official API host of this environment.
    pub const fn host(self) -> &'static str {
        match self {
            Environment::Test => "apitest.vipps.no",
            Environment::Production => "api.vipps.no",
        }
    }

    /// The official base URL of this environment, without a trailing slash.
    pub const fn base_url(self) -> &'static str {
        match self {
            Environment::Test => "https://apitest.vipps.no",
            Environment::Production => "https://api.vipps.no",
        }
    }

    /// A short lowercase name: `test` or `production`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Environment::Test => "test",
            Environment::Production => "production",
        }
    }

    /// The other environment.
    pub const fn other(self) -> Environment {
        match self {
            Environment::Test => Environment::Production,
            Environment::Production => Environment::Test,
        }
    }

    /// The environment an official host belongs to (case-insensitive, no port).
    ///
    /// Custom hosts (an emulator, a proxy) are known to [`Hosts`], not here.
    pub fn of_host(host: &str) -> Option<Environment> {
        Environment::ALL
            .into_iter()
            .find(|env| host.eq_ignore_ascii_case(env.host()))
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an [`Environment`] from a string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown Vipps MobilePay environment {0:?}: expected `test` (or `mt`) or `production` (or `prod`)"
)]
pub struct ParseEnvironmentError(String);

impl FromStr for Environment {
    type Err = ParseEnvironmentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "test" | "mt" | "apitest" => Ok(Environment::Test),
            "production" | "prod" | "api" => Ok(Environment::Production),
            _ => Err(ParseEnvironmentError(s.chars().take(32).collect())),
        }
    }
}

/// One host entry: a host name and, optionally, a port it must use.
#[derive(Clone, Debug, PartialEq, Eq)]
struct HostEntry {
    host: Box<str>,
    port: Option<u16>,
    environment: Environment,
    /// Registered with [`Hosts::with_plaintext`]: keys may go to it over `http://`.
    plaintext: bool,
}

/// Which hosts belong to which [`Environment`].
///
/// Holds the two official hosts, and any custom host added for an emulator or a
/// proxy. A custom host given with a port matches only that port; without one it
/// matches any port.
///
/// Keys and tokens go over HTTPS only: a request to `http://` is refused
/// ([`Cause::InsecureScheme`]) unless its host was registered as plaintext with
/// [`Hosts::with_plaintext`] (an emulator on loopback does so). The official hosts
/// are never plaintext.
///
/// ```
/// use http::Uri;
/// use tower_vipps::{Environment, Hosts};
///
/// let hosts = Hosts::default().with(Environment::Test, "127.0.0.1:8080");
/// let uri: Uri = "https://127.0.0.1:8080/epayment/v1/payments".parse().unwrap();
/// assert_eq!(hosts.environment_of(&uri), Some(Environment::Test));
/// let other: Uri = "https://127.0.0.1:9090/".parse().unwrap();
/// assert_eq!(hosts.environment_of(&other), None);
///
/// // Plain HTTP only to a host registered as plaintext, never to an official host.
/// let plain: Uri = "http://127.0.0.1:8080/epayment/v1/payments".parse().unwrap();
/// assert!(hosts.insecure_scheme(&plain).is_some());
/// let hosts = hosts.with_plaintext(Environment::Test, "127.0.0.1:8080");
/// assert!(hosts.insecure_scheme(&plain).is_none());
/// let official: Uri = "http://apitest.vipps.no/epayment/v1/payments".parse().unwrap();
/// assert!(hosts.insecure_scheme(&official).is_some());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hosts {
    custom: Vec<HostEntry>,
}

impl Default for Hosts {
    fn default() -> Self {
        Hosts::official()
    }
}

impl Hosts {
    /// Only the two official hosts.
    pub fn official() -> Self {
        Hosts { custom: Vec::new() }
    }

    /// Adds a custom host (`"host"` or `"host:port"`) to an environment.
    ///
    /// A later entry for the same host and port replaces an earlier one.
    pub fn with(mut self, environment: Environment, host_and_port: &str) -> Self {
        self.add(environment, host_and_port);
        self
    }

    /// Adds a custom host in place; see [`Hosts::with`].
    pub fn add(&mut self, environment: Environment, host_and_port: &str) {
        self.insert(environment, host_and_port, false);
    }

    /// Adds a custom host that keys and tokens may reach over plain `http://`: an
    /// emulator or a test server on loopback. Use it for nothing else: a key sent
    /// over plain HTTP can be read by anyone on the path.
    pub fn with_plaintext(mut self, environment: Environment, host_and_port: &str) -> Self {
        self.add_plaintext(environment, host_and_port);
        self
    }

    /// Adds a plaintext host in place; see [`Hosts::with_plaintext`].
    pub fn add_plaintext(&mut self, environment: Environment, host_and_port: &str) {
        self.insert(environment, host_and_port, true);
    }

    fn insert(&mut self, environment: Environment, host_and_port: &str, plaintext: bool) {
        let (host, port) = split_host_port(host_and_port);
        let host: Box<str> = host.to_ascii_lowercase().into();
        self.custom.retain(|e| !(e.host == host && e.port == port));
        self.custom.push(HostEntry {
            host,
            port,
            environment,
            plaintext,
        });
    }

    /// The custom entry of a host and optional explicit port: an exact port match
    /// first, then an any-port entry.
    fn entry(&self, host: &str, port: Option<u16>) -> Option<&HostEntry> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let mut any_port = None;
        for entry in &self.custom {
            if entry.host.eq_ignore_ascii_case(host) {
                match entry.port {
                    Some(p) if Some(p) == port => return Some(entry),
                    None => any_port = Some(entry),
                    Some(_) => {}
                }
            }
        }
        any_port
    }

    /// Whether keys and tokens may go to this URI's host over plain `http://`: its
    /// host was registered with [`Hosts::with_plaintext`].
    /// An official host name never is, whatever port it was registered with.
    pub fn allows_plaintext(&self, uri: &Uri) -> bool {
        match uri.host() {
            Some(host) => {
                Environment::of_host(host).is_none()
                    && self
                        .entry(host, uri.port_u16())
                        .is_some_and(|e| e.plaintext)
            }
            None => false,
        }
    }

    /// `None` when a request to `uri` may carry keys or tokens as far as its scheme
    /// goes: it is `https`, or its host was registered as plaintext. Otherwise the
    /// diagnosis [`Cause::InsecureScheme`]: the request must not be sent.
    ///
    /// On the hot path this is one comparison of the scheme.
    #[inline]
    pub fn insecure_scheme(&self, uri: &Uri) -> Option<Diagnosis> {
        if is_https(uri) || self.allows_plaintext(uri) {
            return None;
        }
        Some(insecure_scheme_diagnosis(uri))
    }

    /// The environment of a host and optional explicit port.
    pub fn environment_of_host(&self, host: &str, port: Option<u16>) -> Option<Environment> {
        // Custom entries first: an exact port match, then an any-port entry.
        if let Some(entry) = self.entry(host, port) {
            return Some(entry.environment);
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match port {
            None | Some(443) => Environment::of_host(host),
            Some(_) => None,
        }
    }

    /// The environment of a request URI's authority, `None` for an unknown or
    /// missing host.
    pub fn environment_of(&self, uri: &Uri) -> Option<Environment> {
        if self.custom.is_empty() {
            // The common case, asked by several layers per request: an official host
            // without port or user info, found without splitting the authority.
            let authority = uri.authority()?.as_str();
            if let Some(env) = Environment::ALL
                .into_iter()
                .find(|env| authority.eq_ignore_ascii_case(env.host()))
            {
                return Some(env);
            }
        }
        let host = uri.host()?;
        self.environment_of_host(host, uri.port_u16())
    }

    /// The custom hosts, as `(environment, host, port)`.
    pub fn custom(&self) -> impl Iterator<Item = (Environment, &str, Option<u16>)> {
        self.custom
            .iter()
            .map(|e| (e.environment, &*e.host, e.port))
    }
}

/// Whether the URI's scheme is `https` (a byte compare).
#[inline]
pub(crate) fn is_https(uri: &Uri) -> bool {
    uri.scheme() == Some(&http::uri::Scheme::HTTPS)
}

/// The diagnosis of a request that would carry keys or a token over plain HTTP.
pub(crate) fn insecure_scheme_diagnosis(uri: &Uri) -> Diagnosis {
    let scheme = uri.scheme_str().unwrap_or("no scheme");
    let scheme: String = scheme.chars().take(16).collect();
    let host: String = uri.host().unwrap_or("").chars().take(100).collect();
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    let what = if Environment::of_host(&host).is_some() {
        "an official Vipps MobilePay host, which is only reached over HTTPS"
    } else {
        "a host not registered as plaintext"
    };
    Diagnosis::new(Cause::InsecureScheme).with_evidence(format!(
        "the request goes to `{scheme}://{host}{port}`, {what}; its keys or token would cross the network unencrypted"
    ))
}

fn split_host_port(s: &str) -> (&str, Option<u16>) {
    let s = s.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let s = s.split('/').next().unwrap_or(s);
    if let Some(rest) = s.strip_prefix('[') {
        // [v6]:port
        if let Some((h, tail)) = rest.split_once(']') {
            let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
            return (h, port);
        }
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(port) => (h, Some(port)),
            Err(_) => (s, None),
        },
        _ => (s, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_hosts() {
        let hosts = Hosts::default();
        let uri: Uri = "https://apitest.vipps.no/epayment/v1/payments"
            .parse()
            .unwrap();
        assert_eq!(hosts.environment_of(&uri), Some(Environment::Test));
        let uri: Uri = "https://API.vipps.no:443/x".parse().unwrap();
        assert_eq!(hosts.environment_of(&uri), Some(Environment::Production));
        let uri: Uri = "https://api.vipps.no:8443/x".parse().unwrap();
        assert_eq!(hosts.environment_of(&uri), None);
        let uri: Uri = "https://api.vipps.no.evil.example/x".parse().unwrap();
        assert_eq!(hosts.environment_of(&uri), None);
        let uri: Uri = "/relative".parse().unwrap();
        assert_eq!(hosts.environment_of(&uri), None);
    }

    #[test]
    fn custom_hosts() {
        let hosts = Hosts::default()
            .with(Environment::Test, "127.0.0.1:1000")
            .with(Environment::Production, "http://127.0.0.1:2000/")
            .with(Environment::Test, "proxy.internal")
            .with(Environment::Test, "[::1]:3000");
        let env = |u: &str| hosts.environment_of(&u.parse::<Uri>().unwrap());
        assert_eq!(env("http://127.0.0.1:1000/a"), Some(Environment::Test));
        assert_eq!(
            env("http://127.0.0.1:2000/a"),
            Some(Environment::Production)
        );
        assert_eq!(env("http://127.0.0.1:3000/a"), None);
        assert_eq!(env("http://proxy.internal:1234/a"), Some(Environment::Test));
        assert_eq!(env("http://[::1]:3000/a"), Some(Environment::Test));
    }

    #[test]
    fn plaintext_only_where_registered() {
        let hosts = Hosts::default()
            .with(Environment::Test, "proxy.internal")
            .with_plaintext(Environment::Test, "127.0.0.1:1000")
            .with_plaintext(Environment::Production, "api.vipps.no:8080");
        let insecure = |u: &str| hosts.insecure_scheme(&u.parse::<Uri>().unwrap()).is_some();
        assert!(insecure("http://api.vipps.no/x"));
        assert!(insecure("http://apitest.vipps.no/x"));
        assert!(insecure("HTTP://APITEST.VIPPS.NO/x"));
        assert!(insecure("http://api.vipps.no:80/x"));
        assert!(insecure("http://proxy.internal/x"));
        assert!(insecure("http://127.0.0.1:1001/x"));
        assert!(insecure("ws://127.0.0.1:1001/x"));
        assert!(!insecure("https://api.vipps.no/x"));
        assert!(!insecure("https://proxy.internal/x"));
        assert!(!insecure("http://127.0.0.1:1000/x"));
        // An official host name is never plaintext, whatever was registered.
        assert!(insecure("http://api.vipps.no:8080/x"));
        assert!(insecure("http://api.vipps.no/x"));
        let d = hosts
            .insecure_scheme(&"http://api.vipps.no/x".parse().unwrap())
            .unwrap();
        assert_eq!(d.cause(), Cause::InsecureScheme);
        assert!(
            d.evidence()[0].contains("`http://api.vipps.no`"),
            "{:?}",
            d.evidence()
        );
    }

    #[test]
    fn parse() {
        assert_eq!("MT".parse::<Environment>().unwrap(), Environment::Test);
        assert!("staging".parse::<Environment>().is_err());
        assert_eq!(Environment::Test.other(), Environment::Production);
    }
}
