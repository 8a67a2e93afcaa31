//! Verifications and the certify tokens of the hosted page.
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set, TransactionTrait,
};

use super::entities::{certify_token, verification};
use crate::domain::request::{InitializeRequest, ReserveStrategy};
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
    })
}

/// What initialize stores.
pub struct NewVerification<'a> {
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
    let (callback_url, callback_token) = match new.callback {
        Some((u, t)) => (Some(u), t),
        None => (None, None),
    };
    verification::ActiveModel {
        certify_id: Set(new.certify_id.to_string()),
        app_id: Set(new.app_id.to_string()),
        outer_order_no: Set(r.outer_order_no.clone()),
        biz_code: Set(r.biz_code.clone()),
        request_digest: Set(r.digest()),
        cert_type: Set(r.cert_type.clone()),
        cert_name: Set(r.cert_name.expose().clone()),
        cert_no: Set(r.cert_no.expose().clone()),
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
    certify_id: &str,
) -> Result<Option<Subject>, DbErr> {
    Ok(verification::Entity::find_by_id(certify_id.to_string())
        .one(db)
        .await?
        .map(|m| Subject {
            cert_type: m.cert_type,
            cert_no: m.cert_no,
            cert_name: m.cert_name,
            contrast_picture_key: m.contrast_picture_key,
        }))
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

/// Kept images (the face image, the merchant's contrast picture) of verifications decided or created before
/// `before`: their object-store keys, with the verification they belong to.
pub async fn images_older_than(
    db: &DatabaseConnection,
    before: i64,
    scenes: &Scenes,
    limit: u64,
) -> Result<Vec<(String, Vec<String>)>, DbErr> {
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
    let rows = q
        .filter(
            Condition::any()
                .add(verification::Column::FaceImageKey.is_not_null())
                .add(verification::Column::ContrastPictureKey.is_not_null()),
        )
        .filter(
            Condition::any()
                .add(verification::Column::DecidedAt.lt(before))
                .add(verification::Column::ExpiresAt.lt(before)),
        )
        .limit(limit)
        .all(db)
        .await?;
    Ok(rows
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

/// Forgets the image keys of a verification once its images are deleted.
pub async fn clear_images(
    db: &DatabaseConnection,
    certify_id: &str,
    now: i64,
) -> Result<(), DbErr> {
    verification::Entity::update_many()
        .col_expr(
            verification::Column::FaceImageKey,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            verification::Column::ContrastPictureKey,
            Expr::value(Option::<String>::None),
        )
        .col_expr(verification::Column::UpdatedAt, Expr::value(now))
        .filter(verification::Column::CertifyId.eq(certify_id))
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
