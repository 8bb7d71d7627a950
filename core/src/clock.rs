//! Time source for the Lua scripts.
//!
//! In production every script reads the Redis server clock (`TIME`), so several admission
//! processes on different hosts agree on one clock and the rate window stays exact. Tests
//! inject a manual clock to run TTLs and windows without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// Scripts use the Redis server clock.
    #[default]
    Redis,
    /// Scripts use this value (milliseconds since the epoch).
    Manual(Arc<AtomicI64>),
}

impl Clock {
    pub fn manual(start_ms: i64) -> Self {
        Clock::Manual(Arc::new(AtomicI64::new(start_ms)))
    }

    /// The ARGV value the scripts expect: the time in ms, or "" for the Redis clock.
    pub fn argv(&self) -> String {
        match self {
            Clock::Redis => String::new(),
            Clock::Manual(t) => t.load(Ordering::SeqCst).to_string(),
        }
    }

    /// Best local estimate of "now" in ms (for responses such as ETA and phase).
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::Redis => chrono::Utc::now().timestamp_millis(),
            Clock::Manual(t) => t.load(Ordering::SeqCst),
        }
    }

    pub fn advance(&self, ms: i64) {
        if let Clock::Manual(t) = self {
            t.fetch_add(ms, Ordering::SeqCst);
        }
    }

    pub fn set(&self, ms: i64) {
        if let Clock::Manual(t) = self {
            t.store(ms, Ordering::SeqCst);
        }
    }
}

/// A millisecond timestamp as clients see it: RFC 3339 in UTC with milliseconds
/// (empty if out of range).
pub fn rfc3339(ms: i64) -> String {
    use chrono::{TimeZone, Utc};
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}
