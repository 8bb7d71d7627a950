//! E-mail verification codes in Redis: only a keyed hash of the code is stored, with its
//! expiry and a try counter. Checking is one Lua call, so concurrent guesses cannot both
//! pass the try limit and a correct code is burnt by the call that accepts it.

use super::crypto::Hasher;
use redis::Script;
use vq_core::account::{Email, EmailCode};
use vq_core::{Clock, Keys, RedisConn};

const STORE: &str = r#"
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'exp', now + tonumber(ARGV[2]), 'tries', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
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

    /// Stores a fresh code for the address, replacing (and so killing) any earlier one.
    pub async fn issue(
        &self,
        conn: &mut RedisConn,
        keys: &Keys,
        hasher: &Hasher,
        clock: &Clock,
        email: &Email,
    ) -> redis::RedisResult<EmailCode> {
        let code = EmailCode::random();
        let key = keys.email_code(&hex::encode(hasher.email(email)));
        let _: i64 = self
            .store
            .key(key)
            .arg(hasher.code(email, code.as_str()))
            .arg(self.ttl_ms)
            .arg(clock.argv())
            .invoke_async(conn)
            .await?;
        Ok(code)
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
