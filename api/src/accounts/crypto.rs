//! Secrets at rest: AES-256-GCM for personal data, HMAC-SHA256 for the e-mail lookup
//! hash and stored verification codes, argon2id for passwords (on the threads of the
//! process-wide gate, never on the runtime that serves the hot purchase path, and only
//! with a [`Permit`], so a burst cannot exhaust memory).

use super::gate::Permit;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use vq_core::account::{Email, Password};
use vq_core::config::Secret;

/// Format version of a ciphertext (first byte), so the key can be rotated later.
const V1: u8 = 1;
const NONCE: usize = 12;

fn key_bytes(name: &str, secret: &Secret, exact: Option<usize>) -> anyhow::Result<Vec<u8>> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(secret.expose().trim())
        .map_err(|_| anyhow::anyhow!("auth.{name} must be base64"))?;
    match exact {
        Some(n) if raw.len() != n => anyhow::bail!("auth.{name} must decode to {n} bytes"),
        None if raw.len() < 32 => anyhow::bail!("auth.{name} must decode to at least 32 bytes"),
        _ => Ok(raw),
    }
}

/// Encrypts personal data. Each value gets a random 96-bit nonce, stored in front of the
/// ciphertext; the row id and column name are bound in as associated data, so a value
/// copied into another row or column fails to decrypt instead of being shown.
#[derive(Clone)]
pub struct PiiCipher {
    aead: Aes256Gcm,
}

impl PiiCipher {
    pub fn new(key: &Secret) -> anyhow::Result<Self> {
        let k = key_bytes("pii_key", key, Some(32))?;
        Ok(PiiCipher {
            aead: Aes256Gcm::new_from_slice(&k).map_err(|_| anyhow::anyhow!("bad key"))?,
        })
    }

    pub fn seal(&self, plaintext: &str, aad: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = self
            .aead
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of a short value");
        let mut out = Vec::with_capacity(1 + NONCE + ct.len());
        out.push(V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(&self, sealed: &[u8], aad: &str) -> anyhow::Result<String> {
        if sealed.len() < 1 + NONCE || sealed[0] != V1 {
            anyhow::bail!("unknown ciphertext format");
        }
        let (nonce, ct) = sealed[1..].split_at(NONCE);
        let pt = self
            .aead
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| anyhow::anyhow!("ciphertext does not authenticate"))?;
        Ok(String::from_utf8(pt)?)
    }
}

/// Keyed hashes: equal inputs give equal outputs (so they can be looked up), but without
/// the key nobody can confirm a guessed e-mail or brute-force a 6-digit code.
#[derive(Clone)]
pub struct Hasher {
    key: Vec<u8>,
}

impl Hasher {
    pub fn new(key: &Secret) -> anyhow::Result<Self> {
        Ok(Hasher {
            key: key_bytes("email_hash_key", key, None)?,
        })
    }

    fn mac(&self, parts: &[&[u8]]) -> Vec<u8> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        for p in parts {
            m.update(&(p.len() as u32).to_be_bytes());
            m.update(p);
        }
        m.finalize().into_bytes().to_vec()
    }

    pub fn email(&self, email: &Email) -> Vec<u8> {
        self.mac(&[b"email", email.as_str().as_bytes()])
    }

    /// Hash of a verification code, bound to the address it was sent to.
    pub fn code(&self, email: &Email, code: &str) -> String {
        hex::encode(self.mac(&[b"code", email.as_str().as_bytes(), code.as_bytes()]))
    }
}

/// Refresh tokens are 256 random bits, so a plain SHA-256 is enough to store them.
pub fn new_refresh_token() -> (String, Vec<u8>) {
    let mut raw = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut raw);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let hash = refresh_hash(&token);
    (token, hash)
}

pub fn refresh_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// argon2id (library defaults: 19 MiB, 2 passes) with a random salt, in PHC format.
pub async fn hash_password(pw: Password, permit: Permit) -> anyhow::Result<String> {
    permit
        .run(move || {
            let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
            Argon2::default()
                .hash_password(pw.expose().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("argon2: {e}"))
        })
        .await?
}

/// Checks a password against a PHC hash. With `None` (unknown account) it still does
/// the same work against a dummy hash, so timing does not reveal which e-mails exist.
pub async fn verify_password(
    candidate: String,
    phc: Option<String>,
    permit: Permit,
) -> anyhow::Result<bool> {
    permit
        .run(move || {
            let known = phc.is_some();
            let phc = phc.unwrap_or_else(dummy_hash);
            let parsed =
                PasswordHash::new(&phc).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
            let ok = Argon2::default()
                .verify_password(candidate.as_bytes(), &parsed)
                .is_ok();
            Ok(ok && known)
        })
        .await?
}

fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
            Argon2::default()
                .hash_password(b"no account has this password", &salt)
                .expect("argon2")
                .to_string()
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Secret {
        let mut k = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut k);
        Secret::new(base64::engine::general_purpose::STANDARD.encode(k))
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let c = PiiCipher::new(&key()).unwrap();
        let a = c.seal("Ann Lee", "u1:name");
        let b = c.seal("Ann Lee", "u1:name");
        assert_ne!(a, b, "fresh nonce per value");
        assert_eq!(c.open(&a, "u1:name").unwrap(), "Ann Lee");
        assert!(c.open(&a, "u2:name").is_err());
        assert!(PiiCipher::new(&key()).unwrap().open(&a, "u1:name").is_err());
        assert!(PiiCipher::new(&Secret::new("c2hvcnQ=")).is_err());
        assert!(PiiCipher::new(&Secret::new("not base64!")).is_err());
    }

    #[test]
    fn keyed_hashes_depend_on_the_key() {
        let (k1, k2) = (key(), key());
        let e = Email::parse("a@b.co").unwrap();
        assert_eq!(
            Hasher::new(&k1).unwrap().email(&e),
            Hasher::new(&k1).unwrap().email(&e)
        );
        assert_ne!(
            Hasher::new(&k1).unwrap().email(&e),
            Hasher::new(&k2).unwrap().email(&e)
        );
        let h = Hasher::new(&k1).unwrap();
        assert_ne!(h.code(&e, "123456"), h.code(&e, "123457"));
    }

    #[tokio::test]
    async fn argon2id_round_trip_and_unknown_accounts_never_match() {
        let gate = super::super::gate::Argon2Gate::per_core();
        let pw = Password::parse("correct horse 9").unwrap();
        let phc = hash_password(pw, gate.enter().await.unwrap())
            .await
            .unwrap();
        assert!(phc.starts_with("$argon2id$"));
        let right = "correct horse 9".to_string();
        let p = gate.enter().await.unwrap();
        assert!(verify_password(right, Some(phc.clone()), p).await.unwrap());
        let p = gate.enter().await.unwrap();
        assert!(!verify_password("wrong horse 99".into(), Some(phc), p)
            .await
            .unwrap());
        let dummy_pw = "no account has this password".to_string();
        let p = gate.enter().await.unwrap();
        assert!(!verify_password(dummy_pw, None, p).await.unwrap());
    }
}
