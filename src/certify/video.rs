//! The sequence checks of a face video (product ID_MIN_VIDEO): pure functions of the per-frame observations of the
//! sampled frames. There is no challenge in this product, so the video must show, on its own: one face throughout,
//! good enough to match, the same person in every frame, the face moving against its surroundings (a photo moved in
//! front of the camera carries its background along), and at least one natural action (open mouth, blink or head
//! turn, each against the person's own baseline, as in `face::liveness`). Every check is recorded with its score
//! and threshold, in the style of [`super::decision`]; the first failed one, in a fixed order, is the reason.
//!
//! What a moved photo can fake (`shared/reference/liveness.md`): a turn (tilting it about the vertical axis) and,
//! with the plain eye aspect ratio, a blink (nodding it). The blink here is the eye opening ÷ face length with the
//! face length and pitch held steady, and the surroundings check catches a photo carried across the picture; an
//! open mouth cannot be faked by moving a photo. A replayed video of the real person is not caught by these checks
//! (the hosted flow's random challenge and colour flash are what stop it there).
use super::decision;
use crate::domain::fail::{Check, Recorder};
use crate::face::liveness::{self, Action, Observation, Thresholds};

/// Settings of the video checks (the hosted flow's decision settings carry the same meanings).
#[derive(Debug, Clone, Copy)]
pub struct VideoCheckSettings {
    pub liveness: Thresholds,
    /// Smallest inter-ocular distance (pixels, in the sampled frame) of the best frame.
    pub min_iod_px: f32,
    /// Cosine → 0–100 score of the active recogniser.
    pub score: fn(f32) -> f32,
    /// Lowest match score (0–100) of any near-frontal frame against the frames used for the match.
    pub same_identity_score: f32,
    /// Fewest sampled frames to judge (1 s at 8 fps).
    pub min_frames: usize,
}

impl VideoCheckSettings {
    /// The thresholds the hosted flow's decision uses.
    pub fn from_decision(d: &decision::DecisionSettings) -> VideoCheckSettings {
        VideoCheckSettings {
            liveness: d.liveness,
            min_iod_px: d.min_iod_px,
            score: d.score,
            same_identity_score: d.same_identity_score,
            min_frames: 8,
        }
    }
}

/// Why a video failed: the codes of the catalogue that the video checks name (the name the callers know).
pub use crate::domain::fail::FailReason as VideoFailReason;

/// The verdict on one video's sequence (the face match against the reference photo is the caller's).
#[derive(Debug, Clone)]
pub struct VideoVerdict {
    pub passed: bool,
    pub fail_reason: Option<VideoFailReason>,
    /// Every check in order, with score and threshold; the per-action checks are informative (only
    /// `natural_action`, passed when any of them passed, decides).
    pub checks: Vec<Check>,
    /// The most frontal frame at rest: the face image to keep and to show.
    pub best_frame: Option<usize>,
    /// The frames to match against the reference, most frontal first.
    pub match_frames: Vec<usize>,
    /// The L2-normalised mean embedding of `match_frames`: what the caller compares with the reference.
    pub live_embedding: Option<Vec<f32>>,
}

/// Runs the sequence checks over the observations of the sampled frames, in time order.
pub fn check_sequence(obs: &[Observation], s: &VideoCheckSettings) -> VideoVerdict {
    let th = &s.liveness;
    let mut rec = Recorder::new();

    rec.record(
        Check::new(
            "frames",
            obs.len() >= s.min_frames,
            Some(obs.len() as f32),
            Some(s.min_frames as f32),
        ),
        VideoFailReason::TooFewFrames,
    );

    // One face throughout.
    let one = liveness::one_face(obs, th);
    let many = obs.iter().any(|o| o.faces > 1);
    let mut c = Check::new("one_face", one.passed, Some(one.score), Some(one.threshold));
    c.detail = one
        .at_frame
        .map(|f| format!("two or more faces at frame {f}"));
    rec.record(
        c,
        if many {
            VideoFailReason::MultipleFaces
        } else {
            VideoFailReason::NoFace
        },
    );

    // Quality of the best frame.
    let (best, mut c) = decision::quality_check(obs, s.min_iod_px);
    c.detail = best.map(|f| format!("frame {f}"));
    rec.record(c, VideoFailReason::PoorQuality);

    // The face moves against its surroundings; judged only when the face moved enough.
    let (mut c, moved) = decision::relative_motion_check(obs, th);
    c.detail = Some(if moved >= th.min_face_motion_px {
        format!("face moved {moved:.0} px")
    } else {
        "not judged: the face hardly moved".into()
    });
    rec.record(c, VideoFailReason::Surroundings);

    // At least one natural action, each searched over the whole video from the person's own baseline.
    let baseline = liveness::yaw_baseline(obs);
    let mut any = false;
    let mut best_ratio = 0.0f32;
    let mut seen = Vec::new();
    for a in [
        Action::OpenMouth,
        Action::Blink,
        Action::TurnLeft,
        Action::TurnRight,
    ] {
        let (at, score) = liveness::find_action(obs, a, 0, baseline, th);
        let threshold = match a {
            Action::OpenMouth => th.mouth_open_mar,
            Action::Blink => 1.0 - th.blink_ratio,
            _ => th.turn_yaw,
        };
        best_ratio = best_ratio.max(score / threshold.max(1e-6));
        let mut c = Check::new(
            &format!("action_{}", a.as_str()),
            at.is_some(),
            Some(score),
            Some(threshold),
        );
        if let Some(f) = at {
            any = true;
            seen.push(format!("{} at frame {f}", a.as_str()));
            c.detail = Some(format!("frame {f}"));
        }
        rec.note(c);
    }
    let mut c = Check::new("natural_action", any, Some(best_ratio), Some(1.0));
    c.detail = Some(if seen.is_empty() {
        "score: the strongest action's score ÷ its threshold".into()
    } else {
        seen.join(", ")
    });
    rec.record(c, VideoFailReason::NoAction);

    // The same person throughout.
    let (live, c) = decision::same_identity_check(obs, s.score, s.same_identity_score);
    rec.record(c, VideoFailReason::IdentityChanged);

    let (checks, first) = rec.finish();
    VideoVerdict {
        passed: first.is_none(),
        fail_reason: first,
        checks,
        best_frame: best,
        match_frames: decision::frontal_frames(obs, decision::MATCH_FRAMES),
        live_embedding: live,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::geometry::Point;
    use crate::face::quality::Measures;

    fn settings() -> VideoCheckSettings {
        VideoCheckSettings {
            liveness: Thresholds::default(),
            min_iod_px: 28.0,
            score: crate::face::compare::score,
            same_identity_score: 60.0,
            min_frames: 8,
        }
    }

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    /// 5 s at 8 fps: a head moving a little in a still room, the mouth open at 2–2.5 s.
    fn live(e: &[f32]) -> Vec<Observation> {
        (0..40)
            .map(|i| {
                let t = i * 125;
                let mar = if (2000..=2500).contains(&t) {
                    0.45
                } else {
                    0.05
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
                        yaw: 0.0,
                        pitch: 0.5,
                        roll: 0.0,
                    }),
                    embedding: Some(e.to_vec()),
                    face_rgb: Some([150.0, 120.0, 100.0]),
                    face_center: Some(Point::new(240.0 + (i % 5) as f32 * 3.0, 240.0)),
                    surround_shift: Some(Point::new(0.0, 0.0)),
                }
            })
            .collect()
    }

    #[test]
    fn a_live_video_passes_with_every_check_recorded() {
        let e = unit(&[1.0, 0.2, 0.1, 0.0]);
        let obs = live(&e);
        let v = check_sequence(&obs, &settings());
        assert!(v.passed, "{:#?}", v.checks);
        let names: Vec<&str> = v.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "frames",
                "one_face",
                "quality",
                "relative_motion",
                "action_open_mouth",
                "action_blink",
                "action_turn_left",
                "action_turn_right",
                "natural_action",
                "same_identity"
            ]
        );
        assert!(v
            .best_frame
            .is_some_and(|i| obs[i].measures.unwrap().mar < 0.15));
        assert!(!v.match_frames.is_empty());
        assert_eq!(v.live_embedding.as_deref().map(|l| l.len()), Some(4));
    }

    #[test]
    fn each_failure_names_its_reason() {
        let e = unit(&[1.0, 0.2, 0.1, 0.0]);
        let other = unit(&[0.0, 0.1, 1.0, 0.3]);
        let s = settings();
        let obs = live(&e);
        let reason = |o: &[Observation]| check_sequence(o, &s).fail_reason;
        assert_eq!(reason(&obs[..5]), Some(VideoFailReason::TooFewFrames));
        assert_eq!(reason(&[]), Some(VideoFailReason::TooFewFrames));
        // No action at all: a still photo.
        let mut still = obs.clone();
        for o in &mut still {
            o.measures.as_mut().unwrap().mar = 0.05;
        }
        assert_eq!(reason(&still), Some(VideoFailReason::NoAction));
        // The surroundings travel with the face.
        let mut carried = obs.clone();
        for (i, o) in carried.iter_mut().enumerate() {
            o.face_center = Some(Point::new(100.0 + 6.0 * i as f32, 200.0));
            o.surround_shift = Some(Point::new(6.0, 0.0));
        }
        let v = check_sequence(&carried, &s);
        assert_eq!(v.fail_reason, Some(VideoFailReason::Surroundings));
        assert!(v.fail_reason.unwrap().is_liveness_risk());
        assert_eq!(v.fail_reason.unwrap().cloud_code(), "205");
        let mut none = obs.clone();
        for o in none.iter_mut().skip(8) {
            *o = Observation {
                t_ms: o.t_ms,
                ..Default::default()
            };
        }
        let r = reason(&none).unwrap();
        assert_eq!(r, VideoFailReason::NoFace);
        assert_eq!(r.cloud_code(), "419");
        let mut two = obs.clone();
        two[10].faces = 2;
        assert_eq!(reason(&two), Some(VideoFailReason::MultipleFaces));
        let mut small = obs.clone();
        for o in &mut small {
            o.measures.as_mut().unwrap().iod = 12.0;
        }
        assert_eq!(reason(&small), Some(VideoFailReason::PoorQuality));
        let mut swapped = obs.clone();
        for o in swapped.iter_mut().skip(25) {
            o.embedding = Some(other.clone());
        }
        assert_eq!(reason(&swapped), Some(VideoFailReason::IdentityChanged));
    }
}
