//! Tuning of the roles: HTTP api, WebSocket rooms, admission controller, stream worker,
//! and the metrics listener of the roles without HTTP.

use super::duration::millis_or_unit;
use serde::Deserialize;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Http {
    pub host: String,
    /// 0 picks a free port (tests); the bound port is reported by `build()`.
    pub port: u16,
    pub max_body_bytes: usize,
    /// Reverse proxies whose `X-Forwarded-For` names the client (CIDRs); empty: none.
    pub trusted_proxies: super::TrustedProxies,
    /// A client must send a request's whole head within this (slowloris); also the longest
    /// a fresh connection may stay silent before its first request.
    #[serde(deserialize_with = "millis_or_unit")]
    pub header_read_timeout: Duration,
    /// A keep-alive connection with no bytes either way for this long is closed.
    #[serde(deserialize_with = "millis_or_unit")]
    pub idle_timeout: Duration,
    /// Longest a request (body included) may take; WebSocket upgrades are exempt.
    #[serde(deserialize_with = "millis_or_unit")]
    pub request_timeout: Duration,
    /// Open TCP connections (room sockets included) per peer address on one node; more
    /// are closed at accept. 0: no cap. Behind a proxy the peer is the proxy.
    pub max_connections_per_ip: usize,
    /// Connections the kernel may hold for `accept` (capped by `net.core.somaxconn`). A
    /// drop's start brings thousands of connects within a second; with tokio's default of
    /// 1,024 the overflow waits out a 1 s SYN retransmit.
    pub listen_backlog: u32,
}

/// Where roles without the HTTP api (admission, worker) serve `/metrics`.
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(default)]
pub struct Metrics {
    pub listen: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Admission {
    pub tick_ms: u64,
    /// Most buyers one tick may admit for one drop.
    pub max_batch: u32,
    /// How often the autopilot decides a drop's rate (drops that set `autopilot` only;
    /// one decision per drop and interval across every admission process). 0: never.
    pub autopilot_ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Worker {
    /// Consumer name in the stream group; must differ between live workers.
    pub consumer: String,
    pub batch_size: usize,
    pub block_ms: u64,
    /// Pending entries idle this long belong to a dead consumer and are reclaimed.
    pub claim_idle_ms: u64,
    pub claim_every_ms: u64,
    /// An entry delivered this many times without being written is poison: it goes to
    /// the drop's dead-letter stream (`…:orders:dead`) and is acknowledged.
    pub max_attempts: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Ws {
    pub max_message_bytes: usize,
    /// Exact rank re-read interval per connection (positions are derived in between).
    pub resync_ms: u64,
    /// Shortest time between two position pushes to one socket.
    pub position_interval_ms: u64,
    /// Read buffer per socket. The WebSocket library zero-fills the whole buffer on every
    /// read, so each idle connection keeps all of it resident: its default of 128 KiB
    /// would cost ~2.4 GB at 19k sockets, while client messages are at most
    /// `max_message_bytes` (the buffer grows for a frame that needs more) and nearly all
    /// are far smaller (a purchase is ~150 bytes), hence 1 KiB.
    pub read_buffer_bytes: usize,
    /// How long a buyer without an open socket keeps the place (ms), written into each
    /// drop's cfg as `leave_grace_ms`. Open sockets re-read (and so touch) well inside it.
    pub leave_grace_ms: u64,
    /// The server pings every socket this often; a socket silent for twice as long is a
    /// dead peer and is closed.
    pub ping_interval_ms: u64,
    /// Open room sockets per account on one node; a new one closes the oldest (4008).
    pub max_sockets_per_account: usize,
    /// Client frames per second per socket (token bucket), and its burst.
    pub client_msgs_per_s: u32,
    pub client_msgs_burst: u32,
    /// Frames refused in a row before the socket is closed with 1008.
    pub client_abuse_limit: u32,
    /// Lifetime of a single-use room ticket (`POST /v1/drops/{id}/ticket`), seconds.
    pub ticket_ttl_s: u64,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            host: "127.0.0.1".into(),
            port: 8080,
            max_body_bytes: 16 * 1024,
            trusted_proxies: super::TrustedProxies::default(),
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(15),
            max_connections_per_ip: 256,
            listen_backlog: 4096,
        }
    }
}

impl Default for Admission {
    fn default() -> Self {
        Admission {
            tick_ms: 50,
            max_batch: 5000,
            autopilot_ms: 1000,
        }
    }
}

impl Default for Worker {
    fn default() -> Self {
        Worker {
            consumer: format!("worker-{}", uuid::Uuid::new_v4().simple()),
            batch_size: 500,
            block_ms: 200,
            claim_idle_ms: 5000,
            claim_every_ms: 1000,
            max_attempts: 5,
        }
    }
}

impl Default for Ws {
    fn default() -> Self {
        Ws {
            max_message_bytes: 4096,
            resync_ms: 5000,
            position_interval_ms: 500,
            read_buffer_bytes: 1024,
            leave_grace_ms: 60_000,
            ping_interval_ms: 20_000,
            max_sockets_per_account: 3,
            client_msgs_per_s: 5,
            client_msgs_burst: 20,
            client_abuse_limit: 50,
            ticket_ttl_s: 30,
        }
    }
}
