//! One socket's inbox of account-directed pushes (`Direct`). A tokio mpsc channel allocates
//! a block of 32 slots when it is made (about 1.9 KB with `Direct`), for every socket, while
//! a socket hears a handful of direct messages in its life: this inbox allocates nothing
//! until a message arrives. Bounded: past `CAP` queued messages a push is dropped and
//! counted (the socket's periodic exact read still finds a token it missed).

use super::Direct;
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::Notify;

const CAP: usize = 64;

#[derive(Default)]
pub struct Inbox {
    queue: Mutex<(VecDeque<Direct>, bool)>,
    notify: Notify,
}

impl Inbox {
    /// Queues a message for the socket (the hub's side).
    pub fn push(&self, msg: Direct) {
        let mut q = self.queue.lock().expect("inbox lock");
        if q.1 {
            return;
        }
        if q.0.len() >= CAP {
            metrics::counter!("vq_ws_direct_dropped_total").increment(1);
            return;
        }
        q.0.push_back(msg);
        drop(q);
        self.notify.notify_one();
    }

    /// No more messages after the ones queued: the hub let the socket go.
    pub fn close(&self) {
        self.queue.lock().expect("inbox lock").1 = true;
        self.notify.notify_one();
    }

    /// The next queued message, without waiting.
    pub fn try_recv(&self) -> Option<Direct> {
        self.queue.lock().expect("inbox lock").0.pop_front()
    }

    /// The next message; `None` once closed and drained.
    pub async fn recv(&self) -> Option<Direct> {
        loop {
            {
                let mut q = self.queue.lock().expect("inbox lock");
                if let Some(m) = q.0.pop_front() {
                    return Some(m);
                }
                if q.1 {
                    return None;
                }
            }
            // notify_one keeps a permit when nobody waits, so a push between the check
            // and this await is not lost.
            self.notify.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_in_order_then_ends_after_close_and_stays_bounded() {
        let inbox = std::sync::Arc::new(Inbox::default());
        let waiter = {
            let inbox = inbox.clone();
            tokio::spawn(async move { inbox.recv().await })
        };
        tokio::task::yield_now().await;
        inbox.push(Direct::Left);
        assert_eq!(
            waiter.await.unwrap(),
            Some(Direct::Left),
            "wakes a waiting socket"
        );
        inbox.push(Direct::Expired);
        inbox.push(Direct::Replaced);
        inbox.close();
        inbox.push(Direct::Left);
        assert_eq!(inbox.recv().await, Some(Direct::Expired));
        assert_eq!(inbox.recv().await, Some(Direct::Replaced));
        assert_eq!(inbox.recv().await, None, "closed: nothing after");
        let full = Inbox::default();
        for _ in 0..CAP + 10 {
            full.push(Direct::Left);
        }
        assert_eq!(full.queue.lock().unwrap().0.len(), CAP);
    }
}
