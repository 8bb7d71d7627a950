//! Integration tests for lua/{join,touch,places,admit,purchase,restock,manage,ratelimit,gate,gated_purchase,rate}.lua, driven through the typed wrappers in
//! `vq_core::scripts::Scripts` against a real Redis (`VQ_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`).
//!
//! Every test works under its own random key prefix with a manual clock, so tests run in
//! parallel, never see each other's data and never sleep for a TTL. A drop is set up by
//! writing its config hash and stock key directly, as the scripts read them.

mod admit;
mod admit_rate;
mod concurrency;
mod env;
mod events;
mod gate;
mod gated_purchase;
mod join;
mod lease;
mod leave;
mod ops;
mod places;
mod purchase;
mod rate;
mod ratelimit;
mod rebuild;
mod replay;
mod report;
mod settle;
mod stockcap;
