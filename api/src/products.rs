//! The catalog: products (manager CRUD, public list and detail with their drops).

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, Manager, ProductPath};
use crate::pagination::{paged, PageQuery, Paged};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vq_core::domain::{
    no_controls, Checker, FieldErrors, Invalid, Lines, PriceCents, ProductId, ProductName,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/products", get(list))
        .route("/v1/products/{id}", get(show))
        .route("/v1/admin/products", post(create))
        .route(
            "/v1/admin/products/{id}",
            axum::routing::patch(update).delete(remove),
        )
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(list, show, create, update, remove))]
pub struct Doc;

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Product {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub price_cents: i64,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, name, description, price_cents, created_at";

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ProductBody {
    name: Option<String>,
    description: Option<String>,
    price_cents: Option<i64>,
}

/// A valid create body.
struct NewProduct {
    name: String,
    description: String,
    price: i64,
}

impl TryFrom<ProductBody> for NewProduct {
    type Error = FieldErrors;

    fn try_from(b: ProductBody) -> Result<Self, FieldErrors> {
        let mut c = Checker::default();
        let name = c.req("name", b.name, name);
        let description = c.opt("description", b.description, description);
        let price = c.req("price_cents", b.price_cents, price);
        match (name, price) {
            (Some(name), Some(price)) if c.0.is_empty() => Ok(NewProduct {
                name,
                description: description.unwrap_or_default(),
                price,
            }),
            _ => Err(c.0),
        }
    }
}

fn description(s: String) -> Result<String, Invalid> {
    no_controls(&s, Lines::Multi)?;
    if s.chars().count() > 5000 {
        return Err(Invalid("must be at most 5000 characters".into()));
    }
    Ok(s)
}

fn name(s: String) -> Result<String, Invalid> {
    ProductName::parse(&s).map(|n| n.as_str().to_owned())
}

fn price(v: i64) -> Result<i64, Invalid> {
    PriceCents::new(v).map(PriceCents::get)
}

pub async fn load(st: &AppState, id: ProductId) -> Result<Product, ApiError> {
    sqlx::query_as::<_, Product>(&format!("SELECT {COLUMNS} FROM products WHERE id = $1"))
        .bind(id.get())
        .fetch_optional(&st.db)
        .await?
        .ok_or_else(|| ApiError::NotFound("product_not_found", "no such product".into()))
}

#[utoipa::path(get, path = "/v1/products", tag = "catalog", params(PageQuery),
    responses((status = 200, body = Paged<Product>)))]
async fn list(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Paged<Product>>, ApiError> {
    let page = q.page()?;
    let rows = sqlx::query_as::<_, Product>(&format!(
        "SELECT {COLUMNS} FROM products WHERE id < $1 ORDER BY id DESC LIMIT $2"
    ))
    .bind(page.before)
    .bind(page.limit + 1)
    .fetch_all(&st.db)
    .await?;
    Ok(Json(paged(rows, page.limit, |p| p.id)))
}

#[derive(Serialize, utoipa::ToSchema)]
struct ProductDetail {
    #[serde(flatten)]
    product: Product,
    drops: Vec<crate::drops::views::PublicDrop>,
}

/// A product with its drops.
#[utoipa::path(get, path = "/v1/products/{id}", tag = "catalog",
    responses((status = 200, body = ProductDetail)))]
async fn show(
    State(st): State<AppState>,
    ProductPath(id): ProductPath,
) -> Result<Json<ProductDetail>, ApiError> {
    let product = load(&st, id).await?;
    let rows = crate::drops::store::of_product(&st, id).await?;
    let mut drops = Vec::with_capacity(rows.len());
    for d in &rows {
        drops.push(crate::drops::views::public(&st, d).await?);
    }
    Ok(Json(ProductDetail { product, drops }))
}

#[utoipa::path(post, path = "/v1/admin/products", tag = "admin", security(("bearer" = ["manager"])),
    request_body = ProductBody, responses((status = 201, body = Product)))]
async fn create(
    State(st): State<AppState>,
    Manager(_): Manager,
    ApiJson(b): ApiJson<ProductBody>,
) -> Result<(StatusCode, Json<Product>), ApiError> {
    let NewProduct {
        name,
        description,
        price,
    } = NewProduct::try_from(b).map_err(ApiError::Validation)?;
    let p = sqlx::query_as::<_, Product>(&format!(
        "INSERT INTO products (name, description, price_cents) VALUES ($1, $2, $3) RETURNING {COLUMNS}"
    ))
    .bind(name)
    .bind(description)
    .bind(price)
    .fetch_one(&st.db)
    .await?;
    Ok((StatusCode::CREATED, Json(p)))
}

/// Changes the given fields.
#[utoipa::path(patch, path = "/v1/admin/products/{id}", tag = "admin", security(("bearer" = ["manager"])),
    request_body = ProductBody, responses((status = 200, body = Product)))]
async fn update(
    State(st): State<AppState>,
    Manager(_): Manager,
    ProductPath(id): ProductPath,
    ApiJson(b): ApiJson<ProductBody>,
) -> Result<Json<Product>, ApiError> {
    let mut c = Checker::default();
    let name = c.opt("name", b.name, name);
    let description = c.opt("description", b.description, description);
    let price = c.opt("price_cents", b.price_cents, price);
    c.finish().map_err(ApiError::Validation)?;
    load(&st, id).await?;
    let p = sqlx::query_as::<_, Product>(&format!(
        "UPDATE products SET name = COALESCE($2, name), description = COALESCE($3, description), \
         price_cents = COALESCE($4, price_cents), updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id.get())
    .bind(name)
    .bind(description)
    .bind(price)
    .fetch_one(&st.db)
    .await?;
    Ok(Json(p))
}

/// A product with drops cannot go: its drops and orders point at it.
#[utoipa::path(delete, path = "/v1/admin/products/{id}", tag = "admin", security(("bearer" = ["manager"])),
    responses((status = 204, description = "Deleted"),
        (status = 409, body = crate::error::ErrorBody, description = "`product_in_use` (with `drops`)")))]
async fn remove(
    State(st): State<AppState>,
    Manager(_): Manager,
    ProductPath(id): ProductPath,
) -> Result<StatusCode, ApiError> {
    load(&st, id).await?;
    let drops: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM drops WHERE product_id = $1")
        .bind(id.get())
        .fetch_one(&st.db)
        .await?;
    if drops > 0 {
        return Err(ApiError::conflict(
            "product_in_use",
            format!("{drops} drop(s) sell this product"),
            serde_json::json!({ "drops": drops }),
        ));
    }
    sqlx::query("DELETE FROM products WHERE id = $1")
        .bind(id.get())
        .execute(&st.db)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
