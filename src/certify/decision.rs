//! The decision of one attempt (`design.md` §3), as a pure function of what the authority answered, the reference
//! face, the challenge and the per-frame observations. Every check is recorded with its score and threshold; the
//! first failed one, in a fixed order, is the stable fail reason.
use serde::Serialize;

use super::challenge::Challenge;
use crate::domain::fail::{round3, Check, FailReason, Recorder};
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

/// The reason a challenged action names when it was not seen.
pub fn action_fail(a: Action) -> FailReason {
    match a {
        Action::OpenMouth => FailReason::ActionOpenMouth,
        Action::Blink => FailReason::ActionBlink,
        Action::TurnLeft => FailReason::ActionTurnLeft,
        Action::TurnRight => FailReason::ActionTurnRight,
    }
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

/// The quality check of the frame kept and matched (the most frontal at rest): at least `min_iod_px` between the
/// eyes. Returns that frame too.
pub fn quality_check(obs: &[Observation], min_iod_px: f32) -> (Option<usize>, Check) {
    let best = best_frame(obs);
    let iod = best
        .and_then(|i| obs[i].measures)
        .map(|m| m.iod)
        .unwrap_or(0.0);
    let c = Check::new(
        "quality",
        best.is_some() && iod >= min_iod_px,
        Some(iod),
        Some(min_iod_px),
    );
    (best, c)
}

/// The check that the face moves against its surroundings (a held photo or screen carries them along). Only judged
/// when the face moved at least `min_face_motion_px` in all (returned too): a still face says nothing here.
pub fn relative_motion_check(obs: &[Observation], th: &Thresholds) -> (Check, f32) {
    let sig = liveness::relative_motion(obs, th);
    let moved = obs
        .windows(2)
        .filter_map(|w| Some(w[0].face_center?.dist(w[1].face_center?)))
        .sum::<f32>();
    let judged = moved >= th.min_face_motion_px;
    let c = Check::new(
        "relative_motion",
        !judged || sig.score <= th.max_surround_motion_ratio,
        Some(sig.score),
        Some(sig.threshold),
    );
    (c, moved)
}

/// The check that the same person is seen throughout: the worst near-frontal frame against the mean embedding of
/// the frames used for the match (returned too), on the match score scale.
pub fn same_identity_check(
    obs: &[Observation],
    score: fn(f32) -> f32,
    min_score: f32,
) -> (Option<Vec<f32>>, Check) {
    let live = live_embedding(obs);
    let worst = worst_identity_score(obs, live.as_deref(), score);
    let c = Check::new(
        "same_identity",
        worst.is_some_and(|w| w >= min_score),
        worst,
        Some(min_score),
    );
    (live, c)
}

/// Frames compared by the match.
pub const MATCH_FRAMES: usize = 5;

/// Decides one attempt.
pub fn decide(input: &DecisionInput<'_>, s: &DecisionSettings) -> Decision {
    let th = &s.liveness;
    let obs = input.observations;
    let mut rec = Recorder::new();

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
    rec.record(c, identity_reason.unwrap_or(FailReason::IdentityNotFound));
    let reference_ok =
        identity_reason.is_some() || input.reference.is_some() || !input.match_required;
    rec.record(
        Check::new("reference", reference_ok, None, None),
        FailReason::ReferenceUnusable,
    );

    // One face throughout.
    let one = liveness::one_face(obs, th);
    let many = obs.iter().any(|o| o.faces > 1);
    rec.record(
        Check::new("one_face", one.passed, Some(one.score), Some(one.threshold)),
        if many {
            FailReason::MultipleFaces
        } else {
            FailReason::NoFace
        },
    );

    // Quality of the frame used for the match.
    let (best, c) = quality_check(obs, s.min_iod_px);
    rec.record(c, FailReason::PoorQuality);

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
        rec.record(c, action_fail(*a));
    }
    if actions.is_empty() {
        rec.record(
            Check::new("actions", false, None, None),
            FailReason::ActionOpenMouth,
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
        rec.record(
            Check::new(
                "colour_flash",
                sig.passed,
                Some(sig.score),
                Some(sig.threshold),
            ),
            FailReason::ColourFlash,
        );
    } else {
        let mut c = Check::new("colour_flash", true, None, None);
        c.detail = Some("skipped (test-only setting)".into());
        rec.note(c);
    }

    // The face moves against its surroundings. Only judged when the face moved enough: a still face says nothing
    // here (and cannot have performed the actions).
    let (mut c, moved) = relative_motion_check(obs, th);
    if moved < th.min_face_motion_px {
        c.detail = Some("not judged: the face hardly moved".into());
    }
    rec.record(c, FailReason::Surroundings);

    // The same person throughout: every near-frontal frame's face against the faces used for the match (a mean
    // over all frames would hide a swap half-way through; strongly turned or open-mouthed faces are left out, as
    // recognisers are unreliable on them). Judged on the match score scale, so the threshold keeps its meaning
    // whatever the recogniser.
    let (live, c) = same_identity_check(obs, s.score, s.same_identity_score);
    rec.record(c, FailReason::IdentityChanged);

    // Match against the reference. Computed even when the identity failed, so that the time taken does not tell
    // whether the authority knows the person.
    let zero = vec![0.0f32; live.as_ref().map_or(0, Vec::len)];
    let reference = input.reference.unwrap_or(&zero);
    let match_score = live
        .as_ref()
        .filter(|e| e.len() == reference.len())
        .map(|e| (s.score)(cosine(e, reference)));
    if input.match_required {
        rec.record(
            Check::new(
                "match",
                match_score.is_some_and(|m| m >= s.match_threshold),
                match_score,
                Some(s.match_threshold),
            ),
            FailReason::FaceMismatch,
        );
    } else {
        let mut c = Check::new("match", true, None, None);
        c.detail = Some("not requested (liveness only)".into());
        rec.note(c);
    }
    let match_score = match_score.filter(|_| input.match_required);

    let (checks, first) = rec.finish();
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
        assert_eq!(d.fail_reason, Some(FailReason::ActionOpenMouth));
        assert!(d.fail_reason.unwrap().retryable());
        // An action that never happened.
        let d = run(
            AuthorityAnswer::Match,
            false,
            Some(&e),
            &obs,
            &[Action::OpenMouth, Action::Blink],
        );
        assert_eq!(d.fail_reason, Some(FailReason::ActionBlink));
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
}
