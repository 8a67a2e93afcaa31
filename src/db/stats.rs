//! Aggregates of the console's overview: verifications per day and state, failure reasons, decision times.
//! Grouped in the database (the same SQL on SQLite and PostgreSQL); only decision times come back one per attempt.
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::entities::{attempt, verification};

/// Which verifications the numbers cover: created in `[from, before)` (Unix seconds), optionally of one scene.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub from: i64,
    pub before: i64,
    pub scene_id: Option<i64>,
}

fn verifications_in(w: Window) -> sea_orm::Select<verification::Entity> {
    let mut q = verification::Entity::find()
        .filter(verification::Column::CreatedAt.gte(w.from))
        .filter(verification::Column::CreatedAt.lt(w.before));
    if let Some(s) = w.scene_id {
        q = q.filter(verification::Column::SceneId.eq(s));
    }
    q
}

/// (day number of `calendar` since 1970-01-01, stored state, count) of the window's verifications.
pub async fn by_day_and_state(
    db: &DatabaseConnection,
    w: Window,
    calendar: crate::domain::calendar::Calendar,
) -> Result<Vec<(i64, String, u64)>, DbErr> {
    let day = Expr::cust(calendar.day_number_sql("created_at"));
    let rows: Vec<(i64, String, i64)> = verifications_in(w)
        .select_only()
        .column_as(day.clone(), "day")
        .column(verification::Column::State)
        .column_as(verification::Column::CertifyId.count(), "n")
        .group_by(day)
        .group_by(verification::Column::State)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(d, s, n)| (d, s, n.max(0) as u64))
        .collect())
}

/// Failure reasons of the window's failed verifications with their counts, most frequent first.
pub async fn fail_reasons(db: &DatabaseConnection, w: Window) -> Result<Vec<(String, u64)>, DbErr> {
    let rows: Vec<(Option<String>, i64)> = verifications_in(w)
        .filter(verification::Column::State.eq("failed"))
        .select_only()
        .column(verification::Column::FailReason)
        .column_as(verification::Column::CertifyId.count(), "n")
        .group_by(verification::Column::FailReason)
        .into_tuple()
        .all(db)
        .await?;
    let mut out: Vec<(String, u64)> = rows
        .into_iter()
        .map(|(r, n)| (r.unwrap_or_else(|| "(none)".into()), n.max(0) as u64))
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(out)
}

/// The most decision times one query reads (the percentiles of a busier window are of its latest attempts).
pub const MAX_TIMES: u64 = 200_000;

/// Decision times (ms, sorted) of the attempts submitted in the window, of verifications of its scene when set.
pub async fn decision_times(db: &DatabaseConnection, w: Window) -> Result<Vec<i32>, DbErr> {
    let mut q = attempt::Entity::find()
        .filter(attempt::Column::SubmittedAt.gte(w.from))
        .filter(attempt::Column::SubmittedAt.lt(w.before))
        .filter(attempt::Column::DecisionMs.is_not_null());
    if let Some(s) = w.scene_id {
        q = q.filter(
            attempt::Column::CertifyId.in_subquery(
                Query::select()
                    .column(verification::Column::CertifyId)
                    .from(verification::Entity)
                    .and_where(verification::Column::SceneId.eq(s))
                    .to_owned(),
            ),
        );
    }
    let mut times: Vec<Option<i32>> = q
        .select_only()
        .column(attempt::Column::DecisionMs)
        .order_by_desc(attempt::Column::SubmittedAt)
        .limit(MAX_TIMES)
        .into_tuple()
        .all(db)
        .await?;
    times.retain(Option::is_some);
    let mut times: Vec<i32> = times.into_iter().flatten().collect();
    times.sort_unstable();
    Ok(times)
}
