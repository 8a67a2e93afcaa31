//! Video path benchmark (not a test): `cargo bench --bench video`. Needs `../shared/data` and ffmpeg.
//!
//! For each real video: in-process demux + H.264 decode + sampling at 8 fps + downscale (`shiren::media`), in ms per
//! second of video, against a baseline run from the same process on the same file: the ffmpeg CLI decoding every
//! frame single-threaded to nowhere (`-threads 1 -f null`, the same work minus the sampling, plus a process start).
//! Then the real engine observing the kept frames (ms per frame), and the sequence checks.
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use shiren::face::engine::{EngineSettings, OnnxEngine};
use shiren::face::models::provision::{self, Manifest, StderrProgress};
use shiren::media::{decode_video, VideoLimits};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/videos");
    assert!(data.is_dir(), "the video benchmark needs ../shared/data");
    let installed = provision::ensure(
        &provision::default_dir(),
        &Manifest::builtin(),
        &StderrProgress,
    )
    .unwrap();
    let engine = OnnxEngine::load(&installed, EngineSettings::default()).unwrap();
    let limits = VideoLimits::default();
    let runs = 5;
    println!(
        "{:<8} {:>7} {:>9} {:>14} {:>16} {:>7} {:>14} {:>10}",
        "video",
        "secs",
        "size",
        "decode ms/s",
        "ffmpeg -t1 ms/s",
        "ratio",
        "observe ms/fr",
        "checks ms"
    );
    for name in ["d3.mp4", "d14.mp4", "d18.mp4"] {
        let path = data.join(name);
        let bytes = std::fs::read(&path).unwrap();
        let mut ours = Vec::new();
        let mut video = None;
        for _ in 0..runs {
            let t = Instant::now();
            let v = decode_video(&bytes, &limits).unwrap();
            ours.push(t.elapsed().as_secs_f64() * 1e3);
            video = Some(v);
        }
        let video = video.unwrap();
        let secs = video.duration_ms as f64 / 1000.0;
        let mut theirs = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            let st = Command::new("ffmpeg")
                .args(["-v", "error", "-threads", "1", "-i"])
                .arg(&path)
                .args(["-an", "-f", "null", "-"])
                .status()
                .expect("ffmpeg");
            assert!(st.success());
            theirs.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let t = Instant::now();
        let obs = shiren::media::observe(&engine, &video).unwrap();
        let observe_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let s = shiren::certify::video::VideoCheckSettings::from_decision(
            &shiren::certify::hosted::HostedSettings::default().decision,
        );
        let verdict = shiren::certify::video::check_sequence(&obs, &s);
        let checks_ms = t.elapsed().as_secs_f64() * 1e3;
        let (o, f) = (median(ours), median(theirs));
        println!(
            "{name:<8} {secs:>7.1} {:>9} {:>14.1} {:>16.1} {:>7.2} {:>14.1} {:>10.2}   ({} frames kept, passed {})",
            format!("{}x{}", video.width, video.height),
            o / secs,
            f / secs,
            o / f,
            observe_ms / video.frames.len() as f64,
            checks_ms,
            video.frames.len(),
            verdict.passed
        );
    }
}
