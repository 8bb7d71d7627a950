//! The table `loadtest join-ceiling` prints, and what fails the command.

use super::JoinCeilingReport;

pub fn print(r: &JoinCeilingReport) {
    println!(
        "machine: {} | {} joins per path | concurrency {} | HTTP from {}",
        r.machine, r.joins, r.concurrency, r.sources
    );
    println!(
        "{:<16} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}",
        "path", "joins/s", "mean_ms", "p50_ms", "p99_ms", "max_ms", "queued", "errors"
    );
    for row in std::iter::once(&r.raw).chain(&r.http) {
        let m = &row.measured;
        println!(
            "{:<16} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8} {:>6}",
            row.path,
            m.purchases_per_s,
            m.mean_ms,
            m.p50_ms,
            m.p99_ms,
            m.max_ms,
            row.queued_after,
            m.errors
        );
        let e = m.first_error.as_deref().unwrap_or("-");
        println!(
            "  {}: cpu cores [{}]; first error: {e}",
            row.path,
            row.cpu.describe()
        );
    }
    if let Some(ratio) = r.ratio {
        println!("  vitaqueue_http / raw_evalsha = {:.1}%", ratio * 100.0);
    }
}

/// Errors, or a join that placed nobody, fail the command; the rates are reported only.
pub fn failures(r: &JoinCeilingReport) -> Vec<String> {
    let mut f = Vec::new();
    for row in std::iter::once(&r.raw).chain(&r.http) {
        if row.measured.errors > 0 {
            f.push(format!(
                "{}: {} joins failed",
                row.path, row.measured.errors
            ));
        }
        if row.queued_after != row.measured.bought as u64 {
            f.push(format!(
                "{}: {} queued for {} joins",
                row.path, row.queued_after, row.measured.bought
            ));
        }
    }
    f
}
