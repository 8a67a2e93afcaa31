//! Liveness signals over a frame sequence, as pure functions of per-frame observations: challenged actions in
//! order (open mouth, blink, turn left/right, each against the person's own baseline), one face throughout, the
//! same identity throughout, the colour flashes reflected in step, and the face moving against its surroundings.
//! Thresholds and rules are those measured on real videos (`shared/reference/liveness.md`); each signal returns a
//! score and a pass/fail against a configurable threshold, so a decision can explain itself.
use super::geometry::Point;
use super::quality::Measures;

/// What the engine saw in one frame.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    /// Milliseconds since the first frame.
    pub t_ms: u32,
    /// Faces found in the frame.
    pub faces: usize,
    /// Measures of the main face.
    pub measures: Option<Measures>,
    /// Identity embedding of the main face.
    pub embedding: Option<Vec<f32>>,
    /// Mean RGB (0..255) of the skin of the main face (cheeks and forehead).
    pub face_rgb: Option<[f32; 3]>,
    /// Face centre in pixels.
    pub face_center: Option<Point>,
    /// Displacement of the face's surroundings since the previous frame (from block matching), in pixels.
    pub surround_shift: Option<Point>,
}

/// A challenged action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    OpenMouth,
    Blink,
    /// The person's own left (the nose moves to the right of an unmirrored camera image).
    TurnLeft,
    TurnRight,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::OpenMouth => "open_mouth",
            Action::Blink => "blink",
            Action::TurnLeft => "turn_left",
            Action::TurnRight => "turn_right",
        }
    }
}

/// Thresholds of every signal (defaults from the measurements).
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// Mouth open when MAR exceeds this for `min_frames` frames (open 0.29–0.57; talking/smiling p99 ≤ 0.24).
    pub mouth_open_mar: f32,
    /// Blink when the eye opening falls below this fraction of its running median (0.80 found 23 of 24 blinks).
    pub blink_ratio: f32,
    /// Measure blinks by the plain eye aspect ratio instead of the eye opening ÷ face length (only for comparison:
    /// the plain ratio falls when a photo is nodded).
    pub blink_by_ear: bool,
    /// Baseline window for the blink median, in milliseconds.
    pub blink_window_ms: u32,
    /// A blink counts only while the face length stays within this fraction of its baseline (nodding a photo
    /// shrinks the face length with the eye opening).
    pub blink_face_length_tolerance: f32,
    /// A blink counts only while pitch stays within this distance of its baseline.
    pub blink_pitch_tolerance: f32,
    /// The face length and pitch baselines of the stability check: the median over this many milliseconds before
    /// the frame (short, so that a person moving closer to the camera is not mistaken for a nod).
    pub blink_stability_window_ms: u32,
    /// An open mouth counts only while the head is near its frontal baseline (|yaw − baseline| at most this), in the
    /// closed frame and the open ones: a photo of an open mouth turned far to the side can make FaceMesh read the
    /// mouth as closed and then open again.
    pub mouth_max_yaw: f32,
    /// An open mouth counts only while the inter-ocular distance stays within this fraction of its value in the
    /// last closed frame.
    pub mouth_max_iod_change: f32,
    /// Turn when |yaw − baseline| reaches this (deliberate turns 0.14–0.24; stillness jitter ≤ 0.007).
    pub turn_yaw: f32,
    /// Frames a mouth or turn must hold.
    pub min_frames: usize,
    /// Minimum cosine of any frame's embedding to the sequence's reference embedding. The default (0.35) is for
    /// MobileFace; other recognisers need [`Thresholds::with_recogniser`].
    pub same_identity_cosine: f32,
    /// Largest share of frames allowed without a face.
    pub max_faceless_share: f32,
    /// Minimum correlation of the face colour with the flash sequence.
    pub flash_correlation: f32,
    /// Largest ratio of surroundings motion to face motion (a held photo carries its background: ratio ≈ 1).
    pub max_surround_motion_ratio: f32,
    /// Face motion (pixels, summed) below which relative motion cannot be judged.
    pub min_face_motion_px: f32,
}

impl Thresholds {
    /// The same thresholds with `same_identity_cosine` moved to the active recogniser's cosine of equal score
    /// (equal false-accept rate): MobileFace's 0.35 scores 73.8 (between FAR 1e-3 and 1e-4), which is cosine 0.922
    /// for dlib's ResNet, whose same-person video frames stay at ≥ 0.969 to their mean (0.60–0.77 for MobileFace).
    pub fn with_recogniser(self, r: super::compare::Recogniser) -> Thresholds {
        let score = super::compare::MOBILEFACE.score(Thresholds::default().same_identity_cosine);
        Thresholds {
            same_identity_cosine: r.cosine_at(score),
            ..self
        }
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            mouth_open_mar: 0.30,
            blink_ratio: 0.80,
            blink_by_ear: false,
            blink_window_ms: 3000,
            blink_face_length_tolerance: 0.06,
            blink_pitch_tolerance: 0.04,
            blink_stability_window_ms: 500,
            mouth_max_yaw: 0.08,
            mouth_max_iod_change: 0.07,
            turn_yaw: 0.15,
            min_frames: 2,
            same_identity_cosine: 0.35,
            max_faceless_share: 0.2,
            flash_correlation: 0.5,
            max_surround_motion_ratio: 0.5,
            min_face_motion_px: 8.0,
        }
    }
}

/// One signal's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub name: String,
    pub score: f32,
    pub threshold: f32,
    pub passed: bool,
    /// Frame index where an action was seen (for actions).
    pub at_frame: Option<usize>,
}

fn median(mut v: Vec<f32>) -> Option<f32> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    Some(v[v.len() / 2])
}

/// Where an action is first seen at or after frame `from`: (frame index, score). Scores: mouth = the MAR held for
/// `min_frames`; blink = 1 − (opening ÷ running median); turn = the yaw change (signed by direction) held for
/// `min_frames`.
pub fn find_action(
    obs: &[Observation],
    action: Action,
    from: usize,
    yaw_baseline: f32,
    th: &Thresholds,
) -> (Option<usize>, f32) {
    let m = |i: usize| obs.get(i).and_then(|o| o.measures);
    let mut best = 0.0f32;
    match action {
        Action::OpenMouth | Action::TurnLeft | Action::TurnRight => {
            let value = |x: &Measures| match action {
                Action::OpenMouth => x.mar,
                Action::TurnLeft => x.yaw - yaw_baseline,
                _ => yaw_baseline - x.yaw,
            };
            let need = if action == Action::OpenMouth {
                th.mouth_open_mar
            } else {
                th.turn_yaw
            };
            // The movement must start from rest within the searched range: a mouth first seen closed (below half
            // the open threshold), a head first seen near its baseline. A photo of an open mouth never closes it.
            let frontal = |x: &Measures| {
                action != Action::OpenMouth || (x.yaw - yaw_baseline).abs() <= th.mouth_max_yaw
            };
            let at_rest = |x: &Measures| match action {
                Action::OpenMouth => x.mar < th.mouth_open_mar / 2.0 && frontal(x),
                _ => (x.yaw - yaw_baseline).abs() < th.turn_yaw / 2.0,
            };
            // For the mouth, the face must keep its size between the closed frame and the open ones (a real jaw
            // opening leaves the eyes where they are; a photo read as closed when turned away is also smaller).
            let consistent = |x: &Measures, rest: &Measures| {
                action != Action::OpenMouth
                    || (x.iod / rest.iod.max(1e-3) - 1.0).abs() <= th.mouth_max_iod_change
            };
            let mut last_rest: Option<Measures> = None;
            for i in from..obs.len() {
                if let Some(x) = m(i).filter(|x| at_rest(x)) {
                    last_rest = Some(x);
                    continue;
                }
                let Some(rest) = last_rest else { continue };
                let held = (i..i + th.min_frames.max(1))
                    .map(|j| {
                        m(j).filter(|x| frontal(x) && consistent(x, &rest))
                            .map(|x| value(&x))
                    })
                    .collect::<Option<Vec<f32>>>();
                if let Some(held) = held {
                    let low = held.iter().copied().fold(f32::MAX, f32::min);
                    best = best.max(low);
                    if low >= need {
                        return (Some(i), low);
                    }
                }
            }
        }
        Action::Blink => {
            let eye = |x: &Measures| {
                if th.blink_by_ear {
                    x.ear
                } else {
                    x.eye_open_norm
                }
            };
            for i in from..obs.len() {
                let (Some(cur), t) = (m(i), obs[i].t_ms) else {
                    continue;
                };
                let window: Vec<Measures> = obs[..i]
                    .iter()
                    .filter(|o| o.t_ms + th.blink_window_ms >= t)
                    .filter_map(|o| o.measures)
                    .collect();
                if window.len() < 5 {
                    continue;
                }
                let recent: Vec<Measures> = obs[..i]
                    .iter()
                    .filter(|o| o.t_ms + th.blink_stability_window_ms >= t)
                    .filter_map(|o| o.measures)
                    .collect();
                let (Some(open), Some(len), Some(pitch)) = (
                    median(window.iter().map(eye).collect()),
                    median(recent.iter().map(|w| w.face_length).collect()),
                    median(recent.iter().map(|w| w.pitch).collect()),
                ) else {
                    continue;
                };
                let stable = (cur.face_length / len - 1.0).abs() <= th.blink_face_length_tolerance
                    && (cur.pitch - pitch).abs() <= th.blink_pitch_tolerance;
                let ratio = eye(&cur) / open.max(1e-6);
                if stable {
                    best = best.max(1.0 - ratio);
                    if ratio < th.blink_ratio {
                        return (Some(i), 1.0 - ratio);
                    }
                }
            }
        }
    }
    (None, best)
}

/// The first frame after `at` where the action seen at `at` has ended (mouth closed below half the open threshold,
/// yaw back within half the turn threshold, eye opening back above the blink ratio of its pre-blink median), so
/// that the same action asked twice needs two separate movements.
pub fn action_end(
    obs: &[Observation],
    action: Action,
    at: usize,
    yaw_baseline: f32,
    th: &Thresholds,
) -> usize {
    let m = |i: usize| obs.get(i).and_then(|o| o.measures);
    let reference_open = {
        let t = obs.get(at).map(|o| o.t_ms).unwrap_or(0);
        median(
            obs[..at.min(obs.len())]
                .iter()
                .filter(|o| o.t_ms + th.blink_window_ms >= t)
                .filter_map(|o| o.measures.map(|x| x.eye_open_norm))
                .collect(),
        )
        .unwrap_or(0.0)
    };
    (at + 1..obs.len())
        .find(|&j| {
            m(j).is_some_and(|x| match action {
                Action::OpenMouth => x.mar < th.mouth_open_mar / 2.0,
                Action::TurnLeft | Action::TurnRight => {
                    (x.yaw - yaw_baseline).abs() < th.turn_yaw / 2.0
                }
                Action::Blink => x.eye_open_norm >= th.blink_ratio * reference_open,
            })
        })
        .unwrap_or(obs.len())
}

/// The session's resting yaw: the median over frames with the mouth closed and the head within the range where
/// people rest (|yaw| ≤ 0.12; measured resting yaws are −0.06…+0.10). Neither the opening second (people do not
/// always look straight then: d3 turns both ways in its first seconds) nor the whole sequence (a long turn can fill
/// most of it) is reliable alone. Falls back to all closed-mouth frames, then to all frames.
pub fn yaw_baseline(obs: &[Observation]) -> f32 {
    let yaws = |keep: &dyn Fn(&Measures) -> bool| -> Vec<f32> {
        obs.iter()
            .filter_map(|o| o.measures)
            .filter(|m| keep(m))
            .map(|m| m.yaw)
            .collect()
    };
    [
        yaws(&|m| m.mar < 0.15 && m.yaw.abs() <= RESTING_YAW),
        yaws(&|m| m.mar < 0.15),
        yaws(&|_| true),
    ]
    .into_iter()
    .find(|v| !v.is_empty())
    .and_then(median)
    .unwrap_or(0.0)
}

/// The largest |yaw| proxy of a resting head (measured −0.06…+0.10, with margin).
const RESTING_YAW: f32 = 0.12;

/// Checks the challenged actions in the challenged order: each must be seen after the previous one.
pub fn actions_in_order(obs: &[Observation], challenge: &[Action], th: &Thresholds) -> Vec<Signal> {
    let baseline = yaw_baseline(obs);
    let mut from = 0;
    let mut out = Vec::new();
    for a in challenge {
        let (at, score) = find_action(obs, *a, from, baseline, th);
        let threshold = match a {
            Action::OpenMouth => th.mouth_open_mar,
            Action::Blink => 1.0 - th.blink_ratio,
            _ => th.turn_yaw,
        };
        out.push(Signal {
            name: a.as_str().to_string(),
            score,
            threshold,
            passed: at.is_some(),
            at_frame: at,
        });
        from = match at {
            Some(i) => action_end(obs, *a, i, baseline, th),
            None => obs.len(),
        };
    }
    out
}

/// Exactly one face: no frame with two or more, and few frames with none.
pub fn one_face(obs: &[Observation], th: &Thresholds) -> Signal {
    let many = obs.iter().filter(|o| o.faces > 1).count();
    let none = obs.iter().filter(|o| o.faces == 0).count() as f32 / obs.len().max(1) as f32;
    Signal {
        name: "one_face".into(),
        score: none,
        threshold: th.max_faceless_share,
        passed: !obs.is_empty() && many == 0 && none <= th.max_faceless_share,
        at_frame: obs.iter().position(|o| o.faces > 1),
    }
}

/// The same person throughout: the lowest cosine of any frame's embedding to the mean embedding.
pub fn same_identity(obs: &[Observation], th: &Thresholds) -> Signal {
    let embs: Vec<&Vec<f32>> = obs.iter().filter_map(|o| o.embedding.as_ref()).collect();
    let dim = embs.first().map(|e| e.len()).unwrap_or(0);
    let mut mean = vec![0.0f32; dim];
    for e in &embs {
        for (m, v) in mean.iter_mut().zip(e.iter()) {
            *m += v;
        }
    }
    let n = mean.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
    mean.iter_mut().for_each(|m| *m /= n);
    let (worst_at, worst) = obs
        .iter()
        .enumerate()
        .filter_map(|(i, o)| {
            o.embedding
                .as_ref()
                .map(|e| (i, e.iter().zip(&mean).map(|(a, b)| a * b).sum::<f32>()))
        })
        .fold(
            (None, 1.0f32),
            |(wi, w), (i, c)| if c < w { (Some(i), c) } else { (wi, w) },
        );
    Signal {
        name: "same_identity".into(),
        score: worst,
        threshold: th.same_identity_cosine,
        passed: !embs.is_empty() && worst >= th.same_identity_cosine,
        at_frame: worst_at,
    }
}

/// The face colour follows the flashed colours: the Pearson correlation, over frames, between the flashed colour's
/// chromaticity and the face's chromaticity change from its own mean (both as r−b and g−(r+b)/2 components).
/// `flash(t_ms)` gives the screen colour shown when a frame was taken.
pub fn colour_flash(
    obs: &[Observation],
    flash: &dyn Fn(u32) -> [f32; 3],
    th: &Thresholds,
) -> Signal {
    let chroma = |c: [f32; 3]| {
        let s = (c[0] + c[1] + c[2]).max(1e-3);
        [(c[0] - c[2]) / s, (c[1] - (c[0] + c[2]) / 2.0) / s]
    };
    let pairs: Vec<([f32; 2], [f32; 2])> = obs
        .iter()
        .filter_map(|o| o.face_rgb.map(|f| (chroma(flash(o.t_ms)), chroma(f))))
        .collect();
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for k in 0..2 {
        xs.extend(pairs.iter().map(|p| p.0[k]));
        ys.extend(pairs.iter().map(|p| p.1[k]));
    }
    // Correlate each component separately around its own mean, then pool.
    let n = pairs.len();
    let mut num = 0.0;
    let (mut sx, mut sy) = (0.0, 0.0);
    for k in 0..2 {
        let (x, y) = (&xs[k * n..(k + 1) * n], &ys[k * n..(k + 1) * n]);
        let (mx, my) = (
            x.iter().sum::<f32>() / n.max(1) as f32,
            y.iter().sum::<f32>() / n.max(1) as f32,
        );
        for i in 0..n {
            num += (x[i] - mx) * (y[i] - my);
            sx += (x[i] - mx).powi(2);
            sy += (y[i] - my).powi(2);
        }
    }
    let r = if sx > 0.0 && sy > 0.0 {
        num / (sx.sqrt() * sy.sqrt())
    } else {
        0.0
    };
    Signal {
        name: "colour_flash".into(),
        score: r,
        threshold: th.flash_correlation,
        passed: n >= 4 && r >= th.flash_correlation,
        at_frame: None,
    }
}

/// The face moves against its surroundings: total surroundings motion ÷ total face motion over the sequence.
/// A head moving in a room gives ≈ 0; a photo or screen moved in front of the camera carries its own surroundings
/// along (≈ 1). Passes when the face moved enough to judge and the ratio is low.
pub fn relative_motion(obs: &[Observation], th: &Thresholds) -> Signal {
    let (mut face, mut surround) = (0.0f32, 0.0f32);
    for w in obs.windows(2) {
        if let (Some(a), Some(b), Some(s)) =
            (w[0].face_center, w[1].face_center, w[1].surround_shift)
        {
            let (dx, dy) = (b.x - a.x, b.y - a.y);
            face += (dx * dx + dy * dy).sqrt();
            // Only the part of the surroundings' motion that goes along with the face counts.
            let along = (s.x * dx + s.y * dy) / (dx * dx + dy * dy).sqrt().max(1e-3);
            surround += along.max(0.0);
        }
    }
    let ratio = if face > 0.0 { surround / face } else { 1.0 };
    Signal {
        name: "relative_motion".into(),
        score: ratio,
        threshold: th.max_surround_motion_ratio,
        passed: face >= th.min_face_motion_px && ratio <= th.max_surround_motion_ratio,
        at_frame: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(mar: f32, open: f32, yaw: f32) -> Measures {
        Measures {
            iod: 60.0,
            face_length: 70.0,
            ear: open * 10.0,
            eye_open_norm: open,
            mar,
            yaw,
            pitch: 0.5,
            roll: 0.0,
        }
    }

    fn seq(ms: &[Measures]) -> Vec<Observation> {
        ms.iter()
            .enumerate()
            .map(|(i, x)| Observation {
                t_ms: i as u32 * 100,
                faces: 1,
                measures: Some(*x),
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn a_mouth_never_seen_closed_does_not_count() {
        let obs = seq(&[m(0.45, 0.05, 0.0); 10]);
        let (at, _) = find_action(&obs, Action::OpenMouth, 0, 0.0, &Thresholds::default());
        assert_eq!(at, None);
    }

    #[test]
    fn actions_are_found_in_order_only() {
        let mut ms = vec![m(0.05, 0.05, 0.0); 12];
        ms.extend([m(0.05, 0.02, 0.0)]); // blink at 12
        ms.extend(vec![m(0.05, 0.05, 0.0); 3]);
        ms.extend([m(0.4, 0.05, 0.0), m(0.45, 0.05, 0.0)]); // mouth at 16
        ms.extend([m(0.05, 0.05, 0.0)]); // at rest again
        ms.extend([m(0.05, 0.05, 0.2), m(0.05, 0.05, 0.22)]); // turn left at 19
        let obs = seq(&ms);
        let th = Thresholds::default();
        let ok = actions_in_order(
            &obs,
            &[Action::Blink, Action::OpenMouth, Action::TurnLeft],
            &th,
        );
        assert!(ok.iter().all(|s| s.passed), "{ok:?}");
        assert_eq!(
            ok.iter().map(|s| s.at_frame).collect::<Vec<_>>(),
            vec![Some(12), Some(16), Some(19)]
        );
        let wrong = actions_in_order(&obs, &[Action::OpenMouth, Action::Blink], &th);
        assert!(wrong[0].passed && !wrong[1].passed, "{wrong:?}");
        // One open mouth does not answer a challenge for two.
        let twice = actions_in_order(&obs, &[Action::OpenMouth, Action::OpenMouth], &th);
        assert!(twice[0].passed && !twice[1].passed, "{twice:?}");
        let right = actions_in_order(&obs, &[Action::TurnRight], &th);
        assert!(!right[0].passed);
    }

    #[test]
    fn blink_needs_a_stable_face() {
        let mut ms = vec![m(0.05, 0.05, 0.0); 12];
        // The eye opening drops, but so does the face length: a nodded photo, not a blink.
        let mut nod = m(0.05, 0.03, 0.0);
        nod.face_length = 55.0;
        ms.push(nod);
        let (at, _) = find_action(&seq(&ms), Action::Blink, 0, 0.0, &Thresholds::default());
        assert_eq!(at, None);
    }

    #[test]
    fn one_face_and_identity() {
        let th = Thresholds::default();
        let mut obs = seq(&[m(0.0, 0.05, 0.0); 5]);
        assert!(one_face(&obs, &th).passed);
        obs[2].faces = 2;
        assert!(!one_face(&obs, &th).passed);
        for (i, o) in obs.iter_mut().enumerate() {
            o.embedding = Some(if i == 4 {
                vec![0.0, 1.0]
            } else {
                vec![1.0, 0.0]
            });
        }
        let s = same_identity(&obs, &th);
        assert!(!s.passed && s.at_frame == Some(4), "{s:?}");
        use crate::face::compare::Recogniser;
        let mf = th
            .with_recogniser(Recogniser::MobileFace)
            .same_identity_cosine;
        assert!((mf - th.same_identity_cosine).abs() < 1e-4);
        let dlib = th.with_recogniser(Recogniser::Dlib).same_identity_cosine;
        assert!((0.915..0.93).contains(&dlib), "{dlib}");
    }

    #[test]
    fn flash_and_motion() {
        let th = Thresholds::default();
        let colours = [[255.0, 0.0, 0.0], [0.0, 255.0, 0.0], [0.0, 0.0, 255.0]];
        let flash = move |t: u32| colours[(t / 300) as usize % 3];
        let mut obs = seq(&[m(0.0, 0.05, 0.0); 9]);
        for o in &mut obs {
            let c = flash(o.t_ms);
            o.face_rgb = Some([150.0 + c[0] * 0.1, 120.0 + c[1] * 0.1, 100.0 + c[2] * 0.1]);
        }
        assert!(colour_flash(&obs, &flash, &th).passed);
        for o in &mut obs {
            o.face_rgb = Some([150.0, 120.0, 100.0]);
        }
        assert!(!colour_flash(&obs, &flash, &th).passed);
        for (i, o) in obs.iter_mut().enumerate() {
            o.face_center = Some(Point::new(100.0 + 5.0 * i as f32, 100.0));
            o.surround_shift = Some(Point::new(0.3, 0.0));
        }
        assert!(relative_motion(&obs, &th).passed);
        for o in &mut obs {
            o.surround_shift = Some(Point::new(5.0, 0.0));
        }
        let photo = relative_motion(&obs, &th);
        assert!(!photo.passed && photo.score > 0.9, "{photo:?}");
    }
}
