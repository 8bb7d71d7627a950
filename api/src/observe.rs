//! Prometheus metrics. One recorder per process: the api serves it on `/metrics`; the
//! standalone admission and worker roles expose it on `metrics.listen`. Metric names are
//! listed in grafana/dashboards/vitaqueue.json, and a test checks each one exists.

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        .expect("static buckets are valid")
}

/// Installs the process-wide recorder once and returns its handle (tests start many apps
/// in one process; they share it).
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            builder()
                .install_recorder()
                .expect("no other metrics recorder")
        })
        .clone()
}

/// For roles without an HTTP server: serves the metrics on `addr`.
pub fn listen(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    builder().with_http_listener(addr).install()?;
    Ok(())
}

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(render))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(render))]
pub struct Doc;

/// Prometheus metrics of this node (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
async fn render(State(st): State<AppState>) -> Response {
    metrics::gauge!("vq_ws_connections").set(st.hub.connections() as f64);
    st.redis.publish_durability();
    let h = handle();
    h.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        h.render(),
    )
        .into_response()
}

/// The method as a label from a fixed set: made-up methods must not grow `/metrics`.
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method as M;
    match *m {
        M::GET => "GET",
        M::HEAD => "HEAD",
        M::POST => "POST",
        M::PUT => "PUT",
        M::PATCH => "PATCH",
        M::DELETE => "DELETE",
        M::OPTIONS => "OPTIONS",
        M::CONNECT => "CONNECT",
        M::TRACE => "TRACE",
        _ => "other",
    }
}

/// Counts and times every HTTP request by route template (not raw path: ids would explode
/// the label set), or `unmatched`; method and status come from fixed sets too.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = method_label(req.method());
    let start = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!("vq_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("vq_http_request_duration_seconds", "route" => route)
        .record(start.elapsed().as_secs_f64());
    res
}
