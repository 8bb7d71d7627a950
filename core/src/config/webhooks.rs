//! Webhook delivery: retries, bounds and the address policy (see docs/webhooks.md).

use super::duration::millis_or_unit;
use serde::Deserialize;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Webhooks {
    /// Targets resolving to loopback, private, link-local (or otherwise non-public)
    /// addresses are refused at registration and again at every delivery (DNS rebinding).
    /// Tests, which receive on 127.0.0.1, switch this on.
    pub allow_private: bool,
    /// First retry delay, doubled on each further try (with jitter).
    #[serde(deserialize_with = "millis_or_unit")]
    pub retry_base_ms: Duration,
    /// Longest delay between two tries.
    #[serde(deserialize_with = "millis_or_unit")]
    pub retry_max: Duration,
    /// A delivery still failing this long after its event was queued is given up.
    #[serde(deserialize_with = "millis_or_unit")]
    pub max_age: Duration,
    /// An endpoint failing without a success for this long is disabled (console notice).
    #[serde(deserialize_with = "millis_or_unit")]
    pub disable_after: Duration,
    /// A 2xx within this counts as delivered; anything later is a failure.
    #[serde(deserialize_with = "millis_or_unit")]
    pub timeout: Duration,
    /// How often an idle worker looks for due deliveries.
    #[serde(deserialize_with = "millis_or_unit")]
    pub poll: Duration,
    /// Deliveries in flight per worker process, all endpoints together.
    pub max_in_flight: usize,
    /// Deliveries in flight per endpoint (its slot): a slow receiver holds only these.
    pub per_endpoint: usize,
    /// Endpoints that may be registered in total.
    pub max_endpoints: i64,
    /// Most bytes of a receiver's answer read (kept for the attempt log).
    pub max_response_bytes: usize,
}

impl Default for Webhooks {
    fn default() -> Self {
        Webhooks {
            allow_private: false,
            retry_base_ms: Duration::from_secs(1),
            retry_max: Duration::from_secs(3600),
            max_age: Duration::from_secs(24 * 3600),
            disable_after: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(10),
            poll: Duration::from_millis(200),
            max_in_flight: 64,
            per_endpoint: 4,
            max_endpoints: 50,
            max_response_bytes: 4096,
        }
    }
}

impl Webhooks {
    /// How long a claimed delivery stays a worker's: its timeout plus a margin, so a live
    /// worker always finishes first and a dead one's claim expires soon after.
    pub fn lease(&self) -> Duration {
        self.timeout + self.timeout.max(Duration::from_secs(2))
    }
}
