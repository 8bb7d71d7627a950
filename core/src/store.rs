//! Connections to Redis and PostgreSQL, and the schema migrations.

use crate::config::Settings;
use sqlx::postgres::{PgPool, PgPoolOptions};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// A self-healing multiplexed Redis connection (cheap to clone, shared by all tasks), to
/// one server or to a cluster as configured.
pub async fn redis(settings: &Settings) -> anyhow::Result<crate::RedisConn> {
    Ok(crate::RedisConn::connect(&settings.redis).await?)
}

/// A PostgreSQL pool with the schema migrated to the latest version.
pub async fn postgres(settings: &Settings) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(settings.database.max_connections)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect(settings.database.url.expose())
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}
