//! What `loadtest drop` is asked to do: its own module, so that the run, its summary and
//! its report all read the arguments without importing each other in a circle.

#[derive(Debug, Clone, clap::Args)]
pub struct DropArgs {
    /// Base URL of an api node.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub api: String,
    #[arg(long, default_value_t = 1000)]
    pub buyers: usize,
    #[arg(long, default_value_t = 100)]
    pub stock: i64,
    /// Admission rate (tokens/s).
    #[arg(long, default_value_t = 500)]
    pub rate: i64,
    /// Purchase token lifetime (s).
    #[arg(long, default_value_t = 30)]
    pub token_ttl: i64,
    #[arg(long, default_value_t = 1000)]
    pub max_holders: i64,
    /// Share of admitted buyers that walk away without buying (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub abandon: f64,
    /// Loopback source addresses to spread connections over (127.0.0.1, .2, …).
    #[arg(long, default_value_t = 4)]
    pub sources: u8,
    /// Seconds over which buyers connect.
    #[arg(long, default_value_t = 1.0)]
    pub ramp_s: f64,
    /// Seconds from now until the sale starts; buyers connecting before wait in the
    /// pre-queue and are shuffled at the start. Default: the ramp plus 2 s.
    #[arg(long)]
    pub start_in: Option<f64>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_s: u64,
    /// Share of buyers whose payment is declined (they pay after buying; see --no-pay).
    #[arg(long, default_value_t = 0.0)]
    pub fail: f64,
    /// Buyers do not pay for their orders (pure purchase-path measurement).
    #[arg(long)]
    pub no_pay: bool,
    /// How an admitted buyer sends the purchase: `http` (POST .../purchase) or `socket`
    /// (`{"type": "purchase"}` on the room socket it already holds).
    #[arg(long, value_enum, default_value_t = BuyOver::Http)]
    pub buy_over: BuyOver,
    /// Write an HTML report with charts over time here.
    #[arg(long)]
    pub html: Option<std::path::PathBuf>,
    /// Server process id, to report its resident memory.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Write the summary as JSON here.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Processes to account CPU time to (`vitaqueue=PID,redis-server=PID`), so the run
    /// reports CPU per buyer for the server and where the machine's cores went.
    #[arg(long)]
    pub cpu_pids: Option<String>,
    /// Proof-of-work difficulty of the drop (leading zero bits; 0: off). Buyers solve it.
    #[arg(long, default_value_t = 0)]
    pub pow: u32,
    /// Live tokens per unreserved unit (the drop's `overbook`).
    #[arg(long, default_value_t = 1.5)]
    pub overbook: f64,
    /// The drop's `expected_abandon` (the ETA forecast's prior); unset: the server's default.
    #[arg(long)]
    pub expected_abandon: Option<f64>,
    /// The drop's autopilot band, `MIN,MAX` (tokens/s): the rate starts at `--rate` and
    /// follows the checkout's health inside the band (targets as shipped). Unset: off.
    #[arg(long, value_parser = band)]
    pub autopilot: Option<(i64, i64)>,
    /// Draw who abandons from each admission's `seq` under this seed, the way
    /// `vitaqueue simulate --seed` does (same seed, same abandoners); unset: random.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Fail the run when fewer than this share of the buyers scored (at least 50) were
    /// admitted inside the ETA range of their first position after the start (the target
    /// is 0.8; off by default: 1 run in 14 at abandon 0.3 missed it on a loaded machine,
    /// BENCHMARKS.md, section "ETA coverage"); 0: never.
    #[arg(long, default_value_t = 0.0)]
    pub min_eta_coverage: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BuyOver {
    Http,
    Socket,
}

fn band(s: &str) -> Result<(i64, i64), String> {
    let (lo, hi) = s.split_once(',').ok_or("expected MIN,MAX")?;
    let n = |v: &str| v.trim().parse::<i64>().map_err(|e| format!("{v:?}: {e}"));
    Ok((n(lo)?, n(hi)?))
}
