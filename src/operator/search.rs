//! Verifications: one by id, the console's search, the admin API's filtered pages, and a verification's detail.
use super::billing::{check_days, check_product};
use super::{BillingRecord, Error, Operator, Result, Scene, StoredAttempt, Subject, Verification};
use crate::db::verifications::{self, VerificationFilter};

/// How a verification ended, as the admin API filters it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    /// Not decided: waiting or in progress.
    Undecided,
}

impl Outcome {
    pub fn parse(s: &str) -> Option<Outcome> {
        match s {
            "passed" => Some(Outcome::Passed),
            "failed" => Some(Outcome::Failed),
            "undecided" => Some(Outcome::Undecided),
            _ => None,
        }
    }

    /// The stored states it covers.
    fn states(self) -> Vec<&'static str> {
        match self {
            Outcome::Passed => vec!["passed"],
            Outcome::Failed => vec!["failed"],
            Outcome::Undecided => vec!["initialized", "in_progress"],
        }
    }
}

/// A page of verifications as the admin API asks for it: created on the days `from_day..=to_day` of the billing
/// calendar, by app, scene, product, outcome and order number, after a cursor handed out before.
#[derive(Clone, Debug, Default)]
pub struct VerificationQuery {
    pub from_day: Option<String>,
    pub to_day: Option<String>,
    pub app_id: Option<String>,
    pub scene_id: Option<i64>,
    pub product: Option<String>,
    pub outcome: Option<String>,
    pub outer_order_no: Option<String>,
    pub cursor: Option<String>,
    pub limit: u64,
}

/// What the console shows of one verification besides itself.
pub struct VerificationDetail {
    /// Whom it verifies (the caller masks what it shows).
    pub subject: Option<Subject>,
    pub scene: Option<Scene>,
    pub attempts: Vec<StoredAttempt>,
    pub billing: Vec<BillingRecord>,
}

/// `created_at.certify_id` of the last row, the cursor of the next page.
fn cursor_after(cursor: Option<&str>) -> Result<Option<(i64, String)>> {
    match cursor {
        None | Some("") => Ok(None),
        Some(c) => c
            .split_once('.')
            .and_then(|(t, id)| Some((t.parse::<i64>().ok()?, id.to_string())))
            .map(Some)
            .ok_or_else(|| Error::Invalid("cursor is not one this API handed out".into())),
    }
}

impl Operator {
    pub async fn verification(&self, certify_id: &str) -> Result<Option<Verification>> {
        Ok(verifications::find(&self.db, certify_id).await?)
    }

    /// The console's search: the verification with this certify_id, else those with this outer_order_no (of any
    /// app, at most 50).
    pub async fn search(&self, q: &str) -> Result<Vec<Verification>> {
        if let Some(v) = verifications::find(&self.db, q).await? {
            return Ok(vec![v]);
        }
        let filter = VerificationFilter {
            outer_order_no: Some(q.to_string()),
            ..Default::default()
        };
        Ok(verifications::list(&self.db, &filter, None, 50).await?)
    }

    /// A page of verifications, oldest first, and the cursor of the next page (none on the last).
    pub async fn verifications(
        &self,
        q: VerificationQuery,
    ) -> Result<(Vec<Verification>, Option<String>)> {
        check_days(q.from_day.as_deref(), q.to_day.as_deref())?;
        let after = cursor_after(q.cursor.as_deref())?;
        check_product(q.product.as_deref())?;
        let states = match q.outcome.as_deref() {
            None => None,
            Some(o) => Some(
                Outcome::parse(o)
                    .ok_or_else(|| {
                        Error::Invalid("outcome must be passed, failed or undecided".into())
                    })?
                    .states(),
            ),
        };
        let cal = self.calendar();
        let filter = VerificationFilter {
            created_from: q.from_day.as_deref().and_then(|d| cal.start_of(d)),
            created_before: q
                .to_day
                .as_deref()
                .and_then(|d| cal.start_of(d))
                .map(|t| t + 86_400),
            app_id: q.app_id,
            scene_id: q.scene_id,
            product: q.product,
            states,
            outer_order_no: q.outer_order_no,
            certify_id: None,
        };
        let rows = verifications::list(&self.db, &filter, after, q.limit).await?;
        let next = (rows.len() as u64 == q.limit)
            .then(|| {
                rows.last()
                    .map(|v| format!("{}.{}", v.created_at, v.certify_id))
            })
            .flatten();
        Ok((rows, next))
    }

    /// Whom a verification verifies, its scene, its attempts and its billing records.
    pub async fn verification_detail(&self, v: &Verification) -> Result<VerificationDetail> {
        let scene = match v.scene_id {
            Some(id) => crate::db::scenes::find(&self.db, id).await?,
            None => None,
        };
        Ok(VerificationDetail {
            subject: verifications::find_subject(
                &self.db,
                &self.store.keys().ring(),
                &v.certify_id,
            )
            .await?,
            scene,
            attempts: crate::db::attempts::list(&self.db, &v.certify_id).await?,
            billing: crate::db::billing::for_verification(&self.db, &v.certify_id).await?,
        })
    }

    /// The object key of the face image kept for a verification, if any.
    pub async fn face_image_key(&self, certify_id: &str) -> Result<Option<String>> {
        Ok(verifications::find(&self.db, certify_id)
            .await?
            .and_then(|v| v.face_image_key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_and_outcomes() {
        assert_eq!(cursor_after(None).unwrap(), None);
        assert_eq!(cursor_after(Some("")).unwrap(), None);
        assert_eq!(
            cursor_after(Some("17.abc.d")).unwrap(),
            Some((17, "abc.d".into()))
        );
        assert!(cursor_after(Some("x.abc")).is_err());
        assert!(cursor_after(Some("17")).is_err());
        assert_eq!(Outcome::parse("undecided"), Some(Outcome::Undecided));
        assert_eq!(Outcome::Undecided.states(), ["initialized", "in_progress"]);
        assert_eq!(Outcome::parse("Passed"), None);
    }
}
