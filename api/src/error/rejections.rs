//! How each family of domain rejection shows up over HTTP: every family maps its own
//! variants to a status, a code, a message and details, beside the others of its kind.

use axum::http::StatusCode;
use serde_json::{json, Value};
use vq_core::clock::rfc3339;
use vq_core::scripts::{JoinReject, PurchaseReject};

/// Message of every 503 `needs_rebuild` (the drop's Redis state is missing).
pub const NEEDS_REBUILD: &str =
    "this drop's live state is being restored; nothing was changed, retry shortly";

/// An error as the client sees it; `details` (an object or null) is merged into the body.
#[derive(Debug, Clone)]
pub struct Parts {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
}

impl Parts {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Parts {
            status,
            code,
            message: message.into(),
            details: Value::Null,
        }
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// A rejection a handler passes on to the client as it is. Core's rejections are mapped
/// here; an api domain module implements it for its own errors beside them (and gives
/// `From<ItsError> for ApiError` as `ApiError::Rejected(err.parts())`).
pub(crate) trait Rejection {
    fn parts(&self) -> Parts;
}

impl Rejection for PurchaseReject {
    fn parts(&self) -> Parts {
        use PurchaseReject as P;
        let code = self.code();
        match self {
            P::InvalidToken => Parts::new(StatusCode::FORBIDDEN, code, "unknown purchase token"),
            P::NotYourToken => Parts::new(
                StatusCode::FORBIDDEN,
                code,
                "this purchase token belongs to another account",
            ),
            P::TokenUsed => Parts::new(
                StatusCode::CONFLICT,
                code,
                "this purchase token was already used",
            ),
            P::TokenExpired => {
                Parts::new(StatusCode::GONE, code, "this purchase token has expired")
            }
            P::DropClosed => Parts::new(StatusCode::CONFLICT, code, "the drop is closed"),
            P::LimitReached { allowance } => Parts::new(
                StatusCode::CONFLICT,
                code,
                format!("per-account limit reached: you may buy {allowance} more"),
            )
            .details(json!({ "allowance": allowance })),
            P::SoldOut => Parts::new(StatusCode::CONFLICT, code, "sold out"),
            P::NoDrop => Parts::new(StatusCode::NOT_FOUND, code, "no such drop"),
            P::NeedsRebuild => Parts::new(StatusCode::SERVICE_UNAVAILABLE, code, NEEDS_REBUILD),
            P::InsufficientStock { remaining } => {
                Parts::new(StatusCode::CONFLICT, code, format!("only {remaining} left"))
                    .details(json!({ "remaining": remaining }))
            }
        }
    }
}

impl Rejection for JoinReject {
    fn parts(&self) -> Parts {
        match self {
            JoinReject::NoDrop => {
                Parts::new(StatusCode::NOT_FOUND, "drop_not_found", "no such drop")
            }
            JoinReject::NeedsRebuild => Parts::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "needs_rebuild",
                NEEDS_REBUILD,
            ),
            JoinReject::Closed => {
                Parts::new(StatusCode::CONFLICT, "drop_closed", "the drop is closed")
            }
            JoinReject::SoldOut => Parts::new(StatusCode::CONFLICT, "sold_out", "sold out"),
            JoinReject::Waitlisted => Parts::new(
                StatusCode::CONFLICT,
                "sold_out",
                "sold out for now; you keep your place in case units come back",
            )
            .details(serde_json::json!({ "waitlist": true })),
            JoinReject::LimitReached => Parts::new(
                StatusCode::CONFLICT,
                "limit_reached",
                "you already bought the most one account may",
            ),
            JoinReject::NotOpen { opens_at_ms } => Parts::new(
                StatusCode::CONFLICT,
                "not_open",
                "the waiting room is not open yet",
            )
            .details(json!({ "opens_at": rfc3339(*opens_at_ms) })),
        }
    }
}
