//! The operator console's pure parts: charts, sessions, and the overview's arithmetic. The pages themselves are
//! `api::console` with the templates under `templates/console/`.
pub mod chart;
pub mod session;

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// The `p`-th percentile (0–100, nearest rank) of sorted values; none when there are none.
pub fn percentile(sorted: &[i32], p: f64) -> Option<i32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Verifications of one window by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcomes {
    pub total: u64,
    pub passed: u64,
    pub failed: u64,
}

impl Outcomes {
    /// Verifications not decided (yet): waiting, in progress or expired.
    pub fn undecided(&self) -> u64 {
        self.total.saturating_sub(self.passed + self.failed)
    }

    /// Passed among the decided ones, in percent, one decimal; none before any decision.
    pub fn pass_rate(&self) -> Option<f64> {
        let decided = self.passed + self.failed;
        (decided > 0).then(|| (self.passed as f64 * 1000.0 / decided as f64).round() / 10.0)
    }

    fn add(&mut self, state: &str, n: u64) {
        self.total += n;
        match state {
            "passed" => self.passed += n,
            "failed" => self.failed += n,
            _ => {}
        }
    }
}

/// Per-day outcomes of the `days` days ending with day number `last_day` (days since 1970-01-01 of the billing calendar), oldest
/// first, from (day number, stored state, count) rows; days without rows are zero.
pub fn daily_outcomes(
    rows: &[(i64, String, u64)],
    last_day: i64,
    days: u32,
) -> Vec<(i64, Outcomes)> {
    let first = last_day - i64::from(days) + 1;
    let mut out: Vec<(i64, Outcomes)> = (first..=last_day)
        .map(|d| (d, Outcomes::default()))
        .collect();
    for (day, state, n) in rows {
        if (first..=last_day).contains(day) {
            out[(day - first) as usize].1.add(state, *n);
        }
    }
    out
}

/// The sum of daily outcomes.
pub fn sum(days: &[(i64, Outcomes)]) -> Outcomes {
    days.iter().fold(Outcomes::default(), |mut acc, (_, o)| {
        acc.total += o.total;
        acc.passed += o.passed;
        acc.failed += o.failed;
        acc
    })
}

/// `MM-DD` of a day number.
pub fn day_label(day: i64) -> String {
    chrono::DateTime::from_timestamp(day * DAY, 0)
        .map(|d| d.format("%m-%d").to_string())
        .unwrap_or_default()
}

/// The first and last day (`YYYY-MM-DD`) of a month given as `YYYY-MM`.
pub fn month_days(month: &str) -> Option<(String, String)> {
    let first =
        chrono::NaiveDate::parse_from_str(&format!("{}-01", month.trim()), "%Y-%m-%d").ok()?;
    let next = first.checked_add_months(chrono::Months::new(1))?;
    let last = next.pred_opt()?;
    Some((
        first.format("%Y-%m-%d").to_string(),
        last.format("%Y-%m-%d").to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<i32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[1, 2], 50.0), Some(1));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[3, 9, 12], 0.0), Some(3));
    }

    #[test]
    fn daily_outcomes_fill_gaps_and_drop_outsiders() {
        let rows = vec![
            (100, "passed".to_string(), 3),
            (100, "failed".to_string(), 1),
            (98, "in_progress".to_string(), 2),
            (90, "passed".to_string(), 9),
            (101, "passed".to_string(), 9),
        ];
        let d = daily_outcomes(&rows, 100, 3);
        assert_eq!(d.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [98, 99, 100]);
        assert_eq!(
            d[0].1,
            Outcomes {
                total: 2,
                passed: 0,
                failed: 0
            }
        );
        assert_eq!(d[1].1, Outcomes::default());
        assert_eq!(
            d[2].1,
            Outcomes {
                total: 4,
                passed: 3,
                failed: 1
            }
        );
        let all = sum(&d);
        assert_eq!((all.total, all.undecided()), (6, 2));
        assert_eq!(all.pass_rate(), Some(75.0));
        assert_eq!(Outcomes::default().pass_rate(), None);
        let third = Outcomes {
            total: 3,
            passed: 1,
            failed: 2,
        };
        assert_eq!(third.pass_rate(), Some(33.3));
    }

    #[test]
    fn labels_and_months() {
        assert_eq!(day_label(0), "01-01");
        assert_eq!(day_label(20_790), "12-03");
        assert_eq!(
            month_days("2026-02"),
            Some(("2026-02-01".into(), "2026-02-28".into()))
        );
        assert_eq!(
            month_days("2024-12"),
            Some(("2024-12-01".into(), "2024-12-31".into()))
        );
        assert_eq!(month_days("2026-13"), None);
        assert_eq!(month_days("Dec"), None);
    }
}
