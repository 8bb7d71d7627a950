//! argon2 behind one limit for the whole process. Each hash holds 19 MiB for tens of
//! milliseconds; run unbounded, 300 concurrent sign-ups took the server to 5.3 GB. About
//! one hash per core runs at a time, a short queue waits briefly, and everything beyond
//! is answered 503 `busy` with `Retry-After` at once, costing nothing.
//!
//! The hashes run on the gate's own threads, one per permit, at nice 10 so the room's work
//! comes first when a flood keeps them busy. The binary allocates with
//! mimalloc, which returns a freed 19 MiB block to the system after its purge delay, so
//! memory follows the number of running hashes (the gate's bound), not the number of
//! requests: `loadtest logins` measures the server's RSS under 300 concurrent logins
//! (docs/operations.md, section "Memory under a login flood").

use crate::error::ApiError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

type Job = Box<dyn FnOnce() + Send>;

/// The right to run one argon2 computation; released when that computation ends (it
/// moves into the job, so a client that hangs up does not free it early).
pub struct Permit {
    held: OwnedSemaphorePermit,
    jobs: mpsc::Sender<Job>,
}

impl Permit {
    /// Runs `f` on one of the gate's threads and waits for its result.
    pub async fn run<T: Send + 'static>(
        self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let held = self.held;
        self.jobs
            .send(Box::new(move || {
                let _held = held;
                let _ = tx.send(f());
            }))
            .map_err(|_| anyhow::anyhow!("argon2 threads are gone"))?;
        rx.await
            .map_err(|_| anyhow::anyhow!("argon2 job ended without a result"))
    }
}

pub struct Argon2Gate {
    running: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
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
        let workers = workers.max(1);
        let (jobs, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = rx.clone();
            // The threads end when the gate (the last sender) is dropped.
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    yield_to_the_room();
                    loop {
                        let job = rx.lock().map(|r| r.recv());
                        match job {
                            Ok(Ok(job)) => job(),
                            _ => break,
                        }
                    }
                })
                .expect("spawn an argon2 thread");
        }
        Argon2Gate {
            running: Arc::new(Semaphore::new(workers)),
            jobs,
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
            return Ok(self.permit(p));
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(busy());
        }
        // Leaves the queue however this ends, a dropped request included.
        let _in_queue = Leave(&self.waiting);
        match tokio::time::timeout(self.max_wait, self.running.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(self.permit(p)),
            _ => Err(busy()),
        }
    }

    fn permit(&self, held: OwnedSemaphorePermit) -> Permit {
        Permit {
            held,
            jobs: self.jobs.clone(),
        }
    }
}

/// Lowers this (argon2) thread's scheduling priority: a flood of logins keeps both cores
/// hashing, and the waiting room's joins, pushes and purchases must not queue behind it.
/// Logins then take longer under load, which is the gate's answer to a flood anyway.
fn yield_to_the_room() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on the calling thread (PRIO_PROCESS with its tid) only changes
    // its nice value; a failure (no permission to renice) leaves it as it was.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
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
