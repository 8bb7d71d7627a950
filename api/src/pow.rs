//! Proof of work at join (see `vq_core::pow` for the puzzle). A drop with
//! `pow_difficulty` > 0 wants a solved challenge with every new join, over HTTP
//! (`X-VQ-Pow: <nonce>.<counter>`) or on the room socket (`?pow=<nonce>.<counter>`, since a
//! browser cannot set upgrade headers). A challenge (`GET /v1/drops/{id}/challenge`) is a
//! random nonce stored in Redis for the account, with a TTL, and used up by its first
//! solution: no replay, no sharing between accounts. A buyer already in the room rejoins
//! (reconnects) without a new solution. Without a valid one: 403 `pow_required` carrying a
//! fresh challenge, so a client needs no extra round trip.

use crate::drops::join_or_peek;
use crate::error::ApiError;
use crate::extract::{DropPath, Shopper};
use crate::AppState;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::routing::get;
use axum::{Json, Router};
use redis::AsyncCommands;
use serde_json::json;
use vq_core::domain::{DropId, UserId};
use vq_core::scripts::JoinOutcome;

/// Seconds a challenge stays solvable.
const CHALLENGE_TTL_S: u64 = 120;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/drops/{id}/challenge", get(challenge))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(challenge))]
pub struct Doc;

/// A proof-of-work challenge: find `counter` so that SHA-256 of `<nonce>.<counter>` starts
/// with `difficulty` zero bits, then join with `X-VQ-Pow: <nonce>.<counter>`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Challenge {
    pub nonce: String,
    /// Leading zero bits asked for; 0 when the drop asks for no work.
    pub difficulty: u32,
    /// Seconds the challenge stays valid.
    pub expires_in: u64,
}

#[utoipa::path(get, path = "/v1/drops/{id}/challenge", tag = "drops", security(("bearer" = ["shopper"])),
    responses((status = 200, body = Challenge)))]
async fn challenge(
    State(st): State<AppState>,
    DropPath(id): DropPath,
    Shopper(p): Shopper,
) -> Result<Json<Challenge>, ApiError> {
    let bits = difficulty(&st, id).await?;
    Ok(Json(issue(&st, p.user, bits).await?))
}

/// The drop's difficulty from its Redis mirror (0 when off or unknown).
async fn difficulty(st: &AppState, id: DropId) -> Result<u32, ApiError> {
    let mut conn = st.redis.clone();
    let bits: Option<u32> = conn.hget(st.keys.drop(id).cfg(), "pow").await?;
    Ok(bits.unwrap_or(0))
}

async fn issue(st: &AppState, user: UserId, bits: u32) -> Result<Challenge, ApiError> {
    let nonce = hex::encode(rand::random::<[u8; 16]>());
    if bits > 0 {
        let mut conn = st.redis.clone();
        let key = st.keys.pow_nonce(&nonce);
        let _: () = conn
            .set_ex(key, user.0.to_string(), CHALLENGE_TTL_S)
            .await?;
    }
    Ok(Challenge {
        nonce,
        difficulty: bits,
        expires_in: CHALLENGE_TTL_S,
    })
}

/// A solution as sent: `<nonce>.<counter>`, from the `X-VQ-Pow` header or `?pow=`.
pub struct PowSolution(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for PowSolution {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get("x-vq-pow").and_then(|v| v.to_str().ok());
        let query = parts
            .uri
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("pow=")));
        Ok(PowSolution(header.or(query).map(str::to_owned)))
    }
}

/// Lets a join through when the drop wants no work, the solution is valid (using up its
/// challenge), or the account already holds a place; otherwise 403 with a new challenge.
pub async fn verify(
    st: &AppState,
    id: DropId,
    user: UserId,
    solution: &PowSolution,
) -> Result<(), ApiError> {
    let bits = difficulty(st, id).await?;
    if bits == 0 {
        return Ok(());
    }
    if let Some(s) = solution.0.as_deref() {
        if solved(st, id, user, s, bits).await? {
            metrics::counter!("vq_pow_total", "result" => "solved").increment(1);
            return Ok(());
        }
    }
    if let Ok(JoinOutcome::Queued { .. } | JoinOutcome::Admitted { .. }) =
        join_or_peek(st, id, user, true).await
    {
        return Ok(());
    }
    metrics::counter!("vq_pow_total", "result" => "required").increment(1);
    Err(ApiError::PowRequired(json!(issue(st, user, bits).await?)))
}

async fn solved(
    st: &AppState,
    id: DropId,
    user: UserId,
    s: &str,
    bits: u32,
) -> Result<bool, ApiError> {
    let Some((nonce, counter)) = s.split_once('.') else {
        return Ok(false);
    };
    let (Ok(counter), true) = (counter.parse::<u64>(), nonce.len() == 32) else {
        return Ok(false);
    };
    if !vq_core::pow::is_solution(nonce, user, id, counter, bits) {
        return Ok(false);
    }
    // Checked before it is used up, so a wrong guess cannot burn someone's challenge.
    let mut conn = st.redis.clone();
    let owner: Option<String> = redis::cmd("GETDEL")
        .arg(st.keys.pow_nonce(nonce))
        .query_async(&mut conn)
        .await?;
    Ok(owner.as_deref() == Some(user.0.to_string().as_str()))
}
