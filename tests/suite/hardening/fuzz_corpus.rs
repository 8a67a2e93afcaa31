//! The fuzz corpora replayed on stable, without cargo-fuzz: every seed under `fuzz/corpus/<target>/` and every
//! input a fuzzer once crashed on, kept under `fuzz/artifacts/<target>/`, goes through the same function the fuzz
//! target calls (`shiren::fuzzing`). A panic here is a crash the fuzzer would report; a slow input fails the time
//! bound.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

#[test]
fn every_corpus_and_artifact_input_replays_without_a_crash() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut seeds = 0;
    for (target, run) in shiren::fuzzing::TARGETS {
        let corpus = inputs(&root.join("corpus").join(target));
        assert!(
            corpus.len() >= 3,
            "fuzz/corpus/{target} should hold a few seeds, found {}",
            corpus.len()
        );
        seeds += corpus.len();
        for path in corpus
            .iter()
            .chain(&inputs(&root.join("artifacts").join(target)))
        {
            let data = std::fs::read(path).unwrap();
            let started = Instant::now();
            run(&data);
            let took = started.elapsed();
            assert!(
                took < Duration::from_secs(5),
                "{target}: {} took {took:?}",
                path.display()
            );
        }
    }
    eprintln!(
        "replayed {seeds} seeds of {} fuzz targets",
        shiren::fuzzing::TARGETS.len()
    );
}

/// Every fuzz target in `fuzz/fuzz_targets/` is one of `shiren::fuzzing::TARGETS` and calls it, so the replay covers
/// what the fuzzer runs.
#[test]
fn every_fuzz_target_is_replayed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let names: Vec<&str> = shiren::fuzzing::TARGETS.iter().map(|(n, _)| *n).collect();
    let files = inputs(&root.join("fuzz_targets"));
    assert_eq!(files.len(), names.len(), "{files:?}");
    for f in files {
        let name = f.file_stem().unwrap().to_str().unwrap();
        assert!(names.contains(&name), "fuzz target {name} is not replayed");
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(text.contains(&format!("shiren::fuzzing::{name}(data)")));
    }
}

/// The seeds reach past the parsers: the H.264 videos decode, every image passes the most permissive gate, the
/// signed cloud requests carry the signature the target checks with.
#[test]
fn seeds_reach_the_deep_paths() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for f in inputs(&root.join("video")) {
        let name = f.file_name().unwrap().to_str().unwrap();
        if name.starts_with("h264_") && !name.contains("short") {
            let v = shiren::media::decode_video(&std::fs::read(&f).unwrap(), &Default::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(v.frames.len() >= 8, "{name}");
        }
    }
    for f in inputs(&root.join("image_gate")) {
        let limits = shiren::face::image::DecodeLimits::LOCAL_FILE;
        shiren::face::image::decode(&std::fs::read(&f).unwrap(), limits)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
    let frames = shiren::api::h5::parse_attempt(
        &std::fs::read(root.join("hosted_upload/attempt.json")).unwrap(),
    )
    .unwrap()
    .1;
    assert_eq!(frames.len(), 3);
    for name in ["acs3_post_form", "acs3_post_query"] {
        let req = shiren::fuzzing::cloud_request(
            &std::fs::read(root.join("cloud_signature").join(name)).unwrap(),
        );
        let auth = shiren::protocol::aliyun::acs::parse_authorization(
            &req.header("authorization").unwrap(),
        )
        .unwrap();
        let query = shiren::protocol::aliyun::gateway::decode_pairs(req.query.as_bytes()).unwrap();
        let canonical = shiren::protocol::aliyun::acs::acs3_canonical_request(
            &req.method,
            &query,
            &auth.signed_headers,
            |h| req.header(h),
            &shiren::protocol::aliyun::acs::sha256_hex(&req.body),
        );
        let sts = shiren::protocol::aliyun::acs::acs3_string_to_sign(&canonical);
        assert!(shiren::protocol::aliyun::acs::acs3_verify(
            shiren::fuzzing::CLOUD_SECRET,
            &sts,
            &auth.signature
        ));
    }
}

/// The videos the fuzzer once made reserve gigabytes are refused before mp4parse sees the lie: each names it.
#[test]
fn the_videos_that_reserved_gigabytes_are_refused_for_what_they_claim() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/artifacts/video");
    for (name, says) in [
        (
            "oom-stsc-declares-1e9-entries",
            "stsc box declares more entries",
        ),
        ("oom-ftyp-claims-4GB", "ftyp box is larger than the file"),
        (
            "oom-sample-table-of-4e9-samples",
            "frames, more than the 1200 allowed",
        ),
    ] {
        let data = std::fs::read(dir.join(name)).unwrap();
        let e = shiren::media::decode_video(&data, &Default::default()).unwrap_err();
        assert!(e.to_string().contains(says), "{name}: {e}");
    }
}
