//! Logging set-up and the per-request span (request id, method, path without tokens, status, latency).
use std::sync::Arc;
use std::time::Instant;

use poem::{Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

use crate::config::LogFormat;

/// Installs the global subscriber: `RUST_LOG` filter (default `info`), text or JSON lines on stderr.
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// A loggable path: hosted-page tokens are replaced by `*`.
fn loggable_path(path: &str) -> String {
    match path.strip_prefix("/h5/certify/") {
        Some(rest) if !rest.is_empty() => "/h5/certify/*".to_string(),
        _ => path.chars().take(200).collect(),
    }
}

/// Wraps every request in a span with a fresh request id, echoed as the `trace_id` response header
/// (the Alipay SDKs surface it as `traceId`).
pub async fn request_span<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    metrics: Arc<crate::metrics::Metrics>,
) -> poem::Result<Response> {
    let method = req.method().as_str().to_string();
    let request_id = hex::encode(rand::random::<[u8; 8]>());
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %loggable_path(req.uri().path()),
    );
    async move {
        let start = Instant::now();
        let mut resp = match ep.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        if let Ok(v) = request_id.parse() {
            resp.headers_mut().insert("trace_id", v);
        }
        metrics.request(&method, resp.status().as_u16());
        tracing::info!(
            status = resp.status().as_u16(),
            elapsed_ms = start.elapsed().as_millis() as u64,
            "request"
        );
        Ok(resp)
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_never_reach_logs() {
        assert_eq!(super::loggable_path("/h5/certify/abcDEF"), "/h5/certify/*");
        assert_eq!(super::loggable_path("/gateway.do"), "/gateway.do");
    }
}
