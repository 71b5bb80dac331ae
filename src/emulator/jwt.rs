//! JWT-shaped access tokens, signed with HMAC-SHA256 and a per-emulator key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Environment;

const BLOCK: usize = 64;

/// HMAC-SHA256 (RFC 2104).
pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut ipad = [0x36u8; BLOCK];
    let mut opad = [0x5cu8; BLOCK];
    for i in 0..BLOCK {
        ipad[i] ^= block[i];
        opad[i] ^= block[i];
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// A fingerprint of a subscription key: hex of the first 8 bytes of its SHA-256.
pub(crate) fn key_fingerprint(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// What a token says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
    /// The expiry to the millisecond (epoch milliseconds): a token is good for its
    /// whole lifetime from the millisecond it was minted.
    pub exp_ms: u64,
    pub env: String,
    /// The MSN: the merchant's, or the one a partner token was fetched with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msn: Option<u64>,
    pub partner: bool,
    /// Minted by `POST /miami/v1/token` for accounting keys (no subscription key).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub accounting: bool,
    pub client_id: String,
    /// [`key_fingerprint`] of the subscription key.
    pub skf: String,
    pub jti: String,
}

pub(crate) const ISSUER: &str = "tower-vipps-emulator";
pub(crate) const RESOURCE: &str = "00000002-0000-0000-c000-000000000000";

impl Claims {
    /// Whether the token was minted for these keys (client id and subscription key).
    pub(crate) fn minted_for(&self, entry: &super::server::KeyEntry) -> bool {
        self.client_id == entry.client_id && self.skf == key_fingerprint(&entry.subscription_key)
    }

    pub(crate) fn environment(&self) -> Option<Environment> {
        self.env.parse().ok()
    }
}

/// Signs claims into `header.payload.signature`.
pub(crate) fn mint(key: &[u8], claims: &Claims) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signing_input = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(hmac_sha256(key, signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

/// The claims of a token minted with `key`, or `None` when it was not (whatever
/// its shape). Does not look at the expiry.
pub(crate) fn verify(key: &[u8], token: &str) -> Option<Claims> {
    if token.len() > 8 * 1024 {
        return None;
    }
    let mut parts = token.split('.');
    let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    let expected = hmac_sha256(key, &token.as_bytes()[..header.len() + 1 + payload.len()]);
    // Constant-time comparison.
    if signature.len() != expected.len()
        || signature
            .iter()
            .zip(expected.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            != 0
    {
        return None;
    }
    let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&payload).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_rfc4231_vectors() {
        // Test case 1.
        assert_eq!(
            hex(&hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // Test case 2.
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn mint_and_verify() {
        let claims = Claims {
            iss: ISSUER.into(),
            aud: RESOURCE.into(),
            iat: 1,
            nbf: 1,
            exp: 3601,
            exp_ms: 3_601_000,
            env: "test".into(),
            msn: Some(123456),
            partner: false,
            accounting: false,
            client_id: "id".into(),
            skf: key_fingerprint("k"),
            jti: "j".into(),
        };
        let token = mint(b"key", &claims);
        assert_eq!(token.split('.').count(), 3);
        assert_eq!(verify(b"key", &token), Some(claims));
        assert_eq!(verify(b"other", &token), None);
        let mut tampered = token.clone();
        tampered.insert(token.find('.').unwrap() + 2, 'x');
        assert_eq!(verify(b"key", &tampered), None);
        for garbage in ["", ".", "..", "a.b.c", "a.b.c.d", "€.€.€"] {
            assert_eq!(verify(b"key", garbage), None);
        }
    }
}
