//! Callback deliveries: written with the verdict (in its transaction), claimed and worked off by the
//! [`crate::callback::CallbackDispatcher`]. Times are Unix milliseconds.
//!
//! Several server instances may share the database. A dispatcher claims a due delivery by moving its
//! `next_attempt_at_ms` from the value it read to the end of a lease, in one conditional UPDATE: only one instance
//! can win that compare-and-set. The outcome is recorded only while the lease is still the one it set, so an
//! instance whose lease ran out (and whose delivery another instance took over) cannot overwrite the newer state.
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

/// The sea-orm entity (kept here rather than in `entities.rs`: only this module uses it).
mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "callback_deliveries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub certify_id: String,
        pub url: String,
        pub token: Option<String>,
        pub passed: String,
        pub status: String,
        pub attempts: i32,
        pub next_attempt_at_ms: i64,
        pub delivered_at_ms: Option<i64>,
        pub last_status: Option<i32>,
        pub last_error: Option<String>,
        pub created_at_ms: i64,
        pub updated_at_ms: i64,
    }

    /// Never shows the URL (its query may hold secrets) or the token.
    impl std::fmt::Debug for Model {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("callback_delivery")
                .field("certify_id", &self.certify_id)
                .field("status", &self.status)
                .field("attempts", &self.attempts)
                .field("next_attempt_at_ms", &self.next_attempt_at_ms)
                .finish_non_exhaustive()
        }
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Column, Entity};

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Not yet delivered; attempts remain.
    Pending,
    /// The merchant answered 2xx.
    Delivered,
    /// Given up after the last attempt.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> DeliveryStatus {
        match s {
            "delivered" => DeliveryStatus::Delivered,
            "failed" => DeliveryStatus::Failed,
            _ => DeliveryStatus::Pending,
        }
    }
}

/// A recorded delivery. `Debug` shows neither the token nor the URL's path and query.
#[derive(Clone, PartialEq, Eq)]
pub struct Delivery {
    pub certify_id: String,
    /// The merchant's `CallbackUrl` as given (the parameters are appended at delivery).
    pub url: String,
    /// The merchant's `CallbackToken`, echoed as `callbackToken`.
    pub token: Option<String>,
    /// The SubCode sent as `passed` (e.g. `200`, `205`).
    pub passed: String,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (or, while one runs, when its lease ends).
    pub next_attempt_at_ms: i64,
    pub delivered_at_ms: Option<i64>,
    /// HTTP status of the last attempt, if an answer came back.
    pub last_status: Option<u16>,
    /// Why the last attempt failed (no URL, no token).
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = reqwest::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string));
        f.debug_struct("Delivery")
            .field("certify_id", &self.certify_id)
            .field("host", &host)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("passed", &self.passed)
            .field("status", &self.status)
            .field("attempts", &self.attempts)
            .field("next_attempt_at_ms", &self.next_attempt_at_ms)
            .field("delivered_at_ms", &self.delivered_at_ms)
            .field("last_status", &self.last_status)
            .field("last_error", &self.last_error)
            .field("created_at_ms", &self.created_at_ms)
            .finish()
    }
}

fn to_domain(m: entity::Model) -> Delivery {
    Delivery {
        certify_id: m.certify_id,
        url: m.url,
        token: m.token,
        passed: m.passed,
        status: DeliveryStatus::parse(&m.status),
        attempts: m.attempts.max(0) as u32,
        next_attempt_at_ms: m.next_attempt_at_ms,
        delivered_at_ms: m.delivered_at_ms,
        last_status: m.last_status.and_then(|s| u16::try_from(s).ok()),
        last_error: m.last_error,
        created_at_ms: m.created_at_ms,
        updated_at_ms: m.updated_at_ms,
    }
}

/// The wall clock in Unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Records that the result of `certify_id` is to be delivered to `url` (with `token` echoed and `passed` = the
/// SubCode), due at once. Call it with the transaction that records the verdict, so that neither exists without
/// the other. A second call for the same verification changes nothing; returns whether this call wrote the row.
/// Validate the URL at InitFaceVerify with [`crate::callback::validate_callback_url`].
pub async fn enqueue<C: ConnectionTrait>(
    conn: &C,
    certify_id: &str,
    url: &str,
    token: Option<&str>,
    passed: &str,
) -> Result<bool, DbErr> {
    let now = now_ms();
    let insert = Entity::insert(ActiveModel {
        certify_id: Set(certify_id.to_string()),
        url: Set(url.to_string()),
        token: Set(token.filter(|t| !t.is_empty()).map(str::to_string)),
        passed: Set(passed.to_string()),
        status: Set(DeliveryStatus::Pending.as_str().to_string()),
        attempts: Set(0),
        next_attempt_at_ms: Set(now),
        delivered_at_ms: Set(None),
        last_status: Set(None),
        last_error: Set(None),
        created_at_ms: Set(now),
        updated_at_ms: Set(now),
    });
    super::insert_unless_exists(insert, [Column::CertifyId], conn).await
}

/// The delivery of `certify_id`, if any.
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    certify_id: &str,
) -> Result<Option<Delivery>, DbErr> {
    Ok(Entity::find_by_id(certify_id.to_string())
        .one(conn)
        .await?
        .map(to_domain))
}

/// Pending deliveries due at `now_ms`, earliest first, at most `limit`.
pub async fn due<C: ConnectionTrait>(
    conn: &C,
    now_ms: i64,
    limit: u64,
) -> Result<Vec<Delivery>, DbErr> {
    Ok(Entity::find()
        .filter(Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .filter(Column::NextAttemptAtMs.lte(now_ms))
        .order_by_asc(Column::NextAttemptAtMs)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(to_domain)
        .collect())
}

/// When the earliest pending delivery is due, if any is pending.
pub async fn next_due_ms<C: ConnectionTrait>(conn: &C) -> Result<Option<i64>, DbErr> {
    Ok(Entity::find()
        .filter(Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .order_by_asc(Column::NextAttemptAtMs)
        .one(conn)
        .await?
        .map(|m| m.next_attempt_at_ms))
}

/// Claims `d` (as read by [`due`]) until `lease_until_ms`: succeeds for exactly one caller among those that read
/// the same row. Returns whether this caller holds the delivery now.
pub async fn claim<C: ConnectionTrait>(
    conn: &C,
    d: &Delivery,
    lease_until_ms: i64,
) -> Result<bool, DbErr> {
    let r = Entity::update_many()
        .col_expr(Column::NextAttemptAtMs, Expr::value(lease_until_ms))
        .filter(Column::CertifyId.eq(d.certify_id.as_str()))
        .filter(Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .filter(Column::NextAttemptAtMs.eq(d.next_attempt_at_ms))
        .exec(conn)
        .await?;
    Ok(r.rows_affected == 1)
}

/// Records a successful attempt (the `attempts`-th) of a delivery claimed until `lease_until_ms`. Returns false
/// (and changes nothing) when the lease was lost.
pub async fn mark_delivered<C: ConnectionTrait>(
    conn: &C,
    certify_id: &str,
    lease_until_ms: i64,
    attempts: u32,
    http_status: u16,
) -> Result<bool, DbErr> {
    let now = now_ms();
    let r = Entity::update_many()
        .col_expr(
            Column::Status,
            Expr::value(DeliveryStatus::Delivered.as_str()),
        )
        .col_expr(Column::Attempts, Expr::value(attempts as i32))
        .col_expr(Column::DeliveredAtMs, Expr::value(now))
        .col_expr(Column::LastStatus, Expr::value(http_status as i32))
        .col_expr(Column::LastError, Expr::value(Option::<String>::None))
        .col_expr(Column::UpdatedAtMs, Expr::value(now))
        .filter(Column::CertifyId.eq(certify_id))
        .filter(Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .filter(Column::NextAttemptAtMs.eq(lease_until_ms))
        .exec(conn)
        .await?;
    Ok(r.rows_affected == 1)
}

/// Records a failed attempt (the `attempts`-th) of a delivery claimed until `lease_until_ms`: due again at
/// `retry_at_ms`, or given up (status `failed`) when that is `None`. `error` must not contain the URL or token.
/// Returns false (and changes nothing) when the lease was lost.
pub async fn mark_failed_attempt<C: ConnectionTrait>(
    conn: &C,
    certify_id: &str,
    lease_until_ms: i64,
    attempts: u32,
    http_status: Option<u16>,
    error: &str,
    retry_at_ms: Option<i64>,
) -> Result<bool, DbErr> {
    let now = now_ms();
    let (status, next) = match retry_at_ms {
        Some(t) => (DeliveryStatus::Pending, t),
        None => (DeliveryStatus::Failed, now),
    };
    let error: String = error.chars().take(255).collect();
    let r = Entity::update_many()
        .col_expr(Column::Status, Expr::value(status.as_str()))
        .col_expr(Column::Attempts, Expr::value(attempts as i32))
        .col_expr(Column::NextAttemptAtMs, Expr::value(next))
        .col_expr(
            Column::LastStatus,
            Expr::value(http_status.map(|s| s as i32)),
        )
        .col_expr(Column::LastError, Expr::value(error))
        .col_expr(Column::UpdatedAtMs, Expr::value(now))
        .filter(Column::CertifyId.eq(certify_id))
        .filter(Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .filter(Column::NextAttemptAtMs.eq(lease_until_ms))
        .exec(conn)
        .await?;
    Ok(r.rows_affected == 1)
}
