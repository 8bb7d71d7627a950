//! What is stored and with which keys: personal data encrypted, codes and passwords
//! hashed; accounts off without keys; mail failures; the create-manager command.

use crate::accounts::*;
use crate::helpers::*;
use serde_json::json;
use vq_core::Clock;

#[tokio::test]
async fn personal_data_is_encrypted_at_rest_and_codes_are_stored_hashed() {
    let (app, mut sink) = spawn_with_mail(Clock::Redis, |_| {}).await;
    let addr = email();
    let code = request_code(&app, &mut sink, &addr).await;
    let stored: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(app.keys.email_code(&hex_of_email_hash(&app, &addr)))
        .query_async(&mut app.redis.clone())
        .await
        .unwrap();
    assert!(stored.contains_key("h"), "{stored:?}");
    assert!(
        stored.values().all(|v| !v.contains(&code)),
        "plain code in Redis"
    );
    let ttl: i64 = redis::cmd("PTTL")
        .arg(app.keys.email_code(&hex_of_email_hash(&app, &addr)))
        .query_async(&mut app.redis.clone())
        .await
        .unwrap();
    assert!(
        (1..=300_000).contains(&ttl),
        "code key expires in Redis too: {ttl}"
    );
    let (st, b) = app
        .call("POST", "/v1/auth/signup", None, Some(profile(&addr, &code)))
        .await;
    assert_eq!(st, 201, "{b}");

    type Row = (Vec<u8>, Vec<u8>, String, Vec<u8>, Vec<u8>, Vec<u8>);
    let row: Row = sqlx::query_as(
        "SELECT email_hash, email_enc, password_hash, name_enc, address_enc, phone_enc FROM users",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    let all = [&row.0, &row.1, &row.3, &row.4, &row.5];
    for plain in [
        addr.to_lowercase().as_str(),
        "Ann Lee",
        "Main Street",
        "4930123",
        "Berlin",
    ] {
        for col in all {
            let hay = String::from_utf8_lossy(col);
            assert!(!hay.contains(plain), "{plain} readable at rest");
            assert!(!hex::encode(col).contains(&hex::encode(plain)));
        }
    }
    assert!(row.2.starts_with("$argon2id$"), "{}", row.2);
    assert!(!row.2.contains(PASSWORD));
    // Version byte, 96-bit nonce, ciphertext and 128-bit tag.
    assert_eq!(row.3.len(), 1 + 12 + "Ann Lee".len() + 16);
    assert_eq!(row.0.len(), 32, "HMAC-SHA256 lookup hash");
    app.cleanup().await;
}

fn hex_of_email_hash(app: &TestApp, addr: &str) -> String {
    let acc = app.state.accounts.as_ref().unwrap();
    hex::encode(
        acc.hasher
            .email(&vq_core::account::Email::parse(addr).unwrap()),
    )
}

#[tokio::test]
async fn an_unreachable_mail_server_is_503_and_accounts_need_keys() {
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let app = spawn_app_with(Opts {
        configure: Some(Box::new(move |s: &mut vq_core::Settings| {
            s.smtp.port = dead_port;
            s.smtp.timeout_ms = 2000;
        })),
        ..Opts::default()
    })
    .await;
    let (st, b) = app
        .call(
            "POST",
            "/v1/auth/email-code",
            None,
            Some(json!({ "email": email() })),
        )
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (503, Some("mail_unavailable")),
        "{b}"
    );
    app.cleanup().await;

    let app = spawn_app_with(Opts {
        configure: Some(Box::new(|s: &mut vq_core::Settings| {
            s.auth.pii_key = None;
            s.auth.email_hash_key = None;
        })),
        ..Opts::default()
    })
    .await;
    for (path, body) in [
        ("/v1/auth/email-code", json!({ "email": email() })),
        (
            "/v1/auth/login",
            json!({ "email": email(), "password": PASSWORD }),
        ),
    ] {
        let (st, b) = app.call("POST", path, None, Some(body)).await;
        assert_eq!(
            (st, b["code"].as_str()),
            (503, Some("accounts_disabled")),
            "{b}"
        );
    }
    let mut half = app.settings.clone();
    half.auth.pii_key = Some(random_key());
    assert!(vq_api::accounts::Accounts::from_settings(&half).is_err());
    half.auth.email_hash_key = Some(random_key());
    half.auth.pii_key = Some(vq_core::config::Secret::new("dG9vIHNob3J0"));
    assert!(vq_api::accounts::Accounts::from_settings(&half).is_err());
    half.auth.pii_key = Some(vq_core::config::Secret::new(""));
    half.auth.email_hash_key = Some(vq_core::config::Secret::new(" "));
    let e = vq_api::accounts::Accounts::from_settings(&half)
        .err()
        .expect("empty keys");
    assert!(e.to_string().contains("at least 32 bytes"), "{e}");
    half.auth.pii_key = None;
    half.auth.email_hash_key = None;
    let off = vq_api::accounts::Accounts::from_settings(&half).unwrap();
    assert!(off.is_none(), "no keys: accounts are off");
    app.cleanup().await;
}

#[tokio::test]
async fn the_create_manager_command_makes_a_manager_who_can_run_drops() {
    let app = spawn_app().await;
    let addr = email();
    make_account(&app, &addr, true).await;
    let (access, _) = tokens(&app, &addr).await;
    let (st, me) = app.call("GET", "/v1/me", Some(&access), None).await;
    assert_eq!((st, me["role"].as_str()), (200, Some("manager")), "{me}");
    let spec = json!({ "product_name": "Boot", "stock": 5, "starts_at": "2030-01-01T00:00:00Z",
                       "admission_rate": 10 });
    let (st, b) = app
        .call("POST", "/v1/admin/drops", Some(&access), Some(spec))
        .await;
    assert_eq!(st, 201, "{b}");

    let dup = vq_api::accounts::ProfileInput {
        email: Some(addr.clone()),
        password: Some(PASSWORD.into()),
        name: Some("Other".into()),
        address: Some("Somewhere 1, Town".into()),
        phone: Some("+4930555555".into()),
    };
    let err = vq_api::accounts::create_manager(&app.settings, &dup)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    let bad = vq_api::accounts::ProfileInput {
        email: Some("x".into()),
        ..Default::default()
    };
    let err = vq_api::accounts::create_manager(&app.settings, &bad)
        .await
        .unwrap_err();
    for f in ["email", "password", "name", "address", "phone"] {
        assert!(err.to_string().contains(f), "{f} missing in {err}");
    }
    assert_eq!(user_count(&app).await, 1);
    app.cleanup().await;
}

#[tokio::test]
async fn the_vitaqueue_binary_creates_a_manager_from_env_configuration() {
    let app = spawn_app().await;
    let s = &app.settings;
    let addr = email();
    let run = |email: String| {
        tokio::process::Command::new(crate::procs::vitaqueue_bin())
            .args(["create-manager", "--email", &email, "--name", "Root Admin"])
            .args([
                "--address",
                "Ops Street 1, Berlin",
                "--phone",
                "+49 30 9999999",
            ])
            .env("VQ_DATABASE__URL", s.database.url.expose())
            .env(
                "VQ_AUTH__PII_KEY",
                s.auth.pii_key.as_ref().unwrap().expose(),
            )
            .env(
                "VQ_AUTH__EMAIL_HASH_KEY",
                s.auth.email_hash_key.as_ref().unwrap().expose(),
            )
            .env("VQ_MANAGER_PASSWORD", PASSWORD)
            .output()
    };
    let out = run(addr.clone()).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("manager") && stdout.contains("created"),
        "{stdout}"
    );
    assert!(!stdout.contains(PASSWORD));
    // The server, with the same keys, finds and decrypts the account.
    let (access, _) = tokens(&app, &addr).await;
    let (st, me) = app.call("GET", "/v1/me", Some(&access), None).await;
    assert_eq!((st, me["role"].as_str()), (200, Some("manager")), "{me}");
    assert_eq!(me["name"], "Root Admin");
    let again = run(addr).await.unwrap();
    assert!(
        !again.status.success(),
        "a second manager with the same e-mail fails"
    );
    app.cleanup().await;
}
