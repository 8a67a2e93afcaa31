//! Billing records: one per billable event of a verification, written in the decision's transaction.
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::entities::billing_record;

/// A billable event of a verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillingEvent {
    pub product: String,
    /// `PASS` (FACE: a verification that passed) or `CALL` (per-call products: a verdict was reached).
    pub event: &'static str,
    pub app_id: String,
    pub scene_id: Option<i64>,
    pub outer_order_no: String,
    /// Which day the record falls on.
    pub calendar: crate::domain::calendar::Calendar,
}

/// A stored billing record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillingRecord {
    pub id: i64,
    pub certify_id: String,
    pub event: String,
    pub app_id: String,
    pub scene_id: Option<i64>,
    pub product: String,
    pub outer_order_no: String,
    /// Day of the event in the billing calendar (`[billing] utc_offset`) when it was written, `YYYY-MM-DD`.
    pub day: String,
    pub billed_at: i64,
}

fn to_domain(m: billing_record::Model) -> BillingRecord {
    BillingRecord {
        id: m.id,
        certify_id: m.certify_id,
        event: m.event,
        app_id: m.app_id,
        scene_id: m.scene_id,
        product: m.product,
        outer_order_no: m.outer_order_no,
        day: m.day,
        billed_at: m.billed_at,
    }
}

/// Writes the record of `event` for `certify_id` inside the caller's transaction; a second record of the same
/// (verification, event) is never written. Returns whether this call wrote it.
pub async fn insert<C: ConnectionTrait>(
    txn: &C,
    certify_id: &str,
    event: &BillingEvent,
    now: i64,
) -> Result<bool, DbErr> {
    let insert = billing_record::Entity::insert(billing_record::ActiveModel {
        certify_id: Set(certify_id.to_string()),
        event: Set(event.event.to_string()),
        app_id: Set(event.app_id.clone()),
        scene_id: Set(event.scene_id),
        product: Set(event.product.clone()),
        outer_order_no: Set(event.outer_order_no.clone()),
        day: Set(event.calendar.day_of(now)),
        billed_at: Set(now),
        ..Default::default()
    });
    let key = [
        billing_record::Column::CertifyId,
        billing_record::Column::Event,
    ];
    super::insert_unless_exists(insert, key, txn).await
}

/// Which billing records a listing or an export covers; days are inclusive, `YYYY-MM-DD`.
#[derive(Clone, Debug, Default)]
pub struct BillingFilter {
    pub from_day: Option<String>,
    pub to_day: Option<String>,
    pub app_id: Option<String>,
    pub scene_id: Option<i64>,
    pub product: Option<String>,
}

impl BillingFilter {
    fn apply(
        &self,
        mut q: sea_orm::Select<billing_record::Entity>,
    ) -> sea_orm::Select<billing_record::Entity> {
        if let Some(d) = &self.from_day {
            q = q.filter(billing_record::Column::Day.gte(d.as_str()));
        }
        if let Some(d) = &self.to_day {
            q = q.filter(billing_record::Column::Day.lte(d.as_str()));
        }
        if let Some(a) = &self.app_id {
            q = q.filter(billing_record::Column::AppId.eq(a.as_str()));
        }
        if let Some(s) = self.scene_id {
            q = q.filter(billing_record::Column::SceneId.eq(s));
        }
        if let Some(p) = &self.product {
            q = q.filter(billing_record::Column::Product.eq(p.as_str()));
        }
        q
    }
}

/// Up to `limit` records after the record id `after`, oldest first.
pub async fn list(
    db: &DatabaseConnection,
    filter: &BillingFilter,
    after: Option<i64>,
    limit: u64,
) -> Result<Vec<BillingRecord>, DbErr> {
    let mut q = filter.apply(billing_record::Entity::find());
    if let Some(a) = after {
        q = q.filter(billing_record::Column::Id.gt(a));
    }
    Ok(q.order_by_asc(billing_record::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(to_domain)
        .collect())
}

/// How many records a filter covers.
pub async fn count(db: &DatabaseConnection, filter: &BillingFilter) -> Result<u64, DbErr> {
    filter.apply(billing_record::Entity::find()).count(db).await
}

/// The records of one verification.
pub async fn for_verification(
    db: &DatabaseConnection,
    certify_id: &str,
) -> Result<Vec<BillingRecord>, DbErr> {
    Ok(billing_record::Entity::find()
        .filter(billing_record::Column::CertifyId.eq(certify_id))
        .order_by_asc(billing_record::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(to_domain)
        .collect())
}

/// Billable events of one day, app, scene, product and event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DailyTotal {
    pub day: String,
    pub app_id: String,
    pub scene_id: Option<i64>,
    pub product: String,
    pub event: String,
    pub count: u64,
}

/// Daily aggregates of the records a filter covers, by day, app, scene, product and event.
pub async fn daily(
    db: &DatabaseConnection,
    filter: &BillingFilter,
) -> Result<Vec<DailyTotal>, DbErr> {
    use billing_record::Column as C;
    let rows: Vec<(String, String, Option<i64>, String, String, i64)> = filter
        .apply(billing_record::Entity::find())
        .select_only()
        .column(C::Day)
        .column(C::AppId)
        .column(C::SceneId)
        .column(C::Product)
        .column(C::Event)
        .column_as(C::Id.count(), "n")
        .group_by(C::Day)
        .group_by(C::AppId)
        .group_by(C::SceneId)
        .group_by(C::Product)
        .group_by(C::Event)
        .order_by_asc(C::Day)
        .order_by_asc(C::AppId)
        .order_by_asc(C::SceneId)
        .order_by_asc(C::Product)
        .order_by_asc(C::Event)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(day, app_id, scene_id, product, event, n)| DailyTotal {
            day,
            app_id,
            scene_id,
            product,
            event,
            count: n.max(0) as u64,
        })
        .collect())
}
