//! Fairness over HTTP (docs/fairness.md, sections "Fairness report" and "Stock-aware
//! positions"): the fairness report, stock-aware positions (units_left,
//! chance, ETA range) and the final sold_out within one tick, and the manager's simulator.

use crate::helpers::*;
use redis::AsyncCommands;
use serde_json::{json, Value};
use vq_core::domain::DropId;

async fn report(app: &TestApp, drop: DropId) -> Value {
    let (st, v) = app
        .call("GET", &format!("/v1/drops/{drop}/fairness"), None, None)
        .await;
    assert_eq!(st, 200, "{v}");
    v["report"].clone()
}

#[tokio::test]
async fn the_report_tells_joins_fifo_peak_tokens_and_outcomes() {
    let app = spawn_app().await;
    let drop = app
        .create_drop(json!({ "stock": 3, "admission_rate": 100, "token_ttl_s": 60 }))
        .await;
    let shoppers: Vec<Shopper> = (0..6).map(|_| app.shopper()).collect();
    for s in &shoppers {
        assert_eq!(app.join(drop, s).await.0, 200);
    }
    let out = app.admitter().tick_drop(drop).await.unwrap();
    assert_eq!(out.admitted.len(), 5, "ceil(3 × 1.5) live tokens");
    for s in &shoppers[..3] {
        let token = app.admitted_token(drop, s).await;
        assert_eq!(app.purchase(drop, s, &token, 1).await.0, 201);
    }
    let r = report(&app, drop).await;
    assert_eq!(r["joiners"], 6);
    assert_eq!(r["prequeue_joiners"], 0);
    assert_eq!(
        r["fifo"],
        json!({"kendall_tau": 1.0, "inversions": 0, "admissions_checked": 5,
               "admissions_without_join_record": 0, "capped": false})
    );
    assert_eq!(r["max_admissions_in_any_second"], 5);
    assert_eq!(r["rate"], 100);
    assert_eq!(
        (r["tokens_issued"].clone(), r["units_sold"].clone()),
        (json!(5), json!(3))
    );
    assert_eq!(r["tokens_per_unit"], 1.667);
    assert_eq!(r["outcomes"]["bought"], 3);
    assert!(r["sell_out_s"].as_f64().unwrap() >= 0.0, "{r}");
    assert_eq!(r["final"], false, "two live tokens and open reservations");
    assert!(r["draw"]["commitment"].as_str().unwrap().len() == 64);

    // A report is cached briefly; two admissions swapped (the join records untouched)
    // show as one inversion.
    let k = app.keys.drop(drop);
    let mut redis = app.redis.clone();
    let _: () = redis.del(k.fairrep()).await.unwrap();
    let order: Vec<String> = redis.lrange(k.admorder(), 0, -1).await.unwrap();
    let _: () = redis.lset(k.admorder(), 1, &order[2]).await.unwrap();
    let _: () = redis.lset(k.admorder(), 2, &order[1]).await.unwrap();
    let r = report(&app, drop).await;
    assert_eq!(r["fifo"]["inversions"], 1);
    assert!(r["fifo"]["kendall_tau"].as_f64().unwrap() < 1.0);
    // An admission whose join left no record is counted, not checked.
    let _: () = redis.del(k.fairrep()).await.unwrap();
    let _: () = redis.hdel(k.joins(), &order[0]).await.unwrap();
    let r = report(&app, drop).await;
    assert_eq!(r["fifo"]["admissions_checked"], 4);
    assert_eq!(r["fifo"]["admissions_without_join_record"], 1);
    app.cleanup().await;
}

#[tokio::test]
async fn positions_carry_stock_and_an_eta_range_and_end_in_sold_out_within_one_tick() {
    let app = spawn_app().await;
    let drop = app
        .create_drop(json!({ "stock": 1, "admission_rate": 10, "token_ttl_s": 60 }))
        .await;
    let (a, b, c) = (app.shopper(), app.shopper(), app.shopper());
    for s in [&a, &b] {
        app.join(drop, s).await;
    }
    let mut ws = app.ws(drop, &c).await;
    let m = next_of(&mut ws, "position", 3000).await.unwrap();
    assert_eq!(
        (m["ahead"].clone(), m["units_left"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(m["chance"], "unlikely", "two ahead, one unit: {m}");
    assert!(m["eta_hi_s"].as_f64().unwrap() >= m["eta_s"].as_f64().unwrap());
    let (_, first) = app.place(drop, &a).await;
    assert_eq!(
        (first["chance"].clone(), first["units_left"].clone()),
        (json!("likely"), json!(1))
    );

    let mut adm = app.admitter();
    adm.tick_drop(drop).await.unwrap();
    let token = app.admitted_token(drop, &a).await;
    assert_eq!(app.purchase(drop, &a, &token, 1).await.0, 201);
    // b's token expiring and a's reservation paid leave nothing that can come back.
    let k = app.keys.drop(drop);
    let mut r = app.redis.clone();
    let _: () = r.del(k.expiry()).await.unwrap();
    for t in r.hkeys::<_, Vec<String>>(k.unpaid()).await.unwrap() {
        vq_core::Scripts::default()
            .settle_reservation(&mut r, &k, &t)
            .await
            .unwrap();
    }
    assert_eq!(adm.tick_drop(drop).await.unwrap().status, "sold_out");
    let m = loop {
        let m = next_of(&mut ws, "sold_out", 3000)
            .await
            .expect("told within the tick");
        if m["final"] == true {
            break m;
        }
    };
    assert_eq!(m["waitlist"], false);
    app.cleanup().await;
}

#[tokio::test]
async fn the_simulator_answers_managers_and_names_every_bad_field() {
    let app = spawn_app().await;
    let body = json!({"buyers": 2000, "stock": 200, "rate": 100, "token_ttl_s": 10,
                      "abandon": 0.2, "fail": 0.0, "overbook": 1.5});
    let (st, v) = app
        .call(
            "POST",
            "/v1/admin/simulate",
            Some(&app.manager()),
            Some(body.clone()),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    for f in [
        "sell_out_s",
        "wait_p50_s",
        "wait_p90_s",
        "wait_p99_s",
        "tokens_per_unit",
        "served_share",
    ] {
        assert!(v[f].is_number(), "{f}: {v}");
    }
    assert!(
        (v["served_share"].as_f64().unwrap() - 0.1).abs() < 1e-9,
        "{v}"
    );
    let shopper = app.shopper();
    let (st, _) = app
        .call(
            "POST",
            "/v1/admin/simulate",
            Some(&shopper.token),
            Some(body),
        )
        .await;
    assert_eq!(st, 403);
    let bad = json!({"buyers": 2_000_000, "stock": "ten", "rate": 0, "token_ttl_s": 10,
                     "abandon": 2, "overbook": 1.5, "extra": 1});
    let (st, v) = app
        .call(
            "POST",
            "/v1/admin/simulate",
            Some(&app.manager()),
            Some(bad),
        )
        .await;
    assert_eq!(
        (st, v["code"].as_str()),
        (422, Some("validation_failed")),
        "{v}"
    );
    let fields: Vec<&String> = v["fields"].as_object().unwrap().keys().collect();
    assert_eq!(
        fields,
        ["abandon", "buyers", "extra", "fail", "rate", "stock"],
        "{v}"
    );
    app.cleanup().await;
}
