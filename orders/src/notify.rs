//! Tells wishlisting buyers when a drop of their product opens its waiting room: a stored
//! notification (shown on the web), a push to their open WebSockets, and an email. Each is
//! created exactly once per buyer and drop (unique key); the email is retried until sent.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use redis::AsyncCommands;
use sqlx::PgPool;
use vq_core::domain::{AccountEvent, DropState, Notification};
use vq_core::{Keys, RedisConn};

/// Creates notifications for every drop whose pre-queue opened by `at`; returns how many.
pub async fn prequeue_opened(
    db: &PgPool,
    redis: &mut RedisConn,
    keys: &Keys,
    at: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let drops: Vec<(i64, String)> = sqlx::query_as(
        "UPDATE drops SET prequeue_notified_at = $1 WHERE id IN ( \
           SELECT id FROM drops WHERE prequeue_notified_at IS NULL AND product_id IS NOT NULL \
           AND state <> $2 AND starts_at - make_interval(secs => prequeue_s) <= $1 \
           FOR UPDATE SKIP LOCKED) RETURNING id, product_name",
    )
    .bind(at)
    .bind(DropState::Closed)
    .fetch_all(db)
    .await?;
    let mut total = 0;
    for (drop_id, name) in drops {
        let message = format!("The waiting room for {name} is open: join now to get your place.");
        let users: Vec<uuid::Uuid> = sqlx::query_scalar(
            "INSERT INTO notifications (user_id, kind, drop_id, message, created_at) \
             SELECT w.user_id, 'prequeue_open', $1, $2, $3 FROM wishlist w JOIN drops d \
             ON d.product_id = w.product_id WHERE d.id = $1 AND w.notify \
             ON CONFLICT (user_id, kind, drop_id) DO NOTHING RETURNING user_id",
        )
        .bind(drop_id)
        .bind(&message)
        .bind(at)
        .fetch_all(db)
        .await?;
        total += users.len() as u64;
        for chunk in users.chunks(500) {
            let event = AccountEvent::Notification {
                note: Notification {
                    kind: "prequeue_open".into(),
                    drop_id,
                    message: message.clone(),
                },
                users: chunk.iter().map(|u| u.to_string()).collect(),
            };
            let _: () = redis
                .publish(keys.user_events(), serde_json::to_string(&event)?)
                .await?;
        }
    }
    Ok(total)
}

/// Sends a notification email to an account. Implemented where the account data (and its
/// decryption key) lives; `Ok(false)` means the account has no address to write to.
pub trait NotifyMailer: Send + Sync {
    fn send<'a>(
        &'a self,
        user: uuid::Uuid,
        subject: &'a str,
        body: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<bool>>;
}

/// Emails notifications not emailed yet; a failed send stays pending for the next tick.
/// Rows are claimed with SKIP LOCKED so two schedulers never send the same email.
pub async fn email_pending(
    db: &PgPool,
    mailer: &dyn NotifyMailer,
    at: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let mut tx = db.begin().await?;
    let rows: Vec<(i64, uuid::Uuid, String)> = sqlx::query_as(
        "SELECT id, user_id, message FROM notifications WHERE emailed_at IS NULL \
         ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut sent = 0;
    for (id, user, message) in rows {
        match mailer
            .send(user, "A drop you wished for is opening", &message)
            .await
        {
            Ok(delivered) => {
                sqlx::query("UPDATE notifications SET emailed_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                sent += u64::from(delivered);
            }
            Err(e) => tracing::warn!(notification = id, error = %e, "notification email deferred"),
        }
    }
    tx.commit().await?;
    Ok(sent)
}
