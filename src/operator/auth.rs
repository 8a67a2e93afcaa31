//! Admin-token checks (the admin API and the console's login) and the console's session revocations.
use std::net::IpAddr;

use sha2::{Digest, Sha256};

use super::{Attempt, Operator, Result};
use crate::db::console_sessions;

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
    /// attempts per address; refusals are logged, as `what`'s, without the token.
    pub fn admin_attempt(&self, client: IpAddr, given: &str, what: &'static str) -> Attempt {
        let valid = token_matches(self.settings.admin_token.as_deref(), given);
        let attempt = self.throttle.attempt(client, self.now(), valid);
        match attempt {
            Attempt::Valid => {}
            Attempt::Wrong => tracing::warn!("{what} refused: wrong admin token"),
            Attempt::Locked { .. } => {
                tracing::warn!("{what} refused: too many wrong admin tokens from the address")
            }
        }
        attempt
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
}
