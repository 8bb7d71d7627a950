//! The fairness report of `GET /v1/drops/{id}/fairness` (`report`): what happened in a drop,
//! from counters the Lua scripts keep in the drop's Redis slot (no list in the api process).
//!
//! Cost is bounded: counters are O(1); FIFO reads the admission order lua/admit.lua lists
//! (at most [`MAX_SCORES`], the first admissions), looks each admission's join up in
//! lua/join.lua's record, and counts inversions
//! by merge sort, O(n log n) off the async threads; units sold sum the purchase receipts
//! (one per purchase). The result is cached in the drop's `fairrep` key for
//! [`CACHE_MS`], and for good once the drop is final, so a public endpoint cannot be made
//! to recompute it in a loop.

use crate::error::ApiError;
use crate::AppState;
use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use vq_core::domain::DropId;
use vq_core::order_stats::{inversions, kendall_tau};

/// Admissions whose queue scores admit.lua keeps (the same cap as in the script).
pub const MAX_SCORES: u64 = 1_000_000;
/// How long a report of a running drop is reused.
pub const CACHE_MS: u64 = 2_000;
/// Scores fetched per LRANGE.
const CHUNK: isize = 50_000;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Report {
    /// The drop ended (closed, or sold out with no live token and no open reservation):
    /// the figures no longer change.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// Pre-queue joiners plus joins after the start (a buyer who queues again counts again).
    pub joiners: u64,
    pub prequeue_joiners: u64,
    pub draw: DrawFacts,
    pub fifo: Fifo,
    pub max_admissions_in_any_second: u64,
    /// The configured admission rate (tokens/s).
    pub rate: u64,
    pub tokens_issued: u64,
    pub units_sold: u64,
    /// Tokens issued per unit sold; `null` until a unit sells.
    pub tokens_per_unit: Option<f64>,
    pub outcomes: Outcomes,
    /// Start → stock first reached 0 (s); `null` while units are left.
    pub sell_out_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DrawFacts {
    pub commitment: String,
    /// Hex seed; `null` until the start.
    pub seed: Option<String>,
    pub joiners: u64,
}

/// Join order against admission order, over every admission: the expected order is the
/// published draw for pre-queue joiners (scores in [0, 1)), then join order (1 + join
/// number), as join.lua recorded each join; the admission order is admit.lua's own list.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Fifo {
    pub kendall_tau: f64,
    pub inversions: u64,
    pub admissions_checked: u64,
    /// Admissions whose join had no record (join records are capped; a rebuild has none).
    pub admissions_without_join_record: u64,
    /// More than [`MAX_SCORES`] admissions: only the first ones were checked.
    pub capped: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Outcomes {
    /// Successful purchases.
    pub bought: u64,
    /// Buyers still queued when nothing could come back (each told `sold_out`).
    pub sold_out_told: u64,
    pub sold_out_at: Option<DateTime<Utc>>,
    /// Purchase tokens that expired unused.
    pub expired: u64,
    /// Buyers who left the queue: gone past the leave grace, or left on their own.
    pub left: u64,
}

/// The report, from the cache when fresh.
pub async fn report(
    st: &AppState,
    id: DropId,
    commitment: &str,
    seed: Option<String>,
) -> Result<Report, ApiError> {
    let k = st.keys.drop(id);
    let mut conn = st.redis.clone();
    let cached: Option<String> = conn.get(k.fairrep()).await?;
    if let Some(r) = cached.and_then(|c| serde_json::from_str::<Report>(&c).ok()) {
        if r.draw.seed.is_some() == seed.is_some() {
            return Ok(r);
        }
    }
    let r = compute(st, id, commitment, seed).await?;
    let json = serde_json::to_string(&r).map_err(anyhow::Error::from)?;
    let _: () = if r.is_final {
        conn.set(k.fairrep(), json).await?
    } else {
        conn.pset_ex(k.fairrep(), json, CACHE_MS).await?
    };
    Ok(r)
}

/// The counters behind a report, read in one round trip.
struct Raw {
    state: Option<String>,
    starts: Option<i64>,
    rate: Option<u64>,
    sold_at: Option<i64>,
    told: Option<u64>,
    peak: Option<u64>,
    prequeue: u64,
    post_joins: Option<u64>,
    admitted: Option<u64>,
    expired: Option<u64>,
    left: u64,
    nothing_back: bool,
    receipts: Vec<String>,
}

type Cfg = (
    Option<String>,
    Option<i64>,
    Option<u64>,
    Option<i64>,
    Option<u64>,
    Option<u64>,
);
type Tail = (Option<i64>, u64, u64, Vec<String>);
type Row = (
    Cfg,
    u64,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Option<u64>,
);

async fn read(st: &AppState, id: DropId) -> Result<Raw, ApiError> {
    let k = st.keys.drop(id);
    let fields = [
        "state",
        "starts_at",
        "rate",
        "sold_out_at",
        "sold_out_told",
        "adm_peak_1s",
    ];
    let mut conn = st.redis.clone();
    let row: Row = redis::pipe()
        .hget(k.cfg(), &fields)
        .zcard(k.draw())
        .get(k.seq())
        .get(k.admitted())
        .get(k.expired())
        .get(k.left())
        .get(k.quit())
        .query_async(&mut conn)
        .await?;
    let (stock, live, open, receipts): Tail = redis::pipe()
        .get(k.stock())
        .zcard(k.expiry())
        .hlen(k.unpaid())
        .hvals(k.receipts())
        .query_async(&mut conn)
        .await?;
    let (
        (state, starts, rate, sold_at, told, peak),
        prequeue,
        post_joins,
        admitted,
        expired,
        left,
        quit,
    ) = row;
    Ok(Raw {
        state,
        starts,
        rate,
        sold_at,
        told,
        peak,
        prequeue,
        post_joins,
        admitted,
        expired,
        left: left.unwrap_or(0) + quit.unwrap_or(0),
        nothing_back: stock.unwrap_or(0) <= 0 && live == 0 && open == 0,
        receipts,
    })
}

async fn compute(
    st: &AppState,
    id: DropId,
    commitment: &str,
    seed: Option<String>,
) -> Result<Report, ApiError> {
    let r = read(st, id).await?;
    let fifo = fifo(st, id).await?;
    let units_sold: u64 = r
        .receipts
        .iter()
        .filter_map(|x| x.split('|').next()?.parse::<u64>().ok())
        .sum();
    let tokens = r.admitted.unwrap_or(0);
    Ok(Report {
        is_final: r.state.as_deref() == Some("closed") || r.nothing_back,
        joiners: r.prequeue + r.post_joins.unwrap_or(0),
        prequeue_joiners: r.prequeue,
        draw: DrawFacts {
            commitment: commitment.to_string(),
            seed,
            joiners: r.prequeue,
        },
        fifo,
        max_admissions_in_any_second: r.peak.unwrap_or(0),
        rate: r.rate.unwrap_or(0),
        tokens_issued: tokens,
        units_sold,
        tokens_per_unit: (units_sold > 0)
            .then(|| (tokens as f64 / units_sold as f64 * 1000.0).round() / 1000.0),
        outcomes: Outcomes {
            bought: r.receipts.len() as u64,
            sold_out_told: r.told.unwrap_or(0),
            sold_out_at: r.sold_at.and_then(DateTime::<Utc>::from_timestamp_millis),
            expired: r.expired.unwrap_or(0),
            left: r.left,
        },
        sell_out_s: r
            .sold_at
            .zip(r.starts)
            .map(|(s, t)| (s - t).max(0) as f64 / 1000.0),
    })
}

/// Kendall tau between join order and admission order, from two records written apart:
/// admit.lua lists each admission as "user#n" (which of the buyer's joins the place came
/// from), and join.lua alone recorded the queue score that join got (the pre-queue draw's
/// scores are in [0, 1), later joins 1 + join number, so one order). An admission whose
/// join has no record (past the record's cap, or after a rebuild) is counted, not checked.
async fn fifo(st: &AppState, id: DropId) -> Result<Fifo, ApiError> {
    let k = st.keys.drop(id);
    let mut conn = st.redis.clone();
    let total: u64 = conn.llen(k.admorder()).await?;
    let mut scores = Vec::with_capacity(total.min(MAX_SCORES) as usize);
    let (mut from, mut unmatched): (isize, u64) = (0, 0);
    while (from as u64) < total.min(MAX_SCORES) {
        let part: Vec<String> = conn.lrange(k.admorder(), from, from + CHUNK - 1).await?;
        if part.is_empty() {
            break;
        }
        from += part.len() as isize;
        let joined: Vec<Option<f64>> = redis::cmd("HMGET")
            .arg(k.joins())
            .arg(&part)
            .query_async(&mut conn)
            .await?;
        unmatched += joined.iter().filter(|s| s.is_none()).count() as u64;
        scores.extend(joined.into_iter().flatten());
    }
    let admitted: u64 = conn.get::<_, Option<u64>>(k.admitted()).await?.unwrap_or(0);
    let n = scores.len() as u64;
    let inv = tokio::task::spawn_blocking(move || inversions(&scores))
        .await
        .map_err(anyhow::Error::from)?;
    Ok(Fifo {
        kendall_tau: kendall_tau(n, inv),
        inversions: inv,
        admissions_checked: n,
        admissions_without_join_record: unmatched,
        capped: admitted > MAX_SCORES,
    })
}
