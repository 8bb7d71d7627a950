//! `vitaqueue simulate`: the what-if simulator (vq_core::simulate) on the command line, as
//! a table or as JSON (the same fields as `POST /v1/admin/simulate`). Pure: no stores.

use vq_core::simulate::{self, Params, Prediction};

/// Checks the parameters, runs the model and prints the prediction; false on bad input
/// (every problem printed to stderr).
pub fn run(p: &Params, json: bool) -> bool {
    if let Err(errs) = p.check() {
        for e in errs {
            eprintln!("--{}: {}", e.field.replace('_', "-"), e.message);
        }
        return false;
    }
    let out = simulate::run(p);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&out).expect("a prediction serializes")
        );
    } else {
        print!("{}", table(p, &out));
    }
    true
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or_else(|| "never".into(), |x| format!("{x:.3}{unit}"))
}

/// The prediction as a two-column table.
pub fn table(p: &Params, o: &Prediction) -> String {
    let rows = [
        (
            "inputs",
            format!(
                "{} buyers, stock {}, rate {}/s, token TTL {} s, abandon {}, fail {}, overbook {}",
                p.buyers, p.stock, p.rate, p.token_ttl_s, p.abandon, p.fail, p.overbook
            ),
        ),
        ("sell-out", opt(o.sell_out_s, " s")),
        ("wait p50", format!("{:.3} s", o.wait_p50_s)),
        ("wait p90", format!("{:.3} s", o.wait_p90_s)),
        ("wait p99", format!("{:.3} s", o.wait_p99_s)),
        ("tokens issued", o.tokens_issued.to_string()),
        ("units sold", o.units_sold.to_string()),
        ("tokens per unit", opt(o.tokens_per_unit, "")),
        ("buyers served", format!("{:.1} %", o.served_share * 100.0)),
    ];
    rows.iter().map(|(k, v)| format!("{k:<16} {v}\n")).collect()
}
