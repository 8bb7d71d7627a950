//! Which sockets of a room hear which admission tick. Admission ticks every 50 ms while a
//! socket pushes its place at most every `ws.position_interval_ms` (500 ms). Waking every
//! socket on every tick was most of a crowded node's CPU (20 wake-ups per socket per
//! second for 2 pushes); handing one tick every interval to all sockets at once (the
//! previous gate) made each interval one burst of 19,000 pushes, and the last socket of a
//! burst waited for all the others: the push latency was the burst's length.
//!
//! So a room's sockets are split into lanes (one broadcast channel each, a socket's lane
//! fixed at registration), and each tick goes to the lanes that are owed one: with ticks
//! every 50 ms and 10 lanes, one lane per tick, each lane every 500 ms, and the pushes of
//! an interval spread evenly over it. A tick whose status changed (start, sell-out, pause)
//! goes to every lane at once. Counts in a tick are absolute, so a lane that skips ticks
//! loses nothing; after a silence (no tick for a whole interval) every lane is owed one.

use crate::hub::RoomEvent;
use std::ops::Range;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use vq_core::domain::AdmitStatus;

/// Buffered events per lane (a socket that falls further behind re-reads its place).
const LANE_BUFFER: usize = 64;

pub struct Room {
    lanes: Vec<broadcast::Sender<RoomEvent>>,
    cadence: Cadence,
}

impl Room {
    pub fn new(lanes: usize, gap: Duration) -> Self {
        let lanes = lanes.max(1);
        Room {
            lanes: (0..lanes)
                .map(|_| broadcast::channel(LANE_BUFFER).0)
                .collect(),
            cadence: Cadence::new(lanes, gap),
        }
    }

    /// The receiver of connection `id` (lanes by connection number: even by construction).
    pub fn subscribe(&self, id: u64) -> broadcast::Receiver<RoomEvent> {
        self.lanes[(id % self.lanes.len() as u64) as usize].subscribe()
    }

    pub fn receivers(&self) -> usize {
        self.lanes.iter().map(|l| l.receiver_count()).sum()
    }

    /// To every socket of the room.
    pub fn send_all(&self, ev: &RoomEvent) {
        for l in &self.lanes {
            let _ = l.send(ev.clone());
        }
    }

    /// A tick, to the lanes owed one now.
    pub fn tick(&mut self, ev: &RoomEvent, status: AdmitStatus) {
        let n = self.lanes.len();
        for i in self.cadence.serve(Instant::now(), status) {
            let _ = self.lanes[i % n].send(ev.clone());
        }
    }
}

/// The lane schedule: owes each lane one tick per `gap`, paid in rotation.
pub struct Cadence {
    lanes: usize,
    gap: Duration,
    cursor: usize,
    owed: f64,
    last: Option<(Instant, AdmitStatus)>,
}

impl Cadence {
    pub fn new(lanes: usize, gap: Duration) -> Self {
        Cadence {
            lanes,
            gap,
            cursor: 0,
            owed: 0.0,
            last: None,
        }
    }

    /// The lanes (indices modulo the lane count) that hear the tick at `now`.
    pub fn serve(&mut self, now: Instant, status: AdmitStatus) -> Range<usize> {
        let last = self.last.replace((now, status));
        let Some((at, _)) = last.filter(|(_, was)| *was == status) else {
            // The first tick, or a changed status: everyone, at once.
            self.owed = 0.0;
            return self.cursor..self.cursor + self.lanes;
        };
        let since = now.duration_since(at).as_secs_f64();
        let gap = self.gap.as_secs_f64().max(1e-3);
        self.owed = (self.owed + self.lanes as f64 * since / gap).min(self.lanes as f64);
        let n = self.owed.floor() as usize;
        self.owed -= n as f64;
        let from = self.cursor;
        self.cursor = (self.cursor + n) % self.lanes;
        from..from + n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_every_lane_once_per_gap_in_rotation_and_status_changes_reach_all() {
        let ms = Duration::from_millis;
        let mut c = Cadence::new(10, ms(500));
        let t0 = Instant::now();
        assert_eq!(
            c.serve(t0, AdmitStatus::Ok).len(),
            10,
            "the first tick: all"
        );
        let mut heard = vec![0usize; 10];
        for k in 1..=20u64 {
            for i in c.serve(t0 + ms(50 * k), AdmitStatus::Ok) {
                heard[i % 10] += 1;
            }
        }
        assert_eq!(
            heard,
            vec![2; 10],
            "50 ms ticks: one lane each, every lane twice in 1 s"
        );
        let now = t0 + ms(1_000);
        assert_eq!(
            c.serve(now, AdmitStatus::SoldOut).len(),
            10,
            "status change: all"
        );
        assert!(
            c.serve(now + ms(10), AdmitStatus::SoldOut).is_empty(),
            "nothing owed yet"
        );
        assert_eq!(
            c.serve(now + ms(3_000), AdmitStatus::SoldOut).len(),
            10,
            "after a silence every lane is owed one (never more)"
        );
        let mut one = Cadence::new(1, ms(500));
        assert_eq!(one.serve(t0, AdmitStatus::Ok).len(), 1);
        assert!(
            one.serve(t0 + ms(100), AdmitStatus::Ok).is_empty(),
            "inside the gap"
        );
        assert_eq!(
            one.serve(t0 + ms(600), AdmitStatus::Ok).len(),
            1,
            "after it"
        );
    }
}
