//! Integration tests of the whole drop path against real Redis and PostgreSQL.

mod accounts;
mod accounts_limits;
mod accounts_sessions;
mod accounts_signup;
mod accounts_storage;
mod admin;
mod admission;
mod catalog;
mod crowd;
mod e2e;
mod helpers;
mod lifecycle;
mod observe;
mod purchase;
mod room;
mod shutdown;
mod smtp_sink;
mod stock;
mod wishlist;
mod worker;
