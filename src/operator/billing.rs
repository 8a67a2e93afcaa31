//! Billing reports: records, daily totals and the CSV export, over one filter that every surface checks alike.
use super::{BillingFilter, BillingRecord, DailyTotal, Error, Operator, Result};
use crate::domain::product::Product;

/// `from` and `to` in order.
pub(super) fn check_days(from: Option<&str>, to: Option<&str>) -> Result<()> {
    match (from, to) {
        (Some(f), Some(t)) if f > t => Err(Error::Invalid("from must not be after to".into())),
        _ => Ok(()),
    }
}

/// A product code the catalogue knows, when one is given.
pub(super) fn check_product(product: Option<&str>) -> Result<()> {
    match product {
        Some(p) if Product::parse(p).is_none() => Err(Error::Invalid("unknown product".into())),
        _ => Ok(()),
    }
}

/// A filter as an operator asked for it, once its days are in order and its product is known.
pub fn checked_filter(filter: BillingFilter) -> Result<BillingFilter> {
    check_days(filter.from_day.as_deref(), filter.to_day.as_deref())?;
    check_product(filter.product.as_deref())?;
    Ok(filter)
}

/// The filter of a month (`YYYY-MM`; none or empty: the month of `today`, `YYYY-MM-DD`) and an app (blank: all),
/// with the month it covers.
pub fn month_filter(
    month: Option<&str>,
    today: &str,
    app_id: Option<&str>,
) -> Result<(String, BillingFilter)> {
    let month = match month.map(str::trim) {
        None | Some("") => today.get(..7).unwrap_or_default().to_string(),
        Some(m) => m.to_string(),
    };
    let (from, to) = crate::console::month_days(&month)
        .ok_or_else(|| Error::Invalid("month must be YYYY-MM".into()))?;
    let filter = checked_filter(BillingFilter {
        from_day: Some(from.clone()),
        to_day: Some(to),
        app_id: app_id
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string),
        ..Default::default()
    })?;
    Ok((from[..7].to_string(), filter))
}

impl Operator {
    /// Up to `limit` records after the record id `after`, in the order they were written.
    pub async fn billing_records(
        &self,
        filter: &BillingFilter,
        after: Option<i64>,
        limit: u64,
    ) -> Result<Vec<BillingRecord>> {
        Ok(crate::db::billing::list(&self.db, filter, after, limit).await?)
    }

    /// Billable events per day, app, scene, product and event.
    pub async fn billing_daily(&self, filter: &BillingFilter) -> Result<Vec<DailyTotal>> {
        Ok(crate::db::billing::daily(&self.db, filter).await?)
    }

    /// The records as CSV with a header row, written to `out`; the number of records.
    pub async fn export_billing_csv<W: std::io::Write + ?Sized>(
        &self,
        filter: &BillingFilter,
        out: &mut W,
    ) -> Result<u64> {
        crate::billing::export_csv(&self.db, filter, out)
            .await
            .map_err(Error::Unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_check_order_and_product() {
        let q = |from: &str, to: &str, product: Option<&str>| {
            checked_filter(BillingFilter {
                from_day: Some(from.into()),
                to_day: Some(to.into()),
                product: product.map(str::to_string),
                ..Default::default()
            })
        };
        assert!(q("2026-01-01", "2026-01-31", Some("FACE")).is_ok());
        let late = q("2026-02-01", "2026-01-31", None);
        assert!(matches!(late, Err(Error::Invalid(m)) if m.contains("after")));
        let unknown = q("2026-01-01", "2026-01-31", Some("NOPE"));
        assert!(matches!(unknown, Err(Error::Invalid(_))));
    }

    #[test]
    fn months_default_to_today_and_blank_apps_to_all() {
        let (m, f) = month_filter(None, "2026-12-07", Some(" ")).unwrap();
        assert_eq!(m, "2026-12");
        assert_eq!(f.from_day.as_deref(), Some("2026-12-01"));
        assert_eq!(f.to_day.as_deref(), Some("2026-12-31"));
        assert_eq!(f.app_id, None);
        let (_, f) = month_filter(Some("2026-02"), "2026-12-07", Some("shop")).unwrap();
        assert_eq!(f.to_day.as_deref(), Some("2026-02-28"));
        assert_eq!(f.app_id.as_deref(), Some("shop"));
        assert!(month_filter(Some("2026-13"), "2026-12-07", None).is_err());
    }
}
