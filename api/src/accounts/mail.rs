//! Outgoing mail over SMTP (lettre, async on tokio). Plain SMTP is only meant for a
//! relay on loopback; anything else should turn `smtp.starttls` on.

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;
use vq_core::account::{Email, EmailCode};
use vq_core::config::Smtp;

#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: lettre::message::Mailbox,
    code_ttl_min: i64,
}

impl Mailer {
    pub fn new(cfg: &Smtp, code_ttl_s: i64) -> anyhow::Result<Self> {
        let mut b = if cfg.starttls {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.host)?
        } else {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host)
        };
        b = b
            .port(cfg.port)
            .timeout(Some(Duration::from_millis(cfg.timeout_ms)));
        if let (Some(user), Some(pw)) = (&cfg.username, &cfg.password) {
            b = b.credentials(Credentials::new(user.clone(), pw.expose().to_string()));
        }
        Ok(Mailer {
            transport: b.build(),
            from: cfg
                .from
                .parse()
                .map_err(|e| anyhow::anyhow!("smtp.from is not a mailbox: {e}"))?,
            code_ttl_min: (code_ttl_s + 59) / 60,
        })
    }

    pub async fn send(&self, to: &Email, subject: &str, body: String) -> anyhow::Result<()> {
        let msg = Message::builder()
            .from(self.from.clone())
            .to(to
                .as_str()
                .parse()
                .map_err(|_| anyhow::anyhow!("recipient is not a mailbox"))?)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)?;
        self.transport.send(msg).await.map_err(|e| redact(&e))?;
        Ok(())
    }

    pub async fn send_code(&self, to: &Email, code: &EmailCode) -> anyhow::Result<()> {
        let body = format!(
            "Welcome to VitaQueue!\r\n\r\nYour verification code: {}\r\n\r\n\
             It is valid for {} minutes and can be used once.\r\n\
             If you did not ask for it, ignore this mail.\r\n",
            code.as_str(),
            self.code_ttl_min
        );
        self.send(to, "Your VitaQueue verification code", body)
            .await
    }
}

/// The SMTP error without its server text, which often quotes the recipient
/// ("550 <ann@example.com>: mailbox unavailable"): addresses must not reach the logs.
pub fn redact(e: &lettre::transport::smtp::Error) -> anyhow::Error {
    let kind = if e.is_permanent() {
        "permanent"
    } else if e.is_transient() {
        "transient"
    } else if e.is_timeout() {
        "timeout"
    } else if e.is_tls() {
        "tls"
    } else {
        "connection"
    };
    match e.status() {
        Some(code) => anyhow::anyhow!("smtp {kind} error, reply {code}"),
        None => anyhow::anyhow!("smtp {kind} error"),
    }
}
