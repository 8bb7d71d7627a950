//! lua/rate.lua, every branch; and one autopilot step (`vq_core::autopilot::signals`)
//! reading real keys: the lease, the order lag, the p99 and the unused tokens.

use crate::env::{DropCfg, Env, T0};
use vq_core::autopilot::{signals, RateChange, Reason};
use vq_core::scripts::{RateBy, RateOutcome};

const GROUP: &str = "vq-workers";

impl Env {
    async fn set_rate(&mut self, rate: u32, reason: Reason, by: RateBy) -> RateOutcome {
        self.scripts
            .set_rate(
                &mut self.conn,
                &self.k,
                &self.clock,
                rate,
                reason.as_str(),
                by,
            )
            .await
            .expect("rate.lua")
    }

    async fn rate_log(&mut self) -> Vec<RateChange> {
        let raw: Vec<String> = self
            .q(redis::cmd("LRANGE").arg(self.k.ratelog()).arg(0).arg(-1))
            .await;
        raw.iter()
            .map(|s| serde_json::from_str(s).unwrap())
            .collect()
    }

    async fn autopilot_on(&mut self, min: u32, max: u32) {
        for (f, v) in [
            ("ap", 1),
            ("ap_min", min),
            ("ap_max", max),
            ("ap_base", 100),
        ] {
            self.set_cfg(f, v).await;
        }
        self.set_cfg("ap_p99_ms", 200).await;
        self.set_cfg("ap_lag_ms", 1000).await;
    }
}

fn auto(from: u32) -> RateBy {
    RateBy::Autopilot { from }
}

#[tokio::test]
async fn the_autopilot_writes_only_while_on_and_from_the_rate_it_read() {
    let mut e = Env::with(DropCfg {
        rate: 100,
        ..DropCfg::default()
    })
    .await;
    assert_eq!(
        e.set_rate(50, Reason::OrderLag, auto(100)).await,
        RateOutcome::Off
    );
    e.set_cfg("ap", 1).await;
    assert_eq!(
        e.set_rate(50, Reason::OrderLag, auto(90)).await,
        RateOutcome::Moved { now: 100 },
        "a manager changed the rate in between"
    );
    assert_eq!(
        e.set_rate(100, Reason::Recover, auto(100)).await,
        RateOutcome::Unchanged
    );
    assert!(e.rate_log().await.is_empty(), "nothing written so far");
    assert_eq!(
        e.set_rate(50, Reason::OrderLag, auto(100)).await,
        RateOutcome::Set { old: 100 }
    );
    assert_eq!(e.cfg_field("rate").await.as_deref(), Some("50"));
    assert_eq!(
        e.cfg_field("rate_reason").await.as_deref(),
        Some("order_lag")
    );
    assert_eq!(e.cfg_field("rate_at").await, Some(T0.to_string()));
    let log = e.rate_log().await;
    let want = RateChange {
        t_ms: T0,
        old: 100,
        new: 50,
        reason: Reason::OrderLag,
    };
    assert_eq!(log, vec![want]);
}

#[tokio::test]
async fn a_manager_always_writes_and_is_recorded_even_unchanged() {
    let mut e = Env::with(DropCfg {
        rate: 100,
        ..DropCfg::default()
    })
    .await;
    assert_eq!(
        e.set_rate(100, Reason::Manual, RateBy::Manager).await,
        RateOutcome::Set { old: 100 }
    );
    e.clock.advance(5);
    assert_eq!(
        e.set_rate(30, Reason::Manual, RateBy::Manager).await,
        RateOutcome::Set { old: 100 }
    );
    let log = e.rate_log().await;
    assert_eq!(log.len(), 2);
    assert_eq!((log[1].old, log[1].new, log[1].t_ms), (100, 30, T0 + 5));
    assert_eq!(log[1].reason, Reason::Manual);
}

#[tokio::test]
async fn the_log_is_capped_to_its_newest_entries() {
    let mut e = Env::with(DropCfg {
        rate: 1,
        ..DropCfg::default()
    })
    .await;
    for r in 0..(vq_core::autopilot::LOG_CAP as u32 + 3) {
        e.set_rate(r + 2, Reason::Manual, RateBy::Manager).await;
    }
    let log = e.rate_log().await;
    assert_eq!(log.len(), vq_core::autopilot::LOG_CAP);
    assert_eq!(
        log.last().unwrap().new,
        vq_core::autopilot::LOG_CAP as u32 + 4
    );
}

#[tokio::test]
async fn lost_state_is_never_written_over() {
    let mut e = Env::bare().await;
    assert_eq!(
        e.set_rate(5, Reason::Manual, RateBy::Manager).await,
        RateOutcome::NoDrop
    );
    e.set_cfg("state", "active").await;
    assert_eq!(
        e.set_rate(5, Reason::Manual, RateBy::Manager).await,
        RateOutcome::NeedsRebuild
    );
    assert_eq!(e.cfg_field("rate").await, None);
    assert!(e.rate_log().await.is_empty());
}

#[tokio::test]
async fn a_step_backs_off_on_order_lag_once_per_lease() {
    let mut e = Env::with(DropCfg {
        rate: 100,
        ..DropCfg::default()
    })
    .await;
    let step = |e: &mut Env| {
        let (mut c, s, k, clock) = (
            e.conn.clone(),
            e.scripts.clone(),
            e.k.clone(),
            e.clock.clone(),
        );
        async move {
            signals::step(&mut c, &s, &k, &clock, GROUP, 60_000)
                .await
                .unwrap()
        }
    };
    assert_eq!(step(&mut e).await, None, "autopilot off");
    e.autopilot_on(10, 200).await;
    // someone waits; an order entered the stream 5 s ago (by Redis time) and is unread
    let _: i64 = e
        .q(redis::cmd("ZADD").arg(e.k.queue()).arg(1).arg("u"))
        .await;
    let _: () = e
        .q(redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(e.k.orders())
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM"))
        .await;
    let (secs, _): (i64, i64) = e.q(&mut redis::cmd("TIME")).await;
    let id = format!("{}-1", (secs - 5) * 1000);
    let _: String = e
        .q(redis::cmd("XADD")
            .arg(e.k.orders())
            .arg(&id)
            .arg("token")
            .arg("t"))
        .await;
    let s = step(&mut e).await.expect("decided");
    assert!(
        s.inputs.lag_ms >= 5000 && s.inputs.lag_ms < 7000,
        "{:?}",
        s.inputs
    );
    assert_eq!(
        s.decision.unwrap().rate,
        10,
        "five times the target: to min_rate"
    );
    assert_eq!(s.applied, Some(RateOutcome::Set { old: 100 }));
    assert_eq!(step(&mut e).await, None, "one decision per lease");
    // delivered but not acknowledged is still unwritten
    let _: redis::Value = e
        .q(redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg("w")
            .arg("STREAMS")
            .arg(e.k.orders())
            .arg(">"))
        .await;
    let _: i64 = e.q(redis::cmd("DEL").arg(e.k.ap_lease())).await;
    let s = step(&mut e).await.unwrap();
    assert!(s.inputs.lag_ms >= 5000, "{:?}", s.inputs);
    assert_eq!(s.decision, None, "already at min_rate");
    // written: no lag; half the resolved tokens expired unused → the rate climbs
    let _: i64 = e
        .q(redis::cmd("XACK").arg(e.k.orders()).arg(GROUP).arg(&id))
        .await;
    // 100 tokens admitted 40 s ago (past the 30 s TTL: settled), 50 just now (not yet)
    let old = format!("{}-0", (secs - 40) * 1000);
    for (id, first, n) in [(old.as_str(), 1, 100), ("*", 101, 50)] {
        let _: String = e
            .q(redis::cmd("XADD")
                .arg(e.k.admlog())
                .arg(id)
                .arg("first")
                .arg(first)
                .arg("n")
                .arg(n))
            .await;
    }
    let _: () = e.q(redis::cmd("SET").arg(e.k.expired()).arg(50)).await;
    let _: i64 = e.q(redis::cmd("DEL").arg(e.k.ap_lease())).await;
    let s = step(&mut e).await.unwrap();
    assert_eq!(
        (s.inputs.lag_ms, s.inputs.expired, s.inputs.resolved),
        (0, 50, 100)
    );
    assert_eq!(s.decision.unwrap().rate, 29);
}

#[tokio::test]
async fn a_step_reads_the_fleets_p99_and_the_caps() {
    let mut e = Env::with(DropCfg {
        rate: 100,
        max_holders: 5,
        ..DropCfg::default()
    })
    .await;
    e.autopilot_on(10, 200).await;
    let (secs, _): (i64, i64) = e.q(&mut redis::cmd("TIME")).await;
    // two nodes' last second: 98 fast purchases, 2 at ~400 ms
    let slow = vq_core::autopilot::sketch::bucket(std::time::Duration::from_millis(400));
    let _: i64 = e
        .q(redis::cmd("HINCRBY")
            .arg(e.k.aplat(secs - 1))
            .arg(2)
            .arg(98))
        .await;
    let _: i64 = e
        .q(redis::cmd("HINCRBY")
            .arg(e.k.aplat(secs - 2))
            .arg(slow)
            .arg(2))
        .await;
    let _: i64 = e
        .q(redis::cmd("ZADD").arg(e.k.queue()).arg(1).arg("u"))
        .await;
    let mut c = e.conn.clone();
    let s = signals::step(&mut c, &e.scripts, &e.k, &e.clock, GROUP, 60_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.inputs.p99_ms, Some(500));
    assert_eq!(s.decision.unwrap().reason, Reason::PurchaseP99);
    assert!(!s.inputs.capped);
    // five live holders: the holder cap binds
    for i in 0..5 {
        let _: i64 = e
            .q(redis::cmd("ZADD")
                .arg(e.k.expiry())
                .arg(T0 + 1000)
                .arg(format!("t{i}")))
            .await;
    }
    let _: i64 = e
        .q(redis::cmd("DEL")
            .arg(e.k.ap_lease())
            .arg(e.k.aplat(secs - 2)))
        .await;
    let s = signals::step(&mut c, &e.scripts, &e.k, &e.clock, GROUP, 60_000)
        .await
        .unwrap()
        .unwrap();
    assert!(s.inputs.capped, "{:?}", s.inputs);
    assert_eq!(
        s.decision, None,
        "capped: below the manager's rate, yet held"
    );
}
