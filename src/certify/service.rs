//! The verification service: initialize, open the hosted page, query. Domain types in, domain types out.
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, NaiveDate};
use rand::RngCore;
use ring::hmac;
use sea_orm::DatabaseConnection;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::db::verifications::{self, InsertOutcome, NewVerification};
use crate::db::App;
use crate::domain::error::CertifyError;
use crate::domain::request::{
    check_return_url, parse_initialize, Limits, ReturnUrlRefusal, RETURN_URL_RULE,
};
use crate::domain::state::{apply, Event, State, TransitionError};
use crate::storage::ObjectStore;

/// The source of time, so tests can move it.
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn now(&self) -> i64;
    fn today(&self) -> NaiveDate {
        DateTime::from_timestamp(self.now(), 0)
            .map(|d| d.date_naive())
            .unwrap_or_default()
    }
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        chrono::Utc::now().timestamp()
    }
}

/// Settings the service needs.
#[derive(Clone, Debug)]
pub struct ServiceSettings {
    pub certify_ttl_secs: i64,
    pub token_ttl_secs: i64,
    pub max_contrast_picture_bytes: usize,
    /// The scene of an app's verifications instead of its default scene, by app id.
    pub default_scenes: std::collections::BTreeMap<String, i64>,
}

/// What `query` reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryResult {
    pub passed: bool,
    pub identity_info: String,
    pub material_info: String,
    pub fail_reason: Option<String>,
}

/// The verification service shared by every front door.
#[derive(Clone)]
pub struct CertifyService {
    db: DatabaseConnection,
    store: ObjectStore,
    settings: ServiceSettings,
    clock: Arc<dyn Clock>,
    /// Turns merchants' pictures into references (none: pictures are refused).
    pictures: Option<super::reference::PictureEncoder>,
    /// The key page links are derived under (see [`CertifyService::with_page_token_secret`]).
    page_tokens: hmac::Key,
    limits: crate::limits::Limiter,
}

/// A new certify id (32 hex digits from 128 random bits): unguessable, URL-safe.
pub fn new_certify_id() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// A page-token key of this process alone, for services built without the server's secret (tests, tools).
fn random_page_token_key() -> hmac::Key {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hmac::Key::new(hmac::HMAC_SHA256, &b)
}

/// Tokens are stored hashed: a database dump does not hand out live page URLs.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Reads `certify_id` from a `{"certify_id":"…"}` biz_content.
fn parse_certify_id(biz_content: &str) -> Result<String, CertifyError> {
    let v: Value = serde_json::from_str(biz_content)
        .map_err(|_| CertifyError::InvalidParameter("biz_content is not valid JSON".into()))?;
    match v.get("certify_id") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 64 => Ok(s.trim().to_string()),
        _ => Err(CertifyError::InvalidParameter(
            "certify_id is required".into(),
        )),
    }
}

impl CertifyService {
    pub fn new(
        db: DatabaseConnection,
        store: ObjectStore,
        settings: ServiceSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        CertifyService {
            db,
            store,
            settings,
            clock,
            pictures: None,
            page_tokens: random_page_token_key(),
            limits: crate::limits::Limiter::off(),
        }
    }

    /// Accepts merchants' reference pictures, encoded by `pictures`.
    pub fn with_pictures(mut self, pictures: super::reference::PictureEncoder) -> CertifyService {
        self.pictures = Some(pictures);
        self
    }

    /// Checks a merchant's picture (at most `max_bytes`) and embeds its face.
    pub async fn encode_reference(
        &self,
        picture: Vec<u8>,
        max_bytes: usize,
    ) -> Result<super::reference::Encoded, CertifyError> {
        use super::reference::ReferenceError;
        let pictures = self.pictures.as_ref().ok_or_else(|| {
            CertifyError::Internal(anyhow::anyhow!(
                "this service has no face engine for pictures"
            ))
        })?;
        pictures
            .encode(picture, max_bytes)
            .await
            .map_err(|e| match e {
                ReferenceError::Picture(e) => super::reference::picture_error(&e),
                e => CertifyError::Internal(e.into()),
            })
    }

    /// Derives page links from `secret`, which every instance of the server shares and which is not in the
    /// database (the server passes its gateway private key): each verification then has one page link, the
    /// same on every instance and at every `certify` call.
    pub fn with_page_token_secret(mut self, secret: &[u8]) -> Self {
        let derived = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, secret),
            b"shiren: hosted page tokens, v1",
        );
        self.page_tokens = hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref());
        self
    }

    /// The page link token of `certify_id` (256 bits, URL-safe) and the hash under which it is stored. A
    /// database dump holds only the hash, and the key is not in the database, so a dump hands out no live link.
    fn page_token(&self, certify_id: &str) -> (String, String) {
        let tag = hmac::sign(&self.page_tokens, certify_id.as_bytes());
        let token = URL_SAFE_NO_PAD.encode(tag.as_ref());
        let hash = token_hash(&token);
        (token, hash)
    }

    /// The limits per ID number and per app that every front door applies (none unless set here).
    pub fn with_limits(mut self, limits: crate::limits::Limiter) -> Self {
        self.limits = limits;
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &crate::limits::Limiter {
        &self.limits
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// `initialize`: validates, then stores a new verification, or returns the existing one for a retried request.
    pub async fn initialize(&self, app: &App, biz_content: &str) -> Result<String, CertifyError> {
        let limits = Limits {
            max_contrast_picture_bytes: self.settings.max_contrast_picture_bytes,
            today: self.clock.today(),
        };
        let request = parse_initialize(biz_content, limits)?;
        if let Some(p) = &request.contrast_picture {
            super::reference::check_shape(p.expose(), self.settings.max_contrast_picture_bytes)?;
        }
        match check_return_url(&request.return_url, &app.return_url_prefixes) {
            Ok(()) => {}
            Err(ReturnUrlRefusal::NotRegistered) => return Err(CertifyError::ReturnUrlNotAllowed),
            Err(ReturnUrlRefusal::NotAllowedUrl) => {
                return Err(CertifyError::InvalidParameter(RETURN_URL_RULE.into()))
            }
        }
        let keys = self.store.keys().ring();
        let same_or_conflict = |existing: verifications::Verification| {
            if request.has_digest(&keys, &existing.request_digest) {
                Ok(existing.certify_id)
            } else {
                Err(CertifyError::OuterOrderNoConflict)
            }
        };
        if let Some(existing) =
            verifications::find_by_order(&self.db, &app.app_id, &request.outer_order_no).await?
        {
            return same_or_conflict(existing);
        }
        self.limits
            .identity_call(request.cert_no.expose(), self.clock.now())
            .await?;
        let scene_id = self.scene_for(app, &request.biz_code).await?;
        let certify_id = new_certify_id();
        let picture_key = match &request.contrast_picture {
            Some(p) => {
                let encoded = self
                    .encode_reference(p.expose().clone(), self.settings.max_contrast_picture_bytes)
                    .await?;
                Some(
                    super::reference::store_record(&self.store, &certify_id, &encoded.record)
                        .await
                        .map_err(|e| CertifyError::Internal(e.into()))?,
                )
            }
            None => None,
        };
        let now = self.clock.now();
        let outcome = verifications::insert(
            &self.db,
            NewVerification {
                keys: &keys,
                certify_id: &certify_id,
                app_id: &app.app_id,
                request: &request,
                contrast_picture_key: picture_key.clone(),
                scene_id: Some(scene_id),
                now,
                expires_at: now + self.settings.certify_ttl_secs,
                api: "alipay",
                callback: None,
            },
        )
        .await;
        let cleanup = |key: Option<String>| async {
            if let Some(k) = key {
                if let Err(e) = self.store.delete(&k).await {
                    tracing::warn!(error = %e, "could not remove an unused contrast picture");
                }
            }
        };
        match outcome {
            Ok(InsertOutcome::Inserted) => Ok(certify_id),
            Ok(InsertOutcome::OrderExists(existing)) => {
                cleanup(picture_key).await;
                same_or_conflict(*existing)
            }
            Err(e) => {
                cleanup(picture_key).await;
                Err(e.into())
            }
        }
    }

    /// The scene of a new verification of `app`: the one the config names for the app, else the app's default
    /// scene (created on first use).
    async fn scene_for(&self, app: &App, product: &str) -> Result<i64, CertifyError> {
        if let Some(&id) = self.settings.default_scenes.get(&app.app_id) {
            return match crate::db::scenes::find(&self.db, id).await? {
                Some(s) if s.app_id == app.app_id => Ok(s.scene_id),
                _ => Err(CertifyError::Internal(anyhow::anyhow!(
                    "default_scenes names scene {id} for app {}, which is not one of its scenes",
                    app.app_id
                ))),
            };
        }
        Ok(
            crate::db::scenes::default_for_app(&self.db, &app.app_id, product, self.clock.now())
                .await?
                .scene_id,
        )
    }

    /// `certify`: checks the verification can still be done and returns the token of its hosted page.
    pub async fn open_page(&self, app: &App, biz_content: &str) -> Result<String, CertifyError> {
        let certify_id = parse_certify_id(biz_content)?;
        self.open_page_of(app, &certify_id).await
    }

    /// The settings the service was built with.
    pub fn settings(&self) -> &ServiceSettings {
        &self.settings
    }

    /// The token of the hosted page of `certify_id` (of `app`), moving the verification into progress.
    ///
    /// Idempotent per verification: every call (a replayed certify URL, a retried InitFaceVerify) gives the same
    /// token and stores no new row; it only extends the token's life, up to the verification's expiry. The
    /// first browser to open the page binds it; any other browser is then refused (`TOKEN_USED`) while the first
    /// one goes on. So one verification has at most one page session.
    pub async fn open_page_of(&self, app: &App, certify_id: &str) -> Result<String, CertifyError> {
        let certify_id = certify_id.to_string();
        for _ in 0..3 {
            let v = self.owned(app, &certify_id).await?;
            let now = self.clock.now();
            let next = apply(v.state, v.expires_at, now, Event::OpenPage).map_err(|e| match e {
                TransitionError::Expired => CertifyError::CertifyIdExpired,
                TransitionError::AlreadyDecided | TransitionError::NotStarted => {
                    CertifyError::CertifyIdFinished
                }
            })?;
            let (token, hash) = self.page_token(&certify_id);
            let token_expires = (now + self.settings.token_ttl_secs).min(v.expires_at);
            if verifications::open_page(
                &self.db,
                &certify_id,
                v.state,
                next,
                &hash,
                now,
                token_expires,
            )
            .await?
            {
                return Ok(token);
            }
            // The state changed under us; read it again.
        }
        Err(CertifyError::Internal(anyhow::anyhow!(
            "verification kept changing while opening its page"
        )))
    }

    /// Deletes the page tokens of verifications that expired more than `certify_ttl_secs` ago (until then their
    /// own browser may still look at the verdict). Safe to run on several instances at once. Returns how many.
    pub async fn purge_tokens(&self) -> Result<u64, CertifyError> {
        let before = self.clock.now() - self.settings.certify_ttl_secs.max(0);
        Ok(verifications::purge_tokens(&self.db, before).await?)
    }

    /// `query`: the verdict, or "not passed" while undecided.
    pub async fn query(&self, app: &App, biz_content: &str) -> Result<QueryResult, CertifyError> {
        let certify_id = parse_certify_id(biz_content)?;
        let v = self.owned(app, &certify_id).await?;
        let state = v.state.at(self.clock.now(), v.expires_at);
        let material_info = match &v.face_image_key {
            Some(key) => self.with_face_image(&v.material_info, key).await?,
            None => v.material_info,
        };
        Ok(QueryResult {
            passed: state == State::Passed,
            identity_info: v.identity_info,
            material_info,
            fail_reason: crate::domain::fail::alipay_fail_reason(state, v.fail_reason),
        })
    }

    /// `material_info` with the kept face image added as base64 JPEG (`face_image`).
    async fn with_face_image(
        &self,
        material_info: &str,
        key: &str,
    ) -> Result<String, CertifyError> {
        let mut m: serde_json::Map<String, Value> =
            serde_json::from_str(material_info).unwrap_or_default();
        match self.store.get(key).await {
            Ok(Some(bytes)) => {
                m.insert(
                    "face_image".into(),
                    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
                );
            }
            Ok(None) => tracing::warn!("a kept face image is missing from the object store"),
            Err(e) => return Err(CertifyError::Internal(e.into())),
        }
        Ok(Value::Object(m).to_string())
    }

    /// The verification, when it exists and belongs to `app` (another app's id is reported as not existing).
    async fn owned(
        &self,
        app: &App,
        certify_id: &str,
    ) -> Result<verifications::Verification, CertifyError> {
        match verifications::find(&self.db, certify_id).await? {
            Some(v) if v.app_id == app.app_id => Ok(v),
            _ => Err(CertifyError::CertifyIdNotExist),
        }
    }

    /// The verification a hosted-page token opens, if the token is known and still valid.
    pub async fn verification_for_token(
        &self,
        token: &str,
    ) -> Result<Option<verifications::Verification>, CertifyError> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let Some(t) = verifications::find_token(&self.db, &token_hash(token)).await? else {
            return Ok(None);
        };
        if t.used_at.is_some() || self.clock.now() >= t.expires_at {
            return Ok(None);
        }
        let v = verifications::find(&self.db, &t.certify_id).await?;
        Ok(v.filter(|v| !v.state.at(self.clock.now(), v.expires_at).is_final()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> CertifyService {
        CertifyService::new(
            DatabaseConnection::default(),
            ObjectStore::new(
                std::env::temp_dir(),
                crate::privacy::DataKeys::fixed(crate::domain::seal::KeyRing::new(
                    crate::domain::seal::DataKey::from_bytes(&[1; 32]),
                    vec![],
                )),
            ),
            ServiceSettings {
                certify_ttl_secs: 1800,
                token_ttl_secs: 600,
                max_contrast_picture_bytes: 1 << 20,
                default_scenes: Default::default(),
            },
            Arc::new(SystemClock),
        )
    }

    #[test]
    fn ids_and_tokens_have_the_promised_shape() {
        let a = new_certify_id();
        assert_eq!(a.len(), 32);
        assert_ne!(a, new_certify_id());
        let s = service().with_page_token_secret(b"secret one");
        let (t, h) = s.page_token(&a);
        assert_eq!(t.len(), 43);
        assert_eq!(h, token_hash(&t));
        assert_eq!(h.len(), 64);
        // One token per verification and secret: the same again, another for another id or secret.
        assert_eq!(s.page_token(&a).0, t);
        assert_ne!(s.page_token(&new_certify_id()).0, t);
        let other = service().with_page_token_secret(b"secret two");
        assert_ne!(other.page_token(&a).0, t);
        let same = service().with_page_token_secret(b"secret one");
        assert_eq!(same.page_token(&a).0, t);
    }

    #[test]
    fn certify_id_parsing() {
        assert_eq!(
            parse_certify_id(r#"{"certify_id":" abc "}"#).unwrap(),
            "abc"
        );
        for bad in [
            "",
            "{}",
            r#"{"certify_id":1}"#,
            r#"{"certify_id":""}"#,
            "[",
            "null",
        ] {
            assert!(parse_certify_id(bad).is_err(), "{bad}");
        }
    }
}
