//! Extractors that turn every bad input into an `ApiError` (JSON body), never axum's
//! plain-text rejections: body JSON, the drop id in the path, and the caller's identity.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use vq_core::auth::{Claims, Principal, Role};
use vq_core::domain::{DropId, ProductId};

/// `Json<T>` whose rejections are API errors.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(r) => Err(json_rejection(r)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    let (status, code) = match &r {
        JsonRejection::JsonSyntaxError(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
        JsonRejection::JsonDataError(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        JsonRejection::MissingJsonContentType(_) => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
        }
        _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
        }
        _ => (r.status(), "bad_request"),
    };
    ApiError::BadRequest {
        status,
        code,
        message: r.body_text(),
    }
}

/// Query string parameters whose rejections are API errors (422 with the reason).
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|r| ApiError::BadRequest {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "invalid_query",
                message: r.body_text(),
            })
    }
}

/// A positive numeric `{id}` path segment; anything else is `not_found` of `what`.
pub struct IdPath<const W: u8>(pub i64);

/// Path ids of orders and products.
pub const ORDER: u8 = 0;
pub const PRODUCT: u8 = 1;

impl<S: Send + Sync, const W: u8> FromRequestParts<S> for IdPath<W> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let missing = || match W {
            ORDER => ApiError::NotFound("order_not_found", "no such order".into()),
            _ => ApiError::NotFound("product_not_found", "no such product".into()),
        };
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| missing())?;
        match raw.parse::<i64>() {
            Ok(id) if id > 0 => Ok(IdPath(id)),
            _ => Err(missing()),
        }
    }
}

/// The `{id}` path segment as a product id; anything else is an unknown product.
pub struct ProductPath(pub ProductId);

impl<S: Send + Sync> FromRequestParts<S> for ProductPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let IdPath(id) = IdPath::<PRODUCT>::from_request_parts(parts, state).await?;
        ProductId::new(id)
            .map(ProductPath)
            .map_err(|_| ApiError::NotFound("product_not_found", "no such product".into()))
    }
}

/// The `{id}` path segment as a drop id; anything else is an unknown drop.
pub struct DropPath(pub DropId);

impl<S: Send + Sync> FromRequestParts<S> for DropPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::drop_not_found())?;
        raw.parse::<DropId>()
            .map(DropPath)
            .map_err(|_| ApiError::drop_not_found())
    }
}

/// The verified claims of the caller's access token, from `Authorization: Bearer …` only
/// (never the URL: browsers open the room socket with a single-use ticket). A token revoked by logout or refresh-reuse detection is
/// refused until it expires (one Redis `EXISTS`, see `accounts::sessions`).
pub struct AuthClaims(pub Claims);

impl FromRequestParts<AppState> for AuthClaims {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let claims = signed_claims(parts, state)?;
        if crate::accounts::sessions::is_revoked(state, &claims.jti).await? {
            return Err(token_revoked());
        }
        Ok(AuthClaims(claims))
    }
}

/// 401 `token_revoked`.
pub fn token_revoked() -> ApiError {
    ApiError::Unauthenticated {
        code: "token_revoked",
        message: "this access token was revoked; sign in again",
    }
}

/// The access token's signature and expiry checked, its revocation NOT yet.
/// For the hot routes (join, purchase) only: their handler hands `jti` to
/// `Limiters::purchase`/`join` before any work, which folds the `EXISTS` into the round
/// trip of the rate limits.
fn signed_claims(parts: &Parts, state: &AppState) -> Result<Claims, ApiError> {
    let token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized("missing bearer token"))?;
    state
        .jwt
        .verify_claims(token.trim())
        .map_err(|_| ApiError::Unauthorized("invalid or expired token"))
}

/// A signed-in shopper whose token's revocation is still to be checked: pass `jti` to the
/// rate-limit gate (`Limiters::purchase`, `Limiters::join`) before anything else. Answers
/// every refusal of [`Shopper`] in the same order (a revoked manager token is 401, not 403).
pub struct ShopperUnchecked {
    pub p: Principal,
    pub jti: uuid::Uuid,
}

impl FromRequestParts<AppState> for ShopperUnchecked {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let claims = signed_claims(parts, state)?;
        let p = claims.principal();
        if p.role != Role::Shopper {
            ensure_not_revoked(state, &claims.jti).await?;
        }
        let p = shopper_only(p)?;
        Ok(ShopperUnchecked { p, jti: claims.jti })
    }
}

/// The revocation check alone, for the refusal paths of the hot routes (a bad body from a
/// revoked token is still 401 first, as on every other route).
pub async fn ensure_not_revoked(state: &AppState, jti: &uuid::Uuid) -> Result<(), ApiError> {
    if crate::accounts::sessions::is_revoked(state, jti).await? {
        return Err(token_revoked());
    }
    Ok(())
}

/// Any signed-in account.
pub struct AuthUser(pub Principal);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AuthClaims(c) = AuthClaims::from_request_parts(parts, state).await?;
        Ok(AuthUser(c.principal()))
    }
}

/// A signed-in drop manager; shoppers get 403.
pub struct Manager(pub Principal);

impl FromRequestParts<AppState> for Manager {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AuthUser(p) = AuthUser::from_request_parts(parts, state).await?;
        if p.role == Role::Manager {
            Ok(Manager(p))
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// A signed-in shopper: the waiting room, the room socket and the purchase are shopper-only
/// (a manager running a drop must not be able to queue or buy in it), so a manager token
/// gets 403 `wrong_role`.
pub struct Shopper(pub Principal);

impl FromRequestParts<AppState> for Shopper {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AuthUser(p) = AuthUser::from_request_parts(parts, state).await?;
        shopper_only(p).map(Shopper)
    }
}

/// 403 `wrong_role` unless the caller is a shopper.
pub fn shopper_only(p: Principal) -> Result<Principal, ApiError> {
    if p.role == Role::Shopper {
        Ok(p)
    } else {
        Err(ApiError::BadRequest {
            status: StatusCode::FORBIDDEN,
            code: "wrong_role",
            message: "this action is for shoppers; managers cannot queue or buy".into(),
        })
    }
}
