//! The HTML report: the drop's numbers sampled over the run, drawn as inline SVG (one
//! self-contained file, no scripts or external assets), plus the summary table.

use crate::buyer::BuyerResult;
use crate::summary::Summary;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vq_core::domain::DropId;

#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub t_s: f64,
    pub queue_len: f64,
    pub admitted_total: f64,
    pub remaining: f64,
}

pub struct Sampler {
    task: tokio::task::JoinHandle<()>,
    data: Arc<Mutex<Vec<Sample>>>,
}

/// Reads the drop's live numbers from the admin API every 250 ms until stopped.
pub fn sample(
    http: reqwest::Client,
    api: String,
    drop: DropId,
    manager: String,
    start: Instant,
) -> Sampler {
    let data: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let sink = data.clone();
    let task = tokio::spawn(async move {
        let url = format!("{api}/v1/admin/drops/{}", drop.get());
        loop {
            if let Ok(res) = http.get(&url).bearer_auth(&manager).send().await {
                if let Ok(v) = res.json::<serde_json::Value>().await {
                    let n = |k: &str| v["stats"][k].as_f64().unwrap_or(0.0);
                    let s = Sample {
                        t_s: start.elapsed().as_secs_f64(),
                        queue_len: n("queue_len"),
                        admitted_total: n("admitted_total"),
                        remaining: n("remaining"),
                    };
                    sink.lock().expect("sampler lock").push(s);
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    Sampler { task, data }
}

pub async fn stop(s: Sampler) -> Vec<Sample> {
    s.task.abort();
    let _ = s.task.await;
    let data = s.data.lock().expect("sampler lock").clone();
    data
}

/// A line chart of (x, y) points.
fn line(title: &str, unit: &str, pts: &[(f64, f64)]) -> String {
    let (w, h, pad) = (640.0, 220.0, 40.0);
    let xmax = pts.iter().map(|p| p.0).fold(1e-9, f64::max);
    let ymax = pts.iter().map(|p| p.1).fold(1e-9, f64::max);
    let mut path = String::new();
    for (x, y) in pts {
        let px = pad + x / xmax * (w - 2.0 * pad);
        let py = h - pad - y / ymax * (h - 2.0 * pad);
        let _ = write!(path, "{px:.1},{py:.1} ");
    }
    format!(
        r##"<figure><figcaption>{title}</figcaption><svg viewBox="0 0 {w} {h}" role="img" aria-label="{title}">
<line x1="{pad}" y1="{b}" x2="{r}" y2="{b}" stroke="#888"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{b}" stroke="#888"/>
<text x="{pad}" y="{t}" font-size="11">{ymax:.0} {unit}</text><text x="{r}" y="{lb}" font-size="11" text-anchor="end">{xmax:.1} s</text>
<polyline fill="none" stroke="#0a6" stroke-width="2" points="{path}"/></svg></figure>"##,
        b = h - pad,
        r = w - pad,
        t = pad - 6.0,
        lb = h - pad + 16.0,
    )
}

/// A histogram of `values` in 20 bins.
fn histogram(title: &str, values: &[f64]) -> String {
    let max = values.iter().copied().fold(1e-9, f64::max);
    let mut bins = [0usize; 20];
    for v in values {
        bins[((v / max * 20.0) as usize).min(19)] += 1;
    }
    let top = *bins.iter().max().unwrap_or(&1).max(&1) as f64;
    let mut bars = String::new();
    for (i, n) in bins.iter().enumerate() {
        let hgt = *n as f64 / top * 150.0;
        let _ = write!(
            bars,
            r##"<rect x="{x}" y="{y:.1}" width="26" height="{hgt:.1}" fill="#36c"><title>{lo:.1}–{hi:.1} ms: {n}</title></rect>"##,
            x = 40 + i * 30,
            y = 190.0 - hgt,
            lo = max * i as f64 / 20.0,
            hi = max * (i + 1) as f64 / 20.0,
        );
    }
    format!(
        r##"<figure><figcaption>{title}</figcaption><svg viewBox="0 0 680 220" role="img" aria-label="{title}">{bars}
<text x="40" y="210" font-size="11">0 ms</text><text x="640" y="210" font-size="11" text-anchor="end">{max:.1} ms</text></svg></figure>"##
    )
}

/// Per-second rate of a cumulative series.
fn rate(pts: &[(f64, f64)]) -> Vec<(f64, f64)> {
    pts.windows(2)
        .filter(|w| w[1].0 > w[0].0)
        .map(|w| (w[1].0, (w[1].1 - w[0].1).max(0.0) / (w[1].0 - w[0].0)))
        .collect()
}

pub fn html(s: &Summary, samples: &[Sample], results: &[BuyerResult], start: Instant) -> String {
    let series = |f: fn(&Sample) -> f64| samples.iter().map(|x| (x.t_s, f(x))).collect::<Vec<_>>();
    let mut bought: Vec<f64> = results
        .iter()
        .filter_map(|r| r.bought_at)
        .map(|t| (t - start).as_secs_f64())
        .collect();
    bought.sort_by(f64::total_cmp);
    let cumulative: Vec<(f64, f64)> = bought
        .iter()
        .enumerate()
        .map(|(i, t)| (*t, (i + 1) as f64))
        .collect();
    let binned: Vec<(f64, f64)> = samples
        .iter()
        .map(|x| {
            (
                x.t_s,
                cumulative.iter().take_while(|c| c.0 <= x.t_s).count() as f64,
            )
        })
        .collect();
    let latencies: Vec<f64> = results.iter().filter_map(|r| r.purchase_ms).collect();
    let table = serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .map(|o| {
            o.iter()
                .map(|(k, v)| format!("<tr><th>{k}</th><td>{v}</td></tr>"))
                .collect::<String>()
        })
        .unwrap_or_default();
    let verdict = if s.failures.is_empty() {
        "all invariants hold".to_string()
    } else {
        s.failures.join("; ")
    };
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>VitaQueue load test — drop {id}</title>
<style>body{{font:14px system-ui,sans-serif;max-width:760px;margin:2em auto;color:#222}}figure{{margin:1.5em 0}}
figcaption{{font-weight:600}}svg{{width:100%;height:auto;background:#fafafa}}th{{text-align:left;padding-right:1em}}</style></head>
<body><h1>Drop {id}: {buyers} buyers, stock {stock}</h1><p><strong>{verdict}</strong></p>{q}{a}{p}{r}{h}<h2>Summary</h2><table>{table}</table></body></html>"#,
        id = s.drop_id,
        buyers = s.buyers,
        stock = s.stock,
        q = line("Queue length", "buyers", &series(|x| x.queue_len)),
        a = line(
            "Admissions per second",
            "/s",
            &rate(&series(|x| x.admitted_total))
        ),
        p = line("Purchases per second", "/s", &rate(&binned)),
        r = line("Remaining stock", "units", &series(|x| x.remaining)),
        h = histogram("Purchase latency", &latencies),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_charts_come_from_the_samples() {
        let r = rate(&[(0.0, 0.0), (0.5, 10.0), (1.0, 30.0), (1.0, 40.0)]);
        assert_eq!(r, vec![(0.5, 20.0), (1.0, 40.0)]);
        let svg = line("Queue", "buyers", &[(0.0, 5.0), (2.0, 0.0)]);
        assert!(svg.contains("<polyline") && svg.contains("5 buyers") && svg.contains("2.0 s"));
        let h = histogram("Latency", &[1.0, 2.0, 2.0, 10.0]);
        assert_eq!(h.matches("<rect").count(), 20);
        assert!(h.contains("10.0 ms"));
    }
}
