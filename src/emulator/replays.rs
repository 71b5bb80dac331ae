//! Idempotent replays for the APIs that take a request key (Recurring's
//! `Idempotency-Key`, eCom's `X-Request-Id`): the same key and body answer the
//! first success again; the same key with another body is a conflict.

use std::collections::HashMap;

use bytes::Bytes;
use http::Response;
use sha2::{Digest, Sha256};

use super::bodies::{self, Body};
use crate::{Environment, Msn};

/// Where a key is unique: the environment, the MSN, the operation (a path or a
/// name), and the key.
pub(crate) type Scope = (Environment, Msn, String, String);

struct Stored {
    body_hash: [u8; 32],
    status: u16,
    content_type: &'static str,
    body: Bytes,
}

/// What a key says about a request.
pub(crate) enum Replay {
    /// A new key: go on, then [`Replays::store`] a success.
    New([u8; 32]),
    /// The same key and body: the first answer again.
    Same(Response<Body>),
    /// The same key, another body.
    Conflict,
}

/// The stored answers, by [`Scope`].
#[derive(Default)]
pub(crate) struct Replays {
    stored: HashMap<Scope, Stored>,
}

impl Replays {
    pub(crate) fn check(&self, scope: &Scope, body: &[u8]) -> Replay {
        let body_hash: [u8; 32] = Sha256::digest(body).into();
        match self.stored.get(scope) {
            None => Replay::New(body_hash),
            Some(s) if s.body_hash == body_hash => {
                Replay::Same(bodies::respond(s.status, s.content_type, s.body.clone()))
            }
            Some(_) => Replay::Conflict,
        }
    }

    /// Keeps a successful answer for its key.
    pub(crate) fn store(
        &mut self,
        scope: Scope,
        body_hash: [u8; 32],
        content_type: &'static str,
        response: &Response<Body>,
    ) {
        if response.status().is_success() {
            self.stored.insert(
                scope,
                Stored {
                    body_hash,
                    status: response.status().as_u16(),
                    content_type,
                    body: super::epayment::full_bytes(response.body().clone()),
                },
            );
        }
    }
}
