//! The decision of one attempt (`design.md` §3), as a pure function of what the authority answered, the reference
//! face, the challenge and the per-frame observations. Every check is recorded with its score and threshold; the
//! first failed one, in a fixed order, is the stable fail reason.
use serde::Serialize;

use super::challenge::Challenge;
use crate::face::engine::cosine;
use crate::face::liveness::{self, Action, Observation, Thresholds};

/// What the authority said about the name and ID number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorityAnswer {
    /// Known, and the name matches.
    Match,
    /// Known under another name.
    NameMismatch,
    NotFound,
    /// The product names no person (PV_FV, LR_FR): nothing to confirm.
    NotAsked,
}

/// Settings of the decision (defaults from the config; scenes may override them).
#[derive(Debug, Clone, Copy)]
pub struct DecisionSettings {
    pub liveness: Thresholds,
    /// Match threshold on the 0–100 score.
    pub match_threshold: f32,
    /// Cosine → 0–100 score of the active recogniser.
    pub score: fn(f32) -> f32,
    /// Smallest inter-ocular distance (pixels) of the frame used for the match.
    pub min_iod_px: f32,
    /// Whether the colour-flash check runs (off only through a test-only setting).
    pub colour_check: bool,
    /// Lowest match score (0–100) of any near-frontal frame against the matched face (60 ≈ FAR 1e-2 per frame).
    pub same_identity_score: f32,
}

/// Everything one decision looks at.
pub struct DecisionInput<'a> {
    pub authority: AuthorityAnswer,
    /// The merchant sent its own reference picture (`face_contrast_picture`).
    pub merchant_picture: bool,
    /// Embedding of the reference face: the merchant's picture when given, else the authority's photo.
    pub reference: Option<&'a [f32]>,
    /// Whether the live face must match a reference (false for liveness-only products).
    pub match_required: bool,
    pub observations: &'a [Observation],
    pub challenge: &'a Challenge,
}

/// Why a decision failed: stable codes, in the order the checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    IdentityNotFound,
    IdentityNameMismatch,
    ReferenceUnusable,
    NoFace,
    MultipleFaces,
    PoorQuality,
    Action(Action),
    ColourFlash,
    Surroundings,
    IdentityChanged,
    FaceMismatch,
}

impl FailReason {
    pub fn code(self) -> &'static str {
        match self {
            FailReason::IdentityNotFound => "IDENTITY_NOT_FOUND",
            FailReason::IdentityNameMismatch => "IDENTITY_NAME_MISMATCH",
            FailReason::ReferenceUnusable => "REFERENCE_PHOTO_UNUSABLE",
            FailReason::NoFace => "LIVENESS_NO_FACE",
            FailReason::MultipleFaces => "LIVENESS_MULTIPLE_FACES",
            FailReason::PoorQuality => "LIVENESS_POOR_QUALITY",
            FailReason::Action(Action::OpenMouth) => "LIVENESS_ACTION_OPEN_MOUTH",
            FailReason::Action(Action::Blink) => "LIVENESS_ACTION_BLINK",
            FailReason::Action(Action::TurnLeft) => "LIVENESS_ACTION_TURN_LEFT",
            FailReason::Action(Action::TurnRight) => "LIVENESS_ACTION_TURN_RIGHT",
            FailReason::ColourFlash => "LIVENESS_COLOUR_FLASH",
            FailReason::Surroundings => "LIVENESS_SURROUNDINGS",
            FailReason::IdentityChanged => "LIVENESS_IDENTITY_CHANGED",
            FailReason::FaceMismatch => "FACE_MISMATCH",
        }
    }

    /// Every reason, for reading stored codes back.
    pub const ALL: [FailReason; 14] = [
        FailReason::IdentityNotFound,
        FailReason::IdentityNameMismatch,
        FailReason::ReferenceUnusable,
        FailReason::NoFace,
        FailReason::MultipleFaces,
        FailReason::PoorQuality,
        FailReason::Action(Action::OpenMouth),
        FailReason::Action(Action::Blink),
        FailReason::Action(Action::TurnLeft),
        FailReason::Action(Action::TurnRight),
        FailReason::ColourFlash,
        FailReason::Surroundings,
        FailReason::IdentityChanged,
        FailReason::FaceMismatch,
    ];

    pub fn from_code(code: &str) -> Option<FailReason> {
        FailReason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The code the page and the mini-program host see: identity and match failures share one, so that the page
    /// does not tell whether an ID number is registered (the merchant's `query` gets the precise code).
    pub fn public_code(self) -> &'static str {
        match self {
            FailReason::IdentityNotFound
            | FailReason::IdentityNameMismatch
            | FailReason::FaceMismatch => "IDENTITY_UNCONFIRMED",
            other => other.code(),
        }
    }

    /// Whether another attempt may help: liveness and quality failures can be retried; a live face that does not
    /// match, or an identity the authority does not confirm, is final (retrying would only let an impostor probe).
    pub fn retryable(self) -> bool {
        !matches!(
            self,
            FailReason::IdentityNotFound
                | FailReason::IdentityNameMismatch
                | FailReason::ReferenceUnusable
                | FailReason::FaceMismatch
        )
    }

    /// What the person in front of the phone is told (Chinese, English). Identity and match failures share one
    /// message: the page must not reveal whether an ID number is registered.
    pub fn messages(self) -> (&'static str, &'static str) {
        match self {
            FailReason::IdentityNotFound
            | FailReason::IdentityNameMismatch
            | FailReason::FaceMismatch => (
                "身份核验未通过，请确认是本人操作。",
                "We could not confirm your identity. Please make sure you are the person named.",
            ),
            FailReason::ReferenceUnusable => (
                "参考照片无法使用，请联系商户。",
                "The reference photo cannot be used. Please contact the merchant.",
            ),
            FailReason::NoFace => (
                "未能持续检测到人脸，请将脸完整放在取景框内。",
                "Your face was not visible long enough. Keep your whole face inside the circle.",
            ),
            FailReason::MultipleFaces => (
                "画面中出现了多张人脸，请确保只有您本人。",
                "More than one face was seen. Make sure only you are in view.",
            ),
            FailReason::PoorQuality => (
                "人脸太小或不清晰，请靠近一些并保持光线充足。",
                "Your face was too small or unclear. Move closer and find good light.",
            ),
            FailReason::Action(Action::OpenMouth) => (
                "没有看到张嘴动作，请在提示时张大嘴巴。",
                "We did not see you open your mouth. Open it wide when asked.",
            ),
            FailReason::Action(Action::Blink) => (
                "没有看到眨眼动作，请在提示时眨眼。",
                "We did not see you blink. Blink when asked.",
            ),
            FailReason::Action(Action::TurnLeft) | FailReason::Action(Action::TurnRight) => (
                "没有看到转头动作，请按提示方向缓慢转头。",
                "We did not see you turn your head. Turn it slowly the way you are asked.",
            ),
            FailReason::ColourFlash => (
                "屏幕闪光未能照亮面部，请调亮屏幕并靠近一些。",
                "The screen's light did not reach your face. Turn up the brightness and move closer.",
            ),
            FailReason::Surroundings => (
                "检测到疑似翻拍，请直接面对摄像头完成认证。",
                "This looked like a photo or screen. Face the camera yourself.",
            ),
            FailReason::IdentityChanged => (
                "认证过程中人脸发生变化，请本人全程完成。",
                "The face changed during the check. Complete it yourself from start to end.",
            ),
        }
    }
}

/// One recorded check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Check {
    fn new(name: &str, passed: bool, score: Option<f32>, threshold: Option<f32>) -> Check {
        Check {
            name: name.into(),
            passed,
            score: score.map(round3),
            threshold,
            detail: None,
        }
    }
}

fn round3(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}

/// How the ID number was checked, for `identity_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityCheck {
    /// The authority knows this name and number.
    Authority,
    /// The authority has no record; the merchant's picture was the reference and the number was only checked for
    /// form.
    FormatOnly,
    /// Not confirmed.
    Failed,
    /// The product names no person.
    NotRequested,
}

/// The verdict of one attempt.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub passed: bool,
    #[serde(skip)]
    pub fail_reason: Option<FailReason>,
    pub checks: Vec<Check>,
    /// The most frontal frame at rest (kept as the face image; the match uses it and the next most frontal ones).
    pub best_frame: Option<usize>,
    pub match_score: Option<f32>,
    pub identity_check: IdentityCheck,
}

/// Frames with one face, an embedding and measures.
fn usable(o: &Observation) -> bool {
    o.faces == 1 && o.embedding.is_some() && o.measures.is_some()
}

/// Up to `n` frames to compare, most frontal first: among frames at rest (mouth closed), those whose head is
/// nearest its frontal pose; any usable frame when none is at rest.
pub fn frontal_frames(obs: &[Observation], n: usize) -> Vec<usize> {
    let base = liveness::yaw_baseline(obs);
    let off = |i: usize| obs[i].measures.map_or(f32::MAX, |m| (m.yaw - base).abs());
    let pick = |rest: bool| {
        let mut v: Vec<usize> = (0..obs.len())
            .filter(|&i| usable(&obs[i]))
            .filter(|&i| !rest || obs[i].measures.is_some_and(|m| m.mar < 0.15))
            .collect();
        v.sort_by(|&a, &b| off(a).total_cmp(&off(b)));
        v.truncate(n);
        v
    };
    let v = pick(true);
    if v.is_empty() {
        pick(false)
    } else {
        v
    }
}

/// The frame kept as the face image and judged for quality: the most frontal at rest.
pub fn best_frame(obs: &[Observation]) -> Option<usize> {
    frontal_frames(obs, 1).first().copied()
}

/// The L2-normalised mean embedding of some frames (averaging a few frontal frames steadies the match).
fn mean_embedding(obs: &[Observation], frames: &[usize]) -> Option<Vec<f32>> {
    let first = obs.get(*frames.first()?)?.embedding.as_ref()?;
    let mut m = vec![0.0f32; first.len()];
    for &i in frames {
        if let Some(e) = obs[i].embedding.as_ref().filter(|e| e.len() == m.len()) {
            m.iter_mut().zip(e).for_each(|(a, b)| *a += b);
        }
    }
    let n = m.iter().map(|x| x * x).sum::<f32>().sqrt();
    (n > 0.0).then(|| m.iter().map(|x| x / n).collect())
}

/// The mean embedding of the frames used for the match (the most frontal ones at rest).
pub fn live_embedding(obs: &[Observation]) -> Option<Vec<f32>> {
    mean_embedding(obs, &frontal_frames(obs, MATCH_FRAMES))
}

/// The lowest match score (0–100, by `score`) of any near-frontal frame's face against `live` (the faces used for
/// the match): a mean over all frames would hide a swap half-way through; strongly turned or open-mouthed faces are
/// left out, as recognisers are unreliable on them (all usable frames when fewer than 3 are near-frontal).
pub fn worst_identity_score(
    obs: &[Observation],
    live: Option<&[f32]>,
    score: fn(f32) -> f32,
) -> Option<f32> {
    let base = liveness::yaw_baseline(obs);
    let near: Vec<&Observation> = obs
        .iter()
        .filter(|o| usable(o))
        .filter(|o| {
            o.measures
                .is_some_and(|m| (m.yaw - base).abs() <= 0.10 && m.mar < 0.30)
        })
        .collect();
    let compared: Vec<&Observation> = if near.len() >= 3 {
        near
    } else {
        obs.iter().filter(|o| usable(o)).collect()
    };
    live.and_then(|a| {
        compared
            .iter()
            .filter_map(|o| o.embedding.as_ref())
            .map(|e| score(cosine(e, a)))
            .min_by(f32::total_cmp)
    })
}

/// Frames compared by the match.
pub const MATCH_FRAMES: usize = 5;

/// Decides one attempt.
pub fn decide(input: &DecisionInput<'_>, s: &DecisionSettings) -> Decision {
    let th = &s.liveness;
    let obs = input.observations;
    let mut checks = Vec::new();
    let mut first: Option<FailReason> = None;
    let mut record = |c: Check, reason: FailReason, checks: &mut Vec<Check>| {
        if !c.passed && first.is_none() {
            first = Some(reason);
        }
        checks.push(c);
    };

    // Identity.
    let (identity_check, identity_reason) = match (input.authority, input.merchant_picture) {
        (AuthorityAnswer::Match, _) => (IdentityCheck::Authority, None),
        (AuthorityAnswer::NotAsked, _) => (IdentityCheck::NotRequested, None),
        (AuthorityAnswer::NameMismatch, _) => (
            IdentityCheck::Failed,
            Some(FailReason::IdentityNameMismatch),
        ),
        (AuthorityAnswer::NotFound, true) => (IdentityCheck::FormatOnly, None),
        (AuthorityAnswer::NotFound, false) => {
            (IdentityCheck::Failed, Some(FailReason::IdentityNotFound))
        }
    };
    let mut c = Check::new("identity", identity_reason.is_none(), None, None);
    c.detail = Some(
        match identity_check {
            IdentityCheck::Authority => "authority",
            IdentityCheck::FormatOnly => "format_only",
            IdentityCheck::Failed => "not_confirmed",
            IdentityCheck::NotRequested => "not_requested",
        }
        .into(),
    );
    record(
        c,
        identity_reason.unwrap_or(FailReason::IdentityNotFound),
        &mut checks,
    );
    let reference_ok =
        identity_reason.is_some() || input.reference.is_some() || !input.match_required;
    record(
        Check::new("reference", reference_ok, None, None),
        FailReason::ReferenceUnusable,
        &mut checks,
    );

    // One face throughout.
    let one = liveness::one_face(obs, th);
    let many = obs.iter().any(|o| o.faces > 1);
    record(
        Check::new("one_face", one.passed, Some(one.score), Some(one.threshold)),
        if many {
            FailReason::MultipleFaces
        } else {
            FailReason::NoFace
        },
        &mut checks,
    );

    // Quality of the frame used for the match.
    let best = best_frame(obs);
    let iod = best
        .and_then(|i| obs[i].measures)
        .map(|m| m.iod)
        .unwrap_or(0.0);
    record(
        Check::new(
            "quality",
            best.is_some() && iod >= s.min_iod_px,
            Some(iod),
            Some(s.min_iod_px),
        ),
        FailReason::PoorQuality,
        &mut checks,
    );

    // The challenged actions, in order.
    let actions = input.challenge.parsed_actions();
    for (a, sig) in actions
        .iter()
        .zip(liveness::actions_in_order(obs, &actions, th))
    {
        let mut c = Check::new(
            &format!("action_{}", a.as_str()),
            sig.passed,
            Some(sig.score),
            Some(sig.threshold),
        );
        c.detail = sig.at_frame.map(|f| format!("frame {f}"));
        record(c, FailReason::Action(*a), &mut checks);
    }
    if actions.is_empty() {
        record(
            Check::new("actions", false, None, None),
            FailReason::Action(Action::OpenMouth),
            &mut checks,
        );
    }

    // Colour flashes, over the frames of the opening phase.
    if s.colour_check {
        let phase: Vec<Observation> = obs
            .iter()
            .filter(|o| o.t_ms < input.challenge.baseline_ms)
            .cloned()
            .collect();
        let ch = input.challenge;
        let flash = |t: u32| ch.flash_at(t).unwrap_or([0.0, 0.0, 0.0]);
        let sig = liveness::colour_flash(&phase, &flash, th);
        record(
            Check::new(
                "colour_flash",
                sig.passed,
                Some(sig.score),
                Some(sig.threshold),
            ),
            FailReason::ColourFlash,
            &mut checks,
        );
    } else {
        let mut c = Check::new("colour_flash", true, None, None);
        c.detail = Some("skipped (test-only setting)".into());
        checks.push(c);
    }

    // The face moves against its surroundings. Only judged when the face moved enough: a still face says nothing
    // here (and cannot have performed the actions).
    let sig = liveness::relative_motion(obs, th);
    let judged = obs
        .windows(2)
        .filter_map(|w| Some(w[0].face_center?.dist(w[1].face_center?)))
        .sum::<f32>()
        >= th.min_face_motion_px;
    let mut c = Check::new(
        "relative_motion",
        !judged || sig.score <= th.max_surround_motion_ratio,
        Some(sig.score),
        Some(sig.threshold),
    );
    if !judged {
        c.detail = Some("not judged: the face hardly moved".into());
    }
    record(c, FailReason::Surroundings, &mut checks);

    // The same person throughout: every near-frontal frame's face against the faces used for the match (a mean
    // over all frames would hide a swap half-way through; strongly turned or open-mouthed faces are left out, as
    // recognisers are unreliable on them). Judged on the match score scale, so the threshold keeps its meaning
    // whatever the recogniser.
    let live = live_embedding(obs);
    let worst = worst_identity_score(obs, live.as_deref(), s.score);
    record(
        Check::new(
            "same_identity",
            worst.is_some_and(|w| w >= s.same_identity_score),
            worst,
            Some(s.same_identity_score),
        ),
        FailReason::IdentityChanged,
        &mut checks,
    );

    // Match against the reference. Computed even when the identity failed, so that the time taken does not tell
    // whether the authority knows the person.
    let zero = vec![0.0f32; live.as_ref().map_or(0, Vec::len)];
    let reference = input.reference.unwrap_or(&zero);
    let match_score = live
        .as_ref()
        .filter(|e| e.len() == reference.len())
        .map(|e| (s.score)(cosine(e, reference)));
    if input.match_required {
        record(
            Check::new(
                "match",
                match_score.is_some_and(|m| m >= s.match_threshold),
                match_score,
                Some(s.match_threshold),
            ),
            FailReason::FaceMismatch,
            &mut checks,
        );
    } else {
        let mut c = Check::new("match", true, None, None);
        c.detail = Some("not requested (liveness only)".into());
        checks.push(c);
    }
    let match_score = match_score.filter(|_| input.match_required);

    Decision {
        passed: first.is_none(),
        fail_reason: first,
        checks,
        best_frame: best,
        match_score: match_score.map(round3),
        identity_check,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certify::challenge::{Challenge, Timing};
    use crate::face::geometry::Point;
    use crate::face::quality::Measures;
    use rand::SeedableRng;

    fn settings() -> DecisionSettings {
        DecisionSettings {
            liveness: Thresholds::default(),
            match_threshold: 70.0,
            score: crate::face::compare::score,
            min_iod_px: 28.0,
            colour_check: false,
            same_identity_score: 60.0,
        }
    }

    fn challenge(actions: &[Action]) -> Challenge {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        Challenge::with_actions(
            &mut rng,
            actions,
            Timing {
                baseline_ms: 1000,
                action_ms: 2000,
                fps: 10,
            },
        )
    }

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    /// A live sequence: rest for 1 s, then open the mouth (2 s), then turn left (2 s); the head moves, the room
    /// does not.
    fn live(embedding: &[f32]) -> Vec<Observation> {
        (0..50)
            .map(|i| {
                let t = i * 100;
                let (mar, yaw) = match t {
                    1300..=1800 => (0.45, 0.0),
                    3300..=3900 => (0.05, 0.22),
                    _ => (0.05, 0.0),
                };
                Observation {
                    t_ms: t,
                    faces: 1,
                    measures: Some(Measures {
                        iod: 60.0,
                        face_length: 70.0,
                        ear: 0.3,
                        eye_open_norm: 0.2,
                        mar,
                        yaw,
                        pitch: 0.5,
                        roll: 0.0,
                    }),
                    embedding: Some(embedding.to_vec()),
                    face_rgb: Some([150.0, 120.0, 100.0]),
                    face_center: Some(Point::new(240.0 + (i % 5) as f32 * 3.0, 240.0)),
                    surround_shift: Some(Point::new(0.0, 0.0)),
                }
            })
            .collect()
    }

    #[test]
    fn a_live_matching_person_passes_with_every_check_recorded() {
        let e = unit(&[1.0, 0.2, 0.1, 0.0]);
        let obs = live(&e);
        let ch = challenge(&[Action::OpenMouth, Action::TurnLeft]);
        let d = decide(
            &DecisionInput {
                authority: AuthorityAnswer::Match,
                match_required: true,
                merchant_picture: false,
                reference: Some(&e),
                observations: &obs,
                challenge: &ch,
            },
            &settings(),
        );
        assert!(d.passed, "{:#?}", d.checks);
        assert_eq!(d.fail_reason, None);
        assert_eq!(d.identity_check, IdentityCheck::Authority);
        let names: Vec<&str> = d.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "identity",
                "reference",
                "one_face",
                "quality",
                "action_open_mouth",
                "action_turn_left",
                "colour_flash",
                "relative_motion",
                "same_identity",
                "match"
            ]
        );
        assert_eq!(d.match_score, Some(100.0));
        assert!(d
            .best_frame
            .is_some_and(|i| obs[i].measures.unwrap().mar < 0.15));
    }

    #[test]
    fn products_without_a_named_person_skip_identity_and_liveness_only_skips_the_match() {
        let e = unit(&[1.0, 0.2, 0.1, 0.0]);
        let other = unit(&[0.0, 0.1, 1.0, 0.3]);
        let obs = live(&e);
        let ch = challenge(&[Action::OpenMouth, Action::TurnLeft]);
        let s = settings();
        let run = |reference: Option<&[f32]>, match_required: bool| {
            decide(
                &DecisionInput {
                    authority: AuthorityAnswer::NotAsked,
                    match_required,
                    merchant_picture: reference.is_some(),
                    reference,
                    observations: &obs,
                    challenge: &ch,
                },
                &s,
            )
        };
        // PV_FV: the merchant's picture is the reference.
        let d = run(Some(&e), true);
        assert!(d.passed, "{:?}", d.fail_reason);
        assert_eq!(d.identity_check, IdentityCheck::NotRequested);
        assert_eq!(
            run(Some(&other), true).fail_reason,
            Some(FailReason::FaceMismatch)
        );
        assert_eq!(
            run(None, true).fail_reason,
            Some(FailReason::ReferenceUnusable)
        );
        // LR_FR: liveness alone; no score is reported.
        let d = run(None, false);
        assert!(d.passed, "{:?}", d.fail_reason);
        assert_eq!(d.match_score, None);
        assert!(d.checks.iter().any(|c| c.name == "match" && c.passed));
    }

    #[test]
    fn the_first_failed_check_names_the_reason() {
        let e = unit(&[1.0, 0.2, 0.1, 0.0]);
        let other = unit(&[0.0, 0.1, 1.0, 0.3]);
        let obs = live(&e);
        let s = settings();
        let run = |authority,
                   merchant_picture,
                   reference: Option<&[f32]>,
                   obs: &[Observation],
                   actions: &[Action]| {
            let ch = challenge(actions);
            decide(
                &DecisionInput {
                    authority,
                    match_required: true,
                    merchant_picture,
                    reference,
                    observations: obs,
                    challenge: &ch,
                },
                &s,
            )
        };
        let both = [Action::OpenMouth, Action::TurnLeft];
        // Identity comes first, even when everything else would fail too.
        let d = run(AuthorityAnswer::NotFound, false, None, &obs, &both);
        assert_eq!(d.fail_reason, Some(FailReason::IdentityNotFound));
        assert!(!d.fail_reason.unwrap().retryable());
        let d = run(AuthorityAnswer::NameMismatch, true, Some(&e), &obs, &both);
        assert_eq!(d.fail_reason, Some(FailReason::IdentityNameMismatch));
        // A merchant picture stands in for an unknown person: the number was only checked for form.
        let d = run(AuthorityAnswer::NotFound, true, Some(&e), &obs, &both);
        assert!(d.passed);
        assert_eq!(d.identity_check, IdentityCheck::FormatOnly);
        // A reference without a usable face.
        let d = run(AuthorityAnswer::Match, false, None, &obs, &both);
        assert_eq!(d.fail_reason, Some(FailReason::ReferenceUnusable));
        // Another person.
        let d = run(AuthorityAnswer::Match, false, Some(&other), &obs, &both);
        assert_eq!(d.fail_reason, Some(FailReason::FaceMismatch));
        assert!(!d.fail_reason.unwrap().retryable());
        // The actions in the other order: the turn is never followed by an open mouth.
        let d = run(
            AuthorityAnswer::Match,
            false,
            Some(&e),
            &obs,
            &[Action::TurnLeft, Action::OpenMouth],
        );
        assert_eq!(d.fail_reason, Some(FailReason::Action(Action::OpenMouth)));
        assert!(d.fail_reason.unwrap().retryable());
        // An action that never happened.
        let d = run(
            AuthorityAnswer::Match,
            false,
            Some(&e),
            &obs,
            &[Action::OpenMouth, Action::Blink],
        );
        assert_eq!(d.fail_reason, Some(FailReason::Action(Action::Blink)));
        // A second face.
        let mut two = obs.clone();
        two[20].faces = 2;
        let d = run(AuthorityAnswer::Match, false, Some(&e), &two, &both);
        assert_eq!(d.fail_reason, Some(FailReason::MultipleFaces));
        // No face in most frames.
        let mut none = obs.clone();
        for o in none.iter_mut().skip(10) {
            *o = Observation {
                t_ms: o.t_ms,
                ..Default::default()
            };
        }
        let d = run(AuthorityAnswer::Match, false, Some(&e), &none, &both);
        assert_eq!(d.fail_reason, Some(FailReason::NoFace));
        // A tiny face.
        let mut small = obs.clone();
        for o in small.iter_mut() {
            o.measures.as_mut().unwrap().iod = 12.0;
        }
        let d = run(AuthorityAnswer::Match, false, Some(&e), &small, &both);
        assert_eq!(d.fail_reason, Some(FailReason::PoorQuality));
        // The surroundings move with the face (a held photo or screen).
        let mut held = obs.clone();
        for i in 1..held.len() {
            let (a, b) = (
                held[i - 1].face_center.unwrap(),
                held[i].face_center.unwrap(),
            );
            held[i].surround_shift = Some(Point::new(b.x - a.x, b.y - a.y));
        }
        let d = run(AuthorityAnswer::Match, false, Some(&e), &held, &both);
        assert_eq!(d.fail_reason, Some(FailReason::Surroundings));
        // The face changes half-way.
        let mut swapped = obs.clone();
        for o in swapped.iter_mut().skip(25) {
            o.embedding = Some(other.clone());
        }
        let d = run(AuthorityAnswer::Match, false, Some(&e), &swapped, &both);
        assert_eq!(d.fail_reason, Some(FailReason::IdentityChanged));
    }

    #[test]
    fn colour_check_runs_over_the_opening_phase_when_on() {
        let e = unit(&[1.0, 0.2, 0.1, 0.0]);
        let ch = challenge(&[Action::OpenMouth, Action::TurnLeft]);
        let mut obs = live(&e);
        let mut s = settings();
        s.colour_check = true;
        // The face keeps one colour whatever the screen shows: the check fails.
        let input = |obs: &[Observation]| {
            decide(
                &DecisionInput {
                    authority: AuthorityAnswer::Match,
                    match_required: true,
                    merchant_picture: false,
                    reference: Some(&e),
                    observations: obs,
                    challenge: &ch,
                },
                &s,
            )
        };
        assert_eq!(input(&obs).fail_reason, Some(FailReason::ColourFlash));
        // The face takes on a little of the flashed colour: it passes.
        for o in obs.iter_mut() {
            if let Some(c) = ch.flash_at(o.t_ms) {
                let f = o.face_rgb.as_mut().unwrap();
                for k in 0..3 {
                    f[k] += 0.1 * c[k];
                }
            }
        }
        let d = input(&obs);
        assert!(d.passed, "{:#?}", d.checks);
    }

    #[test]
    fn stored_codes_read_back() {
        for r in FailReason::ALL {
            assert_eq!(FailReason::from_code(r.code()), Some(r));
            let (zh, en) = r.messages();
            assert!(!zh.is_empty() && !en.is_empty());
        }
        assert_eq!(FailReason::from_code("NOPE"), None);
    }
}
