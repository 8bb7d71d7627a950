//! Hostile clients at the HTTP level: an oversize body written in full before reading,
//! and crowds of logins and sign-ups against a real `vitaqueue api` process whose peak
//! memory (VmHWM) is read from /proc.

use crate::accounts::*;
use crate::helpers::*;
use crate::procs::Proc;
use crate::smtp_sink::SmtpSink;
use futures::StreamExt;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn hostile_a_client_writing_its_whole_oversize_body_first_reads_the_413() {
    let app = spawn_app().await;
    let body = vec![b'a'; 2 * 1024 * 1024];
    for path in ["/v1/auth/login", "/v1/no-such-route"] {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
            .await
            .unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&body).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
            .await
            .expect("the server answers and closes")
            .expect("no connection reset");
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 413"), "{path}: {text}");
        assert!(
            text.to_ascii_lowercase().contains("connection: close"),
            "{text}"
        );
        let json = text.split("\r\n\r\n").nth(1).unwrap_or("");
        let v: serde_json::Value = serde_json::from_str(json).expect("a JSON body");
        assert_eq!(v["code"], "body_too_large", "{v}");
    }
    app.cleanup().await;
}

fn vm_hwm_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

/// Fires `n` requests at once; returns the count per status (503s must say when to retry).
async fn crowd(port: u16, path: &str, bodies: Vec<serde_json::Value>) -> HashMap<u16, usize> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}{path}");
    let calls = bodies.into_iter().map(|b| {
        let (http, url) = (http.clone(), url.clone());
        tokio::spawn(async move {
            let res = http.post(url).json(&b).send().await.expect("answered");
            let st = res.status().as_u16();
            if st == 503 {
                assert!(res.headers().contains_key("retry-after"));
                let v: serde_json::Value = res.json().await.unwrap();
                assert_eq!(v["code"], "busy", "{v}");
            }
            st
        })
    });
    let mut counts = HashMap::new();
    for st in futures::future::join_all(calls).await {
        *counts.entry(st.unwrap()).or_insert(0) += 1;
    }
    counts
}

/// `vitaqueue api` as its own process (`VQ_TEST_BIN` may name another binary).
async fn spawn_api(s: &vq_core::Settings, env: &[(&str, String)]) -> (Proc, u16) {
    let port = crate::procs::free_port();
    let bin = std::env::var("VQ_TEST_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| crate::procs::vitaqueue_bin());
    let mut cmd = std::process::Command::new(bin);
    cmd.arg("api")
        .env("VQ_HTTP__PORT", port.to_string())
        .env("VQ_REDIS__URL", s.redis.url.expose())
        .env("VQ_REDIS__PREFIX", &s.redis.prefix)
        .env("VQ_DATABASE__URL", s.database.url.expose())
        .env(
            "VQ_AUTH__JWT_SECRET",
            s.auth.jwt_secret.as_ref().unwrap().expose(),
        )
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let mut p = Proc::spawn("argon2-crowd", &mut cmd);
    let http = reqwest::Client::new();
    for _ in 0..400 {
        assert!(p.is_running(), "the api exited");
        let url = format!("http://127.0.0.1:{port}/healthz");
        if http.get(url).send().await.is_ok_and(|r| r.status() == 200) {
            return (p, port);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the api did not become healthy");
}

#[tokio::test]
async fn hostile_300_logins_and_300_sign_ups_keep_the_server_under_400_mb() {
    let mut sink = SmtpSink::start().await;
    let app = spawn_app().await;
    let s = &app.settings;
    let mut env: Vec<(&str, String)> = vec![
        (
            "VQ_AUTH__PII_KEY",
            s.auth.pii_key.as_ref().unwrap().expose().into(),
        ),
        (
            "VQ_AUTH__EMAIL_HASH_KEY",
            s.auth.email_hash_key.as_ref().unwrap().expose().into(),
        ),
        ("VQ_SMTP__PORT", sink.port.to_string()),
        ("VQ_LIMITS__EMAIL_CODE_DAILY", "0".into()),
        ("RUST_LOG", "warn".into()),
        // 300 clients on loopback at once: no per-address connection cap here.
        ("VQ_HTTP__MAX_CONNECTIONS_PER_IP", "0".into()),
    ];
    for l in [
        "LOGIN_IP",
        "LOGIN_ACCOUNT",
        "EMAIL_CODE_IP",
        "EMAIL_CODE_ACCOUNT",
        "SIGNUP_IP",
    ] {
        let k: &'static str = Box::leak(format!("VQ_LIMITS__{l}__PER_MINUTE").into_boxed_str());
        env.push((k, "0".into()));
    }
    let (proc, port) = spawn_api(s, &env).await;
    let pid = proc.pid();
    let idle = vm_hwm_kb(pid);

    let logins = (0..300)
        .map(|_| json!({ "email": email(), "password": "some guess 123" }))
        .collect();
    let login_counts = crowd(port, "/v1/auth/login", logins).await;
    let after_logins = vm_hwm_kb(pid);

    let addrs: Vec<String> = (0..300).map(|_| email()).collect();
    let http = reqwest::Client::new();
    futures::stream::iter(addrs.clone())
        .for_each_concurrent(32, |a| {
            let http = http.clone();
            async move {
                let url = format!("http://127.0.0.1:{port}/v1/auth/email-code");
                let res = http
                    .post(url)
                    .json(&json!({ "email": a }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status().as_u16(), 202);
            }
        })
        .await;
    let mut codes = HashMap::new();
    for _ in 0..300 {
        let m = sink.next().await;
        codes.insert(m.to[0].clone(), m.code());
    }
    let signups = addrs
        .iter()
        .map(|a| profile(a, &codes[&a.to_lowercase()]))
        .collect();
    let signup_counts = crowd(port, "/v1/auth/signup", signups).await;
    let after_signups = vm_hwm_kb(pid);
    eprintln!(
        "argon2 crowd: VmHWM idle {} MB, after 300 logins {} MB ({login_counts:?}), \
         after 300 sign-ups {} MB ({signup_counts:?})",
        idle / 1024,
        after_logins / 1024,
        after_signups / 1024
    );
    assert!(
        login_counts.keys().all(|s| [401, 503].contains(s)),
        "{login_counts:?}"
    );
    assert!(login_counts.get(&401).copied().unwrap_or(0) > 0);
    assert!(
        signup_counts.keys().all(|s| [201, 503].contains(s)),
        "{signup_counts:?}"
    );
    assert!(signup_counts.get(&201).copied().unwrap_or(0) > 0);
    assert!(
        after_signups < 400 * 1024,
        "peak RSS {} MB",
        after_signups / 1024
    );
    drop(proc);
    app.cleanup().await;
}
