//! The hosted pages reached through certify tokens.
use std::sync::Arc;

use poem::http::{header, StatusCode};
use poem::web::{Data, Path};
use poem::{handler, Response};

use crate::AppContext;

/// Content-Security-Policy of every hosted page: everything from shiren itself, nothing else.
pub const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self' 'unsafe-inline'; \
script-src 'self'; connect-src 'self'; frame-ancestors *; base-uri 'none'; form-action 'self'";

fn html(status: StatusCode, body: String) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header("Content-Security-Policy", CSP)
        .header("Referrer-Policy", "no-referrer")
        .header("X-Content-Type-Options", "nosniff")
        .body(body)
}

/// A small error page for the person in front of the phone.
pub fn error_page(
    ctx: &AppContext,
    status: StatusCode,
    title: &str,
    message: &str,
    code: &str,
) -> Response {
    let mut c = tera::Context::new();
    c.insert("lang", "zh-CN");
    c.insert("title", title);
    c.insert("message", message);
    c.insert("code", code);
    match ctx.templates.render("h5/error.html", &c) {
        Ok(body) => html(status, body),
        Err(e) => {
            tracing::error!(error = ?e, "error page template failed");
            html(status, format!("{title} ({code})"))
        }
    }
}

/// `/h5/certify/{token}`: the hosted verification page of a valid token.
#[handler]
pub async fn certify_page(
    Path(token): Path<String>,
    Data(ctx): Data<&Arc<AppContext>>,
) -> Response {
    match ctx.certify.verification_for_token(&token).await {
        Ok(Some(v)) => {
            let mut c = tera::Context::new();
            c.insert("lang", "zh-CN");
            c.insert(
                "expires_at",
                &chrono::DateTime::from_timestamp(v.expires_at, 0)
                    .map(|d| d.to_rfc3339())
                    .unwrap_or_default(),
            );
            match ctx.templates.render("h5/certify.html", &c) {
                Ok(body) => html(StatusCode::OK, body),
                Err(e) => {
                    tracing::error!(error = ?e, "certify page template failed");
                    error_page(ctx, StatusCode::INTERNAL_SERVER_ERROR, "服务暂不可用", "Service unavailable", "SYSTEM_ERROR")
                }
            }
        }
        Ok(None) => error_page(
            ctx,
            StatusCode::NOT_FOUND,
            "链接已失效 / Link no longer valid",
            "This verification link has expired or was already used. Please start again from the app.",
            "TOKEN_INVALID",
        ),
        Err(e) => {
            tracing::error!(error = ?e, "token lookup failed");
            error_page(ctx, StatusCode::SERVICE_UNAVAILABLE, "服务暂不可用", "Service unavailable, please retry.", "SYSTEM_ERROR")
        }
    }
}
