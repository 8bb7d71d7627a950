//! Order lifecycle timing and the simulated payment provider.

use serde::Deserialize;

/// Order lifecycle timing (seconds). D+1 shipping and D+2 delivery by default.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Orders {
    /// Unpaid reservations expire (and restock) after this long.
    pub payment_ttl_s: u64,
    pub ship_after_s: u64,
    pub deliver_after_s: u64,
    /// A delivered order may be returned within this window.
    pub return_window_s: u64,
    /// A requested return is received (and restocked) after this long.
    pub return_process_s: u64,
    pub scheduler_tick_ms: u64,
}

/// The simulated payment provider, and the simulated buyers that pay (or not) by themselves.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Payment {
    /// Share of charges the provider declines (0..1).
    pub failure_rate: f64,
    pub latency_ms: u64,
    /// When true, the scheduler pays new orders itself, as simulated buyers would.
    pub autopay: bool,
    /// Share of auto-paid orders whose buyer walks away (they expire and restock).
    pub abandon_rate: f64,
}

impl Default for Orders {
    fn default() -> Self {
        Orders {
            payment_ttl_s: 600,
            ship_after_s: 86_400,
            deliver_after_s: 86_400,
            return_window_s: 14 * 86_400,
            return_process_s: 86_400,
            scheduler_tick_ms: 1000,
        }
    }
}

impl Default for Payment {
    fn default() -> Self {
        Payment {
            failure_rate: 0.0,
            latency_ms: 0,
            autopay: false,
            abandon_rate: 0.0,
        }
    }
}
