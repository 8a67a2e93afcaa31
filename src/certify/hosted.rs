//! The hosted flow behind the page: the certify token bound to one browser session, challenges, attempts and the
//! decision written with the verdict in one transaction.
use std::sync::Arc;
use std::time::Instant;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sea_orm::DatabaseConnection;
use serde_json::json;

use super::challenge::{Challenge, Timing};
use super::decision::{self, AuthorityAnswer, DecisionInput, DecisionSettings};
use super::service::{token_hash, Clock};
use crate::authority::{Authority, AuthorityError, Lookup, ReferenceFace};
use crate::db::{attempts, verifications};
use crate::domain::fail::{self, FailReason};
use crate::domain::product::{Product, Reference};
use crate::domain::state::{Event, State, Transition};
use crate::face::engine::FaceEngine;
use crate::face::image::DecodeLimits;
use crate::face::liveness::{Action, Observation};
use crate::face::work::{WorkError, WorkPool};
use crate::storage::ObjectStore;

/// Settings of the hosted flow.
#[derive(Debug, Clone)]
pub struct HostedSettings {
    pub max_attempts: u32,
    pub timing: Timing,
    pub decision: DecisionSettings,
    /// Test-only: every challenge asks exactly these actions.
    pub fixed_challenge: Option<Vec<Action>>,
    pub retention_days: u32,
    /// Most frames one attempt may upload.
    pub max_frames: usize,
    /// Largest JPEG of one frame, in bytes.
    pub max_frame_bytes: usize,
    /// Seconds an attempt may be submitted after its capture time has run out.
    pub submit_grace_secs: i64,
    /// Submissions of one challenge counted before it is spent (a submission refused for its frames counts too).
    pub max_submissions: u32,
    /// Whether face images may be kept (a scene may forbid it whatever the request asks).
    pub keep_photos: bool,
    /// A strict scene's liveness: three actions per challenge, mouth and turns held one frame longer.
    pub strict_liveness: bool,
    /// The calendar of billing days.
    pub calendar: crate::billing::Calendar,
}

impl Default for HostedSettings {
    fn default() -> Self {
        HostedSettings {
            max_attempts: 3,
            timing: Timing {
                baseline_ms: 1500,
                action_ms: 2500,
                fps: 8,
            },
            decision: DecisionSettings {
                liveness: Default::default(),
                match_threshold: crate::face::compare::TargetFar::E3.score_threshold(),
                score: crate::face::compare::score,
                min_iod_px: 28.0,
                colour_check: true,
                same_identity_score: 60.0,
            },
            fixed_challenge: None,
            retention_days: 30,
            max_frames: 200,
            max_frame_bytes: 256 * 1024,
            submit_grace_secs: 120,
            max_submissions: 3,
            keep_photos: true,
            strict_liveness: false,
            calendar: crate::billing::Calendar::UTC,
        }
    }
}

impl HostedSettings {
    /// These settings with a scene's thresholds in place of the defaults it overrides.
    pub fn with_scene(&self, scene: &crate::db::scenes::Scene) -> HostedSettings {
        let mut s = self.clone();
        if let Some(far) = scene
            .match_far
            .as_deref()
            .and_then(crate::face::compare::TargetFar::parse)
        {
            s.decision.match_threshold = far.score_threshold();
        }
        if let Some(n) = scene.max_attempts {
            s.max_attempts = n;
        }
        if let Some(d) = scene.retention_days {
            s.retention_days = d;
        }
        s.keep_photos = scene.keep_photos;
        if scene.liveness.as_deref() == Some("strict") && !s.strict_liveness {
            s.strict_liveness = true;
            s.decision.liveness.min_frames += 1;
        }
        s
    }

    /// The settings a config asks for; invalid values are named.
    pub fn from_config(c: &crate::config::Config) -> anyhow::Result<HostedSettings> {
        let d = &c.decision;
        let far = crate::face::compare::TargetFar::parse(&d.match_far).ok_or_else(|| {
            anyhow::anyhow!(
                "decision.match_far must be 1e-2, 1e-3 or 1e-4, not {:?}",
                d.match_far
            )
        })?;
        if !(1..=5).contains(&d.max_attempts) {
            anyhow::bail!(
                "decision.max_attempts must be 1 to 5, not {}",
                d.max_attempts
            );
        }
        if !(4..=30).contains(&d.fps) || d.action_ms < 1000 || d.baseline_ms < 1000 {
            anyhow::bail!("decision: fps must be 4–30 and baseline_ms/action_ms at least 1000");
        }
        let fixed_challenge = match &c.testing.fixed_challenge {
            Some(names) => Some(
                names
                    .iter()
                    .map(|n| {
                        super::challenge::action_from_str(n).ok_or_else(|| {
                            anyhow::anyhow!("testing.fixed_challenge: unknown action {n:?}")
                        })
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?,
            ),
            None => None,
        };
        let mut s = HostedSettings {
            max_attempts: d.max_attempts,
            timing: Timing {
                baseline_ms: d.baseline_ms,
                action_ms: d.action_ms,
                fps: d.fps,
            },
            fixed_challenge,
            retention_days: d.retention_days,
            calendar: c.billing.utc_offset,
            ..HostedSettings::default()
        };
        s.decision.match_threshold = far.score_threshold();
        s.decision.min_iod_px = d.min_iod_px;
        s.decision.colour_check = !c.testing.skip_colour_check;
        Ok(s)
    }
}

/// What sort of refusal a [`HostedError`] is, free of any transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostedErrorKind {
    /// No such link.
    NotFound,
    /// The link or the verification has run out.
    Gone,
    /// The link belongs to another browser session.
    Forbidden,
    /// The verification or challenge is no longer in a state to take this.
    Conflict,
    /// The request itself is malformed.
    Invalid,
    /// The server cannot serve it now.
    Unavailable,
}

/// Why a hosted-flow request cannot be served; each with a stable code, a kind and words for people.
#[derive(Debug, thiserror::Error)]
pub enum HostedError {
    #[error("the link is not valid")]
    TokenInvalid,
    #[error("the link has expired")]
    TokenExpired,
    #[error("the link was already opened on another device or browser")]
    TokenUsed,
    #[error("no session for this link")]
    SessionMissing,
    #[error("the verification has expired")]
    VerificationExpired,
    #[error("the verification is already decided")]
    AlreadyDecided,
    #[error("no attempts left")]
    AttemptsExhausted,
    #[error("unknown or finished challenge")]
    ChallengeInvalid,
    #[error("the challenge has expired")]
    ChallengeExpired,
    #[error("{0}")]
    BadFrames(String),
    #[error("the person has not agreed to the current consent text")]
    ConsentRequired,
    #[error("the server is busy")]
    Busy,
    #[error("the identity authority is unavailable")]
    AuthorityUnavailable(#[source] AuthorityError),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<sea_orm::DbErr> for HostedError {
    fn from(e: sea_orm::DbErr) -> Self {
        HostedError::Internal(e.into())
    }
}

impl HostedError {
    pub fn code(&self) -> &'static str {
        match self {
            HostedError::TokenInvalid => "TOKEN_INVALID",
            HostedError::TokenExpired => "TOKEN_EXPIRED",
            HostedError::TokenUsed => "TOKEN_USED",
            HostedError::SessionMissing => "SESSION_MISSING",
            HostedError::VerificationExpired => "VERIFICATION_EXPIRED",
            HostedError::AlreadyDecided => "ALREADY_DECIDED",
            HostedError::AttemptsExhausted => "ATTEMPTS_EXHAUSTED",
            HostedError::ChallengeInvalid => "CHALLENGE_INVALID",
            HostedError::ChallengeExpired => "CHALLENGE_EXPIRED",
            HostedError::BadFrames(_) => "INVALID_FRAMES",
            HostedError::ConsentRequired => "CONSENT_REQUIRED",
            HostedError::Busy => "SYSTEM_BUSY",
            HostedError::AuthorityUnavailable(_) | HostedError::Internal(_) => "SYSTEM_ERROR",
        }
    }

    /// What sort of refusal this is, for the transport to answer in its own terms.
    pub fn kind(&self) -> HostedErrorKind {
        match self {
            HostedError::TokenInvalid => HostedErrorKind::NotFound,
            HostedError::TokenExpired | HostedError::VerificationExpired => HostedErrorKind::Gone,
            HostedError::TokenUsed | HostedError::SessionMissing => HostedErrorKind::Forbidden,
            HostedError::AlreadyDecided
            | HostedError::AttemptsExhausted
            | HostedError::ChallengeInvalid
            | HostedError::ChallengeExpired => HostedErrorKind::Conflict,
            HostedError::BadFrames(_) | HostedError::ConsentRequired => HostedErrorKind::Invalid,
            HostedError::AuthorityUnavailable(_) | HostedError::Internal(_) | HostedError::Busy => {
                HostedErrorKind::Unavailable
            }
        }
    }

    /// (title, Chinese message, English message) for the person on the page.
    pub fn messages(&self) -> (&'static str, &'static str) {
        match self {
            HostedError::TokenInvalid => (
                "链接无效，请回到商户应用重新发起认证。",
                "This link is not valid. Please start again from the merchant's app.",
            ),
            HostedError::TokenExpired => (
                "链接已过期，请回到商户应用重新发起认证。",
                "This link has expired. Please start again from the merchant's app.",
            ),
            HostedError::TokenUsed => (
                "该链接已被使用，请回到商户应用重新发起认证。",
                "This link was already used. Please start again from the merchant's app.",
            ),
            HostedError::SessionMissing => (
                "会话已失效，请回到商户应用重新发起认证。",
                "Your session has ended. Please start again from the merchant's app.",
            ),
            HostedError::VerificationExpired => (
                "本次认证已超时，请回到商户应用重新发起。",
                "This verification has timed out. Please start again from the merchant's app.",
            ),
            HostedError::AlreadyDecided => {
                ("本次认证已完成。", "This verification is already complete.")
            }
            HostedError::AttemptsExhausted => ("尝试次数已用完。", "No attempts are left."),
            HostedError::ChallengeInvalid | HostedError::ChallengeExpired => (
                "本轮检测已失效，请重新开始。",
                "This round has expired. Please start it again.",
            ),
            HostedError::BadFrames(_) => (
                "上传的画面无法识别，请重试。",
                "The captured pictures could not be read. Please try again.",
            ),
            HostedError::ConsentRequired => (
                "请先阅读并同意认证说明（页面已更新，请刷新）。",
                "Please read and agree to the notice first (the page has changed: reload it).",
            ),
            HostedError::Busy => (
                "当前认证人数较多，请稍候几秒再试。",
                "Many verifications are running right now. Please try again in a few seconds.",
            ),
            HostedError::AuthorityUnavailable(_) | HostedError::Internal(_) => (
                "服务暂时不可用，请稍后重试。",
                "The service is temporarily unavailable. Please try again shortly.",
            ),
        }
    }
}

/// What the page shows about a verification.
#[derive(Debug, Clone)]
pub struct PageView {
    pub certify_id: String,
    pub app_id: String,
    /// The merchant's return URL with `certify_id` appended.
    pub return_url: String,
    pub reserve: bool,
    pub state: State,
    pub fail_reason: Option<String>,
    pub attempts_used: u32,
    pub max_attempts: u32,
    pub retention_days: u32,
    /// The consent text the page shows, and its version (sent back when the person agrees).
    pub consent: crate::domain::consent::ConsentText,
}

/// The result of opening the page.
pub struct Opened {
    pub view: PageView,
    /// A new session secret to set as a cookie, when this request bound the token.
    pub new_session: Option<String>,
}

/// One uploaded frame.
pub struct FrameIn {
    pub t_ms: u32,
    pub jpeg: Vec<u8>,
}

/// The verdict of one attempt as the page learns it.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub certify_id: String,
    /// `passed`, `retry` or `failed`.
    pub outcome: &'static str,
    pub fail_reason: Option<FailReason>,
    pub attempts_left: u32,
    /// Set when the verification is decided.
    pub return_url: Option<String>,
    pub decision_ms: u32,
}

/// Appends `certify_id` to a return URL (before any fragment); nothing else is added.
pub fn return_url_with_id(url: &str, certify_id: &str) -> String {
    // The cloud API's ReturnUrl is optional: without one the page shows the result and stays.
    if url.is_empty() {
        return String::new();
    }
    let (base, frag) = match url.find('#') {
        Some(i) => (&url[..i], &url[i..]),
        None => (url, ""),
    };
    let sep = if base.contains('?') {
        if base.ends_with('?') || base.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    format!("{base}{sep}certify_id={certify_id}{frag}")
}

fn new_secret(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

#[derive(Clone)]
pub struct HostedService {
    db: DatabaseConnection,
    store: ObjectStore,
    engine: Arc<dyn FaceEngine>,
    authority: Arc<dyn Authority>,
    settings: HostedSettings,
    clock: Arc<dyn Clock>,
    metrics: Arc<crate::metrics::Metrics>,
    callback_wake: Arc<tokio::sync::Notify>,
    work: WorkPool,
    limits: crate::limits::Limiter,
}

impl HostedService {
    pub fn new(
        db: DatabaseConnection,
        store: ObjectStore,
        engine: Arc<dyn FaceEngine>,
        authority: Arc<dyn Authority>,
        mut settings: HostedSettings,
        clock: Arc<dyn Clock>,
    ) -> HostedService {
        // Scores follow the calibration of the recogniser actually in use.
        settings.decision.score = engine.recogniser().score_fn();
        HostedService {
            db,
            store,
            engine,
            authority,
            settings,
            clock,
            metrics: Default::default(),
            callback_wake: Default::default(),
            work: WorkPool::default(),
            limits: Default::default(),
        }
    }

    /// Runs decode and analysis under `work` (shared with whatever else analyses images in this process).
    pub fn with_work(mut self, work: WorkPool) -> HostedService {
        self.work = work;
        self
    }

    /// Counts failed verdicts against the limit per ID number.
    pub fn with_limits(mut self, limits: crate::limits::Limiter) -> HostedService {
        self.limits = limits;
        self
    }

    /// Wakes the callback dispatcher after a final verdict (see [`crate::callback`]).
    pub fn with_callback_wake(mut self, wake: Arc<tokio::sync::Notify>) -> HostedService {
        self.callback_wake = wake;
        self
    }

    /// The metrics decisions are counted into.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// Counts decisions, stage latencies and billing events into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> HostedService {
        self.metrics = metrics;
        self
    }

    pub fn settings(&self) -> &HostedSettings {
        &self.settings
    }

    /// The settings of a verification: the defaults with its scene's thresholds.
    async fn settings_for(
        &self,
        v: &verifications::Verification,
    ) -> Result<HostedSettings, HostedError> {
        Ok(match v.scene_id {
            Some(id) => match crate::db::scenes::find(&self.db, id).await? {
                Some(scene) => self.settings.with_scene(&scene),
                None => self.settings.clone(),
            },
            None => self.settings.clone(),
        })
    }

    async fn view(&self, v: &verifications::Verification) -> Result<PageView, HostedError> {
        let settings = self.settings_for(v).await?;
        Ok(PageView {
            certify_id: v.certify_id.clone(),
            app_id: v.app_id.clone(),
            return_url: return_url_with_id(&v.return_url, &v.certify_id),
            reserve: v.reserve == crate::domain::request::ReserveStrategy::Reserve
                && settings.keep_photos,
            state: v.state.at(self.clock.now(), v.expires_at),
            fail_reason: v.fail_reason.clone(),
            attempts_used: attempts::count(&self.db, &v.certify_id).await?,
            max_attempts: settings.max_attempts,
            retention_days: settings.retention_days,
            consent: crate::domain::consent::ConsentText::of(
                Product::parse(&v.product).unwrap_or(Product::Face),
            ),
        })
    }

    /// Opens the page of a token. The first open binds the token to a new browser session (returned, to be set
    /// as a cookie); later opens need that session. A decided verification is shown to its own session even after
    /// the token's expiry.
    pub async fn open(&self, token: &str, session: Option<&str>) -> Result<Opened, HostedError> {
        if token.is_empty() || token.len() > 128 {
            return Err(HostedError::TokenInvalid);
        }
        let hash = token_hash(token);
        let t = verifications::find_token(&self.db, &hash)
            .await?
            .ok_or(HostedError::TokenInvalid)?;
        let v = verifications::find(&self.db, &t.certify_id)
            .await?
            .ok_or(HostedError::TokenInvalid)?;
        let now = self.clock.now();
        let own = matches!((&t.session_hash, session), (Some(h), Some(s)) if *h == token_hash(s));
        if own {
            if !v.state.is_final() && now >= t.expires_at {
                return Err(HostedError::TokenExpired);
            }
            return Ok(Opened {
                view: self.view(&v).await?,
                new_session: None,
            });
        }
        if t.session_hash.is_some() || t.used_at.is_some() {
            return Err(HostedError::TokenUsed);
        }
        if now >= t.expires_at {
            return Err(HostedError::TokenExpired);
        }
        match v.state.at(now, v.expires_at) {
            State::Expired => return Err(HostedError::VerificationExpired),
            State::Passed | State::Failed => return Err(HostedError::AlreadyDecided),
            State::Initialized | State::InProgress => {}
        }
        let secret = new_secret(32);
        if !verifications::bind_token_session(&self.db, &hash, &token_hash(&secret), now).await? {
            return Err(HostedError::TokenUsed);
        }
        Ok(Opened {
            view: self.view(&v).await?,
            new_session: Some(secret),
        })
    }

    /// The verification of a token used by its own session, still open for attempts.
    async fn in_progress(
        &self,
        token: &str,
        session: Option<&str>,
    ) -> Result<verifications::Verification, HostedError> {
        let session = session.ok_or(HostedError::SessionMissing)?;
        let t = verifications::find_token(&self.db, &token_hash(token))
            .await?
            .ok_or(HostedError::TokenInvalid)?;
        if t.session_hash.as_deref() != Some(token_hash(session).as_str()) {
            return Err(HostedError::SessionMissing);
        }
        let v = verifications::find(&self.db, &t.certify_id)
            .await?
            .ok_or(HostedError::TokenInvalid)?;
        let now = self.clock.now();
        match v.state.at(now, v.expires_at) {
            State::Expired => Err(HostedError::VerificationExpired),
            State::Passed | State::Failed => Err(HostedError::AlreadyDecided),
            State::Initialized | State::InProgress if now >= t.expires_at => {
                Err(HostedError::TokenExpired)
            }
            State::Initialized | State::InProgress => Ok(v),
        }
    }

    /// Checks that `token` is bound to `session` and its verification still takes attempts: the cheap lookups a
    /// request must pass before its body is read, so that an upload with a made-up token or session costs the
    /// server nothing but this.
    pub async fn check_session(
        &self,
        token: &str,
        session: Option<&str>,
    ) -> Result<(), HostedError> {
        if token.is_empty() || token.len() > 128 {
            return Err(HostedError::TokenInvalid);
        }
        self.in_progress(token, session).await.map(|_| ())
    }

    /// Issues the next challenge. Every issued challenge uses up an attempt, so that asking again and again for a
    /// challenge that suits a recorded video does not work.
    /// The first challenge records the person's consent: `consent` must be the version of the text the page showed
    /// (the current one for the product).
    pub async fn challenge(
        &self,
        token: &str,
        session: Option<&str>,
        consent: Option<&str>,
    ) -> Result<(String, u32, u32, Challenge), HostedError> {
        let v = self.in_progress(token, session).await?;
        let text = crate::domain::consent::ConsentText::of(
            Product::parse(&v.product).unwrap_or(Product::Face),
        );
        match (v.consent_at, consent) {
            (None, Some(given)) if given == text.version() => {
                verifications::record_consent(&self.db, &v.certify_id, given, self.clock.now())
                    .await?;
            }
            (None, _) => return Err(HostedError::ConsentRequired),
            (Some(_), _) => {}
        }
        let settings = self.settings_for(&v).await?;
        let max_attempts = settings.max_attempts;
        for _ in 0..3 {
            let used = attempts::count(&self.db, &v.certify_id).await?;
            if used >= max_attempts {
                return Err(HostedError::AttemptsExhausted);
            }
            let challenge = {
                let mut rng = rand::thread_rng();
                match &self.settings.fixed_challenge {
                    Some(actions) => {
                        Challenge::with_actions(&mut rng, actions, self.settings.timing)
                    }
                    None if settings.strict_liveness => {
                        Challenge::random_strict(&mut rng, self.settings.timing)
                    }
                    None => Challenge::random(&mut rng, self.settings.timing),
                }
            };
            if self.settings.fixed_challenge.is_some() {
                tracing::warn!("TEST-ONLY SETTING IN USE: the challenge is fixed, not random");
            }
            let id = {
                let mut b = [0u8; 16];
                rand::rngs::OsRng.fill_bytes(&mut b);
                hex::encode(b)
            };
            let json =
                serde_json::to_string(&challenge).map_err(|e| HostedError::Internal(e.into()))?;
            if attempts::insert(
                &self.db,
                &id,
                &v.certify_id,
                used + 1,
                &json,
                self.clock.now(),
            )
            .await?
            {
                return Ok((id, used + 1, max_attempts, challenge));
            }
        }
        Err(HostedError::Internal(anyhow::anyhow!(
            "attempt numbers kept colliding"
        )))
    }

    /// The person gives up: nothing is decided; the page goes back to the merchant.
    pub async fn cancel(
        &self,
        token: &str,
        session: Option<&str>,
    ) -> Result<PageView, HostedError> {
        let v = self.in_progress(token, session).await?;
        tracing::info!(certify_id = %v.certify_id, "the person cancelled on the hosted page");
        self.view(&v).await
    }

    /// The reference face's embedding: the merchant's picture when given, else the authority's.
    /// The authority the decisions ask.
    pub fn authority(&self) -> &Arc<dyn Authority> {
        &self.authority
    }

    /// The face engine the decisions use.
    pub fn engine(&self) -> &Arc<dyn FaceEngine> {
        &self.engine
    }

    /// The bound on concurrent decode and analysis work, shared with the cloud API's server-side actions.
    pub fn work(&self) -> &WorkPool {
        &self.work
    }

    /// Runs decode and analysis work under the bound.
    async fn run_work<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HostedError> {
        self.work.run(job).await.map_err(|e| match e {
            WorkError::Busy => HostedError::Busy,
            e => HostedError::Internal(e.into()),
        })
    }

    /// The reference face's embedding: the merchant's picture (embedded when the verification was created) when
    /// given, else the authority's photo (or stored embedding); none when neither has a usable face.
    pub async fn reference(
        &self,
        merchant_picture: Option<Vec<u8>>,
        lookup: &Lookup,
    ) -> Result<Option<Vec<f32>>, HostedError> {
        let model = self.engine.recogniser_id();
        let photo = match (merchant_picture, lookup) {
            (Some(stored), _) => match super::reference::parse(&stored) {
                Some(r) if r.model == model => return Ok(r.embedding),
                Some(_) => {
                    return Err(HostedError::Internal(anyhow::anyhow!(
                        "the merchant picture was embedded by another recogniser"
                    )))
                }
                // Stored before references were embedded at creation: the picture itself.
                None => stored,
            },
            (None, Lookup::Match(ReferenceFace::Embedding { model: m, vector })) if *m == model => {
                return Ok(Some(vector.clone()));
            }
            (None, Lookup::Match(ReferenceFace::Photo(p))) => p.expose().clone(),
            (None, Lookup::Match(ReferenceFace::Embedding { .. })) => {
                return Err(HostedError::Internal(anyhow::anyhow!(
                    "the registry's embedding is from another recogniser; re-import the identity"
                )))
            }
            (None, _) => return Ok(None),
        };
        let engine = self.engine.clone();
        self.run_work(move || {
            crate::face::engine::single_face(engine.as_ref(), &photo, DecodeLimits::PICTURE)
                .ok()
                .map(|(_, f)| f.embedding)
        })
        .await
    }

    /// Decides one attempt from its frames, in named steps. Cheap checks come first (session, challenge, frame
    /// sizes and times, the count of submissions), then every frame is decoded and observed under the bound on
    /// concurrent work, and only then is the authority asked; the decision's outcome and the verification's next
    /// state (from the state machine) follow, and the verdict is written in one transaction.
    pub async fn submit(
        &self,
        token: &str,
        session: Option<&str>,
        challenge_id: &str,
        frames: Vec<FrameIn>,
    ) -> Result<AttemptResult, HostedError> {
        let started = Instant::now();
        let open = self.validate(token, session, challenge_id, &frames).await?;

        let stage = Instant::now();
        let (observations, frames) = self.observe_frames(frames).await?;
        self.metrics.stage("observe", stage.elapsed());

        let stage = Instant::now();
        let identity = self.ask_authority(&open.v, open.product).await?;
        self.metrics.stage("authority", stage.elapsed());

        let stage = Instant::now();
        let d = decide_attempt(&open, &identity, &observations);
        self.metrics.stage("decide", stage.elapsed());

        let stage = Instant::now();
        let settled = Settled::of(&d, open.settings.max_attempts, open.attempt.attempt);
        let decision_ms = started.elapsed().as_millis().min(i32::MAX as u128) as u32;
        let transition = self.next_state(&open.v, &d, settled.is_final)?;
        let billing = self.billing(&open.v, &d, settled.is_final);
        let face_key = self
            .keep_face(
                &open.v,
                &open.settings,
                settled.is_final,
                d.best_frame.map(|i| &frames[i]),
            )
            .await?;
        let record = Record {
            challenge_id,
            attempt: open.attempt.attempt,
            challenge: &open.challenge,
            frames: observations.len(),
            outcome: settled.outcome,
            transition,
            decision_ms,
            has_merchant_picture: identity.merchant_picture,
            product: open.product,
            face_key: face_key.as_deref(),
            billing: billing.clone(),
            cert_no: &identity.cert_no,
        };
        self.record(&open.v, &d, record).await?;
        self.metrics.stage("record", stage.elapsed());
        self.metrics.stage("total", started.elapsed());

        self.report(
            &open,
            &d,
            &settled,
            billing.as_ref(),
            observations.len(),
            decision_ms,
        );
        Ok(AttemptResult {
            certify_id: open.v.certify_id.clone(),
            outcome: settled.outcome,
            fail_reason: d.fail_reason,
            attempts_left: if settled.is_final {
                0
            } else {
                settled.attempts_left
            },
            return_url: settled
                .is_final
                .then(|| return_url_with_id(&open.v.return_url, &open.v.certify_id)),
            decision_ms,
        })
    }

    /// The cheap checks of a submission, before any frame is decoded: the session and its verification, the open
    /// challenge, the frames' count, sizes and times, and the count of submissions of that challenge.
    async fn validate(
        &self,
        token: &str,
        session: Option<&str>,
        challenge_id: &str,
        frames: &[FrameIn],
    ) -> Result<OpenAttempt, HostedError> {
        let v = self.in_progress(token, session).await?;
        let settings = self.settings_for(&v).await?;
        let (attempt, challenge) = self.open_challenge(&v, challenge_id).await?;
        self.check_frames(frames, &challenge)?;
        self.count_submission(&v, challenge_id).await?;
        let product = Product::parse(&v.product).unwrap_or(Product::Face);
        Ok(OpenAttempt {
            v,
            settings,
            attempt,
            challenge,
            product,
        })
    }

    /// The state a final verdict moves the verification to, from the state machine; none for a retry. A
    /// verification that moved on since it was read (decided by a racing attempt, or expired) refuses the attempt,
    /// as the guarded write would.
    fn next_state(
        &self,
        v: &verifications::Verification,
        d: &decision::Decision,
        is_final: bool,
    ) -> Result<Option<Transition>, HostedError> {
        if !is_final {
            return Ok(None);
        }
        Transition::of(
            v.state,
            v.expires_at,
            self.clock.now(),
            Event::Decide { passed: d.passed },
        )
        .map(Some)
        .map_err(|_| HostedError::ChallengeInvalid)
    }

    /// The billable event of a final verdict, if its product bills it.
    fn billing(
        &self,
        v: &verifications::Verification,
        d: &decision::Decision,
        is_final: bool,
    ) -> Option<crate::db::billing::BillingEvent> {
        is_final
            .then(|| {
                crate::billing::billing_event(
                    &v.product,
                    d.passed,
                    &v.app_id,
                    v.scene_id,
                    &v.outer_order_no,
                    self.settings.calendar,
                )
            })
            .flatten()
    }

    /// Counts the decided attempt into the metrics and the log.
    fn report(
        &self,
        open: &OpenAttempt,
        d: &decision::Decision,
        settled: &Settled,
        billing: Option<&crate::db::billing::BillingEvent>,
        frames: usize,
        decision_ms: u32,
    ) {
        let reason_code = d.fail_reason.map_or("-", FailReason::code);
        self.metrics.decision(settled.outcome, reason_code);
        if let Some(b) = billing {
            self.metrics.billing_event(&b.product, b.event);
        }
        tracing::info!(
            certify_id = %open.v.certify_id,
            attempt = open.attempt.attempt,
            outcome = settled.outcome,
            reason = reason_code,
            frames,
            decision_ms,
            "attempt decided"
        );
    }

    /// The open challenge `challenge_id` of this verification, still within its time.
    async fn open_challenge(
        &self,
        v: &verifications::Verification,
        challenge_id: &str,
    ) -> Result<(attempts::Attempt, Challenge), HostedError> {
        let attempt = attempts::find(&self.db, challenge_id)
            .await?
            .filter(|a| a.certify_id == v.certify_id && a.submitted_at.is_none())
            .ok_or(HostedError::ChallengeInvalid)?;
        let challenge: Challenge = serde_json::from_str(&attempt.challenge)
            .map_err(|e| HostedError::Internal(e.into()))?;
        let now = self.clock.now();
        if now
            > attempt.issued_at
                + i64::from(challenge.duration_ms() / 1000)
                + self.settings.submit_grace_secs
        {
            return Err(HostedError::ChallengeExpired);
        }
        Ok((attempt, challenge))
    }

    /// Every submission of a challenge counts, whatever becomes of it: past the limit the challenge is spent.
    async fn count_submission(
        &self,
        v: &verifications::Verification,
        challenge_id: &str,
    ) -> Result<(), HostedError> {
        if attempts::count_submission(
            &self.db,
            challenge_id,
            &v.certify_id,
            self.settings.max_submissions,
        )
        .await?
        {
            Ok(())
        } else {
            Err(HostedError::ChallengeInvalid)
        }
    }

    /// Decodes every frame through the gate and observes them in order (each frame's surroundings are compared
    /// with the previous frame's), as one job under the bound on concurrent work.
    async fn observe_frames(
        &self,
        frames: Vec<FrameIn>,
    ) -> Result<(Vec<Observation>, Vec<Vec<u8>>), HostedError> {
        let engine = self.engine.clone();
        let limits = DecodeLimits::FRAME.with_max_bytes(self.settings.max_frame_bytes);
        self.run_work(move || observe_all(engine.as_ref(), frames, limits))
            .await?
    }

    /// The authority's answer for the verification's person, and the reference face (the merchant's picture
    /// when given, else the authority's). Products that name nobody (PV_FV, LR_FR) do not ask.
    async fn ask_authority(
        &self,
        v: &verifications::Verification,
        product: Product,
    ) -> Result<Identity, HostedError> {
        let subject =
            verifications::find_subject(&self.db, &self.store.keys().ring(), &v.certify_id)
                .await?
                .ok_or(HostedError::TokenInvalid)?;
        let lookup = if product.needs_identity() {
            self.authority
                .lookup(&subject.cert_no, &subject.cert_name)
                .await
                .map_err(HostedError::AuthorityUnavailable)?
        } else {
            Lookup::NotFound
        };
        let merchant_picture = match &subject.contrast_picture_key {
            Some(k) => Some(
                self.store
                    .get(k)
                    .await
                    .map_err(|e| HostedError::Internal(e.into()))?
                    .ok_or_else(|| {
                        HostedError::Internal(anyhow::anyhow!("contrast picture missing"))
                    })?,
            ),
            None => None,
        };
        let has_merchant_picture = merchant_picture.is_some();
        let reference = self.reference(merchant_picture, &lookup).await?;
        let answer = match lookup {
            _ if !product.needs_identity() => AuthorityAnswer::NotAsked,
            Lookup::Match(_) => AuthorityAnswer::Match,
            Lookup::NameMismatch => AuthorityAnswer::NameMismatch,
            Lookup::NotFound => AuthorityAnswer::NotFound,
        };
        Ok(Identity {
            answer,
            reference,
            merchant_picture: has_merchant_picture,
            cert_no: subject.cert_no,
        })
    }

    /// Stores the face image of a final verdict when the merchant asked for it and the scene allows it.
    async fn keep_face(
        &self,
        v: &verifications::Verification,
        settings: &HostedSettings,
        is_final: bool,
        best_frame: Option<&Vec<u8>>,
    ) -> Result<Option<String>, HostedError> {
        match (is_final, v.reserve, best_frame) {
            (true, crate::domain::request::ReserveStrategy::Reserve, Some(jpeg))
                if settings.keep_photos =>
            {
                let key = format!("faces/{}", v.certify_id);
                self.store
                    .put(&key, jpeg)
                    .await
                    .map_err(|e| HostedError::Internal(e.into()))?;
                Ok(Some(key))
            }
            _ => Ok(None),
        }
    }

    /// Writes the attempt's outcome and, when final, the verdict with its billing record and callback, in one
    /// transaction; a kept face image is removed again when nothing was written.
    async fn record(
        &self,
        v: &verifications::Verification,
        d: &decision::Decision,
        r: Record<'_>,
    ) -> Result<(), HostedError> {
        let checks_json = json!({
            "attempt": r.attempt,
            "challenge": r.challenge.actions,
            "frames": r.frames,
            "fail_reason": d.fail_reason.map(FailReason::code),
            "decision": d,
        })
        .to_string();
        let identity_info = json!({
            "identity_check": d.identity_check,
            "authority": self.authority.kind(),
            "reference": match (r.has_merchant_picture, r.product.reference()) {
                (_, Reference::None) => "none",
                (true, _) => "merchant_picture",
                (false, _) => "authority_photo",
            },
        })
        .to_string();
        let material_info = json!({
            "match_score": d.match_score,
            "attempts": r.attempt,
        })
        .to_string();
        let reason_code = d.fail_reason.map(FailReason::code);
        let recorded = verifications::record_attempt_to(
            &self.db,
            attempts::AttemptOutcome {
                challenge_id: r.challenge_id,
                outcome: r.outcome,
                fail_reason: reason_code,
                checks_json: &checks_json,
                decision_ms: r.decision_ms as i32,
            },
            r.transition.map(|t| {
                (
                    t,
                    verifications::Verdict {
                        certify_id: &v.certify_id,
                        passed: d.passed,
                        fail_reason: reason_code,
                        decision_json: &checks_json,
                        identity_info: &identity_info,
                        material_info: &material_info,
                        face_image_key: r.face_key,
                        billing: r.billing,
                        callback_code: fail::cloud_sub_code(d.passed, d.fail_reason),
                    },
                )
            }),
            self.clock.now(),
        )
        .await;
        match recorded {
            Ok(true) => {}
            Ok(false) => {
                self.forget(r.face_key).await;
                return Err(HostedError::ChallengeInvalid);
            }
            Err(e) => {
                self.forget(r.face_key).await;
                return Err(e.into());
            }
        }
        let is_final = r.transition.is_some();
        if is_final {
            // A queued callback goes out now rather than at the dispatcher's next poll.
            self.callback_wake.notify_one();
        }
        if is_final && !d.passed {
            self.limits
                .identity_failed(r.cert_no, self.clock.now())
                .await;
        }
        Ok(())
    }

    /// Erases the personal data of verifications past the retention period (decided, or expired, more than
    /// `retention_days` ago; a scene may set its own period): name, ID number, the face image and the merchant's
    /// picture. The verdict, its checks and the billing record stay. Returns how many verifications were erased.
    pub async fn purge_personal_data(&self) -> Result<usize, HostedError> {
        let now = self.clock.now();
        let own: Vec<(i64, u32)> = crate::db::scenes::list(&self.db, None)
            .await?
            .into_iter()
            .filter_map(|s| s.retention_days.map(|d| (s.scene_id, d)))
            .collect();
        let mut cleaned = 0;
        for (id, days) in &own {
            let before = now - i64::from(*days) * 86_400;
            cleaned += self
                .purge_where(before, verifications::Scenes::Only(vec![*id]), now)
                .await?;
        }
        let before = now - i64::from(self.settings.retention_days) * 86_400;
        let others = verifications::Scenes::Except(own.iter().map(|(id, _)| *id).collect());
        cleaned += self.purge_where(before, others, now).await?;
        if cleaned > 0 {
            crate::privacy::audit(
                &self.db,
                crate::domain::audit::AuditRecord {
                    at: now,
                    actor: "system".into(),
                    action: crate::domain::audit::AuditAction::RetentionPurged,
                    target: format!("{cleaned} verification(s)"),
                    detail:
                        "names, ID numbers and kept images past their scene's retention deleted"
                            .into(),
                },
            )
            .await
            .map_err(HostedError::Internal)?;
        }
        Ok(cleaned)
    }

    /// Erases the personal data of the verifications of `scenes` decided or expired before `before`. Several
    /// instances may run it at once: each verification is erased by exactly one of them.
    async fn purge_where(
        &self,
        before: i64,
        scenes: verifications::Scenes,
        now: i64,
    ) -> Result<usize, HostedError> {
        let mut cleaned = 0;
        loop {
            let batch = verifications::unerased_older_than(&self.db, before, &scenes, 100).await?;
            if batch.is_empty() {
                return Ok(cleaned);
            }
            for certify_id in batch {
                if let verifications::Erasure::Erased { objects } =
                    verifications::erase(&self.db, &certify_id, now).await?
                {
                    for k in objects {
                        if let Err(e) = self.store.delete(&k).await {
                            tracing::error!(object = %k, error = %e, "a purged verification's image could not be deleted");
                        }
                    }
                    cleaned += 1;
                }
            }
        }
    }

    async fn forget(&self, key: Option<&str>) {
        if let Some(k) = key {
            if let Err(e) = self.store.delete(k).await {
                tracing::warn!(error = %e, "could not remove an unrecorded face image");
            }
        }
    }

    fn check_frames(&self, frames: &[FrameIn], challenge: &Challenge) -> Result<(), HostedError> {
        if frames.is_empty() {
            return Err(HostedError::BadFrames("no frames were uploaded".into()));
        }
        if frames.len() > self.settings.max_frames {
            return Err(HostedError::BadFrames(format!(
                "at most {} frames may be uploaded",
                self.settings.max_frames
            )));
        }
        let limit = challenge.duration_ms() + 5000;
        let mut last = 0;
        for (i, f) in frames.iter().enumerate() {
            if f.jpeg.len() > self.settings.max_frame_bytes {
                return Err(HostedError::BadFrames(format!("frame {i} is too large")));
            }
            if f.t_ms < last || f.t_ms > limit {
                return Err(HostedError::BadFrames(format!(
                    "frame {i} has an invalid time"
                )));
            }
            last = f.t_ms;
        }
        Ok(())
    }
}

/// Decodes every frame through the gate first (a bad frame stops the work before any analysis), then observes
/// them in order (each frame's surroundings are compared with the previous frame's). Returns the observations
/// and the frames' bytes.
fn observe_all(
    engine: &dyn FaceEngine,
    frames: Vec<FrameIn>,
    limits: DecodeLimits,
) -> Result<(Vec<Observation>, Vec<Vec<u8>>), HostedError> {
    let mut images = Vec::with_capacity(frames.len());
    for (i, f) in frames.iter().enumerate() {
        images.push(
            crate::face::image::decode(&f.jpeg, limits)
                .map_err(|e| HostedError::BadFrames(format!("frame {i}: {e}")))?,
        );
    }
    let mut prev = None;
    let mut out = Vec::with_capacity(frames.len());
    for (img, f) in images.iter().zip(&frames) {
        let (o, thumb) = crate::face::observe::observe(engine, img, f.t_ms, prev.as_ref())
            .map_err(|e| HostedError::Internal(e.into()))?;
        prev = Some(thumb);
        out.push(o);
    }
    Ok((out, frames.into_iter().map(|f| f.jpeg).collect()))
}

/// A submission that passed the cheap checks: its verification, settings, attempt and challenge.
struct OpenAttempt {
    v: verifications::Verification,
    settings: HostedSettings,
    attempt: attempts::Attempt,
    challenge: Challenge,
    product: Product,
}

/// What the authority said of the verification's person, and the reference face to match.
struct Identity {
    answer: AuthorityAnswer,
    reference: Option<Vec<f32>>,
    /// The merchant gave its own reference picture.
    merchant_picture: bool,
    cert_no: String,
}

/// What a decision means for the attempt: `passed`, `retry` (a retryable failure with attempts left) or `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Settled {
    outcome: &'static str,
    is_final: bool,
    attempts_left: u32,
}

impl Settled {
    fn of(d: &decision::Decision, max_attempts: u32, attempt: u32) -> Settled {
        let attempts_left = max_attempts.saturating_sub(attempt);
        let outcome = match d.fail_reason {
            None => "passed",
            Some(r) if r.retryable() && attempts_left > 0 => "retry",
            Some(_) => "failed",
        };
        Settled {
            outcome,
            is_final: outcome != "retry",
            attempts_left,
        }
    }
}

/// The decision of an attempt from its observations and the authority's answer.
fn decide_attempt(
    open: &OpenAttempt,
    identity: &Identity,
    observations: &[Observation],
) -> decision::Decision {
    decision::decide(
        &DecisionInput {
            authority: identity.answer,
            match_required: open.product.reference() != Reference::None,
            merchant_picture: identity.merchant_picture,
            reference: identity.reference.as_deref(),
            observations,
            challenge: &open.challenge,
        },
        &open.settings.decision,
    )
}

/// What [`HostedService::record`] writes besides the decision.
struct Record<'a> {
    challenge_id: &'a str,
    attempt: u32,
    challenge: &'a Challenge,
    frames: usize,
    outcome: &'static str,
    /// The move of a final verdict (none for a retry).
    transition: Option<Transition>,
    decision_ms: u32,
    has_merchant_picture: bool,
    product: Product,
    face_key: Option<&'a str>,
    billing: Option<crate::db::billing::BillingEvent>,
    /// The person's ID number: a final failure counts against the limit per identity.
    cert_no: &'a str,
}

#[cfg(test)]
mod tests {
    use super::{return_url_with_id, HostedSettings};

    #[test]
    fn a_scene_overrides_only_what_it_sets() {
        let base = HostedSettings::default();
        let mut scene = crate::db::scenes::Scene {
            scene_id: 1,
            app_id: "a".into(),
            name: "s".into(),
            product: "FACE".into(),
            match_far: Some("1e-4".into()),
            max_attempts: None,
            retention_days: Some(7),
            keep_photos: false,
            liveness: None,
            is_default: false,
            created_at: 0,
        };
        let s = base.with_scene(&scene);
        assert_eq!(s.decision.match_threshold, 80.0);
        assert_eq!(s.max_attempts, base.max_attempts);
        assert_eq!(s.retention_days, 7);
        assert!(!s.keep_photos);
        scene.match_far = None;
        scene.max_attempts = Some(1);
        let s = base.with_scene(&scene);
        assert_eq!(s.decision.match_threshold, base.decision.match_threshold);
        assert_eq!(s.max_attempts, 1);
        assert!(!s.strict_liveness);
        scene.liveness = Some("strict".into());
        let s = base.with_scene(&scene);
        assert!(s.strict_liveness);
        assert_eq!(
            s.decision.liveness.min_frames,
            base.decision.liveness.min_frames + 1
        );
        scene.liveness = Some("standard".into());
        assert!(!base.with_scene(&scene).strict_liveness);
    }

    #[test]
    fn return_url_gets_only_the_certify_id() {
        assert_eq!(
            return_url_with_id("https://m.example/done", "abc"),
            "https://m.example/done?certify_id=abc"
        );
        assert_eq!(
            return_url_with_id("https://m.example/done?x=1", "abc"),
            "https://m.example/done?x=1&certify_id=abc"
        );
        assert_eq!(
            return_url_with_id("https://m.example/done?", "abc"),
            "https://m.example/done?certify_id=abc"
        );
        assert_eq!(
            return_url_with_id("https://m.example/#/r?a=1", "abc"),
            "https://m.example/?certify_id=abc#/r?a=1"
        );
        assert_eq!(return_url_with_id("", "abc"), "");
    }
}
