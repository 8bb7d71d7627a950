//! argon2 behind one limit for the whole process. Each hash holds 19 MiB for tens of
//! milliseconds; run unbounded, 300 concurrent sign-ups took the server to 5.3 GB. About
//! one hash per core runs at a time, a short queue waits briefly, and everything beyond
//! is answered 503 `busy` with `Retry-After` at once, costing nothing.

use crate::error::ApiError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The right to run one argon2 computation; released when that computation ends (it
/// moves into the blocking task, so a client that hangs up does not free it early).
pub struct Permit(#[allow(dead_code)] OwnedSemaphorePermit);

pub struct Argon2Gate {
    running: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    max_wait: Duration,
}

/// Waiters per running hash: a queue short enough that a waiter is served well within
/// `MAX_WAIT` when hashes take ~50 ms.
const QUEUE_PER_WORKER: usize = 8;
const MAX_WAIT: Duration = Duration::from_secs(2);

impl Argon2Gate {
    pub fn new(workers: usize, max_waiting: usize, max_wait: Duration) -> Self {
        Argon2Gate {
            running: Arc::new(Semaphore::new(workers.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting,
            max_wait,
        }
    }

    /// One worker per core of this host.
    pub fn per_core() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(cores, cores * QUEUE_PER_WORKER, MAX_WAIT)
    }

    pub async fn enter(&self) -> Result<Permit, ApiError> {
        if let Ok(p) = self.running.clone().try_acquire_owned() {
            return Ok(Permit(p));
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(busy());
        }
        // Leaves the queue however this ends, a dropped request included.
        let _in_queue = Leave(&self.waiting);
        match tokio::time::timeout(self.max_wait, self.running.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(Permit(p)),
            _ => Err(busy()),
        }
    }
}

struct Leave<'a>(&'a AtomicUsize);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn busy() -> ApiError {
    ApiError::Busy { retry_after_s: 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_runs_one_waits_the_rest_are_told_to_come_back() {
        let gate = Arc::new(Argon2Gate::new(1, 1, Duration::from_millis(300)));
        let first = gate.enter().await.unwrap();
        let g = gate.clone();
        let waiter = tokio::spawn(async move { g.enter().await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(50)).await;
        match gate.enter().await {
            Err(ApiError::Busy { retry_after_s: 1 }) => {}
            other => panic!("expected busy, got {:?}", other.map(|_| ())),
        }
        drop(first);
        assert!(
            waiter.await.unwrap().is_ok(),
            "the queued one gets the freed permit"
        );
        let held = gate.enter().await.unwrap();
        let t0 = std::time::Instant::now();
        assert!(
            gate.enter().await.is_err(),
            "a waiter gives up after max_wait"
        );
        assert!(t0.elapsed() >= Duration::from_millis(250));
        drop(held);
        assert_eq!(gate.waiting.load(Ordering::SeqCst), 0);
    }
}
