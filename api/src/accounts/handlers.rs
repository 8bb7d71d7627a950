//! HTTP handlers of `/v1/auth/*` and `/v1/me`.

use super::{Accounts, ProfileInput};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, AuthClaims};
use crate::limits::ClientIp;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;
use vq_core::account::{Email, EmailCode};
use vq_core::auth::Role;
use vq_core::domain::{Checker, Invalid, UserId};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/email-code", post(email_code))
        .route("/v1/auth/signup", post(signup))
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/refresh", post(refresh))
        .route("/v1/auth/logout", post(logout))
        .route("/v1/me", get(me))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(email_code, signup, login, refresh, logout, me))]
pub struct Doc;

/// A code is on its way (always, for a well-formed address): `status` is `sent`.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct CodeSent {
    status: &'static str,
    /// Seconds the code stays valid.
    expires_in: i64,
}

/// The new account.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct SignedUp {
    id: uuid::Uuid,
    email: String,
    role: Role,
}

fn accounts(st: &AppState) -> Result<Arc<Accounts>, ApiError> {
    st.accounts.clone().ok_or(ApiError::Unavailable {
        code: "accounts_disabled",
        message: "accounts are not configured on this server",
    })
}

fn invalid(c: Checker) -> Result<(), ApiError> {
    c.finish().map_err(ApiError::Validation)
}

#[derive(Deserialize, utoipa::ToSchema)]
struct CodeBody {
    email: Option<String>,
}

/// Always 202 for a well-formed address, whether or not it has an account, so the
/// endpoint cannot be used to find out who shops here. Asking again while a code is
/// live re-sends that same code, so requests cannot reset its try counter.
#[utoipa::path(post, path = "/v1/auth/email-code", tag = "accounts", request_body = CodeBody,
    responses((status = 202, body = CodeSent), (status = 429, body = ErrorBody, description = "`rate_limited`"),
        (status = 503, body = ErrorBody, description = "`accounts_disabled`")))]
async fn email_code(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(b): ApiJson<CodeBody>,
) -> Result<(StatusCode, Json<CodeSent>), ApiError> {
    let acc = accounts(&st)?;
    st.limits.email_code_ip(ip).await?;
    let mut c = Checker::default();
    let email = c.req("email", b.email.as_deref(), Email::parse);
    invalid(c)?;
    let email = email.expect("checked");
    st.limits
        .email_code_address(&acc.hasher.email(&email))
        .await?;
    let mut conn = st.redis.clone();
    let code = acc
        .codes
        .issue(
            &mut conn,
            &st.keys,
            &acc.hasher,
            &acc.cipher,
            &st.clock,
            &email,
        )
        .await?;
    // The mailer's errors name no recipient (see `mail::redact`).
    if let Err(e) = acc.mailer.send_code(&email, &code).await {
        tracing::warn!(error = %e, "sending a verification code failed");
        return Err(ApiError::Unavailable {
            code: "mail_unavailable",
            message: "the code could not be sent; try again later",
        });
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(CodeSent {
            status: "sent",
            expires_in: acc.code_ttl_s,
        }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct SignupBody {
    code: Option<String>,
    #[serde(flatten)]
    profile: ProfileInput,
}

/// The code is checked (and burnt) before the e-mail's uniqueness, so only the owner of
/// a mailbox can learn that it already has an account. The argon2 permit is taken
/// before the code is checked, so a busy server does not burn a good code.
/// Creates a shopper account with the e-mail code and the profile.
#[utoipa::path(post, path = "/v1/auth/signup", tag = "accounts", request_body = SignupBody,
    responses((status = 201, body = SignedUp),
        (status = 409, body = ErrorBody, description = "`email_taken`"),
        (status = 410, body = ErrorBody, description = "`code_expired`"),
        (status = 422, body = ErrorBody, description = "`validation_failed` or `invalid_code` (with `tries_left`)"),
        (status = 429, body = ErrorBody, description = "`rate_limited`"), (status = 503, body = ErrorBody, description = "`busy` or `accounts_disabled`")))]
async fn signup(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(b): ApiJson<SignupBody>,
) -> Result<(StatusCode, Json<SignedUp>), ApiError> {
    let acc = accounts(&st)?;
    st.limits.signup_ip(ip).await?;
    let mut c = Checker::default();
    let code = c.req("code", b.code.as_deref(), EmailCode::parse);
    let account = b.profile.parse(Role::Shopper, &mut c);
    invalid(c)?;
    let (code, account) = (code.expect("checked"), account.expect("checked"));
    let permit = acc.argon2.enter().await?;
    let mut conn = st.redis.clone();
    acc.codes
        .verify(
            &mut conn,
            &st.keys,
            &acc.hasher,
            &st.clock,
            &account.email,
            &code,
        )
        .await?
        .map_err(ApiError::from)?;
    let email = account.email.as_str().to_string();
    let id = acc.create(&st.db, account, permit).await?;
    Ok((
        StatusCode::CREATED,
        Json(SignedUp {
            id: id.0,
            email,
            role: Role::Shopper,
        }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct LoginBody {
    email: Option<String>,
    password: Option<String>,
}

/// Unknown e-mails run argon2 against a dummy hash through the same gate, so neither
/// timing nor a `busy` answer tells which addresses have accounts.
/// A new session: a short-lived access token and a refresh token.
#[utoipa::path(post, path = "/v1/auth/login", tag = "accounts", request_body = LoginBody,
    responses((status = 200, body = super::sessions::TokenPair),
        (status = 401, body = ErrorBody, description = "`invalid_credentials`"),
        (status = 429, body = ErrorBody, description = "`rate_limited`"), (status = 503, body = ErrorBody, description = "`busy` or `accounts_disabled`")))]
async fn login(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(b): ApiJson<LoginBody>,
) -> Result<Json<super::sessions::TokenPair>, ApiError> {
    let acc = accounts(&st)?;
    st.limits.login_ip(ip).await?;
    let mut c = Checker::default();
    let email = c.req("email", b.email.as_deref(), Email::parse);
    let password = c.req("password", b.password, |p: String| {
        vq_core::domain::no_controls(&p, vq_core::domain::Lines::Single)?;
        if p.is_empty() || p.len() > 1024 {
            Err(Invalid("must be 1 to 1024 bytes".into()))
        } else {
            Ok(p)
        }
    });
    invalid(c)?;
    let (email, password) = (email.expect("checked"), password.expect("checked"));
    let email_hash = acc.hasher.email(&email);
    st.limits.login_attempt(&email_hash, ip).await?;
    let permit = match acc.argon2.enter().await {
        Ok(p) => p,
        Err(busy) => {
            st.limits.login_give_back(&email_hash, ip).await?;
            return Err(busy);
        }
    };
    let found = acc.find_login(&st.db, &email).await?;
    let (ids, phc) = match found {
        Some((id, role, phc)) => (Some((id, role)), Some(phc)),
        None => (None, None),
    };
    let ok = super::crypto::verify_password(password, phc, permit).await?;
    let Some((id, role)) = ids.filter(|_| ok) else {
        return Err(ApiError::Unauthenticated {
            code: "invalid_credentials",
            message: "wrong e-mail or password",
        });
    };
    st.limits.login_give_back(&email_hash, ip).await?;
    let mut tx = st.db.begin().await?;
    let pair = acc
        .start_session(&st, &mut tx, id, role, uuid::Uuid::new_v4())
        .await?;
    tx.commit().await?;
    Ok(Json(pair))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct RefreshBody {
    refresh_token: Option<String>,
}

/// Trades a refresh token for a new pair (the old one is used up; reusing it revokes the
/// session).
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "accounts", request_body = RefreshBody,
    responses((status = 200, body = super::sessions::TokenPair),
        (status = 401, body = ErrorBody, description = "`invalid_refresh_token` (unknown, used or revoked)")))]
async fn refresh(
    State(st): State<AppState>,
    ApiJson(b): ApiJson<RefreshBody>,
) -> Result<Json<super::sessions::TokenPair>, ApiError> {
    let acc = accounts(&st)?;
    let mut c = Checker::default();
    let token = c.req("refresh_token", b.refresh_token, |t: String| {
        if t.is_empty() || t.len() > 256 {
            Err(Invalid("must be the refresh token from login".into()))
        } else {
            Ok(t)
        }
    });
    invalid(c)?;
    Ok(Json(acc.refresh(&st, &token.expect("checked")).await?))
}

/// Ends the session of this access token.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "accounts", security(("bearer" = [])),
    responses((status = 204, description = "Signed out")))]
async fn logout(
    State(st): State<AppState>,
    AuthClaims(claims): AuthClaims,
) -> Result<StatusCode, ApiError> {
    accounts(&st)?.logout(&st, &claims).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/me", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = super::users::Profile),
        (status = 404, body = ErrorBody, description = "`account_not_found`")))]
async fn me(
    State(st): State<AppState>,
    AuthClaims(claims): AuthClaims,
) -> Result<Json<super::users::Profile>, ApiError> {
    let acc = accounts(&st)?;
    acc.profile(&st.db, UserId(claims.sub))
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::NotFound("account_not_found", "this account does not exist".into())
        })
}
