//! Strict mode's staged purchase (purchase.lua with ARGV[5] = "1") and lua/settle.lua:
//! staging writes no order entry and no sold-out notice; commit writes them once; undo puts
//! the stock, the buyer's count, the reservation records and the live token (expiry, holder
//! slot) back exactly; each is idempotent and excludes the other; stale commits only what
//! was staged before the cutoff.

use crate::env::*;
use redis::AsyncCommands;
use vq_core::domain::UserId;
use vq_core::scripts::{PurchaseOutcome, Settle, Stage};

impl Env {
    async fn staged(&mut self, token: &str, u: UserId, n: u32) -> PurchaseOutcome {
        let out = self
            .scripts
            .purchase_as(
                &mut self.conn,
                &self.k,
                token,
                u,
                qty(n),
                &self.clock,
                Stage::Staged,
            )
            .await
            .expect("purchase.lua staged");
        match out {
            PurchaseOutcome::Reserved { seq, .. } => assert!(seq > 0),
            ref o => panic!("not reserved: {o:?}"),
        }
        out
    }

    async fn settle_staged(&mut self, how: Settle<'_>) -> i64 {
        self.scripts
            .settle(&mut self.conn, &self.k, how, &self.clock)
            .await
            .expect("settle.lua")
    }

    async fn hlen(&mut self, key: String) -> u64 {
        self.len("HLEN", key).await
    }
}

#[tokio::test]
async fn a_staged_purchase_reserves_but_writes_no_order_until_committed_once() {
    let mut e = Env::with(DropCfg::default()).await;
    let u = user();
    let token = e.admit_one(u).await;
    e.staged(&token, u, 2).await;
    assert_eq!(e.stock().await, 98);
    assert_eq!(e.bought(u).await, Some(2));
    assert_eq!(
        e.len("XLEN", e.k.orders()).await,
        0,
        "no worker can see it yet"
    );
    assert_eq!(e.hlen(e.k.staged()).await, 1);
    assert_eq!(e.settle_staged(Settle::Commit(&token)).await, 1);
    assert_eq!(e.len("XLEN", e.k.orders()).await, 1);
    assert_eq!(e.hlen(e.k.staged()).await, 0);
    // Once only: a second commit, or an undo after the commit, changes nothing.
    assert_eq!(e.settle_staged(Settle::Commit(&token)).await, 0);
    assert_eq!(e.settle_staged(Settle::Undo(&token)).await, 0);
    assert_eq!(e.len("XLEN", e.k.orders()).await, 1);
    assert_eq!(e.stock().await, 98);
    let entry: Vec<(String, Vec<(String, String)>)> = e
        .q(redis::cmd("XRANGE").arg(e.k.orders()).arg("-").arg("+"))
        .await;
    let fields: std::collections::HashMap<_, _> = entry[0].1.iter().cloned().collect();
    assert_eq!(fields["token"], token);
    assert_eq!(fields["user"], u.to_string());
    assert_eq!(fields["qty"], "2");
    assert_eq!(fields["seq"], token.rsplit_once('.').unwrap().1);
    e.cleanup().await;
}

#[tokio::test]
async fn an_undo_puts_back_exactly_what_the_staged_purchase_took() {
    let mut e = Env::with(DropCfg::default()).await;
    let (u, other) = (user(), user());
    let tokens = e.admit_users(&[u, other]).await;
    e.purchase(&tokens[1], other, 1).await;
    let expiry = e.token_expiry(&tokens[0]).await;
    e.staged(&tokens[0], u, 2).await;
    assert_eq!(e.settle_staged(Settle::Undo(&tokens[0])).await, 1);
    assert_eq!(e.stock().await, 99, "only the other buyer's unit is out");
    assert_eq!(e.bought(u).await, None);
    assert_eq!(e.bought(other).await, Some(1));
    assert_eq!(e.token_state(&tokens[0]).await, Some(format!("L|{u}")));
    assert_eq!(e.token_expiry(&tokens[0]).await, expiry);
    assert_eq!(e.holder_token(u).await, Some(tokens[0].clone()));
    for key in [e.k.reservations(), e.k.unpaid(), e.k.receipts()] {
        let has: bool = e.conn.hexists(&key, &tokens[0]).await.unwrap();
        assert!(!has, "{key} still names the undone token");
    }
    assert_eq!(e.hlen(e.k.staged()).await, 0);
    assert_eq!(
        e.len("XLEN", e.k.orders()).await,
        1,
        "the other buyer's entry only"
    );
    // Idempotent, and a commit after the undo writes nothing.
    assert_eq!(e.settle_staged(Settle::Undo(&tokens[0])).await, 0);
    assert_eq!(e.settle_staged(Settle::Commit(&tokens[0])).await, 0);
    assert_eq!(e.stock().await, 99);
    // The token is live again: the buyer can buy with it (not a replay).
    assert_eq!(e.purchase(&tokens[0], u, 2).await, reserved(97, 2));
    e.cleanup().await;
}

#[tokio::test]
async fn a_staged_last_unit_announces_sold_out_only_on_commit_and_never_on_undo() {
    let mut e = Env::with(DropCfg {
        stock: 1,
        ..DropCfg::default()
    })
    .await;
    let mut sub = e.client.get_async_pubsub().await.unwrap();
    sub.subscribe(e.k.events()).await.unwrap();
    let (a, b) = (user(), user());
    let tokens = e.admit_users(&[a, b]).await;
    e.staged(&tokens[0], a, 1).await;
    let sold_out_at: Option<String> = e.conn.hget(e.k.cfg(), "sold_out_at").await.unwrap();
    assert_eq!(sold_out_at, None, "not announced while staged");
    e.settle_staged(Settle::Undo(&tokens[0])).await;
    let sold_out_at: Option<String> = e.conn.hget(e.k.cfg(), "sold_out_at").await.unwrap();
    assert_eq!(sold_out_at, None, "an undone purchase sold nothing out");
    e.staged(&tokens[1], b, 1).await;
    e.settle_staged(Settle::Commit(&tokens[1])).await;
    let sold_out_at: Option<String> = e.conn.hget(e.k.cfg(), "sold_out_at").await.unwrap();
    assert!(sold_out_at.is_some());
    let mut msgs = sub.on_message();
    let mut sold_out = 0;
    let wait = std::time::Duration::from_millis(300);
    while let Ok(Some(m)) = tokio::time::timeout(wait, futures::StreamExt::next(&mut msgs)).await {
        let text: String = m.get_payload().unwrap();
        sold_out += usize::from(text.contains("\"sold_out\""));
    }
    assert_eq!(sold_out, 1, "one sold-out notice: the committed purchase's");
    e.cleanup().await;
}

#[tokio::test]
async fn stale_commits_only_what_was_staged_before_the_cutoff() {
    let mut e = Env::with(DropCfg::default()).await;
    let (a, b) = (user(), user());
    let tokens = e.admit_users(&[a, b]).await;
    e.staged(&tokens[0], a, 1).await;
    e.clock.advance(10_000);
    e.staged(&tokens[1], b, 1).await;
    let cutoff = e.clock.now_ms() - 5_000;
    assert_eq!(e.settle_staged(Settle::StagedBefore(cutoff)).await, 1);
    assert_eq!(e.len("XLEN", e.k.orders()).await, 1);
    let left: Vec<String> = e.conn.hkeys(e.k.staged()).await.unwrap();
    assert_eq!(
        left,
        vec![tokens[1].clone()],
        "the young one waits for its node"
    );
    assert_eq!(e.settle_staged(Settle::StagedBefore(cutoff)).await, 0);
    e.cleanup().await;
}
