//! E-mail verification codes in Redis: a keyed hash of the code (what checking compares),
//! the code sealed with the PII key (so a resend can mail the live code again instead of
//! replacing it), its expiry and a try counter. Checking is one Lua call, so concurrent
//! guesses cannot both pass the try limit and a correct code is burnt by the call that
//! accepts it. Were a request to replace the code, each one would reset the tries and
//! let a flood of requests plus guesses wear the code down.

use super::crypto::{Hasher, PiiCipher};
use crate::error::{ApiError, Parts, Rejection};
use axum::http::StatusCode;
use base64::Engine;
use redis::Script;
use serde_json::json;
use vq_core::account::{Email, EmailCode};
use vq_core::{Clock, Keys, RedisConn};

/// KEYS[1] the code; ARGV: code hash, ttl ms, now ('' = Redis clock), sealed code (base64).
/// Returns the sealed code that is live afterwards: the earlier one while it lives,
/// else the new one (stored with a fresh try counter).
const STORE: &str = r#"
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local live = redis.call('HMGET', KEYS[1], 'exp', 'sealed')
if live[1] and live[2] and tonumber(live[1]) > now then
  return live[2]
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'exp', now + tonumber(ARGV[2]), 'tries', 0,
  'sealed', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return ARGV[4]
"#;

const CHECK: &str = r#"
local v = redis.call('HMGET', KEYS[1], 'h', 'exp')
if not v[1] then return {'missing', 0} end
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
if now >= tonumber(v[2]) then
  redis.call('DEL', KEYS[1])
  return {'expired', 0}
end
local tries = redis.call('HINCRBY', KEYS[1], 'tries', 1)
if v[1] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return {'ok', 0}
end
local left = tonumber(ARGV[2]) - tries
if left <= 0 then redis.call('DEL', KEYS[1]) end
return {'wrong', left}
"#;

/// Why a code was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeReject {
    /// Wrong code; this many tries are left before the code is dead.
    Wrong { tries_left: u32 },
    /// No live code: never sent, expired, used, or out of tries.
    Gone,
}

/// How a refused code shows up over HTTP: this domain maps its own error, so `error/`
/// needs no import of accounts.
impl Rejection for CodeReject {
    fn parts(&self) -> Parts {
        match self {
            CodeReject::Wrong { tries_left } => Parts::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_code",
                "the e-mail code is wrong",
            )
            .details(json!({ "tries_left": tries_left })),
            CodeReject::Gone => Parts::new(
                StatusCode::GONE,
                "code_expired",
                "no valid code for this e-mail (expired, used or too many tries): request a new one",
            ),
        }
    }
}

impl From<CodeReject> for ApiError {
    fn from(r: CodeReject) -> Self {
        ApiError::Rejected(r.parts())
    }
}

pub struct Codes {
    store: Script,
    check: Script,
    ttl_ms: i64,
    max_tries: u32,
}

impl Codes {
    pub fn new(ttl_s: i64, max_tries: u32) -> Self {
        Codes {
            store: Script::new(STORE),
            check: Script::new(CHECK),
            ttl_ms: ttl_s.max(1) * 1000,
            max_tries: max_tries.max(1),
        }
    }

    /// The live code of the address, or a fresh one when none lives.
    pub async fn issue(
        &self,
        conn: &mut RedisConn,
        keys: &Keys,
        hasher: &Hasher,
        cipher: &PiiCipher,
        clock: &Clock,
        email: &Email,
    ) -> Result<EmailCode, crate::error::ApiError> {
        let code = EmailCode::random();
        let id = hex::encode(hasher.email(email));
        let aad = format!("email-code:{id}");
        let b64 = base64::engine::general_purpose::STANDARD;
        let sealed: String = self
            .store
            .key(keys.email_code(&id))
            .arg(hasher.code(email, code.as_str()))
            .arg(self.ttl_ms)
            .arg(clock.argv())
            .arg(b64.encode(cipher.seal(code.as_str(), &aad)))
            .invoke_async(conn)
            .await?;
        let sealed = b64.decode(sealed).map_err(anyhow::Error::from)?;
        let live = cipher.open(&sealed, &aad)?;
        EmailCode::parse(&live)
            .map_err(|e| crate::error::ApiError::Internal(anyhow::anyhow!("stored code: {e}")))
    }

    /// Checks and, on success, burns the code (one try counted either way).
    pub async fn verify(
        &self,
        conn: &mut RedisConn,
        keys: &Keys,
        hasher: &Hasher,
        clock: &Clock,
        email: &Email,
        code: &EmailCode,
    ) -> redis::RedisResult<Result<(), CodeReject>> {
        let key = keys.email_code(&hex::encode(hasher.email(email)));
        let (outcome, left): (String, i64) = self
            .check
            .key(key)
            .arg(hasher.code(email, code.as_str()))
            .arg(self.max_tries)
            .arg(clock.argv())
            .invoke_async(conn)
            .await?;
        Ok(match outcome.as_str() {
            "ok" => Ok(()),
            "wrong" if left > 0 => Err(CodeReject::Wrong {
                tries_left: left as u32,
            }),
            _ => Err(CodeReject::Gone),
        })
    }
}
