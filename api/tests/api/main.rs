//! Integration tests of the whole drop path against real Redis and PostgreSQL.

mod admin;
mod admission;
mod crowd;
mod helpers;
mod purchase;
mod room;
mod worker;
