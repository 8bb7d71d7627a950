//! The API's one error type and its single mapping to HTTP: a status, and a JSON body
//! `{code, message, ...details}`. Internal errors are logged and hidden from clients.

mod rejections;
pub use rejections::Parts;
pub(crate) use rejections::Rejection;
pub use rejections::NEEDS_REBUILD;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use vq_core::domain::FieldErrors;
use vq_core::scripts::{JoinReject, PurchaseReject};

/// The body of every error response: a machine-readable `code`, a `message` for people,
/// and, for some codes, more fields beside them (`fields` for `validation_failed`,
/// `retry_after` for `rate_limited` and `busy`, `challenge` for `pow_required`, `state`
/// for order conflicts...).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(example = json!({"code": "drop_not_found", "message": "no such drop"}))]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    /// The code's extra fields, at the top level of the body (the schema leaves further
    /// properties open, which is how JSON Schema reads an object by default).
    #[serde(flatten)]
    #[schema(ignore)]
    pub details: serde_json::Map<String, Value>,
}

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
    /// A domain module's own rejection, already mapped by its `Rejection` impl (the
    /// domain maps itself, so this module imports none).
    #[error("{}", .0.message)]
    Rejected(Parts),
    /// 503 `not_replicated` (`redis.durability = "strict"`): no replica confirmed the
    /// purchase in time, so it was undone (or never tried); nothing is reserved.
    #[error("no Redis replica confirmed this purchase, so nothing was reserved; retry in {retry_after_s} s")]
    NotReplicated { retry_after_s: u64 },
    #[error("{message}")]
    Unavailable {
        code: &'static str,
        message: &'static str,
    },
    #[error("this action needs the manager role")]
    Forbidden,
    /// 403 `pow_required`: the join needs a proof of work; carries a fresh challenge.
    #[error("this drop needs a proof of work to join; solve the challenge and retry")]
    PowRequired(Value),
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

impl From<vq_orders::TransitionError> for ApiError {
    fn from(e: vq_orders::TransitionError) -> Self {
        use vq_orders::TransitionError as T;
        match e {
            T::NotFound => ApiError::NotFound("order_not_found", "no such order".into()),
            T::Illegal {
                current: vq_orders::Status::Charging,
                ..
            } => ApiError::conflict(
                "payment_in_progress",
                "this order's payment is being processed; fetch the order for the outcome",
                json!({ "state": vq_orders::Status::Charging }),
            ),
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

    /// The machine-readable code clients see for this error.
    pub fn code(&self) -> &'static str {
        self.parts().code
    }

    /// Status, code, message and details (an object's fields) as every transport shows them.
    pub fn wire(
        &self,
    ) -> (
        StatusCode,
        &'static str,
        String,
        serde_json::Map<String, Value>,
    ) {
        let p = self.parts();
        let details = match p.details {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        (p.status, p.code, p.message, details)
    }

    fn parts(&self) -> Parts {
        let msg = self.to_string();
        match self {
            ApiError::Validation(f) => {
                Parts::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", msg)
                    .details(json!({ "fields": f }))
            }
            ApiError::BadRequest {
                status,
                code,
                message,
            } => Parts::new(*status, code, message.clone()),
            ApiError::Unauthorized(_) => Parts::new(StatusCode::UNAUTHORIZED, "unauthorized", msg),
            ApiError::Unauthenticated { code, .. } => {
                Parts::new(StatusCode::UNAUTHORIZED, code, msg)
            }
            ApiError::RateLimited { retry_after_s } => {
                Parts::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", msg)
                    .details(json!({ "retry_after": retry_after_s }))
            }
            ApiError::Busy { retry_after_s } => {
                Parts::new(StatusCode::SERVICE_UNAVAILABLE, "busy", msg)
                    .details(json!({ "retry_after": retry_after_s }))
            }
            ApiError::Rejected(p) => p.clone(),
            ApiError::NotReplicated { retry_after_s } => {
                Parts::new(StatusCode::SERVICE_UNAVAILABLE, "not_replicated", msg)
                    .details(json!({ "retry_after": retry_after_s }))
            }
            ApiError::Unavailable { code, .. } => {
                Parts::new(StatusCode::SERVICE_UNAVAILABLE, code, msg)
            }
            ApiError::Forbidden => Parts::new(StatusCode::FORBIDDEN, "forbidden", msg),
            ApiError::PowRequired(challenge) => {
                Parts::new(StatusCode::FORBIDDEN, "pow_required", msg)
                    .details(json!({ "challenge": challenge }))
            }
            ApiError::NotFound(code, _) => Parts::new(StatusCode::NOT_FOUND, code, msg),
            ApiError::Conflict { code, details, .. } => {
                Parts::new(StatusCode::CONFLICT, code, msg).details(details.clone())
            }
            ApiError::Purchase(r) => r.parts(),
            ApiError::Join(r) => r.parts(),
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                Parts::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "something went wrong on our side",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            ApiError::RateLimited { retry_after_s }
            | ApiError::Busy { retry_after_s }
            | ApiError::NotReplicated { retry_after_s } => Some(*retry_after_s),
            _ => None,
        };
        let (status, code, message, details) = self.wire();
        let body = ErrorBody {
            code: code.into(),
            message,
            details,
        };
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
