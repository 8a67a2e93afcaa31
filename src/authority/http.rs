//! An external authority over HTTP.
//!
//! Request: `POST {url}` (https; plain http only under a test setting) with JSON
//! `{"cert_no": "…", "cert_name": "…"}` and the headers `X-Shiren-Timestamp: <unix seconds>`,
//! `X-Shiren-Nonce: <32 hex digits, fresh for every request>` and
//! `X-Shiren-Signature: <hex HMAC-SHA256(secret, timestamp + "\n" + nonce + "\n" + body)>`.
//! Answer: HTTP 200 with JSON `{"result": "match" | "name_mismatch" | "not_found", "photo": "<base64>"}` (the photo
//! only with `match`), signed the same way over the request's timestamp and nonce and the answer body in
//! `X-Shiren-Signature`. Unsigned or wrongly signed answers are rejected: a forged "match" must not pass anyone, and
//! an answer recorded for one request (one nonce) cannot be replayed as the answer to another.
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::hmac;
use serde::Deserialize;

use super::{Authority, AuthorityError, Lookup, ReferenceFace};
use crate::domain::sensitive::Sensitive;

pub struct HttpAuthority {
    url: String,
    key: hmac::Key,
    client: reqwest::Client,
}

/// What is signed, both ways: `timestamp + "\n" + nonce + "\n" + body`.
fn signed_bytes(timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(timestamp.len() + nonce.len() + 2 + body.len());
    msg.extend_from_slice(timestamp.as_bytes());
    msg.push(b'\n');
    msg.extend_from_slice(nonce.as_bytes());
    msg.push(b'\n');
    msg.extend_from_slice(body);
    msg
}

/// The signature (hex) of `body` under the request's `timestamp` and `nonce`: what the authority checks on a
/// request and sends back over its answer.
pub fn sign(secret: &[u8], timestamp: &str, nonce: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hex::encode(hmac::sign(&key, &signed_bytes(timestamp, nonce, body)).as_ref())
}

#[derive(Deserialize)]
struct Answer {
    result: String,
    #[serde(default)]
    photo: Option<String>,
}

/// Largest answer accepted (a photo of a few hundred KB, base64).
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

impl HttpAuthority {
    /// An authority at `url`, which must be `https://…`; `allow_http` (a test-only setting) also accepts `http://…`.
    pub fn new(
        url: String,
        secret: &str,
        timeout: Duration,
        allow_http: bool,
    ) -> Result<HttpAuthority, AuthorityError> {
        if secret.len() < 16 {
            return Err(AuthorityError::Misconfigured(
                "the authority secret must be at least 16 characters".into(),
            ));
        }
        let parsed = reqwest::Url::parse(&url).map_err(|e| {
            AuthorityError::Misconfigured(format!("the authority URL is not a URL: {e}"))
        })?;
        match parsed.scheme() {
            "https" => {}
            "http" if allow_http => {}
            _ => {
                return Err(AuthorityError::Misconfigured(
                    "the authority URL must be https:// (it carries names and ID numbers)".into(),
                ))
            }
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(AuthorityError::Misconfigured(
                "the authority URL has no host".into(),
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AuthorityError::Unavailable(e.to_string()))?;
        Ok(HttpAuthority {
            url,
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
            client,
        })
    }

    fn verify(&self, timestamp: &str, nonce: &str, body: &[u8], signature: &str) -> bool {
        let Ok(sig) = hex::decode(signature.trim()) else {
            return false;
        };
        hmac::verify(&self.key, &signed_bytes(timestamp, nonce, body), &sig).is_ok()
    }
}

/// Reads an answer body chunk by chunk, refusing it as soon as it passes `max` bytes (with or without a
/// Content-Length), so an endless or huge answer never sits in memory.
async fn read_capped(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, AuthorityError> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(AuthorityError::BadAnswer("answer too large".into()));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| AuthorityError::Unavailable(e.without_url().to_string()))?
    {
        if bytes.len() + chunk.len() > max {
            return Err(AuthorityError::BadAnswer("answer too large".into()));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[async_trait::async_trait]
impl Authority for HttpAuthority {
    async fn lookup(&self, cert_no: &str, cert_name: &str) -> Result<Lookup, AuthorityError> {
        let body =
            serde_json::to_vec(&serde_json::json!({"cert_no": cert_no, "cert_name": cert_name}))
                .map_err(|e| AuthorityError::BadAnswer(e.to_string()))?;
        let ts = chrono::Utc::now().timestamp().to_string();
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let sig = hex::encode(hmac::sign(&self.key, &signed_bytes(&ts, &nonce, &body)).as_ref());
        let resp = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-shiren-timestamp", &ts)
            .header("x-shiren-nonce", &nonce)
            .header("x-shiren-signature", sig)
            .body(body)
            .send()
            .await
            .map_err(|e| AuthorityError::Unavailable(e.without_url().to_string()))?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(AuthorityError::Unavailable(format!("HTTP {status}")));
        }
        if !status.is_success() {
            return Err(AuthorityError::BadAnswer(format!("HTTP {status}")));
        }
        let signature = resp
            .headers()
            .get("x-shiren-signature")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .unwrap_or_default();
        let bytes = read_capped(resp, MAX_ANSWER_BYTES).await?;
        if !self.verify(&ts, &nonce, &bytes, &signature) {
            return Err(AuthorityError::BadAnswer("answer signature invalid".into()));
        }
        let a: Answer = serde_json::from_slice(&bytes)
            .map_err(|e| AuthorityError::BadAnswer(format!("answer not understood: {e}")))?;
        match a.result.as_str() {
            "match" => {
                let photo = a
                    .photo
                    .and_then(|p| B64.decode(p.trim()).ok())
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| AuthorityError::BadAnswer("match without a photo".into()))?;
                Ok(Lookup::Match(ReferenceFace::Photo(Sensitive::new(photo))))
            }
            "name_mismatch" => Ok(Lookup::NameMismatch),
            "not_found" => Ok(Lookup::NotFound),
            other => Err(AuthorityError::BadAnswer(format!(
                "unknown result {other:?}"
            ))),
        }
    }

    fn kind(&self) -> &'static str {
        "http"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef";
    const NONCE: &str = "00112233445566778899aabbccddeeff";

    #[test]
    fn signatures_verify_only_for_the_same_timestamp_nonce_and_bytes() {
        let a = HttpAuthority::new(
            "https://authority.example/lookup".into(),
            SECRET,
            Duration::from_secs(1),
            false,
        )
        .unwrap();
        let body = b"{\"result\":\"not_found\"}";
        let sig = sign(SECRET.as_bytes(), "1700000000", NONCE, body);
        assert!(a.verify("1700000000", NONCE, body, &sig));
        assert!(!a.verify("1700000001", NONCE, body, &sig));
        assert!(!a.verify("1700000000", "ffeeddccbbaa99887766554433221100", body, &sig));
        assert!(!a.verify("1700000000", NONCE, b"{\"result\":\"match\"}", &sig));
        assert!(!a.verify("1700000000", NONCE, body, "zz"));
        // The separators keep the parts apart: moving a digit from the timestamp into the nonce changes the bytes.
        assert!(!a.verify("170000000", &format!("0\n{NONCE}"), body, &sig));
    }

    #[test]
    fn https_is_required_unless_a_test_allows_http() {
        let new = |url: &str, secret: &str, allow_http| {
            HttpAuthority::new(url.into(), secret, Duration::from_secs(1), allow_http)
        };
        assert!(new("https://authority.example/", "short", false).is_err());
        assert!(new("https://authority.example/", SECRET, false).is_ok());
        for bad in [
            "http://authority.example/",
            "ftp://authority.example/",
            "authority.example",
            "",
        ] {
            assert!(
                matches!(
                    new(bad, SECRET, false),
                    Err(AuthorityError::Misconfigured(_))
                ),
                "{bad}"
            );
        }
        assert!(new("http://127.0.0.1:1/", SECRET, true).is_ok());
        assert!(new("file:///etc/passwd", SECRET, true).is_err());
    }
}
