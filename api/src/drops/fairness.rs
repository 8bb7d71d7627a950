//! The verifiable pre-queue draw on the api side: buyers' pseudonyms, the draw score a
//! pre-queue join passes to lua/join.lua, and the public `GET /v1/drops/{id}/fairness`.
//!
//! The score needs the secret seed, which must not leave the server before the start, and
//! Lua has no HMAC: so the api computes it (vq_core::fairness) from the seed in the drop's
//! Redis cfg, cached per drop (a seed never changes).

use crate::drops::store;
use crate::error::{ApiError, NEEDS_REBUILD};
use crate::extract::{ApiQuery, DropPath};
use crate::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use vq_core::config::Auth;
use vq_core::domain::{DropId, UserId};
use vq_core::fairness::{self, Seed};

/// Most pseudonyms in one page of the published draw (about 40 bytes each as JSON).
pub const MAX_PAGE: u64 = 1000;
/// Seeds kept in memory; beyond that the cache starts over (a seed costs one HGET).
const MAX_CACHED: usize = 10_000;

/// The pseudonym key and the seed cache of this node.
pub struct Fairness {
    key: [u8; 32],
    seeds: Mutex<HashMap<String, Seed>>,
}

impl Fairness {
    /// The pseudonym key derives from the e-mail-hash key when set (it must stay stable
    /// anyway, or no account could log in), else from the mandatory JWT secret: both are
    /// checked to be at least 32 bytes at start-up and survive restarts.
    pub fn from_settings(auth: &Auth) -> Fairness {
        let secret = auth
            .email_hash_key
            .as_ref()
            .or(auth.jwt_secret.as_ref())
            .map(|s| s.expose().as_bytes().to_vec())
            .unwrap_or_default();
        Fairness {
            key: fairness::pseudonym_key(&secret),
            seeds: Mutex::new(HashMap::new()),
        }
    }

    pub fn pseudonym(&self, drop: DropId, user: UserId) -> String {
        fairness::pseudonym(&self.key, drop, user)
    }

    /// The drop's seed: cached, else the Redis cfg, else PostgreSQL (a cfg mirrored before
    /// seeds existed). `None` when the drop is unknown (the join script then says so).
    pub async fn seed(&self, st: &AppState, id: DropId) -> Result<Option<Seed>, ApiError> {
        let cfg = st.keys.drop(id).cfg();
        if let Some(s) = self.seeds.lock().expect("seed cache").get(&cfg) {
            return Ok(Some(s.clone()));
        }
        let hexed: Option<String> =
            redis::AsyncCommands::hget(&mut st.redis.clone(), &cfg, "shuffle_seed").await?;
        let seed = match hexed.as_deref().and_then(Seed::from_hex) {
            Some(s) => Some(s),
            None => store::load_from(&st.db, id).await?.map(|d| d.shuffle_seed),
        };
        if let Some(s) = &seed {
            let mut cache = self.seeds.lock().expect("seed cache");
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(cfg, s.clone());
        }
        Ok(seed)
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/drops/{id}/fairness", get(show))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(show))]
pub struct Doc;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DrawQuery {
    offset: Option<u64>,
    limit: Option<u64>,
}

/// One page of the pre-queue draw, in draw order.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct DrawPage {
    /// Everyone who joined during the pre-queue.
    pub total: u64,
    pub offset: u64,
    pub pseudonyms: Vec<String>,
    /// Pass as `offset` for the next page; absent on the last page.
    pub next_offset: Option<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct FairnessView {
    drop_id: i64,
    starts_at: DateTime<Utc>,
    /// Hex SHA-256 of the seed, published since the drop was created.
    shuffle_commitment: String,
    /// Hex seed; `null` until the drop starts.
    shuffle_seed: Option<String>,
    /// How the order follows from the seed, for anyone re-checking it.
    rule: &'static str,
    /// The pre-queue draw; `null` until the drop starts.
    draw: Option<DrawPage>,
    /// What happened in the drop so far (`final: true` once it ended).
    report: super::report::Report,
}

const RULE: &str = "pre-queue joiners ordered by the first 52 bits of \
    HMAC-SHA256(key = seed, message = pseudonym as ASCII hex), ties by pseudonym";

/// Public: the commitment always; after the start the seed and the draw, paged by
/// `offset`/`limit` (at most 1000 a page; the list is final from the start on).
#[utoipa::path(get, path = "/v1/drops/{id}/fairness", tag = "fairness", params(DrawQuery),
    responses((status = 200, body = FairnessView),
        (status = 503, body = crate::error::ErrorBody, description = "`needs_rebuild`")))]
async fn show(
    State(st): State<AppState>,
    DropPath(id): DropPath,
    ApiQuery(q): ApiQuery<DrawQuery>,
) -> Result<Json<FairnessView>, ApiError> {
    let limit = q.limit.unwrap_or(MAX_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::Validation(
            [("limit".into(), format!("must be between 1 and {MAX_PAGE}"))].into(),
        ));
    }
    let d = store::load(&st, id).await?;
    let started = st.clock.now_ms() >= d.starts_at.timestamp_millis();
    let draw = if started {
        Some(draw_page(&st, id, q.offset.unwrap_or(0), limit).await?)
    } else {
        None
    };
    let seed = started.then(|| d.shuffle_seed.to_hex());
    let report = super::report::report(&st, id, &d.shuffle_commitment, seed.clone()).await?;
    Ok(Json(FairnessView {
        drop_id: id.get(),
        starts_at: d.starts_at,
        shuffle_commitment: d.shuffle_commitment.clone(),
        shuffle_seed: seed,
        rule: RULE,
        draw,
        report,
    }))
}

async fn draw_page(
    st: &AppState,
    id: DropId,
    offset: u64,
    limit: u64,
) -> Result<DrawPage, ApiError> {
    let k = st.keys.drop(id);
    let stop = offset.saturating_add(limit - 1).min(i64::MAX as u64);
    let (exists, total, pseudonyms): (bool, u64, Vec<String>) = redis::pipe()
        .exists(k.cfg())
        .zcard(k.draw())
        .zrange(
            k.draw(),
            offset.min(i64::MAX as u64) as isize,
            stop as isize,
        )
        .query_async(&mut st.redis.clone())
        .await?;
    if !exists {
        return Err(ApiError::Unavailable {
            code: "needs_rebuild",
            message: NEEDS_REBUILD,
        });
    }
    let end = offset.saturating_add(pseudonyms.len() as u64);
    Ok(DrawPage {
        total,
        offset,
        pseudonyms,
        next_offset: (end < total).then_some(end),
    })
}
