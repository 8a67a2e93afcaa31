//! Liveness and readiness probes.
use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::Data;
use poem::{handler, IntoResponse};

use crate::AppContext;

/// The process is up.
#[handler]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready only when the database answers.
#[handler]
pub async fn readyz(Data(ctx): Data<&Arc<AppContext>>) -> poem::Response {
    if crate::db::ping(&ctx.db).await {
        "ready".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
    }
}

/// Prometheus metrics, text exposition format.
#[handler]
pub async fn metrics(Data(ctx): Data<&Arc<AppContext>>) -> poem::Response {
    poem::Response::builder()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .header("Cache-Control", "no-store")
        .body(ctx.metrics.render())
}
