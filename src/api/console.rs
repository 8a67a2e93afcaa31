//! The operator console (`/console/…`): server-rendered pages over the same database functions as the admin API.
//! Login with the admin token; a signed, HttpOnly, SameSite=Strict session cookie; a CSRF token on every form.
//! Handlers parse, make one call into the operator's service (as the admin API and the CLI do), and render; the
//! [`Operator`] extractor stands for a logged-in operator.
use std::collections::BTreeMap;
use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::cookie::{Cookie, CookieJar, SameSite};
use poem::web::{Data, Form, Path, Query};
use poem::{get, handler, post, Response, Route};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::console;
use crate::console::chart::{self, DayBar};
use crate::console::session::{Session, COOKIE, COOKIE_PATH, TTL_SECS};
use crate::domain::scene::{parse_setting, SettingNames, SettingsText, LIVENESS_LEVELS};
use crate::operator::{self as service, AppStatus, Attempt, Scene, SceneRequest, Verification};
use crate::AppContext;

/// Where the console is mounted.
pub const PREFIX: &str = "/console";

/// Content-Security-Policy of every console page: its own stylesheet and images, no script, nothing else.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
frame-ancestors 'none'; base-uri 'none'";

const CSS: &str = include_str!("../../templates/console/console.css");

/// The console's routes, to be nested at [`PREFIX`].
pub fn routes() -> Route {
    Route::new()
        .at("/", get(index))
        .at("/login", get(login_page).post(login))
        .at("/logout", post(logout))
        .at("/overview", get(overview))
        .at("/apps", get(app_list).post(app_create))
        .at("/apps/:app_id/disable", post(app_disable))
        .at("/scenes", get(scene_list).post(scene_create))
        .at("/scenes/:scene_id", post(scene_update))
        .at("/verifications", get(search))
        .at("/verifications/:certify_id/face.jpg", get(face_image))
        .at(
            "/verifications/:certify_id/delete",
            post(verification_delete),
        )
        .at("/billing", get(billing_page))
        .at("/billing.csv", get(billing_csv))
        .at("/console.css", get(css))
}

fn html(status: StatusCode, body: String) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .header("Content-Security-Policy", CSP)
        .header("Cache-Control", "no-store")
        .header("X-Content-Type-Options", "nosniff")
        .header("Referrer-Policy", "no-referrer")
        .header("X-Frame-Options", "DENY")
        .body(body)
}

fn render(ctx: &AppContext, status: StatusCode, name: &str, c: &tera::Context) -> Response {
    match ctx.templates.render(name, c) {
        Ok(body) => html(status, body),
        Err(e) => {
            tracing::error!(error = ?e, template = name, "console template failed");
            html(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be drawn; see the server log".into(),
            )
        }
    }
}

fn redirect(to: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header("Location", to)
        .header("Cache-Control", "no-store")
        .finish()
}

fn now(ctx: &AppContext) -> i64 {
    ctx.operator.now()
}

/// The calendar of billing days (`[billing] utc_offset`), which the console's days also follow.
fn calendar(ctx: &AppContext) -> crate::billing::Calendar {
    ctx.operator.calendar()
}

fn fmt_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// A logged-in operator: the session and its CSRF token. As an extractor, a request without one is sent to the login
/// page (take `Option<Operator>` to answer otherwise).
pub struct Operator {
    session: Session,
    csrf: String,
}

/// The operator of a request: a session cookie that verifies and was not logged out (asked of the database on every
/// request, so a logout holds on every instance and after a restart; when the database cannot answer, nobody is
/// logged in).
async fn operator(ctx: &AppContext, jar: &CookieJar) -> Option<Operator> {
    let cookie = jar.get(COOKIE)?;
    let session = ctx.console.verify(cookie.value_str(), now(ctx))?;
    match ctx.operator.session_revoked(&session.nonce).await {
        Ok(false) => {}
        Ok(true) => return None,
        Err(e) => {
            tracing::error!(error = %e, "console session check failed");
            return None;
        }
    }
    let csrf = ctx.console.csrf_token(&session);
    Some(Operator { session, csrf })
}

impl<'a> poem::FromRequest<'a> for Operator {
    async fn from_request(
        req: &'a poem::Request,
        _body: &mut poem::RequestBody,
    ) -> poem::Result<Self> {
        let ctx = req
            .data::<Arc<AppContext>>()
            .ok_or_else(|| poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR))?;
        operator(ctx, req.cookie())
            .await
            .ok_or_else(|| poem::Error::from_response(redirect("/console/login")))
    }
}

/// The context every page shares: the active tab, the CSRF token, a message.
fn base(op: &Operator, nav: &str) -> tera::Context {
    let mut c = tera::Context::new();
    c.insert("nav", nav);
    c.insert("csrf", &op.csrf);
    c
}

/// A page saying what went wrong, in the console's frame.
fn problem(ctx: &AppContext, op: Option<&Operator>, status: StatusCode, message: &str) -> Response {
    let mut c = match op {
        Some(op) => base(op, ""),
        None => tera::Context::new(),
    };
    c.insert("status", &status.as_u16());
    c.insert("message", message);
    render(ctx, status, "console/error.html", &c)
}

fn db_unavailable(ctx: &AppContext, op: &Operator, e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console query failed");
    problem(
        ctx,
        Some(op),
        StatusCode::SERVICE_UNAVAILABLE,
        "The database is unavailable; try again later. 数据库暂不可用。",
    )
}

/// For POST handlers: the operator when the session and the form's CSRF token are right, else the refusal.
#[allow(clippy::result_large_err)]
fn checked_post(
    ctx: &AppContext,
    op: Option<Operator>,
    csrf: Option<&str>,
) -> Result<Operator, Response> {
    let Some(op) = op else {
        return Err(problem(
            ctx,
            None,
            StatusCode::FORBIDDEN,
            "Not logged in, or the session has expired. 未登录或会话已过期。",
        ));
    };
    if !ctx.console.csrf_ok(&op.session, csrf) {
        return Err(problem(
            ctx,
            Some(&op),
            StatusCode::FORBIDDEN,
            "The form's CSRF token is missing or wrong; reload the page and try again. 表单校验失败。",
        ));
    }
    Ok(op)
}

/// `GET /console/`: the overview when logged in, else the login page.
#[handler]
async fn index(op: Option<Operator>) -> Response {
    if op.is_some() {
        redirect("/console/overview")
    } else {
        redirect("/console/login")
    }
}

#[handler]
async fn css() -> Response {
    Response::builder()
        .content_type("text/css; charset=utf-8")
        .header("Cache-Control", "max-age=300")
        .header("X-Content-Type-Options", "nosniff")
        .body(CSS)
}

fn login_form(ctx: &AppContext, status: StatusCode, error: Option<&str>) -> Response {
    let mut c = tera::Context::new();
    c.insert("enabled", &ctx.console.enabled());
    c.insert("error", &error);
    render(ctx, status, "console/login.html", &c)
}

#[handler]
async fn login_page(Data(ctx): Data<&Arc<AppContext>>, op: Option<Operator>) -> Response {
    if op.is_some() {
        return redirect("/console/overview");
    }
    login_form(ctx, StatusCode::OK, None)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
}

/// `POST /console/login`: the admin token, compared in constant time, opens a session.
#[handler]
async fn login(
    Data(ctx): Data<&Arc<AppContext>>,
    req: &poem::Request,
    jar: &CookieJar,
    Form(f): Form<LoginForm>,
) -> Response {
    if !ctx.console.enabled() {
        return login_form(ctx, StatusCode::FORBIDDEN, None);
    }
    match super::admin::admin_token_attempt(ctx, req, f.token.trim(), "console login").await {
        Attempt::Valid => {}
        Attempt::Wrong => {
            return login_form(
                ctx,
                StatusCode::UNAUTHORIZED,
                Some("Wrong admin token. 管理令牌不正确。"),
            )
        }
        Attempt::Locked { retry_after } => {
            let minutes = (retry_after + 59) / 60;
            let mut r = login_form(
                ctx,
                StatusCode::TOO_MANY_REQUESTS,
                Some(&format!(
                    "Too many wrong tokens from this address; try again in {minutes} min. 错误次数过多，请 {minutes} 分钟后再试。"
                )),
            );
            if let Ok(v) = poem::http::HeaderValue::from_str(&retry_after.to_string()) {
                r.headers_mut().insert(poem::http::header::RETRY_AFTER, v);
            }
            return r;
        }
    }
    let Some((value, _)) = ctx.console.issue(now(ctx)) else {
        return login_form(ctx, StatusCode::FORBIDDEN, None);
    };
    let mut c = Cookie::new_with_str(COOKIE, value);
    c.set_path(COOKIE_PATH);
    c.set_http_only(true);
    c.set_same_site(SameSite::Strict);
    c.set_secure(ctx.public_url.starts_with("https://"));
    c.set_max_age(std::time::Duration::from_secs(TTL_SECS as u64));
    jar.add(c);
    tracing::info!("console login");
    redirect("/console/overview")
}

#[derive(Deserialize)]
struct CsrfOnly {
    csrf: Option<String>,
}

#[handler]
async fn logout(
    Data(ctx): Data<&Arc<AppContext>>,
    jar: &CookieJar,
    op: Option<Operator>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let op = match checked_post(ctx, op, f.csrf.as_deref()) {
        Ok(op) => op,
        Err(r) => return r,
    };
    if let Err(e) = ctx
        .operator
        .revoke_session(&op.session.nonce, op.session.expires_at)
        .await
    {
        // The session stays valid: say so rather than pretend the logout happened.
        return db_unavailable(ctx, &op, &e);
    }
    let mut c = Cookie::new_with_str(COOKIE, "");
    c.set_path(COOKIE_PATH);
    c.make_removal();
    jar.add(c);
    redirect("/console/login")
}

#[derive(Deserialize)]
struct OverviewQuery {
    scene_id: Option<String>,
}

fn outcome_json(o: &console::Outcomes, times: &[i32], reasons: &[(String, u64)]) -> Value {
    json!({
        "total": o.total,
        "passed": o.passed,
        "failed": o.failed,
        "undecided": o.undecided(),
        "pass_rate": o.pass_rate(),
        "p50_ms": console::percentile(times, 50.0),
        "p99_ms": console::percentile(times, 99.0),
        "decisions": times.len(),
        "reasons": reasons.iter().map(|(r, n)| json!({"reason": r, "count": n})).collect::<Vec<_>>(),
    })
}

/// `GET /console/overview`: today and the last 30 days.
#[handler]
async fn overview(
    Data(ctx): Data<&Arc<AppContext>>,
    op: Operator,
    Query(q): Query<OverviewQuery>,
) -> Response {
    let scene_id = match q.scene_id.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => match s.parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => {
                return problem(
                    ctx,
                    Some(&op),
                    StatusCode::BAD_REQUEST,
                    "scene_id must be a number",
                )
            }
        },
    };
    let o = match ctx.operator.overview(scene_id).await {
        Ok(o) => o,
        Err(e) => return db_unavailable(ctx, &op, &e),
    };
    let (t, today, cal) = (o.now, o.today, calendar(ctx));
    let (rows, all_scenes) = (&o.by_day, &o.scenes);
    let (reasons_30, times_30) = (&o.month.reasons, &o.month.times);
    let (reasons_today, times_today) = (&o.today_stats.reasons, &o.today_stats.times);
    let days = console::daily_outcomes(rows, today, 30);
    let last_30 = console::sum(&days);
    let today_outcomes = days.last().map(|(_, o)| o.clone()).unwrap_or_default();
    let bars: Vec<DayBar> = days
        .iter()
        .map(|(d, o)| DayBar {
            label: console::day_label(*d),
            total: o.total,
            passed: o.passed,
        })
        .collect();
    let mut c = base(&op, "overview");
    c.insert(
        "today",
        &outcome_json(&today_outcomes, times_today, reasons_today),
    );
    c.insert("month", &outcome_json(&last_30, times_30, reasons_30));
    c.insert(
        "daily_chart",
        &chart::daily_bars(&bars, "Verifications and passes per day, last 30 days"),
    );
    c.insert(
        "reasons_chart",
        &chart::horizontal_bars(
            reasons_30,
            "Failure reasons, last 30 days",
            "No failed verifications in the last 30 days. 近 30 天无失败。",
        ),
    );
    c.insert("scene_id", &scene_id);
    c.insert(
        "scenes",
        &all_scenes
            .iter()
            .map(|s| json!({"scene_id": s.scene_id, "name": s.name, "app_id": s.app_id}))
            .collect::<Vec<_>>(),
    );
    c.insert(
        "month_title",
        &format!(
            "近 30 天 Last 30 days · {} – {} ({})",
            cal.day_of(o.month_window.from),
            cal.day_of(t),
            cal.label()
        ),
    );
    render(ctx, StatusCode::OK, "console/overview.html", &c)
}

#[derive(Deserialize, Default)]
struct Notice {
    ok: Option<String>,
}

/// The `ok` notice, shown only when it is one the console sends itself after a change (`created app ID`, …) and
/// names an app or scene that exists: a link cannot put other words on the console.
fn known_notice<'a>(ok: Option<&'a str>, verbs: &[&str], ids: &[String]) -> Option<&'a str> {
    let ok = ok?;
    verbs
        .iter()
        .any(|verb| {
            ok.strip_prefix(verb)
                .is_some_and(|id| ids.iter().any(|i| i == id))
        })
        .then_some(ok)
}

async fn apps_page(
    ctx: &AppContext,
    op: &Operator,
    status: StatusCode,
    ok: Option<&str>,
    error: Option<&str>,
    form: Option<&AppForm>,
) -> Response {
    let list = match ctx.operator.apps().await {
        Ok(l) => l,
        Err(e) => return db_unavailable(ctx, op, &e),
    };
    let mut c = base(op, "apps");
    c.insert(
        "apps",
        &list
            .iter()
            .map(|a| {
                json!({
                    "app_id": a.app_id,
                    "name": a.name,
                    "active": a.status == AppStatus::Active,
                    "status": a.status.as_str(),
                    "bits": a.public_key.bits(),
                    "return_urls": a.return_url_prefixes,
                    "created_at": fmt_time(a.created_at),
                })
            })
            .collect::<Vec<_>>(),
    );
    c.insert("gateway_key", &ctx.gateway.public_key_pem());
    let ids: Vec<String> = list.iter().map(|a| a.app_id.clone()).collect();
    c.insert(
        "ok",
        &known_notice(ok, &["created app ", "disabled app "], &ids),
    );
    c.insert("error", &error);
    c.insert(
        "form",
        &form.map(|f| json!({"app_id": f.app_id, "name": f.name, "public_key": f.public_key, "return_urls": f.return_urls})),
    );
    render(ctx, status, "console/apps.html", &c)
}

#[handler]
async fn app_list(
    Data(ctx): Data<&Arc<AppContext>>,
    op: Operator,
    Query(n): Query<Notice>,
) -> Response {
    apps_page(ctx, &op, StatusCode::OK, n.ok.as_deref(), None, None).await
}

#[derive(Deserialize)]
struct AppForm {
    csrf: Option<String>,
    #[serde(default)]
    app_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    public_key: String,
    /// One prefix per line.
    #[serde(default)]
    return_urls: String,
}

/// `POST /console/apps`: registers an app, checked as `shiren app create` checks it.
#[handler]
async fn app_create(
    Data(ctx): Data<&Arc<AppContext>>,
    op: Option<Operator>,
    Form(f): Form<AppForm>,
) -> Response {
    let op = match checked_post(ctx, op, f.csrf.as_deref()) {
        Ok(op) => op,
        Err(r) => return r,
    };
    let prefixes: Vec<String> = f
        .return_urls
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let created = ctx
        .operator
        .create_app(&f.app_id, &f.name, &f.public_key, prefixes)
        .await;
    match created {
        Ok(app) => {
            tracing::info!(app_id = %app.app_id, "console: app created");
            ok_redirect("/console/apps", &format!("created app {}", app.app_id))
        }
        Err(service::Error::Unavailable(e)) => db_unavailable(ctx, &op, &e),
        Err(e) => {
            let status = match e {
                service::Error::Conflict(_) => StatusCode::CONFLICT,
                _ => StatusCode::BAD_REQUEST,
            };
            apps_page(ctx, &op, status, None, Some(&e.to_string()), Some(&f)).await
        }
    }
}

/// `POST /console/apps/{app_id}/disable`.
#[handler]
async fn app_disable(
    Data(ctx): Data<&Arc<AppContext>>,
    op: Option<Operator>,
    Path(app_id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let op = match checked_post(ctx, op, f.csrf.as_deref()) {
        Ok(op) => op,
        Err(r) => return r,
    };
    match ctx.operator.disable_app(&app_id).await {
        Ok(()) => {
            tracing::info!(app_id = %app_id, "console: app disabled");
            ok_redirect("/console/apps", &format!("disabled app {app_id}"))
        }
        Err(service::Error::Unavailable(e)) => db_unavailable(ctx, &op, &e),
        Err(_) => problem(ctx, Some(&op), StatusCode::NOT_FOUND, "No such app."),
    }
}

fn scene_json(s: &Scene) -> Value {
    json!({
        "scene_id": s.scene_id,
        "app_id": s.app_id,
        "name": s.name,
        "product": s.product,
        "match_far": s.match_far,
        "max_attempts": s.max_attempts,
        "retention_days": s.retention_days,
        "keep_photos": s.keep_photos,
        "liveness": s.liveness.as_deref().unwrap_or("standard"),
        "is_default": s.is_default,
        "created_at": fmt_time(s.created_at),
    })
}

async fn scenes_page(
    ctx: &AppContext,
    op: &Operator,
    status: StatusCode,
    ok: Option<&str>,
    error: Option<&str>,
) -> Response {
    let loaded = async {
        Ok::<_, service::Error>((ctx.operator.scenes(None).await?, ctx.operator.apps().await?))
    }
    .await;
    let (list, apps) = match loaded {
        Ok(v) => v,
        Err(e) => return db_unavailable(ctx, op, &e),
    };
    let mut c = base(op, "scenes");
    c.insert("scenes", &list.iter().map(scene_json).collect::<Vec<_>>());
    c.insert(
        "apps",
        &apps.iter().map(|a| a.app_id.clone()).collect::<Vec<_>>(),
    );
    c.insert("products", &crate::domain::product::Product::codes());
    c.insert("liveness_levels", LIVENESS_LEVELS);
    let ids: Vec<String> = list.iter().map(|s| s.scene_id.to_string()).collect();
    c.insert(
        "ok",
        &known_notice(ok, &["created scene ", "updated scene "], &ids),
    );
    c.insert("error", &error);
    render(ctx, status, "console/scenes.html", &c)
}

#[handler]
async fn scene_list(
    Data(ctx): Data<&Arc<AppContext>>,
    op: Operator,
    Query(n): Query<Notice>,
) -> Response {
    scenes_page(ctx, &op, StatusCode::OK, n.ok.as_deref(), None).await
}

#[derive(Deserialize)]
struct SceneForm {
    csrf: Option<String>,
    #[serde(default)]
    app_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    scene_id: String,
    #[serde(default)]
    product: String,
    /// Empty: the server's setting.
    #[serde(default)]
    match_far: String,
    #[serde(default)]
    max_attempts: String,
    #[serde(default)]
    retention_days: String,
    /// `yes` or `no` (any answer of `domain::yes_no`); empty: unchanged (yes for a new scene).
    #[serde(default)]
    keep_photos: String,
    /// `standard` or `strict`.
    #[serde(default)]
    liveness: String,
    /// A checkbox: present when ticked.
    default: Option<String>,
}

/// What the console's messages call the settings.
const SETTING_NAMES: SettingNames = SettingNames {
    match_far: "match FAR",
    max_attempts: "max attempts",
    retention_days: "retention days",
    liveness: "liveness",
    keep_photos: "keep photos",
};

impl SceneForm {
    /// The settings of the form; an empty threshold is the server's setting.
    fn changes(&self) -> Result<service::SceneChanges, String> {
        let mut changes = SettingsText {
            match_far: Some(&self.match_far),
            max_attempts: Some(&self.max_attempts),
            retention_days: Some(&self.retention_days),
            liveness: Some(&self.liveness),
            keep_photos: Some(&self.keep_photos),
        }
        .changes(&SETTING_NAMES)?;
        changes.name = (!self.name.trim().is_empty()).then(|| self.name.clone());
        Ok(changes)
    }
}

fn ok_redirect(path: &str, message: &str) -> Response {
    redirect(&format!(
        "{path}?ok={}",
        percent_encoding::utf8_percent_encode(message, percent_encoding::NON_ALPHANUMERIC)
    ))
}

/// The answer to a scene change that was refused.
async fn scene_refused(ctx: &AppContext, op: &Operator, e: service::Error) -> Response {
    match e {
        service::Error::Unavailable(e) => db_unavailable(ctx, op, &e),
        e => scenes_page(ctx, op, StatusCode::BAD_REQUEST, None, Some(&e.to_string())).await,
    }
}

/// `POST /console/scenes`: creates a scene (as `shiren scene create`).
#[handler]
async fn scene_create(
    Data(ctx): Data<&Arc<AppContext>>,
    op: Option<Operator>,
    Form(f): Form<SceneForm>,
) -> Response {
    let op = match checked_post(ctx, op, f.csrf.as_deref()) {
        Ok(op) => op,
        Err(r) => return r,
    };
    let parsed = f
        .changes()
        .and_then(|c| Ok((c, parse_setting::<i64>(&f.scene_id, "scene id")?)));
    let (settings, scene_id) = match parsed {
        Ok(v) => v,
        Err(e) => return scenes_page(ctx, &op, StatusCode::BAD_REQUEST, None, Some(&e)).await,
    };
    let request = SceneRequest {
        app_id: f.app_id.clone(),
        name: f.name.clone(),
        scene_id,
        product: f.product.clone(),
        settings,
        make_default: f.default.is_some(),
    };
    match ctx.operator.create_scene(request).await {
        Ok(scene) => {
            tracing::info!(scene_id = scene.scene_id, "console: scene created");
            ok_redirect(
                "/console/scenes",
                &format!("created scene {}", scene.scene_id),
            )
        }
        Err(e) => scene_refused(ctx, &op, e).await,
    }
}

/// `POST /console/scenes/{scene_id}`: changes a scene (as `shiren scene update`); empty thresholds return to the
/// server's settings.
#[handler]
async fn scene_update(
    Data(ctx): Data<&Arc<AppContext>>,
    op: Option<Operator>,
    Path(scene_id): Path<i64>,
    Form(f): Form<SceneForm>,
) -> Response {
    let op = match checked_post(ctx, op, f.csrf.as_deref()) {
        Ok(op) => op,
        Err(r) => return r,
    };
    let changes = match f.changes() {
        Ok(c) => c,
        Err(e) => return scenes_page(ctx, &op, StatusCode::BAD_REQUEST, None, Some(&e)).await,
    };
    match ctx
        .operator
        .update_scene(scene_id, changes, f.default.is_some())
        .await
    {
        Ok(_) => {
            tracing::info!(scene_id, "console: scene updated");
            ok_redirect("/console/scenes", &format!("updated scene {scene_id}"))
        }
        Err(e) => scene_refused(ctx, &op, e).await,
    }
}

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
}

/// The checks of a stored decision (`{"decision": {"checks": [...]}}`), for display.
fn checks_of(decision: Option<&str>) -> Value {
    decision
        .and_then(|d| serde_json::from_str::<Value>(d).ok())
        .map(|v| {
            json!({
                "checks": v
                    .pointer("/decision/checks")
                    .and_then(Value::as_array)
                    .map(|checks| {
                        checks
                            .iter()
                            .map(|c| {
                                json!({
                                    "name": c.get("name").cloned().unwrap_or(Value::Null),
                                    "passed": c.get("passed").and_then(Value::as_bool).unwrap_or(false),
                                    "score": c.get("score").cloned().unwrap_or(Value::Null),
                                    "threshold": c.get("threshold").cloned().unwrap_or(Value::Null),
                                    "detail": c.get("detail").cloned().unwrap_or(Value::Null),
                                })
                            })
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default(),
                "match_score": v.pointer("/decision/match_score").cloned().unwrap_or(Value::Null),
                "identity_check": v.pointer("/decision/identity_check").cloned().unwrap_or(Value::Null),
                "challenge": v.get("challenge").cloned().unwrap_or(Value::Null),
                "frames": v.get("frames").cloned().unwrap_or(Value::Null),
            })
        })
        .unwrap_or(Value::Null)
}

/// `GET /console/verifications?q=…`: by certify_id, else by outer_order_no (of any app).
#[handler]
async fn search(
    Data(ctx): Data<&Arc<AppContext>>,
    op: Operator,
    Query(sq): Query<SearchQuery>,
) -> Response {
    let q =
        sq.q.unwrap_or_default()
            .trim()
            .chars()
            .take(128)
            .collect::<String>();
    let mut c = base(&op, "search");
    c.insert("q", &q);
    if q.is_empty() {
        c.insert("results", &Vec::<Value>::new());
        c.insert("detail", &Value::Null);
        return render(ctx, StatusCode::OK, "console/search.html", &c);
    }
    let found = ctx.operator.search(&q).await;
    let found = match found {
        Ok(f) => f,
        Err(e) => return db_unavailable(ctx, &op, &e),
    };
    let t = now(ctx);
    c.insert(
        "results",
        &found
            .iter()
            .map(|v| {
                json!({
                    "certify_id": v.certify_id,
                    "app_id": v.app_id,
                    "outer_order_no": v.outer_order_no,
                    "state": v.state.at(t, v.expires_at).as_str(),
                    "created_at": fmt_time(v.created_at),
                })
            })
            .collect::<Vec<_>>(),
    );
    let detail = match found.as_slice() {
        [v] => match verification_detail(ctx, v, t).await {
            Ok(d) => {
                if v.erased_at.is_none() {
                    if let Err(e) = ctx
                        .operator
                        .audit_view(
                            &v.certify_id,
                            service::Actor::Console,
                            "detail (masked name and ID number)",
                        )
                        .await
                    {
                        return db_unavailable(ctx, &op, &e);
                    }
                }
                d
            }
            Err(e) => return db_unavailable(ctx, &op, &e),
        },
        _ => Value::Null,
    };
    c.insert("detail", &detail);
    render(ctx, StatusCode::OK, "console/search.html", &c)
}

async fn verification_detail(
    ctx: &AppContext,
    v: &Verification,
    now: i64,
) -> Result<Value, service::Error> {
    use crate::authority::import::{mask_cert_no, mask_name};
    let service::VerificationDetail {
        subject,
        scene,
        attempts,
        billing,
    } = ctx.operator.verification_detail(v).await?;
    Ok(json!({
        "certify_id": v.certify_id,
        "app_id": v.app_id,
        "outer_order_no": v.outer_order_no,
        "product": v.product,
        "scene_id": v.scene_id,
        "scene_name": scene.map(|s| s.name),
        "state": v.state.at(now, v.expires_at).as_str(),
        "passed": v.passed,
        "fail_reason": v.fail_reason,
        "created_at": fmt_time(v.created_at),
        "expires_at": fmt_time(v.expires_at),
        "decided_at": v.decided_at.map(fmt_time),
        "erased_at": v.erased_at.map(fmt_time),
        "cert_name": subject.as_ref().map(|s| mask_name(&s.cert_name)),
        "cert_no": subject.as_ref().map(|s| mask_cert_no(&s.cert_no)),
        "cert_type": subject.as_ref().map(|s| s.cert_type.clone()),
        "decision": checks_of(v.decision.as_deref()),
        "has_face": v.face_image_key.is_some(),
        "attempts": attempts.iter().map(|a| json!({
            "attempt": a.attempt,
            "issued_at": fmt_time(a.issued_at),
            "submitted_at": a.submitted_at.map(fmt_time),
            "outcome": a.outcome,
            "fail_reason": a.fail_reason,
            "decision_ms": a.decision_ms,
            "detail": checks_of(a.checks.as_deref()),
        })).collect::<Vec<_>>(),
        "billing": billing.iter().map(|b| json!({
            "event": b.event, "product": b.product, "day": b.day, "billed_at": fmt_time(b.billed_at),
        })).collect::<Vec<_>>(),
    }))
}

/// `GET /console/verifications/{certify_id}/face.jpg`: the kept face image, only where it was retained.
#[handler]
async fn face_image(
    Data(ctx): Data<&Arc<AppContext>>,
    op: Option<Operator>,
    Path(certify_id): Path<String>,
) -> Response {
    let Some(op) = op else {
        return problem(ctx, None, StatusCode::FORBIDDEN, "Not logged in. 未登录。");
    };
    let key = match ctx.operator.face_image_key(&certify_id).await {
        Ok(k) => k,
        Err(e) => return db_unavailable(ctx, &op, &e),
    };
    let Some(key) = key else {
        return problem(
            ctx,
            Some(&op),
            StatusCode::NOT_FOUND,
            "No face image is kept for this verification.",
        );
    };
    if let Err(e) = ctx
        .operator
        .audit_view(&certify_id, service::Actor::Console, "kept face image")
        .await
    {
        return db_unavailable(ctx, &op, &e);
    }
    match ctx.store.get(&key).await {
        Ok(Some(bytes)) => Response::builder()
            .content_type("image/jpeg")
            .header("Cache-Control", "no-store")
            .header("X-Content-Type-Options", "nosniff")
            .header("Content-Security-Policy", CSP)
            .body(bytes),
        Ok(None) => problem(
            ctx,
            Some(&op),
            StatusCode::NOT_FOUND,
            "The face image is gone (retention).",
        ),
        Err(e) => db_unavailable(ctx, &op, &e),
    }
}

#[derive(Deserialize)]
struct DeleteForm {
    csrf: Option<String>,
    confirm: Option<String>,
}

/// `POST /console/verifications/{certify_id}/delete`: deletes the verification's personal data once the operator
/// has ticked the confirmation.
#[handler]
async fn verification_delete(
    Data(ctx): Data<&Arc<AppContext>>,
    op: Option<Operator>,
    Path(certify_id): Path<String>,
    Form(f): Form<DeleteForm>,
) -> Response {
    let op = match checked_post(ctx, op, f.csrf.as_deref()) {
        Ok(op) => op,
        Err(r) => return r,
    };
    // Back to the verification, which then shows that its personal data is deleted.
    let back = format!(
        "/console/verifications?q={}",
        percent_encoding::utf8_percent_encode(&certify_id, percent_encoding::NON_ALPHANUMERIC)
    );
    if f.confirm.as_deref().and_then(crate::domain::yes_no::parse) != Some(true) {
        return problem(
            ctx,
            Some(&op),
            StatusCode::BAD_REQUEST,
            "Tick the confirmation to delete the personal data. 请勾选确认。",
        );
    }
    match ctx
        .operator
        .delete_verification(&certify_id, service::Actor::Console)
        .await
    {
        Ok(()) => redirect(&back),
        Err(service::Error::Unavailable(e)) => db_unavailable(ctx, &op, &e),
        Err(service::Error::Conflict(m)) => problem(ctx, Some(&op), StatusCode::CONFLICT, &m),
        Err(_) => problem(
            ctx,
            Some(&op),
            StatusCode::NOT_FOUND,
            "No such verification.",
        ),
    }
}

#[derive(Deserialize)]
struct BillingQuery {
    month: Option<String>,
    app_id: Option<String>,
}

impl BillingQuery {
    /// The month (`YYYY-MM`, default: the current one) and its filter.
    fn resolve(&self, ctx: &AppContext) -> Result<(String, service::BillingFilter), String> {
        let today = calendar(ctx).day_of(now(ctx));
        service::month_filter(self.month.as_deref(), &today, self.app_id.as_deref())
            .map_err(|e| e.to_string())
    }
}

/// `GET /console/billing?month=YYYY-MM`: totals per app, scene, product and event of a month.
#[handler]
async fn billing_page(
    Data(ctx): Data<&Arc<AppContext>>,
    op: Operator,
    Query(bq): Query<BillingQuery>,
) -> Response {
    let (month, filter) = match bq.resolve(ctx) {
        Ok(v) => v,
        Err(e) => return problem(ctx, Some(&op), StatusCode::BAD_REQUEST, &e),
    };
    let loaded = async {
        Ok::<_, service::Error>((
            ctx.operator.billing_daily(&filter).await?,
            ctx.operator.apps().await?,
            ctx.operator.scenes(None).await?,
        ))
    }
    .await;
    let (daily, apps, all_scenes) = match loaded {
        Ok(v) => v,
        Err(e) => return db_unavailable(ctx, &op, &e),
    };
    let names: BTreeMap<i64, String> = all_scenes
        .into_iter()
        .map(|s| (s.scene_id, s.name))
        .collect();
    let mut totals: BTreeMap<(String, Option<i64>, String, String), u64> = BTreeMap::new();
    for d in &daily {
        *totals
            .entry((
                d.app_id.clone(),
                d.scene_id,
                d.product.clone(),
                d.event.clone(),
            ))
            .or_default() += d.count;
    }
    let mut c = base(&op, "billing");
    c.insert("month", &month);
    c.insert("from_day", &filter.from_day);
    c.insert("calendar", &calendar(ctx).label());
    c.insert("to_day", &filter.to_day);
    c.insert("app_id", &filter.app_id);
    c.insert(
        "apps",
        &apps.iter().map(|a| a.app_id.clone()).collect::<Vec<_>>(),
    );
    c.insert(
        "rows",
        &totals
            .iter()
            .map(|((app, scene, product, event), n)| {
                json!({
                    "app_id": app,
                    "scene_id": scene,
                    "scene_name": scene.and_then(|s| names.get(&s)),
                    "product": product,
                    "event": event,
                    "count": n,
                })
            })
            .collect::<Vec<_>>(),
    );
    c.insert("total", &totals.values().sum::<u64>());
    c.insert(
        "csv_query",
        &format!(
            "month={}{}",
            month,
            filter
                .app_id
                .as_deref()
                .map(|a| format!(
                    "&app_id={}",
                    percent_encoding::utf8_percent_encode(a, percent_encoding::NON_ALPHANUMERIC)
                ))
                .unwrap_or_default()
        ),
    );
    render(ctx, StatusCode::OK, "console/billing.html", &c)
}

/// `GET /console/billing.csv?month=YYYY-MM`: the month's billing records, the same CSV as the admin API's export.
#[handler]
async fn billing_csv(
    Data(ctx): Data<&Arc<AppContext>>,
    op: Option<Operator>,
    Query(bq): Query<BillingQuery>,
) -> Response {
    let Some(op) = op else {
        return problem(ctx, None, StatusCode::FORBIDDEN, "Not logged in. 未登录。");
    };
    let (month, filter) = match bq.resolve(ctx) {
        Ok(v) => v,
        Err(e) => return problem(ctx, Some(&op), StatusCode::BAD_REQUEST, &e),
    };
    let mut out = Vec::new();
    if let Err(e) = ctx.operator.export_billing_csv(&filter, &mut out).await {
        return db_unavailable(ctx, &op, &e);
    }
    Response::builder()
        .content_type("text/csv; charset=utf-8")
        .header(
            "Content-Disposition",
            format!("attachment; filename=\"billing-{month}.csv\""),
        )
        .header("Cache-Control", "no-store")
        .header("X-Content-Type-Options", "nosniff")
        .body(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_consoles_own_notices_are_shown() {
        let ids = vec!["shop_1".to_string()];
        let verbs = ["created app ", "disabled app "];
        assert_eq!(
            known_notice(Some("created app shop_1"), &verbs, &ids),
            Some("created app shop_1")
        );
        assert_eq!(
            known_notice(Some("disabled app shop_1"), &verbs, &ids),
            Some("disabled app shop_1")
        );
        for planted in [
            "created app shop_2",
            "created app shop_1 — your key leaked, call 400-000-0000",
            "您的密钥已泄露，请立即拨打客服热线",
            "",
        ] {
            assert_eq!(known_notice(Some(planted), &verbs, &ids), None, "{planted}");
        }
        assert_eq!(known_notice(None, &verbs, &ids), None);
    }

    fn ctx_with(nav: &str) -> tera::Context {
        let mut c = tera::Context::new();
        c.insert("nav", nav);
        c.insert("csrf", "c0ffee");
        c
    }

    #[test]
    fn every_page_renders_and_escapes() {
        let t = crate::templates().unwrap();
        let stored = json!({"attempt": 1, "challenge": ["blink", "open_mouth"], "frames": 52,
            "decision": {"passed": false, "checks": [
                {"name": "face_match", "passed": false, "score": 41.25, "threshold": 70.0},
                {"name": "identity", "passed": true}], "match_score": 41.25, "identity_check": "authority"}});
        let check = checks_of(Some(&stored.to_string()));
        assert_eq!(check["checks"][1]["score"], Value::Null);
        assert_eq!(checks_of(Some("not json")), Value::Null);
        let mut c = ctx_with("search");
        c.insert("q", "<b>x</b>");
        c.insert("results", &vec![json!({"certify_id": "a", "app_id": "b", "outer_order_no": "o", "state": "passed", "created_at": "t"})]);
        c.insert(
            "detail",
            &json!({"certify_id": "cid1", "app_id": "app", "outer_order_no": "o<1>", "product": "FACE",
                "scene_id": 5, "scene_name": "s", "state": "failed", "passed": false, "fail_reason": "FACE_MISMATCH",
                "created_at": "t", "expires_at": "t", "decided_at": "t", "cert_name": "张**", "cert_no": "110105********1234",
                "cert_type": "IDENTITY_CARD", "decision": check, "has_face": true,
                "attempts": [{"attempt": 1, "issued_at": "t", "submitted_at": "t", "outcome": "failed",
                    "fail_reason": "FACE_MISMATCH", "decision_ms": 812, "detail": check}],
                "billing": []}),
        );
        let html = t.render("console/search.html", &c).unwrap();
        assert!(html.contains("&lt;b&gt;x&lt;&#x2F;b&gt;") && !html.contains("<b>x</b>"));
        assert!(html.contains("face_match") && html.contains("41.25") && html.contains("70"));
        assert!(html.contains("o&lt;1&gt;"));

        let mut c = ctx_with("overview");
        let w = json!({"total": 3, "passed": 1, "failed": 1, "undecided": 1, "pass_rate": 50.0, "p50_ms": 800,
            "p99_ms": 990, "decisions": 2, "reasons": [{"reason": "FACE_MISMATCH", "count": 1}]});
        c.insert("today", &w);
        c.insert("month", &w);
        c.insert("month_title", "30 days");
        c.insert("daily_chart", "<svg></svg>");
        c.insert("reasons_chart", "<svg></svg>");
        c.insert("scene_id", &Some(5));
        c.insert(
            "scenes",
            &vec![json!({"scene_id": 5, "name": "n", "app_id": "a"})],
        );
        let html = t.render("console/overview.html", &c).unwrap();
        assert!(html.contains("50%") && html.contains("990 ms") && html.contains("<svg></svg>"));
        assert!(html.contains(r#"<option value="5" selected>"#));

        let mut c = ctx_with("scenes");
        c.insert(
            "scenes",
            &vec![json!({"scene_id": 5, "app_id": "a", "name": "n", "product": "FACE", "match_far": null,
                "max_attempts": null, "retention_days": 0, "keep_photos": true, "liveness": "strict",
                "is_default": true, "created_at": "t"})],
        );
        c.insert("apps", &vec!["a"]);
        c.insert("products", &crate::domain::product::Product::codes());
        c.insert("liveness_levels", LIVENESS_LEVELS);
        let html = t.render("console/scenes.html", &c).unwrap();
        assert!(html.contains("0 d") && html.contains("<option selected>strict</option>"));

        let mut c = ctx_with("apps");
        c.insert("apps", &vec![json!({"app_id": "a b", "name": "n", "active": true, "status": "active", "bits": 2048,
            "return_urls": [], "created_at": "t"})]);
        c.insert("gateway_key", "-----BEGIN PUBLIC KEY-----");
        c.insert("form", &Value::Null);
        assert!(t
            .render("console/apps.html", &c)
            .unwrap()
            .contains("/console/apps/a%20b/disable"));

        let mut c = ctx_with("billing");
        c.insert("month", "2026-12");
        c.insert("from_day", "2026-12-01");
        c.insert("to_day", "2026-12-31");
        c.insert("calendar", "UTC+08:00");
        c.insert("app_id", &Value::Null);
        c.insert("apps", &vec!["a"]);
        c.insert("rows", &vec![json!({"app_id": "a", "scene_id": 5, "scene_name": "n", "product": "FACE", "event": "PASS", "count": 3})]);
        c.insert("total", &3);
        c.insert("csv_query", "month=2026-12");
        assert!(t
            .render("console/billing.html", &c)
            .unwrap()
            .contains("/console/billing.csv?month=2026-12"));

        let mut c = tera::Context::new();
        c.insert("enabled", &false);
        c.insert("error", &Value::Null);
        assert!(t
            .render("console/login.html", &c)
            .unwrap()
            .contains("no admin token is configured"));
    }
}
