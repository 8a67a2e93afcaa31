//! Attempts of the hosted flow: the challenge issued to the page and, once frames came back, the verdict.
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, Set,
};

use super::entities::attempt;

/// An attempt as stored.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub challenge_id: String,
    pub certify_id: String,
    pub attempt: u32,
    /// The challenge as JSON.
    pub challenge: String,
    pub issued_at: i64,
    pub submitted_at: Option<i64>,
    pub outcome: Option<String>,
    pub fail_reason: Option<String>,
    pub checks: Option<String>,
    pub decision_ms: Option<i32>,
}

fn to_domain(m: attempt::Model) -> Attempt {
    Attempt {
        challenge_id: m.challenge_id,
        certify_id: m.certify_id,
        attempt: m.attempt.max(0) as u32,
        challenge: m.challenge,
        issued_at: m.issued_at,
        submitted_at: m.submitted_at,
        outcome: m.outcome,
        fail_reason: m.fail_reason,
        checks: m.checks,
        decision_ms: m.decision_ms,
    }
}

/// Attempts issued for a verification so far.
pub async fn count(db: &DatabaseConnection, certify_id: &str) -> Result<u32, DbErr> {
    Ok(attempt::Entity::find()
        .filter(attempt::Column::CertifyId.eq(certify_id))
        .count(db)
        .await? as u32)
}

/// Every attempt of a verification, oldest first.
pub async fn list(db: &DatabaseConnection, certify_id: &str) -> Result<Vec<Attempt>, DbErr> {
    Ok(attempt::Entity::find()
        .filter(attempt::Column::CertifyId.eq(certify_id))
        .order_by_asc(attempt::Column::Attempt)
        .all(db)
        .await?
        .into_iter()
        .map(to_domain)
        .collect())
}

pub async fn find(db: &DatabaseConnection, challenge_id: &str) -> Result<Option<Attempt>, DbErr> {
    Ok(attempt::Entity::find_by_id(challenge_id.to_string())
        .one(db)
        .await?
        .map(to_domain))
}

/// Stores a newly issued challenge as attempt number `number`. Returns false when that number is already taken
/// (a concurrent request issued it).
pub async fn insert(
    db: &DatabaseConnection,
    challenge_id: &str,
    certify_id: &str,
    number: u32,
    challenge_json: &str,
    now: i64,
) -> Result<bool, DbErr> {
    let r = attempt::Entity::insert(attempt::ActiveModel {
        challenge_id: Set(challenge_id.to_string()),
        certify_id: Set(certify_id.to_string()),
        attempt: Set(number as i32),
        challenge: Set(challenge_json.to_string()),
        issued_at: Set(now),
        submitted_at: Set(None),
        outcome: Set(None),
        fail_reason: Set(None),
        checks: Set(None),
        decision_ms: Set(None),
        submissions: Set(0),
    })
    .exec_without_returning(db)
    .await;
    match r {
        Ok(_) => Ok(true),
        Err(e) if super::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Counts one submission of an open challenge of `certify_id`; false when the challenge is not open (unknown,
/// another verification's, already decided) or has had `max` submissions. One atomic update, so concurrent
/// submissions (on any instance) are counted exactly.
pub async fn count_submission(
    db: &DatabaseConnection,
    challenge_id: &str,
    certify_id: &str,
    max: u32,
) -> Result<bool, DbErr> {
    let r = attempt::Entity::update_many()
        .col_expr(
            attempt::Column::Submissions,
            Expr::col(attempt::Column::Submissions).add(1),
        )
        .filter(attempt::Column::ChallengeId.eq(challenge_id))
        .filter(attempt::Column::CertifyId.eq(certify_id))
        .filter(attempt::Column::SubmittedAt.is_null())
        .filter(attempt::Column::Submissions.lt(max as i32))
        .exec(db)
        .await?;
    Ok(r.rows_affected == 1)
}

/// The verdict of one attempt.
pub struct AttemptOutcome<'a> {
    pub challenge_id: &'a str,
    pub outcome: &'a str,
    pub fail_reason: Option<&'a str>,
    pub checks_json: &'a str,
    pub decision_ms: i32,
}

/// Writes an attempt's verdict, once: false when it was already submitted.
pub async fn record_outcome<C: ConnectionTrait>(
    db: &C,
    o: &AttemptOutcome<'_>,
    now: i64,
) -> Result<bool, DbErr> {
    let r = attempt::Entity::update_many()
        .col_expr(attempt::Column::SubmittedAt, Expr::value(now))
        .col_expr(attempt::Column::Outcome, Expr::value(o.outcome))
        .col_expr(
            attempt::Column::FailReason,
            Expr::value(o.fail_reason.map(str::to_string)),
        )
        .col_expr(attempt::Column::Checks, Expr::value(o.checks_json))
        .col_expr(attempt::Column::DecisionMs, Expr::value(o.decision_ms))
        .filter(attempt::Column::ChallengeId.eq(o.challenge_id))
        .filter(attempt::Column::SubmittedAt.is_null())
        .exec(db)
        .await?;
    Ok(r.rows_affected == 1)
}
