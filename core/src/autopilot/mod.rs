//! Autopilot admission: the drop's rate follows the checkout's health.
//!
//! `law` is the control law (pure: signals in, rate and reason out), `sketch` the
//! fleet-wide purchase latency histogram, `signals` reads a drop's signals from Redis and
//! applies a decision through lua/rate.lua (one decision per drop per interval fleet-wide,
//! under a `SET NX PX` lease; the script only writes a rate computed from the rate it still
//! holds, so a manager's change in between wins). See docs/autopilot.md.

pub mod law;
pub mod signals;
pub mod sketch;

pub use law::{decide, Decision, Inputs, Reason};

use serde::{Deserialize, Serialize};

/// A drop's autopilot setting (the manager API's `autopilot` object).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Setting {
    pub min_rate: u32,
    pub max_rate: u32,
    /// Target purchase p99 in ms (default 200).
    pub purchase_p99_ms: u32,
    /// Target order lag in seconds: the age of the oldest purchase not yet written to
    /// PostgreSQL (default 5).
    pub order_lag_s: u32,
}

pub const DEFAULT_P99_MS: u32 = 200;
pub const DEFAULT_LAG_S: u32 = 5;

impl Setting {
    /// The rate the autopilot starts from: the manager's rate, inside the band.
    pub fn start_rate(&self, manager_rate: u32) -> u32 {
        manager_rate.clamp(self.min_rate, self.max_rate.max(self.min_rate))
    }
}

/// One recorded rate change (`GET /v1/admin/drops/{id}/history`, `rate_changes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RateChange {
    pub t_ms: i64,
    pub old: u32,
    pub new: u32,
    pub reason: Reason,
}

pub use crate::scripts::RATE_LOG_CAP as LOG_CAP;
