//! CPU time per process group read from /proc, so a run can say where its 2 cores went
//! (server vs load generator vs redis-server vs postgres) without an external profiler.

use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

/// Linux reports utime/stime in clock ticks; USER_HZ is 100 on every mainstream build.
const TICKS_PER_S: f64 = 100.0;

/// CPU seconds (user + system) per process id with its group name at one moment.
pub struct Snapshot {
    at: Instant,
    cpu: BTreeMap<u32, (String, f64)>,
    /// Busy CPU seconds of the whole machine (all processes, all cores).
    machine: f64,
}

/// Cores used by each group between two snapshots (1.0 = one core busy all the time).
#[derive(Debug, Clone, Serialize, Default)]
pub struct CpuShare {
    pub cores: BTreeMap<String, f64>,
}

/// Processes named on the command line (`--cpu-pids vitaqueue=PID,redis-server=PID`): on a
/// shared machine other people's servers of the same name must not count as ours.
static PINNED: std::sync::OnceLock<BTreeMap<u32, String>> = std::sync::OnceLock::new();

/// Parses and installs `name=pid,name=pid`; the first call wins.
pub fn pin(spec: &str) -> anyhow::Result<()> {
    let mut map = BTreeMap::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, pid) = part
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--cpu-pids wants name=pid, got {part:?}"))?;
        map.insert(pid.trim().parse()?, name.trim().to_string());
    }
    let _ = PINNED.set(map);
    Ok(())
}

/// The group a process belongs to: this process is "loadtest" (it hosts an in-process server
/// when no --api is given), a pinned pid its given name; otherwise services by command name,
/// except names that were pinned (those other processes land in "other").
fn group(pid: u32, comm: &str) -> Option<String> {
    if pid == std::process::id() {
        return Some("loadtest".into());
    }
    let pinned = PINNED.get();
    if let Some(name) = pinned.and_then(|m| m.get(&pid)) {
        return Some(name.clone());
    }
    ["redis-server", "postgres", "vitaqueue"]
        .iter()
        .find(|g| comm.starts_with(*g))
        .filter(|g| !pinned.is_some_and(|m| m.values().any(|n| n == *g)))
        .map(|g| g.to_string())
}

/// Parses `/proc/PID/stat`: the command sits in parentheses (and may contain spaces), the
/// fields after it start with the state (field 3), so utime and stime are the 12th and 13th.
pub fn parse_stat(stat: &str) -> Option<(String, f64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    let utime: f64 = rest.get(11)?.parse().ok()?;
    let stime: f64 = rest.get(12)?.parse().ok()?;
    Some((comm, (utime + stime) / TICKS_PER_S))
}

/// Busy seconds from the first line of /proc/stat: everything but idle and iowait
/// (guest time is already inside user time).
pub fn machine_busy(stat: &str) -> Option<f64> {
    let f: Vec<f64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    let total: f64 = f.iter().take(8).sum();
    Some((total - f.get(3)? - f.get(4)?) / TICKS_PER_S)
}

/// Resident memory of a process (MB).
pub fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

impl Snapshot {
    pub fn take() -> Snapshot {
        let mut cpu = BTreeMap::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            if let Some((comm, secs)) = parse_stat(&stat) {
                if let Some(g) = group(pid, &comm) {
                    cpu.insert(pid, (g, secs));
                }
            }
        }
        let machine = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| machine_busy(&s))
            .unwrap_or(0.0);
        Snapshot {
            at: Instant::now(),
            cpu,
            machine,
        }
    }

    /// Cores per group from `self` to `later`; processes born in between count from zero.
    /// "other" is what the rest of the machine burned meanwhile (other users' builds and
    /// tests on a shared box), so a disturbed run can be recognised as such.
    pub fn share_until(&self, later: &Snapshot) -> CpuShare {
        let wall = (later.at - self.at).as_secs_f64().max(1e-9);
        let mut cores = BTreeMap::new();
        for (pid, (g, secs)) in &later.cpu {
            let before = self.cpu.get(pid).map_or(0.0, |b| b.1);
            *cores.entry(g.clone()).or_insert(0.0) += (secs - before).max(0.0) / wall;
        }
        let ours: f64 = cores.values().sum();
        let all = (later.machine - self.machine).max(0.0) / wall;
        cores.insert("other".into(), (all - ours).max(0.0));
        CpuShare { cores }
    }
}

/// CPU seconds per group over a whole crowd run (connect, wait, buy), and the server's
/// per buyer: the cost figure that does not depend on how busy the machine was.
#[derive(Debug, Clone, Serialize)]
pub struct RunCpu {
    pub wall_s: f64,
    pub cpu_s: BTreeMap<String, f64>,
    pub server_us_per_buyer: Option<f64>,
}

impl RunCpu {
    pub fn between(before: &Snapshot, after: &Snapshot, buyers: usize) -> RunCpu {
        let wall_s = (after.at - before.at).as_secs_f64();
        let share = before.share_until(after);
        let cpu_s: BTreeMap<String, f64> = share
            .cores
            .into_iter()
            .map(|(g, c)| (g, c * wall_s))
            .collect();
        let server_us_per_buyer = cpu_s
            .get("vitaqueue")
            .map(|s| s * 1e6 / buyers.max(1) as f64);
        RunCpu {
            wall_s,
            cpu_s,
            server_us_per_buyer,
        }
    }

    pub fn describe(&self) -> String {
        let groups: Vec<String> = self
            .cpu_s
            .iter()
            .map(|(g, s)| format!("{g} {s:.1} s"))
            .collect();
        format!(
            "cpu over {:.1} s: {} | server {} µs per buyer",
            self.wall_s,
            groups.join(", "),
            self.server_us_per_buyer
                .map_or("n/a".into(), |u| format!("{u:.0}"))
        )
    }
}

impl CpuShare {
    pub fn describe(&self) -> String {
        self.cores
            .iter()
            .map(|(g, c)| format!("{g} {c:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_spaces_in_the_name_parse() {
        let line = "42 (postgres: vq db) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0";
        let (comm, secs) = parse_stat(line).unwrap();
        assert_eq!(comm, "postgres: vq db");
        assert!((secs - 3.0).abs() < 1e-9);
        assert!(parse_stat("garbage").is_none());
        let busy = machine_busy("cpu  100 5 50 1000 20 1 2 3 0 0\ncpu0 1 2 3").unwrap();
        assert!((busy - 1.61).abs() < 1e-9, "{busy}");
    }

    #[test]
    fn pinned_pids_replace_name_matching_for_their_names() {
        assert!(pin("vitaqueue").is_err());
        pin("vitaqueue=4000000001").unwrap();
        assert_eq!(
            group(4_000_000_001, "anything").as_deref(),
            Some("vitaqueue")
        );
        assert_eq!(
            group(4_000_000_002, "vitaqueue"),
            None,
            "someone else's server"
        );
        assert_eq!(
            group(4_000_000_003, "postgres").as_deref(),
            Some("postgres")
        );
        assert_eq!(group(std::process::id(), "x").as_deref(), Some("loadtest"));
    }

    #[test]
    fn this_process_is_seen_and_burns_cpu() {
        let a = Snapshot::take();
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 300 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let share = a.share_until(&Snapshot::take());
        assert!(share.cores["loadtest"] > 0.3, "{share:?}");
    }
}
