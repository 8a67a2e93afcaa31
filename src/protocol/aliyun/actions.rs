//! The cloud ID-verification API's actions (version 2019-03-07), free of wire details: the front door
//! (`api::cloud`) authenticates the caller, merges the parameters and hands them here; what comes back is either a
//! business result (`Code` "200" with a `ResultObject`) or a business error (`Code` 4xx/500, still HTTP 200).
//!
//! The hosted products (ID_PRO, PV_FV, LR_FR, and FACE) start with `InitFaceVerify` and end on the hosted page like
//! the gateway's FACE; the server-side ones (ID_MIN, ID_MIN_VIDEO, PV_FC, LR_FR_MIN) are decided during the call and
//! stored decided, with their billing record, in one transaction.
use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::codes::{material_info, round2, sub_code, tf, CloudError};
use super::params::{
    self, picture_source, required, CertSubject, PictureSource, SOURCE_NAMES, VIDEO_SOURCE_NAMES,
};
use crate::authority::Lookup;
use crate::callback::CallbackSettings;
use crate::certify::hosted::HostedService;
use crate::certify::service::{CertifyService, Clock};
use crate::db::apps::App;
use crate::db::scenes::Scene;
use crate::db::verifications::{self, InsertOutcome, NewVerification, Verdict, Verification};
use crate::domain::fail::{self, FailReason};
use crate::domain::product::{Product, Reference};
use crate::domain::request::{InitializeRequest, ReserveStrategy};
use crate::domain::sensitive::Sensitive;
use crate::domain::state::State;
use crate::face::engine::{cosine, FaceEngine};
use crate::face::image::DecodeLimits;
use crate::net::fetch::{FetchPolicy, PictureFetcher};
use crate::storage::ObjectStore;

/// The merged request parameters (query and form), by name.
pub type Params = BTreeMap<String, String>;

/// What an action answered.
#[derive(Debug)]
pub enum CloudOutcome {
    /// `Code` "200": the `ResultObject`.
    Ok(Value),
    /// A business error: `Code` (e.g. "404") and its message, at HTTP 200.
    Business { code: &'static str, message: String },
    /// The action is not one this server implements (the front door answers `InvalidAction.NotFound`).
    UnknownAction,
    /// Refused by a short-term limit (the front door answers `Throttling.User` with `x-acs-retry-after`).
    Throttled(crate::domain::limit::Refusal),
}

impl From<CloudError> for CloudOutcome {
    fn from(e: CloudError) -> CloudOutcome {
        CloudOutcome::Business {
            code: e.code,
            message: e.message,
        }
    }
}

/// The actions whose `CertNo` counts against the limits per ID number.
const IDENTITY_ACTIONS: &[&str] = &["InitFaceVerify", "ContrastFaceVerify"];

/// Largest merchant picture (decoded), as the API documents: under 1 MB.
pub const MAX_PICTURE_BYTES: usize = 1024 * 1024;
/// Largest video for ID_MIN_VIDEO.
pub const MAX_VIDEO_BYTES: usize = 16 * 1024 * 1024;

/// The actions' service.
#[derive(Clone)]
pub struct CloudService {
    db: sea_orm::DatabaseConnection,
    store: ObjectStore,
    certify: CertifyService,
    hosted: HostedService,
    public_url: String,
    clock: Arc<dyn Clock>,
    pictures: PictureFetcher,
    callback: CallbackSettings,
    links: Option<crate::access_keys::SecretBox>,
}

/// How long a `MaterialInfo.facialPictureFront.pictureUrl` works.
pub const PICTURE_LINK_SECS: i64 = 15 * 60;
/// The associated data that binds a sealed picture link to its purpose.
const PICTURE_LINK_AAD: &str = "cloud-picture-link";

type Outcome = Result<Value, CloudError>;

impl CloudService {
    pub fn new(
        db: sea_orm::DatabaseConnection,
        store: ObjectStore,
        certify: CertifyService,
        hosted: HostedService,
        public_url: String,
        clock: Arc<dyn Clock>,
    ) -> CloudService {
        CloudService {
            db,
            store,
            certify,
            hosted,
            public_url,
            clock,
            pictures: PictureFetcher::new(FetchPolicy::default()),
            callback: CallbackSettings::default(),
            links: None,
        }
    }

    /// Kept face images are offered as links sealed with `secrets` (valid [`PICTURE_LINK_SECS`]); without it
    /// `MaterialInfo` carries no picture.
    pub fn with_picture_links(mut self, secrets: crate::access_keys::SecretBox) -> CloudService {
        self.links = Some(secrets);
        self
    }

    /// A link to the kept face image of `certify_id`, valid for [`PICTURE_LINK_SECS`].
    fn picture_link(&self, certify_id: &str) -> Option<String> {
        let secrets = self.links.as_ref()?;
        let expires = self.clock.now() + PICTURE_LINK_SECS;
        let token = secrets.seal(
            PICTURE_LINK_AAD,
            &crate::access_keys::Secret::new(format!("{certify_id}|{expires}")),
        );
        let token =
            percent_encoding::utf8_percent_encode(&token, percent_encoding::NON_ALPHANUMERIC);
        Some(format!(
            "{}/cloud/picture?token={token}",
            self.public_url.trim_end_matches('/')
        ))
    }

    /// The kept face image a picture link names, while the link is valid and the image is kept.
    pub async fn linked_picture(&self, token: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let Some(secrets) = &self.links else {
            return Ok(None);
        };
        let Some(plain) = secrets.open(PICTURE_LINK_AAD, token) else {
            return Ok(None);
        };
        let Some((certify_id, expires)) = plain.expose().split_once('|') else {
            return Ok(None);
        };
        if expires
            .parse::<i64>()
            .map_or(true, |e| e < self.clock.now())
        {
            return Ok(None);
        }
        let Some(key) = verifications::find(&self.db, certify_id)
            .await?
            .and_then(|v| v.face_image_key)
        else {
            return Ok(None);
        };
        Ok(self.store.get(&key).await?)
    }

    /// The picture fetcher and callback rules to use (the config's; the defaults refuse picture URLs).
    pub fn with_outbound(
        mut self,
        pictures: PictureFetcher,
        callback: CallbackSettings,
    ) -> CloudService {
        self.pictures = pictures;
        self.callback = callback;
        self
    }

    /// The limits per ID number and per app (the verification service's).
    pub fn limits(&self) -> &crate::limits::Limiter {
        self.certify.limits()
    }

    /// Runs `action` for `app` (already authenticated) with the merged parameters. `Err` only for failures of the
    /// server itself (the front door answers `InternalError`).
    pub async fn call(
        &self,
        app: &App,
        action: &str,
        params: &Params,
    ) -> anyhow::Result<CloudOutcome> {
        if let Some(refused) = self.identity_limit(app, action, params).await? {
            return Ok(refused);
        }
        let result = match action {
            "InitFaceVerify" => self.init_face_verify(app, params).await,
            "DescribeFaceVerify" => self.describe_face_verify(app, params).await,
            "ContrastFaceVerify" => self.contrast_face_verify(app, params).await,
            "CompareFaceVerify" => self.compare_face_verify(app, params).await,
            "LivenessFaceVerify" => self.liveness_face_verify(app, params).await,
            "DeleteFaceVerifyResult" => self.delete_face_verify_result(app, params).await,
            _ => return Ok(CloudOutcome::UnknownAction),
        };
        Ok(match result {
            Ok(v) => CloudOutcome::Ok(v),
            Err(e) => e.into(),
        })
    }

    /// Counts a call of an action that names an ID number (`CertNo`) against the limits per ID number: `Some` when
    /// refused (a daily limit: Code 418, "too many today"; the per-minute one: `Throttling.User`). A call under an
    /// `OuterOrderNo` the app already used is not counted: the action answers it from what is stored (a retry) or
    /// refuses it (other content), and neither tells anything new.
    async fn identity_limit(
        &self,
        app: &App,
        action: &str,
        params: &Params,
    ) -> anyhow::Result<Option<CloudOutcome>> {
        if !IDENTITY_ACTIONS.contains(&action) {
            return Ok(None);
        }
        let Some(cert_no) = params::optional(params, "CertNo") else {
            return Ok(None);
        };
        if let Some(order) = params::optional(params, "OuterOrderNo") {
            if verifications::find_by_order(&self.db, &app.app_id, order)
                .await?
                .is_some()
            {
                return Ok(None);
            }
        }
        match self.limits().identity_call(cert_no, self.clock.now()).await {
            Ok(()) => Ok(None),
            Err(crate::limits::LimitError::Exceeded(r)) if r.limit.is_daily() => {
                Ok(Some(CloudError::too_many_today(&r).into()))
            }
            Err(crate::limits::LimitError::Exceeded(r)) => Ok(Some(CloudOutcome::Throttled(r))),
            Err(crate::limits::LimitError::Store(e)) => Err(e.into()),
        }
    }

    /// The scene a request names: one of the calling app's.
    async fn scene(&self, app: &App, params: &Params) -> Result<Scene, CloudError> {
        let raw = required(params, "SceneId")?;
        let id: i64 = raw
            .parse()
            .map_err(|_| CloudError::invalid("SceneId must be an integer"))?;
        match crate::db::scenes::find(&self.db, id)
            .await
            .map_err(internal)?
        {
            Some(s) if s.app_id == app.app_id => Ok(s),
            _ => Err(CloudError::scene(raw)),
        }
    }

    /// The product a request names (or `default` when it names none), checked against the action and the scene.
    fn product(
        &self,
        params: &Params,
        scene: &Scene,
        action: &str,
        allowed: &[Product],
        default: Option<Product>,
    ) -> Result<Product, CloudError> {
        let product = match (params::optional(params, "ProductCode"), default) {
            (Some(code), _) => Product::parse(code)
                .ok_or_else(|| CloudError::invalid(format!("ProductCode {code} is not known")))?,
            (None, Some(p)) => p,
            (None, None) => return Err(CloudError::missing("ProductCode")),
        };
        if !product.offered() {
            return Err(CloudError::invalid(format!(
                "ProductCode {} is not offered by this server (it needs ID-card OCR)",
                product.code()
            )));
        }
        if !allowed.contains(&product) {
            let names: Vec<&str> = allowed.iter().map(|p| p.code()).collect();
            return Err(CloudError::invalid(format!(
                "{action} serves ProductCode {}, not {}",
                names.join(", "),
                product.code()
            )));
        }
        if scene.product != product.code() {
            return Err(CloudError::invalid(format!(
                "SceneId {} is a scene of product {}, not {}",
                scene.scene_id,
                scene.product,
                product.code()
            )));
        }
        Ok(product)
    }

    // ----- InitFaceVerify -----

    async fn init_face_verify(&self, app: &App, params: &Params) -> Outcome {
        let scene = self.scene(app, params).await?;
        let product = self.product(
            params,
            &scene,
            "InitFaceVerify",
            &[Product::IdPro, Product::PvFv, Product::LrFr, Product::Face],
            None,
        )?;
        let order = params::outer_order_no(params)?;
        params::check_model(params)?;
        params::check_meta_info(params)?;
        let subject = if product.needs_identity() {
            Some(CertSubject::parse(params, self.clock.today())?)
        } else {
            None
        };
        let return_url = match params::optional(params, "ReturnUrl") {
            Some(u) => {
                use crate::domain::request::{check_return_url, ReturnUrlRefusal};
                match check_return_url(u, &app.return_url_prefixes) {
                    Ok(()) => {}
                    Err(ReturnUrlRefusal::NotRegistered) => {
                        return Err(CloudError::invalid(
                            "ReturnUrl is not under one of the app's registered return URLs",
                        ))
                    }
                    Err(ReturnUrlRefusal::NotAllowedUrl) => {
                        return Err(CloudError::invalid(
                            "ReturnUrl must be an absolute http(s) URL with a host (or use an app scheme \
                             registered for this app, e.g. alipays://), without whitespace, control characters, \
                             backslashes or user info",
                        ))
                    }
                }
                u.to_string()
            }
            None => String::new(),
        };
        let callback = match params::optional(params, "CallbackUrl") {
            Some(u) => {
                params::check_callback_url(u)?;
                crate::callback::validate_callback_url(u, &self.callback)
                    .map_err(|e| CloudError::invalid(format!("CallbackUrl cannot be used: {e}")))?;
                let token = params::optional(params, "CallbackToken").map(str::to_string);
                if token.as_ref().is_some_and(|t| t.len() > 128) {
                    return Err(CloudError::invalid(
                        "CallbackToken must be at most 128 characters",
                    ));
                }
                Some((u.to_string(), token))
            }
            None => None,
        };
        let picture = match product.reference() {
            Reference::None => None,
            _ => {
                let source = picture_source(params, "", SOURCE_NAMES)?;
                match (source, product.reference()) {
                    (None, Reference::MerchantPicture) => return Err(CloudError::missing(
                        "a face picture (FaceContrastPicture, FaceContrastPictureUrl or CertifyId)",
                    )),
                    (None, _) => None,
                    (Some(s), _) => {
                        let bytes = self.picture(app, &s).await?;
                        // Decoded and embedded once, now: a picture without a face is refused before the
                        // user's effort, and no attempt decodes it again.
                        let encoded = self
                            .certify
                            .encode_reference(bytes.clone(), MAX_PICTURE_BYTES)
                            .await
                            .map_err(|e| match e {
                                crate::certify::CertifyError::InvalidPicture(m) => {
                                    CloudError::unusable(format!(
                                        "the face picture cannot be used: {m}"
                                    ))
                                }
                                e => internal(e),
                            })?;
                        if encoded.faces == 0 {
                            return Err(CloudError::unusable(
                                "no face was found in the face picture",
                            ));
                        }
                        Some((bytes, encoded.record))
                    }
                }
            }
        };
        let (picture, reference) = match picture {
            Some((p, r)) => (Some(p), Some(r)),
            None => (None, None),
        };
        let request = InitializeRequest {
            outer_order_no: order.to_string(),
            biz_code: product.code().to_string(),
            cert_type: subject
                .as_ref()
                .map_or(String::new(), |s| s.cert_type.clone()),
            cert_name: Sensitive::new(subject.as_ref().map_or(String::new(), |s| s.name.clone())),
            cert_no: Sensitive::new(subject.as_ref().map_or(String::new(), |s| s.number.clone())),
            return_url,
            reserve: if scene.keep_photos {
                ReserveStrategy::Reserve
            } else {
                ReserveStrategy::Never
            },
            contrast_picture: picture.map(Sensitive::new),
        };
        let certify_id = self
            .store_new(app, &scene, &request, reference.as_ref(), callback, None)
            .await?;
        let token = self
            .certify
            .open_page_of(app, &certify_id)
            .await
            .map_err(|e| match e {
                crate::certify::CertifyError::CertifyIdExpired | crate::certify::CertifyError::CertifyIdFinished => {
                    CloudError::invalid(
                        "this OuterOrderNo's verification is finished or expired; use a new OuterOrderNo",
                    )
                }
                e => internal(e),
            })?;
        Ok(json!({
            "CertifyId": certify_id,
            "CertifyUrl": format!("{}/h5/certify/{token}", self.public_url.trim_end_matches('/')),
        }))
    }

    /// Stores a new verification (undecided, or decided with `verdict`); a retry of the same request returns the
    /// first one's id, another request under the same `OuterOrderNo` is refused.
    async fn store_new(
        &self,
        app: &App,
        scene: &Scene,
        request: &InitializeRequest,
        reference: Option<&crate::certify::reference::StoredReference>,
        callback: Option<(String, Option<String>)>,
        verdict: Option<DecidedCall>,
    ) -> Result<String, CloudError> {
        let keys = self.store.keys().ring();
        let same_or_conflict = |existing: Verification| {
            if request.has_digest(&keys, &existing.request_digest) {
                Ok(existing.certify_id)
            } else {
                Err(CloudError::invalid(
                    "OuterOrderNo was already used for another request of this app",
                ))
            }
        };
        if let Some(existing) =
            verifications::find_by_order(&self.db, &app.app_id, &request.outer_order_no)
                .await
                .map_err(internal)?
        {
            return same_or_conflict(existing);
        }
        let certify_id = crate::certify::service::new_certify_id();
        let picture_key = match reference {
            Some(r) if verdict.is_none() => Some(
                crate::certify::reference::store_record(&self.store, &certify_id, r)
                    .await
                    .map_err(internal)?,
            ),
            _ => None,
        };
        let now = self.clock.now();
        let new = NewVerification {
            keys: &keys,
            certify_id: &certify_id,
            app_id: &app.app_id,
            request,
            contrast_picture_key: picture_key.clone(),
            scene_id: Some(scene.scene_id),
            now,
            expires_at: now + self.certify.settings().certify_ttl_secs,
            api: "cloud",
            callback,
        };
        let outcome = match verdict {
            None => verifications::insert(&self.db, new).await,
            Some(d) => {
                let billing = crate::billing::billing_event(
                    &request.biz_code,
                    d.passed,
                    &app.app_id,
                    Some(scene.scene_id),
                    &request.outer_order_no,
                    self.hosted.settings().calendar,
                );
                let r = verifications::insert_decided(
                    &self.db,
                    new,
                    Verdict {
                        certify_id: &certify_id,
                        passed: d.passed,
                        fail_reason: d.fail_reason.map(FailReason::code),
                        decision_json: &d.decision_json,
                        identity_info: &d.identity_info,
                        material_info: &d.material_info,
                        face_image_key: None,
                        billing: billing.clone(),
                        callback_code: fail::cloud_sub_code(d.passed, d.fail_reason),
                    },
                )
                .await;
                if let (Ok(InsertOutcome::Inserted), Some(b)) = (&r, &billing) {
                    self.hosted.metrics().billing_event(&b.product, b.event);
                }
                r
            }
        };
        match outcome {
            Ok(InsertOutcome::Inserted) => Ok(certify_id),
            Ok(InsertOutcome::OrderExists(existing)) => {
                self.forget(picture_key).await;
                same_or_conflict(*existing)
            }
            Err(e) => {
                self.forget(picture_key).await;
                Err(internal(e))
            }
        }
    }

    async fn forget(&self, key: Option<String>) {
        if let Some(k) = key {
            if let Err(e) = self.store.delete(&k).await {
                tracing::warn!(error = %e, "could not remove an unused contrast picture");
            }
        }
    }

    // ----- DescribeFaceVerify -----

    async fn describe_face_verify(&self, app: &App, params: &Params) -> Outcome {
        self.scene(app, params).await?;
        let id = required(params, "CertifyId")?;
        let v = self.owned(app, id).await?;
        match v.state.at(self.clock.now(), v.expires_at) {
            State::Passed | State::Failed => {}
            State::Expired => {
                return Err(CloudError::not_finished(
                    "the verification was abandoned: it expired without a result",
                ))
            }
            _ => {
                return Err(CloudError::not_finished(
                    "the verification has no result yet (not started or in progress)",
                ))
            }
        }
        if v.result_read_at.is_none() {
            verifications::mark_result_read(&self.db, &v.certify_id, self.clock.now())
                .await
                .map_err(internal)?;
        }
        Ok(self.result_object(&v))
    }

    // ----- DeleteFaceVerifyResult -----

    /// Deletes a verification's personal data (name, ID number, kept images) on the merchant's instruction; the
    /// verdict and billing record stay. `DeleteAfterQuery=Y` deletes only a result the merchant has read with
    /// `DescribeFaceVerify` (else `NEED_QUERY_VERIFY_RESULT`); a second deletion answers `NOT_DELETE_REPEATEDLY`.
    async fn delete_face_verify_result(&self, app: &App, params: &Params) -> Outcome {
        let id = required(params, "CertifyId")?;
        let after_query = match params::optional(params, "DeleteAfterQuery") {
            None | Some("N") => false,
            Some("Y") => true,
            Some(_) => return Err(CloudError::invalid("DeleteAfterQuery must be Y or N")),
        };
        let v = self.owned(app, id).await?;
        let refused = |reason: &str| json!({ "CertifyId": v.certify_id, "DeleteResult": "N", "FailReason": reason });
        if v.erased_at.is_some() {
            return Ok(refused("NOT_DELETE_REPEATEDLY"));
        }
        if after_query && v.result_read_at.is_none() {
            return Ok(refused("NEED_QUERY_VERIFY_RESULT"));
        }
        let actor = format!("cloud-api:{}", app.app_id);
        match crate::privacy::erase_verification(
            &self.db,
            &self.store,
            id,
            &actor,
            self.clock.now(),
        )
        .await
        .map_err(internal)?
        {
            crate::privacy::Erasure::Erased { .. } => {
                Ok(json!({ "CertifyId": v.certify_id, "DeleteResult": "Y" }))
            }
            crate::privacy::Erasure::AlreadyErased => Ok(refused("NOT_DELETE_REPEATEDLY")),
            crate::privacy::Erasure::NotFound => Err(CloudError::no_certify_id()),
        }
    }

    /// The `ResultObject` of a decided verification.
    fn result_object(&self, v: &Verification) -> Value {
        let passed = v.passed.unwrap_or(false);
        let score = stored_score(&v.material_info);
        json!({
            "CertifyId": v.certify_id,
            "Passed": tf(passed),
            "SubCode": sub_code(passed, v.fail_reason.as_deref()),
            "MaterialInfo": material_info(
                v.fail_reason.as_deref(),
                score,
                v.face_image_key
                    .as_ref()
                    .and_then(|_| self.picture_link(&v.certify_id))
                    .as_deref(),
            ),
            "IdentityInfo": Value::Null,
        })
    }

    /// The verification, when it exists and belongs to `app`.
    async fn owned(&self, app: &App, certify_id: &str) -> Result<Verification, CloudError> {
        match verifications::find(&self.db, certify_id)
            .await
            .map_err(internal)?
        {
            Some(v) if v.app_id == app.app_id => Ok(v),
            _ => Err(CloudError::no_certify_id()),
        }
    }

    // ----- ContrastFaceVerify (ID_MIN, ID_MIN_VIDEO) -----

    async fn contrast_face_verify(&self, app: &App, params: &Params) -> Outcome {
        let scene = self.scene(app, params).await?;
        let product = self.product(
            params,
            &scene,
            "ContrastFaceVerify",
            &[Product::IdMin, Product::IdMinVideo],
            Some(Product::IdMin),
        )?;
        let order = params::outer_order_no(params)?;
        params::check_model(params)?;
        let subject = CertSubject::parse(params, self.clock.today())?;
        if product == Product::IdMinVideo {
            return self
                .contrast_video(app, &scene, params, order, subject)
                .await;
        }
        let source = picture_source(params, "", SOURCE_NAMES)?
            .ok_or_else(|| CloudError::missing("FaceContrastPicture or FaceContrastPictureUrl"))?;
        let photo = self.picture(app, &source).await?;
        let request = server_request(order, product, Some(&subject), &photo, String::new());
        if let Some(done) = self.retried(app, &request).await? {
            return Ok(done);
        }
        let settings = self.hosted.settings().with_scene(&scene).decision;
        let live = self.largest_face(&photo, "the face picture").await?;
        let (lookup, reference) = self.authority_reference(&subject).await?;
        let score = reference
            .as_ref()
            .map(|r| f64::from((settings.score)(cosine(&live, r))));
        let fail = match (&lookup, score) {
            (Lookup::NameMismatch, _) => Some(FailReason::IdentityNameMismatch),
            (Lookup::NotFound, _) => Some(FailReason::IdentityNotFound),
            (Lookup::Match(_), None) => Some(FailReason::ReferenceUnusable),
            (Lookup::Match(_), Some(s)) if s < f64::from(settings.match_threshold) => {
                Some(FailReason::FaceMismatch)
            }
            _ => None,
        };
        let score = score.filter(|_| matches!(lookup, Lookup::Match(_)));
        let checks = json!({
            "product": product.code(),
            "identity": match lookup { Lookup::Match(_) => "authority", _ => "not_confirmed" },
            "match_score": score.map(round2),
            "match_threshold": settings.match_threshold,
            "fail_reason": fail.map(FailReason::code),
        });
        self.decided(app, &scene, &request, fail, score, checks)
            .await
    }

    /// ID_MIN_VIDEO: the named person in a short video. Decoded in-process, sampled, observed by the face engine;
    /// the sequence checks say whether it shows one live person, then the face is matched with the authority's.
    async fn contrast_video(
        &self,
        app: &App,
        scene: &Scene,
        params: &Params,
        order: &str,
        subject: CertSubject,
    ) -> Outcome {
        let source = picture_source(params, "", VIDEO_SOURCE_NAMES)?.ok_or_else(|| {
            CloudError::missing(
                "FaceContrastFile (a video URL) or FaceContrastPicture (a base64 video)",
            )
        })?;
        let video = self.video_bytes(&source).await?;
        let request = server_request(
            order,
            Product::IdMinVideo,
            Some(&subject),
            &video,
            String::new(),
        );
        if let Some(done) = self.retried(app, &request).await? {
            return Ok(done);
        }
        let settings = self.hosted.settings().with_scene(scene).decision;
        let checks_settings = crate::certify::video::VideoCheckSettings::from_decision(&settings);
        let engine = self.hosted.engine().clone();
        let (verdict, frames, decode_ms) = self
            .hosted
            .work()
            .run(move || {
                let sampled =
                    crate::media::decode_video(&video, &crate::media::VideoLimits::default())
                        .map_err(|e| {
                            CloudError::unusable(format!(
                                "the video cannot be used ({}): {e}",
                                e.code()
                            ))
                        })?;
                let observations =
                    crate::media::observe(engine.as_ref(), &sampled).map_err(internal)?;
                let verdict =
                    crate::certify::video::check_sequence(&observations, &checks_settings);
                Ok::<_, CloudError>((verdict, observations.len(), sampled.decode_ms))
            })
            .await
            .map_err(work_error)??;
        // Material that shows no usable face is refused, not judged (and not billed).
        if let Some(r) = verdict.fail_reason.filter(|r| !r.is_liveness_risk()) {
            return Err(CloudError::unusable(format!(
                "the video cannot be judged: {} ({})",
                r.video_messages().1,
                r.code()
            )));
        }
        let (lookup, reference) = self.authority_reference(&subject).await?;
        let score = match (&reference, &verdict.live_embedding) {
            (Some(r), Some(live)) => Some(f64::from((settings.score)(cosine(live, r)))),
            _ => None,
        };
        let fail = match (&lookup, score) {
            (Lookup::NameMismatch, _) => Some(FailReason::IdentityNameMismatch),
            (Lookup::NotFound, _) => Some(FailReason::IdentityNotFound),
            (Lookup::Match(_), _) if reference.is_none() => Some(FailReason::ReferenceUnusable),
            _ => match verdict.fail_reason {
                Some(r) => Some(r),
                None if score.is_none_or(|s| s < f64::from(settings.match_threshold)) => {
                    Some(FailReason::FaceMismatch)
                }
                None => None,
            },
        };
        let score = score.filter(|_| matches!(lookup, Lookup::Match(_)));
        let checks = json!({
            "product": Product::IdMinVideo.code(),
            "identity": match lookup { Lookup::Match(_) => "authority", _ => "not_confirmed" },
            "frames": frames,
            "decode_ms": decode_ms,
            "sequence": verdict.checks,
            "match_score": score.map(round2),
            "match_threshold": settings.match_threshold,
            "fail_reason": fail.map(FailReason::code),
        });
        self.decided(app, scene, &request, fail, score, checks)
            .await
    }

    /// The bytes of a video source: a URL (`FaceContrastFile` or `FaceContrastPictureUrl`) or base64.
    async fn video_bytes(&self, source: &PictureSource) -> Result<Vec<u8>, CloudError> {
        match source {
            PictureSource::Base64 { name, value } => {
                params::decode_base64(name, value, MAX_VIDEO_BYTES, "the limit for a video")
            }
            PictureSource::Url { name, value } => {
                let mut policy = self.pictures.policy().clone();
                policy.max_bytes = MAX_VIDEO_BYTES;
                policy.timeout = policy.timeout.max(std::time::Duration::from_secs(10));
                PictureFetcher::new(policy)
                    .fetch(value)
                    .await
                    .map_err(|e| fetch_error(name, e))
            }
            PictureSource::CertifyId { name, .. } => Err(CloudError::invalid(format!(
                "{name} cannot be a video source"
            ))),
        }
    }

    /// What the authority says about the named person, and the embedding of its reference face (none when its
    /// photo has no usable face or the person is not confirmed).
    async fn authority_reference(
        &self,
        subject: &CertSubject,
    ) -> Result<(Lookup, Option<Vec<f32>>), CloudError> {
        let lookup = self
            .hosted
            .authority()
            .lookup(&subject.number, &subject.name)
            .await
            .map_err(internal)?;
        let reference = self
            .hosted
            .reference(None, &lookup)
            .await
            .map_err(|e| internal(anyhow::anyhow!("{e}")))?;
        Ok((lookup, reference))
    }

    /// The stored answer of a retried server-side call (same `OuterOrderNo`, same content): no second verdict and
    /// no second bill.
    async fn retried(
        &self,
        app: &App,
        request: &InitializeRequest,
    ) -> Result<Option<Value>, CloudError> {
        match verifications::find_by_order(&self.db, &app.app_id, &request.outer_order_no)
            .await
            .map_err(internal)?
        {
            Some(v) if request.has_digest(&self.store.keys().ring(), &v.request_digest) => {
                Ok(Some(self.result_object(&v)))
            }
            Some(_) => Err(CloudError::invalid(
                "OuterOrderNo was already used for another request of this app",
            )),
            None => Ok(None),
        }
    }

    /// Stores a server-side verdict (with its billing record) and answers it.
    async fn decided(
        &self,
        app: &App,
        scene: &Scene,
        request: &InitializeRequest,
        fail_reason: Option<FailReason>,
        score: Option<f64>,
        checks: Value,
    ) -> Outcome {
        let passed = fail_reason.is_none();
        let material = json!({ "match_score": score.map(round2) }).to_string();
        let identity_info = json!({ "api": "cloud" }).to_string();
        let id = self
            .store_new(
                app,
                scene,
                request,
                None,
                None,
                Some(DecidedCall {
                    passed,
                    fail_reason,
                    decision_json: checks.to_string(),
                    identity_info,
                    material_info: material,
                }),
            )
            .await?;
        let v = self.owned(app, &id).await?;
        if !passed {
            self.limits()
                .identity_failed(request.cert_no.expose(), self.clock.now())
                .await;
        }
        self.hosted.metrics().decision(
            if passed { "passed" } else { "failed" },
            fail_reason.map_or("-", FailReason::code),
        );
        tracing::info!(certify_id = %id, product = %request.biz_code, passed, reason = fail_reason.map_or("-", FailReason::code), "server-side verification decided");
        Ok(self.result_object(&v))
    }

    // ----- CompareFaceVerify (PV_FC) -----

    async fn compare_face_verify(&self, app: &App, params: &Params) -> Outcome {
        let scene = self.scene(app, params).await?;
        let product = self.product(
            params,
            &scene,
            "CompareFaceVerify",
            &[Product::PvFc],
            Some(Product::PvFc),
        )?;
        let order = params::outer_order_no(params)?;
        let source = picture_source(params, "Source", SOURCE_NAMES)?.ok_or_else(|| {
            CloudError::missing("SourceFaceContrastPicture or SourceFaceContrastPictureUrl")
        })?;
        let target = picture_source(params, "Target", SOURCE_NAMES)?.ok_or_else(|| {
            CloudError::missing("TargetFaceContrastPicture or TargetFaceContrastPictureUrl")
        })?;
        let a = self.picture(app, &source).await?;
        let b = self.picture(app, &target).await?;
        // The digest covers both pictures: the second goes where a return URL would.
        let request = server_request(
            order,
            product,
            None,
            &a,
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&b)),
        );
        if let Some(done) = self.retried(app, &request).await? {
            return Ok(with_verify_score(done));
        }
        let settings = self.hosted.settings().with_scene(&scene).decision;
        let ea = self.largest_face(&a, "the source picture").await?;
        let eb = self.largest_face(&b, "the target picture").await?;
        let score = f64::from((settings.score)(cosine(&ea, &eb)));
        let fail =
            (score < f64::from(settings.match_threshold)).then_some(FailReason::FaceMismatch);
        let checks = json!({
            "product": product.code(),
            "match_score": round2(score),
            "match_threshold": settings.match_threshold,
            "fail_reason": fail.map(FailReason::code),
        });
        let done = self
            .decided(app, &scene, &request, fail, Some(score), checks)
            .await?;
        Ok(with_verify_score(done))
    }

    // ----- LivenessFaceVerify (LR_FR_MIN) -----

    async fn liveness_face_verify(&self, app: &App, params: &Params) -> Outcome {
        let scene = self.scene(app, params).await?;
        let product = self.product(
            params,
            &scene,
            "LivenessFaceVerify",
            &[Product::LrFrMin],
            Some(Product::LrFrMin),
        )?;
        let order = params::outer_order_no(params)?;
        params::check_model(params)?;
        let source = picture_source(params, "", SOURCE_NAMES)?
            .ok_or_else(|| CloudError::missing("FaceContrastPicture or FaceContrastPictureUrl"))?;
        let photo = self.picture(app, &source).await?;
        let request = server_request(order, product, None, &photo, String::new());
        if let Some(done) = self.retried(app, &request).await? {
            return Ok(done);
        }
        let settings = self.hosted.settings().with_scene(&scene).decision;
        let observation = self.observe_photo(&photo).await?;
        let verdict =
            crate::certify::photo::single_photo_liveness(&observation, settings.min_iod_px);
        let checks = json!({
            "product": product.code(),
            "method": "single photo: one face, size, frontal pose, open eyes; cannot detect a replayed photo or screen",
            "checks": verdict.checks,
            "fail_reason": verdict.fail_reason.map(FailReason::code),
        });
        self.decided(app, &scene, &request, verdict.fail_reason, None, checks)
            .await
    }

    // ----- pictures and faces -----

    /// The bytes of a picture source.
    async fn picture(&self, app: &App, source: &PictureSource) -> Result<Vec<u8>, CloudError> {
        match source {
            PictureSource::Base64 { name, value } => {
                params::decode_base64(name, value, MAX_PICTURE_BYTES, "the limit")
            }
            PictureSource::Url { name, value } => self
                .pictures
                .fetch(value)
                .await
                .map_err(|e| fetch_error(name, e)),
            PictureSource::CertifyId { name, value } => {
                let v = match self.owned(app, value).await {
                    Ok(v) => v,
                    Err(_) => {
                        return Err(CloudError::invalid(format!(
                            "{name} names no verification of this app"
                        )))
                    }
                };
                if v.state.at(self.clock.now(), v.expires_at) != State::Passed {
                    return Err(CloudError::not_passed());
                }
                let key = v.face_image_key.ok_or_else(|| {
                    CloudError::unusable(format!(
                        "{name}: no face image was kept for that verification (its scene keeps no photos)"
                    ))
                })?;
                self.store
                    .get(&key)
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| {
                        CloudError::unusable(format!(
                            "{name}: the face image of that verification is no longer kept"
                        ))
                    })
            }
        }
    }

    /// The embedding of the largest face of a picture (the API documents that the largest face is used).
    async fn largest_face(&self, bytes: &[u8], what: &str) -> Result<Vec<f32>, CloudError> {
        let engine = self.hosted.engine().clone();
        let bytes = bytes.to_vec();
        let what = what.to_string();
        self.hosted
            .work()
            .run(move || {
                let img = crate::face::image::decode(&bytes, picture_limits())
                    .map_err(|e| CloudError::unusable(format!("{what} cannot be read: {e}")))?;
                let faces = engine.analyze(&img).map_err(internal)?;
                faces
                    .into_iter()
                    .next()
                    .map(|f| f.embedding)
                    .ok_or_else(|| CloudError::unusable(format!("no face was found in {what}")))
            })
            .await
            .map_err(work_error)?
    }

    /// One photo observed like a frame of the hosted flow.
    async fn observe_photo(
        &self,
        bytes: &[u8],
    ) -> Result<crate::face::liveness::Observation, CloudError> {
        let engine: Arc<dyn FaceEngine> = self.hosted.engine().clone();
        let bytes = bytes.to_vec();
        self.hosted
            .work()
            .run(move || {
                let img = crate::face::image::decode(&bytes, picture_limits()).map_err(|e| {
                    CloudError::unusable(format!("the face picture cannot be read: {e}"))
                })?;
                let (o, _) = crate::face::observe::observe(engine.as_ref(), &img, 0, None)
                    .map_err(internal)?;
                if o.faces == 0 {
                    return Err(CloudError::unusable(
                        "no face was found in the face picture",
                    ));
                }
                Ok(o)
            })
            .await
            .map_err(work_error)?
    }
}

/// A server-side verdict about to be stored.
struct DecidedCall {
    passed: bool,
    fail_reason: Option<FailReason>,
    decision_json: String,
    identity_info: String,
    material_info: String,
}

/// The verification a server-side call stores: its product, the named person (if any), and the material it was
/// given (kept only in the request digest, so a retry with the same content is recognised); `extra` joins the
/// digest where a second piece of material exists.
fn server_request(
    order: &str,
    product: Product,
    subject: Option<&CertSubject>,
    material: &[u8],
    extra: String,
) -> InitializeRequest {
    let field = |f: fn(&CertSubject) -> &String| subject.map_or(String::new(), |s| f(s).clone());
    InitializeRequest {
        outer_order_no: order.to_string(),
        biz_code: product.code().to_string(),
        cert_type: field(|s| &s.cert_type),
        cert_name: Sensitive::new(field(|s| &s.name)),
        cert_no: Sensitive::new(field(|s| &s.number)),
        return_url: extra,
        reserve: ReserveStrategy::Never,
        contrast_picture: Some(Sensitive::new(material.to_vec())),
    }
}

/// Merchant pictures: the documented limits (≤ 1 MB; dimensions up to a few thousand pixels).
fn picture_limits() -> DecodeLimits {
    DecodeLimits::PICTURE.with_max_bytes(MAX_PICTURE_BYTES)
}

/// The match score stored with a verdict (`material_info.match_score`).
fn stored_score(material_info: &str) -> Option<f64> {
    serde_json::from_str::<Value>(material_info)
        .ok()?
        .get("match_score")?
        .as_f64()
}

/// CompareFaceVerify's result: `CertifyId`, `Passed` and `VerifyScore` (a JSON number).
fn with_verify_score(result: Value) -> Value {
    let score = result["MaterialInfo"]
        .as_str()
        .and_then(|m| serde_json::from_str::<Value>(m).ok())
        .and_then(|m| m["facialPictureFront"]["verifyScore"].as_f64())
        .unwrap_or(0.0);
    json!({
        "CertifyId": result["CertifyId"],
        "Passed": result["Passed"],
        "VerifyScore": score,
    })
}

/// The business error of a picture or video that could not be fetched, with the one code of
/// [`fetch_code`](super::codes::fetch_code).
fn fetch_error(name: &str, e: crate::net::fetch::FetchError) -> CloudError {
    CloudError::new(
        super::codes::fetch_code(&e),
        format!("{name} cannot be fetched: {e}"),
    )
}

/// The bound on concurrent analysis refused or lost a job.
fn work_error(e: crate::face::work::WorkError) -> CloudError {
    match e {
        crate::face::work::WorkError::Busy => CloudError::busy(),
        e => internal(e),
    }
}

/// A server failure: logged with its cause, answered as `Code` 500.
fn internal(e: impl std::fmt::Display) -> CloudError {
    tracing::error!(error = %e, "cloud API action failed");
    CloudError::internal()
}
