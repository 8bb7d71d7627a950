//! E-mail code and signup: validation, the mailed code (TTL, tries, single use, never
//! in a response) and duplicates.

use crate::accounts::*;
use serde_json::json;
use vq_core::Clock;

#[tokio::test]
async fn signup_with_the_mailed_code_creates_an_account_with_its_profile() {
    let (app, mut sink) = spawn_with_mail(Clock::Redis, |_| {}).await;
    let addr = email();
    let code = request_code(&app, &mut sink, &addr).await;
    let (st, body) = app
        .call("POST", "/v1/auth/signup", None, Some(profile(&addr, &code)))
        .await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["email"], addr.to_lowercase());
    assert_eq!(body["role"], "shopper");
    assert!(!body.to_string().contains(&code));

    // Login works with any case of the address; /v1/me shows the decrypted profile.
    let (access, _) = tokens(&app, &addr.to_uppercase()).await;
    let (st, me) = app.call("GET", "/v1/me", Some(&access), None).await;
    assert_eq!(st, 200, "{me}");
    assert_eq!(me["id"], body["id"]);
    assert_eq!(me["email"], addr.to_lowercase());
    assert_eq!(me["name"], "Ann Lee");
    assert_eq!(me["address"], "Main Street 1\n10115 Berlin");
    assert_eq!(me["phone"], "+49301234567");
    assert_eq!(me["role"], "shopper");
    app.cleanup().await;
}

#[tokio::test]
async fn bad_input_is_422_naming_every_field_and_changes_nothing() {
    let (app, mut sink) = spawn_with_mail(Clock::Redis, |_| {}).await;
    let (st, b) = app
        .call("POST", "/v1/auth/signup", None, Some(json!({})))
        .await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(b["code"], "validation_failed");
    for f in ["email", "code", "password", "name", "address", "phone"] {
        assert_eq!(b["fields"][f], "is required", "{f}: {b}");
    }

    let addr = email();
    let code = request_code(&app, &mut sink, &addr).await;
    let bad = json!({
        "email": "not-an-email", "code": "12ab56", "password": "short",
        "name": " ", "address": "x", "phone": "030 1234",
    });
    let (st, b) = app.call("POST", "/v1/auth/signup", None, Some(bad)).await;
    assert_eq!(st, 422, "{b}");
    for f in ["email", "code", "password", "name", "address", "phone"] {
        assert!(b["fields"][f].is_string(), "{f}: {b}");
    }
    // One bad field alone still fails, and does not burn the code.
    let mut weak = profile(&addr, &code);
    weak["password"] = json!("aaaaaaaaaaaaaaaa");
    let (st, b) = app.call("POST", "/v1/auth/signup", None, Some(weak)).await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(b["fields"].as_object().unwrap().len(), 1, "{b}");
    assert!(b["fields"]["password"].is_string());
    assert_eq!(user_count(&app).await, 0);

    let (st, b) = app
        .call(
            "POST",
            "/v1/auth/email-code",
            None,
            Some(json!({ "email": "nope" })),
        )
        .await;
    assert_eq!(st, 422, "{b}");
    assert!(b["fields"]["email"].is_string());
    let (st, b) = app
        .call("POST", "/v1/auth/signup", None, Some(profile(&addr, &code)))
        .await;
    assert_eq!(st, 201, "the earlier rejections left the code intact: {b}");
    app.cleanup().await;
}

#[tokio::test]
async fn a_second_account_for_the_same_email_is_409() {
    let (app, mut sink) = spawn_with_mail(Clock::Redis, |_| {}).await;
    let addr = email();
    sign_up(&app, &mut sink, &addr).await;
    // The code endpoint answers the same for a taken address (no probing) …
    let code = request_code(&app, &mut sink, &addr.to_uppercase()).await;
    // … and only the mailbox owner, holding the code, learns of the duplicate.
    let (st, b) = app
        .call(
            "POST",
            "/v1/auth/signup",
            None,
            Some(profile(&addr.to_uppercase(), &code)),
        )
        .await;
    assert_eq!(st, 409, "{b}");
    assert_eq!(b["code"], "email_taken");
    assert_eq!(user_count(&app).await, 1);
    app.cleanup().await;
}

#[tokio::test]
async fn a_code_expires_after_five_minutes() {
    let clock = Clock::manual(1_800_000_000_000);
    let (app, mut sink) = spawn_with_mail(clock.clone(), |_| {}).await;
    let (a, b) = (email(), email());
    let code_a = request_code(&app, &mut sink, &a).await;
    let code_b = request_code(&app, &mut sink, &b).await;
    clock.advance(299_000);
    let (st, body) = app
        .call("POST", "/v1/auth/signup", None, Some(profile(&a, &code_a)))
        .await;
    assert_eq!(st, 201, "still valid just before 5 minutes: {body}");
    clock.advance(1_000);
    let (st, body) = app
        .call("POST", "/v1/auth/signup", None, Some(profile(&b, &code_b)))
        .await;
    assert_eq!(st, 410, "{body}");
    assert_eq!(body["code"], "code_expired");
    assert_eq!(user_count(&app).await, 1);
    // A used or expired code is deleted, not left behind.
    let key = app.keys.email_code("");
    let pattern = format!("{key}*");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut app.redis.clone())
        .await
        .unwrap();
    assert!(keys.is_empty(), "expired/used codes are deleted: {keys:?}");
    app.cleanup().await;
}

#[tokio::test]
async fn five_wrong_tries_kill_the_code() {
    let (app, mut sink) = spawn_with_mail(Clock::Redis, |_| {}).await;
    let addr = email();
    let code = request_code(&app, &mut sink, &addr).await;
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    for left in (1..=4).rev() {
        let (st, b) = app
            .call(
                "POST",
                "/v1/auth/signup",
                None,
                Some(profile(&addr, &wrong)),
            )
            .await;
        assert_eq!(st, 422, "{b}");
        assert_eq!(b["code"], "invalid_code");
        assert_eq!(b["tries_left"], left);
    }
    let (st, b) = app
        .call(
            "POST",
            "/v1/auth/signup",
            None,
            Some(profile(&addr, &wrong)),
        )
        .await;
    assert_eq!((st, b["code"].as_str()), (410, Some("code_expired")), "{b}");
    let (st, b) = app
        .call("POST", "/v1/auth/signup", None, Some(profile(&addr, &code)))
        .await;
    assert_eq!(st, 410, "the right code after five misses is dead too: {b}");
    assert_eq!(user_count(&app).await, 0);
    app.cleanup().await;
}

#[tokio::test]
async fn a_code_works_once_and_asking_again_resends_the_live_one() {
    let (app, mut sink) = spawn_with_mail(Clock::Redis, |_| {}).await;
    let addr = email();
    let first = request_code(&app, &mut sink, &addr).await;
    let wrong = if first == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (st, b) = app
        .call("POST", "/v1/auth/signup", None, Some(profile(&addr, wrong)))
        .await;
    assert_eq!((st, b["code"].as_str()), (422, Some("invalid_code")), "{b}");
    let again = request_code(&app, &mut sink, &addr).await;
    assert_eq!(
        again, first,
        "a resend mails the live code, it does not replace it"
    );
    let (st, b) = app
        .call(
            "POST",
            "/v1/auth/signup",
            None,
            Some(profile(&addr, &again)),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let (st, b) = app
        .call(
            "POST",
            "/v1/auth/signup",
            None,
            Some(profile(&addr, &again)),
        )
        .await;
    assert_eq!((st, b["code"].as_str()), (410, Some("code_expired")), "{b}");
    app.cleanup().await;
}
