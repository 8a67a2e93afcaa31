//! The limits on calls per ID number, app and client address: which there are, their windows and a refusal.
//! Counting them is `crate::limits`.

/// One of the limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Calls naming one ID number, per minute.
    IdentityPerMinute,
    /// Calls naming one ID number, per day.
    IdentityPerDay,
    /// Failed verdicts of one ID number, per day.
    IdentityFailuresPerDay,
    /// Calls of one app, per second.
    AppPerSecond,
    /// Hosted-page requests of one client address, per minute.
    AddressPerMinute,
}

impl Limit {
    /// Every limit.
    pub const ALL: [Limit; 5] = [
        Limit::IdentityPerMinute,
        Limit::IdentityPerDay,
        Limit::IdentityFailuresPerDay,
        Limit::AppPerSecond,
        Limit::AddressPerMinute,
    ];

    /// The counter kind stored in the database (stable).
    pub fn kind(self) -> &'static str {
        match self {
            Limit::IdentityPerMinute => "id_min",
            Limit::IdentityPerDay => "id_day",
            Limit::IdentityFailuresPerDay => "id_fail",
            Limit::AppPerSecond => "app_sec",
            Limit::AddressPerMinute => "addr_min",
        }
    }

    /// The window the limit counts in; the daily limits count in the days of the zone `day_offset_secs` east of UTC
    /// (e.g. 28800 for Beijing).
    pub fn window(self, day_offset_secs: i64) -> Window {
        match self {
            Limit::IdentityPerMinute | Limit::AddressPerMinute => Window::Sliding { secs: 60 },
            Limit::IdentityPerDay | Limit::IdentityFailuresPerDay => Window::Day {
                offset_secs: day_offset_secs,
            },
            Limit::AppPerSecond => Window::Fixed { secs: 1 },
        }
    }

    /// Whether the limit is about an identity (answered "too many today" or "slow down" per protocol).
    pub fn is_identity(self) -> bool {
        matches!(
            self,
            Limit::IdentityPerMinute | Limit::IdentityPerDay | Limit::IdentityFailuresPerDay
        )
    }

    /// Whether a refusal lasts until the next day (the cloud API's Code 418) rather than a short while.
    pub fn is_daily(self) -> bool {
        matches!(self, Limit::IdentityPerDay | Limit::IdentityFailuresPerDay)
    }

    /// What was exceeded, for people (no personal data).
    pub fn describe(self) -> &'static str {
        match self {
            Limit::IdentityPerMinute => {
                "this ID number was named in too many calls within a minute"
            }
            Limit::IdentityPerDay => "this ID number was named in too many calls today",
            Limit::IdentityFailuresPerDay => {
                "this ID number failed verification too many times today"
            }
            Limit::AppPerSecond => "this app sent too many calls within a second",
            Limit::AddressPerMinute => "too many requests from this address within a minute",
        }
    }
}

/// A counting window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// Consecutive windows of `secs`; the count of the previous one weighs in proportion to how much of it still
    /// lies within the last `secs` (the usual sliding-window estimate), so no burst at a window's edge doubles it.
    Sliding { secs: i64 },
    /// Consecutive windows of `secs`, each counted alone.
    Fixed { secs: i64 },
    /// Calendar days of the zone `offset_secs` east of UTC.
    Day { offset_secs: i64 },
}

/// A call refused by a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub limit: Limit,
    /// Seconds until a call may succeed.
    pub retry_after: i64,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}; try again in {} s",
            self.limit.describe(),
            self.retry_after
        )
    }
}
