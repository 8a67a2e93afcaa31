//! An external authority over HTTP.
//!
//! Request: `POST {url}` with JSON `{"cert_no": "…", "cert_name": "…"}` and the headers
//! `X-Shiren-Timestamp: <unix seconds>` and `X-Shiren-Signature: <hex HMAC-SHA256(secret, timestamp + "\n" + body)>`.
//! Answer: HTTP 200 with JSON `{"result": "match" | "name_mismatch" | "not_found", "photo": "<base64>"}` (the photo
//! only with `match`), signed the same way over the request's timestamp and the answer body in
//! `X-Shiren-Signature`. Unsigned or wrongly signed answers are rejected: a forged "match" must not pass anyone.
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::hmac;
use serde::Deserialize;

use super::{Authority, AuthorityError, Lookup, ReferenceFace};
use crate::sensitive::Sensitive;

pub struct HttpAuthority {
    url: String,
    key: hmac::Key,
    client: reqwest::Client,
}

/// The signature of `body` under `timestamp`.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.as_bytes());
    ctx.update(b"\n");
    ctx.update(body);
    hex::encode(ctx.sign().as_ref())
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
    pub fn new(
        url: String,
        secret: &str,
        timeout: Duration,
    ) -> Result<HttpAuthority, AuthorityError> {
        if secret.len() < 16 {
            return Err(AuthorityError::BadAnswer(
                "the authority secret must be at least 16 characters".into(),
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

    fn verify(&self, timestamp: &str, body: &[u8], signature: &str) -> bool {
        let Ok(sig) = hex::decode(signature.trim()) else {
            return false;
        };
        let mut msg = Vec::with_capacity(timestamp.len() + 1 + body.len());
        msg.extend_from_slice(timestamp.as_bytes());
        msg.push(b'\n');
        msg.extend_from_slice(body);
        hmac::verify(&self.key, &msg, &sig).is_ok()
    }
}

#[async_trait::async_trait]
impl Authority for HttpAuthority {
    async fn lookup(&self, cert_no: &str, cert_name: &str) -> Result<Lookup, AuthorityError> {
        let body =
            serde_json::to_vec(&serde_json::json!({"cert_no": cert_no, "cert_name": cert_name}))
                .map_err(|e| AuthorityError::BadAnswer(e.to_string()))?;
        let ts = chrono::Utc::now().timestamp().to_string();
        let sig =
            hex::encode(hmac::sign(&self.key, &[ts.as_bytes(), b"\n", &body].concat()).as_ref());
        let resp = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-shiren-timestamp", &ts)
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
        if resp
            .content_length()
            .is_some_and(|n| n as usize > MAX_ANSWER_BYTES)
        {
            return Err(AuthorityError::BadAnswer("answer too large".into()));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| AuthorityError::Unavailable(e.without_url().to_string()))?;
        if bytes.len() > MAX_ANSWER_BYTES {
            return Err(AuthorityError::BadAnswer("answer too large".into()));
        }
        if !self.verify(&ts, &bytes, &signature) {
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

    #[test]
    fn signatures_verify_only_for_the_same_bytes() {
        let a = HttpAuthority::new(
            "http://127.0.0.1:1/".into(),
            "0123456789abcdef",
            Duration::from_secs(1),
        )
        .unwrap();
        let sig = sign(
            b"0123456789abcdef",
            "1700000000",
            b"{\"result\":\"not_found\"}",
        );
        assert!(a.verify("1700000000", b"{\"result\":\"not_found\"}", &sig));
        assert!(!a.verify("1700000001", b"{\"result\":\"not_found\"}", &sig));
        assert!(!a.verify("1700000000", b"{\"result\":\"match\"}", &sig));
        assert!(!a.verify("1700000000", b"{\"result\":\"not_found\"}", "zz"));
        assert!(HttpAuthority::new("http://x/".into(), "short", Duration::from_secs(1)).is_err());
    }
}
