//! Metering: which verdicts are billable, and the CSV merchants reconcile against.

pub use crate::domain::calendar::Calendar;

use crate::db::billing::{BillingEvent, BillingRecord};

/// `PASS`: FACE is billed per passed verification.
pub const EVENT_PASS: &str = "PASS";
/// `CALL`: the per-call products are billed per verification that reached a verdict.
pub const EVENT_CALL: &str = "CALL";

/// The billable event of a verdict on a verification of `product`, if any.
pub fn event_for(product: &str, passed: bool) -> Option<&'static str> {
    match crate::domain::product::Product::parse(product) {
        Some(p) if p.billed_per_pass() => passed.then_some(EVENT_PASS),
        _ => Some(EVENT_CALL),
    }
}

/// The billing event of a verdict, with what the record keeps about its verification and the calendar of its day.
pub fn billing_event(
    product: &str,
    passed: bool,
    app_id: &str,
    scene_id: Option<i64>,
    outer_order_no: &str,
    calendar: Calendar,
) -> Option<BillingEvent> {
    event_for(product, passed).map(|event| BillingEvent {
        product: product.to_string(),
        event,
        app_id: app_id.to_string(),
        scene_id,
        outer_order_no: outer_order_no.to_string(),
        calendar,
    })
}

/// The header row of the billing CSV.
pub const CSV_HEADER: &str =
    "day,billed_at,app_id,scene_id,product,event,certify_id,outer_order_no";

/// A CSV field, quoted when it needs to be; a leading formula character is neutralised for spreadsheets.
pub fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// One CSV row (no line ending) of a billing record; `billed_at` in RFC 3339 UTC.
pub fn csv_row(r: &BillingRecord) -> String {
    let at = chrono::DateTime::from_timestamp(r.billed_at, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    [
        r.day.clone(),
        at,
        csv_field(&r.app_id),
        r.scene_id.map(|s| s.to_string()).unwrap_or_default(),
        csv_field(&r.product),
        csv_field(&r.event),
        csv_field(&r.certify_id),
        csv_field(&r.outer_order_no),
    ]
    .join(",")
}

/// Checks a `YYYY-MM-DD` day and returns it normalised.
pub fn parse_day(s: &str) -> Option<String> {
    chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .ok()
        .map(|d| d.format("%Y-%m-%d").to_string())
}

/// Writes the CSV (header first) of every record `filter` covers to `out`, page by page. Returns the row count.
pub async fn export_csv<W: std::io::Write + ?Sized>(
    db: &sea_orm::DatabaseConnection,
    filter: &crate::db::billing::BillingFilter,
    out: &mut W,
) -> anyhow::Result<u64> {
    writeln!(out, "{CSV_HEADER}")?;
    let mut after = None;
    let mut n = 0;
    loop {
        let page = crate::db::billing::list(db, filter, after, 1000).await?;
        let Some(last) = page.last() else {
            break;
        };
        after = Some(last.id);
        for r in &page {
            writeln!(out, "{}", csv_row(r))?;
            n += 1;
        }
    }
    out.flush()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn face_bills_passes_and_other_products_bill_verdicts() {
        assert_eq!(event_for("FACE", true), Some(EVENT_PASS));
        assert_eq!(event_for("FACE", false), None);
        assert_eq!(event_for("ID_PRO", false), Some(EVENT_CALL));
        assert_eq!(event_for("ID_PRO", true), Some(EVENT_CALL));
    }

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("plain"), "plain");
    }

    #[test]
    fn days_are_checked() {
        assert_eq!(parse_day("2026-11-01").as_deref(), Some("2026-11-01"));
        assert_eq!(parse_day("2026-02-30"), None);
        assert_eq!(parse_day("yesterday"), None);
    }
}
