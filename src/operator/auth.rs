//! Admin-token checks (the admin API and the console's login) and the console's session revocations.
use std::net::IpAddr;

use sha2::{Digest, Sha256};

use super::{Operator, Result};
use crate::db::{console_sessions, limits};
use crate::domain::limit::Window;
use crate::limits::{address_group, decide, Counts, Decision};

/// Wrong admin tokens an address may give within [`WINDOW_SECS`] (sliding).
pub const MAX_FAILURES: u32 = 10;
/// The window wrong admin tokens count in, in seconds (15 minutes).
pub const WINDOW_SECS: i64 = 15 * 60;
/// The counters' kind, and the purpose of their blind index.
const THROTTLE_KIND: &str = "admin_token"; // the column holds 16 characters
const THROTTLE_PURPOSE: &str = "shiren admin-token failures v1";

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

/// Whether `given` is the configured token, compared in constant time (both are hashed first, so neither the
/// length nor a prefix of the token leaks through timing).
pub fn token_matches(configured: Option<&str>, given: &str) -> bool {
    let Some(configured) = configured.filter(|t| !t.is_empty()) else {
        return false;
    };
    let a = Sha256::digest(configured.as_bytes());
    let b = Sha256::digest(given.as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

impl Operator {
    /// Whether an admin token is configured (without one the console and the admin API refuse everyone).
    pub fn admin_enabled(&self) -> bool {
        self.settings
            .admin_token
            .as_deref()
            .is_some_and(|t| !t.is_empty())
    }

    /// An attempt with the admin token `given` from `client`, decided and counted by the one throttle of failed
    /// attempts per address, kept in the database so that every instance sees the same failures; refusals are
    /// logged, as `what`'s, without the token. A throttle the database cannot answer refuses (fails closed).
    pub async fn admin_attempt(&self, client: IpAddr, given: &str, what: &'static str) -> Attempt {
        let valid = token_matches(self.settings.admin_token.as_deref(), given);
        let attempt = match self.throttled_attempt(client, valid).await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "{what}: the admin-token throttle cannot reach the database");
                Attempt::Locked { retry_after: 1 }
            }
        };
        match attempt {
            Attempt::Valid => {}
            Attempt::Wrong => tracing::warn!("{what} refused: wrong admin token"),
            Attempt::Locked { .. } => {
                tracing::warn!("{what} refused: too many wrong admin tokens from the address")
            }
        }
        attempt
    }

    async fn throttled_attempt(&self, client: IpAddr, valid: bool) -> Result<Attempt> {
        let now = self.now();
        // The address (IPv6: its /64) under a blind index: the counters hold no client address.
        let key = self
            .store
            .keys()
            .ring()
            .index(THROTTLE_PURPOSE, &address_group(client).to_string());
        let window = Window::Sliding { secs: WINDOW_SECS };
        let start = window.start(now);
        let counts = Counts {
            // As if this attempt failed too: refused when it would be one failure too many.
            current: limits::get(&self.db, THROTTLE_KIND, &key, start).await? + 1,
            previous: limits::get(&self.db, THROTTLE_KIND, &key, start - WINDOW_SECS).await?,
        };
        if let Decision::Refuse { retry_after } = decide(MAX_FAILURES, window, now, counts) {
            return Ok(Attempt::Locked { retry_after });
        }
        if valid {
            if counts.current > 1 || counts.previous > 0 {
                limits::forget(&self.db, THROTTLE_KIND, &key).await?;
            }
            return Ok(Attempt::Valid);
        }
        let counter = limits::Counter {
            kind: THROTTLE_KIND,
            key: &key,
            window_start: start,
            expires_at: window.keep_until(start),
        };
        limits::hit(&self.db, counter).await?;
        Ok(Attempt::Wrong)
    }

    /// Whether a console session was logged out (asked of the database, so a logout holds on every instance).
    pub async fn session_revoked(&self, nonce: &str) -> Result<bool> {
        Ok(console_sessions::is_revoked(&self.db, nonce).await?)
    }

    /// Logs a console session out until it would have expired.
    pub async fn revoke_session(&self, nonce: &str, expires_at: i64) -> Result<()> {
        Ok(console_sessions::revoke(&self.db, nonce, expires_at, self.now()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_when_configured_and_equal() {
        assert!(token_matches(Some("s3cret"), "s3cret"));
        assert!(!token_matches(Some("s3cret"), "s3cre"));
        assert!(!token_matches(Some(""), ""));
        assert!(!token_matches(None, "anything"));
    }

    async fn operator(dir: &std::path::Path) -> (tempfile::TempDir, Operator) {
        let (db_dir, db) = crate::db::fresh_sqlite().await;
        let keys = crate::privacy::DataKeys::fixed(crate::domain::seal::KeyRing::new(
            crate::domain::seal::DataKey::from_bytes(&[7; 32]),
            vec![],
        ));
        let store = crate::storage::ObjectStore::new(dir, keys);
        let settings = super::super::OperatorSettings {
            calendar: crate::domain::calendar::Calendar::UTC,
            allow_legacy_rsa_keys: false,
            admin_token: Some("the-right-admin-token".into()),
        };
        (db_dir, Operator::new(db, store, settings))
    }

    #[tokio::test]
    async fn wrong_tokens_lock_an_address_out_and_the_right_one_forgets_them() {
        let dir = tempfile::tempdir().unwrap();
        let (_db_dir, op) = operator(dir.path()).await;
        let (a, b) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..MAX_FAILURES - 1 {
            assert_eq!(op.admin_attempt(a, "guess", "test").await, Attempt::Wrong);
        }
        // The right token forgets the failures; then ten wrong ones in a row lock the address out.
        let right = "the-right-admin-token";
        assert_eq!(op.admin_attempt(a, right, "test").await, Attempt::Valid);
        for _ in 0..MAX_FAILURES {
            assert_eq!(op.admin_attempt(a, "guess", "test").await, Attempt::Wrong);
        }
        let locked = op.admin_attempt(a, right, "test").await;
        assert!(
            matches!(locked, Attempt::Locked { retry_after } if retry_after > 0 && retry_after <= 2 * WINDOW_SECS),
            "{locked:?}"
        );
        // Another address, and the same /64 of IPv6 counted as one.
        assert_eq!(op.admin_attempt(b, right, "test").await, Attempt::Valid);
        let (v6a, v6b) = (
            "2001:db8:1:2::1".parse().unwrap(),
            "2001:db8:1:2::ff".parse().unwrap(),
        );
        for _ in 0..MAX_FAILURES {
            assert_eq!(op.admin_attempt(v6a, "guess", "test").await, Attempt::Wrong);
        }
        assert!(matches!(
            op.admin_attempt(v6b, "guess", "test").await,
            Attempt::Locked { .. }
        ));
        // No address is stored in clear.
        let rows = sea_orm::ConnectionTrait::query_all(
            &op.db,
            sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Sqlite,
                "SELECT counter_key FROM rate_counters",
            ),
        )
        .await
        .unwrap();
        for r in rows {
            let k: String = r.try_get("", "counter_key").unwrap();
            assert!(!k.contains("192.0.2") && !k.contains("2001:db8"), "{k}");
        }
    }
}
