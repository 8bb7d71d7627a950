//! lua/gated_purchase.lua (gate.lua and purchase.lua in one call): every branch of its glue
//! — a revoked token, the first or a later bucket empty, a pass that buys, a pass the
//! purchase refuses, no gate keys at all — and that a stopped call leaves the drop as it
//! was while a passed one keeps its cells whatever the purchase answers.

use crate::env::*;
use redis::AsyncCommands;
use vq_core::domain::UserId;
use vq_core::ratelimit::{GateArgs, GateVerdict, Rate};
use vq_core::scripts::{GatedOutcome, PurchaseOutcome, PurchaseReject, Stage};

/// One cell a second, one at once.
const ONE: Rate = Rate {
    interval_ms: 1000.0,
    burst: 1,
};
/// One cell a second, five at once.
const ROOMY: Rate = Rate {
    interval_ms: 1000.0,
    burst: 5,
};

/// A revocation key and two bucket keys of their own.
fn gate_keys() -> [String; 3] {
    let p = format!("vqt-{}", hex_prefix());
    [
        format!("{p}:auth:revoked:jti"),
        format!("{p}:rl:purchase_ip:127.0.0.1"),
        format!("{p}:rl:purchase_account:u"),
    ]
}

async fn gated(e: &mut Env, gate: GateArgs<'_>, token: &str, u: UserId) -> GatedOutcome {
    let out = e
        .scripts
        .gated_purchase(
            &mut e.conn,
            gate,
            &e.k,
            token,
            u,
            qty(1),
            &e.clock,
            Stage::Direct,
        )
        .await
        .expect("gated_purchase.lua");
    match out {
        // The seq is the token's name (see Env::purchase); zeroed to compare with `reserved`.
        GatedOutcome::Purchase(PurchaseOutcome::Reserved {
            remaining,
            user_total,
            replayed,
            seq,
        }) => {
            let named = token.rsplit_once('.').and_then(|(_, s)| s.parse().ok());
            assert_eq!(Some(seq), named, "seq of {token}");
            GatedOutcome::Purchase(PurchaseOutcome::Reserved {
                remaining,
                user_total,
                replayed,
                seq: 0,
            })
        }
        other => other,
    }
}

async fn tat(e: &mut Env, key: &str) -> Option<String> {
    e.conn.get(key).await.unwrap()
}

#[tokio::test]
async fn gated_purchase_a_revoked_token_buys_nothing_and_takes_no_cell() {
    let mut e = Env::with(DropCfg::default()).await;
    let [rev, ip, acct] = gate_keys();
    let u = user();
    let token = e.admit_one(u).await;
    let _: () = e.conn.set_ex(&rev, 1, 60).await.unwrap();
    let buckets = [(ip.as_str(), ONE), (acct.as_str(), ONE)];
    let gate = GateArgs {
        revoked: Some(&rev),
        buckets: &buckets,
    };
    let out = gated(&mut e, gate, &token, u).await;
    assert_eq!(out, GatedOutcome::Stopped(GateVerdict::Revoked));
    assert_eq!(e.token_state(&token).await, Some(format!("L|{u}")));
    assert_eq!(e.stock().await, 100);
    assert_eq!(e.len("XLEN", e.k.orders()).await, 0);
    assert_eq!(tat(&mut e, &ip).await, None, "no bucket touched");
    assert_eq!(tat(&mut e, &acct).await, None);
    e.cleanup().await;
}

#[tokio::test]
async fn gated_purchase_passes_then_the_first_empty_bucket_stops_it() {
    let mut e = Env::with(DropCfg::default()).await;
    let [rev, ip, acct] = gate_keys();
    let (a, b) = (user(), user());
    let tokens = e.admit_users(&[a, b]).await;
    let buckets = [(ip.as_str(), ONE), (acct.as_str(), ONE)];
    let gate = GateArgs {
        revoked: Some(&rev),
        buckets: &buckets,
    };
    // The revocation key is absent: the gate passes and the purchase buys.
    let out = gated(&mut e, gate, &tokens[0], a).await;
    assert_eq!(out, GatedOutcome::Purchase(reserved(99, 1)));
    let now = e.clock.now_ms();
    assert_eq!(tat(&mut e, &ip).await, Some(format!("{}.000", now + 1000)));
    assert_eq!(
        tat(&mut e, &acct).await,
        Some(format!("{}.000", now + 1000))
    );

    let out = gated(&mut e, gate, &tokens[1], b).await;
    let refused = GateVerdict::Refused {
        bucket: 0,
        retry_after_ms: 1000,
    };
    assert_eq!(out, GatedOutcome::Stopped(refused));
    assert_eq!(e.token_state(&tokens[1]).await, Some(format!("L|{b}")));
    assert_eq!(e.stock().await, 99, "the stopped purchase reserved nothing");
    assert_eq!(e.len("XLEN", e.k.orders()).await, 1);
    e.cleanup().await;
}

#[tokio::test]
async fn gated_purchase_a_later_empty_bucket_keeps_the_cells_before_it() {
    let mut e = Env::with(DropCfg::default()).await;
    let [_, ip, acct] = gate_keys();
    let (a, b) = (user(), user());
    let tokens = e.admit_users(&[a, b]).await;
    let buckets = [(ip.as_str(), ROOMY), (acct.as_str(), ONE)];
    let gate = GateArgs {
        revoked: None,
        buckets: &buckets,
    };
    assert_eq!(
        gated(&mut e, gate, &tokens[0], a).await,
        GatedOutcome::Purchase(reserved(99, 1))
    );
    let out = gated(&mut e, gate, &tokens[1], b).await;
    let refused = GateVerdict::Refused {
        bucket: 1,
        retry_after_ms: 1000,
    };
    assert_eq!(out, GatedOutcome::Stopped(refused));
    let now = e.clock.now_ms();
    assert_eq!(
        tat(&mut e, &ip).await,
        Some(format!("{}.000", now + 2000)),
        "the address bucket gave its cell before the account bucket refused"
    );
    assert_eq!(e.stock().await, 99);
    e.cleanup().await;
}

#[tokio::test]
async fn gated_purchase_a_refused_purchase_keeps_its_cells() {
    let mut e = Env::with(DropCfg::default()).await;
    let [rev, ip, _] = gate_keys();
    let u = user();
    e.admit_one(u).await;
    let buckets = [(ip.as_str(), ONE)];
    let gate = GateArgs {
        revoked: Some(&rev),
        buckets: &buckets,
    };
    let out = gated(&mut e, gate, "nope.1", u).await;
    let invalid = GatedOutcome::Purchase(rejected(PurchaseReject::InvalidToken));
    assert_eq!(out, invalid);
    let now = e.clock.now_ms();
    assert_eq!(tat(&mut e, &ip).await, Some(format!("{}.000", now + 1000)));
    // As two calls in a row would: the cell is spent, so the next try is refused.
    let out = gated(&mut e, gate, "nope.1", u).await;
    assert!(matches!(
        out,
        GatedOutcome::Stopped(GateVerdict::Refused { bucket: 0, .. })
    ));
    e.cleanup().await;
}

#[tokio::test]
async fn gated_purchase_without_gate_keys_is_the_purchase() {
    let mut e = Env::with(DropCfg::default()).await;
    let u = user();
    let token = e.admit_one(u).await;
    let gate = GateArgs {
        revoked: None,
        buckets: &[],
    };
    assert_eq!(
        gated(&mut e, gate, &token, u).await,
        GatedOutcome::Purchase(reserved(99, 1))
    );
    // And its replay, as purchase.lua answers it.
    assert_eq!(
        gated(&mut e, gate, &token, u).await,
        GatedOutcome::Purchase(replayed(99, 1))
    );
    e.cleanup().await;
}

#[tokio::test]
async fn gated_purchase_reads_the_redis_clock_once_for_the_gate_and_the_purchase() {
    let mut e = Env::with(DropCfg::default()).await;
    let (secs, micros): (i64, i64) = e.q(&mut redis::cmd("TIME")).await;
    let redis_now = secs * 1000 + micros / 1000;
    // A token that is live at the Redis server's time.
    e.clock = vq_core::Clock::manual(redis_now);
    let u = user();
    let token = e.admit_one(u).await;
    let [_, ip, _] = gate_keys();
    let buckets = [(ip.as_str(), ONE)];
    let gate = GateArgs {
        revoked: None,
        buckets: &buckets,
    };
    e.clock = vq_core::Clock::Redis;
    assert_eq!(
        gated(&mut e, gate, &token, u).await,
        GatedOutcome::Purchase(reserved(99, 1))
    );
    let receipt: String = e
        .q(redis::cmd("HGET").arg(&e.k.purchase_set()[10]).arg(&token))
        .await;
    let at: i64 = receipt.rsplit('|').next().unwrap().parse().unwrap();
    assert!(
        (redis_now..redis_now + 5000).contains(&at),
        "{at} vs {redis_now}"
    );
    // The bucket's cell was taken at the same instant: TAT = now + one interval.
    assert_eq!(tat(&mut e, &ip).await, Some(format!("{}.000", at + 1000)));
    e.cleanup().await;
}
