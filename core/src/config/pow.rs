//! The join's adaptive proof of work: how hard a join's puzzle is, from the pressure the
//! join comes under (see `crate::pow::Pressure` and docs/security.md, section "Proof of
//! work at join").

use super::duration;
use serde::Deserialize;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Pow {
    /// The cap a new drop gets when its manager names none (`pow_max_difficulty`); 0
    /// switches the adaptive work off for such drops.
    pub max_difficulty: u32,
    /// Joins per second across the fleet, per drop, up to which the drop's rate asks for
    /// nothing; each doubling past it adds a bit, from `first_bits`.
    pub calm_joins_per_s: u32,
    /// Joins per minute from one address up to which the address asks for nothing; each
    /// doubling past it adds two bits, from `first_bits`. High enough for thousands of
    /// phones behind one carrier-NAT address to pay a few milliseconds.
    pub calm_joins_per_address_min: u32,
    /// Bits asked for as soon as either pressure is past calm.
    pub first_bits: u32,
    /// Accounts younger than this pay `young_bits` more, while some pressure is on.
    #[serde(deserialize_with = "duration::millis_or_unit")]
    pub young_account: Duration,
    pub young_bits: u32,
}

impl Default for Pow {
    fn default() -> Self {
        Pow {
            max_difficulty: 20,
            calm_joins_per_s: 5_000,
            calm_joins_per_address_min: 1_000,
            first_bits: 8,
            young_account: Duration::from_secs(86_400),
            young_bits: 4,
        }
    }
}
