//! Sessions: a short-lived access JWT plus a rotating refresh token; a session (refresh
//! family) ends `auth.session_max_s` after its login however often it is rotated. Every refresh row
//! names the access token issued with it, so revoking a family (reuse detected, or
//! logout) also revokes its live access tokens in Redis.
//!
//! Revocation check per request: one Redis `EXISTS` on `auth:revoked:{jti}`, a key that
//! expires together with the token. That keeps the hot join/purchase path at O(1) extra
//! work without a database hit, and no revocation list ever has to be scanned.

use super::crypto::{new_refresh_token, refresh_hash};
use super::Accounts;
use crate::error::ApiError;
use crate::AppState;
use chrono::{DateTime, TimeZone, Utc};
use redis::AsyncCommands;
use serde::Serialize;
use sqlx::{Postgres, Transaction};
use vq_core::auth::{Claims, Role};
use vq_core::domain::UserId;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub refresh_token: String,
    pub refresh_expires_in: i64,
}

fn unauth(code: &'static str, message: &'static str) -> ApiError {
    ApiError::Unauthenticated { code, message }
}

fn ts(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_else(Utc::now)
}

impl Accounts {
    /// Issues an access token and a refresh token of `family` (a new family on login).
    pub async fn start_session(
        &self,
        st: &AppState,
        tx: &mut Transaction<'_, Postgres>,
        user: UserId,
        role: Role,
        family: uuid::Uuid,
    ) -> Result<TokenPair, ApiError> {
        let mut claims = Claims::new(user, role, self.access_ttl_s);
        let (refresh, hash) = new_refresh_token();
        // A family's first row is its login: no token outlives login + session_max_s,
        // however often it is rotated.
        let (left, created): (f64, Option<i64>) = sqlx::query_as(
            "INSERT INTO refresh_tokens (token_hash, family_id, user_id, access_jti, access_exp, \
             expires_at) VALUES ($1, $2, $3, $4, $5, LEAST(now() + make_interval(secs => $6), \
             COALESCE((SELECT min(created_at) FROM refresh_tokens WHERE family_id = $2), now()) \
             + make_interval(secs => $7))) \
             RETURNING extract(epoch FROM expires_at - now())::float8, \
             (SELECT extract(epoch FROM created_at)::int8 FROM users WHERE id = $3)",
        )
        .bind(hash)
        .bind(family)
        .bind(user.0)
        .bind(claims.jti)
        .bind(ts(claims.exp))
        .bind(self.refresh_ttl_s as f64)
        .bind(self.session_max_s as f64)
        .fetch_one(&mut **tx)
        .await?;
        claims.acct = created;
        Ok(TokenPair {
            access_token: st.jwt.sign(&claims),
            token_type: "Bearer",
            expires_in: self.access_ttl_s,
            refresh_token: refresh,
            refresh_expires_in: left.max(0.0) as i64,
        })
    }

    /// Rotates a refresh token. A token that was already rotated is proof of theft
    /// (either the thief or the owner holds a stale copy): the whole family dies.
    pub async fn refresh(&self, st: &AppState, token: &str) -> Result<TokenPair, ApiError> {
        let mut tx = st.db.begin().await?;
        type Row = (uuid::Uuid, uuid::Uuid, bool, bool, bool);
        let row: Option<Row> = sqlx::query_as(
            "SELECT family_id, user_id, used_at IS NOT NULL, revoked_at IS NOT NULL, \
             expires_at <= now() OR (SELECT min(created_at) FROM refresh_tokens f \
             WHERE f.family_id = t.family_id) + make_interval(secs => $2) <= now() \
             FROM refresh_tokens t WHERE token_hash = $1 FOR UPDATE",
        )
        .bind(refresh_hash(token))
        .bind(self.session_max_s as f64)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((family, user, used, revoked, expired)) = row else {
            return Err(unauth("invalid_refresh_token", "unknown refresh token"));
        };
        if revoked {
            return Err(unauth("invalid_refresh_token", "this session was revoked"));
        }
        if used {
            self.revoke_family(st, &mut tx, family).await?;
            tx.commit().await?;
            tracing::warn!(%user, %family, "refresh token reuse: family revoked");
            return Err(unauth(
                "refresh_token_reused",
                "this refresh token was already used; the session is revoked",
            ));
        }
        if expired {
            return Err(unauth(
                "invalid_refresh_token",
                "the refresh token or its session expired: log in again",
            ));
        }
        let Some(role) = self.role(&st.db, UserId(user)).await? else {
            return Err(unauth(
                "invalid_refresh_token",
                "the account no longer exists",
            ));
        };
        sqlx::query("UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1")
            .bind(refresh_hash(token))
            .execute(&mut *tx)
            .await?;
        let pair = self
            .start_session(st, &mut tx, UserId(user), role, family)
            .await?;
        tx.commit().await?;
        Ok(pair)
    }

    /// Logout: the presented access token and its whole refresh family are revoked.
    pub async fn logout(&self, st: &AppState, claims: &Claims) -> Result<(), ApiError> {
        let mut tx = st.db.begin().await?;
        let family: Option<uuid::Uuid> = sqlx::query_scalar(
            "SELECT family_id FROM refresh_tokens WHERE access_jti = $1 AND user_id = $2",
        )
        .bind(claims.jti)
        .bind(claims.sub)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(f) = family {
            self.revoke_family(st, &mut tx, f).await?;
        }
        tx.commit().await?;
        revoke_access(st, claims.jti, claims.exp).await
    }

    async fn revoke_family(
        &self,
        st: &AppState,
        tx: &mut Transaction<'_, Postgres>,
        family: uuid::Uuid,
    ) -> Result<(), ApiError> {
        let live: Vec<(uuid::Uuid, DateTime<Utc>)> = sqlx::query_as(
            "UPDATE refresh_tokens SET revoked_at = COALESCE(revoked_at, now()) \
             WHERE family_id = $1 RETURNING access_jti, access_exp",
        )
        .bind(family)
        .fetch_all(&mut **tx)
        .await?;
        for (jti, exp) in live {
            revoke_access(st, jti, exp.timestamp()).await?;
        }
        Ok(())
    }
}

/// Marks an access token revoked until it would expire anyway.
pub async fn revoke_access(st: &AppState, jti: uuid::Uuid, exp: i64) -> Result<(), ApiError> {
    let left = exp - Utc::now().timestamp();
    if left > 0 {
        let mut conn = st.redis.clone();
        let _: () = conn
            .set_ex(st.keys.revoked_jti(&jti), 1, (left + 1) as u64)
            .await?;
    }
    Ok(())
}

/// The per-request check (see the module comment for why it is one `EXISTS`).
pub async fn is_revoked(st: &AppState, jti: &uuid::Uuid) -> Result<bool, ApiError> {
    let mut conn = st.redis.clone();
    Ok(conn.exists(st.keys.revoked_jti(jti)).await?)
}
