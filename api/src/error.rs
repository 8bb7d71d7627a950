//! The API's one error type and its single mapping to HTTP: a status, and a JSON body
//! `{code, message, ...details}`. Internal errors are logged and hidden from clients.

use crate::accounts::codes::CodeReject;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use vq_core::domain::FieldErrors;
use vq_core::scripts::{JoinReject, PurchaseReject};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("request body is invalid")]
    Validation(FieldErrors),
    #[error("{message}")]
    BadRequest {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 401 with a specific code (bad credentials, revoked or reused tokens).
    #[error("{message}")]
    Unauthenticated {
        code: &'static str,
        message: &'static str,
    },
    #[error("too many requests; retry in {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    /// 503 `busy`: the password hashing queue is full (see `accounts::gate`).
    #[error("the server is busy; retry in {retry_after_s} s")]
    Busy { retry_after_s: u64 },
    #[error("e-mail code rejected")]
    Code(CodeReject),
    #[error("{message}")]
    Unavailable {
        code: &'static str,
        message: &'static str,
    },
    #[error("this action needs the manager role")]
    Forbidden,
    #[error("{1}")]
    NotFound(&'static str, String),
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        details: Value,
    },
    #[error("purchase rejected")]
    Purchase(PurchaseReject),
    #[error("cannot join")]
    Join(JoinReject),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl From<redis::RedisError> for ApiError {
    fn from(e: redis::RedisError) -> Self {
        ApiError::Internal(e.into())
    }
}

impl From<vq_worker::orders::TransitionError> for ApiError {
    fn from(e: vq_worker::orders::TransitionError) -> Self {
        use vq_worker::orders::TransitionError as T;
        match e {
            T::NotFound => ApiError::NotFound("order_not_found", "no such order".into()),
            T::Illegal { current, to } => ApiError::conflict(
                "invalid_transition",
                format!("an order in {current} cannot become {to}"),
                json!({ "state": current }),
            ),
            T::ReturnWindowClosed { closed_at } => ApiError::conflict(
                "return_window_closed",
                format!("returns for this order closed at {closed_at}"),
                json!({ "state": "DELIVERED", "closed_at": closed_at }),
            ),
            T::Db(e) => ApiError::Internal(e.into()),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(e.into())
    }
}

impl ApiError {
    pub fn drop_not_found() -> Self {
        ApiError::NotFound("drop_not_found", "no such drop".into())
    }

    pub fn conflict(code: &'static str, message: impl Into<String>, details: Value) -> Self {
        ApiError::Conflict {
            code,
            message: message.into(),
            details,
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, String, Value) {
        use PurchaseReject as P;
        let msg = self.to_string();
        match self {
            ApiError::Validation(f) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                msg,
                json!({ "fields": f }),
            ),
            ApiError::BadRequest {
                status,
                code,
                message,
            } => (*status, code, message.clone(), Value::Null),
            ApiError::Unauthorized(_) => {
                (StatusCode::UNAUTHORIZED, "unauthorized", msg, Value::Null)
            }
            ApiError::Unauthenticated { code, .. } => {
                (StatusCode::UNAUTHORIZED, code, msg, Value::Null)
            }
            ApiError::RateLimited { retry_after_s } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                msg,
                json!({ "retry_after": retry_after_s }),
            ),
            ApiError::Busy { retry_after_s } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                msg,
                json!({ "retry_after": retry_after_s }),
            ),
            ApiError::Code(CodeReject::Wrong { tries_left }) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_code",
                "the e-mail code is wrong".into(),
                json!({ "tries_left": tries_left }),
            ),
            ApiError::Code(CodeReject::Gone) => (
                StatusCode::GONE,
                "code_expired",
                "no valid code for this e-mail (expired, used or too many tries): request a new one"
                    .into(),
                Value::Null,
            ),
            ApiError::Unavailable { code, .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, code, msg, Value::Null)
            }
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden", msg, Value::Null),
            ApiError::NotFound(code, _) => (StatusCode::NOT_FOUND, code, msg, Value::Null),
            ApiError::Conflict { code, details, .. } => {
                (StatusCode::CONFLICT, code, msg, details.clone())
            }
            ApiError::Purchase(r) => {
                let (status, message, details) = match r {
                    P::InvalidToken => (
                        StatusCode::FORBIDDEN,
                        "unknown purchase token".into(),
                        Value::Null,
                    ),
                    P::NotYourToken => (
                        StatusCode::FORBIDDEN,
                        "this purchase token belongs to another account".into(),
                        Value::Null,
                    ),
                    P::TokenUsed => (
                        StatusCode::CONFLICT,
                        "this purchase token was already used".into(),
                        Value::Null,
                    ),
                    P::TokenExpired => (
                        StatusCode::GONE,
                        "this purchase token has expired".into(),
                        Value::Null,
                    ),
                    P::DropClosed => (
                        StatusCode::CONFLICT,
                        "the drop is closed".into(),
                        Value::Null,
                    ),
                    P::LimitReached { allowance } => (
                        StatusCode::CONFLICT,
                        format!("per-account limit reached: you may buy {allowance} more"),
                        json!({ "allowance": allowance }),
                    ),
                    P::SoldOut => (StatusCode::CONFLICT, "sold out".into(), Value::Null),
                    P::InsufficientStock { remaining } => (
                        StatusCode::CONFLICT,
                        format!("only {remaining} left"),
                        json!({ "remaining": remaining }),
                    ),
                };
                (status, r.code(), message, details)
            }
            ApiError::Join(r) => match r {
                JoinReject::NoDrop => (
                    StatusCode::NOT_FOUND,
                    "drop_not_found",
                    "no such drop".into(),
                    Value::Null,
                ),
                JoinReject::Closed => (
                    StatusCode::CONFLICT,
                    "drop_closed",
                    "the drop is closed".into(),
                    Value::Null,
                ),
                JoinReject::SoldOut => (
                    StatusCode::CONFLICT,
                    "sold_out",
                    "sold out".into(),
                    Value::Null,
                ),
                JoinReject::LimitReached => (
                    StatusCode::CONFLICT,
                    "limit_reached",
                    "you already bought the most one account may".into(),
                    Value::Null,
                ),
                JoinReject::NotOpen { opens_at_ms } => (
                    StatusCode::CONFLICT,
                    "not_open",
                    "the waiting room is not open yet".into(),
                    json!({ "opens_at": crate::views::rfc3339(*opens_at_ms) }),
                ),
            },
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "something went wrong on our side".into(),
                    Value::Null,
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            ApiError::RateLimited { retry_after_s } => Some(*retry_after_s),
            ApiError::Busy { retry_after_s } => Some(*retry_after_s),
            _ => None,
        };
        let (status, code, message, details) = self.parts();
        let mut body = json!({ "code": code, "message": message });
        if let (Value::Object(extra), Some(map)) = (details, body.as_object_mut()) {
            map.extend(extra);
        }
        let mut res = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res
    }
}
