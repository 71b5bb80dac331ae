//! [`PreflightLayer`]: its settings, and [`check`](PreflightLayer::check), which runs
//! the rules of the table over a request.

use std::fmt;
use std::sync::Arc;

use http::Request;
use tower_layer::Layer;

use super::{Action, DEFAULT_BODY_CAP, Facts, Policy, Preflight, RuleId};
use crate::replay::peek_request;
use crate::token::KnownTokens;
use crate::{Hosts, Keyring, RequestContext, VippsError};

#[derive(Clone)]
pub(super) struct Config {
    pub(super) keyring: Option<Keyring>,
    pub(super) hosts: Hosts,
    pub(super) known_tokens: Option<Arc<dyn KnownTokens>>,
    pub(super) policy: Policy,
    pub(super) allow_unknown_hosts: bool,
    pub(super) body_cap: usize,
}

/// The layer of [`Preflight`]; also checks single requests with
/// [`PreflightLayer::check`].
///
/// `PreflightLayer::new()` works alone (official hosts, no keys); add the
/// [`Keyring`] for the key, MSN, environment and partner rules and the
/// [`KnownTokens`] of the token cache for the token rules.
#[derive(Clone)]
pub struct PreflightLayer {
    config: Arc<Config>,
}

impl Default for PreflightLayer {
    fn default() -> Self {
        PreflightLayer::new()
    }
}

impl fmt::Debug for PreflightLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &*self.config;
        f.debug_struct("PreflightLayer")
            .field("keyring", &c.keyring)
            .field("hosts", &c.hosts)
            .field("known_tokens", &c.known_tokens.is_some())
            .field("policy", &c.policy)
            .field("allow_unknown_hosts", &c.allow_unknown_hosts)
            .field("body_cap", &c.body_cap)
            .finish()
    }
}

impl PreflightLayer {
    /// A preflight with the default [`Policy`], the official hosts, no keys.
    pub fn new() -> Self {
        PreflightLayer {
            config: Arc::new(Config {
                keyring: None,
                hosts: Hosts::default(),
                known_tokens: None,
                policy: Policy::default(),
                allow_unknown_hosts: false,
                body_cap: DEFAULT_BODY_CAP,
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// The keys: enables the subscription key, MSN, environment and partner rules,
    /// and takes the keyring's hosts.
    pub fn keyring(self, keyring: Keyring) -> Self {
        self.edit(|c| {
            c.hosts = keyring.hosts().clone();
            c.keyring = Some(keyring);
        })
    }

    /// The hosts of each environment (already taken from the keyring, if set).
    pub fn hosts(self, hosts: Hosts) -> Self {
        self.edit(|c| c.hosts = hosts)
    }

    /// What the token cache knows of the tokens it minted: enables the token rules
    /// (another subscription key, another MSN, another environment).
    pub fn known_tokens(self, known: Arc<dyn KnownTokens>) -> Self {
        self.edit(|c| c.known_tokens = Some(known))
    }

    /// Replaces the whole policy.
    pub fn policy(self, policy: Policy) -> Self {
        self.edit(|c| c.policy = policy)
    }

    /// Sets the action of one rule.
    pub fn rule(self, rule: RuleId, action: Action) -> Self {
        self.edit(|c| c.policy.set(rule, action))
    }

    /// Lets requests with keys or tokens go to hosts of no known environment (a
    /// proxy), and runs the rules on them as on Vipps MobilePay calls. Default
    /// `false`: such requests are refused with [`Cause::UnknownHost`](crate::Cause::UnknownHost).
    /// Prefer registering the proxy's host with `Keyring::builder().host(..)`.
    pub fn allow_unknown_hosts(self, allow: bool) -> Self {
        self.edit(|c| c.allow_unknown_hosts = allow)
    }

    /// The most body bytes inspected (default 64 KiB); a longer buffered body is
    /// sent without its body rules.
    pub fn body_cap(self, cap: usize) -> Self {
        self.edit(|c| c.body_cap = cap)
    }

    /// Runs the rules over a request: `Err` with the first refusal (nothing should
    /// be sent), `Ok` otherwise, after logging the warnings.
    pub fn check<B: 'static>(&self, request: &Request<B>) -> Result<(), VippsError> {
        let config = &*self.config;
        let Some(scope) = Facts::scope(config, request) else {
            return Ok(());
        };
        let body = peek_request(request);
        if body.is_none() {
            crate::buffer::skipped_checks::<B>();
        }
        let facts = Facts::gather(config, request, scope, body.as_deref());
        for id in RuleId::ALL {
            let action = config.policy.action(*id);
            if action == Action::Off {
                continue;
            }
            let Some(diagnosis) = (id.check())(&facts) else {
                continue;
            };
            match action {
                Action::Refuse => {
                    tracing::debug!(
                        rule = id.name(),
                        code = diagnosis.code(),
                        "Vipps MobilePay preflight refused the request"
                    );
                    return Err(VippsError::refused(diagnosis)
                        .with_context(RequestContext::of(request, &config.hosts)));
                }
                Action::Warn => {
                    let evidence = diagnosis.evidence().join("; ");
                    tracing::warn!(
                        rule = id.name(),
                        code = diagnosis.code(),
                        api = facts.api.as_str(),
                        operation = facts.operation.unwrap_or(""),
                        evidence = %evidence,
                        "Vipps MobilePay preflight: this request will likely fail or be hard to trace; sending it anyway"
                    );
                }
                Action::Off => {}
            }
        }
        Ok(())
    }
}

impl<S> Layer<S> for PreflightLayer {
    type Service = Preflight<S>;

    fn layer(&self, inner: S) -> Preflight<S> {
        Preflight {
            inner,
            layer: self.clone(),
        }
    }
}
