//! `shiren models`: provision the face models, convert TensorFlow.js graphs.
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use shiren::config::Config;
use shiren::face::models::{provision, tfjs};

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Fetch, convert and verify ONNX Runtime and the face models into SHIREN_MODELS_DIR (a no-op when present).
    Install,
    /// Convert a TensorFlow.js graph model (model.json beside its weight shards) to ONNX.
    Convert {
        /// The model.json file.
        #[arg(long)]
        tfjs: PathBuf,
        /// Where to write the .onnx file.
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(command: ModelsCommand, config: &Config) -> anyhow::Result<()> {
    match command {
        ModelsCommand::Install => install(config),
        ModelsCommand::Convert { tfjs, out } => convert(&tfjs, &out),
    }
}

fn install(config: &Config) -> anyhow::Result<()> {
    let dir = config.effective_models_dir();
    let manifest = provision::Manifest::builtin();
    let started = std::time::Instant::now();
    let installed = provision::ensure(&dir, &manifest, &provision::StderrProgress)?;
    println!(
        "models ready in {} ({} models, runtime {}) after {:.1} s",
        installed.dir.display(),
        installed.models.len(),
        installed.runtime_lib.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn convert(model_json: &std::path::Path, out: &std::path::Path) -> anyhow::Result<()> {
    let json = std::fs::read(model_json)
        .with_context(|| format!("cannot read {}", model_json.display()))?;
    let dir = model_json.parent().map(PathBuf::from).unwrap_or_default();
    let name = model_json
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("model")
        .to_string();
    let model = tfjs::convert(&json, &|p| std::fs::read(dir.join(p)), &name)?;
    std::fs::write(out, model.encode())
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "wrote {} ({} nodes, {} initializers)",
        out.display(),
        model.nodes.len(),
        model.initializers.len()
    );
    Ok(())
}
