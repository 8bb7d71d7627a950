//! Integration tests of the whole drop path against real Redis and PostgreSQL.

mod admin;
mod admission;
mod cluster;
mod crowd;
mod fleet;
mod helpers;
mod multinode;
#[allow(dead_code)] // parts used by the fault tests that follow
mod procs;
mod purchase;
mod room;
mod worker;
