//! JSON Web Tokens as the local platform's UAA issues them (`uaa.rs`):
//! `base64url(header).base64url(payload).base64url(signature)`, signed with
//! HMAC-SHA256 (JWS `HS256`) under a key derived from the daemon's API
//! token, so every token dies with the daemon that issued it.
//!
//! HMAC is written out here over `sha2` (RFC 2104, checked against RFC
//! 4231's vectors below) rather than adding a crate for twenty lines.
//!
//! Verification trusts nothing in the token before its signature holds:
//! the header must name exactly `HS256` (a `none` or any other algorithm is
//! refused, never honoured), the signature is recomputed over the bytes as
//! received and compared in constant time, and only then is the payload
//! read; it must carry a numeric `exp` still in the future.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The one header this issuer writes, byte for byte.
const HEADER: &str = r#"{"alg":"HS256","kid":"bluegreen-local","typ":"JWT"}"#;
/// What the signing key is derived for: the key is `HMAC(api token, LABEL)`.
pub const KEY_LABEL: &str = "bluegreen local platform uaa signing key v1";

/// Why a token was refused. Never carries the token itself.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("not a JWT")]
    Malformed,
    #[error("not signed with HS256")]
    Algorithm,
    #[error("bad signature")]
    Signature,
    #[error("expired")]
    Expired,
}

/// HMAC-SHA256 of the concatenated `parts` under `key` (RFC 2104).
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    for p in parts {
        inner.update(p);
    }
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Signs and verifies with one key. Its `Debug` shows no key.
pub struct Signer {
    key: [u8; 32],
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    /// The key for tokens of the daemon whose API token is `secret`.
    pub fn derive(secret: &str) -> Signer {
        Signer {
            key: hmac_sha256(secret.as_bytes(), &[KEY_LABEL.as_bytes()]),
        }
    }

    pub fn sign(&self, claims: &Value) -> String {
        let signing_input = format!("{}.{}", B64.encode(HEADER), B64.encode(claims.to_string()));
        let mac = hmac_sha256(&self.key, &[signing_input.as_bytes()]);
        format!("{signing_input}.{}", B64.encode(mac))
    }

    /// The claims of a token this signer issued, if it is unexpired at
    /// `now_ms` (milliseconds since the Unix epoch).
    pub fn verify(&self, token: &str, now_ms: u64) -> Result<Map<String, Value>, Invalid> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Invalid::Malformed);
        };
        let header: Value = decode_json(header)?;
        // `crit` names extensions the verifier must understand: none are.
        if header.get("alg").and_then(Value::as_str) != Some("HS256")
            || header.get("crit").is_some()
        {
            return Err(Invalid::Algorithm);
        }
        let given = B64.decode(signature).map_err(|_| Invalid::Signature)?;
        let signed = &token[..header_len(token, signature)];
        let expected = hmac_sha256(&self.key, &[signed.as_bytes()]);
        if !constant_eq(&given, &expected) {
            return Err(Invalid::Signature);
        }
        let Value::Object(claims) = decode_json(payload)? else {
            return Err(Invalid::Malformed);
        };
        let exp = claims
            .get("exp")
            .and_then(Value::as_f64)
            .ok_or(Invalid::Malformed)?;
        if (now_ms as f64) >= exp * 1000.0 {
            return Err(Invalid::Expired);
        }
        Ok(claims)
    }
}

/// The length of `header.payload` in `token`, whose last part is `signature`.
fn header_len(token: &str, signature: &str) -> usize {
    token.len() - signature.len() - 1
}

fn decode_json(part: &str) -> Result<Value, Invalid> {
    let bytes = B64.decode(part).map_err(|_| Invalid::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| Invalid::Malformed)
}

/// Equality whose time depends on the lengths only.
pub fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test cases 1, 2 and 6 (a key longer than the block).
        let case1 = hmac_sha256(&[0x0b; 20], &[b"Hi There"]);
        assert_eq!(
            hex::encode(case1),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        let case2 = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(case2),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let case6 = hmac_sha256(
            &[0xaa; 131],
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        assert_eq!(
            hex::encode(case6),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    const NOW: u64 = 1_700_000_000_000;

    fn forged(header: &str, payload: &Value, signature: &str) -> String {
        format!(
            "{}.{}.{signature}",
            B64.encode(header),
            B64.encode(payload.to_string())
        )
    }

    #[test]
    fn only_its_own_unexpired_hs256_tokens_pass() {
        let s = Signer::derive("secret");
        let claims = json!({"exp": 1_700_000_060u64, "user_name": "admin"});
        let token = s.sign(&claims);
        assert_eq!(s.verify(&token, NOW).unwrap()["user_name"], "admin");

        // Each input below would pass a check that skipped one step.
        let sig = token.rsplit('.').next().unwrap();
        let later = json!({"exp": 1_900_000_000u64, "user_name": "admin"});
        let edited = forged(HEADER, &later, sig);
        assert_eq!(s.verify(&edited, NOW), Err(Invalid::Signature));
        let none = forged(r#"{"alg":"none","typ":"JWT"}"#, &later, "");
        assert_eq!(s.verify(&none, NOW), Err(Invalid::Algorithm));
        let lower = forged(r#"{"alg":"hs256"}"#, &claims, sig);
        assert_eq!(s.verify(&lower, NOW), Err(Invalid::Algorithm));
        let crit = forged(r#"{"alg":"HS256","crit":["b64"]}"#, &claims, sig);
        assert_eq!(s.verify(&crit, NOW), Err(Invalid::Algorithm));
        let other_key = Signer::derive("another daemon").sign(&claims);
        assert_eq!(s.verify(&other_key, NOW), Err(Invalid::Signature));
        let bad_sig = forged(HEADER, &claims, &B64.encode([0u8; 32]));
        assert_eq!(s.verify(&bad_sig, NOW), Err(Invalid::Signature));
        let padded = format!("{token}=");
        assert_eq!(s.verify(&padded, NOW), Err(Invalid::Signature));
        assert_eq!(
            s.verify(&format!("{token}.x"), NOW),
            Err(Invalid::Malformed)
        );
        assert_eq!(s.verify("secret", NOW), Err(Invalid::Malformed));
        assert_eq!(s.verify("", NOW), Err(Invalid::Malformed));

        // Expiry: at `exp` and after, refused; a token without one too.
        assert_eq!(s.verify(&token, 1_700_000_060_000), Err(Invalid::Expired));
        assert!(s.verify(&token, 1_700_000_059_999).is_ok());
        let forever = s.sign(&json!({"user_name": "admin"}));
        assert_eq!(s.verify(&forever, NOW), Err(Invalid::Malformed));
        let text_exp = s.sign(&json!({"exp": "1900000000"}));
        assert_eq!(s.verify(&text_exp, NOW), Err(Invalid::Malformed));
    }
}
