//! Proof of work at join (see `vq_core::pow` for the puzzle and its price). Every drop
//! asks it adaptively by default: nothing while joins are calm, more as the join pressure
//! rises (the drop's join rate, the caller's address, a fresh account), up to the drop's
//! cap `pow_max_difficulty`; `pow_difficulty` is a floor every join pays. A solution comes
//! over HTTP (`X-VQ-Pow: <nonce>.<counter>`) or on the room socket (`?pow=<nonce>.<counter>`,
//! since a browser cannot set upgrade headers). A challenge (`GET /v1/drops/{id}/challenge`,
//! priced at the pressure now) is a random nonce stored in Redis for the account with its
//! difficulty, with a TTL, and used up by its first solution: no replay, no sharing
//! between accounts. A buyer already in the room rejoins (reconnects) without a new
//! solution. Without a valid one: 403 `pow_required` carrying a fresh challenge, so a
//! client needs no extra round trip.

use crate::drops::join_or_peek;
use crate::error::ApiError;
use crate::extract::{DropPath, Shopper};
use crate::limits::ClientIp;
use crate::AppState;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::routing::get;
use axum::{Json, Router};
use redis::AsyncCommands;
use serde_json::json;
use std::net::IpAddr;
use vq_core::domain::{DropId, UserId};
use vq_core::pow::Bounds;
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
    /// Leading zero bits asked for: the difficulty in force now for this caller (0 while
    /// joins are calm and the drop sets no floor).
    pub difficulty: u32,
    /// Seconds the challenge stays valid.
    pub expires_in: u64,
}

/// Who is joining, as the price of the work sees them.
#[derive(Debug, Clone, Copy)]
pub struct Joiner {
    pub user: UserId,
    pub ip: IpAddr,
    /// The account's creation time (unix s), when the token says.
    pub account_created: Option<i64>,
}

#[utoipa::path(get, path = "/v1/drops/{id}/challenge", tag = "drops", security(("bearer" = ["shopper"])),
    responses((status = 200, body = Challenge)))]
async fn challenge(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    DropPath(id): DropPath,
    Shopper(p): Shopper,
) -> Result<Json<Challenge>, ApiError> {
    let who = Joiner {
        user: p.user,
        ip,
        account_created: p.account_created,
    };
    let (k, now) = (st.keys.drop(id), st.clock.now_ms());
    let (b, pressure) = vq_core::pow::read(&mut st.redis.clone(), &k, ip, now).await?;
    let bits = price(&st, who, pressure, b);
    Ok(Json(issue(&st, p.user, bits).await?))
}

fn price(st: &AppState, who: Joiner, p: vq_core::pow::Pressure, b: Bounds) -> u32 {
    let age = who.account_created.map(|t| st.clock.now_ms() / 1000 - t);
    vq_core::pow::difficulty(p, &st.pow, b, age)
}

/// A nonce for `user`, stored with its difficulty when it asks for work.
async fn issue(st: &AppState, user: UserId, bits: u32) -> Result<Challenge, ApiError> {
    let nonce = hex::encode(rand::random::<[u8; 16]>());
    if bits > 0 {
        let mut conn = st.redis.clone();
        let key = st.keys.pow_nonce(&nonce);
        let _: () = conn
            .set_ex(key, format!("{}|{bits}", user.0), CHALLENGE_TTL_S)
            .await?;
    }
    metrics::histogram!("vq_pow_difficulty_bits").record(bits as f64);
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

/// Lets a join through when the pressure it comes under asks for no work, the solution is
/// valid (using up its challenge), or the account already holds a place; otherwise 403
/// with a new challenge priced at the pressure now. Each call counts as a join attempt.
pub async fn verify(
    st: &AppState,
    id: DropId,
    who: Joiner,
    solution: &PowSolution,
) -> Result<(), ApiError> {
    // The drop's bounds come back with the count: one round trip per join (a drop with
    // neither floor nor cap prices every join at 0).
    let (k, now) = (st.keys.drop(id), st.clock.now_ms());
    let (b, pressure) = vq_core::pow::record(&mut st.redis.clone(), &k, who.ip, now).await?;
    let bits = price(st, who, pressure, b);
    if bits == 0 {
        return Ok(());
    }
    if let Some(s) = solution.0.as_deref() {
        if solved(st, id, who.user, s, b.floor).await? {
            metrics::counter!("vq_pow_total", "result" => "solved").increment(1);
            return Ok(());
        }
    }
    if let Ok(JoinOutcome::Queued { .. } | JoinOutcome::Admitted { .. }) =
        join_or_peek(st, id, who.user, true).await
    {
        return Ok(());
    }
    metrics::counter!("vq_pow_total", "result" => "required").increment(1);
    Err(ApiError::PowRequired(json!(
        issue(st, who.user, bits).await?
    )))
}

/// A solution to a challenge of `user`'s, judged by the difficulty it was issued at (the
/// pressure may have moved since), which must still meet the drop's floor.
async fn solved(
    st: &AppState,
    id: DropId,
    user: UserId,
    s: &str,
    floor: u32,
) -> Result<bool, ApiError> {
    let Some((nonce, counter)) = s.split_once('.') else {
        return Ok(false);
    };
    let (Ok(counter), true) = (counter.parse::<u64>(), nonce.len() == 32) else {
        return Ok(false);
    };
    let mut conn = st.redis.clone();
    let key = st.keys.pow_nonce(nonce);
    let stored: Option<String> = conn.get(&key).await?;
    let Some((owner, bits)) = stored.as_deref().and_then(|v| v.split_once('|')) else {
        return Ok(false);
    };
    let bits: u32 = bits.parse().unwrap_or(u32::MAX);
    if owner != user.0.to_string() || bits < floor {
        return Ok(false);
    }
    if !vq_core::pow::is_solution(nonce, user, id, counter, bits) {
        return Ok(false);
    }
    // Checked before it is used up, so a wrong guess cannot burn someone's challenge; the
    // GETDEL makes the first of two racing uses the only one.
    let taken: Option<String> = redis::cmd("GETDEL")
        .arg(&key)
        .query_async(&mut conn)
        .await?;
    Ok(taken == stored)
}
