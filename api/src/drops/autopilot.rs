//! A drop's autopilot as the manager API speaks it: the `autopilot` object of the create and
//! edit bodies, its checks, the live rate and last reason of the admin view, and the
//! manager's hand on the rate (a manual `admission_rate` turns the autopilot off and is
//! recorded like any other change). The autopilot itself runs in the admission role
//! (`vq_core::autopilot`); docs/autopilot.md.

use super::store::DropRow;
use crate::error::{ApiError, NEEDS_REBUILD};
use crate::AppState;
use serde::{Deserialize, Deserializer, Serialize};
use vq_core::autopilot::{Reason, Setting, DEFAULT_LAG_S, DEFAULT_P99_MS};
use vq_core::domain::{AdmissionRate, Checker, Invalid};
use vq_core::scripts::{RateBy, RateOutcome};

/// The `autopilot` object: the band the rate moves in and the targets it watches.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutopilotBody {
    min_rate: Option<i64>,
    max_rate: Option<i64>,
    /// Target purchase p99 in ms (1 to 60000, default 200).
    purchase_p99_ms: Option<i64>,
    /// Target order lag in s: the oldest purchase not yet written to PostgreSQL (1 to
    /// 3600, default 5).
    order_lag_s: Option<i64>,
}

/// For an edit body: absent → `None` (unchanged); `null` → `Some(None)` (off).
pub fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<AutopilotBody>>, D::Error> {
    Option::<AutopilotBody>::deserialize(d).map(Some)
}

/// Parses the object, recording each broken rule as `autopilot.<field>` in `c`.
pub fn parse(c: &mut Checker, b: AutopilotBody) -> Option<Setting> {
    let rate = |v: i64| {
        u32::try_from(v)
            .map_err(|_| Invalid("must not be negative or that large".into()))
            .and_then(AdmissionRate::new)
            .map(AdmissionRate::get)
    };
    let within = |lo: u32, hi: u32| {
        move |v: i64| match u32::try_from(v) {
            Ok(v) if (lo..=hi).contains(&v) => Ok(v),
            _ => Err(Invalid(format!("must be from {lo} to {hi}"))),
        }
    };
    let before = c.0.len();
    let min = c.req("autopilot.min_rate", b.min_rate, rate);
    let max = c.req("autopilot.max_rate", b.max_rate, rate);
    let p99 = c.opt(
        "autopilot.purchase_p99_ms",
        b.purchase_p99_ms,
        within(1, 60_000),
    );
    let lag = c.opt("autopilot.order_lag_s", b.order_lag_s, within(1, 3600));
    if let (Some(lo), Some(hi)) = (min, max) {
        if hi < lo {
            c.0.insert(
                "autopilot.max_rate".into(),
                "must not be below min_rate".into(),
            );
        }
    }
    if c.0.len() > before {
        return None;
    }
    Some(Setting {
        min_rate: min?,
        max_rate: max?,
        purchase_p99_ms: p99.unwrap_or(DEFAULT_P99_MS),
        order_lag_s: lag.unwrap_or(DEFAULT_LAG_S),
    })
}

/// The live rate as the admin view shows it.
#[derive(Serialize, utoipa::ToSchema, Default)]
pub struct RateNow {
    /// The rate admission applies now (the autopilot's, or the manager's).
    pub rate_now: Option<u32>,
    /// Why it last changed (`manual` for a manager's change).
    pub rate_reason: Option<Reason>,
    /// When it last changed (RFC 3339).
    pub rate_changed_at: Option<String>,
}

pub async fn rate_now(st: &AppState, d: &DropRow) -> Result<RateNow, ApiError> {
    let mut conn = st.redis.clone();
    let (rate, reason, at): (Option<u32>, Option<String>, Option<i64>) = redis::cmd("HMGET")
        .arg(st.keys.drop(d.drop_id()).cfg())
        .arg(&["rate", "rate_reason", "rate_at"])
        .query_async(&mut conn)
        .await?;
    Ok(RateNow {
        rate_now: rate,
        rate_reason: reason.and_then(|r| serde_json::from_value(r.into()).ok()),
        rate_changed_at: at.map(vq_core::clock::rfc3339),
    })
}

/// A manager's rate: written to the live cfg and recorded (`manual`), whether or not it
/// differs; inside the band when the autopilot stays on.
pub async fn set_by_hand(st: &AppState, d: &DropRow) -> Result<(), ApiError> {
    let rate = u32::try_from(d.admission_rate).unwrap_or(1);
    let rate = d.autopilot().map_or(rate, |a| a.start_rate(rate));
    let k = st.keys.drop(d.drop_id());
    let mut conn = st.redis.clone();
    let by = RateBy::Manager;
    match st
        .scripts
        .set_rate(&mut conn, &k, &st.clock, rate, Reason::Manual.as_str(), by)
        .await?
    {
        RateOutcome::NoDrop | RateOutcome::NeedsRebuild => Err(ApiError::Unavailable {
            code: "needs_rebuild",
            message: NEEDS_REBUILD,
        }),
        _ => Ok(()),
    }
}
