//! Integration tests of the whole drop path against real Redis and PostgreSQL.

mod admin;
mod admission;
mod cluster;
mod crowd;
mod faults;
mod fleet;
mod fuzz_http;
mod fuzz_tokens;
mod fuzz_ws;
mod helpers;
mod multinode;
mod procs;
mod purchase;
mod redis_procs;
mod room;
mod worker;
