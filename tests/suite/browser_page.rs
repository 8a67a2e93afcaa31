//! The hosted page's own checks in headless Chromium against the mock server (every screen and way out, the upload's
//! shape, the language switch, small screens) and the mini-program helper against a stand-in runtime and the real
//! page. The end-to-end flow against the real server is `hosted_flow.rs`.
use std::process::Command;

use crate::common;

fn node(script: &str, args: &[&str]) {
    let _one = common::browser();
    let out = Command::new("node")
        .arg(script)
        .args(args)
        .env("NODE_PATH", common::sdk_dir().join("node/node_modules"))
        .output()
        .unwrap();
    println!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{script} failed");
}

#[test]
fn page_checks_against_the_mock_server() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = tmp.path().join("clip.y4m");
    let Some(video) = common::shared_data("videos/d18.mp4") else {
        println!("../shared/data is not there; the page check needs a face video; skipped");
        return;
    };
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-t", "4", "-i"])
        .arg(video)
        .args([
            "-an",
            "-vf",
            "scale='min(640,iw)':'min(480,ih)':force_original_aspect_ratio=decrease:force_divisible_by=2,format=yuv420p",
            "-f",
            "yuv4mpegpipe",
        ])
        .arg(&clip)
        .status()
        .unwrap();
    assert!(st.success());
    node(
        "tests/browser/page_check.cjs",
        &["--y4m", clip.to_str().unwrap()],
    );
}

#[test]
fn miniprogram_helper_contract() {
    node("tests/browser/miniprogram_helper.cjs", &[]);
}
