//! (a) PostgreSQL row lock, the seed's approach: every purchase is one transaction that
//! locks the single stock row (SELECT … FOR UPDATE), decrements it and inserts the order,
//! so all buyers queue on one row lock and one WAL flush per commit.

use super::{Plan, Row};
use crate::harness::{drive, oversold, Attempt};
use sqlx::postgres::PgPoolOptions;
use std::time::Duration;

pub async fn run(db_url: &str, plan: &Plan) -> anyhow::Result<Row> {
    let pool = PgPoolOptions::new()
        .max_connections(plan.concurrency.clamp(1, plan.pg_pool) as u32)
        .acquire_timeout(Duration::from_secs(30))
        .connect(db_url)
        .await
        .map_err(|e| anyhow::anyhow!("connecting to PostgreSQL for strategy pg: {e}"))?;
    let t = format!("vq_strat_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!(
        "CREATE TABLE {t}_stock (id INT PRIMARY KEY, qty INT NOT NULL)"
    ))
    .execute(&pool)
    .await?;
    let result = measure(&pool, &t, plan).await;
    // Scratch tables go whatever happened during the run.
    for suffix in ["stock", "orders"] {
        let _ = sqlx::query(&format!("DROP TABLE IF EXISTS {t}_{suffix}"))
            .execute(&pool)
            .await;
    }
    pool.close().await;
    result
}

async fn measure(pool: &sqlx::PgPool, t: &str, plan: &Plan) -> anyhow::Result<Row> {
    sqlx::query(&format!(
        "CREATE TABLE {t}_orders (id BIGSERIAL PRIMARY KEY, buyer BIGINT NOT NULL, \
         created_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    ))
    .execute(pool)
    .await?;
    sqlx::query(&format!("INSERT INTO {t}_stock VALUES (1, $1)"))
        .bind(plan.stock as i32)
        .execute(pool)
        .await?;
    let lock = format!("SELECT qty FROM {t}_stock WHERE id = 1 FOR UPDATE");
    let take = format!("UPDATE {t}_stock SET qty = qty - 1 WHERE id = 1");
    let record = format!("INSERT INTO {t}_orders (buyer) VALUES ($1)");
    let p = pool.clone();
    let cpu = crate::procstat::Snapshot::take();
    let m = drive(plan.buyers, plan.concurrency, plan.limit, move |i| {
        let (p, lock, take, record) = (p.clone(), lock.clone(), take.clone(), record.clone());
        async move {
            let mut tx = p.begin().await?;
            let qty: i32 = sqlx::query_scalar(&lock).fetch_one(&mut *tx).await?;
            if qty <= 0 {
                tx.rollback().await?;
                return Ok(Attempt::Rejected);
            }
            sqlx::query(&take).execute(&mut *tx).await?;
            sqlx::query(&record)
                .bind(i as i64)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Attempt::Bought)
        }
    })
    .await;
    let cpu = cpu.share_until(&crate::procstat::Snapshot::take());
    let remaining: i32 = sqlx::query_scalar(&format!("SELECT qty FROM {t}_stock WHERE id = 1"))
        .fetch_one(pool)
        .await?;
    let orders: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {t}_orders"))
        .fetch_one(pool)
        .await?;
    Ok(Row {
        strategy: "postgres_for_update",
        sold: plan.stock - remaining as i64,
        recorded_orders: orders,
        oversold: oversold(plan.stock, orders, remaining as i64),
        note: format!(
            "pool of {} connections",
            plan.concurrency.clamp(1, plan.pg_pool)
        ),
        measured: m,
        cpu,
    })
}
