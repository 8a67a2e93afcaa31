//! Verifications and the certify tokens of the hosted page.
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set, TransactionTrait,
};

use super::entities::{certify_token, verification};
use crate::domain::request::{InitializeRequest, ReserveStrategy};
use crate::domain::seal::{KeyRing, OpenError};
use crate::domain::state::{Event, State, Transition};

/// A stored verification, without personal data (that stays in the database until a decision needs it).
#[derive(Clone, Debug)]
pub struct Verification {
    pub certify_id: String,
    pub app_id: String,
    pub outer_order_no: String,
    pub request_digest: String,
    pub return_url: String,
    pub reserve: ReserveStrategy,
    /// The stored state; use [`State::at`] for the state at a given time.
    pub state: State,
    pub passed: Option<bool>,
    pub fail_reason: Option<String>,
    pub identity_info: String,
    pub material_info: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub decided_at: Option<i64>,
    /// The decision's checks and scores (JSON), once decided by the hosted flow.
    pub decision: Option<String>,
    /// The object-store key of the kept face image (only when the merchant asked to keep it).
    pub face_image_key: Option<String>,
    /// The scene the verification belongs to (none for verifications older than scenes).
    pub scene_id: Option<i64>,
    /// Product code (`biz_code` of the gateway: `FACE`).
    pub product: String,
    /// `alipay` (the gateway) or `cloud` (the cloud API).
    pub api: String,
    /// Where the merchant wants to hear that the verification finished (cloud API).
    pub callback_url: Option<String>,
    /// When its personal data was erased.
    pub erased_at: Option<i64>,
    /// When the merchant first read its result.
    pub result_read_at: Option<i64>,
    /// When the person agreed on the hosted page, and to which text.
    pub consent_at: Option<i64>,
    pub consent_version: Option<String>,
}

fn to_domain(m: verification::Model) -> Result<Verification, DbErr> {
    Ok(Verification {
        state: State::parse(&m.state).ok_or_else(|| {
            DbErr::Custom(format!("unknown state {} of {}", m.state, m.certify_id))
        })?,
        reserve: ReserveStrategy::parse(&m.face_reserve_strategy)
            .unwrap_or(ReserveStrategy::Reserve),
        certify_id: m.certify_id,
        app_id: m.app_id,
        outer_order_no: m.outer_order_no,
        request_digest: m.request_digest,
        return_url: m.return_url,
        passed: m.passed,
        fail_reason: m.fail_reason,
        identity_info: m.identity_info,
        material_info: m.material_info,
        created_at: m.created_at,
        expires_at: m.expires_at,
        decided_at: m.decided_at,
        decision: m.decision,
        face_image_key: m.face_image_key,
        scene_id: m.scene_id,
        product: m.biz_code,
        api: m.api,
        callback_url: m.callback_url,
        erased_at: m.erased_at,
        result_read_at: m.result_read_at,
        consent_at: m.consent_at,
        consent_version: m.consent_version,
    })
}

/// The sealing context of a personal column of a verification: the column and the row, so that a sealed value
/// copied into another row does not open.
fn context(column: &str, certify_id: &str) -> String {
    format!("verifications.{column}|{certify_id}")
}

/// The blind-index purpose of ID numbers (shared with the registry, so one number has one index).
pub const CERT_NO_PURPOSE: &str = "cert_no";

/// The form of an ID number that is indexed: trimmed, with an upper-case check letter.
pub fn index_form(cert_no: &str) -> String {
    cert_no.trim().to_ascii_uppercase()
}

fn opened(r: Result<String, OpenError>, certify_id: &str) -> Result<String, DbErr> {
    r.map_err(|e| DbErr::Custom(format!("verification {certify_id}: {e}")))
}

/// What initialize stores.
pub struct NewVerification<'a> {
    /// The keys that seal the personal values.
    pub keys: &'a KeyRing,
    pub certify_id: &'a str,
    pub app_id: &'a str,
    pub request: &'a InitializeRequest,
    pub contrast_picture_key: Option<String>,
    pub scene_id: Option<i64>,
    pub now: i64,
    pub expires_at: i64,
    /// `alipay` or `cloud`.
    pub api: &'static str,
    /// The merchant's callback URL and token (cloud API).
    pub callback: Option<(String, Option<String>)>,
}

/// The result of storing a new verification.
pub enum InsertOutcome {
    Inserted,
    /// The app already has a verification with this `outer_order_no` (possibly inserted concurrently).
    OrderExists(Box<Verification>),
}

fn new_model(new: NewVerification<'_>) -> verification::ActiveModel {
    let r = new.request;
    let keys = new.keys;
    let cert_no = r.cert_no.expose();
    let (callback_url, callback_token) = match new.callback {
        Some((u, t)) => (Some(u), t),
        None => (None, None),
    };
    verification::ActiveModel {
        certify_id: Set(new.certify_id.to_string()),
        app_id: Set(new.app_id.to_string()),
        outer_order_no: Set(r.outer_order_no.clone()),
        biz_code: Set(r.biz_code.clone()),
        request_digest: Set(r.digest(keys)),
        cert_type: Set(r.cert_type.clone()),
        cert_name: Set(keys.seal_text(&context("cert_name", new.certify_id), r.cert_name.expose())),
        cert_no: Set(keys.seal_text(&context("cert_no", new.certify_id), cert_no)),
        cert_no_index: Set(
            (!cert_no.is_empty()).then(|| keys.index(CERT_NO_PURPOSE, &index_form(cert_no)))
        ),
        return_url: Set(r.return_url.clone()),
        face_reserve_strategy: Set(r.reserve.as_str().into()),
        contrast_picture_key: Set(new.contrast_picture_key),
        state: Set(State::Initialized.as_str().into()),
        passed: Set(None),
        fail_reason: Set(None),
        identity_info: Set("{}".into()),
        material_info: Set("{}".into()),
        created_at: Set(new.now),
        updated_at: Set(new.now),
        expires_at: Set(new.expires_at),
        decided_at: Set(None),
        decision: Set(None),
        face_image_key: Set(None),
        scene_id: Set(new.scene_id),
        callback_url: Set(callback_url),
        callback_token: Set(callback_token),
        api: Set(new.api.to_string()),
        erased_at: Set(None),
        result_read_at: Set(None),
        consent_at: Set(None),
        consent_version: Set(None),
    }
}

pub async fn insert(
    db: &DatabaseConnection,
    new: NewVerification<'_>,
) -> Result<InsertOutcome, DbErr> {
    let (app_id, order) = (new.app_id.to_string(), new.request.outer_order_no.clone());
    let model = new_model(new);
    match verification::Entity::insert(model)
        .exec_without_returning(db)
        .await
    {
        Ok(_) => Ok(InsertOutcome::Inserted),
        Err(e) if super::is_unique_violation(&e) => order_exists(db, &app_id, &order, e).await,
        Err(e) => Err(e),
    }
}

async fn order_exists(
    db: &DatabaseConnection,
    app_id: &str,
    order: &str,
    e: DbErr,
) -> Result<InsertOutcome, DbErr> {
    match find_by_order(db, app_id, order).await? {
        Some(existing) => Ok(InsertOutcome::OrderExists(Box::new(existing))),
        None => Err(e),
    }
}

/// Stores a verification that was decided at once (the server-side products), with its verdict and billing record,
/// in one transaction: either all of it exists or none.
pub async fn insert_decided(
    db: &DatabaseConnection,
    new: NewVerification<'_>,
    verdict: Verdict<'_>,
) -> Result<InsertOutcome, DbErr> {
    let (app_id, order, now) = (
        new.app_id.to_string(),
        new.request.outer_order_no.clone(),
        new.now,
    );
    let mut model = new_model(new);
    let state = if verdict.passed {
        State::Passed
    } else {
        State::Failed
    };
    model.state = Set(state.as_str().into());
    model.passed = Set(Some(verdict.passed));
    model.fail_reason = Set(verdict.fail_reason.map(str::to_string));
    model.decision = Set(Some(verdict.decision_json.to_string()));
    model.identity_info = Set(verdict.identity_info.to_string());
    model.material_info = Set(verdict.material_info.to_string());
    model.face_image_key = Set(verdict.face_image_key.map(str::to_string));
    model.decided_at = Set(Some(now));
    let txn = db.begin().await?;
    match verification::Entity::insert(model)
        .exec_without_returning(&txn)
        .await
    {
        Ok(_) => {}
        Err(e) if super::is_unique_violation(&e) => {
            txn.rollback().await?;
            return order_exists(db, &app_id, &order, e).await;
        }
        Err(e) => return Err(e),
    }
    if let Some(event) = &verdict.billing {
        if !super::billing::insert(&txn, verdict.certify_id, event, now).await? {
            txn.rollback().await?;
            return Err(DbErr::Custom(format!(
                "{} already has a {} billing record",
                verdict.certify_id, event.event
            )));
        }
    }
    txn.commit().await?;
    Ok(InsertOutcome::Inserted)
}

pub async fn find(
    db: &DatabaseConnection,
    certify_id: &str,
) -> Result<Option<Verification>, DbErr> {
    verification::Entity::find_by_id(certify_id.to_string())
        .one(db)
        .await?
        .map(to_domain)
        .transpose()
}

pub async fn find_by_order(
    db: &DatabaseConnection,
    app_id: &str,
    outer_order_no: &str,
) -> Result<Option<Verification>, DbErr> {
    verification::Entity::find()
        .filter(verification::Column::AppId.eq(app_id))
        .filter(verification::Column::OuterOrderNo.eq(outer_order_no))
        .one(db)
        .await?
        .map(to_domain)
        .transpose()
}

/// Counts the verifications of an app (tests check that failures leave nothing behind).
pub async fn count_for_app(db: &DatabaseConnection, app_id: &str) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    verification::Entity::find()
        .filter(verification::Column::AppId.eq(app_id))
        .count(db)
        .await
}

/// Moves a verification from `from` to `to` and stores its page token, in one transaction. Returns false (and
/// changes nothing) when the verification is no longer in state `from` (a concurrent change won).
///
/// A verification has one page token: storing the same token again only moves its expiry to `token_expires_at`
/// when that is later, and keeps its browser session. A different token (the server's secret changed) replaces
/// the unopened tokens of the verification and takes over the session of a live opened one, so a second browser
/// is refused there too.
pub async fn open_page(
    db: &DatabaseConnection,
    certify_id: &str,
    from: State,
    to: State,
    token_hash: &str,
    now: i64,
    token_expires_at: i64,
) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    let updated = verification::Entity::update_many()
        .col_expr(verification::Column::State, Expr::value(to.as_str()))
        .col_expr(verification::Column::UpdatedAt, Expr::value(now))
        .filter(verification::Column::CertifyId.eq(certify_id))
        .filter(verification::Column::State.eq(from.as_str()))
        .exec(&txn)
        .await?;
    if updated.rows_affected != 1 {
        txn.rollback().await?;
        return Ok(false);
    }
    let existing = certify_token::Entity::find_by_id(token_hash.to_string())
        .one(&txn)
        .await?;
    match existing {
        Some(t) if t.certify_id == certify_id => {
            if t.expires_at < token_expires_at {
                certify_token::Entity::update_many()
                    .col_expr(
                        certify_token::Column::ExpiresAt,
                        Expr::value(token_expires_at),
                    )
                    .filter(certify_token::Column::TokenHash.eq(token_hash))
                    .exec(&txn)
                    .await?;
            }
        }
        Some(_) => {
            txn.rollback().await?;
            return Err(DbErr::Custom(
                "a page token hash belongs to another verification".into(),
            ));
        }
        None => {
            let others = certify_token::Entity::find()
                .filter(certify_token::Column::CertifyId.eq(certify_id))
                .all(&txn)
                .await?;
            let session = others
                .iter()
                .filter(|t| t.session_hash.is_some() && t.expires_at > now)
                .max_by_key(|t| t.expires_at);
            let (session_hash, used_at) = match session {
                Some(t) => (t.session_hash.clone(), t.used_at.or(Some(now))),
                None => (None, None),
            };
            certify_token::Entity::delete_many()
                .filter(certify_token::Column::CertifyId.eq(certify_id))
                .filter(certify_token::Column::SessionHash.is_null())
                .exec(&txn)
                .await?;
            certify_token::Entity::insert(certify_token::ActiveModel {
                token_hash: Set(token_hash.to_string()),
                certify_id: Set(certify_id.to_string()),
                created_at: Set(now),
                expires_at: Set(token_expires_at),
                used_at: Set(used_at),
                session_hash: Set(session_hash),
            })
            .exec_without_returning(&txn)
            .await?;
        }
    }
    txn.commit().await?;
    Ok(true)
}

/// Deletes the certify tokens of verifications that expired before `before` (a token never outlives its
/// verification). Returns how many were deleted.
pub async fn purge_tokens(db: &DatabaseConnection, before: i64) -> Result<u64, DbErr> {
    use sea_orm::sea_query::Query;
    let verification_expired = Query::select()
        .expr(Expr::val(1))
        .from(verification::Entity)
        .and_where(
            Expr::col((verification::Entity, verification::Column::CertifyId))
                .equals((certify_token::Entity, certify_token::Column::CertifyId)),
        )
        .and_where(Expr::col((verification::Entity, verification::Column::ExpiresAt)).lt(before))
        .to_owned();
    let r = certify_token::Entity::delete_many()
        .filter(certify_token::Column::ExpiresAt.lt(before))
        .filter(Expr::exists(verification_expired))
        .exec(db)
        .await?;
    Ok(r.rows_affected)
}

/// The number of certify tokens stored for a verification.
pub async fn count_tokens(db: &DatabaseConnection, certify_id: &str) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    certify_token::Entity::find()
        .filter(certify_token::Column::CertifyId.eq(certify_id))
        .count(db)
        .await
}

/// A certify token as stored.
#[derive(Clone, Debug)]
pub struct CertifyToken {
    pub certify_id: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// Hash of the browser session the token was bound to on first use.
    pub session_hash: Option<String>,
}

/// The person a verification is about, read only when a decision needs it.
#[derive(Clone)]
pub struct Subject {
    pub cert_type: String,
    pub cert_no: String,
    pub cert_name: String,
    pub contrast_picture_key: Option<String>,
}

pub async fn find_subject(
    db: &DatabaseConnection,
    keys: &KeyRing,
    certify_id: &str,
) -> Result<Option<Subject>, DbErr> {
    let Some(m) = verification::Entity::find_by_id(certify_id.to_string())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(Subject {
        cert_type: m.cert_type,
        // A row from before sealing opens as it is, until the start-up pass seals it.
        cert_no: opened(
            open_or_clear(keys, &context("cert_no", certify_id), &m.cert_no),
            certify_id,
        )?,
        cert_name: opened(
            open_or_clear(keys, &context("cert_name", certify_id), &m.cert_name),
            certify_id,
        )?,
        contrast_picture_key: m.contrast_picture_key,
    }))
}

/// A verification whose personal values are not (all) sealed under the current key.
pub struct StaleSubject {
    certify_id: String,
    cert_name: String,
    cert_no: String,
    cert_no_index: Option<String>,
}

impl StaleSubject {
    pub fn certify_id(&self) -> &str {
        &self.certify_id
    }
}

/// Up to `limit` verifications after `after` (by certify_id) whose name or number is clear or sealed under an older
/// key.
pub async fn stale_subjects(
    db: &DatabaseConnection,
    keys: &KeyRing,
    after: &str,
    limit: u64,
) -> Result<Vec<StaleSubject>, DbErr> {
    use sea_orm::{Condition, QueryOrder, QuerySelect};
    let id = keys.current().id();
    Ok(verification::Entity::find()
        .filter(verification::Column::CertifyId.gt(after))
        .filter(
            Condition::any()
                .add(super::not_current(verification::Column::CertName, id))
                .add(super::not_current(verification::Column::CertNo, id)),
        )
        .order_by_asc(verification::Column::CertifyId)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(|m| StaleSubject {
            certify_id: m.certify_id,
            cert_name: m.cert_name,
            cert_no: m.cert_no,
            cert_no_index: m.cert_no_index,
        })
        .collect())
}

/// How many verifications' names or numbers are clear or sealed under an older key.
pub async fn count_stale_subjects(db: &DatabaseConnection, keys: &KeyRing) -> Result<u64, DbErr> {
    use sea_orm::{Condition, PaginatorTrait};
    let id = keys.current().id();
    verification::Entity::find()
        .filter(
            Condition::any()
                .add(super::not_current(verification::Column::CertName, id))
                .add(super::not_current(verification::Column::CertNo, id)),
        )
        .count(db)
        .await
}

/// How many kept images (face images and merchants' pictures) verifications refer to.
pub async fn count_images(db: &DatabaseConnection) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    let faces = verification::Entity::find()
        .filter(verification::Column::FaceImageKey.is_not_null())
        .count(db)
        .await?;
    let pictures = verification::Entity::find()
        .filter(verification::Column::ContrastPictureKey.is_not_null())
        .count(db)
        .await?;
    Ok(faces + pictures)
}

/// A stored value in clear, whether it is sealed (under any key of the ring) or still clear from before sealing.
fn open_or_clear(keys: &KeyRing, context: &str, stored: &str) -> Result<String, OpenError> {
    match keys.open_text(context, stored) {
        Err(OpenError::NotSealed) => Ok(stored.to_string()),
        other => other,
    }
}

/// Seals a stale verification's values under the current key (and re-indexes its number). False when the row
/// changed meanwhile (another instance resealed it, or it was purged): nothing is written then.
pub async fn reseal_subject(
    db: &DatabaseConnection,
    keys: &KeyRing,
    row: &StaleSubject,
) -> Result<bool, DbErr> {
    let id = &row.certify_id;
    let name = opened(
        open_or_clear(keys, &context("cert_name", id), &row.cert_name),
        id,
    )?;
    let number = opened(
        open_or_clear(keys, &context("cert_no", id), &row.cert_no),
        id,
    )?;
    let index = (!number.is_empty()).then(|| keys.index(CERT_NO_PURPOSE, &index_form(&number)));
    let mut q = verification::Entity::update_many()
        .col_expr(
            verification::Column::CertName,
            Expr::value(keys.seal_text(&context("cert_name", id), &name)),
        )
        .col_expr(
            verification::Column::CertNo,
            Expr::value(keys.seal_text(&context("cert_no", id), &number)),
        )
        .col_expr(verification::Column::CertNoIndex, Expr::value(index))
        .filter(verification::Column::CertifyId.eq(id.as_str()))
        .filter(verification::Column::CertName.eq(row.cert_name.as_str()))
        .filter(verification::Column::CertNo.eq(row.cert_no.as_str()));
    q = match &row.cert_no_index {
        Some(i) => q.filter(verification::Column::CertNoIndex.eq(i.as_str())),
        None => q.filter(verification::Column::CertNoIndex.is_null()),
    };
    Ok(q.exec(db).await?.rows_affected == 1)
}

/// The object-store keys of every kept image (face images, merchants' pictures) after `after` (by certify_id),
/// up to `limit` verifications: for the pass that seals or reseals objects.
pub async fn image_keys_after(
    db: &DatabaseConnection,
    after: &str,
    limit: u64,
) -> Result<Vec<(String, Vec<String>)>, DbErr> {
    use sea_orm::{Condition, QueryOrder, QuerySelect};
    Ok(verification::Entity::find()
        .filter(verification::Column::CertifyId.gt(after))
        .filter(
            Condition::any()
                .add(verification::Column::FaceImageKey.is_not_null())
                .add(verification::Column::ContrastPictureKey.is_not_null()),
        )
        .order_by_asc(verification::Column::CertifyId)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(|m| {
            let keys = [m.face_image_key, m.contrast_picture_key]
                .into_iter()
                .flatten()
                .collect();
            (m.certify_id, keys)
        })
        .collect())
}

/// Binds an unused token to a browser session. Returns false when the token was already bound (first use won).
pub async fn bind_token_session(
    db: &DatabaseConnection,
    token_hash: &str,
    session_hash: &str,
    now: i64,
) -> Result<bool, DbErr> {
    let r = certify_token::Entity::update_many()
        .col_expr(
            certify_token::Column::SessionHash,
            Expr::value(session_hash),
        )
        .col_expr(certify_token::Column::UsedAt, Expr::value(now))
        .filter(certify_token::Column::TokenHash.eq(token_hash))
        .filter(certify_token::Column::SessionHash.is_null())
        .exec(db)
        .await?;
    Ok(r.rows_affected == 1)
}

/// What a final decision writes onto its verification.
pub struct Verdict<'a> {
    pub certify_id: &'a str,
    pub passed: bool,
    pub fail_reason: Option<&'a str>,
    pub decision_json: &'a str,
    pub identity_info: &'a str,
    pub material_info: &'a str,
    pub face_image_key: Option<&'a str>,
    /// The billable event of this verdict, written in the same transaction.
    pub billing: Option<super::billing::BillingEvent>,
    /// The `passed` value (the cloud API's SubCode) a callback of this verdict carries; a delivery is queued in
    /// the same transaction when the verification has a callback URL.
    pub callback_code: &'a str,
}

/// Records an attempt's outcome and, when final, the verdict of a verification in progress, in one transaction
/// (the move in progress → passed/failed of [`Transition::of`]). Returns false (and changes nothing) when the
/// attempt was already submitted or the verification is no longer in progress.
pub async fn record_attempt(
    db: &DatabaseConnection,
    attempt: super::attempts::AttemptOutcome<'_>,
    verdict: Option<Verdict<'_>>,
    now: i64,
) -> Result<bool, DbErr> {
    let verdict = match verdict {
        Some(v) => match Transition::of(
            State::InProgress,
            i64::MAX,
            now,
            Event::Decide { passed: v.passed },
        ) {
            Ok(t) => Some((t, v)),
            Err(_) => return Ok(false),
        },
        None => None,
    };
    record_attempt_to(db, attempt, verdict, now).await
}

/// Records an attempt's outcome and, when final, the verdict with the move the state machine chose, in one
/// transaction: the state is written as a compare-and-set on the transition's `from` (and on the expiry). Returns
/// false (and changes nothing) when the attempt was already submitted or the verification has moved on.
pub async fn record_attempt_to(
    db: &DatabaseConnection,
    attempt: super::attempts::AttemptOutcome<'_>,
    verdict: Option<(Transition, Verdict<'_>)>,
    now: i64,
) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    if !super::attempts::record_outcome(&txn, &attempt, now).await? {
        txn.rollback().await?;
        return Ok(false);
    }
    if let Some((transition, v)) = verdict {
        let r = verification::Entity::update_many()
            .col_expr(
                verification::Column::State,
                Expr::value(transition.to.as_str()),
            )
            .col_expr(verification::Column::Passed, Expr::value(v.passed))
            .col_expr(
                verification::Column::FailReason,
                Expr::value(v.fail_reason.map(str::to_string)),
            )
            .col_expr(verification::Column::Decision, Expr::value(v.decision_json))
            .col_expr(
                verification::Column::IdentityInfo,
                Expr::value(v.identity_info),
            )
            .col_expr(
                verification::Column::MaterialInfo,
                Expr::value(v.material_info),
            )
            .col_expr(
                verification::Column::FaceImageKey,
                Expr::value(v.face_image_key.map(str::to_string)),
            )
            .col_expr(verification::Column::DecidedAt, Expr::value(now))
            .col_expr(verification::Column::UpdatedAt, Expr::value(now))
            .filter(verification::Column::CertifyId.eq(v.certify_id))
            .filter(verification::Column::State.eq(transition.from.as_str()))
            .filter(verification::Column::ExpiresAt.gt(now))
            .exec(&txn)
            .await?;
        if r.rows_affected != 1 {
            txn.rollback().await?;
            return Ok(false);
        }
        let model = verification::Entity::find_by_id(v.certify_id.to_string())
            .one(&txn)
            .await?;
        if let Some(url) = model.as_ref().and_then(|m| m.callback_url.as_deref()) {
            let token = model.as_ref().and_then(|m| m.callback_token.as_deref());
            super::callbacks::enqueue(&txn, v.certify_id, url, token, v.callback_code).await?;
        }
        if let Some(event) = &v.billing {
            if !super::billing::insert(&txn, v.certify_id, event, now).await? {
                // Only one verdict can move a verification out of progress, so this cannot happen; refuse to
                // decide rather than bill twice.
                txn.rollback().await?;
                return Err(DbErr::Custom(format!(
                    "{} already has a {} billing record",
                    v.certify_id, event.event
                )));
            }
        }
    }
    txn.commit().await?;
    Ok(true)
}

pub async fn find_token(
    db: &DatabaseConnection,
    token_hash: &str,
) -> Result<Option<CertifyToken>, DbErr> {
    Ok(certify_token::Entity::find_by_id(token_hash.to_string())
        .one(db)
        .await?
        .map(|m| CertifyToken {
            certify_id: m.certify_id,
            expires_at: m.expires_at,
            used_at: m.used_at,
            session_hash: m.session_hash,
        }))
}

/// Which scenes' verifications a query covers.
pub enum Scenes {
    Only(Vec<i64>),
    /// Every verification not in these scenes, and those without a scene.
    Except(Vec<i64>),
}

/// Verifications whose personal data is not erased yet, decided or expired before `before`: up to `limit` of their
/// certify_ids (for the retention purge).
pub async fn unerased_older_than(
    db: &DatabaseConnection,
    before: i64,
    scenes: &Scenes,
    limit: u64,
) -> Result<Vec<String>, DbErr> {
    use sea_orm::{Condition, QuerySelect};
    let q = match scenes {
        Scenes::Only(ids) => verification::Entity::find()
            .filter(verification::Column::SceneId.is_in(ids.iter().copied())),
        Scenes::Except(ids) if ids.is_empty() => verification::Entity::find(),
        Scenes::Except(ids) => verification::Entity::find().filter(
            Condition::any()
                .add(verification::Column::SceneId.is_null())
                .add(verification::Column::SceneId.is_not_in(ids.iter().copied())),
        ),
    };
    q.filter(verification::Column::ErasedAt.is_null())
        .filter(
            Condition::any()
                .add(verification::Column::DecidedAt.lt(before))
                .add(verification::Column::ExpiresAt.lt(before)),
        )
        .select_only()
        .column(verification::Column::CertifyId)
        .limit(limit)
        .into_tuple::<String>()
        .all(db)
        .await
}

/// What erasing a verification's personal data found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Erasure {
    /// Erased now; these objects (its kept images) are to be deleted from the store.
    Erased {
        objects: Vec<String>,
    },
    /// Its personal data was erased before.
    AlreadyErased,
    NotFound,
}

/// Erases a verification's personal data: name, number, its index and the keys of its kept images (which the
/// caller deletes from the store). The verdict, its checks and the billing record stay; an undecided verification
/// ends (it can no longer be decided without whom it verifies). Exactly one of several concurrent calls erases.
pub async fn erase(db: &DatabaseConnection, certify_id: &str, now: i64) -> Result<Erasure, DbErr> {
    let Some(m) = verification::Entity::find_by_id(certify_id.to_string())
        .one(db)
        .await?
    else {
        return Ok(Erasure::NotFound);
    };
    if m.erased_at.is_some() {
        return Ok(Erasure::AlreadyErased);
    }
    let objects: Vec<String> = [m.face_image_key, m.contrast_picture_key]
        .into_iter()
        .flatten()
        .collect();
    let erased = verification::Entity::update_many()
        .col_expr(verification::Column::CertName, Expr::value(""))
        .col_expr(verification::Column::CertNo, Expr::value(""))
        .col_expr(
            verification::Column::CertNoIndex,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            verification::Column::FaceImageKey,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            verification::Column::ContrastPictureKey,
            Expr::value(Option::<String>::None),
        )
        .col_expr(verification::Column::ErasedAt, Expr::value(now))
        .col_expr(verification::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            verification::Column::ExpiresAt,
            Expr::value(m.expires_at.min(now)),
        )
        .filter(verification::Column::CertifyId.eq(certify_id))
        .filter(verification::Column::ErasedAt.is_null())
        .exec(db)
        .await?
        .rows_affected;
    Ok(if erased == 1 {
        Erasure::Erased { objects }
    } else {
        Erasure::AlreadyErased
    })
}

/// Records that the person agreed to the consent text `version` (the first time only).
pub async fn record_consent(
    db: &DatabaseConnection,
    certify_id: &str,
    version: &str,
    now: i64,
) -> Result<(), DbErr> {
    verification::Entity::update_many()
        .col_expr(verification::Column::ConsentAt, Expr::value(now))
        .col_expr(verification::Column::ConsentVersion, Expr::value(version))
        .filter(verification::Column::CertifyId.eq(certify_id))
        .filter(verification::Column::ConsentAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Records that the merchant read the verification's result (the first time only).
pub async fn mark_result_read(
    db: &DatabaseConnection,
    certify_id: &str,
    now: i64,
) -> Result<(), DbErr> {
    verification::Entity::update_many()
        .col_expr(verification::Column::ResultReadAt, Expr::value(now))
        .filter(verification::Column::CertifyId.eq(certify_id))
        .filter(verification::Column::ResultReadAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Which verifications a listing covers; days are inclusive UTC days of creation.
#[derive(Clone, Debug, Default)]
pub struct VerificationFilter {
    /// Created at or after this Unix time.
    pub created_from: Option<i64>,
    /// Created before this Unix time.
    pub created_before: Option<i64>,
    pub app_id: Option<String>,
    pub scene_id: Option<i64>,
    pub product: Option<String>,
    /// Stored states to include (`passed`, `failed`, `initialized`, `in_progress`).
    pub states: Option<Vec<&'static str>>,
    pub certify_id: Option<String>,
    pub outer_order_no: Option<String>,
}

impl VerificationFilter {
    fn apply(
        &self,
        mut q: sea_orm::Select<verification::Entity>,
    ) -> sea_orm::Select<verification::Entity> {
        if let Some(t) = self.created_from {
            q = q.filter(verification::Column::CreatedAt.gte(t));
        }
        if let Some(t) = self.created_before {
            q = q.filter(verification::Column::CreatedAt.lt(t));
        }
        if let Some(a) = &self.app_id {
            q = q.filter(verification::Column::AppId.eq(a.as_str()));
        }
        if let Some(s) = self.scene_id {
            q = q.filter(verification::Column::SceneId.eq(s));
        }
        if let Some(p) = &self.product {
            q = q.filter(verification::Column::BizCode.eq(p.as_str()));
        }
        if let Some(states) = &self.states {
            q = q.filter(verification::Column::State.is_in(states.iter().copied()));
        }
        if let Some(c) = &self.certify_id {
            q = q.filter(verification::Column::CertifyId.eq(c.as_str()));
        }
        if let Some(o) = &self.outer_order_no {
            q = q.filter(verification::Column::OuterOrderNo.eq(o.as_str()));
        }
        q
    }
}

/// Up to `limit` verifications after the position `after` (creation time, certify_id), oldest first.
pub async fn list(
    db: &DatabaseConnection,
    filter: &VerificationFilter,
    after: Option<(i64, String)>,
    limit: u64,
) -> Result<Vec<Verification>, DbErr> {
    use sea_orm::{Condition, QueryOrder, QuerySelect};
    let mut q = filter.apply(verification::Entity::find());
    if let Some((t, id)) = after {
        q = q.filter(
            Condition::any()
                .add(verification::Column::CreatedAt.gt(t))
                .add(
                    Condition::all()
                        .add(verification::Column::CreatedAt.eq(t))
                        .add(verification::Column::CertifyId.gt(id)),
                ),
        );
    }
    q.order_by_asc(verification::Column::CreatedAt)
        .order_by_asc(verification::Column::CertifyId)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(to_domain)
        .collect()
}

/// How many verifications a filter covers.
pub async fn count(db: &DatabaseConnection, filter: &VerificationFilter) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    filter.apply(verification::Entity::find()).count(db).await
}
