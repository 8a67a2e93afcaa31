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
use super::decision::{self, Check};
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

/// Why a video failed: stable codes, in the order the checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoFailReason {
    /// Too few frames came out of the video to judge it.
    TooFewFrames,
    NoFace,
    MultipleFaces,
    PoorQuality,
    /// The surroundings moved with the face: a photo or screen moved in front of the camera.
    Surroundings,
    /// No open mouth, blink or head turn anywhere in the video.
    NoAction,
    IdentityChanged,
}

impl VideoFailReason {
    pub fn code(self) -> &'static str {
        match self {
            VideoFailReason::TooFewFrames => "VIDEO_TOO_FEW_FRAMES",
            VideoFailReason::NoFace => "LIVENESS_NO_FACE",
            VideoFailReason::MultipleFaces => "LIVENESS_MULTIPLE_FACES",
            VideoFailReason::PoorQuality => "LIVENESS_POOR_QUALITY",
            VideoFailReason::Surroundings => "LIVENESS_SURROUNDINGS",
            VideoFailReason::NoAction => "LIVENESS_NO_ACTION",
            VideoFailReason::IdentityChanged => "LIVENESS_IDENTITY_CHANGED",
        }
    }

    pub const ALL: [VideoFailReason; 7] = [
        VideoFailReason::TooFewFrames,
        VideoFailReason::NoFace,
        VideoFailReason::MultipleFaces,
        VideoFailReason::PoorQuality,
        VideoFailReason::Surroundings,
        VideoFailReason::NoAction,
        VideoFailReason::IdentityChanged,
    ];

    pub fn from_code(code: &str) -> Option<VideoFailReason> {
        VideoFailReason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// Whether the video shows a liveness risk (cloud `SubCode` 205, a verdict with `Passed` F) rather than being
    /// unusable as material (no face, too small, too few frames: the business `Code` 419, "supplied material
    /// unusable", with no verdict). A second face or a face that changes is a risk, not unusable material.
    pub fn is_liveness_risk(self) -> bool {
        matches!(
            self,
            VideoFailReason::MultipleFaces
                | VideoFailReason::Surroundings
                | VideoFailReason::NoAction
                | VideoFailReason::IdentityChanged
        )
    }

    /// The cloud API's answer for this reason: `("205", …)` as a `SubCode` for liveness risks, `("419", …)` as a
    /// business `Code` for unusable material.
    pub fn cloud_code(self) -> &'static str {
        if self.is_liveness_risk() {
            "205"
        } else {
            "419"
        }
    }

    /// What the person is told (Chinese, English).
    pub fn messages(self) -> (&'static str, &'static str) {
        match self {
            VideoFailReason::TooFewFrames => (
                "视频中可用的画面太少，请重新录制。",
                "Too few usable frames came out of the video. Please record it again.",
            ),
            VideoFailReason::NoFace => (
                "视频中未能持续检测到人脸，请让脸完整出现在画面中。",
                "Your face was not visible long enough. Keep your whole face in the picture.",
            ),
            VideoFailReason::MultipleFaces => (
                "视频中出现了多张人脸，请确保只有您本人。",
                "More than one face was seen. Make sure only you are in view.",
            ),
            VideoFailReason::PoorQuality => (
                "人脸太小或不清晰，请靠近一些并保持光线充足。",
                "Your face was too small or unclear. Move closer and find good light.",
            ),
            VideoFailReason::Surroundings => (
                "检测到疑似翻拍，请本人直接面对摄像头录制。",
                "This looked like a photo or screen. Record yourself facing the camera.",
            ),
            VideoFailReason::NoAction => (
                "视频中没有看到眨眼、张嘴或转头动作，请在录制时眨眼或张嘴。",
                "We did not see you blink, open your mouth or turn your head. Do one while recording.",
            ),
            VideoFailReason::IdentityChanged => (
                "视频中人脸发生变化，请本人全程录制。",
                "The face changed during the video. Record it yourself from start to end.",
            ),
        }
    }
}

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

fn round3(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}

fn check(name: &str, passed: bool, score: Option<f32>, threshold: Option<f32>) -> Check {
    Check {
        name: name.into(),
        passed,
        score: score.map(round3),
        threshold,
        detail: None,
    }
}

/// Runs the sequence checks over the observations of the sampled frames, in time order.
pub fn check_sequence(obs: &[Observation], s: &VideoCheckSettings) -> VideoVerdict {
    let th = &s.liveness;
    let mut checks = Vec::new();
    let mut first: Option<VideoFailReason> = None;
    let mut record = |c: Check, reason: VideoFailReason, checks: &mut Vec<Check>| {
        if !c.passed && first.is_none() {
            first = Some(reason);
        }
        checks.push(c);
    };

    record(
        check(
            "frames",
            obs.len() >= s.min_frames,
            Some(obs.len() as f32),
            Some(s.min_frames as f32),
        ),
        VideoFailReason::TooFewFrames,
        &mut checks,
    );

    // One face throughout.
    let one = liveness::one_face(obs, th);
    let many = obs.iter().any(|o| o.faces > 1);
    let mut c = check("one_face", one.passed, Some(one.score), Some(one.threshold));
    c.detail = one
        .at_frame
        .map(|f| format!("two or more faces at frame {f}"));
    record(
        c,
        if many {
            VideoFailReason::MultipleFaces
        } else {
            VideoFailReason::NoFace
        },
        &mut checks,
    );

    // Quality of the best frame.
    let best = decision::best_frame(obs);
    let iod = best
        .and_then(|i| obs[i].measures)
        .map(|m| m.iod)
        .unwrap_or(0.0);
    let mut c = check(
        "quality",
        best.is_some() && iod >= s.min_iod_px,
        Some(iod),
        Some(s.min_iod_px),
    );
    c.detail = best.map(|f| format!("frame {f}"));
    record(c, VideoFailReason::PoorQuality, &mut checks);

    // The face moves against its surroundings; judged only when the face moved enough.
    let sig = liveness::relative_motion(obs, th);
    let moved = obs
        .windows(2)
        .filter_map(|w| Some(w[0].face_center?.dist(w[1].face_center?)))
        .sum::<f32>();
    let judged = moved >= th.min_face_motion_px;
    let mut c = check(
        "relative_motion",
        !judged || sig.score <= th.max_surround_motion_ratio,
        Some(sig.score),
        Some(sig.threshold),
    );
    c.detail = Some(if judged {
        format!("face moved {moved:.0} px")
    } else {
        "not judged: the face hardly moved".into()
    });
    record(c, VideoFailReason::Surroundings, &mut checks);

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
        let mut c = check(
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
        checks.push(c);
    }
    let mut c = check("natural_action", any, Some(best_ratio), Some(1.0));
    c.detail = Some(if seen.is_empty() {
        "score: the strongest action's score ÷ its threshold".into()
    } else {
        seen.join(", ")
    });
    record(c, VideoFailReason::NoAction, &mut checks);

    // The same person throughout.
    let live = decision::live_embedding(obs);
    let worst = decision::worst_identity_score(obs, live.as_deref(), s.score);
    record(
        check(
            "same_identity",
            worst.is_some_and(|w| w >= s.same_identity_score),
            worst,
            Some(s.same_identity_score),
        ),
        VideoFailReason::IdentityChanged,
        &mut checks,
    );

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

    #[test]
    fn codes_read_back() {
        for r in VideoFailReason::ALL {
            assert_eq!(VideoFailReason::from_code(r.code()), Some(r));
            let (zh, en) = r.messages();
            assert!(!zh.is_empty() && !en.is_empty());
        }
        assert_eq!(VideoFailReason::from_code("NOPE"), None);
    }
}
