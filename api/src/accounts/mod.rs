//! Accounts: e-mail code, signup, login, refresh, logout and the own profile.
//!
//! Switched on by `auth.pii_key` + `auth.email_hash_key`. There is deliberately no
//! default key: without them these routes answer 503 and nothing personal is stored.

pub mod codes;
pub mod crypto;
pub mod gate;
mod handlers;

pub use handlers::Doc;
pub mod mail;
pub mod sessions;
pub mod users;

use crate::error::ApiError;
use crate::AppState;
use axum::Router;
use std::sync::Arc;
use vq_core::account::{Address, Email, Password, PersonName, Phone};
use vq_core::auth::Role;
use vq_core::domain::{Checker, UserId};
use vq_core::Settings;

pub use users::NewAccount;

/// Keys, mailer and lifetimes of the account module, built once at start.
pub struct Accounts {
    pub cipher: crypto::PiiCipher,
    pub hasher: crypto::Hasher,
    pub codes: codes::Codes,
    pub argon2: gate::Argon2Gate,
    pub mailer: mail::Mailer,
    pub access_ttl_s: i64,
    pub refresh_ttl_s: i64,
    pub session_max_s: i64,
    pub code_ttl_s: i64,
}

impl Accounts {
    /// `None` when no PII key is configured; an error when the set-up is half done.
    pub fn from_settings(s: &Settings) -> anyhow::Result<Option<Accounts>> {
        let a = &s.auth;
        // A key that is set but empty or short is an error, not "accounts off".
        vq_core::config::secrets::check_data_keys(a)?;
        let (pii, hash) = match (a.pii_key.clone(), a.email_hash_key.clone()) {
            (None, None) => return Ok(None),
            (Some(p), Some(h)) => (p, h),
            _ => anyhow::bail!("auth.pii_key and auth.email_hash_key must be set together"),
        };
        if a.access_ttl_s <= 0 || a.refresh_ttl_s <= 0 || a.code_ttl_s <= 0 || a.session_max_s <= 0
        {
            anyhow::bail!("auth.*_ttl_s must be positive");
        }
        Ok(Some(Accounts {
            cipher: crypto::PiiCipher::new(&pii)?,
            hasher: crypto::Hasher::new(&hash)?,
            codes: codes::Codes::new(a.code_ttl_s, a.code_max_tries),
            argon2: gate::Argon2Gate::per_core(),
            mailer: mail::Mailer::new(&s.smtp, a.code_ttl_s)?,
            access_ttl_s: a.access_ttl_s,
            refresh_ttl_s: a.refresh_ttl_s,
            session_max_s: a.session_max_s,
            code_ttl_s: a.code_ttl_s,
        }))
    }
}

pub fn router() -> Router<AppState> {
    handlers::router()
}

/// Raw profile fields as a client or the CLI sends them.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct ProfileInput {
    pub email: Option<String>,
    pub password: Option<String>,
    pub name: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
}

impl ProfileInput {
    /// Parses every field, collecting all field errors (422 `validation_failed`).
    pub fn parse(&self, role: Role, c: &mut Checker) -> Option<NewAccount> {
        let email = c.req("email", self.email.as_deref(), Email::parse);
        let password = c.req("password", self.password.as_deref(), Password::parse);
        let name = c.req("name", self.name.as_deref(), PersonName::parse);
        let address = c.req("address", self.address.as_deref(), Address::parse);
        let phone = c.req("phone", self.phone.as_deref(), Phone::parse);
        Some(NewAccount {
            email: email?,
            password: password?,
            name: name?,
            address: address?,
            phone: phone?,
            role,
        })
    }
}

/// What `vitaqueue create-manager` runs: the first manager needs no e-mail code, since
/// whoever can run the binary with the production config already holds every key.
pub async fn create_manager(settings: &Settings, input: &ProfileInput) -> anyhow::Result<UserId> {
    let acc = Accounts::from_settings(settings)?.ok_or_else(|| {
        anyhow::anyhow!("auth.pii_key and auth.email_hash_key (VQ_AUTH__PII_KEY, …) must be set")
    })?;
    let mut c = Checker::default();
    let parsed = input.parse(Role::Manager, &mut c);
    if let Err(fields) = c.finish() {
        let list: Vec<String> = fields.iter().map(|(k, v)| format!("{k} {v}")).collect();
        anyhow::bail!("invalid manager: {}", list.join("; "));
    }
    let account = parsed.expect("no field errors");
    let db = vq_core::store::postgres(settings).await?;
    let permit = acc
        .argon2
        .enter()
        .await
        .map_err(|e| anyhow::anyhow!(e.to_string()))?;
    let id = acc.create(&db, account, permit).await.map_err(|e| match e {
        ApiError::Conflict { message, .. } => anyhow::anyhow!(message),
        ApiError::Internal(e) => e,
        other => anyhow::anyhow!(other.to_string()),
    });
    db.close().await;
    id
}

/// Notification emails for the scheduler: looks the address up (decrypting it) and mails.
pub struct NotifyByMail {
    pub accounts: Arc<Accounts>,
    pub db: sqlx::PgPool,
}

impl vq_orders::notify::NotifyMailer for NotifyByMail {
    fn send<'a>(
        &'a self,
        user: uuid::Uuid,
        subject: &'a str,
        body: &'a str,
    ) -> futures::future::BoxFuture<'a, anyhow::Result<bool>> {
        Box::pin(async move {
            let profile = self
                .accounts
                .profile(&self.db, vq_core::domain::UserId(user))
                .await
                .map_err(|e| anyhow::anyhow!("profile lookup: {e}"))?;
            let Some(p) = profile else { return Ok(false) };
            let to =
                vq_core::account::Email::parse(&p.email).map_err(|e| anyhow::anyhow!("{e}"))?;
            let text = format!("{body}\r\n\r\nSee you in the waiting room,\r\nVitaQueue\r\n");
            self.accounts.mailer.send(&to, subject, text).await?;
            Ok(true)
        })
    }
}

/// The buyer's personal data for webhook endpoints with `include_pii` (fulfilment): name,
/// e-mail, phone and address, decrypted at delivery time, so the outbox never holds them
/// in the clear. Orders carry no shipping snapshot of their own: this is the account's
/// data as it is when the event is sent.
pub struct WebhookPii {
    pub accounts: Arc<Accounts>,
    pub db: sqlx::PgPool,
}

impl vq_webhooks::Pii for WebhookPii {
    fn customer(
        &self,
        user: uuid::Uuid,
    ) -> futures::future::BoxFuture<'_, anyhow::Result<Option<serde_json::Value>>> {
        Box::pin(async move {
            let profile = self
                .accounts
                .profile(&self.db, vq_core::domain::UserId(user))
                .await
                .map_err(|e| anyhow::anyhow!("profile lookup: {e}"))?;
            Ok(profile.map(|p| {
                serde_json::json!({
                    "name": p.name, "email": p.email, "phone": p.phone, "address": p.address,
                })
            }))
        })
    }
}
