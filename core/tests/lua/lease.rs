//! The seq lease: admit.lua never issues a seq above cfg `seq_lease` (and has no such cap
//! without one); lua/lease.lua only raises it and never writes a cfg Redis lost;
//! lua/lease_lower.lua brings it down to the admission counter, atomically.

use crate::env::*;
use redis::AsyncCommands;

impl Env {
    async fn lease(&mut self) -> Option<i64> {
        self.conn.hget(self.k.cfg(), "seq_lease").await.unwrap()
    }
}

#[tokio::test]
async fn admissions_stop_at_the_lease_and_resume_when_it_is_raised() {
    let mut e = Env::with(DropCfg::default()).await;
    let us = users(5);
    e.join_all(&us).await;
    assert_eq!(
        e.scripts.raise_lease(&mut e.conn, &e.k, 2).await.unwrap(),
        2
    );
    let out = e.admit(10).await;
    assert_eq!(
        admitted_users(&out),
        ids(&us[..2]),
        "two seqs leased, two admitted"
    );
    assert_eq!(e.admit(10).await.admitted.len(), 0, "none past the lease");
    assert_eq!(
        e.scripts.raise_lease(&mut e.conn, &e.k, 4).await.unwrap(),
        4
    );
    let out = e.admit(10).await;
    assert_eq!(admitted_users(&out), ids(&us[2..4]));
    assert_eq!(out.admitted_total, 4);
    e.cleanup().await;
}

#[tokio::test]
async fn without_a_lease_admission_is_not_capped() {
    let mut e = Env::with(DropCfg::default()).await;
    let us = users(5);
    e.join_all(&us).await;
    assert_eq!(e.lease().await, None);
    assert_eq!(e.admit(10).await.admitted.len(), 5);
    e.cleanup().await;
}

#[tokio::test]
async fn a_lease_is_only_raised_and_never_recreates_a_lost_cfg() {
    let mut e = Env::with(DropCfg::default()).await;
    assert_eq!(
        e.scripts.raise_lease(&mut e.conn, &e.k, 10).await.unwrap(),
        10
    );
    assert_eq!(
        e.scripts.raise_lease(&mut e.conn, &e.k, 3).await.unwrap(),
        10,
        "raise only"
    );
    assert_eq!(e.lease().await, Some(10));
    let _: () = e.conn.del(e.k.cfg()).await.unwrap();
    assert_eq!(
        e.scripts.raise_lease(&mut e.conn, &e.k, 20).await.unwrap(),
        -1
    );
    let exists: bool = e.conn.exists(e.k.cfg()).await.unwrap();
    assert!(!exists, "no cfg written for a lost drop");
    assert_eq!(e.scripts.lower_lease(&mut e.conn, &e.k).await.unwrap(), -1);
    e.cleanup().await;
}

#[tokio::test]
async fn lowering_brings_the_lease_to_the_counter_never_above_it_or_up() {
    let mut e = Env::with(DropCfg::default()).await;
    let us = users(3);
    e.join_all(&us).await;
    assert_eq!(
        e.scripts.lower_lease(&mut e.conn, &e.k).await.unwrap(),
        -1,
        "no lease"
    );
    e.scripts.raise_lease(&mut e.conn, &e.k, 100).await.unwrap();
    e.admit(10).await;
    assert_eq!(e.scripts.lower_lease(&mut e.conn, &e.k).await.unwrap(), 3);
    assert_eq!(e.lease().await, Some(3));
    let more = users(1);
    e.join_all(&more).await;
    assert_eq!(
        e.admit(10).await.admitted.len(),
        0,
        "at the counter: nothing more"
    );
    assert_eq!(
        e.scripts.lower_lease(&mut e.conn, &e.k).await.unwrap(),
        3,
        "unchanged"
    );
    e.cleanup().await;
}
