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
    if ctx.operator.database_ready().await {
        "ready".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
    }
}

/// Whether `req` may read the metrics: always without a `metrics_token`, else only with
/// `Authorization: Bearer <metrics_token>` (compared in constant time).
fn metrics_allowed(ctx: &AppContext, req: &poem::Request) -> bool {
    let Some(token) = ctx.config.metrics_token.as_deref() else {
        return true;
    };
    let given = req
        .header(poem::http::header::AUTHORIZATION)
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .unwrap_or("");
    // Both sides are hashed before the comparison, so neither length nor prefix leaks through timing.
    crate::operator::token_matches(Some(token), given) && !given.is_empty()
}

/// Prometheus metrics, text exposition format; behind a bearer token when `metrics_token` is set.
#[handler]
pub async fn metrics(req: &poem::Request, Data(ctx): Data<&Arc<AppContext>>) -> poem::Response {
    if !metrics_allowed(ctx, req) {
        return poem::Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(
                poem::http::header::WWW_AUTHENTICATE,
                "Bearer realm=\"metrics\"",
            )
            .header("Cache-Control", "no-store")
            .content_type("text/plain; charset=utf-8")
            .body("a bearer token is required for /metrics");
    }
    poem::Response::builder()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .header("Cache-Control", "no-store")
        .body(ctx.metrics.render())
}
