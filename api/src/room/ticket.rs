//! Single-use room tickets: browsers cannot set headers on a WebSocket upgrade, and a JWT in
//! a URL ends up in logs and history. `POST /v1/drops/{id}/ticket` (shopper, bearer token)
//! stores a random ticket in Redis for `ws.ticket_ttl_s`, bound to the account, the drop and
//! the access token's session; the upgrade `?ticket=` takes it with GETDEL (single use).

use crate::error::ApiError;
use crate::extract::{shopper_only, AuthClaims, DropPath};
use crate::AppState;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::Json;
use redis::AsyncCommands;
use vq_core::domain::{DropId, UserId};

/// Who opened a room socket, and the access-token session it lives on (checked on every
/// periodic re-read: an expired or revoked session closes the socket).
#[derive(Debug, Clone)]
pub struct RoomAuth {
    pub user: UserId,
    pub jti: uuid::Uuid,
    /// Expiry of the access token (unix seconds).
    pub exp: i64,
    /// The account's creation time (unix s), when the token said: the proof of work's price.
    pub account_created: Option<i64>,
}

fn key(st: &AppState, ticket: &str) -> String {
    format!("{}:ticket:{ticket}", st.keys.prefix())
}

/// A single-use ticket for opening the room socket from a browser (`?ticket=`).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Ticket {
    pub ticket: String,
    /// Seconds the ticket stays valid.
    pub expires_in: u64,
}

#[utoipa::path(post, path = "/v1/drops/{id}/ticket", tag = "drops", security(("bearer" = ["shopper"])),
    responses((status = 201, body = Ticket)))]
pub async fn issue(
    State(st): State<AppState>,
    DropPath(id): DropPath,
    AuthClaims(c): AuthClaims,
) -> Result<(StatusCode, Json<Ticket>), ApiError> {
    let p = shopper_only(c.principal())?;
    crate::drops::store::load(&st, id).await?;
    let ticket = format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    );
    let ttl = st.ws.ticket_ttl_s.max(1);
    let created = c.acct.map_or(String::new(), |t| t.to_string());
    let value = format!("{}|{}|{}|{}|{created}", p.user, id.get(), c.jti, c.exp);
    let mut conn = st.redis.clone();
    let _: () = conn.set_ex(key(&st, &ticket), value, ttl).await?;
    Ok((
        StatusCode::CREATED,
        Json(Ticket {
            ticket,
            expires_in: ttl,
        }),
    ))
}

fn bad_ticket() -> ApiError {
    ApiError::Unauthenticated {
        code: "invalid_ticket",
        message: "unknown, used, expired or other drop's ticket; get a new one",
    }
}

/// Takes the ticket (whatever the outcome: single use) and checks it was issued for `drop`.
async fn redeem(st: &AppState, drop: DropId, ticket: &str) -> Result<RoomAuth, ApiError> {
    if ticket.is_empty() || ticket.len() > 128 {
        return Err(bad_ticket());
    }
    let mut conn = st.redis.clone();
    let raw: Option<String> = conn.get_del(key(st, ticket)).await?;
    let raw = raw.ok_or_else(bad_ticket)?;
    let mut it = raw.split('|');
    let (Some(user), Some(d), Some(jti), Some(exp)) = (it.next(), it.next(), it.next(), it.next())
    else {
        return Err(bad_ticket());
    };
    if d != drop.get().to_string() {
        return Err(bad_ticket());
    }
    Ok(RoomAuth {
        user: UserId(user.parse().map_err(|_| bad_ticket())?),
        jti: jti.parse().map_err(|_| bad_ticket())?,
        exp: exp.parse().map_err(|_| bad_ticket())?,
        account_created: it.next().and_then(|t| t.parse().ok()),
    })
}

impl FromRequestParts<AppState> for RoomAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let ticket = parts.uri.query().and_then(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("ticket="))
                .map(str::to_owned)
        });
        let bearer = parts.headers.contains_key(header::AUTHORIZATION);
        match ticket {
            Some(t) if !bearer => {
                let DropPath(drop) = DropPath::from_request_parts(parts, st).await?;
                redeem(st, drop, &t).await
            }
            _ => {
                let AuthClaims(c) = AuthClaims::from_request_parts(parts, st).await?;
                let p = shopper_only(c.principal())?;
                Ok(RoomAuth {
                    user: p.user,
                    jti: c.jti,
                    exp: c.exp,
                    account_created: c.acct,
                })
            }
        }
    }
}
