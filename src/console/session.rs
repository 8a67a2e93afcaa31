//! Console sessions: a stateless cookie signed with HMAC-SHA256 under a key derived from the admin token (so a new
//! admin token ends every session), with an expiry; the CSRF token of a session is an HMAC of its nonce. Both are
//! checked in constant time. Logged-out sessions are remembered in the database until they expire
//! (`crate::db::console_sessions`), so a logout holds across restarts and instances; the console checks there on
//! every request.
use ring::hmac;

/// Cookie name of the console session.
pub const COOKIE: &str = "shiren_console";
/// Path the cookie is sent to.
pub const COOKIE_PATH: &str = "/console";
/// How long a session lasts, in seconds (8 hours).
pub const TTL_SECS: i64 = 8 * 3600;

/// A valid session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub nonce: String,
    pub expires_at: i64,
}

/// The console's signing key.
pub struct Sessions {
    key: Option<hmac::Key>,
}

impl Sessions {
    /// Sessions for an admin token; without one (or an empty one) there is no console.
    pub fn new(admin_token: Option<&str>) -> Sessions {
        let key = admin_token.filter(|t| !t.is_empty()).map(|t| {
            let derive = hmac::Key::new(hmac::HMAC_SHA256, t.as_bytes());
            let k = hmac::sign(&derive, b"shiren console session key v1");
            hmac::Key::new(hmac::HMAC_SHA256, k.as_ref())
        });
        Sessions { key }
    }

    /// Whether the console is on (an admin token is configured).
    pub fn enabled(&self) -> bool {
        self.key.is_some()
    }

    fn payload(nonce: &str, expires_at: i64) -> String {
        format!("session|{nonce}|{expires_at}")
    }

    /// A new session's cookie value, valid until `now + TTL_SECS`; none when the console is off.
    pub fn issue(&self, now: i64) -> Option<(String, Session)> {
        let key = self.key.as_ref()?;
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let expires_at = now + TTL_SECS;
        let tag = hmac::sign(key, Self::payload(&nonce, expires_at).as_bytes());
        Some((
            format!("{nonce}.{expires_at}.{}", hex::encode(tag.as_ref())),
            Session { nonce, expires_at },
        ))
    }

    /// The session of a cookie value, when its signature is right and it has not expired (whether it was logged out
    /// is the database's to say: `crate::db::console_sessions::is_revoked`).
    pub fn verify(&self, cookie: &str, now: i64) -> Option<Session> {
        let key = self.key.as_ref()?;
        let mut parts = cookie.split('.');
        let (nonce, expires, tag) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some()
            || nonce.len() != 32
            || !nonce.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return None;
        }
        let expires_at: i64 = expires.parse().ok()?;
        let tag = hex::decode(tag).ok()?;
        hmac::verify(key, Self::payload(nonce, expires_at).as_bytes(), &tag).ok()?;
        if now >= expires_at {
            return None;
        }
        Some(Session {
            nonce: nonce.to_string(),
            expires_at,
        })
    }

    /// The CSRF token of a session (every form of the session carries it).
    pub fn csrf_token(&self, session: &Session) -> String {
        match &self.key {
            Some(key) => {
                hex::encode(hmac::sign(key, format!("csrf|{}", session.nonce).as_bytes()).as_ref())
            }
            None => String::new(),
        }
    }

    /// Whether `given` is the session's CSRF token (constant time).
    pub fn csrf_ok(&self, session: &Session, given: Option<&str>) -> bool {
        let (Some(key), Some(given)) = (&self.key, given) else {
            return false;
        };
        let Ok(tag) = hex::decode(given.trim()) else {
            return false;
        };
        hmac::verify(key, format!("csrf|{}", session.nonce).as_bytes(), &tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_admin_token_no_console() {
        for t in [None, Some("")] {
            let s = Sessions::new(t);
            assert!(!s.enabled());
            assert!(s.issue(0).is_none());
            assert!(s.verify("a.1.b", 0).is_none());
        }
    }

    #[test]
    fn sessions_verify_until_expiry() {
        let s = Sessions::new(Some("token-1"));
        let (cookie, session) = s.issue(1000).unwrap();
        assert_eq!(s.verify(&cookie, 1001), Some(session.clone()));
        assert_eq!(s.verify(&cookie, 1000 + TTL_SECS), None, "expired");
        // Another admin token does not accept it.
        assert_eq!(Sessions::new(Some("token-2")).verify(&cookie, 1001), None);
        // Tampering with any part breaks the signature.
        let (n, rest) = cookie.split_once('.').unwrap();
        let (exp, tag) = rest.split_once('.').unwrap();
        let later = format!("{n}.{}.{tag}", exp.parse::<i64>().unwrap() + 3600);
        assert_eq!(s.verify(&later, 1001), None);
        let mut other_nonce = n.to_string();
        other_nonce.replace_range(0..1, if n.starts_with('0') { "1" } else { "0" });
        assert_eq!(s.verify(&format!("{other_nonce}.{exp}.{tag}"), 1001), None);
        for junk in ["", "x", "a.b.c", &format!("{cookie}.x"), "..."] {
            assert_eq!(s.verify(junk, 1001), None, "{junk}");
        }
    }

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let s = Sessions::new(Some("token-1"));
        let (_, a) = s.issue(0).unwrap();
        let (_, b) = s.issue(0).unwrap();
        let ta = s.csrf_token(&a);
        assert!(s.csrf_ok(&a, Some(&ta)));
        assert!(!s.csrf_ok(&b, Some(&ta)));
        assert!(!s.csrf_ok(&a, None));
        assert!(!s.csrf_ok(&a, Some("")));
        assert!(!s.csrf_ok(&a, Some("zz")));
        assert!(!s.csrf_ok(&a, Some(&ta[..ta.len() - 2])));
    }
}
