//! Registered endpoints: what managers create, list, disable, rotate and delete, and the
//! attempt log they read. At most `webhooks.max_endpoints` exist at once (counted under a
//! transaction-scoped lock, so concurrent creates cannot pass the bound together).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use vq_core::config::Webhooks as Cfg;
use vq_core::domain::FieldErrors;
use vq_orders::events::EventType;

/// How long the previous secret keeps signing after a rotation.
pub const ROTATION_OVERLAP: chrono::Duration = chrono::Duration::hours(24);
const MAX_DESCRIPTION: usize = 500;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewEndpoint {
    /// https URL receiving POSTs (http only where private targets are allowed).
    pub url: Option<String>,
    /// The event types to send; at least one.
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    /// Adds the buyer's name, e-mail, phone and address to order events (fulfilment).
    pub include_pii: Option<bool>,
}

/// An endpoint as managers see it (never its secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Endpoint {
    pub id: uuid::Uuid,
    pub url: String,
    pub description: String,
    pub events: Vec<EventType>,
    pub include_pii: bool,
    pub enabled: bool,
    /// Why it was disabled: `manager`, or `failing` (no success for `webhooks.disable_after`).
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// First failure since the last success, while failing.
    pub failing_since: Option<DateTime<Utc>>,
    /// While a rotation overlaps: when the previous secret stops signing.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// The answer to a create: the endpoint and its signing secret, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Created {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    pub secret: String,
}

/// The answer to a rotation: the new secret (shown once); the old one signs until then.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Rotated {
    pub secret: String,
    pub previous_secret_expires_at: DateTime<Utc>,
}

/// One delivery attempt, newest first in the log.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Attempt {
    pub event_id: uuid::Uuid,
    pub event_type: String,
    /// 1 for the first try of this event at this endpoint.
    pub attempt: i32,
    /// The receiver's HTTP status; none when it did not answer (timeout, refused…).
    pub status: Option<i32>,
    pub error: Option<String>,
    pub latency_ms: i32,
    /// `delivered`, `retrying` (another try is scheduled) or `failed` (given up).
    pub outcome: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("request body is invalid")]
    Validation(FieldErrors),
    #[error("no such webhook endpoint")]
    NotFound,
    #[error("no such event for this endpoint")]
    EventNotFound,
    #[error("at most {max} webhook endpoints may exist; delete one first")]
    TooMany { max: i64 },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

#[derive(sqlx::FromRow)]
struct Row {
    id: uuid::Uuid,
    url: String,
    description: String,
    events: Vec<String>,
    include_pii: bool,
    enabled: bool,
    disabled_reason: Option<String>,
    disabled_at: Option<DateTime<Utc>>,
    failing_since: Option<DateTime<Utc>>,
    previous_expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, url, description, events, include_pii, enabled, disabled_reason, \
    disabled_at, failing_since, CASE WHEN previous_expires_at > now() THEN previous_expires_at END \
    AS previous_expires_at, created_at";

impl From<Row> for Endpoint {
    fn from(r: Row) -> Self {
        Endpoint {
            id: r.id,
            url: r.url,
            description: r.description,
            events: r
                .events
                .iter()
                .filter_map(|e| EventType::parse(e))
                .collect(),
            include_pii: r.include_pii,
            enabled: r.enabled,
            disabled_reason: r.disabled_reason,
            disabled_at: r.disabled_at,
            failing_since: r.failing_since,
            previous_secret_expires_at: r.previous_expires_at,
            created_at: r.created_at,
        }
    }
}

struct Valid {
    url: String,
    events: Vec<String>,
    description: String,
    include_pii: bool,
}

async fn validate(body: NewEndpoint, cfg: &Cfg) -> Result<Valid, FieldErrors> {
    let mut errors = FieldErrors::new();
    let url = match body.url {
        None => {
            errors.insert("url".into(), "is required".into());
            String::new()
        }
        Some(u) => match crate::target::check(u.trim(), cfg.allow_private).await {
            Ok(url) => url.to_string(),
            Err(e) => {
                errors.insert("url".into(), e.to_string());
                String::new()
            }
        },
    };
    let mut events: Vec<String> = Vec::new();
    match body.events {
        None => {
            errors.insert("events".into(), "is required".into());
        }
        Some(list) if list.is_empty() => {
            errors.insert("events".into(), "must name at least one event type".into());
        }
        Some(list) => {
            for e in list {
                match EventType::parse(&e) {
                    Some(t) if !events.iter().any(|x| x == t.as_str()) => events.push(e),
                    Some(_) => {}
                    None => {
                        errors.insert("events".into(), format!("unknown event type {e:?}"));
                    }
                }
            }
        }
    }
    let description = body.description.unwrap_or_default();
    if description.chars().count() > MAX_DESCRIPTION {
        errors.insert(
            "description".into(),
            "must be at most 500 characters".into(),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Valid {
        url,
        events,
        description,
        include_pii: body.include_pii.unwrap_or(false),
    })
}

/// Registers an endpoint; returns it with its new secret.
pub async fn create(db: &PgPool, cfg: &Cfg, body: NewEndpoint) -> Result<Created, EndpointError> {
    let v = validate(body, cfg)
        .await
        .map_err(EndpointError::Validation)?;
    let secret = crate::signature::new_secret();
    let mut tx = db.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('webhook_endpoints'))")
        .execute(&mut *tx)
        .await?;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_endpoints")
        .fetch_one(&mut *tx)
        .await?;
    if n >= cfg.max_endpoints {
        return Err(EndpointError::TooMany {
            max: cfg.max_endpoints,
        });
    }
    let row = sqlx::query_as::<_, Row>(&format!(
        "INSERT INTO webhook_endpoints (id, url, description, events, include_pii, secret) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    ))
    .bind(uuid::Uuid::new_v4())
    .bind(&v.url)
    .bind(&v.description)
    .bind(&v.events)
    .bind(v.include_pii)
    .bind(&secret)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Created {
        endpoint: row.into(),
        secret,
    })
}

pub async fn list(db: &PgPool) -> Result<Vec<Endpoint>, EndpointError> {
    let rows = sqlx::query_as::<_, Row>(&format!(
        "SELECT {COLUMNS} FROM webhook_endpoints ORDER BY created_at, id"
    ))
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Endpoint::from).collect())
}

pub async fn get(db: &PgPool, id: uuid::Uuid) -> Result<Endpoint, EndpointError> {
    sqlx::query_as::<_, Row>(&format!(
        "SELECT {COLUMNS} FROM webhook_endpoints WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?
    .map(Endpoint::from)
    .ok_or(EndpointError::NotFound)
}

/// Disables (by a manager) or re-enables an endpoint; re-enabling clears the failure clock.
pub async fn set_enabled(db: &PgPool, id: uuid::Uuid, on: bool) -> Result<Endpoint, EndpointError> {
    sqlx::query_as::<_, Row>(&format!(
        "UPDATE webhook_endpoints SET enabled = $2, \
           disabled_reason = CASE WHEN $2 THEN NULL ELSE 'manager' END, \
           disabled_at = CASE WHEN $2 THEN NULL ELSE now() END, \
           failing_since = CASE WHEN $2 THEN NULL ELSE failing_since END \
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(on)
    .fetch_optional(db)
    .await?
    .map(Endpoint::from)
    .ok_or(EndpointError::NotFound)
}

/// Deletes the endpoint with its pending deliveries and attempt log.
pub async fn delete(db: &PgPool, id: uuid::Uuid) -> Result<(), EndpointError> {
    let done = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    match done.rows_affected() {
        0 => Err(EndpointError::NotFound),
        _ => Ok(()),
    }
}

/// A new secret; the current one keeps signing (as a second `v1`) for [`ROTATION_OVERLAP`].
pub async fn rotate(db: &PgPool, id: uuid::Uuid) -> Result<Rotated, EndpointError> {
    let secret = crate::signature::new_secret();
    let until: Option<DateTime<Utc>> = sqlx::query_scalar(
        "UPDATE webhook_endpoints SET previous_secret = secret, secret = $2, \
           previous_expires_at = now() + make_interval(secs => $3) \
         WHERE id = $1 RETURNING previous_expires_at",
    )
    .bind(id)
    .bind(&secret)
    .bind(ROTATION_OVERLAP.num_seconds() as f64)
    .fetch_optional(db)
    .await?;
    let until = until.ok_or(EndpointError::NotFound)?;
    Ok(Rotated {
        secret,
        previous_secret_expires_at: until,
    })
}

/// The endpoint's latest `limit` attempts, newest first.
pub async fn attempts(
    db: &PgPool,
    id: uuid::Uuid,
    limit: i64,
) -> Result<Vec<Attempt>, EndpointError> {
    get(db, id).await?;
    Ok(sqlx::query_as::<_, Attempt>(
        "SELECT e.id AS event_id, e.type AS event_type, a.attempt, a.status, a.error, \
           a.latency_ms, a.outcome, a.at FROM webhook_attempts a \
         JOIN webhook_events e ON e.seq = a.event_seq \
         WHERE a.endpoint_id = $1 ORDER BY a.id DESC LIMIT $2",
    )
    .bind(id)
    .bind(limit.clamp(1, 500))
    .fetch_all(db)
    .await?)
}

/// Sends an event again: queues it now for this endpoint, whatever became of it before.
pub async fn redeliver(
    db: &PgPool,
    id: uuid::Uuid,
    event: uuid::Uuid,
) -> Result<(), EndpointError> {
    get(db, id).await?;
    let done = sqlx::query(
        "INSERT INTO webhook_deliveries (endpoint_id, event_seq, ordering_key, next_attempt_at) \
         SELECT $1, seq, ordering_key, now() FROM webhook_events WHERE id = $2 \
         ON CONFLICT (endpoint_id, event_seq) DO UPDATE SET state = 'pending', \
           next_attempt_at = now(), created_at = now(), last_error = NULL",
    )
    .bind(id)
    .bind(event)
    .execute(db)
    .await?;
    match done.rows_affected() {
        0 => Err(EndpointError::EventNotFound),
        _ => Ok(()),
    }
}
