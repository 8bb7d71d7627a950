//! What an attempt leaves behind, written in the attempt's one transaction: the delivery's
//! new state, the endpoint's failure clock (and its disabling after `disable_after`), and
//! the attempt log line managers read.

use crate::send::{Job, Outcome};
use sqlx::{Postgres, Transaction};
use std::time::Duration;
use vq_core::config::Webhooks as Cfg;

type Tx<'a> = Transaction<'a, Postgres>;

/// Marks the delivery delivered and the endpoint healthy.
pub async fn delivered(tx: &mut Tx<'_>, job: &Job, o: &Outcome) -> sqlx::Result<&'static str> {
    sqlx::query(
        "UPDATE webhook_deliveries SET state = 'delivered', delivered_at = now(), \
           lease_until = NULL, last_status = $3, last_error = NULL \
         WHERE endpoint_id = $1 AND event_seq = $2",
    )
    .bind(job.endpoint_id)
    .bind(job.event_seq)
    .bind(o.status.map(i32::from))
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL",
    )
    .bind(job.endpoint_id)
    .execute(&mut **tx)
    .await?;
    Ok("delivered")
}

/// Schedules the next try after `delay`, or gives up once the delivery is `max_age` old;
/// starts (or continues) the endpoint's failure clock and disables it once it ran out.
pub async fn failed(
    tx: &mut Tx<'_>,
    job: &Job,
    o: &Outcome,
    delay: Duration,
    cfg: &Cfg,
) -> sqlx::Result<&'static str> {
    let state: Option<String> = sqlx::query_scalar(
        "UPDATE webhook_deliveries SET \
           state = CASE WHEN created_at + make_interval(secs => $5) <= now() THEN 'failed' \
                   ELSE 'pending' END, \
           next_attempt_at = now() + make_interval(secs => $6), lease_until = NULL, \
           last_status = $3, last_error = $4 \
         WHERE endpoint_id = $1 AND event_seq = $2 AND state = 'pending' RETURNING state",
    )
    .bind(job.endpoint_id)
    .bind(job.event_seq)
    .bind(o.status.map(i32::from))
    .bind(o.error.as_deref())
    .bind(cfg.max_age.as_secs_f64())
    .bind(delay.as_secs_f64())
    .fetch_optional(&mut **tx)
    .await?;
    let disabled: Option<uuid::Uuid> = sqlx::query_scalar(
        "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, now()), \
           enabled = CASE WHEN failing_since + make_interval(secs => $2) <= now() THEN FALSE \
                     ELSE enabled END, \
           disabled_reason = CASE WHEN failing_since + make_interval(secs => $2) <= now() \
                             AND enabled THEN 'failing' ELSE disabled_reason END, \
           disabled_at = CASE WHEN failing_since + make_interval(secs => $2) <= now() \
                         AND enabled THEN now() ELSE disabled_at END \
         WHERE id = $1 RETURNING CASE WHEN NOT enabled AND disabled_reason = 'failing' \
           AND disabled_at = now() THEN id END",
    )
    .bind(job.endpoint_id)
    .bind(cfg.disable_after.as_secs_f64())
    .fetch_optional(&mut **tx)
    .await?
    .flatten();
    if let Some(id) = disabled {
        tracing::warn!(endpoint = %id, "webhook endpoint disabled: failing for too long");
        metrics::counter!("vq_webhook_endpoints_disabled_total").increment(1);
    }
    Ok(match state.as_deref() {
        Some("failed") => "failed",
        _ => "retrying",
    })
}

/// The attempt's line in the log.
pub async fn attempt(tx: &mut Tx<'_>, job: &Job, o: &Outcome, outcome: &str) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO webhook_attempts (endpoint_id, event_seq, attempt, status, error, \
           latency_ms, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(job.endpoint_id)
    .bind(job.event_seq)
    .bind(job.attempt)
    .bind(o.status.map(i32::from))
    .bind(o.error.as_deref())
    .bind(o.latency.as_millis().min(i32::MAX as u128) as i32)
    .bind(outcome)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
