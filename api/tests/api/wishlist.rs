//! Wishlist (owner only) and the "pre-queue is open" notification: stored for the web,
//! pushed to open sockets, exactly once.

use crate::helpers::*;
use serde_json::json;
use vq_core::config::Payment;
use vq_core::Clock;

async fn product(app: &TestApp, name: &str) -> i64 {
    let (st, p) = app
        .call(
            "POST",
            "/v1/admin/products",
            Some(&app.manager()),
            Some(json!({ "name": name, "price_cents": 500 })),
        )
        .await;
    assert_eq!(st, 201);
    p["id"].as_i64().unwrap()
}

#[tokio::test]
async fn buyers_keep_their_own_wishlist() {
    let app = spawn_app().await;
    let (a, b) = (app.shopper(), app.shopper());
    let (p1, p2) = (product(&app, "Jacket").await, product(&app, "Cap").await);
    let (st, e) = app
        .call(
            "PUT",
            &format!("/v1/wishlist/{p1}"),
            Some(&a.token),
            Some(json!({ "note": "size M" })),
        )
        .await;
    assert_eq!(
        (st, e["note"].as_str(), e["notify"].as_bool()),
        (201, Some("size M"), Some(true))
    );
    let (st, e) = app
        .call(
            "PUT",
            &format!("/v1/wishlist/{p1}"),
            Some(&a.token),
            Some(json!({ "notify": false })),
        )
        .await;
    assert_eq!(
        (st, e["note"].as_str(), e["notify"].as_bool()),
        (200, Some("size M"), Some(false)),
        "update keeps the note"
    );
    let (st, _) = app
        .call("PUT", &format!("/v1/wishlist/{p2}"), Some(&a.token), None)
        .await;
    assert_eq!(st, 201, "the body is optional");
    let (_, list) = app.call("GET", "/v1/wishlist", Some(&a.token), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert_eq!(list["items"][0]["product_name"], "Cap");
    let (_, other) = app.call("GET", "/v1/wishlist", Some(&b.token), None).await;
    assert_eq!(other["items"], json!([]), "another account sees nothing");
    let (st, _) = app
        .call(
            "DELETE",
            &format!("/v1/wishlist/{p2}"),
            Some(&b.token),
            None,
        )
        .await;
    assert_eq!(st, 204);
    let (_, list) = app.call("GET", "/v1/wishlist", Some(&a.token), None).await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        2,
        "b cannot remove a's entries"
    );

    let (st, e) = app
        .call("PUT", "/v1/wishlist/999999", Some(&a.token), None)
        .await;
    assert_eq!((st, e["code"].as_str()), (404, Some("product_not_found")));
    let (st, e) = app
        .call(
            "PUT",
            &format!("/v1/wishlist/{p1}"),
            Some(&a.token),
            Some(json!({ "note": "x".repeat(501) })),
        )
        .await;
    assert_eq!((st, e["code"].as_str()), (422, Some("validation_failed")));
    let res = app
        .http
        .put(app.url(&format!("/v1/wishlist/{p1}")))
        .bearer_auth(&a.token)
        .body("{\"note\":")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let (st, _) = app.call("GET", "/v1/wishlist", None, None).await;
    assert_eq!(st, 401);
    let (st, _) = app
        .call(
            "DELETE",
            &format!("/v1/wishlist/{p2}"),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(st, 204);
    let (_, list) = app.call("GET", "/v1/wishlist", Some(&a.token), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    app.cleanup().await;
}

/// A real account (so it has an email address) with a fresh access token.
async fn account(app: &TestApp, email: &str) -> Shopper {
    let id = crate::accounts::make_account(app, email, false).await;
    let (access, _) = crate::accounts::tokens(app, email).await;
    Shopper {
        user: vq_core::domain::UserId(id),
        token: access,
    }
}

#[tokio::test]
async fn wishlisters_are_told_once_when_the_prequeue_opens() {
    let start = chrono::Utc::now() + chrono::Duration::hours(1);
    let clock = Clock::manual(start.timestamp_millis() - 20 * 60_000);
    let (app, mut sink) = crate::accounts::spawn_with_mail(clock.clone(), |_| {}).await;
    let pid = product(&app, "Sneaker X").await;
    let fan_email = crate::accounts::email();
    let fan = account(&app, &fan_email).await;
    let quiet = account(&app, &crate::accounts::email()).await;
    let stranger = app.shopper();
    app.call(
        "PUT",
        &format!("/v1/wishlist/{pid}"),
        Some(&fan.token),
        None,
    )
    .await;
    app.call(
        "PUT",
        &format!("/v1/wishlist/{pid}"),
        Some(&quiet.token),
        Some(json!({ "notify": false })),
    )
    .await;
    let drop = app
        .create_drop(json!({ "product_id": pid, "product_name": null, "starts_at": start.to_rfc3339(), "prequeue_s": 600 }))
        .await;
    // The fan is waiting in another drop's room: the notice is pushed there too.
    let elsewhere = app.create_drop(json!({})).await;
    let mut ws = app.ws(elsewhere, &fan).await;
    next_of(&mut ws, "position", 2000).await.unwrap();

    let mut sched = app.scheduler(Payment::default());
    assert_eq!(sched.tick().await.unwrap().notified, 0, "not open yet");
    clock.advance(11 * 60_000);
    let r = sched.tick().await.unwrap();
    assert_eq!((r.notified, r.emailed), (1, 1));
    let r = sched.tick().await.unwrap();
    assert_eq!((r.notified, r.emailed), (0, 0), "exactly once");
    let mail = sink.next().await;
    assert_eq!(mail.to, vec![fan_email.to_lowercase()]);
    assert!(mail.body().contains("Sneaker X"), "{}", mail.body());
    assert!(sink.is_empty().await, "nobody else was mailed");
    let pushed = next_of(&mut ws, "notification", 3000)
        .await
        .expect("pushed to the open socket");
    assert_eq!(
        (pushed["kind"].as_str(), pushed["drop_id"].as_i64()),
        (Some("prequeue_open"), Some(drop.get()))
    );
    assert!(pushed.get("users").is_none(), "no other accounts leak");
    let (_, n) = app
        .call("GET", "/v1/notifications", Some(&fan.token), None)
        .await;
    assert_eq!(n["items"].as_array().unwrap().len(), 1);
    assert!(n["items"][0]["message"]
        .as_str()
        .unwrap()
        .contains("Sneaker X"));
    for s in [&quiet, &stranger] {
        let (_, n) = app
            .call("GET", "/v1/notifications", Some(&s.token), None)
            .await;
        assert_eq!(n["items"], json!([]));
    }
    app.cleanup().await;
}

#[tokio::test]
async fn a_note_with_control_characters_is_422_and_nothing_is_stored() {
    let app = spawn_app().await;
    let s = app.shopper();
    let p = product(&app, "Scarf").await;
    for note in ["a\u{0}b", "bell\u{7}", "esc\u{1b}[2J", "c1\u{85}"] {
        let (st, e) = app
            .call(
                "PUT",
                &format!("/v1/wishlist/{p}"),
                Some(&s.token),
                Some(json!({ "note": note })),
            )
            .await;
        assert_eq!(
            (st, e["code"].as_str()),
            (422, Some("validation_failed")),
            "{e}"
        );
        assert!(e["fields"]["note"].is_string(), "{e}");
    }
    let (_, list) = app.call("GET", "/v1/wishlist", Some(&s.token), None).await;
    assert_eq!(list["items"], json!([]), "nothing stored");
    let (st, e) = app
        .call(
            "PUT",
            &format!("/v1/wishlist/{p}"),
            Some(&s.token),
            Some(json!({ "note": "size M\nblue\tor green" })),
        )
        .await;
    assert_eq!(
        (st, e["note"].as_str()),
        (201, Some("size M\nblue\tor green"))
    );
    app.cleanup().await;
}
