//! A buyer's orders: list and detail (owner only: other accounts' orders do not exist for
//! them), payment, cancellation before shipping (refunded when paid), and returns within
//! the window. Paying holds no transaction or row lock while the provider answers (see
//! `vq_orders::pay`), so slow payments never take connections from other requests.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, AuthUser, IdPath, ORDER};
use crate::pagination::{paged, PageQuery, Paged};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use vq_orders::{self as orders, Order, OrderId, COLUMNS};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/orders", get(list))
        .route("/v1/orders/{id}", get(show))
        .route("/v1/orders/{id}/pay", post(pay))
        .route("/v1/orders/{id}/cancel", post(cancel))
        .route("/v1/orders/{id}/return", post(request_return))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(list, show, pay, cancel, request_return))]
pub struct Doc;

fn now(st: &AppState) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(st.clock.now_ms())
        .single()
        .unwrap_or_else(Utc::now)
}

/// An order as its owner sees it: the row plus the product's name and, while unpaid, the
/// moment it expires unpaid (`reserved_at` + `orders.payment_ttl_s`), so the page can
/// count down to it.
#[derive(Serialize, sqlx::FromRow, utoipa::ToSchema)]
struct OrderView {
    #[serde(flatten)]
    #[sqlx(flatten)]
    order: Order,
    product_name: String,
    #[sqlx(skip)]
    pay_by: Option<DateTime<Utc>>,
}

impl OrderView {
    fn with_deadline(mut self, st: &AppState) -> Self {
        let ttl = chrono::Duration::seconds(st.orders.payment_ttl_s as i64);
        self.pay_by = (self.order.status == orders::Status::PendingPayment)
            .then(|| self.order.reserved_at + ttl);
        self
    }
}

/// The columns of `OrderView`, for `SELECT ... FROM orders`.
fn view_columns() -> String {
    format!(
        "{COLUMNS}, COALESCE((SELECT d.product_name FROM drops d WHERE d.id = orders.drop_id), '') \
         AS product_name"
    )
}

/// The caller's orders, newest first (`drop_id` filters by drop).
#[utoipa::path(get, path = "/v1/orders", tag = "orders", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = Paged<OrderView>)))]
async fn list(
    State(st): State<AppState>,
    AuthUser(p): AuthUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Paged<OrderView>>, ApiError> {
    let page = q.page()?;
    let rows = sqlx::query_as::<_, OrderView>(&format!(
        "SELECT {} FROM orders WHERE user_id = $1 AND id < $2 AND ($3::bigint IS NULL OR drop_id = $3) \
         ORDER BY id DESC LIMIT $4",
        view_columns()
    ))
    .bind(p.user.0)
    .bind(page.before)
    .bind(q.drop_id)
    .bind(page.limit + 1)
    .fetch_all(&st.db)
    .await?;
    let rows = rows.into_iter().map(|o| o.with_deadline(&st)).collect();
    Ok(Json(paged(rows, page.limit, |o| o.order.id.get())))
}

#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders", security(("bearer" = [])),
    responses((status = 200, body = Order)))]
async fn show(
    State(st): State<AppState>,
    AuthUser(p): AuthUser,
    IdPath(id): IdPath<ORDER>,
) -> Result<Json<OrderView>, ApiError> {
    sqlx::query_as::<_, OrderView>(&format!(
        "SELECT {} FROM orders WHERE id = $1 AND user_id = $2",
        view_columns()
    ))
    .bind(id)
    .bind(p.user.0)
    .fetch_optional(&st.db)
    .await?
    .map(|o| Json(o.with_deadline(&st)))
    .ok_or_else(|| ApiError::NotFound("order_not_found", "no such order".into()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PayBody {
    /// A method the payment provider accepts (422 `validation_failed` otherwise).
    payment_method: String,
}

/// Pays a pending order: 200 with the outcome (PAID or PAYMENT_FAILED), or 202 while
/// the provider has not answered (still CHARGING; fetch the order later).
#[utoipa::path(post, path = "/v1/orders/{id}/pay", tag = "orders", security(("bearer" = [])), request_body = PayBody,
    responses((status = 200, body = Order), (status = 202, body = Order),
        (status = 409, body = ErrorBody, description = "`invalid_transition` or `payment_in_progress` (with `state`)"),
        (status = 429, body = ErrorBody, description = "`rate_limited`")))]
async fn pay(
    State(st): State<AppState>,
    AuthUser(p): AuthUser,
    IdPath(id): IdPath<ORDER>,
    ApiJson(body): ApiJson<PayBody>,
) -> Result<(StatusCode, Json<Order>), ApiError> {
    st.limits.pay(p.user).await?;
    if !st.payments.accepts(&body.payment_method) {
        return Err(ApiError::Validation(
            [(
                "payment_method".to_string(),
                "unknown payment method".to_string(),
            )]
            .into(),
        ));
    }
    let order = orders::pay(
        &st.db,
        st.payments.as_ref(),
        OrderId(id),
        Some(p.user.0),
        &body.payment_method,
        now(&st),
    )
    .await?;
    metrics::counter!("vq_payments_total", "result" => order.status.as_str()).increment(1);
    let mut conn = st.redis.clone();
    orders::pay::settle(&mut conn, &st.scripts, &st.keys, &order).await;
    restock_now(&st, &order).await;
    // No answer from the provider: still CHARGING, resolved by the scheduler; 202 says so.
    let code = match order.status {
        orders::Status::Charging => StatusCode::ACCEPTED,
        _ => StatusCode::OK,
    };
    Ok((code, Json(order)))
}

/// Cancels a pending or paid order (a paid one is refunded); the units go back.
#[utoipa::path(post, path = "/v1/orders/{id}/cancel", tag = "orders", security(("bearer" = [])),
    responses((status = 200, body = Order),
        (status = 409, body = ErrorBody, description = "`invalid_transition` or `payment_in_progress` (with `state`)")))]
async fn cancel(
    State(st): State<AppState>,
    AuthUser(p): AuthUser,
    IdPath(id): IdPath<ORDER>,
) -> Result<Json<Order>, ApiError> {
    let order = orders::cancel(&st.db, OrderId(id), p.user.0, now(&st)).await?;
    restock_now(&st, &order).await;
    // Paid: refund now; if the provider fails or we crash, the scheduler retries.
    let refunded = orders::refund::refund_due(&st.db, st.payments.as_ref(), order.id, now(&st))
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(order = order.id.get(), error = %e, "refund deferred to the scheduler");
            None
        });
    Ok(Json(refunded.unwrap_or(order)))
}

/// Asks to return a delivered order, within the return window.
#[utoipa::path(post, path = "/v1/orders/{id}/return", tag = "orders", security(("bearer" = [])),
    responses((status = 200, body = Order),
        (status = 409, body = ErrorBody, description = "`invalid_transition` or `return_window_closed` (with `closed_at`)")))]
async fn request_return(
    State(st): State<AppState>,
    AuthUser(p): AuthUser,
    IdPath(id): IdPath<ORDER>,
) -> Result<Json<Order>, ApiError> {
    let window = chrono::Duration::seconds(st.orders.return_window_s as i64);
    Ok(Json(
        orders::request_return(&st.db, OrderId(id), p.user.0, now(&st), window).await?,
    ))
}

/// Gives the units back right away when the order just freed stock. Best effort: the
/// scheduler applies whatever is still pending, and applying twice is harmless.
async fn restock_now(st: &AppState, order: &Order) {
    if order.status.restocks() {
        let mut conn = st.redis.clone();
        let r = vq_orders::restock::apply_pending(
            &st.db,
            &mut conn,
            &st.scripts,
            &st.keys,
            Some(order.id),
            now(st),
        )
        .await;
        if let Err(e) = r {
            tracing::warn!(order = order.id.get(), error = %e, "restock deferred to the scheduler");
        }
    }
}
