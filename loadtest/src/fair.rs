//! What `loadtest drop` adds for fairness (docs/fairness.md): the server's fairness report
//! copied into the summary, the waits since the sale start (to compare with `vitaqueue
//! simulate`), and the ETA error: what the first position after the start predicted against
//! when the buyer was actually admitted.

use crate::buyer::BuyerResult;
use crate::stats::percentile;
use serde::Serialize;
use serde_json::Value;
use std::time::Instant;

#[derive(Debug, Clone, Serialize)]
pub struct Fairness {
    /// `report` of `GET /v1/drops/{id}/fairness` at the end of the run (null if unread).
    pub report: Value,
    /// Sale start → admission (s), over admitted buyers.
    pub wait_p50_s: f64,
    pub wait_p90_s: f64,
    pub wait_p99_s: f64,
    /// Sale start → the first place outside the pre-queue (ms), over the buyers who joined
    /// before the start: the start's own burst (its pushes carry no tick time, so
    /// `position_push_p99_ms` does not see them). 0 when nobody waited in a pre-queue.
    pub first_place_p50_ms: f64,
    pub first_place_p99_ms: f64,
    /// Share of scored buyers admitted inside the [`eta_s`, `eta_hi_s`] range their first
    /// position after the start showed (the range's honesty; the target is ≥ 0.8).
    pub eta_coverage: f64,
    pub eta: EtaError,
}

/// |actual − predicted| / max(actual, 1 s), per admitted buyer; the 1 s floor keeps the
/// first buyers (admitted within a tick or two) from dividing by almost nothing.
#[derive(Debug, Clone, Serialize)]
pub struct EtaError {
    pub samples: usize,
    pub median: f64,
    pub p95: f64,
    /// The same for the pessimistic end of the range: share of buyers admitted later
    /// than `eta_hi_s` said.
    pub later_than_hi: f64,
    /// Share admitted before `eta_s` (the optimistic end) said.
    pub earlier_than_lo: f64,
    /// Median of `eta_hi_s − eta_s` (s): what the range costs in precision.
    pub width_p50_s: f64,
}

/// Reads the report and works out waits and ETA errors from the buyers' records.
pub async fn collect(
    http: &reqwest::Client,
    api: &str,
    drop: i64,
    results: &[BuyerResult],
    sale_start: Instant,
) -> Fairness {
    let report = match http
        .get(format!("{api}/v1/drops/{drop}/fairness?limit=1"))
        .send()
        .await
    {
        Ok(r) => r.json::<Value>().await.map(|v| v["report"].clone()),
        Err(e) => Err(e),
    }
    .unwrap_or(Value::Null);
    let eta = eta_error(results);
    let mut waits: Vec<f64> = results
        .iter()
        .filter_map(|r| {
            Some(
                r.admitted_at?
                    .saturating_duration_since(sale_start)
                    .as_secs_f64(),
            )
        })
        .collect();
    let mut first: Vec<f64> = results
        .iter()
        .filter(|r| r.joined_at.is_some_and(|j| j < sale_start))
        .filter_map(|r| Some(r.eta_at_join?.2.saturating_duration_since(sale_start)))
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    Fairness {
        report,
        first_place_p50_ms: percentile(&mut first, 0.5),
        first_place_p99_ms: percentile(&mut first, 0.99),
        wait_p50_s: percentile(&mut waits, 0.5),
        wait_p90_s: percentile(&mut waits, 0.9),
        wait_p99_s: percentile(&mut waits, 0.99),
        eta_coverage: eta.coverage(),
        eta,
    }
}

fn eta_error(results: &[BuyerResult]) -> EtaError {
    let mut errs = Vec::new();
    let mut widths = Vec::new();
    let (mut late, mut early) = (0usize, 0usize);
    for r in results {
        let (Some((eta, eta_hi, at)), Some(admitted)) = (r.eta_at_join, r.admitted_at) else {
            continue;
        };
        let actual = admitted.saturating_duration_since(at).as_secs_f64();
        errs.push((actual - eta).abs() / actual.max(1.0));
        widths.push(eta_hi - eta);
        late += usize::from(actual > eta_hi);
        early += usize::from(actual < eta);
    }
    let n = errs.len();
    let share = |k: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    EtaError {
        samples: n,
        median: percentile(&mut errs, 0.5),
        p95: percentile(&mut errs, 0.95),
        later_than_hi: share(late),
        earlier_than_lo: share(early),
        width_p50_s: percentile(&mut widths, 0.5),
    }
}

impl EtaError {
    /// Inside the range: neither earlier than `eta_s` nor later than `eta_hi_s` (0 when
    /// nobody was scored, so a run that measured nothing cannot pass).
    pub fn coverage(&self) -> f64 {
        if self.samples == 0 {
            return 0.0;
        }
        (1.0 - self.later_than_hi - self.earlier_than_lo).max(0.0)
    }
}

/// Buyers scored at least this many before `eta_coverage` can fail a run (a handful of
/// buyers says nothing about the range).
const MIN_SCORED: usize = 50;

/// A clean run admits in join order: any inversion (tau < 1) is a failure, and so is a
/// report that could not be read or an admission it could not check against its join; and
/// an ETA range that held for fewer than `min_coverage` of the buyers scored.
pub fn failures(f: &Fairness, min_coverage: f64) -> Vec<String> {
    let fifo = &f.report["fifo"];
    let mut out = match fifo["kendall_tau"].as_f64() {
        None => vec!["the fairness report could not be read".into()],
        Some(tau) if tau < 1.0 => vec![format!(
            "FIFO after the start broken: Kendall tau {tau}, {} inversions",
            fifo["inversions"]
        )],
        Some(_) => Vec::new(),
    };
    match fifo["admissions_without_join_record"].as_u64() {
        Some(0) | None => {}
        Some(n) => out.push(format!("{n} admissions had no join record to check")),
    }
    if f.eta.samples >= MIN_SCORED && f.eta_coverage < min_coverage {
        out.push(format!(
            "eta_coverage {:.3} under {min_coverage}: {:.1} % admitted before eta_s, {:.1} % after eta_hi_s",
            f.eta_coverage,
            f.eta.earlier_than_lo * 100.0,
            f.eta.later_than_hi * 100.0
        ));
    }
    out
}

/// The fairness lines under the summary table.
pub fn print(f: &Fairness) {
    let r = &f.report;
    println!(
        "fairness: tau {} ({} inversions) | peak {}/s at rate {} | {} tokens per unit | sell-out {} s",
        r["fifo"]["kendall_tau"],
        r["fifo"]["inversions"],
        r["max_admissions_in_any_second"],
        r["rate"],
        r["tokens_per_unit"],
        r["sell_out_s"]
    );
    println!(
        "waits since start: p50 {:.2} s, p90 {:.2} s, p99 {:.2} s | ETA error median {:.1} %, p95 {:.1} % ({} buyers), {:.1} % later than eta_hi_s",
        f.wait_p50_s,
        f.wait_p90_s,
        f.wait_p99_s,
        f.eta.median * 100.0,
        f.eta.p95 * 100.0,
        f.eta.samples,
        f.eta.later_than_hi * 100.0
    );
    println!(
        "first place after the start (pre-queue buyers): p50 {:.0} ms, p99 {:.0} ms",
        f.first_place_p50_ms, f.first_place_p99_ms
    );
    println!(
        "eta_coverage {:.3}: admitted inside [eta_s, eta_hi_s] ({:.1} % earlier, {:.1} % later; range width p50 {:.1} s)",
        f.eta_coverage,
        f.eta.earlier_than_lo * 100.0,
        f.eta.later_than_hi * 100.0,
        f.eta.width_p50_s
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buyer::Outcome;
    use std::time::Duration;

    /// A buyer shown [lo, hi] at `at` and admitted `after` seconds later.
    fn buyer(lo: f64, hi: f64, after: Option<f64>) -> BuyerResult {
        let at = Instant::now();
        BuyerResult {
            outcome: Outcome::Abandoned,
            token: None,
            join_ms: None,
            joined_at: Some(at),
            purchase_ms: None,
            push_ms: Vec::new(),
            index: None,
            seq: None,
            eta_at_join: Some((lo, hi, at)),
            admitted_at: after.map(|s| at + Duration::from_secs_f64(s)),
            bought_at: None,
            done_at: None,
            payment: None,
        }
    }

    #[test]
    fn coverage_counts_admissions_inside_the_range_shown() {
        let runs = [
            buyer(1.0, 2.0, Some(1.5)),
            buyer(1.0, 2.0, Some(1.0)),
            buyer(1.0, 2.0, Some(0.5)),
            buyer(1.0, 2.0, Some(2.5)),
            // Never admitted: not scored.
            buyer(1.0, 2.0, None),
        ];
        let e = eta_error(&runs);
        assert_eq!(e.samples, 4);
        assert_eq!((e.earlier_than_lo, e.later_than_hi), (0.25, 0.25));
        assert!((e.coverage() - 0.5).abs() < 1e-9, "{e:?}");
        assert_eq!(e.width_p50_s, 1.0);
        assert_eq!(
            eta_error(&[]).coverage(),
            0.0,
            "nothing scored, nothing covered"
        );
    }
}
