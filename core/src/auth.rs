//! Access tokens: HS256 JWTs with subject, role, expiry, not-before, issuer, audience
//! and a unique `jti`. Issuer and audience are fixed and checked, so a token minted for
//! another service that happens to share the key is not accepted here. The `jti` is
//! what logout and refresh-reuse detection revoke (a Redis key checked per request by
//! the api); refresh tokens and accounts live in the api's `accounts` module.

use crate::config::Secret;
use crate::domain::UserId;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use ring::hmac;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Shopper,
    Manager,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Shopper => "shopper",
            Role::Manager => "manager",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "shopper" => Some(Role::Shopper),
            "manager" => Some(Role::Manager),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: uuid::Uuid,
    pub role: Role,
    pub exp: i64,
    pub nbf: i64,
    pub iss: String,
    pub aud: String,
    pub jti: uuid::Uuid,
    /// When the account was created (unix s), for the proof of work's price: tokens issued
    /// at login carry it; tokens the server issues without an account do not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acct: Option<i64>,
}

/// Who issues access tokens (`iss`) and who they are for (`aud`).
pub const ISSUER: &str = "vitaqueue";
pub const AUDIENCE: &str = "vitaqueue-api";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub user: UserId,
    pub role: Role,
    /// The account's creation time (unix s), when the token says.
    pub account_created: Option<i64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid or expired token")]
    Invalid,
}

/// Signing and verification keys, built once from the configured secret. The verifying
/// HMAC is keyed once here (ring keeps the inner and outer key states), so a request
/// hashes only its token, not the key again (see [`JwtKeys::verify_claims`]).
#[derive(Clone)]
pub struct JwtKeys {
    enc: EncodingKey,
    mac: hmac::Key,
}

/// The only header field checked: the algorithm must be HS256 (no `none`, no other).
#[derive(Deserialize)]
struct JwtHeader<'a> {
    #[serde(borrow)]
    alg: std::borrow::Cow<'a, str>,
}

impl JwtKeys {
    pub fn new(secret: &Secret) -> Self {
        JwtKeys {
            enc: EncodingKey::from_secret(secret.expose().as_bytes()),
            mac: hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes()),
        }
    }

    pub fn issue(&self, user: UserId, role: Role, ttl_s: i64) -> String {
        self.sign(&Claims::new(user, role, ttl_s))
    }

    pub fn sign(&self, claims: &Claims) -> String {
        encode(&Header::new(Algorithm::HS256), claims, &self.enc).expect("HS256 encoding")
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        self.verify_claims(token).map(|c| c.principal())
    }

    /// Signature and expiry check; revocation is the caller's (it needs Redis).
    ///
    /// The checks of `jsonwebtoken::decode` with HS256 only, no leeway, `nbf` validated,
    /// issuer and audience fixed, every claim required (the `Claims` type has no optional
    /// field), done directly: three base64url segments, a constant-time HMAC-SHA256 check
    /// of `header.payload` first, then the header's `alg`, then the claims parsed once.
    /// It runs on every request, and the generic path parsed the claims twice and built
    /// its validation sets and HMAC key anew each time.
    pub fn verify_claims(&self, token: &str) -> Result<Claims, AuthError> {
        fn bad<E>(_: E) -> AuthError {
            AuthError::Invalid
        }
        let (signed, sig) = token.rsplit_once('.').ok_or(AuthError::Invalid)?;
        let (header, payload) = signed.split_once('.').ok_or(AuthError::Invalid)?;
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(bad)?;
        hmac::verify(&self.mac, signed.as_bytes(), &sig).map_err(bad)?;
        let header = URL_SAFE_NO_PAD.decode(header).map_err(bad)?;
        let h: JwtHeader = serde_json::from_slice(&header).map_err(bad)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(bad)?;
        let c: Claims = serde_json::from_slice(&payload).map_err(bad)?;
        let now = chrono::Utc::now().timestamp();
        let valid = h.alg == "HS256"
            && c.exp >= now
            && c.nbf <= now
            && c.iss == ISSUER
            && c.aud == AUDIENCE;
        valid.then_some(c).ok_or(AuthError::Invalid)
    }
}

impl Claims {
    /// Fresh claims with a new random `jti`, valid from now and expiring `ttl_s` later.
    pub fn new(user: UserId, role: Role, ttl_s: i64) -> Self {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: user.0,
            role,
            exp: now + ttl_s,
            nbf: now,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            jti: uuid::Uuid::new_v4(),
            acct: None,
        }
    }

    pub fn principal(&self) -> Principal {
        Principal {
            user: UserId(self.sub),
            role: self.role,
            account_created: self.acct,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_forgeries_fail() {
        let keys = JwtKeys::new(&Secret::new("k1".repeat(16)));
        let other = JwtKeys::new(&Secret::new("k2".repeat(16)));
        let user = UserId(uuid::Uuid::new_v4());
        let t = keys.issue(user, Role::Manager, 60);
        assert_eq!(
            keys.verify(&t),
            Ok(Principal {
                user,
                role: Role::Manager,
                account_created: None,
            })
        );
        assert_eq!(other.verify(&t), Err(AuthError::Invalid));
        assert_eq!(keys.verify("garbage"), Err(AuthError::Invalid));
        let c = Claims::new(user, Role::Shopper, 60);
        assert_eq!(keys.verify_claims(&keys.sign(&c)).unwrap().jti, c.jti);
        let expired = keys.issue(user, Role::Shopper, -10);
        assert_eq!(keys.verify(&expired), Err(AuthError::Invalid));
    }

    #[test]
    fn wrong_audience_issuer_or_a_future_nbf_is_refused() {
        let keys = JwtKeys::new(&Secret::new("k".repeat(32)));
        let user = UserId(uuid::Uuid::new_v4());
        let good = Claims::new(user, Role::Shopper, 60);
        assert!(keys.verify(&keys.sign(&good)).is_ok());
        let wrong_aud = Claims {
            aud: "another-service".into(),
            ..good.clone()
        };
        let wrong_iss = Claims {
            iss: "someone-else".into(),
            ..good.clone()
        };
        let later = Claims {
            nbf: good.nbf + 120,
            ..good.clone()
        };
        for c in [wrong_aud, wrong_iss, later] {
            assert_eq!(
                keys.verify(&keys.sign(&c)),
                Err(AuthError::Invalid),
                "{c:?}"
            );
        }
        // A token without the claims at all (an older or foreign format) is refused too.
        let bare =
            serde_json::json!({"sub": user.0, "role": "shopper", "exp": good.exp, "jti": good.jti});
        let t = encode(&Header::new(Algorithm::HS256), &bare, &keys.enc).unwrap();
        assert_eq!(keys.verify(&t), Err(AuthError::Invalid));
    }

    /// The direct check agrees with `jsonwebtoken::decode` (the generic validator it
    /// replaced) on good tokens and on every forgery here: another algorithm named in the
    /// header, `none`, a payload swapped under a valid signature, extra segments.
    #[test]
    fn direct_verification_agrees_with_jsonwebtoken_on_forgeries() {
        use jsonwebtoken::{decode, DecodingKey, Validation};
        let secret = Secret::new("s".repeat(32));
        let keys = JwtKeys::new(&secret);
        let user = UserId(uuid::Uuid::new_v4());
        let good = keys.issue(user, Role::Shopper, 60);
        let other = keys.issue(UserId(uuid::Uuid::new_v4()), Role::Manager, 60);
        let parts: Vec<&str> = good.split('.').collect();
        let other_payload = other.split('.').nth(1).unwrap();
        let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let signed_as = |header: &str| {
            let signed = format!("{}.{}", b64(header), parts[1]);
            let tag = hmac::sign(&keys.mac, signed.as_bytes());
            format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
        };
        let forged = [
            signed_as(r#"{"alg":"HS512","typ":"JWT"}"#),
            format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), parts[1]),
            format!("{}.{other_payload}.{}", parts[0], parts[2]),
            format!("{good}.{}", parts[2]),
            format!("{}.{}", parts[0], parts[1]),
            good.replace('.', ""),
        ];
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 0;
        v.validate_nbf = true;
        v.set_issuer(&[ISSUER]);
        v.set_audience(&[AUDIENCE]);
        v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        let dec = DecodingKey::from_secret(secret.expose().as_bytes());
        let theirs = |t: &str| decode::<Claims>(t, &dec, &v).is_ok();
        assert!(theirs(&good) && keys.verify_claims(&good).is_ok());
        assert!(keys
            .verify_claims(&signed_as(r#"{"typ":"JWT","alg":"HS256"}"#))
            .is_ok());
        for t in &forged {
            assert!(!theirs(t), "jsonwebtoken refuses {t}");
            assert_eq!(keys.verify_claims(t).err(), Some(AuthError::Invalid), "{t}");
        }
    }
}
