//! Integration tests of the whole drop path against real Redis and PostgreSQL.

mod admin;
mod admission;
mod catalog;
mod crowd;
mod helpers;
mod lifecycle;
mod observe;
mod purchase;
mod room;
mod shutdown;
mod stock;
mod wishlist;
mod worker;
