//! Start-up check of the keys: a short or empty key is refused before anything listens.
//! An empty `VQ_AUTH__JWT_SECRET=` once started a server whose tokens anyone could
//! forge; a 32-byte floor keeps HS256 and the HMAC keys out of brute-force reach.

use super::{Auth, Secret};

/// Fewest bytes a key may have (the JWT secret as given, the others once base64-decoded).
pub const MIN_KEY_BYTES: usize = 32;

/// Every configured key is long enough; the JWT secret is mandatory. The PII and
/// e-mail-hash keys may both be absent (accounts are then off), but a key that is set
/// and empty is a mistake, not "off".
pub fn check_secrets(auth: &Auth) -> anyhow::Result<()> {
    check_jwt_secret(auth)?;
    check_data_keys(auth)
}

pub fn check_jwt_secret(auth: &Auth) -> anyhow::Result<()> {
    let jwt = auth.jwt_secret.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "auth.jwt_secret (VQ_AUTH__JWT_SECRET) must be set to at least {MIN_KEY_BYTES} bytes"
        )
    })?;
    if jwt.expose().len() < MIN_KEY_BYTES {
        anyhow::bail!(
            "auth.jwt_secret (VQ_AUTH__JWT_SECRET) is {} bytes; it must be at least {MIN_KEY_BYTES} bytes",
            jwt.expose().len()
        );
    }
    Ok(())
}

/// The PII and e-mail-hash keys, where set (roles without tokens need only these).
pub fn check_data_keys(auth: &Auth) -> anyhow::Result<()> {
    check_key("pii_key", "VQ_AUTH__PII_KEY", auth.pii_key.as_ref())?;
    check_key(
        "email_hash_key",
        "VQ_AUTH__EMAIL_HASH_KEY",
        auth.email_hash_key.as_ref(),
    )
}

fn check_key(name: &str, env: &str, key: Option<&Secret>) -> anyhow::Result<()> {
    use base64::Engine;
    let Some(key) = key else { return Ok(()) };
    let decoded = base64::engine::general_purpose::STANDARD.decode(key.expose().trim());
    match decoded {
        Ok(raw) if raw.len() >= MIN_KEY_BYTES => Ok(()),
        Ok(raw) => anyhow::bail!(
            "auth.{name} ({env}) decodes to {} bytes; it must be base64 of at least {MIN_KEY_BYTES} bytes",
            raw.len()
        ),
        Err(_) => anyhow::bail!(
            "auth.{name} ({env}) must be base64 of at least {MIN_KEY_BYTES} bytes"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(n: usize) -> Secret {
        use base64::Engine;
        Secret::new(base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]))
    }

    fn auth(jwt: Option<&str>, pii: Option<Secret>, hash: Option<Secret>) -> Auth {
        Auth {
            jwt_secret: jwt.map(Secret::new),
            pii_key: pii,
            email_hash_key: hash,
            ..Auth::default()
        }
    }

    #[test]
    fn short_or_empty_keys_are_refused_with_their_name() {
        let long = "x".repeat(32);
        assert!(check_secrets(&auth(Some(&long), Some(b64(32)), Some(b64(32)))).is_ok());
        assert!(check_secrets(&auth(Some(&long), None, None)).is_ok());
        let cases = [
            (auth(None, None, None), "auth.jwt_secret"),
            (auth(Some(""), None, None), "auth.jwt_secret"),
            (auth(Some(&"x".repeat(31)), None, None), "is 31 bytes"),
            (
                auth(Some(&long), Some(Secret::new("")), None),
                "auth.pii_key",
            ),
            (
                auth(Some(&long), Some(b64(16)), None),
                "decodes to 16 bytes",
            ),
            (
                auth(Some(&long), None, Some(b64(31))),
                "auth.email_hash_key",
            ),
            (
                auth(Some(&long), Some(Secret::new("not base64!")), None),
                "must be base64",
            ),
        ];
        for (a, needle) in cases {
            let e = check_secrets(&a).unwrap_err().to_string();
            assert!(e.contains(needle), "{e:?} should mention {needle:?}");
            assert!(e.contains("32"), "{e:?} should give the minimum");
        }
    }
}
