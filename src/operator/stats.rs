//! The console's overview: verifications per day and state, failure reasons and decision times of the last 30 days
//! and of today.
use super::{Operator, Result, Scene, Window};
use crate::db::stats;

/// Failure reasons (most frequent first) and sorted decision times (ms) of one window.
#[derive(Clone, Debug, Default)]
pub struct WindowStats {
    pub reasons: Vec<(String, u64)>,
    pub times: Vec<i32>,
}

/// The numbers of the overview.
#[derive(Clone, Debug)]
pub struct Overview {
    /// When they were counted.
    pub now: i64,
    /// Today's day number in the billing calendar.
    pub today: i64,
    /// The last 30 days (today included).
    pub month_window: Window,
    /// (day number, stored state, count) of the last 30 days.
    pub by_day: Vec<(i64, String, u64)>,
    pub month: WindowStats,
    pub today_stats: WindowStats,
    /// Every scene (for the filter).
    pub scenes: Vec<Scene>,
}

impl Operator {
    async fn window_stats(&self, w: Window) -> Result<WindowStats> {
        Ok(WindowStats {
            reasons: stats::fail_reasons(&self.db, w).await?,
            times: stats::decision_times(&self.db, w).await?,
        })
    }

    /// Today and the last 30 days, of one scene or of all.
    pub async fn overview(&self, scene_id: Option<i64>) -> Result<Overview> {
        let now = self.now();
        let cal = self.calendar();
        let today = cal.day_number(now);
        let month_window = Window {
            from: cal.start_of_number(today - 29),
            before: cal.start_of_number(today + 1),
            scene_id,
        };
        let day = Window {
            from: cal.start_of_number(today),
            ..month_window
        };
        Ok(Overview {
            now,
            today,
            month_window,
            by_day: stats::by_day_and_state(&self.db, month_window, cal).await?,
            month: self.window_stats(month_window).await?,
            today_stats: self.window_stats(day).await?,
            scenes: self.scenes(None).await?,
        })
    }
}
