//! A model forecast (vq_core::simulate::forecast) pinned to the moment its state was read,
//! and its lookup as of a later tick: the table is indexed by the place in the queue at
//! the read, so a buyer `ahead` now was at `ahead + moved since` then, and the time already
//! gone by since the read (measured when the message is built, on this node's clock: a
//! position sent late after its tick, e.g. the burst of exact reads at the sale start,
//! would otherwise promise the delay once more) comes off the forecast.

use std::sync::Arc;
use std::time::Instant;
use vq_core::simulate::Table;

/// A forecast and the moment it describes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Pinned {
    pub table: Table,
    /// When the state was read (this node's clock).
    pub read_at: Instant,
    /// Buyers admitted or removed for leaving in the drop up to the read.
    pub moved: u64,
}

/// A forecast as seen from one tick; cheap to clone (one shared table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pinned: Arc<Pinned>,
    moved_since: u64,
}

impl Lookup {
    pub(crate) fn new(pinned: &Arc<Pinned>, moved_now: u64) -> Lookup {
        Lookup {
            moved_since: moved_now.saturating_sub(pinned.moved),
            pinned: pinned.clone(),
        }
    }

    /// (low, high) seconds until a buyer with `ahead` buyers before them is admitted;
    /// None past the forecast's last place. A forecast time already gone by reads 0.
    pub fn eta(&self, ahead: u64) -> Option<(f64, f64)> {
        let (lo, hi) = self
            .pinned
            .table
            .at(ahead.saturating_add(self.moved_since))?;
        let gone = self.pinned.read_at.elapsed().as_secs_f64();
        Some(((lo - gone).max(0.0), (hi - gone).max(0.0)))
    }
}
