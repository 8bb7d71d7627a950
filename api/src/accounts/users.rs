//! The `users` table: personal data goes in sealed, comes out opened; the e-mail is
//! looked up by its keyed hash only.

use super::Accounts;
use crate::error::ApiError;
use serde::Serialize;
use sqlx::PgPool;
use vq_core::account::{Address, Email, Password, PersonName, Phone};
use vq_core::auth::Role;
use vq_core::domain::UserId;

/// A parsed signup (or CLI manager) request.
pub struct NewAccount {
    pub email: Email,
    pub password: Password,
    pub name: PersonName,
    pub address: Address,
    pub phone: Phone,
    pub role: Role,
}

/// What `GET /v1/me` shows: the decrypted profile.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Profile {
    pub id: uuid::Uuid,
    pub email: String,
    pub name: String,
    pub address: String,
    pub phone: String,
    pub role: Role,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Associated data binding a sealed value to its row and column.
fn aad(id: uuid::Uuid, column: &str) -> String {
    format!("users:{id}:{column}")
}

impl Accounts {
    /// Inserts the account; an e-mail that already has one is 409 `email_taken`. The
    /// caller holds the argon2 permit, so it can queue before spending anything else.
    pub async fn create(
        &self,
        db: &PgPool,
        a: NewAccount,
        permit: super::gate::Permit,
    ) -> Result<UserId, ApiError> {
        let id = uuid::Uuid::new_v4();
        let hash = super::crypto::hash_password(a.password, permit).await?;
        let c = &self.cipher;
        let res = sqlx::query(
            "INSERT INTO users (id, email_hash, email_enc, password_hash, role, name_enc, \
             address_enc, phone_enc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (email_hash) DO NOTHING",
        )
        .bind(id)
        .bind(self.hasher.email(&a.email))
        .bind(c.seal(a.email.as_str(), &aad(id, "email")))
        .bind(hash)
        .bind(a.role.as_str())
        .bind(c.seal(a.name.as_str(), &aad(id, "name")))
        .bind(c.seal(a.address.as_str(), &aad(id, "address")))
        .bind(c.seal(a.phone.as_str(), &aad(id, "phone")))
        .execute(db)
        .await?;
        if res.rows_affected() == 0 {
            return Err(ApiError::conflict(
                "email_taken",
                "an account with this e-mail already exists",
                serde_json::Value::Null,
            ));
        }
        Ok(UserId(id))
    }

    /// Id, role and password hash of the account with this e-mail, if any.
    pub async fn find_login(
        &self,
        db: &PgPool,
        email: &Email,
    ) -> Result<Option<(UserId, Role, String)>, ApiError> {
        let row: Option<(uuid::Uuid, String, String)> =
            sqlx::query_as("SELECT id, role, password_hash FROM users WHERE email_hash = $1")
                .bind(self.hasher.email(email))
                .fetch_optional(db)
                .await?;
        row.map(|(id, role, hash)| Ok((UserId(id), parse_role(&role)?, hash)))
            .transpose()
    }

    /// Current role of an account (refresh re-reads it, so a role change applies).
    pub async fn role(&self, db: &PgPool, id: UserId) -> Result<Option<Role>, ApiError> {
        let role: Option<String> = sqlx::query_scalar("SELECT role FROM users WHERE id = $1")
            .bind(id.0)
            .fetch_optional(db)
            .await?;
        role.map(|r| parse_role(&r)).transpose()
    }

    pub async fn profile(&self, db: &PgPool, id: UserId) -> Result<Option<Profile>, ApiError> {
        type Row = (
            Vec<u8>,
            Vec<u8>,
            Vec<u8>,
            Vec<u8>,
            String,
            chrono::DateTime<chrono::Utc>,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT email_enc, name_enc, address_enc, phone_enc, role, created_at \
             FROM users WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(db)
        .await?;
        let Some((email, name, address, phone, role, created_at)) = row else {
            return Ok(None);
        };
        let open = |v: &[u8], col: &str| self.cipher.open(v, &aad(id.0, col));
        Ok(Some(Profile {
            id: id.0,
            email: open(&email, "email")?,
            name: open(&name, "name")?,
            address: open(&address, "address")?,
            phone: open(&phone, "phone")?,
            role: parse_role(&role)?,
            created_at,
        }))
    }
}

fn parse_role(s: &str) -> Result<Role, ApiError> {
    Role::parse(s).ok_or_else(|| ApiError::Internal(anyhow::anyhow!("unknown role {s:?} in users")))
}
