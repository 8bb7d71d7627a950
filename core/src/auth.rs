//! Minimal access-token check (HS256 JWT with subject and role). Accounts, refresh
//! tokens and revocation come with the accounts issue; this is the boundary they plug into.

use crate::config::Secret;
use crate::domain::UserId;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Shopper,
    Manager,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: uuid::Uuid,
    pub role: Role,
    pub exp: i64,
    pub jti: uuid::Uuid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub user: UserId,
    pub role: Role,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid or expired token")]
    Invalid,
}

/// Signing and verification keys, built once from the configured secret.
#[derive(Clone)]
pub struct JwtKeys {
    enc: EncodingKey,
    dec: DecodingKey,
}

impl JwtKeys {
    pub fn new(secret: &Secret) -> Self {
        JwtKeys {
            enc: EncodingKey::from_secret(secret.expose().as_bytes()),
            dec: DecodingKey::from_secret(secret.expose().as_bytes()),
        }
    }

    pub fn issue(&self, user: UserId, role: Role, ttl_s: i64) -> String {
        let claims = Claims {
            sub: user.0,
            role,
            exp: chrono::Utc::now().timestamp() + ttl_s,
            jti: uuid::Uuid::new_v4(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.enc).expect("HS256 encoding")
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 0;
        let data = decode::<Claims>(token, &self.dec, &v).map_err(|_| AuthError::Invalid)?;
        Ok(Principal {
            user: UserId(data.claims.sub),
            role: data.claims.role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_forgeries_fail() {
        let keys = JwtKeys::new(&Secret::new("k1"));
        let other = JwtKeys::new(&Secret::new("k2"));
        let user = UserId(uuid::Uuid::new_v4());
        let t = keys.issue(user, Role::Manager, 60);
        assert_eq!(
            keys.verify(&t),
            Ok(Principal {
                user,
                role: Role::Manager
            })
        );
        assert_eq!(other.verify(&t), Err(AuthError::Invalid));
        assert_eq!(keys.verify("garbage"), Err(AuthError::Invalid));
        let expired = keys.issue(user, Role::Shopper, -10);
        assert_eq!(keys.verify(&expired), Err(AuthError::Invalid));
    }
}
