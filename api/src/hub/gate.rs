//! Which admission ticks a room's sockets hear. Admission ticks every 50 ms while a socket
//! pushes its place at most every `ws.position_interval_ms`, so waking every socket task on
//! every tick was most of a crowded node's CPU (20 wake-ups per socket per second for 2
//! pushes). The gate passes the first tick after the gap, and any tick whose status
//! changed (start, sell-out, pause) at once. Tick counts are absolute, so a skipped tick
//! loses nothing: the next one carries the latest place, and admission publishes a tick
//! on every run, so one comes within the gap plus a tick.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use vq_core::domain::{AdmitStatus, DropId};

#[derive(Default)]
pub struct TickGate {
    gap: Duration,
    /// Per room: when the last tick went out, and its status.
    last: Mutex<HashMap<DropId, (Instant, AdmitStatus)>>,
}

impl TickGate {
    pub fn new(gap: Duration) -> Self {
        TickGate {
            gap,
            last: Mutex::default(),
        }
    }

    /// Whether this tick goes to the room's sockets (and, if so, notes it went out).
    pub fn pass(&self, drop: DropId, status: AdmitStatus) -> bool {
        let now = Instant::now();
        let mut last = self.last.lock().expect("tick gate lock");
        let due = last
            .get(&drop)
            .is_none_or(|(at, st)| *st != status || now.duration_since(*at) >= self.gap);
        if due {
            last.insert(drop, (now, status));
        }
        due
    }

    /// Forgets a room nobody listens to any more.
    pub fn forget(&self, drop: DropId) {
        self.last.lock().expect("tick gate lock").remove(&drop);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_tick_after_the_gap_and_every_status_change_pass() {
        let g = TickGate::new(Duration::from_millis(80));
        let d = DropId::new(1).unwrap();
        assert!(g.pass(d, AdmitStatus::Ok), "the first tick");
        assert!(!g.pass(d, AdmitStatus::Ok), "inside the gap");
        assert!(g.pass(d, AdmitStatus::SoldOut), "a status change at once");
        std::thread::sleep(Duration::from_millis(90));
        assert!(g.pass(d, AdmitStatus::SoldOut), "after the gap");
        assert!(
            g.pass(DropId::new(2).unwrap(), AdmitStatus::Ok),
            "rooms apart"
        );
        let open = TickGate::new(Duration::ZERO);
        assert!(open.pass(d, AdmitStatus::Ok) && open.pass(d, AdmitStatus::Ok));
    }
}
