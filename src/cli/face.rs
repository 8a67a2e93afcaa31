//! `shiren face`: analyse, embed and compare faces with the engine; evaluate it on labelled pairs.
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use shiren::config::Config;

#[derive(Subcommand)]
pub enum FaceCommand {
    /// Faces, boxes, five points, quality, pose, eye and mouth openness (one JSON object per image and line).
    Analyze { images: Vec<PathBuf> },
    /// Match score of the only face of A against the only face of B.
    Compare {
        a: PathBuf,
        b: PathBuf,
        /// Target false-accept rate of the threshold: 1e-2, 1e-3 (default) or 1e-4.
        #[arg(long, default_value = "1e-3")]
        far: String,
    },
    /// The embedding of the largest face of each image.
    Embed { images: Vec<PathBuf> },
    /// Verification accuracy on labelled pairs: AUC, EER, TAR at FAR 1e-2 and 1e-3, with thresholds.
    Eval {
        /// CSV with a header and rows `a,b,same` (1 = same person).
        #[arg(long)]
        pairs: PathBuf,
        /// Folder the pair file names are relative to.
        #[arg(long)]
        images: PathBuf,
    },
}

fn read_csv(path: &std::path::Path) -> anyhow::Result<Vec<Vec<String>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(|c| c.trim().to_string()).collect())
        .collect())
}

/// The face engine of the config, provisioning its models first when they are missing.
pub fn load_engine(config: &Config) -> anyhow::Result<shiren::face::engine::OnnxEngine> {
    let installed = shiren::face::models::provision::ensure(
        &config.effective_models_dir(),
        &shiren::face::models::provision::Manifest::builtin(),
        &shiren::face::models::provision::StderrProgress,
    )?;
    Ok(shiren::face::engine::OnnxEngine::load(
        &installed,
        shiren::face::engine::EngineSettings::from_config(config),
    )?)
}

fn round(v: f32) -> f64 {
    (f64::from(v) * 10_000.0).round() / 10_000.0
}

fn face_json(f: &shiren::face::engine::Face) -> serde_json::Value {
    use shiren::face::quality;
    let m = quality::measure(&f.mesh);
    serde_json::json!({
        "box": f.detection.bbox.map(round),
        "score": round(f.detection.score),
        "points": f.points.iter().map(|p| [round(p.x), round(p.y)]).collect::<Vec<_>>(),
        "quality": {
            "iod_px": m.map(|m| round(m.iod)),
            "brightness": round(quality::brightness(&f.chip)),
            "sharpness": round(quality::sharpness(&f.chip, f.chip_side(), f.chip_side())),
            "landmark_score": round(f.mesh_score),
        },
        "yaw": m.map(|m| round(m.yaw)),
        "pitch": m.map(|m| round(m.pitch)),
        "roll": m.map(|m| round(m.roll)),
        "eye_openness": m.map(|m| round(m.ear)),
        "mouth_openness": m.map(|m| round(m.mar)),
    })
}

pub fn run(command: FaceCommand, config: &Config) -> anyhow::Result<()> {
    use shiren::face::engine::{cosine, single_face, FaceEngine};
    use shiren::face::image::decode;
    let engine = load_engine(config)?;
    let read =
        |p: &PathBuf| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
    let faces_of = |p: &PathBuf| -> anyhow::Result<Vec<shiren::face::engine::Face>> {
        let img = decode(&read(p)?, shiren::face::image::DecodeLimits::LOCAL_FILE)?;
        Ok(engine.analyze(&img)?)
    };
    match command {
        FaceCommand::Analyze { images } => {
            for path in images {
                let line = match faces_of(&path) {
                    Ok(faces) => {
                        serde_json::json!({"path": path, "faces": faces.iter().map(face_json).collect::<Vec<_>>()})
                    }
                    Err(e) => serde_json::json!({"path": path, "error": e.to_string().trim()}),
                };
                println!("{line}");
            }
            Ok(())
        }
        FaceCommand::Embed { images } => {
            for path in images {
                let line = match faces_of(&path) {
                    Ok(faces) => serde_json::json!({
                        "path": path,
                        "faces": faces.len(),
                        "embedding": faces.first().map(|f| f.embedding.iter().map(|v| round(*v)).collect::<Vec<_>>()),
                    }),
                    Err(e) => serde_json::json!({"path": path, "error": e.to_string().trim()}),
                };
                println!("{line}");
            }
            Ok(())
        }
        FaceCommand::Compare { a, b, far } => {
            let target = shiren::domain::scene::TargetFar::parse(&far)
                .context("--far must be 1e-2, 1e-3 or 1e-4")?;
            let (_, fa) = single_face(
                &engine,
                &read(&a)?,
                shiren::face::image::DecodeLimits::LOCAL_FILE,
            )
            .with_context(|| a.display().to_string())?;
            let (_, fb) = single_face(
                &engine,
                &read(&b)?,
                shiren::face::image::DecodeLimits::LOCAL_FILE,
            )
            .with_context(|| b.display().to_string())?;
            let c = cosine(&fa.embedding, &fb.embedding);
            let score = engine.recogniser().score(c);
            let threshold = target.score_threshold();
            println!(
                "{}",
                serde_json::json!({"score": round(score), "threshold": threshold, "match": score >= threshold, "cosine": round(c), "far": far})
            );
            Ok(())
        }
        FaceCommand::Eval { pairs, images } => face_eval(&pairs, &images, &engine, config),
    }
}

/// `shiren face eval`: embeds every photo named in the pairs (largest face), scores every pair, prints the metrics.
fn face_eval(
    pairs_file: &std::path::Path,
    dir: &std::path::Path,
    engine: &shiren::face::engine::OnnxEngine,
    config: &Config,
) -> anyhow::Result<()> {
    use shiren::face::engine::{cosine, FaceEngine};
    let pairs = read_csv(pairs_file)?;
    let mut files: Vec<String> = pairs
        .iter()
        .flat_map(|r| r.iter().take(2).cloned())
        .collect();
    files.sort();
    files.dedup();
    let mut embeddings = std::collections::HashMap::new();
    let started = std::time::Instant::now();
    for (i, file) in files.iter().enumerate() {
        let bytes = std::fs::read(dir.join(file)).with_context(|| format!("cannot read {file}"))?;
        let img =
            shiren::face::image::decode(&bytes, shiren::face::image::DecodeLimits::LOCAL_FILE)
                .with_context(|| file.clone())?;
        let faces = engine.analyze(&img)?;
        eprint!("\r[eval] {}/{} photos", i + 1, files.len());
        match faces.into_iter().next() {
            Some(f) => {
                embeddings.insert(file.clone(), f.embedding);
            }
            None => eprintln!("\n[eval] no face in {file}"),
        }
    }
    let per_photo = started.elapsed().as_secs_f64() * 1000.0 / files.len().max(1) as f64;
    eprintln!();
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    let mut missing = 0;
    for row in &pairs {
        anyhow::ensure!(row.len() >= 3, "pairs rows must be a,b,same");
        match (embeddings.get(&row[0]), embeddings.get(&row[1])) {
            (Some(a), Some(b)) => {
                let s = f64::from(cosine(a, b));
                if row[2] == "1" {
                    genuine.push(s)
                } else {
                    impostor.push(s)
                }
            }
            _ => missing += 1,
        }
    }
    let m = shiren::face::models::eval::metrics(&genuine, &impostor, &[1e-2, 1e-3]);
    let recogniser = config
        .recogniser_model
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| engine.recogniser().name().into());
    if engine.recogniser() == shiren::face::compare::Recogniser::Fused {
        shiren::face::models::eval::fused_report(&pairs, &embeddings);
    }
    println!("recogniser {recogniser}: {} photos, {} faces embedded, {:.1} ms per photo (decode+detect+mesh+align+embed)", files.len(), embeddings.len(), per_photo);
    println!(
        "pairs: {} genuine, {} impostor, {} skipped (no face)",
        m.genuine, m.impostor, missing
    );
    println!(
        "AUC {:.4}  EER {:.3} (cosine {:.3})",
        m.auc, m.eer, m.eer_threshold
    );
    for (far, t, tar) in &m.tar_at_far {
        println!(
            "TAR {:.3} at FAR <= {:.0e} (cosine threshold {:.3}, score {:.1})",
            tar,
            far,
            t,
            engine.recogniser().score(*t as f32)
        );
    }
    Ok(())
}
