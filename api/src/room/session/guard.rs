//! What keeps one socket honest: a per-socket frame budget, the session it was opened with
//! (expiry, revocation) and the close codes that explain why a socket was cut.

use super::{Flow, Session};
use tokio::time::Instant;

/// The access token the socket was opened with expired: renew it (a new ticket) and
/// reconnect; the place is kept.
pub const CLOSE_SESSION_EXPIRED: u16 = 4001;
/// The session was revoked (logout, refresh reuse): sign in again.
pub const CLOSE_SESSION_REVOKED: u16 = 4003;
/// A newer socket of the same account pushed this one over the per-account cap.
pub const CLOSE_REPLACED: u16 = 4008;
/// The peer answered no ping for two intervals.
pub const CLOSE_DEAD_PEER: u16 = 1001;
/// Sustained flooding past the frame budget (policy violation).
pub const CLOSE_POLICY: u16 = 1008;

/// A token bucket for client frames, per socket (in memory: the limit is per socket).
pub struct Bucket {
    level: f64,
    per_s: f64,
    burst: f64,
    at: Instant,
}

impl Bucket {
    pub fn new(per_s: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Bucket {
            level: burst,
            per_s: f64::from(per_s),
            burst,
            at: Instant::now(),
        }
    }

    /// Takes one frame's worth; false when the budget is spent.
    pub fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.per_s;
        self.level = (self.level + refill).min(self.burst);
        self.at = now;
        if self.level >= 1.0 {
            self.level -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Session {
    /// Charges one client frame; `Some(flow)` when it must not be processed.
    pub(super) fn charge(&mut self, out: &mut Vec<crate::messages::ServerMsg>) -> Option<Flow> {
        if self.bucket.take() {
            self.refused_in_row = 0;
            return None;
        }
        self.refused_in_row += 1;
        metrics::counter!("vq_ws_frames_refused_total").increment(1);
        if self.refused_in_row >= self.st.ws.client_abuse_limit.max(1) {
            return Some(Flow::Close(CLOSE_POLICY, "too many messages"));
        }
        out.push(crate::messages::ServerMsg::error(
            "rate_limited",
            "too many messages on this socket; slow down",
        ));
        Some(Flow::Continue)
    }

    /// Closes the socket once the access token it was opened with has expired or its
    /// session was revoked (one `EXISTS`; used when the batched read could not answer).
    pub(super) async fn session_check(&self) -> Option<Flow> {
        if let Some(flow) = self.expiry_check() {
            return Some(flow);
        }
        match crate::accounts::sessions::is_revoked(&self.st, &self.auth.jti).await {
            Ok(true) => Some(Flow::Close(CLOSE_SESSION_REVOKED, "session revoked")),
            Ok(false) => None,
            Err(e) => {
                tracing::debug!(error = %e, "revocation check failed");
                None
            }
        }
    }

    /// Closes the socket once the access token it was opened with has expired.
    pub(super) fn expiry_check(&self) -> Option<Flow> {
        (chrono::Utc::now().timestamp() >= self.auth.exp)
            .then_some(Flow::Close(CLOSE_SESSION_EXPIRED, "session expired"))
    }
}
