//! Face engine benchmark (not a test): `cargo bench --bench face`. Needs `../shared/data` (photos and a video) and
//! ffmpeg; provisions the models like `serve`.
//!
//! Reports model load time, resident memory, p50/p99 per stage (decode, detect, landmarks, align, embed) over the
//! labelled photos with the default recogniser (dlib's ResNet), one 20-frame sequence end to end (observe: engine +
//! measures + colour + surroundings) with frames per second, and, side by side in the same run: the same ONNX models
//! on the same inputs under Python's `onnxruntime`; the MobileFace pipeline in numpy + onnxruntime; and the Python
//! `face_recognition` library (dlib's HOG detector, 5-point landmarks and the same ResNet) on the same photos, per
//! photo and as a ratio, with both sides' accuracy on the labelled pairs. Each Python side runs in the benchmark's
//! own virtualenv, installed from PyPI with hash-pinned requirements (`benches/requirements-*.txt`).
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use shiren::face::compare::Recogniser;
use shiren::face::engine::{cosine, five_points, EngineSettings, FaceEngine, OnnxEngine};
use shiren::face::models::provision::{self, Manifest, StderrProgress};

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
        .map(|d| d.as_secs_f64() * 1e3)
        .unwrap_or(0.0)
}

fn report(name: &str, v: &mut [Duration]) -> f64 {
    let p50 = pct(v, 0.5);
    println!(
        "{name:<28} p50 {p50:>8.2} ms  p99 {:>8.2} ms  (n={})",
        pct(v, 0.99),
        v.len()
    );
    p50
}

fn main() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    assert!(data.is_dir(), "the face benchmark needs ../shared/data");
    let installed = provision::ensure(
        &provision::default_dir(),
        &Manifest::builtin(),
        &StderrProgress,
    )
    .unwrap();
    let rss0 = rss_mb();
    let t = Instant::now();
    let engine = OnnxEngine::load(&installed, EngineSettings::default()).unwrap();
    println!(
        "model load (4 sessions, dlib) {:.1} ms; resident memory {:.0} MB → {:.0} MB",
        t.elapsed().as_secs_f64() * 1e3,
        rss0,
        rss_mb()
    );

    // Per stage over the labelled photos, 3 rounds.
    let faces = data.join("faces");
    let mut files: Vec<_> = std::fs::read_dir(&faces)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    files.sort();
    let (mut dec, mut det, mut lm, mut al, mut emb, mut total) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut chips = Vec::new();
    let mut dlib_chips = Vec::new();
    let mut pipeline = Vec::new();
    let mut decoded: Vec<image::RgbImage> = Vec::new();
    let mut shiren_dlib: Vec<(std::path::PathBuf, Vec<f32>)> = Vec::new();
    let mut shiren_points = serde_json::Map::new();
    for round in 0..3 {
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            let t0 = Instant::now();
            let img = shiren::face::image::decode(&bytes, Default::default()).unwrap();
            dec.push(t0.elapsed());
            let t = Instant::now();
            let dets = engine.detect(&img).unwrap();
            det.push(t.elapsed());
            let Some(d) = dets.first() else { continue };
            let t = Instant::now();
            let (mesh, _) = engine.landmarks(&img, d).unwrap();
            lm.push(t.elapsed());
            let t = Instant::now();
            let mut face_chips = engine.chips(&img, &mesh).unwrap();
            al.push(t.elapsed());
            let t = Instant::now();
            let embedding = engine.embed_chips(&face_chips).unwrap();
            emb.push(t.elapsed());
            total.push(t0.elapsed());
            pipeline.push(t0.elapsed() - *dec.last().unwrap());
            if round == 0 {
                decoded.push(img.clone());
                shiren_dlib.push((f.clone(), embedding));
                let pts = shiren::face::engine::dlib_points(&mesh).map(|p| [p.x, p.y]);
                shiren_points.insert(f.display().to_string(), serde_json::json!(pts));
            }
            if chips.len() < 20 {
                chips.push(OnnxEngine::align(&img, &five_points(&mesh)).unwrap());
                dlib_chips.push(face_chips.swap_remove(0));
            }
        }
    }
    println!(
        "\n== per stage, {} photos × 3 (photos up to 2280 px wide)",
        files.len()
    );
    report("decode (JPEG + EXIF)", &mut dec);
    report("detect (BlazeFace)", &mut det);
    report("landmarks (FaceMesh ×2)", &mut lm);
    report("align (150×150 dlib)", &mut al);
    report("embed (dlib ResNet)", &mut emb);
    let total_mean = total.iter().map(|d| d.as_secs_f64() * 1e3).sum::<f64>() / total.len() as f64;
    let total_p50 = report("photo end to end", &mut total);
    report("photo without decode", &mut pipeline);

    // One 20-frame sequence, as the hosted page sends it.
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-ss", "1.5", "-t", "2", "-i"])
        .arg(data.join("videos/d18.mp4"))
        .args(["-an", "-vf", "fps=10,scale=480:-2"])
        .arg(dir.path().join("%03d.png"))
        .status()
        .expect("ffmpeg");
    assert!(st.success());
    let mut frames: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    frames.sort();
    let imgs: Vec<_> = frames
        .iter()
        .map(|f| {
            shiren::face::image::decode(&std::fs::read(f).unwrap(), Default::default()).unwrap()
        })
        .collect();
    let mut per_frame = Vec::new();
    let t = Instant::now();
    let mut prev = None;
    for (i, img) in imgs.iter().enumerate() {
        let tf = Instant::now();
        let (_, thumb) =
            shiren::face::observe::observe(&engine, img, i as u32 * 100, prev.as_ref()).unwrap();
        prev = Some(thumb);
        per_frame.push(tf.elapsed());
    }
    let seq = t.elapsed().as_secs_f64();
    println!(
        "\n== one {}-frame sequence (480×480), observe = engine + measures + colour + surroundings",
        imgs.len()
    );
    report("per frame", &mut per_frame);
    println!(
        "sequence end to end          {:.0} ms = {:.1} frames/s on {} cores",
        seq * 1e3,
        imgs.len() as f64 / seq,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let _ = engine.analyze(&imgs[0]);
    println!("resident memory after runs   {:.0} MB", rss_mb());

    // Python onnxruntime on the same models and inputs (2 intra-op threads, spinning off), in its own venv.
    let venv = std::env::var("SHIREN_BENCH_VENV").unwrap_or_else(|_| {
        provision::default_dir()
            .join("bench-venv")
            .display()
            .to_string()
    });
    let python = Path::new(&venv).join("bin/python");
    if !python.exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv", &venv])
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "onnxruntime==1.31.1",
                    "numpy==2.4.6",
                ])
                .status()
                .is_ok_and(|s| s.success());
        if !ok {
            println!("\n(Python onnxruntime could not be installed: side-by-side skipped)");
            return;
        }
    }
    // The same three models on the same tensors in both runtimes: the detector on a 128² input, FaceMesh on a 192²
    // crop (twice per face in the pipeline), MobileFace on the real aligned chips.
    let env = shiren::face::runtime::environment(&installed.runtime_lib).unwrap();
    let synth = |n: usize| -> Vec<f32> {
        (0..n * n * 3)
            .map(|i| ((i * 37) % 255) as f32 / 255.0)
            .collect()
    };
    let stages: [(&str, usize, &str); 4] = [
        ("blazeface-front", 128, "Identity"),
        ("facemesh", 192, "Identity_2"),
        ("mobileface", 112, "batchnorm0/add_1"),
        ("dlib-resnet", 150, "descriptor"),
    ];
    let chip_file = dir.path().join("chips.f32");
    std::fs::write(
        &chip_file,
        chips
            .iter()
            .flatten()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let dlib_chip_file = dir.path().join("dlib-chips.f32");
    std::fs::write(
        &dlib_chip_file,
        dlib_chips
            .iter()
            .flatten()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let mut rust_ms = Vec::new();
    for (name, size, output) in stages {
        let model =
            shiren::face::runtime::OnnxModel::load(env, name, &installed.models[name], 2).unwrap();
        let inputs: Vec<Vec<f32>> = match name {
            "mobileface" => chips.clone(),
            "dlib-resnet" => dlib_chips.clone(),
            _ => vec![synth(size)],
        };
        for x in &inputs {
            model.run([1, size, size, 3], x, &[output]).unwrap();
        }
        let mut ts = Vec::new();
        for _ in 0..3 {
            for _ in 0..(60 / inputs.len()).max(1) {
                for x in &inputs {
                    let t = Instant::now();
                    model.run([1, size, size, 3], x, &[output]).unwrap();
                    ts.push(t.elapsed());
                }
            }
        }
        rust_ms.push(pct(&mut ts, 0.5));
    }
    let script = r#"
import sys, time, numpy as np, onnxruntime as ort
o = ort.SessionOptions(); o.intra_op_num_threads = 2; o.inter_op_num_threads = 1
o.add_session_config_entry("session.intra_op.allow_spinning", "0")
chips = np.fromfile(sys.argv[4], dtype=np.float32).reshape(-1, 1, 112, 112, 3)
dchips = np.fromfile(sys.argv[6], dtype=np.float32).reshape(-1, 1, 150, 150, 3)
def synth(n):
    return (((np.arange(n * n * 3) * 37) % 255).astype(np.float32) / 255.0).reshape(1, n, n, 3)
for path, size in [(sys.argv[1], 128), (sys.argv[2], 192), (sys.argv[3], 112), (sys.argv[5], 150)]:
    s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    xs = list(chips) if size == 112 else list(dchips) if size == 150 else [synth(size)]
    for x in xs: s.run(None, {name: x})
    ts = []
    for _ in range(3):
        for _ in range(max(60 // len(xs), 1)):
            for x in xs:
                t = time.perf_counter(); s.run(None, {name: x}); ts.append(time.perf_counter() - t)
    ts.sort(); print(ts[len(ts) // 2] * 1000)
"#;
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(&installed.models["blazeface-front"])
        .arg(&installed.models["facemesh"])
        .arg(&installed.models["mobileface"])
        .arg(&chip_file)
        .arg(&installed.models["dlib-resnet"])
        .arg(&dlib_chip_file)
        .output()
        .unwrap();
    let py: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if py.len() != 4 {
        println!(
            "\n(Python side-by-side failed: {})",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    println!(
        "\n== side by side: the same models on the same tensors, 2 intra-op threads each, p50"
    );
    for (i, (name, _, _)) in stages.iter().enumerate() {
        println!("{name:<16} shiren (ort) {:>7.3} ms   Python onnxruntime {:>7.3} ms   Python/shiren {:.2}", rust_ms[i], py[i], py[i] / rust_ms[i]);
    }
    // Per frame the pipeline runs the detector once, FaceMesh twice and the recogniser once.
    let (r, p) = (
        rust_ms[0] + 2.0 * rust_ms[1] + rust_ms[3],
        py[0] + 2.0 * py[1] + py[3],
    );
    println!("model work per frame (detect + 2 x mesh + dlib embed): shiren {r:.2} ms, Python {p:.2} ms: Python/shiren {:.2}", p / r);
    let dlib_onnx_ms = rust_ms[3];

    // The MobileFace pipeline, for the numpy + onnxruntime comparison below (same photos, 3 rounds).
    let mobileface = OnnxEngine::load(
        &installed,
        EngineSettings {
            recogniser: Recogniser::MobileFace,
            ..EngineSettings::default()
        },
    )
    .unwrap();
    let mut mf_times = Vec::new();
    let mut mf_embeddings = Vec::new();
    for round in 0..3 {
        for img in &decoded {
            let t = Instant::now();
            let e = mobileface
                .analyze(img)
                .unwrap()
                .into_iter()
                .next()
                .map(|f| f.embedding)
                .unwrap_or_default();
            mf_times.push(t.elapsed());
            if round == 0 {
                mf_embeddings.push(e);
            }
        }
    }
    let rust_pipeline = pct(&mut mf_times, 0.5);

    // The whole pipeline (after decoding) in Python, on the same decoded photos.
    let raw = dir.path().join("photos.rgb");
    let meta = dir.path().join("photos.json");
    std::fs::write(
        &raw,
        decoded
            .iter()
            .flat_map(|img| img.as_raw().clone())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let m: Vec<serde_json::Value> = decoded
        .iter()
        .zip(&mf_embeddings)
        .map(|(img, e)| serde_json::json!({"w": img.width(), "h": img.height(), "embedding": e}))
        .collect();
    std::fs::write(&meta, serde_json::to_vec(&m).unwrap()).unwrap();
    let out = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python/face_pipeline.py"))
        .arg(&installed.dir)
        .arg(&raw)
        .arg(&meta)
        .output()
        .unwrap();
    match serde_json::from_slice::<serde_json::Value>(&out.stdout) {
        Ok(v) => {
            let py = v["p50_ms"].as_f64().unwrap_or(f64::NAN);
            println!(
                "MobileFace pipeline per photo (no decode), p50: shiren {rust_pipeline:.2} ms, Python numpy+onnxruntime {py:.2} ms (p99 {:.1}): Python/shiren {:.2}; mean cosine between their embeddings {:.4}",
                v["p99_ms"].as_f64().unwrap_or(f64::NAN),
                py / rust_pipeline,
                v["mean_cosine_to_shiren"].as_f64().unwrap_or(f64::NAN)
            );
        }
        Err(_) => println!(
            "(Python pipeline failed: {})",
            String::from_utf8_lossy(&out.stderr)
        ),
    }

    face_recognition_side_by_side(
        &files,
        &faces,
        &shiren_dlib,
        &serde_json::Value::Object(shiren_points),
        total_p50,
        total_mean,
        dlib_onnx_ms,
    );
}

/// AUC, EER and TAR at FAR 1e-2 on the labelled pairs for embeddings by file name, with the gap between the lowest
/// genuine and the highest impostor cosine and d' (difference of the means over the pooled standard deviation).
fn pair_metrics(
    faces: &Path,
    by_file: &std::collections::HashMap<String, Vec<f32>>,
) -> (shiren::face::models::eval::Metrics, f64, f64) {
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    for line in std::fs::read_to_string(faces.join("pairs.csv"))
        .unwrap()
        .lines()
        .skip(1)
    {
        let c: Vec<&str> = line.split(',').collect();
        if let (Some(a), Some(b)) = (by_file.get(c[0]), by_file.get(c[1])) {
            let s = f64::from(cosine(a, b));
            if c[2] == "1" {
                genuine.push(s)
            } else {
                impostor.push(s)
            }
        }
    }
    let stats = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
        let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len().max(1) as f64;
        (m, var)
    };
    let ((mg, vg), (mi, vi)) = (stats(&genuine), stats(&impostor));
    let gap = genuine.iter().copied().fold(f64::MAX, f64::min)
        - impostor.iter().copied().fold(f64::MIN, f64::max);
    let d = (mg - mi) / ((vg + vi) / 2.0).sqrt();
    (
        shiren::face::models::eval::metrics(&genuine, &impostor, &[1e-2]),
        gap,
        d,
    )
}

/// shiren (decode → detect → landmarks → align → dlib descriptor) against the Python `face_recognition` library
/// (decode → HOG → 5-point landmarks → chip → the same descriptor) on the same photos, one process each, same machine.
fn face_recognition_side_by_side(
    files: &[std::path::PathBuf],
    faces: &Path,
    shiren_dlib: &[(std::path::PathBuf, Vec<f32>)],
    shiren_points: &serde_json::Value,
    shiren_p50: f64,
    shiren_mean: f64,
    dlib_onnx_ms: f64,
) {
    let venv = std::env::var("SHIREN_BENCH_FR_VENV").unwrap_or_else(|_| {
        provision::default_dir()
            .join("bench-venv-face-recognition")
            .display()
            .to_string()
    });
    let python = Path::new(&venv).join("bin/python");
    let requirements =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/requirements-face-recognition.txt");
    if !python.exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv", &venv])
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-deps",
                    "--require-hashes",
                    "-r",
                ])
                .arg(&requirements)
                .status()
                .is_ok_and(|s| s.success());
        if !ok {
            println!("\n(Python face_recognition could not be installed: side-by-side skipped)");
            return;
        }
    }
    let list = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(list.path(), serde_json::to_vec(files).unwrap()).unwrap();
    let points = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(points.path(), serde_json::to_vec(shiren_points).unwrap()).unwrap();
    let out = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python/face_recognition_bench.py"))
        .arg(list.path())
        .arg(points.path())
        .output()
        .unwrap();
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
        println!(
            "\n(Python face_recognition failed: {})",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    };
    let name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();
    let read = |key: &str| {
        let mut out = std::collections::HashMap::new();
        if let Some(d) = v[key].as_object() {
            for (path, desc) in d {
                let mut e: Vec<f32> = desc
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
                    .collect();
                let n = e.iter().map(|x| x * x).sum::<f32>().sqrt();
                e.iter_mut().for_each(|x| *x /= n);
                out.insert(name(Path::new(path)), e);
            }
        }
        out
    };
    let theirs = read("descriptors");
    let facemesh_in_dlib = read("facemesh_point_descriptors");
    let ours: std::collections::HashMap<String, Vec<f32>> = shiren_dlib
        .iter()
        .map(|(p, e)| (name(p), e.clone()))
        .collect();
    let agreement: Vec<f32> = ours
        .iter()
        .filter_map(|(k, e)| theirs.get(k).map(|t| cosine(e, t)))
        .collect();
    let (py_p50, py_mean) = (
        v["p50_ms"].as_f64().unwrap_or(f64::NAN),
        v["mean_ms"].as_f64().unwrap_or(f64::NAN),
    );
    println!(
        "\n== side by side with Python face_recognition 1.3.0 (dlib {}), {} photos, per photo: decode → detect → landmarks → align → descriptor",
        v["dlib"].as_str().unwrap_or("?"),
        files.len()
    );
    println!(
        "shiren (BlazeFace + FaceMesh + dlib ResNet on ONNX Runtime) p50 {shiren_p50:>8.2} ms  mean {shiren_mean:>8.2} ms"
    );
    println!(
        "face_recognition (HOG + 5-point + dlib ResNet in dlib)     p50 {py_p50:>8.2} ms  mean {py_mean:>8.2} ms"
    );
    println!(
        "face_recognition / shiren: {:.1}× (p50), {:.1}× (mean)",
        py_p50 / shiren_p50,
        py_mean / shiren_mean
    );
    let net = v["network_only_ms"].as_f64().unwrap_or(f64::NAN);
    println!(
        "the ResNet alone on a 150×150 chip: dlib {net:.2} ms, ONNX Runtime (shiren's conversion) {dlib_onnx_ms:.2} ms: dlib/ORT {:.2}",
        net / dlib_onnx_ms
    );
    println!("accuracy on the labelled pairs; gap = lowest genuine − highest impostor cosine; d' = separation of the means in pooled standard deviations");
    for (who, set) in [
        ("shiren", &ours),
        ("face_recognition", &theirs),
        ("dlib chip at FaceMesh points", &facemesh_in_dlib),
    ] {
        let (m, gap, d) = pair_metrics(faces, set);
        println!(
            "  {who:<29} {} photos: AUC {:.4}  EER {:.3}  TAR {:.3} at FAR <= 1e-2  gap {gap:+.4}  d' {d:.2}",
            set.len(),
            m.auc,
            m.eer,
            m.tar_at_far[0].2
        );
    }
    if !agreement.is_empty() {
        println!(
            "cosine between shiren's and face_recognition's descriptor of the same photo: mean {:.4}, min {:.4} (the alignment differs: FaceMesh points vs dlib's 5-point model)",
            agreement.iter().sum::<f32>() / agreement.len() as f32,
            agreement.iter().copied().fold(1.0, f32::min)
        );
    }
}
