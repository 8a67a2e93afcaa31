//! How often one ID number, one app and one client address may call: the windows, the decisions and the keys
//! (pure, below), and the [`Limiter`] that keeps the counts in the database so that every instance sharing it
//! enforces the same limits.
//!
//! - An **ID number** named in `initialize`, `InitFaceVerify` or `ContrastFaceVerify` counts per minute (a sliding
//!   window) and per day (the days of `[billing] utc_offset`); its failed verdicts count per day, and once they reach
//!   their limit the number is refused until the next day. The number is never stored: counters are keyed by an
//!   HMAC of it under a key derived from the server's secret key.
//! - An **app** counts per second on both front doors, after its signature was checked (so nobody else can use up
//!   its budget).
//! - A **client address** counts per minute on the hosted page's challenge and attempt requests; IPv6 addresses
//!   count by their /64.
//!
//! A refused call still counts where it was counted, so hammering a limit keeps it closed.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ring::hmac;
use sea_orm::{DatabaseConnection, DbErr};

use crate::domain::limit::{Limit, Refusal, Window};

const DAY_SECS: i64 = 86_400;

impl Window {
    /// The window's length in seconds.
    pub fn secs(self) -> i64 {
        match self {
            Window::Sliding { secs } | Window::Fixed { secs } => secs.max(1),
            Window::Day { .. } => DAY_SECS,
        }
    }

    /// When the window holding `now` started (Unix seconds).
    pub fn start(self, now: i64) -> i64 {
        match self {
            Window::Sliding { .. } | Window::Fixed { .. } => now - now.rem_euclid(self.secs()),
            Window::Day { offset_secs } => {
                let local = now + offset_secs;
                local - local.rem_euclid(DAY_SECS) - offset_secs
            }
        }
    }

    /// Until when a counter of the window starting at `start` is still needed: a sliding window's count is read
    /// while the next window runs, the others only while their own does.
    pub fn keep_until(self, start: i64) -> i64 {
        match self {
            Window::Sliding { .. } => start + 2 * self.secs(),
            Window::Fixed { .. } | Window::Day { .. } => start + self.secs(),
        }
    }

    /// Whether a sliding window (which also reads the previous window's count).
    pub fn reads_previous(self) -> bool {
        matches!(self, Window::Sliding { .. })
    }
}

/// The counts a decision is made on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// The current window's count, including the call being decided.
    pub current: i64,
    /// The previous window's count (read for sliding windows only).
    pub previous: i64,
}

/// What a limit says about a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Refused; a call after this many seconds would be allowed if nothing else were counted meanwhile.
    Refuse {
        retry_after: i64,
    },
}

/// Decides a call against `max` calls per `window` at `now` (`max` 0: no limit). The counts include the call.
pub fn decide(max: u32, window: Window, now: i64, counts: Counts) -> Decision {
    if max == 0 {
        return Decision::Allow;
    }
    let max = i64::from(max);
    let len = window.secs();
    let start = window.start(now);
    let elapsed = now - start;
    let retry_after = match window {
        Window::Fixed { .. } | Window::Day { .. } => {
            if counts.current <= max {
                return Decision::Allow;
            }
            start + len - now
        }
        Window::Sliding { .. } => {
            // The estimate is current + previous × (len − elapsed) / len, compared in integers.
            let previous = counts.previous.max(0);
            if counts.current * len + previous * (len - elapsed) <= max * len {
                return Decision::Allow;
            }
            sliding_retry_after(max, len, elapsed, counts.current, previous)
        }
    };
    Decision::Refuse {
        retry_after: retry_after.max(1),
    }
}

/// The seconds until a further call would fit a sliding window, counting what is counted now and nothing else.
fn sliding_retry_after(max: i64, len: i64, elapsed: i64, current: i64, previous: i64) -> i64 {
    // Still in this window: current + 1 + previous × (len − e) / len ≤ max, for some e < len.
    let room = max - current - 1;
    if room >= 0 && previous > 0 {
        let e = len - (room * len) / previous;
        if e < len {
            return e.max(elapsed) - elapsed;
        }
    }
    // In the next window, where this window is the previous one: 1 + current × (len − e) / len ≤ max.
    let e = if current < max {
        0
    } else {
        len - ((max - 1) * len) / current
    };
    len - elapsed + e
}

/// The key an ID number counts under: a keyed hash (HMAC-SHA256 under a server secret, 128 bits in hex) of the
/// number as written on the card (trimmed, upper-case `X`), so the table of counters holds no ID number and cannot
/// be searched for one without the key.
pub fn identity_key(key: &hmac::Key, cert_no: &str) -> String {
    blind(key, "id", &cert_no.trim().to_ascii_uppercase())
}

/// The key a client address counts under: the address (IPv6: its /64, which one client usually holds whole;
/// IPv4-mapped IPv6: the IPv4 address), hashed like an ID number so no address is stored either.
pub fn address_key(key: &hmac::Key, ip: IpAddr) -> String {
    blind(key, "addr", &address_group(ip).to_string())
}

/// The address a client counts as: itself, its /64 for IPv6, the IPv4 address for an IPv4-mapped one.
pub fn address_group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

fn blind(key: &hmac::Key, domain: &str, value: &str) -> String {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(domain.as_bytes());
    ctx.update(&[0]);
    ctx.update(value.as_bytes());
    hex::encode(&ctx.sign().as_ref()[..16])
}

/// An address range (`10.0.0.0/8`, `fd00::/8`, or one address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `addr/prefix` or a single address.
    pub fn parse(s: &str) -> Option<Cidr> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    /// Whether `ip` lies in the range (an IPv4-mapped IPv6 address as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The client's address: the connection's peer, unless the peer is a trusted proxy; then the right-most address of
/// `X-Forwarded-For` that is not a trusted proxy (addresses left of it could be made up by the client). Without
/// trusted proxies the header is ignored.
pub fn client_address(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_for.unwrap_or("").rsplit(',') {
        let Some(ip) = parse_hop(hop) else {
            // Garbage in the chain: the last good hop is all that can be trusted.
            return client;
        };
        client = ip;
        if !is_trusted(ip) {
            return ip;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`, `[2001:db8::1]:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The limits in force; 0 switches one off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitSettings {
    pub identity_per_minute: u32,
    pub identity_per_day: u32,
    pub identity_failures_per_day: u32,
    pub app_per_second: u32,
    pub address_per_minute: u32,
    /// The zone whose days the daily limits count in (seconds east of UTC).
    pub day_offset_secs: i64,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<Cidr>,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            identity_per_minute: 15,
            identity_per_day: 30,
            identity_failures_per_day: 10,
            app_per_second: 50,
            address_per_minute: 60,
            day_offset_secs: 0,
            trusted_proxies: Vec::new(),
        }
    }
}

impl LimitSettings {
    /// No limit at all.
    pub fn off() -> LimitSettings {
        LimitSettings {
            identity_per_minute: 0,
            identity_per_day: 0,
            identity_failures_per_day: 0,
            app_per_second: 0,
            address_per_minute: 0,
            ..LimitSettings::default()
        }
    }

    /// The most calls `limit` allows per window (0: unlimited).
    pub fn max(&self, limit: Limit) -> u32 {
        match limit {
            Limit::IdentityPerMinute => self.identity_per_minute,
            Limit::IdentityPerDay => self.identity_per_day,
            Limit::IdentityFailuresPerDay => self.identity_failures_per_day,
            Limit::AppPerSecond => self.app_per_second,
            Limit::AddressPerMinute => self.address_per_minute,
        }
    }

    /// The settings of the config (`[limits]`, days of `[billing] utc_offset`); an unreadable proxy range is an
    /// error.
    pub fn from_config(c: &crate::config::Config) -> anyhow::Result<LimitSettings> {
        let l = &c.limits;
        let trusted_proxies = l
            .trusted_proxies
            .iter()
            .map(|s| {
                Cidr::parse(s).ok_or_else(|| {
                    anyhow::anyhow!("limits.trusted_proxies: `{s}` is not an address or a range like 10.0.0.0/8")
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let base = LimitSettings {
            identity_per_minute: l.identity_per_minute,
            identity_per_day: l.identity_per_day,
            identity_failures_per_day: l.identity_failures_per_day,
            app_per_second: l.app_per_second,
            address_per_minute: l.address_per_minute,
            day_offset_secs: c.billing.utc_offset.offset_secs(),
            trusted_proxies,
        };
        Ok(if l.enabled {
            base
        } else {
            LimitSettings {
                trusted_proxies: base.trusted_proxies,
                day_offset_secs: base.day_offset_secs,
                ..LimitSettings::off()
            }
        })
    }
}

/// Why a limited call cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("{0}")]
    Exceeded(Refusal),
    /// The counters could not be read or written.
    #[error("rate counters unavailable")]
    Store(#[from] DbErr),
}

impl From<LimitError> for crate::domain::error::CertifyError {
    fn from(e: LimitError) -> Self {
        match e {
            LimitError::Exceeded(r) => crate::domain::error::CertifyError::Limited(r),
            LimitError::Store(e) => crate::domain::error::CertifyError::Internal(e.into()),
        }
    }
}

/// The limits, counted in the database. Cheap to clone; [`Limiter::off`] (the default) limits nothing.
#[derive(Clone, Default)]
pub struct Limiter {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    db: DatabaseConnection,
    settings: LimitSettings,
    key: hmac::Key,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("settings", &self.inner.as_ref().map(|i| &i.settings))
            .finish_non_exhaustive()
    }
}

/// The purpose under which the counters' key is derived from the server's secret key.
pub const KEY_PURPOSE: &str = "shiren rate-limit counters v1";

impl Limiter {
    /// Limits counted in `db`; ID numbers and addresses are keyed with `key` (the same on every instance).
    pub fn new(db: DatabaseConnection, settings: LimitSettings, key: &[u8; 32]) -> Limiter {
        Limiter {
            inner: Some(Arc::new(Inner {
                db,
                settings,
                key: hmac::Key::new(hmac::HMAC_SHA256, key),
            })),
        }
    }

    /// No limits.
    pub fn off() -> Limiter {
        Limiter::default()
    }

    /// The settings in force (none when off).
    pub fn settings(&self) -> Option<&LimitSettings> {
        self.inner.as_ref().map(|i| &i.settings)
    }

    /// Counts a call of `app_id` (after its signature was checked).
    pub async fn app_call(&self, app_id: &str, now: i64) -> Result<(), LimitError> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        inner.count(Limit::AppPerSecond, app_id, now).await
    }

    /// Counts a call naming `cert_no`: refused when the number failed too often today, or was named too often in
    /// the last minute or today. An empty number (a product that names nobody) is not counted.
    pub async fn identity_call(&self, cert_no: &str, now: i64) -> Result<(), LimitError> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        if cert_no.trim().is_empty() {
            return Ok(());
        }
        let key = identity_key(&inner.key, cert_no);
        inner
            .check(Limit::IdentityFailuresPerDay, &key, now)
            .await?;
        inner.count(Limit::IdentityPerMinute, &key, now).await?;
        inner.count(Limit::IdentityPerDay, &key, now).await
    }

    /// Counts a failed verdict of `cert_no`. A counter that cannot be written is logged, not fatal: the verdict is
    /// already recorded.
    pub async fn identity_failed(&self, cert_no: &str, now: i64) {
        let Some(inner) = &self.inner else {
            return;
        };
        let limit = Limit::IdentityFailuresPerDay;
        if cert_no.trim().is_empty() || inner.settings.max(limit) == 0 {
            return;
        }
        let key = identity_key(&inner.key, cert_no);
        let window = limit.window(inner.settings.day_offset_secs);
        if let Err(e) = crate::db::limits::hit(&inner.db, counter(limit, &key, window, now)).await {
            tracing::warn!(error = %e, "could not count a failed verification");
        }
    }

    /// Counts a hosted-page request from `ip`.
    pub async fn address_call(&self, ip: IpAddr, now: i64) -> Result<(), LimitError> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        if inner.settings.max(Limit::AddressPerMinute) == 0 {
            return Ok(());
        }
        let key = address_key(&inner.key, ip);
        inner.count(Limit::AddressPerMinute, &key, now).await
    }

    /// The client's address given the connection's peer and its `X-Forwarded-For` header (see [`client_address`]).
    pub fn client_address(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        match &self.inner {
            Some(i) => client_address(peer, forwarded_for, &i.settings.trusted_proxies),
            None => peer,
        }
    }

    /// Deletes counters no window needs any more; several instances may run this at once.
    pub async fn purge(&self, now: i64) -> Result<u64, DbErr> {
        match &self.inner {
            Some(i) => crate::db::limits::purge(&i.db, now).await,
            None => Ok(0),
        }
    }
}

fn counter<'a>(
    limit: Limit,
    key: &'a str,
    window: Window,
    now: i64,
) -> crate::db::limits::Counter<'a> {
    let start = window.start(now);
    crate::db::limits::Counter {
        kind: limit.kind(),
        key,
        window_start: start,
        expires_at: window.keep_until(start),
    }
}

impl Inner {
    /// Counts one call against `limit` and decides it.
    async fn count(&self, limit: Limit, key: &str, now: i64) -> Result<(), LimitError> {
        let max = self.settings.max(limit);
        if max == 0 {
            return Ok(());
        }
        let window = limit.window(self.settings.day_offset_secs);
        let current = crate::db::limits::hit(&self.db, counter(limit, key, window, now)).await?;
        let previous = if window.reads_previous() {
            let start = window.start(now);
            crate::db::limits::get(&self.db, limit.kind(), key, start - window.secs()).await?
        } else {
            0
        };
        verdict(limit, max, window, now, Counts { current, previous })
    }

    /// Decides a call against `limit` without counting it (the failure limit: failures are counted elsewhere).
    async fn check(&self, limit: Limit, key: &str, now: i64) -> Result<(), LimitError> {
        let max = self.settings.max(limit);
        if max == 0 {
            return Ok(());
        }
        let window = limit.window(self.settings.day_offset_secs);
        let so_far = crate::db::limits::get(&self.db, limit.kind(), key, window.start(now)).await?;
        let counts = Counts {
            current: so_far + 1,
            previous: 0,
        };
        verdict(limit, max, window, now, counts)
    }
}

fn verdict(
    limit: Limit,
    max: u32,
    window: Window,
    now: i64,
    counts: Counts,
) -> Result<(), LimitError> {
    match decide(max, window, now, counts) {
        Decision::Allow => Ok(()),
        Decision::Refuse { retry_after } => {
            tracing::info!(limit = limit.kind(), retry_after, "call refused by a limit");
            Err(LimitError::Exceeded(Refusal { limit, retry_after }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_counts_identities_apps_and_addresses_in_the_database() {
        use sea_orm::ConnectionTrait;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (_dir, db) = crate::db::fresh_sqlite().await;
            let settings = LimitSettings {
                identity_per_minute: 3,
                identity_per_day: 5,
                identity_failures_per_day: 2,
                app_per_second: 2,
                address_per_minute: 2,
                ..LimitSettings::default()
            };
            let l = Limiter::new(db.clone(), settings, &[9; 32]);
            let refused = |r: Result<(), LimitError>| match r {
                Err(LimitError::Exceeded(r)) => Some(r.limit),
                Ok(()) => None,
                Err(e) => panic!("{e}"),
            };
            let no = "11010519491231002X";
            let t = 1_796_342_400; // a midnight (UTC)
            for _ in 0..3 {
                assert_eq!(refused(l.identity_call(no, t).await), None);
            }
            assert_eq!(
                refused(l.identity_call(no, t + 1).await),
                Some(Limit::IdentityPerMinute)
            );
            // Another number is not affected; the same one written in lower case is the same.
            assert_eq!(
                refused(l.identity_call("110105194912310038", t).await),
                None
            );
            assert_eq!(
                refused(l.identity_call("11010519491231002x", t + 2).await),
                Some(Limit::IdentityPerMinute)
            );
            // Two minutes later the minute is clear, and the day fills up: 3 counted so far, 2 more pass.
            for _ in 0..2 {
                assert_eq!(refused(l.identity_call(no, t + 180).await), None);
            }
            assert_eq!(
                refused(l.identity_call(no, t + 181).await),
                Some(Limit::IdentityPerDay)
            );
            // Failures: two, and the number is refused for the rest of the day.
            let other = "110105194912310038";
            l.identity_failed(other, t + 10).await;
            assert_eq!(refused(l.identity_call(other, t + 300).await), None);
            l.identity_failed(other, t + 20).await;
            assert_eq!(
                refused(l.identity_call(other, t + 400).await),
                Some(Limit::IdentityFailuresPerDay)
            );
            assert_eq!(
                refused(l.identity_call(other, t + 86_400).await),
                None,
                "a new day"
            );
            // Nothing in the table names the numbers.
            let rows = db
                .query_all(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    "SELECT counter_key FROM rate_counters",
                ))
                .await
                .unwrap();
            assert!(!rows.is_empty());
            for r in rows {
                let k: String = r.try_get("", "counter_key").unwrap();
                assert!(!k.contains("110105") && k.len() == 32, "{k}");
            }
            // Apps per second.
            for _ in 0..2 {
                assert_eq!(refused(l.app_call("2021", t).await), None);
            }
            assert_eq!(
                refused(l.app_call("2021", t).await),
                Some(Limit::AppPerSecond)
            );
            assert_eq!(refused(l.app_call("2021", t + 1).await), None);
            assert_eq!(refused(l.app_call("2022", t).await), None);
            // Addresses per minute, IPv6 by /64.
            let a: std::net::IpAddr = "2001:db8:1:2::1".parse().unwrap();
            let b: std::net::IpAddr = "2001:db8:1:2::2".parse().unwrap();
            assert_eq!(refused(l.address_call(a, t).await), None);
            assert_eq!(refused(l.address_call(b, t).await), None);
            assert_eq!(
                refused(l.address_call(a, t + 5).await),
                Some(Limit::AddressPerMinute)
            );
            // Purging at a later day leaves nothing.
            assert!(l.purge(t + 3 * 86_400).await.unwrap() > 0);
            assert_eq!(l.purge(t + 3 * 86_400).await.unwrap(), 0);
        });
    }

    const MIN: Window = Window::Sliding { secs: 60 };
    const SEC: Window = Window::Fixed { secs: 1 };
    // 2026-12-04 00:00:00 UTC.
    const MIDNIGHT: i64 = 1_796_342_400;

    fn counts(current: i64, previous: i64) -> Counts {
        Counts { current, previous }
    }

    #[test]
    fn windows_start_where_they_should() {
        assert_eq!(MIN.start(MIDNIGHT + 59), MIDNIGHT);
        assert_eq!(MIN.start(MIDNIGHT + 60), MIDNIGHT + 60);
        assert_eq!(MIN.start(MIDNIGHT - 1), MIDNIGHT - 60);
        assert_eq!(SEC.start(MIDNIGHT + 7), MIDNIGHT + 7);
        assert_eq!(
            Window::Fixed { secs: 0 }.secs(),
            1,
            "a zero length is one second"
        );
        let utc = Window::Day { offset_secs: 0 };
        assert_eq!(utc.start(MIDNIGHT), MIDNIGHT);
        assert_eq!(utc.start(MIDNIGHT + DAY_SECS - 1), MIDNIGHT);
        assert_eq!(utc.start(MIDNIGHT - 1), MIDNIGHT - DAY_SECS);
        // Beijing's day starts at 16:00 UTC the day before.
        let beijing = Window::Day {
            offset_secs: 8 * 3600,
        };
        assert_eq!(beijing.start(MIDNIGHT), MIDNIGHT - 8 * 3600);
        assert_eq!(beijing.start(MIDNIGHT + 16 * 3600 - 1), MIDNIGHT - 8 * 3600);
        assert_eq!(beijing.start(MIDNIGHT + 16 * 3600), MIDNIGHT + 16 * 3600);
        let west = Window::Day {
            offset_secs: -5 * 3600,
        };
        assert_eq!(west.start(MIDNIGHT + 5 * 3600), MIDNIGHT + 5 * 3600);
        assert_eq!(
            west.start(MIDNIGHT + 5 * 3600 - 1),
            MIDNIGHT + 5 * 3600 - DAY_SECS
        );
        // Before 1970 too (negative times).
        assert_eq!(MIN.start(-1), -60);
        assert_eq!(utc.start(-1), -DAY_SECS);
    }

    #[test]
    fn counters_are_kept_as_long_as_a_decision_reads_them() {
        assert_eq!(MIN.keep_until(MIDNIGHT), MIDNIGHT + 120);
        assert_eq!(SEC.keep_until(MIDNIGHT), MIDNIGHT + 1);
        assert_eq!(
            Window::Day { offset_secs: 3600 }.keep_until(MIDNIGHT),
            MIDNIGHT + DAY_SECS
        );
        assert!(MIN.reads_previous() && !SEC.reads_previous());
        assert!(!Window::Day { offset_secs: 0 }.reads_previous());
    }

    #[test]
    fn every_limit_has_a_distinct_kind_and_its_window() {
        let kinds: std::collections::BTreeSet<_> = Limit::ALL.iter().map(|l| l.kind()).collect();
        assert_eq!(kinds.len(), Limit::ALL.len());
        assert!(kinds.iter().all(|k| k.len() <= 16));
        for l in Limit::ALL {
            assert!(!l.describe().is_empty());
            assert_eq!(
                l.is_daily(),
                matches!(l.window(0), Window::Day { .. }),
                "{l:?}"
            );
            assert!(!l.is_daily() || l.is_identity(), "{l:?}");
        }
        assert_eq!(Limit::AppPerSecond.window(0), SEC);
        assert_eq!(Limit::AddressPerMinute.window(0), MIN);
        assert_eq!(
            Limit::IdentityPerDay.window(28800),
            Window::Day { offset_secs: 28800 }
        );
    }

    #[test]
    fn zero_is_no_limit() {
        for w in [MIN, SEC, Window::Day { offset_secs: 0 }] {
            assert_eq!(
                decide(0, w, MIDNIGHT, counts(1_000_000, 1_000_000)),
                Decision::Allow
            );
        }
    }

    #[test]
    fn fixed_windows_allow_max_then_refuse_until_the_next() {
        for n in 1..=50 {
            assert_eq!(decide(50, SEC, MIDNIGHT, counts(n, 0)), Decision::Allow);
        }
        assert_eq!(
            decide(50, SEC, MIDNIGHT, counts(51, 0)),
            Decision::Refuse { retry_after: 1 }
        );
        // The previous window is ignored.
        assert_eq!(decide(50, SEC, MIDNIGHT, counts(1, 1000)), Decision::Allow);
        let day = Window::Day { offset_secs: 0 };
        assert_eq!(
            decide(30, day, MIDNIGHT + 3600, counts(30, 0)),
            Decision::Allow
        );
        assert_eq!(
            decide(30, day, MIDNIGHT + 3600, counts(31, 0)),
            Decision::Refuse {
                retry_after: DAY_SECS - 3600
            }
        );
        assert_eq!(
            decide(30, day, MIDNIGHT + DAY_SECS - 1, counts(99, 0)),
            Decision::Refuse { retry_after: 1 }
        );
    }

    #[test]
    fn a_sliding_window_counts_the_previous_one_in_proportion() {
        // Fresh: exactly max calls pass.
        for n in 1..=15 {
            assert_eq!(
                decide(15, MIN, MIDNIGHT + 30, counts(n, 0)),
                Decision::Allow,
                "{n}"
            );
        }
        assert!(matches!(
            decide(15, MIN, MIDNIGHT + 30, counts(16, 0)),
            Decision::Refuse { .. }
        ));
        // 15 calls at the very end of the previous window still count in full at the start of this one: the
        // 16th within a minute is refused even across the edge.
        assert!(matches!(
            decide(15, MIN, MIDNIGHT, counts(1, 15)),
            Decision::Refuse { .. }
        ));
        // Half way through, half of the previous window counts: 10 + 10 × 1/2 = 15 passes, 11 + 5 does not.
        assert_eq!(
            decide(15, MIN, MIDNIGHT + 30, counts(10, 10)),
            Decision::Allow
        );
        assert!(matches!(
            decide(15, MIN, MIDNIGHT + 30, counts(11, 10)),
            Decision::Refuse { .. }
        ));
        // Negative previous counts (never stored) do not make room.
        assert!(matches!(
            decide(15, MIN, MIDNIGHT + 30, counts(16, -100)),
            Decision::Refuse { .. }
        ));
    }

    /// Simulates the sliding estimate second by second; the first second at which one more call fits.
    fn first_fit(max: i64, len: i64, elapsed: i64, current: i64, previous: i64) -> i64 {
        for s in 1..=3 * len {
            let t = elapsed + s;
            let est_times_len = if t < len {
                (current + 1) * len + previous * (len - t)
            } else if t < 2 * len {
                len + current * (2 * len - t)
            } else {
                len
            };
            if est_times_len <= max * len {
                return s;
            }
        }
        panic!("never fits");
    }

    #[test]
    fn sliding_retry_after_is_exactly_the_first_second_that_fits() {
        let len = 60;
        for max in [1, 2, 3, 15, 60] {
            for elapsed in [0, 1, 17, 30, 59] {
                for current in 0..=max + 3 {
                    for previous in [0, 1, max / 2, max, max + 5] {
                        let now = MIDNIGHT + elapsed;
                        let c = counts(current, previous);
                        let Decision::Refuse { retry_after } = decide(max as u32, MIN, now, c)
                        else {
                            continue;
                        };
                        assert_eq!(
                            retry_after,
                            first_fit(max, len, elapsed, current, previous),
                            "max {max} elapsed {elapsed} current {current} previous {previous}"
                        );
                        assert!((1..=2 * len).contains(&retry_after));
                    }
                }
            }
        }
    }

    #[test]
    fn identity_keys_are_keyed_normalised_and_hide_the_number() {
        let k1 = hmac::Key::new(hmac::HMAC_SHA256, &[1; 32]);
        let k2 = hmac::Key::new(hmac::HMAC_SHA256, &[2; 32]);
        let n = "11010519491231002X";
        let a = identity_key(&k1, n);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!a.contains("110105"));
        assert_eq!(identity_key(&k1, " 11010519491231002x "), a);
        assert_ne!(
            identity_key(&k2, n),
            a,
            "another server key, another counter key"
        );
        assert_ne!(identity_key(&k1, "110105194912310038"), a);
        // An ID number and an address never share a counter key, even when their text is equal.
        assert_ne!(blind(&k1, "id", "1.2.3.4"), blind(&k1, "addr", "1.2.3.4"));
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_group_by_ipv4_and_ipv6_64() {
        let k = hmac::Key::new(hmac::HMAC_SHA256, &[3; 32]);
        assert_eq!(address_group(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(address_group(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(
            address_group(ip("2001:db8:1:2:3:4:5:6")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            address_key(&k, ip("2001:db8:1:2::1")),
            address_key(&k, ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            address_key(&k, ip("2001:db8:1:2::1")),
            address_key(&k, ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            address_key(&k, ip("::ffff:192.0.2.7")),
            address_key(&k, ip("192.0.2.7"))
        );
        assert_ne!(
            address_key(&k, ip("192.0.2.7")),
            address_key(&k, ip("192.0.2.8"))
        );
    }

    #[test]
    fn ranges_parse_and_match() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains(ip("10.255.1.2")));
        assert!(c.contains(ip("::ffff:10.1.1.1")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(!c.contains(ip("::1")));
        let one = Cidr::parse(" 192.0.2.1 ").unwrap();
        assert!(one.contains(ip("192.0.2.1")) && !one.contains(ip("192.0.2.2")));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("2001:db8::1")));
        assert!(Cidr::parse("::1").unwrap().contains(ip("::1")));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "x",
            "10.0.0.0/",
            "10.0.0.0/-1",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_client_is_the_peer_unless_a_trusted_proxy_says_otherwise() {
        let proxies = [
            Cidr::parse("10.0.0.0/8").unwrap(),
            Cidr::parse("::1").unwrap(),
        ];
        let peer = ip("10.0.0.5");
        // No trusted proxies: the header is ignored.
        assert_eq!(client_address(peer, Some("203.0.113.9"), &[]), peer);
        // An untrusted peer: its header is ignored.
        assert_eq!(
            client_address(ip("198.51.100.1"), Some("203.0.113.9"), &proxies),
            ip("198.51.100.1")
        );
        // Trusted peer: the right-most untrusted hop, whatever the client wrote further left.
        assert_eq!(
            client_address(peer, Some("1.1.1.1, 203.0.113.9, 10.0.0.7"), &proxies),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_address(peer, Some("203.0.113.9"), &proxies),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_address(ip("::1"), Some("[2001:db8::5]:443"), &proxies),
            ip("2001:db8::5")
        );
        assert_eq!(
            client_address(peer, Some("203.0.113.9:5678"), &proxies),
            ip("203.0.113.9")
        );
        // Nothing usable: the last trusted hop seen.
        assert_eq!(client_address(peer, None, &proxies), peer);
        assert_eq!(client_address(peer, Some(""), &proxies), peer);
        assert_eq!(
            client_address(peer, Some("10.0.0.9"), &proxies),
            ip("10.0.0.9")
        );
        assert_eq!(
            client_address(peer, Some("203.0.113.9, garbage, 10.0.0.9"), &proxies),
            ip("10.0.0.9"),
            "a hop that is not an address stops the walk"
        );
        assert_eq!(client_address(peer, Some("unknown"), &proxies), peer);
    }

    #[test]
    fn settings_default_on_and_zero_off() {
        let s = LimitSettings::default();
        assert_eq!(s.max(Limit::IdentityPerMinute), 15);
        assert_eq!(s.max(Limit::IdentityPerDay), 30);
        assert!(Limit::ALL.iter().all(|&l| s.max(l) > 0));
        let off = LimitSettings::off();
        assert!(Limit::ALL.iter().all(|&l| off.max(l) == 0));
        let r = Refusal {
            limit: Limit::IdentityPerMinute,
            retry_after: 42,
        };
        assert_eq!(
            r.to_string(),
            "this ID number was named in too many calls within a minute; try again in 42 s"
        );
    }

    #[test]
    fn settings_come_from_the_config() {
        let mut c = crate::config::Config::default();
        assert_eq!(
            LimitSettings::from_config(&c).unwrap(),
            LimitSettings::default()
        );
        c.limits.identity_per_minute = 3;
        c.limits.trusted_proxies = vec!["10.0.0.0/8".into()];
        c.billing.utc_offset = crate::billing::Calendar::parse("+08:00").unwrap();
        let s = LimitSettings::from_config(&c).unwrap();
        assert_eq!(s.identity_per_minute, 3);
        assert_eq!(s.day_offset_secs, 8 * 3600);
        assert_eq!(s.trusted_proxies.len(), 1);
        c.limits.enabled = false;
        let s = LimitSettings::from_config(&c).unwrap();
        assert!(Limit::ALL.iter().all(|&l| s.max(l) == 0));
        assert_eq!(s.trusted_proxies.len(), 1);
        c.limits.trusted_proxies = vec!["proxy.internal".into()];
        assert!(LimitSettings::from_config(&c).is_err());
    }

    #[test]
    fn an_off_limiter_allows_everything_without_a_database() {
        let l = Limiter::off();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            assert!(l.app_call("2021", 0).await.is_ok());
            assert!(l.identity_call("11010519491231002X", 0).await.is_ok());
            l.identity_failed("11010519491231002X", 0).await;
            assert!(l.address_call(ip("192.0.2.1"), 0).await.is_ok());
            assert_eq!(l.purge(0).await.unwrap(), 0);
        });
        assert_eq!(
            l.client_address(ip("10.0.0.1"), Some("1.1.1.1")),
            ip("10.0.0.1")
        );
        assert!(l.settings().is_none());
    }
}
