//! VitaQueue load harness: drives a running server over real WebSocket and HTTP
//! connections, then audits the invariants in Redis and PostgreSQL.
//!
//! Arrows: the top of the graph. Depends on `vitaqueue` (app) to run a whole server in
//! process (`inproc`), and on `vq-api`/`vq-core` for the audit and the benches.

pub mod abuse;
pub mod audit;
pub mod buyer;
pub mod ceiling;
pub mod drop_args;
pub mod drop_run;
pub mod fair;
pub mod harness;
pub mod inproc;
pub mod join_ceiling;
pub mod lean_http;
pub mod logins;
pub mod pow_bench;
pub mod procstat;
pub mod report;
pub mod stats;
pub mod strategies;
pub mod summary;
pub mod vq_path;
pub mod wait_cost;
pub mod webhooks_bench;

pub type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;
