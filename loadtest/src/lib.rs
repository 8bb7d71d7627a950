//! VitaQueue load harness: drives a running server over real WebSocket and HTTP
//! connections, then audits the invariants in Redis and PostgreSQL.

pub mod audit;
pub mod buyer;
pub mod drop_run;
pub mod report;
pub mod stats;
pub mod summary;

pub type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;
