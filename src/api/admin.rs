//! The admin API (`/admin/api/…`): reconciliation and detail queries (对账/明细) for operators, with bearer-token
//! auth. Handlers parse, call the operator's service, and map the result.
use std::sync::Arc;

use poem::Request;
use poem_openapi::auth::Bearer;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::registry::{MetaResponses, MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, OpenApiService, SecurityScheme};

use crate::billing::parse_day;
use crate::operator::{
    self, checked_filter, Attempt, BillingFilter, Verification, VerificationQuery,
};
use crate::AppContext;

/// Where the admin API is mounted.
pub const PREFIX: &str = "/admin/api";

/// The operator, authenticated by the admin token (`admin_token`, `SHIREN_ADMIN_TOKEN`).
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_admin")]
pub struct AdminAuth(());

/// The address failed admin-token attempts count under (unspecified when the connection has none, e.g. a socket).
pub fn client_ip(req: &Request) -> std::net::IpAddr {
    req.remote_addr()
        .as_socket_addr()
        .map(|a| a.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// An attempt with the admin token `given` from the client of `req`, decided and counted by the shared throttle
/// (the console's login and the admin API both come here); refusals are logged, as `what`'s, without the token.
pub async fn admin_token_attempt(
    ctx: &AppContext,
    req: &Request,
    given: &str,
    what: &'static str,
) -> Attempt {
    ctx.operator
        .admin_attempt(client_ip(req), given, what)
        .await
}

/// Why the admin token of a request was refused. The checker of [`AdminAuth`] returns it, and [`refusal`] turns it
/// into the documented 401 or 429.
#[derive(Debug, thiserror::Error)]
pub enum TokenRefused {
    #[error("a valid admin token is required (Authorization: Bearer <admin token>)")]
    Wrong,
    #[error("too many wrong admin tokens from this address; try again in {retry_after} s")]
    Locked { retry_after: i64 },
}

impl poem::error::ResponseError for TokenRefused {
    fn status(&self) -> poem::http::StatusCode {
        match self {
            TokenRefused::Wrong => poem::http::StatusCode::UNAUTHORIZED,
            TokenRefused::Locked { .. } => poem::http::StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn as_response(&self) -> poem::Response {
        use poem::IntoResponse;
        AdminError::from(self).into_response()
    }
}

async fn check_admin(req: &Request, bearer: Bearer) -> poem::Result<()> {
    let ctx = req.data::<Arc<AppContext>>().ok_or(TokenRefused::Wrong)?;
    match admin_token_attempt(ctx, req, &bearer.token, "admin API").await {
        Attempt::Valid => Ok(()),
        Attempt::Wrong => Err(TokenRefused::Wrong.into()),
        Attempt::Locked { retry_after } => Err(TokenRefused::Locked { retry_after }.into()),
    }
}

/// Stable error codes.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// A parameter is missing, malformed or out of range.
    InvalidParameter,
    /// No admin token, or a wrong one.
    Unauthorized,
    /// Too many wrong admin tokens from the address.
    TooManyFailures,
    /// No such object.
    NotFound,
    /// The verification's personal data was deleted before.
    AlreadyDeleted,
    /// The server could not answer (the database failed); retry later.
    SystemError,
}

/// An error the caller can act on: the body of every refusal of the admin API.
#[derive(Object)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

fn error_body(code: ErrorCode, message: impl Into<String>) -> Json<ErrorBody> {
    Json(ErrorBody {
        code,
        message: message.into(),
    })
}

/// A refusal, as every operation of the admin API documents it.
#[derive(ApiResponse)]
pub enum AdminError {
    /// A parameter is missing, malformed or out of range (`INVALID_PARAMETER`).
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// No admin token, or a wrong one (`UNAUTHORIZED`).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>, #[oai(header = "WWW-Authenticate")] String),
    /// Too many wrong admin tokens from this address (`TOO_MANY_FAILURES`); retry after `Retry-After` seconds.
    #[oai(status = 429)]
    TooManyFailures(Json<ErrorBody>, #[oai(header = "Retry-After")] i64),
    /// The database failed (`SYSTEM_ERROR`); retry later.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

fn bad(message: impl Into<String>) -> AdminError {
    AdminError::BadRequest(error_body(ErrorCode::InvalidParameter, message))
}

impl From<&TokenRefused> for AdminError {
    fn from(e: &TokenRefused) -> Self {
        match e {
            TokenRefused::Wrong => AdminError::Unauthorized(
                error_body(ErrorCode::Unauthorized, e.to_string()),
                "Bearer".into(),
            ),
            TokenRefused::Locked { retry_after } => AdminError::TooManyFailures(
                error_body(ErrorCode::TooManyFailures, e.to_string()),
                *retry_after,
            ),
        }
    }
}

impl From<operator::Error> for AdminError {
    fn from(e: operator::Error) -> Self {
        match e {
            operator::Error::Invalid(m)
            | operator::Error::NotFound(m)
            | operator::Error::Conflict(m) => bad(m),
            operator::Error::Unavailable(e) => {
                tracing::error!(error = %e, "admin query failed");
                AdminError::Unavailable(error_body(
                    ErrorCode::SystemError,
                    "the database is unavailable",
                ))
            }
        }
    }
}

/// The bad-request handler of the admin API: a request refused before its handler ran (a parameter that does not
/// parse or validate, a missing or wrong admin token, a locked-out address) gets the documented status and envelope
/// instead of poem's plain-text error.
pub fn refusal(err: poem::Error) -> AdminError {
    if let Some(t) = err.downcast_ref::<TokenRefused>() {
        return AdminError::from(t);
    }
    let status = err.status();
    if status == poem::http::StatusCode::UNAUTHORIZED {
        // No `Authorization: Bearer` header at all (poem-openapi's own refusal).
        return AdminError::from(&TokenRefused::Wrong);
    }
    if status.is_server_error() {
        tracing::error!(error = %err, "admin request failed before its handler");
        return AdminError::Unavailable(error_body(
            ErrorCode::SystemError,
            "the server could not answer; retry later",
        ));
    }
    bad(err.to_string())
}

/// What an admin operation answers: its own response `T`, or a refusal of a request that did not parse (see
/// [`refusal`]). Operations return `Result<Checked<T>, AdminError>`, so the refusals are documented by the `Err` side.
pub enum Checked<T> {
    Answer(T),
    Refused(AdminError),
}

impl<T> From<T> for Checked<T> {
    fn from(t: T) -> Self {
        Checked::Answer(t)
    }
}

impl<T: poem::IntoResponse> poem::IntoResponse for Checked<T> {
    fn into_response(self) -> poem::Response {
        match self {
            Checked::Answer(t) => t.into_response(),
            Checked::Refused(e) => e.into_response(),
        }
    }
}

impl<T: ApiResponse> ApiResponse for Checked<T> {
    const BAD_REQUEST_HANDLER: bool = true;

    fn meta() -> MetaResponses {
        T::meta()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn from_parse_request_error(err: poem::Error) -> Self {
        Checked::Refused(refusal(err))
    }
}

/// A verification, without personal data.
#[derive(Object)]
pub struct VerificationItem {
    pub certify_id: String,
    pub app_id: String,
    #[oai(nullable)]
    pub scene_id: Option<i64>,
    pub product: String,
    pub outer_order_no: String,
    /// `initialized`, `in_progress`, `passed`, `failed` or `expired`.
    pub state: String,
    #[oai(nullable)]
    pub passed: Option<bool>,
    #[oai(nullable)]
    pub fail_reason: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    #[oai(nullable)]
    pub decided_at: Option<i64>,
}

/// A page of verifications.
#[derive(Object)]
pub struct VerificationPage {
    pub items: Vec<VerificationItem>,
    /// Pass it as `cursor` for the next page; null on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// A billing record.
#[derive(Object)]
pub struct BillingItem {
    pub id: i64,
    /// Day in the billing calendar (`[billing] utc_offset`, default UTC), `YYYY-MM-DD`.
    pub day: String,
    pub billed_at: i64,
    pub app_id: String,
    #[oai(nullable)]
    pub scene_id: Option<i64>,
    pub product: String,
    /// `PASS` (FACE) or `CALL` (per-call products).
    pub event: String,
    pub certify_id: String,
    pub outer_order_no: String,
}

/// A page of billing records.
#[derive(Object)]
pub struct BillingPage {
    pub items: Vec<BillingItem>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// Billable events of one day, app, scene, product and event.
#[derive(Object)]
pub struct DailyItem {
    pub day: String,
    pub app_id: String,
    #[oai(nullable)]
    pub scene_id: Option<i64>,
    pub product: String,
    pub event: String,
    pub count: u64,
}

/// Daily totals and their sum.
#[derive(Object)]
pub struct DailyTotals {
    pub items: Vec<DailyItem>,
    pub total: u64,
}

/// A scene and its thresholds (unset: the server's setting).
#[derive(Object)]
pub struct SceneItem {
    pub scene_id: i64,
    pub app_id: String,
    pub name: String,
    pub product: String,
    #[oai(nullable)]
    pub match_far: Option<String>,
    #[oai(nullable)]
    pub max_attempts: Option<u32>,
    #[oai(nullable)]
    pub retention_days: Option<u32>,
    pub keep_photos: bool,
    /// Liveness strictness: `standard` or `strict` (unset: standard).
    #[oai(nullable)]
    pub liveness: Option<String>,
    pub is_default: bool,
}

/// The CSV export.
#[derive(ApiResponse)]
pub enum CsvExport {
    /// The billing records as CSV (UTF-8, header row first), as a download.
    #[oai(status = 200, content_type = "text/csv; charset=utf-8")]
    Csv(
        Binary<Vec<u8>>,
        #[oai(header = "Content-Disposition")] String,
    ),
}

/// One verification, or none.
#[derive(ApiResponse)]
pub enum VerificationLookup {
    /// The verification.
    #[oai(status = 200)]
    Found(Json<VerificationItem>),
    /// No verification has this certify_id (`NOT_FOUND`).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

/// What deleting a verification's personal data did.
#[derive(ApiResponse)]
pub enum Deletion {
    /// The name, ID number and kept images are deleted; the verdict and billing record stay.
    #[oai(status = 200)]
    Deleted(Json<DeletedItem>),
    /// No verification has this certify_id (`NOT_FOUND`).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// Its personal data was deleted before (`ALREADY_DELETED`).
    #[oai(status = 409)]
    AlreadyDeleted(Json<ErrorBody>),
}

/// A verification whose personal data is deleted.
#[derive(Object)]
pub struct DeletedItem {
    pub certify_id: String,
    pub deleted: bool,
}

/// An entry of the audit log.
#[derive(Object)]
pub struct AuditItem {
    /// Its place in the chain (1, 2, …).
    pub seq: i64,
    /// Unix seconds.
    pub at: i64,
    /// Who: `console`, `admin-api`, `cli`, `cloud-api:<app_id>` or `system`.
    pub actor: String,
    /// `verification.delete`, `retention.purge`, `keys.rotate` or `personal_data.view`.
    pub action: String,
    pub target: String,
    pub detail: String,
    /// SHA-256 (hex) of the entry before it and of this entry: `shiren audit verify` checks the chain.
    pub prev_hash: String,
    pub hash: String,
}

/// A page of the audit log, newest first.
#[derive(Object)]
pub struct AuditPage {
    pub items: Vec<AuditItem>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    pub next_before: Option<i64>,
}

const MAX_LIMIT: u32 = 500;

/// A day parameter, `YYYY-MM-DD`: documented as `format: date`, refused with the envelope when it is not one.
pub struct Day(String);

impl poem_openapi::types::Type for Day {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> std::borrow::Cow<'static, str> {
        "string_date".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format("string", "date")))
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(std::iter::once(self))
    }
}

impl poem_openapi::types::ParseFromParameter for Day {
    fn parse_from_parameter(value: &str) -> poem_openapi::types::ParseResult<Self> {
        parse_day(value)
            .map(Day)
            .ok_or_else(|| poem_openapi::types::ParseError::custom("not a day, YYYY-MM-DD"))
    }
}

fn limit_of(limit: Option<u32>) -> Result<u64, AdminError> {
    match limit {
        None => Ok(100),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(u64::from(n)),
        Some(_) => Err(bad(format!("limit must be 1 to {MAX_LIMIT}"))),
    }
}

fn day(d: Option<Day>) -> Option<String> {
    d.map(|d| d.0)
}

/// The checked filter of a billing report's parameters.
fn billing_filter(
    from: Option<Day>,
    to: Option<Day>,
    app_id: Option<String>,
    scene_id: Option<i64>,
    product: Option<String>,
) -> Result<BillingFilter, AdminError> {
    Ok(checked_filter(BillingFilter {
        from_day: day(from),
        to_day: day(to),
        app_id,
        scene_id,
        product,
    })?)
}

fn item(v: Verification, now: i64) -> VerificationItem {
    VerificationItem {
        state: v.state.at(now, v.expires_at).as_str().to_string(),
        certify_id: v.certify_id,
        app_id: v.app_id,
        scene_id: v.scene_id,
        product: v.product,
        outer_order_no: v.outer_order_no,
        passed: v.passed,
        fail_reason: v.fail_reason,
        created_at: v.created_at,
        decided_at: v.decided_at,
    }
}

/// The admin API.
pub struct AdminApi;

#[OpenApi]
impl AdminApi {
    /// Verifications created on the days `from`..=`to` (of the billing calendar, `[billing] utc_offset`), oldest first, by app, scene, product and outcome.
    #[oai(path = "/verifications", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn verifications(
        &self,
        _auth: AdminAuth,
        ctx: poem::web::Data<&Arc<AppContext>>,
        from: Query<Option<Day>>,
        to: Query<Option<Day>>,
        app_id: Query<Option<String>>,
        scene_id: Query<Option<i64>>,
        product: Query<Option<String>>,
        outcome: Query<Option<String>>,
        outer_order_no: Query<Option<String>>,
        cursor: Query<Option<String>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))] limit: Query<Option<u32>>,
    ) -> Result<Checked<Json<VerificationPage>>, AdminError> {
        let query = VerificationQuery {
            from_day: day(from.0),
            to_day: day(to.0),
            app_id: app_id.0,
            scene_id: scene_id.0,
            product: product.0,
            outcome: outcome.0,
            outer_order_no: outer_order_no.0,
            cursor: cursor.0,
            limit: limit_of(limit.0)?,
        };
        let (rows, next_cursor) = ctx.operator.verifications(query).await?;
        let now = ctx.operator.now();
        Ok(Json(VerificationPage {
            items: rows.into_iter().map(|v| item(v, now)).collect(),
            next_cursor,
        })
        .into())
    }

    /// Billing records of the days `from`..=`to` (billing calendar), in the order they were written.
    #[oai(path = "/billing/records", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn billing_records(
        &self,
        _auth: AdminAuth,
        ctx: poem::web::Data<&Arc<AppContext>>,
        from: Query<Option<Day>>,
        to: Query<Option<Day>>,
        app_id: Query<Option<String>>,
        scene_id: Query<Option<i64>>,
        product: Query<Option<String>>,
        cursor: Query<Option<String>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))] limit: Query<Option<u32>>,
    ) -> Result<Checked<Json<BillingPage>>, AdminError> {
        let filter = billing_filter(from.0, to.0, app_id.0, scene_id.0, product.0)?;
        let limit = limit_of(limit.0)?;
        let after = match cursor.0.as_deref() {
            None | Some("") => None,
            Some(c) => Some(
                c.parse::<i64>()
                    .map_err(|_| bad("cursor is not one this API handed out"))?,
            ),
        };
        let rows = ctx.operator.billing_records(&filter, after, limit).await?;
        let next_cursor = (rows.len() as u64 == limit)
            .then(|| rows.last().map(|r| r.id.to_string()))
            .flatten();
        Ok(Json(BillingPage {
            items: rows
                .into_iter()
                .map(|r| BillingItem {
                    id: r.id,
                    day: r.day,
                    billed_at: r.billed_at,
                    app_id: r.app_id,
                    scene_id: r.scene_id,
                    product: r.product,
                    event: r.event,
                    certify_id: r.certify_id,
                    outer_order_no: r.outer_order_no,
                })
                .collect(),
            next_cursor,
        })
        .into())
    }

    /// Billable events per day, app, scene, product and event of the days `from`..=`to` (billing calendar), with their sum.
    #[oai(path = "/billing/daily", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn billing_daily(
        &self,
        _auth: AdminAuth,
        ctx: poem::web::Data<&Arc<AppContext>>,
        from: Query<Option<Day>>,
        to: Query<Option<Day>>,
        app_id: Query<Option<String>>,
        scene_id: Query<Option<i64>>,
        product: Query<Option<String>>,
    ) -> Result<Checked<Json<DailyTotals>>, AdminError> {
        let filter = billing_filter(from.0, to.0, app_id.0, scene_id.0, product.0)?;
        let items: Vec<DailyItem> = ctx
            .operator
            .billing_daily(&filter)
            .await?
            .into_iter()
            .map(|t| DailyItem {
                day: t.day,
                app_id: t.app_id,
                scene_id: t.scene_id,
                product: t.product,
                event: t.event,
                count: t.count,
            })
            .collect();
        Ok(Json(DailyTotals {
            total: items.iter().map(|i| i.count).sum(),
            items,
        })
        .into())
    }

    /// The billing records of the days `from`..=`to` (billing calendar) as CSV with a header row.
    #[oai(path = "/billing/export.csv", method = "get")]
    async fn billing_export(
        &self,
        _auth: AdminAuth,
        ctx: poem::web::Data<&Arc<AppContext>>,
        from: Query<Day>,
        to: Query<Day>,
        app_id: Query<Option<String>>,
    ) -> Result<Checked<CsvExport>, AdminError> {
        let filter = checked_filter(BillingFilter {
            from_day: Some(from.0 .0),
            to_day: Some(to.0 .0),
            app_id: app_id.0,
            ..Default::default()
        })?;
        let mut out = Vec::new();
        ctx.operator.export_billing_csv(&filter, &mut out).await?;
        Ok(CsvExport::Csv(
            Binary(out),
            format!(
                "attachment; filename=\"billing-{}-{}.csv\"",
                filter.from_day.unwrap_or_default(),
                filter.to_day.unwrap_or_default()
            ),
        )
        .into())
    }

    /// Scenes, of one app or of all.
    #[oai(path = "/scenes", method = "get")]
    async fn scenes(
        &self,
        _auth: AdminAuth,
        ctx: poem::web::Data<&Arc<AppContext>>,
        app_id: Query<Option<String>>,
    ) -> Result<Checked<Json<Vec<SceneItem>>>, AdminError> {
        Ok(Json(
            ctx.operator
                .scenes(app_id.0.as_deref())
                .await?
                .into_iter()
                .map(|s| SceneItem {
                    scene_id: s.scene_id,
                    app_id: s.app_id,
                    name: s.name,
                    product: s.product,
                    match_far: s.match_far,
                    max_attempts: s.max_attempts,
                    retention_days: s.retention_days,
                    keep_photos: s.keep_photos,
                    liveness: s.liveness,
                    is_default: s.is_default,
                })
                .collect::<Vec<_>>(),
        )
        .into())
    }

    /// One verification.
    #[oai(path = "/verifications/:certify_id", method = "get")]
    async fn verification(
        &self,
        _auth: AdminAuth,
        ctx: poem::web::Data<&Arc<AppContext>>,
        certify_id: Path<String>,
    ) -> Result<Checked<VerificationLookup>, AdminError> {
        let Some(v) = ctx.operator.verification(&certify_id.0).await? else {
            return Ok(VerificationLookup::NotFound(error_body(
                ErrorCode::NotFound,
                "no such verification",
            ))
            .into());
        };
        Ok(VerificationLookup::Found(Json(item(v, ctx.operator.now()))).into())
    }

    /// Deletes a verification's personal data on the merchant's instruction: its name, ID number and kept images.
    /// The verdict, its checks and the billing record stay (reconciliation still adds up), and the audit log
    /// records the deletion.
    #[oai(path = "/verifications/:certify_id", method = "delete")]
    async fn delete_verification(
        &self,
        _auth: AdminAuth,
        ctx: poem::web::Data<&Arc<AppContext>>,
        certify_id: Path<String>,
    ) -> Result<Checked<Deletion>, AdminError> {
        match ctx
            .operator
            .delete_verification(&certify_id.0, operator::Actor::AdminApi)
            .await
        {
            Ok(()) => Ok(Deletion::Deleted(Json(DeletedItem {
                certify_id: certify_id.0,
                deleted: true,
            }))
            .into()),
            Err(operator::Error::NotFound(m)) => {
                Ok(Deletion::NotFound(error_body(ErrorCode::NotFound, m)).into())
            }
            Err(operator::Error::Conflict(m)) => {
                Ok(Deletion::AlreadyDeleted(error_body(ErrorCode::AlreadyDeleted, m)).into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The audit log, newest first: deletions, purges, key rotations and operators' views of personal data.
    #[oai(path = "/audit", method = "get")]
    async fn audit(
        &self,
        _auth: AdminAuth,
        ctx: poem::web::Data<&Arc<AppContext>>,
        /// Entries before this `seq` (the `next_before` of the previous page); default the newest.
        #[oai(validator(minimum(value = "1")))]
        before: Query<Option<i64>>,
        /// Entries per page, 1–500 (default 100).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
    ) -> Result<Checked<Json<AuditPage>>, AdminError> {
        let limit = limit.0.unwrap_or(100);
        let entries = ctx
            .operator
            .audit_entries(before.0, u64::from(limit))
            .await?;
        let next_before = (entries.len() == limit as usize)
            .then(|| entries.last().map(|e| e.seq))
            .flatten()
            .filter(|seq| *seq > 1);
        Ok(Json(AuditPage {
            items: entries
                .into_iter()
                .map(|e| AuditItem {
                    seq: e.seq,
                    at: e.record.at,
                    actor: e.record.actor,
                    action: e.record.action.as_str().to_string(),
                    target: e.record.target,
                    detail: e.record.detail,
                    prev_hash: e.prev_hash,
                    hash: e.hash,
                })
                .collect(),
            next_before,
        })
        .into())
    }
}

/// The admin API service, to be nested at [`PREFIX`].
pub fn service() -> OpenApiService<AdminApi, ()> {
    OpenApiService::new(AdminApi, "shiren admin API", env!("CARGO_PKG_VERSION"))
        .description("Reconciliation and detail queries (对账/明细) of shiren: verifications, billing records, daily totals and CSV export; deletion of a verification's personal data on instruction, and the audit log. Authenticate with `Authorization: Bearer <admin token>`.")
        .server(PREFIX)
}

/// The OpenAPI document of the admin API (the one committed under `openapi/`).
pub fn spec_json() -> String {
    service().spec()
}
