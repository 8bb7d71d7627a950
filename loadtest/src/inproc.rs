//! The whole server (api + admission + worker) started inside the load generator, for runs
//! without --api: a scratch PostgreSQL database and a unique Redis prefix, both removed on
//! `stop`, so a comparison run leaves nothing behind and never sees another run's data.

use sqlx::{Connection, PgConnection};
use std::time::Duration;
use tokio::task::JoinHandle;
use vitaqueue::{App, Opts, Roles};
use vq_core::config::Secret;
use vq_core::shutdown::{self, Trigger};
use vq_core::{Clock, Settings};

pub struct Server {
    /// Base URL of the api, e.g. `http://127.0.0.1:41234`.
    pub api: String,
    /// The settings the server runs with (scratch database, unique prefix, JWT secret).
    pub settings: Settings,
    trigger: Trigger,
    server: JoinHandle<()>,
    admin_url: String,
    db_name: String,
}

/// `postgres://…/dbname` → (`postgres://…/postgres`, the server's base URL without a db).
fn server_base(url: &str) -> anyhow::Result<String> {
    let (base, _db) = url
        .rsplit_once('/')
        .ok_or_else(|| anyhow::anyhow!("database URL {url:?} has no database name"))?;
    Ok(base.to_string())
}

/// Starts api, admission (20 ms ticks) and one worker on port 0 of loopback.
pub async fn start(base: &Settings) -> anyhow::Result<Server> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let root = server_base(base.database.url.expose())?;
    let admin_url = format!("{root}/postgres");
    let db_name = format!("vq_bench_{id}");
    let mut admin = PgConnection::connect(&admin_url)
        .await
        .map_err(|e| anyhow::anyhow!("connecting to {admin_url} to create a scratch db: {e}"))?;
    sqlx::query(&format!("CREATE DATABASE \"{db_name}\""))
        .execute(&mut admin)
        .await?;
    admin.close().await?;

    let mut s = base.clone();
    s.http.host = "127.0.0.1".into();
    s.http.port = 0;
    s.redis.prefix = format!("vqb{}", &id[..12]);
    s.database.url = Secret::new(format!("{root}/{db_name}"));
    if s.auth.jwt_secret.is_none() {
        s.auth.jwt_secret = Some(Secret::new(format!("bench-{id}")));
    }
    s.worker.block_ms = 50;

    s.admission.tick_ms = 20;

    let (trigger, stop) = shutdown::channel();
    let roles = Roles {
        scheduler: false,
        ..Roles::ALL
    };
    let opts = Opts {
        roles,
        clock: Clock::Redis,
        shutdown: stop,
    };
    let app = App::build(s.clone(), opts).await?;
    let api = format!("http://127.0.0.1:{}", app.port().expect("api role"));
    let server = tokio::spawn(async move {
        if let Err(e) = app.run_until_stopped().await {
            eprintln!("in-process server stopped with an error: {e:#}");
        }
    });
    Ok(Server {
        api,
        settings: s,
        trigger,
        server,
        admin_url,
        db_name,
    })
}

impl Server {
    /// Stops every role, drops the scratch database and deletes the prefix's Redis keys.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.trigger.fire();
        let _ = tokio::time::timeout(Duration::from_secs(15), self.server).await;
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.db_name
        ))
        .execute(&mut admin)
        .await?;
        let mut redis = vq_core::store::redis(&self.settings).await?;
        delete_prefix(&mut redis, &self.settings.redis.prefix).await
    }
}

/// Deletes every key under `prefix:` (SCAN, not KEYS, so a large Redis is not blocked).
pub async fn delete_prefix(redis: &mut vq_core::RedisConn, prefix: &str) -> anyhow::Result<()> {
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(redis)
            .await?;
        if !keys.is_empty() {
            let _: () = redis::cmd("UNLINK").arg(keys).query_async(redis).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// Runs `f` with the settings and base URL of the api at `api`, or, when none is given, of
/// a server started in-process for the run (and stopped after it, whatever `f` returned).
pub async fn against<T, F, Fut>(api: &Option<String>, base: &Settings, f: F) -> anyhow::Result<T>
where
    F: FnOnce(Settings, String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let server = match api {
        Some(_) => None,
        None => Some(start(base).await?),
    };
    let s = server.as_ref().map_or(base, |s| &s.settings).clone();
    let url = api.clone().or(server.as_ref().map(|s| s.api.clone()));
    let result = f(s, url.unwrap_or_default()).await;
    if let Some(server) = server {
        server.stop().await?;
    }
    result
}
