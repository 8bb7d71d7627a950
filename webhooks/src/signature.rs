//! `VQ-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>[,v1=…]`, the
//! scheme Stripe uses ("Check the webhook signatures"): the timestamp is signed with the
//! body, so a captured delivery cannot be replayed later than the receiver's tolerance.
//! During a secret rotation's overlap every delivery carries one `v1` per live secret; a
//! receiver accepts the delivery when any of them matches a secret it holds.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const HEADER: &str = "VQ-Signature";

/// Hex HMAC-SHA256 of `"<t>.<body>"` under `secret` (its bytes, `whsec_` prefix included).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The header value for a delivery at `t`, one `v1` per secret (newest first).
pub fn header(secrets: &[&str], t: i64, body: &[u8]) -> String {
    let mut h = format!("t={t}");
    for s in secrets {
        h.push_str(",v1=");
        h.push_str(&sign(s, t, body));
    }
    h
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("the header has no t= timestamp")]
    NoTimestamp,
    #[error("the header has no v1= signature")]
    NoSignature,
    #[error("no v1 signature matches the secret")]
    Mismatch,
    #[error("the timestamp is {age_s} s away from now, beyond the tolerance")]
    Stale { age_s: i64 },
}

/// Checks a header against the body with one secret. `tolerance_s` bounds how far the
/// signed timestamp may be from `now` (0: not checked).
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_s: i64,
) -> Result<i64, VerifyError> {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.push(v.to_ascii_lowercase()),
            _ => {}
        }
    }
    let t = t.ok_or(VerifyError::NoTimestamp)?;
    if sigs.is_empty() {
        return Err(VerifyError::NoSignature);
    }
    let want = sign(secret, t, body);
    // Constant-time comparison of equal-length hex strings.
    let matches = |s: &String| {
        s.len() == want.len()
            && s.bytes()
                .zip(want.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    };
    if !sigs.iter().any(matches) {
        return Err(VerifyError::Mismatch);
    }
    if tolerance_s > 0 && (now - t).abs() > tolerance_s {
        return Err(VerifyError::Stale { age_s: now - t });
    }
    Ok(t)
}

/// A fresh signing secret: `whsec_` and 32 random bytes in hex.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("whsec_{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_matches_a_known_vector() {
        // echo -n '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'whsec_test'
        let s = sign("whsec_test", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            s,
            "38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
        assert_ne!(s, sign("whsec_test", 1_700_000_001, br#"{"a":1}"#));
        assert_ne!(s, sign("whsec_other", 1_700_000_000, br#"{"a":1}"#));
    }

    #[test]
    fn verification_accepts_any_current_secret_and_refuses_the_rest() {
        let body = br#"{"id":"x"}"#;
        let h = header(&["whsec_new", "whsec_old"], 1000, body);
        assert_eq!(h.matches("v1=").count(), 2);
        assert_eq!(verify("whsec_new", &h, body, 1000, 300), Ok(1000));
        assert_eq!(verify("whsec_old", &h, body, 1100, 300), Ok(1000));
        assert_eq!(
            verify("whsec_else", &h, body, 1000, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("whsec_new", &h, b"{\"id\":\"y\"}", 1000, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("whsec_new", &h, body, 1301, 300),
            Err(VerifyError::Stale { age_s: 301 })
        );
        assert_eq!(verify("whsec_new", &h, body, 99_999, 0), Ok(1000));
        assert_eq!(
            verify("whsec_new", "v1=ab", body, 0, 0),
            Err(VerifyError::NoTimestamp)
        );
        assert_eq!(
            verify("whsec_new", "t=5", body, 0, 0),
            Err(VerifyError::NoSignature)
        );
    }

    #[test]
    fn secrets_are_fresh_and_long() {
        let (a, b) = (new_secret(), new_secret());
        assert!(a.starts_with("whsec_") && a.len() == 6 + 64);
        assert_ne!(a, b);
    }
}
