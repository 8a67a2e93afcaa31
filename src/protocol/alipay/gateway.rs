//! The Alipay-style open-platform gateway: common-parameter checks, signature verification, dispatch to the
//! FACE methods, and the signed reply. Knows nothing of HTTP.
use std::sync::Arc;

use chrono::NaiveDateTime;
use sea_orm::DatabaseConnection;

use crate::certify::{CertifyError, CertifyService};
use crate::db::{self, App, AppStatus};
use crate::protocol::alipay::error::GatewayError;
use crate::protocol::alipay::params::ParamsError;
use crate::protocol::alipay::{self, sign_content, Charset, Params, SignType, SigningKey};

pub const METHOD_INITIALIZE: &str = "alipay.user.certify.open.initialize";
pub const METHOD_CERTIFY: &str = "alipay.user.certify.open.certify";
pub const METHOD_QUERY: &str = "alipay.user.certify.open.query";

/// What the front door sends back.
#[derive(Debug)]
pub enum Reply {
    /// A signed JSON envelope, already encoded in `charset`.
    Json { body: Vec<u8>, charset: Charset },
    /// The certify page call succeeded: send the browser here.
    Redirect(String),
    /// The certify page call failed: a small HTML page for the user.
    Page { status: u16, error: GatewayError },
}

/// Whether `ts` (`yyyy-MM-dd HH:mm:ss`, the client's local time, no zone) is plausible at `now` (Unix seconds):
/// SDKs send local time, so any zone from UTC-12 to UTC+14 is allowed, plus `skew_secs` of clock drift.
pub fn timestamp_ok(ts: &str, now: i64, skew_secs: i64) -> bool {
    if ts.len() != 19 {
        return false;
    }
    let Ok(t) = NaiveDateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%S") else {
        return false;
    };
    let diff = t.and_utc().timestamp() - now;
    (-12 * 3600 - skew_secs..=14 * 3600 + skew_secs).contains(&diff)
}

/// The checked common parameters of a request.
struct Envelope<'a> {
    method: &'a str,
    app_id: &'a str,
    sign: &'a str,
    sign_type: SignType,
}

/// Checks presence and format of the common parameters, in the order the real gateway reports them.
fn check_common(p: &Params, now: i64, skew_secs: i64) -> Result<Envelope<'_>, GatewayError> {
    let method = p.get("method").ok_or(GatewayError::MissingMethod)?;
    let app_id = p.get("app_id").ok_or(GatewayError::MissingAppId)?;
    if ![METHOD_INITIALIZE, METHOD_CERTIFY, METHOD_QUERY].contains(&method) {
        return Err(GatewayError::InvalidMethod(
            method.chars().take(128).collect(),
        ));
    }
    let sign = p.get("sign").ok_or(GatewayError::MissingSignature)?;
    let sign_type = p.get("sign_type").ok_or(GatewayError::MissingSignType)?;
    let sign_type = SignType::parse(sign_type).ok_or(GatewayError::InvalidSignType)?;
    let ts = p.get("timestamp").ok_or(GatewayError::MissingTimestamp)?;
    if !timestamp_ok(ts, now, skew_secs) {
        return Err(GatewayError::InvalidTimestamp);
    }
    let version = p.get("version").ok_or(GatewayError::MissingVersion)?;
    if version != "1.0" {
        return Err(GatewayError::InvalidParameter("version must be 1.0".into()));
    }
    if p.get("format")
        .is_some_and(|f| !f.eq_ignore_ascii_case("json"))
    {
        return Err(GatewayError::InvalidFormat);
    }
    if p.get("encrypt_type").is_some() {
        return Err(GatewayError::InvalidEncryptType);
    }
    Ok(Envelope {
        method,
        app_id,
        sign,
        sign_type,
    })
}

/// Verifies the request signature with the documented rule (empty values dropped) and, failing that, with empty
/// values kept (what the Node SDK signs). The error carries the documented string-to-sign.
fn verify_signature(
    p: &Params,
    app: &App,
    env: &Envelope<'_>,
    charset: Charset,
) -> Result<(), GatewayError> {
    let content = sign_content(p.map(), false);
    if app
        .public_key
        .verify(env.sign_type, &charset.encode(&content), env.sign)
    {
        return Ok(());
    }
    if p.has_empty_values() {
        let with_empty = sign_content(p.map(), true);
        if app
            .public_key
            .verify(env.sign_type, &charset.encode(&with_empty), env.sign)
        {
            return Ok(());
        }
    }
    Err(GatewayError::InvalidSignature {
        string_to_sign: content,
    })
}

/// The gateway, shared by all requests.
#[derive(Clone)]
pub struct Gateway {
    db: DatabaseConnection,
    certify: CertifyService,
    key: Arc<SigningKey>,
    skew_secs: i64,
    public_url: String,
}

/// Compact JSON for a node: fields in the given order, strings escaped by serde_json.
fn node_json(fields: &[(&str, &str)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(k).unwrap_or_default());
        out.push(':');
        out.push_str(&serde_json::to_string(v).unwrap_or_default());
    }
    out.push('}');
    out
}

fn error_node_json(e: &GatewayError) -> String {
    let n = e.node();
    node_json(&[
        ("code", n.code),
        ("msg", n.msg),
        ("sub_code", n.sub_code),
        ("sub_msg", &n.sub_msg),
    ])
}

impl Gateway {
    pub fn new(
        db: DatabaseConnection,
        certify: CertifyService,
        key: Arc<SigningKey>,
        skew_secs: i64,
        public_url: String,
    ) -> Gateway {
        Gateway {
            db,
            certify,
            key,
            skew_secs,
            public_url,
        }
    }

    /// Handles one request. `params` is the decoded parameter set, or why it could not be decoded;
    /// `raw_method` is the `method` as far as it could be read regardless, so errors land under its node.
    pub async fn handle(
        &self,
        params: Result<Params, ParamsError>,
        raw_method: Option<String>,
    ) -> Reply {
        let (charset, sign_type, method, result) = match params {
            Ok(p) => {
                let charset = p.charset.unwrap_or(Charset::Utf8);
                let sign_type = p
                    .get("sign_type")
                    .and_then(SignType::parse)
                    .unwrap_or(SignType::Rsa2);
                let method = p.get("method").map(str::to_string);
                let result = self.process(&p, charset).await;
                (charset, sign_type, method, result)
            }
            Err(ParamsError::InvalidCharset(_)) => (
                Charset::Utf8,
                SignType::Rsa2,
                raw_method,
                Err(GatewayError::InvalidCharset),
            ),
            Err(ParamsError::Undecodable(key)) => (
                Charset::Utf8,
                SignType::Rsa2,
                raw_method,
                Err(GatewayError::InvalidParameter(format!(
                    "parameter {} is not valid in the request charset",
                    key.chars().take(64).collect::<String>()
                ))),
            ),
        };
        self.finish(method, sign_type, charset, result)
    }

    /// The gateway's public key (PEM SubjectPublicKeyInfo), which merchants configure to check responses.
    pub fn public_key_pem(&self) -> String {
        self.key.public_key().to_pem()
    }

    /// A signed error reply for a request rejected before its parameters could be read (e.g. too large).
    pub fn reject(&self, method: Option<String>, error: GatewayError) -> Reply {
        self.finish(method, SignType::Rsa2, Charset::Utf8, Err(error))
    }

    fn finish(
        &self,
        method: Option<String>,
        sign_type: SignType,
        charset: Charset,
        result: Result<Outcome, GatewayError>,
    ) -> Reply {
        // The node name is built from the method: only a plausible API name may shape the JSON.
        let method = method.filter(|m| {
            m.len() <= 128
                && m.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
        });
        let node = match result {
            Ok(Outcome::Node(node)) => node,
            Ok(Outcome::Redirect(url)) => return Reply::Redirect(url),
            Err(e) => {
                let internal = matches!(
                    &e,
                    GatewayError::Internal(_) | GatewayError::Business(CertifyError::Internal(_))
                );
                if internal {
                    tracing::error!(error = ?e, "gateway request failed");
                }
                if method.as_deref() == Some(METHOD_CERTIFY) {
                    return Reply::Page {
                        status: if internal { 503 } else { 400 },
                        error: e,
                    };
                }
                error_node_json(&e)
            }
        };
        let body = match &method {
            Some(m) => alipay::method_envelope(m, &node, &self.key, sign_type, charset),
            None => alipay::error_envelope(&node, &self.key, charset),
        };
        Reply::Json { body, charset }
    }

    async fn process(&self, p: &Params, charset: Charset) -> Result<Outcome, GatewayError> {
        let env = check_common(p, self.certify.clock().now(), self.skew_secs)?;
        let app = db::apps::find(&self.db, env.app_id)
            .await
            .map_err(|e| GatewayError::Internal(e.into()))?
            .filter(|a| a.status == AppStatus::Active)
            .ok_or(GatewayError::InvalidAppId)?;
        verify_signature(p, &app, &env, charset)?;
        let now = self.certify.clock().now();
        self.certify
            .limits()
            .app_call(&app.app_id, now)
            .await
            .map_err(CertifyError::from)?;
        let biz = p.get("biz_content").ok_or_else(|| {
            GatewayError::Business(CertifyError::InvalidParameter(
                "biz_content is required".into(),
            ))
        })?;
        tracing::info!(app_id = %app.app_id, method = env.method, "gateway call");
        match env.method {
            METHOD_INITIALIZE => {
                let certify_id = self.certify.initialize(&app, biz).await?;
                Ok(Outcome::Node(node_json(&[
                    ("code", "10000"),
                    ("msg", "Success"),
                    ("certify_id", &certify_id),
                ])))
            }
            METHOD_CERTIFY => {
                let token = self.certify.open_page(&app, biz).await?;
                Ok(Outcome::Redirect(format!(
                    "{}/h5/certify/{token}",
                    self.public_url
                )))
            }
            METHOD_QUERY => {
                let r = self.certify.query(&app, biz).await?;
                let mut fields = vec![
                    ("code", "10000"),
                    ("msg", "Success"),
                    ("passed", if r.passed { "T" } else { "F" }),
                    ("identity_info", r.identity_info.as_str()),
                    ("material_info", r.material_info.as_str()),
                ];
                if let Some(reason) = &r.fail_reason {
                    fields.push(("fail_reason", reason));
                }
                Ok(Outcome::Node(node_json(&fields)))
            }
            other => Err(GatewayError::InvalidMethod(other.to_string())),
        }
    }
}

enum Outcome {
    Node(String),
    Redirect(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000; // 2026-11-18 (UTC)

    fn at(offset_secs: i64) -> String {
        chrono::DateTime::from_timestamp(NOW + offset_secs, 0)
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    }

    #[test]
    fn timestamps_in_any_zone_pass_and_garbage_fails() {
        for zone_hours in [-12, -5, 0, 8, 14] {
            assert!(
                timestamp_ok(&at(zone_hours * 3600), NOW, 900),
                "{zone_hours}"
            );
        }
        assert!(timestamp_ok(&at(14 * 3600 + 800), NOW, 900));
        assert!(!timestamp_ok(&at(14 * 3600 + 1000), NOW, 900));
        assert!(!timestamp_ok(&at(-12 * 3600 - 1000), NOW, 900));
        assert!(!timestamp_ok(&at(-86400 * 2), NOW, 900));
        for bad in [
            "",
            "2026-11-18",
            "2026/11/18 10:00:00",
            "2026-11-18T10:00:00",
            "2026-13-01 00:00:00",
            " 2026-11-18 10:00:00",
        ] {
            assert!(!timestamp_ok(bad, NOW, 900), "{bad}");
        }
    }

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn common_checks_in_order() {
        let ts = at(8 * 3600);
        let full = vec![
            ("method", METHOD_QUERY),
            ("app_id", "2021"),
            ("sign", "x"),
            ("sign_type", "RSA2"),
            ("timestamp", ts.as_str()),
            ("version", "1.0"),
            ("charset", "utf-8"),
        ];
        assert!(check_common(&params(&full), NOW, 900).is_ok());
        let without = |k: &str| {
            params(
                &full
                    .iter()
                    .copied()
                    .filter(|(key, _)| *key != k)
                    .collect::<Vec<_>>(),
            )
        };
        let with = |k: &str, v: &str| {
            let mut f: Vec<(&str, &str)> =
                full.iter().copied().filter(|(key, _)| *key != k).collect();
            f.push((k, v));
            params(&f)
        };
        let sub = |p: Params| check_common(&p, NOW, 900).err().unwrap().node().sub_code;
        assert_eq!(sub(without("method")), "isv.missing-method");
        assert_eq!(sub(without("app_id")), "isv.missing-app-id");
        assert_eq!(
            sub(with("method", "alipay.trade.pay")),
            "isv.invalid-method"
        );
        assert_eq!(sub(without("sign")), "isv.missing-signature");
        assert_eq!(sub(without("sign_type")), "isv.missing-signature-type");
        assert_eq!(sub(with("sign_type", "MD5")), "isv.invalid-signature-type");
        assert_eq!(sub(without("timestamp")), "isv.missing-timestamp");
        assert_eq!(sub(with("timestamp", "yesterday")), "isv.invalid-timestamp");
        assert_eq!(sub(without("version")), "isv.missing-version");
        assert_eq!(sub(with("version", "2.0")), "isv.invalid-parameter");
        assert_eq!(sub(with("format", "xml")), "isv.invalid-format");
        assert!(check_common(&with("format", "JSON"), NOW, 900).is_ok());
        assert_eq!(sub(with("encrypt_type", "AES")), "isv.invalid-encrypt-type");
    }

    #[test]
    fn node_json_is_compact_and_escaped() {
        assert_eq!(
            node_json(&[("code", "10000"), ("identity_info", "{\"a\":\"实/人\"}")]),
            r#"{"code":"10000","identity_info":"{\"a\":\"实/人\"}"}"#
        );
    }
}
