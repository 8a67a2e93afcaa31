//! Guessing the admin token: failed attempts (console login and admin API) are counted per client address, and an
//! address with too many recent failures is refused until the oldest of them is old enough. IPv6 addresses count by
//! their /64 prefix, which one client usually holds whole. Behind a reverse proxy every client has the proxy's
//! address, so the limit becomes one for all: the token is still protected, at the price of locking operators out
//! for a while during an attack.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Failures an address may have within [`WINDOW_SECS`].
pub const MAX_FAILURES: usize = 10;
/// How long a failure counts, in seconds (15 minutes).
pub const WINDOW_SECS: i64 = 15 * 60;
/// Addresses remembered at most; beyond it the one whose last failure is oldest is forgotten.
const MAX_ADDRESSES: usize = 65_536;

/// What an attempt with the admin token comes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The token was right; the address's failures are forgotten.
    Valid,
    /// The token was wrong; the failure is counted.
    Wrong,
    /// The address has too many recent failures: refused whatever the token, for this many more seconds.
    Locked { retry_after: i64 },
}

/// Recent failures per client address.
pub struct Throttle {
    failures: Mutex<HashMap<IpAddr, Vec<i64>>>,
    max_failures: usize,
    window_secs: i64,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new(MAX_FAILURES, WINDOW_SECS)
    }
}

/// The key an address counts under: itself, or for IPv6 its /64 (an IPv4-mapped IPv6 address is its IPv4 one).
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl Throttle {
    pub fn new(max_failures: usize, window_secs: i64) -> Throttle {
        Throttle {
            failures: Mutex::new(HashMap::new()),
            max_failures: max_failures.max(1),
            window_secs: window_secs.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Vec<i64>>> {
        // The map holds counters only; a panic elsewhere cannot leave it inconsistent.
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decides an attempt from `ip` whose token was `valid`, and records it, under one lock (so concurrent
    /// attempts cannot all slip past the limit).
    pub fn attempt(&self, ip: IpAddr, now: i64, valid: bool) -> Attempt {
        let mut map = self.lock();
        if let Some(retry_after) = self.retry_after_in(&mut map, ip, now) {
            return Attempt::Locked { retry_after };
        }
        if valid {
            map.remove(&key(ip));
            Attempt::Valid
        } else {
            self.failed_in(&mut map, ip, now);
            Attempt::Wrong
        }
    }

    /// `None` when `ip` may try now; else the seconds until it may.
    pub fn retry_after(&self, ip: IpAddr, now: i64) -> Option<i64> {
        self.retry_after_in(&mut self.lock(), ip, now)
    }

    fn retry_after_in(
        &self,
        map: &mut HashMap<IpAddr, Vec<i64>>,
        ip: IpAddr,
        now: i64,
    ) -> Option<i64> {
        let list = map.get_mut(&key(ip))?;
        list.retain(|&t| t > now - self.window_secs);
        if list.len() < self.max_failures {
            return None;
        }
        // The failure whose expiry brings the count below the limit.
        let oldest_counted = list[list.len() - self.max_failures];
        Some((oldest_counted + self.window_secs - now).max(1))
    }

    /// Counts a failed attempt from `ip`.
    pub fn failed(&self, ip: IpAddr, now: i64) {
        self.failed_in(&mut self.lock(), ip, now)
    }

    fn failed_in(&self, map: &mut HashMap<IpAddr, Vec<i64>>, ip: IpAddr, now: i64) {
        let k = key(ip);
        if !map.contains_key(&k) && map.len() >= MAX_ADDRESSES {
            let window = self.window_secs;
            map.retain(|_, l| l.last().is_some_and(|&t| t > now - window));
            if map.len() >= MAX_ADDRESSES {
                if let Some(stalest) = map
                    .iter()
                    .min_by_key(|(_, l)| l.last().copied().unwrap_or(i64::MIN))
                    .map(|(k, _)| *k)
                {
                    map.remove(&stalest);
                }
            }
        }
        let list = map.entry(k).or_default();
        list.retain(|&t| t > now - self.window_secs);
        list.push(now);
        // Only the last `max_failures` matter.
        if list.len() > self.max_failures {
            let extra = list.len() - self.max_failures;
            list.drain(..extra);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_is_refused_after_too_many_failures_until_the_oldest_expires() {
        let t = Throttle::new(3, 100);
        let a = ip("192.0.2.1");
        for now in [10, 20, 30] {
            assert_eq!(t.retry_after(a, now), None);
            t.failed(a, now);
        }
        assert_eq!(t.retry_after(a, 31), Some(79));
        assert_eq!(t.retry_after(a, 109), Some(1));
        assert_eq!(
            t.retry_after(a, 110),
            None,
            "the failure at 10 no longer counts"
        );
        t.failed(a, 110);
        assert_eq!(t.retry_after(a, 111), Some(9), "20, 30 and 110 count");
        assert_eq!(
            t.retry_after(ip("192.0.2.2"), 111),
            None,
            "others are not affected"
        );
        assert_eq!(t.attempt(a, 111, true), Attempt::Locked { retry_after: 9 });
        assert_eq!(t.attempt(a, 120, true), Attempt::Valid, "20 has expired");
        assert_eq!(
            t.retry_after(a, 120),
            None,
            "a valid token forgets the failures"
        );
        for now in [121, 122, 123] {
            assert_eq!(t.attempt(a, now, false), Attempt::Wrong);
        }
        assert_eq!(
            t.attempt(a, 124, false),
            Attempt::Locked { retry_after: 97 }
        );
    }

    #[test]
    fn ipv6_counts_by_its_64_prefix_and_mapped_ipv4_as_ipv4() {
        let t = Throttle::new(2, 100);
        t.failed(ip("2001:db8:1:2::1"), 0);
        t.failed(ip("2001:db8:1:2:ffff::9"), 1);
        assert!(t.retry_after(ip("2001:db8:1:2::77"), 2).is_some());
        assert_eq!(t.retry_after(ip("2001:db8:1:3::1"), 2), None);
        t.failed(ip("::ffff:192.0.2.7"), 0);
        t.failed(ip("192.0.2.7"), 1);
        assert!(t.retry_after(ip("192.0.2.7"), 2).is_some());
    }

    #[test]
    fn the_table_stays_bounded() {
        let t = Throttle::new(2, 1_000_000);
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            t.failed(IpAddr::V4(std::net::Ipv4Addr::from(i)), i64::from(i));
        }
        assert_eq!(t.lock().len(), MAX_ADDRESSES);
        // The stalest addresses were forgotten, the latest kept.
        assert!(!t.lock().contains_key(&ip("0.0.0.0")));
        assert!(t.lock().contains_key(&IpAddr::V4(std::net::Ipv4Addr::from(
            MAX_ADDRESSES as u32 + 9
        ))));
    }
}
