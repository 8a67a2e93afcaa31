//! The cloud ID-verification API's front door (RPC style, version 2019-03-07), free of HTTP: action and version,
//! parameters merged from query and form body, the caller's access key, its signature (ACS3-HMAC-SHA256 or RPC
//! HMAC-SHA1), the clock window and nonce replay, then the action itself (`CloudService::call`). Gateway errors are
//! HTTP 4xx/5xx `{RequestId, HostId, Code, Message, Recommend}`; business results HTTP 200
//! `{RequestId, Code, Message, ResultObject}`. Parameter values are never logged.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use sea_orm::DatabaseConnection;
use serde_json::json;

use crate::access_keys::SecretBox;
use crate::certify::Clock;
use crate::db::{self, AppStatus};
use crate::protocol::alipay::params::split_form;
use crate::protocol::aliyun::acs;
use crate::protocol::aliyun::actions::{CloudOutcome, CloudService, Params};

/// The only API version served.
pub const VERSION: &str = "2019-03-07";
/// Longest accepted nonce.
const MAX_NONCE_LEN: usize = 128;

/// One request as the front door sees it.
#[derive(Debug)]
pub struct CloudRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// The raw query string (without `?`).
    pub query: String,
    /// Header names in lowercase, with their values (repeated names kept in order).
    pub headers: Vec<(String, String)>,
    /// The raw body bytes.
    pub body: Vec<u8>,
}

impl CloudRequest {
    /// A header's value; repeated headers joined by `,`.
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(","))
    }
}

/// What goes back: the HTTP status, the JSON body, and the request id (also sent as a header).
#[derive(Debug)]
pub struct CloudReply {
    pub status: u16,
    pub body: String,
    pub request_id: String,
    /// Milliseconds after which a throttled request may be retried, sent as `x-acs-retry-after` (the Tea SDKs'
    /// retry policy sleeps that many milliseconds before retrying a `ThrottlingException`).
    pub retry_after_ms: Option<i64>,
}

/// A gateway-level refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateError {
    MissingParameter(&'static str),
    InvalidParameter(String),
    InvalidVersion,
    IncompleteSignature(String),
    SignatureDoesNotMatch {
        string_to_sign: String,
    },
    KeyNotFound,
    KeyInactive,
    TimestampFormat,
    TimestampExpired,
    NonceUsed,
    ActionNotFound,
    BodyTooLarge(usize),
    /// A limit per app or per ID number (`Throttling.User`, with `x-acs-retry-after`).
    Throttled(crate::domain::limit::Refusal),
    Internal,
}

impl From<crate::limits::LimitError> for GateError {
    fn from(e: crate::limits::LimitError) -> GateError {
        match e {
            crate::limits::LimitError::Exceeded(r) => GateError::Throttled(r),
            crate::limits::LimitError::Store(e) => internal("rate counters", e),
        }
    }
}

impl GateError {
    /// HTTP status, `Code`, `Message`, `Recommend`.
    pub fn parts(&self) -> (u16, &'static str, String, &'static str) {
        match self {
            GateError::MissingParameter(name) => (
                400,
                "MissingParameter",
                format!("The input parameter \"{name}\" that is mandatory for processing this request is not supplied."),
                "Send every common parameter the API requires; the official SDKs do.",
            ),
            GateError::InvalidParameter(m) => (400, "InvalidParameter", m.clone(), "Check the request's parameters."),
            GateError::InvalidVersion => (
                400,
                "InvalidVersion",
                format!("Specified parameter Version is not valid: this server implements {VERSION} only."),
                "Use the 2019-03-07 version of the cloudauth SDK.",
            ),
            GateError::IncompleteSignature(m) => (
                400,
                "IncompleteSignature",
                m.clone(),
                "Sign the request with ACS3-HMAC-SHA256 (Authorization header) or HMAC-SHA1 (Signature parameter).",
            ),
            GateError::SignatureDoesNotMatch { string_to_sign } => (
                400,
                "SignatureDoesNotMatch",
                format!("Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"),
                "Check the AccessKeySecret, and that nothing alters the request between the SDK and this server.",
            ),
            GateError::KeyNotFound => (
                404,
                "InvalidAccessKeyId.NotFound",
                "Specified access key is not found.".into(),
                "Create a key with `shiren app access-key create APP_ID`.",
            ),
            GateError::KeyInactive => (
                400,
                "InvalidAccessKeyId.Inactive",
                "Specified access key is disabled.".into(),
                "The key or its app is disabled; create a new key for an active app.",
            ),
            GateError::TimestampFormat => (
                400,
                "InvalidTimeStamp.Format",
                "Specified time stamp or date value is not well formatted (expected YYYY-MM-DDThh:mm:ssZ, UTC).".into(),
                "Send the time as the SDKs do.",
            ),
            GateError::TimestampExpired => (
                400,
                "InvalidTimeStamp.Expired",
                "Specified time stamp or date value is expired (more than 15 minutes from the server's time).".into(),
                "Synchronise the client's clock (NTP).",
            ),
            GateError::NonceUsed => (
                400,
                "SignatureNonceUsed",
                "Specified signature nonce was used already.".into(),
                "Use a fresh random nonce for every request.",
            ),
            GateError::ActionNotFound => (
                404,
                "InvalidAction.NotFound",
                "Specified api is not found, please check your url and method.".into(),
                "Check the action name; see the README for the actions this server implements.",
            ),
            GateError::BodyTooLarge(limit) => (
                413,
                "RequestTooLarge",
                format!("The request body is larger than {limit} bytes."),
                "Send smaller pictures, or raise cloud.max_body_bytes.",
            ),
            GateError::Throttled(r) => (
                400,
                "Throttling.User",
                format!("Request was denied due to user flow control: {r}."),
                "Retry after the number of seconds in the x-acs-retry-after header; see [limits] in the README.",
            ),
            GateError::Internal => (
                500,
                "InternalError",
                "The request processing has failed due to some unknown error.".into(),
                "Retry later; the server's log has the cause under this RequestId.",
            ),
        }
    }
}

/// A fresh request id: 32 random hex digits, uppercase, in the 8-4-4-4-12 shape.
pub fn new_request_id() -> String {
    let h = hex::encode_upper(rand::random::<[u8; 16]>());
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The authenticated caller.
struct Caller {
    app: db::App,
    access_key_id: String,
    last_used_at: Option<i64>,
}

/// The front door, shared by all requests.
#[derive(Clone)]
pub struct CloudGate {
    db: DatabaseConnection,
    cloud: CloudService,
    secrets: SecretBox,
    clock: Arc<dyn Clock>,
    skew_secs: i64,
    host_id: String,
    last_purge: Arc<AtomicI64>,
}

/// How often (seconds) a request may trigger the purge of old nonces.
const PURGE_EVERY_SECS: i64 = 300;

impl CloudGate {
    pub fn new(
        db: DatabaseConnection,
        cloud: CloudService,
        secrets: SecretBox,
        clock: Arc<dyn Clock>,
        skew_secs: i64,
        public_url: &str,
    ) -> CloudGate {
        let host_id = public_url
            .split_once("://")
            .map_or(public_url, |(_, rest)| rest)
            .trim_end_matches('/')
            .to_string();
        CloudGate {
            db,
            cloud,
            secrets,
            clock,
            skew_secs,
            host_id,
            last_purge: Arc::new(AtomicI64::new(0)),
        }
    }

    /// A reply for a request refused before it could be read (e.g. its body is too large).
    pub fn reject(&self, error: GateError) -> CloudReply {
        let request_id = new_request_id();
        self.error_reply(&request_id, None, &error)
    }

    /// Handles one request.
    pub async fn handle(&self, req: &CloudRequest) -> CloudReply {
        let request_id = new_request_id();
        let action = action_of(req);
        match self.process(req, &request_id).await {
            Ok((caller, action, outcome)) => {
                self.outcome_reply(&request_id, &caller, &action, outcome)
            }
            Err(e) => self.error_reply(&request_id, action.as_deref(), &e),
        }
    }

    fn error_reply(&self, request_id: &str, action: Option<&str>, e: &GateError) -> CloudReply {
        let (status, code, message, recommend) = e.parts();
        let action = action.filter(|a| plausible_action(a)).unwrap_or("-");
        if status >= 500 {
            tracing::error!(request_id, action, code, "cloud API request failed");
        } else {
            tracing::info!(
                request_id,
                action,
                code,
                status,
                "cloud API request refused"
            );
        }
        let body = json!({
            "RequestId": request_id,
            "HostId": self.host_id,
            "Code": code,
            "Message": message,
            "Recommend": recommend,
        });
        CloudReply {
            status,
            body: body.to_string(),
            request_id: request_id.to_string(),
            retry_after_ms: match e {
                GateError::Throttled(r) => Some(r.retry_after.max(1) * 1000),
                _ => None,
            },
        }
    }

    fn outcome_reply(
        &self,
        request_id: &str,
        caller: &Caller,
        action: &str,
        outcome: anyhow::Result<CloudOutcome>,
    ) -> CloudReply {
        let body = match outcome {
            Ok(CloudOutcome::Ok(result)) => json!({
                "RequestId": request_id,
                "Code": "200",
                "Message": "success",
                "ResultObject": result,
            }),
            Ok(CloudOutcome::Business { code, message }) => json!({
                "RequestId": request_id,
                "Code": code,
                "Message": message,
            }),
            Ok(CloudOutcome::UnknownAction) => {
                return self.error_reply(request_id, Some(action), &GateError::ActionNotFound)
            }
            Ok(CloudOutcome::Throttled(r)) => {
                return self.error_reply(request_id, Some(action), &GateError::Throttled(r))
            }
            Err(e) => {
                tracing::error!(request_id, action, app_id = %caller.app.app_id, error = %format!("{e:#}"), "cloud action failed");
                return self.error_reply(request_id, Some(action), &GateError::Internal);
            }
        };
        tracing::info!(
            request_id,
            action,
            app_id = %caller.app.app_id,
            access_key_id = %caller.access_key_id,
            code = body.get("Code").and_then(serde_json::Value::as_str).unwrap_or(""),
            "cloud API call"
        );
        CloudReply {
            status: 200,
            body: body.to_string(),
            request_id: request_id.to_string(),
            retry_after_ms: None,
        }
    }

    async fn process(
        &self,
        req: &CloudRequest,
        request_id: &str,
    ) -> Result<(Caller, String, anyhow::Result<CloudOutcome>), GateError> {
        let query_pairs = decode_pairs(req.query.as_bytes())?;
        let mut body_pairs = Vec::new();
        let content_type = req
            .header("content-type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !req.body.is_empty()
            && (content_type.is_empty()
                || content_type.starts_with("application/x-www-form-urlencoded"))
        {
            body_pairs = decode_pairs(&req.body)?;
        }
        // Merged: the query wins over the body for a name given in both.
        let mut params: Params = BTreeMap::new();
        for (k, v) in query_pairs.iter().chain(body_pairs.iter()) {
            params.entry(k.clone()).or_insert_with(|| v.clone());
        }

        let authorization = req.header("authorization");
        let style = if authorization.is_some() {
            Style::Acs3
        } else {
            Style::Rpc
        };
        let action = common_value(req, &params, style, "x-acs-action", "Action")?;
        let version = common_value(req, &params, style, "x-acs-version", "Version")?;
        if version.trim() != VERSION {
            return Err(GateError::InvalidVersion);
        }
        let now = self.clock.now();
        self.maybe_purge(now);

        let caller = if let Some(auth) = authorization {
            self.check_acs3(req, &auth, &query_pairs, now).await?
        } else if params.contains_key("Signature") {
            self.check_rpc(req, &params, now).await?
        } else {
            return Err(GateError::MissingParameter("Signature"));
        };
        if !plausible_action(&action) {
            return Err(GateError::ActionNotFound);
        }
        tracing::debug!(request_id, action = %action, "cloud API request authenticated");
        self.cloud
            .limits()
            .app_call(&caller.app.app_id, now)
            .await?;
        let outcome = self.cloud.call(&caller.app, &action, &params).await;
        Ok((caller, action, outcome))
    }

    /// ACS3-HMAC-SHA256: the `Authorization` header over the canonical request.
    async fn check_acs3(
        &self,
        req: &CloudRequest,
        header: &str,
        query: &[(String, String)],
        now: i64,
    ) -> Result<Caller, GateError> {
        let auth = acs::parse_authorization(header)
            .map_err(|e| GateError::IncompleteSignature(e.to_string()))?;
        let mut required = vec![
            "x-acs-date",
            "x-acs-signature-nonce",
            "x-acs-content-sha256",
        ];
        if req.header("x-acs-action").is_some() {
            required.push("x-acs-action");
        }
        if req.header("x-acs-version").is_some() {
            required.push("x-acs-version");
        }
        for name in required {
            if req.header(name).is_none() {
                return Err(GateError::MissingParameter(name));
            }
            if !auth.signed_headers.iter().any(|h| h.as_str() == name) {
                return Err(GateError::IncompleteSignature(format!(
                    "SignedHeaders must include {name}"
                )));
            }
        }
        let date = req.header("x-acs-date").unwrap_or_default();
        self.check_time(&date, now)?;
        let nonce = req.header("x-acs-signature-nonce").unwrap_or_default();
        check_nonce_shape(&nonce)?;
        let hashed = acs::sha256_hex(&req.body);
        let claimed = req.header("x-acs-content-sha256").unwrap_or_default();
        if !claimed.trim().eq_ignore_ascii_case(&hashed) {
            return Err(GateError::InvalidParameter(
                "x-acs-content-sha256 is not the SHA-256 of the request body".into(),
            ));
        }
        let (caller, secret) = self.caller(&auth.access_key_id).await?;
        let canonical = acs::acs3_canonical_request(
            &req.method,
            query,
            &auth.signed_headers,
            |h| req.header(h),
            &hashed,
        );
        let string_to_sign = acs::acs3_string_to_sign(&canonical);
        if !acs::acs3_verify(secret.expose(), &string_to_sign, &auth.signature) {
            return Err(GateError::SignatureDoesNotMatch { string_to_sign });
        }
        self.use_nonce(&caller, &nonce, now).await?;
        Ok(caller)
    }

    /// RPC HMAC-SHA1: the `Signature` parameter over every other parameter.
    async fn check_rpc(
        &self,
        req: &CloudRequest,
        params: &Params,
        now: i64,
    ) -> Result<Caller, GateError> {
        let get = |name: &'static str| {
            params
                .get(name)
                .filter(|v| !v.is_empty())
                .ok_or(GateError::MissingParameter(name))
        };
        let key_id = get("AccessKeyId")?;
        let signature = get("Signature")?;
        let method = get("SignatureMethod")?;
        if method != "HMAC-SHA1" {
            return Err(GateError::IncompleteSignature(
                "SignatureMethod must be HMAC-SHA1".into(),
            ));
        }
        if params.get("SignatureVersion").is_some_and(|v| v != "1.0") {
            return Err(GateError::IncompleteSignature(
                "SignatureVersion must be 1.0".into(),
            ));
        }
        let timestamp = get("Timestamp")?;
        self.check_time(timestamp, now)?;
        let nonce = get("SignatureNonce")?;
        check_nonce_shape(nonce)?;
        let (caller, secret) = self.caller(key_id).await?;
        let string_to_sign = acs::rpc_string_to_sign(&req.method, params);
        if !acs::rpc_verify(secret.expose(), &string_to_sign, signature) {
            return Err(GateError::SignatureDoesNotMatch { string_to_sign });
        }
        self.use_nonce(&caller, nonce, now).await?;
        Ok(caller)
    }

    fn check_time(&self, ts: &str, now: i64) -> Result<(), GateError> {
        let t = acs::parse_utc(ts).ok_or(GateError::TimestampFormat)?;
        if (t - now).abs() > self.skew_secs {
            return Err(GateError::TimestampExpired);
        }
        Ok(())
    }

    /// The key's app and clear secret; refused when unknown, disabled, or its app is disabled.
    async fn caller(
        &self,
        key_id: &str,
    ) -> Result<(Caller, crate::access_keys::Secret), GateError> {
        let stored = db::cloud_keys::find(&self.db, key_id)
            .await
            .map_err(|e| internal("access key lookup", e))?
            .ok_or(GateError::KeyNotFound)?;
        if !stored.active {
            return Err(GateError::KeyInactive);
        }
        let app = db::apps::find(&self.db, &stored.app_id)
            .await
            .map_err(|e| internal("app lookup", e))?
            .ok_or(GateError::KeyInactive)?;
        if app.status != AppStatus::Active {
            return Err(GateError::KeyInactive);
        }
        let secret = self
            .secrets
            .open(&stored.access_key_id, &stored.secret_enc)
            .ok_or_else(|| {
                internal(
                    "access key secret",
                    "cannot be decrypted: the cloud secret key (cloud.secret_key or cloud_secret.key) changed?",
                )
            })?;
        Ok((
            Caller {
                app,
                access_key_id: stored.access_key_id,
                last_used_at: stored.last_used_at,
            },
            secret,
        ))
    }

    async fn use_nonce(&self, caller: &Caller, nonce: &str, now: i64) -> Result<(), GateError> {
        let key_id = caller.access_key_id.as_str();
        let fresh = db::cloud_keys::record_nonce(&self.db, key_id, nonce, now)
            .await
            .map_err(|e| internal("nonce record", e))?;
        if !fresh {
            return Err(GateError::NonceUsed);
        }
        // `last used` is kept to the minute: no write per request.
        if caller.last_used_at.is_none_or(|t| now - t >= 60) {
            if let Err(e) = db::cloud_keys::touch(&self.db, key_id, now).await {
                tracing::warn!(error = %e, "cannot record the access key's last use");
            }
        }
        Ok(())
    }

    /// Nonces are kept for twice the clock window (a request dated at the window's far edge stays replayable that
    /// long); older ones are deleted now and then, in the background.
    fn maybe_purge(&self, now: i64) {
        let last = self.last_purge.load(Ordering::Relaxed);
        if now - last < PURGE_EVERY_SECS
            || self
                .last_purge
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let db = self.db.clone();
        let before = now - 2 * self.skew_secs - 60;
        tokio::spawn(async move {
            match db::cloud_keys::purge_nonces(&db, before).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(nonces = n, "purged old signature nonces"),
                Err(e) => tracing::warn!(error = %e, "nonce purge failed"),
            }
        });
    }
}

fn internal(what: &str, e: impl std::fmt::Display) -> GateError {
    tracing::error!(what, error = %e, "cloud API internal error");
    GateError::Internal
}

/// Refuses an empty, overlong or non-printable signature nonce.
pub fn check_nonce_shape(nonce: &str) -> Result<(), GateError> {
    if nonce.is_empty() || nonce.len() > MAX_NONCE_LEN || nonce.chars().any(char::is_control) {
        return Err(GateError::InvalidParameter(format!(
            "the signature nonce must be 1-{MAX_NONCE_LEN} printable characters"
        )));
    }
    Ok(())
}

/// How a request is signed, which decides what the signature covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    /// ACS3-HMAC-SHA256: the query, the body (through its hash) and the headers named in SignedHeaders, which must
    /// include `x-acs-action` and `x-acs-version` when they are sent.
    Acs3,
    /// RPC HMAC-SHA1: the parameters of the query and the form body only; no header is signed.
    Rpc,
}

/// A common value (`Action`, `Version`) given as a header or as a parameter. The parameter is signed in both styles,
/// the header only in ACS3. So in RPC style the parameter is required and decides, and a header naming something
/// else is refused instead of obeyed (it could be added to a signed request by anyone); in either style a header and
/// a parameter that disagree are refused.
fn common_value(
    req: &CloudRequest,
    params: &Params,
    style: Style,
    header: &'static str,
    param: &'static str,
) -> Result<String, GateError> {
    let from_header = req.header(header).filter(|v| !v.is_empty());
    let from_param = params.get(param).filter(|v| !v.is_empty()).cloned();
    match (from_header, from_param) {
        (Some(h), Some(p)) if h != p => Err(GateError::InvalidParameter(format!(
            "The {header} header and the {param} parameter differ; send one value (with HMAC-SHA1 signing only the \
             {param} parameter is signed)."
        ))),
        (_, Some(p)) => Ok(p),
        (Some(h), None) if style == Style::Acs3 => Ok(h),
        _ => Err(GateError::MissingParameter(param)),
    }
}

/// The action named by a request, read without decoding everything (for the log line of a refused request only;
/// `common_value` decides which action runs).
pub fn action_of(req: &CloudRequest) -> Option<String> {
    if let Some(a) = req.header("x-acs-action").filter(|a| !a.is_empty()) {
        return Some(a);
    }
    let from = |raw: &[u8]| {
        split_form(raw)
            .into_iter()
            .find(|(k, _)| k == b"Action")
            .and_then(|(_, v)| String::from_utf8(v).ok())
            .filter(|v| !v.is_empty())
    };
    from(req.query.as_bytes()).or_else(|| from(&req.body))
}

/// Only a plausible API name may reach logs or the actions.
pub fn plausible_action(a: &str) -> bool {
    !a.is_empty() && a.len() <= 64 && a.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Form pairs decoded as UTF-8 (`+` and `%20` both a space).
pub fn decode_pairs(raw: &[u8]) -> Result<Vec<(String, String)>, GateError> {
    split_form(raw)
        .into_iter()
        .map(|(k, v)| {
            let key = String::from_utf8(k)
                .map_err(|_| GateError::InvalidParameter("parameters must be UTF-8".into()))?;
            let value = String::from_utf8(v).map_err(|_| {
                GateError::InvalidParameter(format!(
                    "parameter {} is not UTF-8",
                    key.chars().take(64).collect::<String>()
                ))
            })?;
            Ok((key, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uppercase_uuid_shaped() {
        let id = new_request_id();
        assert_eq!(id.len(), 36);
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(id
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_digit() || b.is_ascii_uppercase()));
        assert_ne!(id, new_request_id());
    }

    #[test]
    fn signature_mismatch_message_has_the_string_after_one_colon() {
        let e = GateError::SignatureDoesNotMatch {
            string_to_sign: "POST&%2F&A%3D1".into(),
        };
        let (status, code, message, _) = e.parts();
        assert_eq!((status, code), (400, "SignatureDoesNotMatch"));
        // What the legacy Python SDK does with it.
        assert_eq!(message.split(':').nth(1), Some("POST&%2F&A%3D1"));
    }

    #[test]
    fn plus_and_percent_20_are_spaces() {
        assert_eq!(
            decode_pairs(b"A=x+y&B=x%20y&C=a%2Bb&D").unwrap(),
            vec![
                ("A".into(), "x y".into()),
                ("B".into(), "x y".into()),
                ("C".into(), "a+b".into()),
                ("D".into(), "".into())
            ]
        );
        assert!(decode_pairs(b"A=%FF").is_err());
    }

    fn req(headers: &[(&str, &str)], query: &str, body: &str) -> CloudRequest {
        CloudRequest {
            method: "POST".into(),
            query: query.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn action_from_header_then_query_then_body() {
        assert_eq!(
            action_of(&req(&[("x-acs-action", "A")], "Action=B", "")).as_deref(),
            Some("A")
        );
        assert_eq!(
            action_of(&req(&[], "Action=B", "Action=C")).as_deref(),
            Some("B")
        );
        assert_eq!(action_of(&req(&[], "", "Action=C")).as_deref(), Some("C"));
        assert_eq!(action_of(&req(&[], "", "")), None);
        assert!(!plausible_action("Describe.Face"));
        assert!(!plausible_action(""));
        assert!(plausible_action("DescribeFaceVerify"));
    }

    #[test]
    fn rpc_style_takes_the_signed_action_and_refuses_a_different_header() {
        let params = |pairs: &[(&str, &str)]| -> Params {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let action = |headers: &[(&str, &str)], p: &[(&str, &str)], style| {
            common_value(
                &req(headers, "", ""),
                &params(p),
                style,
                "x-acs-action",
                "Action",
            )
        };
        let describe = [("Action", "DescribeFaceVerify")];
        for style in [Style::Rpc, Style::Acs3] {
            // The parameter alone, or repeated by the header (as the legacy SDKs send it).
            assert_eq!(action(&[], &describe, style).unwrap(), "DescribeFaceVerify");
            assert_eq!(
                action(&[("x-acs-action", "DescribeFaceVerify")], &describe, style).unwrap(),
                "DescribeFaceVerify"
            );
            assert_eq!(
                action(&[("x-acs-action", "")], &describe, style).unwrap(),
                "DescribeFaceVerify"
            );
            // A header naming another action is never obeyed.
            let e = action(&[("x-acs-action", "InitFaceVerify")], &describe, style).unwrap_err();
            assert_eq!(e.parts().1, "InvalidParameter", "{style:?}");
            assert_eq!(
                action(&[], &[], style).unwrap_err(),
                GateError::MissingParameter("Action")
            );
        }
        // Only ACS3 signs the header, so only there may it stand alone.
        let header_only = [("x-acs-action", "InitFaceVerify")];
        assert_eq!(
            action(&header_only, &[], Style::Acs3).unwrap(),
            "InitFaceVerify"
        );
        assert_eq!(
            action(&header_only, &[], Style::Rpc).unwrap_err(),
            GateError::MissingParameter("Action")
        );
        // The version follows the same rule.
        let v = |headers: &[(&str, &str)], style| {
            common_value(
                &req(headers, "", ""),
                &params(&[("Version", VERSION)]),
                style,
                "x-acs-version",
                "Version",
            )
        };
        assert_eq!(v(&[], Style::Rpc).unwrap(), VERSION);
        assert!(v(&[("x-acs-version", "2017-01-01")], Style::Rpc).is_err());
    }

    #[test]
    fn repeated_headers_join() {
        let r = req(&[("a", "1"), ("b", "x"), ("a", "2")], "", "");
        assert_eq!(r.header("a").as_deref(), Some("1,2"));
        assert_eq!(r.header("c"), None);
    }

    #[test]
    fn every_error_has_a_status_and_code() {
        for e in [
            GateError::MissingParameter("Action"),
            GateError::InvalidParameter("x".into()),
            GateError::InvalidVersion,
            GateError::IncompleteSignature("x".into()),
            GateError::KeyNotFound,
            GateError::KeyInactive,
            GateError::TimestampFormat,
            GateError::TimestampExpired,
            GateError::NonceUsed,
            GateError::ActionNotFound,
            GateError::BodyTooLarge(1),
            GateError::Throttled(crate::domain::limit::Refusal {
                limit: crate::domain::limit::Limit::AppPerSecond,
                retry_after: 1,
            }),
            GateError::Internal,
        ] {
            let (status, code, message, _) = e.parts();
            assert!((400..600).contains(&status), "{e:?}");
            assert!(!code.is_empty() && !message.is_empty());
        }
        assert_eq!(GateError::KeyNotFound.parts().0, 404);
        assert_eq!(GateError::ActionNotFound.parts().0, 404);
        assert_eq!(GateError::Internal.parts().0, 500);
        let throttled = GateError::Throttled(crate::domain::limit::Refusal {
            limit: crate::domain::limit::Limit::IdentityPerMinute,
            retry_after: 9,
        });
        let (status, code, message, _) = throttled.parts();
        assert_eq!((status, code), (400, "Throttling.User"));
        assert!(message.contains("try again in 9 s"), "{message}");
    }
}
