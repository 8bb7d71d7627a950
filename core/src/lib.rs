//! Shared core of VitaQueue: configuration, domain newtypes, Redis key layout, the Lua
//! scripts, auth tokens, the shutdown signal and connection helpers used by every role.
//!
//! Arrows: this crate depends on no other VitaQueue crate. `vq-core` ← `vq-orders` ←
//! `vq-worker`, `vq-api`; `vq-core` ← `vq-admission`; all of them ← `vitaqueue` (app, the
//! composition root) ← `loadtest`.

pub mod account;
pub mod auth;
pub mod autopilot;
pub mod clock;
pub mod config;
pub mod conn;
pub mod domain;
pub mod fairness;
pub mod keys;
pub mod order_stats;
pub mod pow;
pub mod ratelimit;
pub mod scripts;
pub mod shutdown;
pub mod simulate;
pub mod store;
pub mod telemetry;

pub use clock::Clock;
pub use config::Settings;
pub use conn::{Durable, RedisConn};
pub use keys::{DropKeys, Keys};
pub use scripts::Scripts;
pub use shutdown::Shutdown;
