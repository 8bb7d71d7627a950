//! Account security (tokens, PII keys, codes) and the outgoing mail relay.

use super::Secret;
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Auth {
    /// HS256 key for access tokens. No default: a server without one refuses to start.
    pub jwt_secret: Option<Secret>,
    /// AES-256-GCM key (base64 of 32 bytes) for name, address, phone and e-mail at rest.
    /// No default: without it the account endpoints answer 503 and no account is stored.
    pub pii_key: Option<Secret>,
    /// HMAC-SHA256 key (base64, at least 32 bytes) for the e-mail lookup hash and the
    /// stored verification codes. Required together with `pii_key`.
    pub email_hash_key: Option<Secret>,
    pub access_ttl_s: i64,
    pub refresh_ttl_s: i64,
    /// Absolute session lifetime from login: refreshing never extends a session past it.
    pub session_max_s: i64,
    /// Lifetime of an e-mailed verification code.
    pub code_ttl_s: i64,
    /// Wrong guesses after which a code is dead.
    pub code_max_tries: u32,
}

/// Outgoing mail (verification codes). `starttls = false` is for a relay on loopback.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub from: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub starttls: bool,
    pub timeout_ms: u64,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            jwt_secret: None,
            pii_key: None,
            email_hash_key: None,
            access_ttl_s: 900,
            refresh_ttl_s: 30 * 86_400,
            session_max_s: 30 * 86_400,
            code_ttl_s: 300,
            code_max_tries: 5,
        }
    }
}

impl Default for Smtp {
    fn default() -> Self {
        Smtp {
            host: "127.0.0.1".into(),
            port: 25,
            from: "VitaQueue <no-reply@vitaqueue.local>".into(),
            username: None,
            password: None,
            starttls: false,
            timeout_ms: 10_000,
        }
    }
}
