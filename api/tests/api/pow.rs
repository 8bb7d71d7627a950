//! Proof of work at join: a drop with `pow_difficulty` wants a solved, single-use challenge
//! bound to the account and drop, over HTTP and on the room socket.

use crate::helpers::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use vq_core::domain::DropId;

async fn join_with(app: &TestApp, drop: DropId, s: &Shopper, pow: Option<&str>) -> (u16, Value) {
    let mut req = app
        .http
        .post(app.url(&format!("/v1/drops/{drop}/queue")))
        .bearer_auth(&s.token);
    if let Some(p) = pow {
        req = req.header("X-VQ-Pow", p);
    }
    let res = req.send().await.unwrap();
    let st = res.status().as_u16();
    (st, res.json().await.unwrap_or(Value::Null))
}

fn solve(c: &Value, s: &Shopper, drop: DropId) -> String {
    let nonce = c["nonce"].as_str().unwrap();
    let bits = c["difficulty"].as_u64().unwrap() as u32;
    format!("{nonce}.{}", vq_core::pow::solve(nonce, s.user, drop, bits))
}

#[tokio::test]
async fn a_join_needs_a_single_use_solution_bound_to_account_and_drop() {
    let app = spawn_app().await;
    let drop = app
        .create_drop(json!({ "stock": 10, "pow_difficulty": 12 }))
        .await;
    let (a, b) = (app.shopper(), app.shopper());

    let (st, e) = join_with(&app, drop, &a, None).await;
    assert_eq!((st, e["code"].as_str()), (403, Some("pow_required")), "{e}");
    let c = &e["challenge"];
    assert_eq!(
        (c["difficulty"].as_u64(), c["expires_in"].as_u64()),
        (Some(12), Some(120))
    );
    let sol = solve(c, &a, drop);
    // Someone else cannot use a's solution (nor burn a's challenge by trying).
    let (st, e) = join_with(&app, drop, &b, Some(&sol)).await;
    assert_eq!((st, e["code"].as_str()), (403, Some("pow_required")), "{e}");
    let (st, e) = join_with(&app, drop, &a, Some("nonsense")).await;
    assert_eq!(st, 403, "{e}");
    let (st, e) = join_with(&app, drop, &a, Some(&sol)).await;
    assert_eq!((st, e["status"].as_str()), (200, Some("queued")), "{e}");
    // Already in: a rejoin needs no new work.
    let (st, _) = join_with(&app, drop, &a, None).await;
    assert_eq!(st, 200);

    // The challenge endpoint; a used solution does not work twice.
    let (st, c) = app
        .call(
            "GET",
            &format!("/v1/drops/{drop}/challenge"),
            Some(&b.token),
            None,
        )
        .await;
    assert_eq!((st, c["difficulty"].as_u64()), (200, Some(12)), "{c}");
    let sol_b = solve(&c, &b, drop);
    let (st, _) = join_with(&app, drop, &b, Some(&sol_b)).await;
    assert_eq!(st, 200);
    let c2 = app.shopper();
    let (st, _) = join_with(&app, drop, &c2, Some(&sol_b)).await;
    assert_eq!(st, 403, "used up");

    // The room socket takes the solution in the query.
    let d = app.shopper();
    let (_, c) = app
        .call(
            "GET",
            &format!("/v1/drops/{drop}/challenge"),
            Some(&d.token),
            None,
        )
        .await;
    let url = |pow: &str| {
        let mut r = format!("ws://127.0.0.1:{}/v1/drops/{drop}/room{pow}", app.port)
            .into_client_request()
            .unwrap();
        let auth = format!("Bearer {}", d.token).parse().unwrap();
        r.headers_mut().insert("authorization", auth);
        r
    };
    let refused = tokio_tungstenite::connect_async(url("")).await;
    assert!(refused.is_err(), "no solution, no room");
    let sol = solve(&c, &d, drop);
    let (mut ws, _) = tokio_tungstenite::connect_async(url(&format!("?pow={sol}")))
        .await
        .expect("a solved join opens the room");
    assert!(next_of(&mut ws, "position", 2000).await.is_some());
    app.cleanup().await;
}

#[tokio::test]
async fn difficulty_is_set_per_drop_and_zero_switches_it_off() {
    let app = spawn_app().await;
    let m = app.manager();
    let drop = app.create_drop(json!({ "stock": 10 })).await;
    let s = app.shopper();
    let (st, c) = app
        .call(
            "GET",
            &format!("/v1/drops/{drop}/challenge"),
            Some(&s.token),
            None,
        )
        .await;
    assert_eq!((st, c["difficulty"].as_u64()), (200, Some(0)));
    let (st, e) = app
        .call(
            "PATCH",
            &format!("/v1/admin/drops/{drop}"),
            Some(&m),
            Some(json!({ "pow_difficulty": 33 })),
        )
        .await;
    assert_eq!(
        (st, e["fields"]["pow_difficulty"].is_string()),
        (422, true),
        "{e}"
    );
    let (st, d) = app
        .call(
            "PATCH",
            &format!("/v1/admin/drops/{drop}"),
            Some(&m),
            Some(json!({ "pow_difficulty": 8 })),
        )
        .await;
    assert_eq!((st, d["pow_difficulty"].as_i64()), (200, Some(8)), "{d}");
    let (st, _) = join_with(&app, drop, &s, None).await;
    assert_eq!(st, 403);
    let stored: i32 = sqlx::query_scalar("SELECT pow_difficulty FROM drops WHERE id = $1")
        .bind(drop.get())
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 8);
    app.call(
        "PATCH",
        &format!("/v1/admin/drops/{drop}"),
        Some(&m),
        Some(json!({ "pow_difficulty": 0 })),
    )
    .await;
    let (st, _) = join_with(&app, drop, &s, None).await;
    assert_eq!(st, 200);
    app.cleanup().await;
}
