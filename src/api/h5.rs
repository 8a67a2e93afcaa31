//! The hosted pages reached through certify tokens, and their JSON endpoints. Handlers parse, call the hosted
//! service, and map the result.
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use poem::http::{header, StatusCode};
use poem::web::cookie::{Cookie, CookieJar, SameSite};
use poem::web::{Data, Path, Query};
use poem::{handler, Body, Request, Response};
use serde::Deserialize;
use serde_json::json;

use crate::certify::hosted::{FrameIn, HostedError, HostedErrorKind, PageView};
use crate::domain::fail::{self, FailReason};
use crate::domain::state::State;
use crate::AppContext;

/// Content-Security-Policy of every hosted page: everything from shiren itself, nothing else; framed only by shiren
/// itself and the origins of `[hosted] frame_ancestors` (validated at start). Inside a mini-program web-view (not a
/// frame) the page must also load the host's bridge script.
pub fn csp(ctx: &AppContext, miniprogram: bool) -> String {
    let mut ancestors = String::from("'self'");
    for origin in ctx.config.hosted.frame_ancestor_origins() {
        ancestors.push(' ');
        ancestors.push_str(origin);
    }
    format!(
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self' 'unsafe-inline'; \
script-src 'self'{}; connect-src 'self'; frame-ancestors {ancestors}; base-uri 'none'; form-action 'self'",
        if miniprogram { " https://appx" } else { "" }
    )
}

/// The cookie holding the browser session a token is bound to.
const SESSION_COOKIE: &str = "shiren_h5";

/// Largest attempt upload (frames as base64 JSON).
const MAX_ATTEMPT_BODY: usize = 24 * 1024 * 1024;

fn html(status: StatusCode, body: String, csp: String) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header("Content-Security-Policy", csp)
        .header("Referrer-Policy", "no-referrer")
        .header("X-Content-Type-Options", "nosniff")
        .header(
            "Permissions-Policy",
            "camera=(self), microphone=(), geolocation=()",
        )
        .body(body)
}

fn json_response(status: StatusCode, v: serde_json::Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header("X-Content-Type-Options", "nosniff")
        .body(v.to_string())
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
        Ok(body) => html(status, body, csp(ctx, false)),
        Err(e) => {
            tracing::error!(error = ?e, "error page template failed");
            html(status, format!("{title} ({code})"), csp(ctx, false))
        }
    }
}

fn hosted_error_page(ctx: &AppContext, e: &HostedError) -> Response {
    log_error(e);
    let (zh, en) = e.messages();
    error_page(ctx, status(e), zh, en, e.code())
}

fn hosted_error_json(e: &HostedError) -> Response {
    log_error(e);
    let (zh, en) = e.messages();
    let mut v = json!({"code": e.code(), "message_zh": zh, "message_en": en});
    if let HostedError::BadFrames(detail) = e {
        v["detail"] = json!(detail);
    }
    json_response(status(e), v)
}

/// The HTTP status of a hosted-flow refusal.
pub fn status(e: &HostedError) -> StatusCode {
    match e.kind() {
        HostedErrorKind::NotFound => StatusCode::NOT_FOUND,
        HostedErrorKind::Gone => StatusCode::GONE,
        HostedErrorKind::Forbidden => StatusCode::FORBIDDEN,
        HostedErrorKind::Conflict => StatusCode::CONFLICT,
        HostedErrorKind::Invalid => StatusCode::BAD_REQUEST,
        HostedErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn log_error(e: &HostedError) {
    match e {
        HostedError::Internal(cause) => tracing::error!(error = ?cause, "hosted flow failed"),
        HostedError::AuthorityUnavailable(cause) => {
            tracing::error!(error = %cause, "identity authority unavailable")
        }
        other => tracing::info!(code = other.code(), "hosted request refused"),
    }
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    channel: Option<String>,
    lang: Option<String>,
}

/// Whether the page runs inside a mini-program web-view: asked for explicitly, or told by the user agent.
fn is_miniprogram(q: &PageQuery, req: &Request) -> bool {
    q.channel.as_deref() == Some("miniprogram")
        || req
            .header(header::USER_AGENT)
            .is_some_and(|ua| ua.contains("MiniProgram"))
}

fn session_of(jar: &CookieJar) -> Option<String> {
    jar.get(SESSION_COOKIE).map(|c| c.value_str().to_string())
}

/// `GET /h5/certify/{token}`: the hosted verification page.
#[handler]
pub async fn certify_page(
    req: &Request,
    Path(token): Path<String>,
    Query(q): Query<PageQuery>,
    jar: &CookieJar,
    Data(ctx): Data<&Arc<AppContext>>,
) -> Response {
    let opened = match ctx.hosted.open(&token, session_of(jar).as_deref()).await {
        Ok(o) => o,
        Err(e) => return hosted_error_page(ctx, &e),
    };
    if let Some(secret) = &opened.new_session {
        let mut c = Cookie::new_with_str(SESSION_COOKIE, secret);
        c.set_path(format!("/h5/certify/{token}"));
        c.set_http_only(true);
        c.set_same_site(SameSite::Lax);
        c.set_secure(ctx.public_url.starts_with("https://"));
        c.set_max_age(std::time::Duration::from_secs(
            (ctx.config.certify_ttl_secs.max(0) as u64).max(600),
        ));
        jar.add(c);
    }
    let miniprogram = is_miniprogram(&q, req);
    let merchant = ctx.operator.merchant_name(&opened.view.app_id).await;
    let c = page_context(&opened.view, &merchant, miniprogram, q.lang.as_deref());
    match ctx.templates.render("h5/certify.html", &c) {
        Ok(body) => html(StatusCode::OK, body, csp(ctx, miniprogram)),
        Err(e) => {
            tracing::error!(error = ?e, "certify page template failed");
            error_page(
                ctx,
                StatusCode::INTERNAL_SERVER_ERROR,
                "服务暂不可用",
                "Service unavailable",
                "SYSTEM_ERROR",
            )
        }
    }
}

fn page_context(
    v: &PageView,
    merchant: &str,
    miniprogram: bool,
    lang: Option<&str>,
) -> tera::Context {
    let mut c = tera::Context::new();
    c.insert("lang", if lang == Some("en") { "en" } else { "zh-CN" });
    c.insert(
        "channel",
        if miniprogram {
            "miniprogram"
        } else {
            "browser"
        },
    );
    c.insert("certify_id", &v.certify_id);
    c.insert("merchant_name", merchant);
    c.insert("retention_days", &v.retention_days);
    c.insert("consent_kind", v.consent.as_str());
    c.insert("consent_version", &v.consent.version());
    c.insert("reserve", &v.reserve);
    c.insert("max_attempts", &v.max_attempts);
    c.insert(
        "attempts_left",
        &v.max_attempts.saturating_sub(v.attempts_used),
    );
    let state = match v.state {
        State::Passed => "passed",
        State::Failed => "failed",
        _ => "open",
    };
    c.insert("state", state);
    c.insert("return_url", &v.return_url);
    let stored = v.fail_reason.as_deref();
    let (zh, en) = match (v.state, stored.and_then(FailReason::from_code)) {
        (State::Passed, _) => ("认证通过", "Verification passed"),
        (_, Some(r)) => r.messages(),
        _ => ("", ""),
    };
    c.insert("result_code", fail::stored_public_code(stored));
    c.insert("result_message_zh", zh);
    c.insert("result_message_en", en);
    c
}

/// The limit per client address of the JSON endpoints, checked before anything else: `Some` refusal (429 with
/// `Retry-After`) when the address sent too many requests.
async fn address_limited(ctx: &AppContext, req: &Request) -> Option<Response> {
    let limits = ctx.certify.limits();
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let forwarded = (!forwarded.is_empty()).then(|| forwarded.join(","));
    let ip = limits.client_address(crate::api::admin::client_ip(req), forwarded.as_deref());
    match limits.address_call(ip, ctx.certify.clock().now()).await {
        Ok(()) => None,
        Err(crate::limits::LimitError::Exceeded(r)) => {
            let mut resp = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                json!({
                    "code": "TOO_MANY_REQUESTS",
                    "message_zh": "请求过于频繁，请稍后再试",
                    "message_en": format!("Too many requests; try again in {} s", r.retry_after),
                    "retry_after": r.retry_after,
                }),
            );
            if let Ok(v) = header::HeaderValue::from_str(&r.retry_after.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Some(resp)
        }
        Err(crate::limits::LimitError::Store(e)) => {
            Some(hosted_error_json(&HostedError::Internal(e.into())))
        }
    }
}

/// Largest body of a challenge request (`{"consent_version": "…"}`).
const MAX_CHALLENGE_BODY: usize = 1024;

#[derive(Deserialize, Default)]
struct ChallengeBody {
    /// The version of the consent text the person agreed to (`domain::consent`).
    consent_version: Option<String>,
}

/// `POST /h5/certify/{token}/challenge`: the next challenge; the first one records the person's consent.
#[handler]
pub async fn challenge(
    req: &Request,
    Path(token): Path<String>,
    jar: &CookieJar,
    body: Body,
    Data(ctx): Data<&Arc<AppContext>>,
) -> Response {
    if let Some(refused) = address_limited(ctx, req).await {
        return refused;
    }
    // A body that is not the small JSON object above carries no consent (and a first challenge is then refused).
    let consent = match body.into_bytes_limit(MAX_CHALLENGE_BODY).await {
        Ok(b) => serde_json::from_slice::<ChallengeBody>(&b).unwrap_or_default(),
        Err(_) => ChallengeBody::default(),
    };
    match ctx
        .hosted
        .challenge(
            &token,
            session_of(jar).as_deref(),
            consent.consent_version.as_deref(),
        )
        .await
    {
        Ok((id, number, max_attempts, c)) => json_response(
            StatusCode::OK,
            json!({
                "challenge_id": id,
                "attempt": number,
                "max_attempts": max_attempts,
                "actions": c.actions,
                "baseline_ms": c.baseline_ms,
                "action_ms": c.action_ms,
                "flash": c.flash,
                "fps": c.fps,
                "max_side": 480,
                "jpeg_quality": 0.85,
            }),
        ),
        Err(e) => hosted_error_json(&e),
    }
}

#[derive(Deserialize)]
struct AttemptBody {
    challenge_id: String,
    frames: Vec<FrameBody>,
}

#[derive(Deserialize)]
struct FrameBody {
    t_ms: u32,
    jpeg: String,
}

/// Reads an attempt upload: the challenge id and the frames, base64-decoded (public for the fuzz targets).
pub fn parse_attempt(bytes: &[u8]) -> Result<(String, Vec<FrameIn>), HostedError> {
    let body: AttemptBody = serde_json::from_slice(bytes)
        .map_err(|e| HostedError::BadFrames(format!("body is not the expected JSON: {e}")))?;
    let frames = body
        .frames
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let b64 = f
                .jpeg
                .strip_prefix("data:image/jpeg;base64,")
                .unwrap_or(&f.jpeg);
            B64.decode(b64.trim())
                .map(|jpeg| FrameIn { t_ms: f.t_ms, jpeg })
                .map_err(|_| HostedError::BadFrames(format!("frame {i} is not base64")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((body.challenge_id, frames))
}

/// A refusal sent before the request body was read: the connection is closed rather than drained.
fn refused_unread(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    r
}

/// `POST /h5/certify/{token}/attempt`: the frames of one challenge; answers with the verdict.
///
/// The token and the browser session are checked before the body is read, and a declared `Content-Length` over
/// the limit is refused unread: an upload with a made-up token or session costs the server two small reads.
#[handler]
pub async fn attempt(
    req: &Request,
    Path(token): Path<String>,
    jar: &CookieJar,
    body: Body,
    Data(ctx): Data<&Arc<AppContext>>,
) -> Response {
    if let Some(refused) = address_limited(ctx, req).await {
        return refused;
    }
    let session = session_of(jar);
    if let Err(e) = ctx.hosted.check_session(&token, session.as_deref()).await {
        return refused_unread(hosted_error_json(&e));
    }
    let too_large = || {
        let mut r = hosted_error_json(&HostedError::BadFrames(format!(
            "the upload is larger than {MAX_ATTEMPT_BODY} bytes"
        )));
        r.set_status(StatusCode::PAYLOAD_TOO_LARGE);
        refused_unread(r)
    };
    // (HTTP itself refuses a Content-Length that is not a number.)
    let declared = req
        .header(header::CONTENT_LENGTH)
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_ATTEMPT_BODY as u64) {
        return too_large();
    }
    let bytes = match body.into_bytes_limit(MAX_ATTEMPT_BODY).await {
        Ok(b) => b,
        Err(_) => return too_large(),
    };
    let (challenge_id, frames) = match parse_attempt(&bytes) {
        Ok(x) => x,
        Err(e) => return hosted_error_json(&e),
    };
    match ctx
        .hosted
        .submit(&token, session.as_deref(), &challenge_id, frames)
        .await
    {
        Ok(r) => {
            let (zh, en) = match r.fail_reason {
                None => ("认证通过", "Verification passed"),
                Some(f) => f.messages(),
            };
            let code = r.fail_reason.map(|f| f.public_code()).unwrap_or("PASSED");
            let mut v = json!({
                "outcome": r.outcome,
                "code": code,
                "message_zh": zh,
                "message_en": en,
                "attempts_left": r.attempts_left,
            });
            if let Some(url) = &r.return_url {
                v["return_url"] = json!(url);
                v["result"] = json!({
                    "resultStatus": if r.outcome == "passed" { "9000" } else { "4000" },
                    "result": {"certifyId": r.certify_id, "errorCode": if r.outcome == "passed" { "" } else { code }},
                });
            }
            json_response(StatusCode::OK, v)
        }
        Err(e) => hosted_error_json(&e),
    }
}

/// `POST /h5/certify/{token}/cancel`: the person gives up.
#[handler]
pub async fn cancel(
    Path(token): Path<String>,
    jar: &CookieJar,
    Data(ctx): Data<&Arc<AppContext>>,
) -> Response {
    match ctx.hosted.cancel(&token, session_of(jar).as_deref()).await {
        Ok(v) => json_response(
            StatusCode::OK,
            json!({"return_url": v.return_url, "result": {"resultStatus": "6001", "result": null}}),
        ),
        Err(e) => hosted_error_json(&e),
    }
}

/// `GET /h5/assets/{name}`: the page's script and style, and the mini-program helper, compiled into the binary.
#[handler]
pub async fn asset(Path(name): Path<String>) -> Response {
    let (body, mime) = match name.as_str() {
        "certify.js" => (
            include_str!("../../templates/h5/assets/certify.js"),
            "text/javascript; charset=utf-8",
        ),
        "certify.css" => (
            include_str!("../../templates/h5/assets/certify.css"),
            "text/css; charset=utf-8",
        ),
        "miniprogram.js" => (
            include_str!("../../templates/h5/assets/miniprogram.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => {
            return Response::builder()
                .status(StatusCode::NOT_FOUND)
                .content_type("text/plain")
                .body("not found")
        }
    };
    Response::builder()
        .content_type(mime)
        .header(header::CACHE_CONTROL, "public, max-age=300")
        .header("X-Content-Type-Options", "nosniff")
        .body(body)
}
