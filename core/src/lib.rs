//! Shared core of VitaQueue: configuration, domain newtypes, Redis key layout, the Lua
//! scripts, auth tokens and connection helpers used by the api, admission and worker roles.

pub mod account;
pub mod auth;
pub mod clock;
pub mod config;
pub mod conn;
pub mod domain;
pub mod keys;
pub mod ratelimit;
pub mod scripts;
pub mod shutdown;
pub mod store;
pub mod telemetry;

pub use clock::Clock;
pub use config::Settings;
pub use conn::RedisConn;
pub use keys::{DropKeys, Keys};
pub use scripts::Scripts;
pub use shutdown::Shutdown;
