//! Connections to Redis and PostgreSQL, and the schema migrations.

use crate::config::Settings;
use sqlx::postgres::{PgPool, PgPoolOptions};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// A self-healing multiplexed Redis connection (cheap to clone, shared by all tasks).
pub async fn redis(settings: &Settings) -> anyhow::Result<redis::aio::ConnectionManager> {
    let client = redis::Client::open(settings.redis.url.expose())?;
    Ok(redis::aio::ConnectionManager::new(client).await?)
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
