//! Configuration: typed defaults, then an optional `shiren.toml`, then `SHIREN_*` environment variables.
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Everything an operator can set. Secrets (the database URL may hold a password) are redacted in `Debug`.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on (`SHIREN_BIND`).
    pub bind: SocketAddr,
    /// Base URL users' browsers reach (`SHIREN_PUBLIC_URL`); derived from the bound address when unset.
    pub public_url: Option<String>,
    /// Where the SQLite file, the gateway key and stored objects live (`SHIREN_DATA_DIR`).
    pub data_dir: PathBuf,
    /// `sqlite://…`, `postgres://…` or `mysql://…` (`SHIREN_DATABASE_URL`); default a SQLite file in the data dir.
    pub database_url: Option<String>,
    /// PEM file with the gateway's RSA private key (`SHIREN_GATEWAY_PRIVATE_KEY_FILE`); default `gateway_key.pem` in the data dir, created on first start.
    pub gateway_private_key_file: Option<PathBuf>,
    /// How long a `certify_id` stays usable after initialize, in seconds.
    pub certify_ttl_secs: i64,
    /// How long a certify token (the hosted page's URL) stays usable, in seconds.
    pub token_ttl_secs: i64,
    /// Allowed difference between a request `timestamp` and the server clock, on top of any time zone offset
    /// (SDKs send local time without a zone), in seconds.
    pub timestamp_skew_secs: i64,
    /// Largest request body accepted on the gateway, in bytes.
    pub max_body_bytes: usize,
    /// Largest decoded `face_contrast_picture`, in bytes.
    pub max_contrast_picture_bytes: usize,
    /// `text` (default) or `json` (`SHIREN_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// Where provisioned models live (`SHIREN_MODELS_DIR`); default `~/.cache/shiren/models`.
    pub models_dir: Option<PathBuf>,
    /// The recogniser: `dlib` (default; dlib's ResNet, CC0), `mobileface` (development only: no licence upstream) or
    /// `fused` (both, a calibrated combination).
    pub recogniser: crate::face::compare::Recogniser,
    /// An operator-supplied recogniser ONNX file (e.g. one the operator is licensed to use) replacing MobileFace.
    /// It takes a 112×112 ArcFace-aligned RGB crop, NHWC, prepared by `recogniser_preset`.
    pub recogniser_model: Option<PathBuf>,
    /// Preprocessing of the recogniser input: `raw` (RGB 0..255), `centered` ((x − 127.5) / 128) or `unit` (x / 255).
    pub recogniser_preset: RecogniserPreset,
    /// Output tensor name of `recogniser_model` (default: its first output).
    pub recogniser_output: Option<String>,
    /// Operator ONNX files replacing provisioned stages, by model name (`blazeface-front`, `blazeface-back`,
    /// `facemesh`): each must keep the replaced model's input layout and output names.
    pub model_files: std::collections::BTreeMap<String, PathBuf>,
}

/// How the aligned crop is scaled before the recogniser.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RecogniserPreset {
    #[default]
    Raw,
    Centered,
    Unit,
}

/// Log output format.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            data_dir: PathBuf::from("./data"),
            database_url: None,
            gateway_private_key_file: None,
            certify_ttl_secs: 30 * 60,
            token_ttl_secs: 10 * 60,
            timestamp_skew_secs: 15 * 60,
            max_body_bytes: 2 * 1024 * 1024,
            max_contrast_picture_bytes: 1024 * 1024,
            log_format: LogFormat::Text,
            models_dir: None,
            recogniser: Default::default(),
            recogniser_model: None,
            recogniser_preset: RecogniserPreset::Raw,
            recogniser_output: None,
            model_files: Default::default(),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("public_url", &self.public_url)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("gateway_private_key_file", &self.gateway_private_key_file)
            .field("certify_ttl_secs", &self.certify_ttl_secs)
            .field("token_ttl_secs", &self.token_ttl_secs)
            .field("timestamp_skew_secs", &self.timestamp_skew_secs)
            .field("max_body_bytes", &self.max_body_bytes)
            .field(
                "max_contrast_picture_bytes",
                &self.max_contrast_picture_bytes,
            )
            .field("log_format", &self.log_format)
            .field("models_dir", &self.models_dir)
            .field("recogniser", &self.recogniser)
            .field("recogniser_model", &self.recogniser_model)
            .field("recogniser_preset", &self.recogniser_preset)
            .field("recogniser_output", &self.recogniser_output)
            .field("model_files", &self.model_files)
            .finish()
    }
}

/// Hides the password of a `scheme://user:password@host/…` URL.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A configuration error, naming the source and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid value for {key}: {message}")]
    Env { key: &'static str, message: String },
}

impl Config {
    /// Defaults, overlaid by `file` (or `./shiren.toml` when present), overlaid by the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let implicit = Path::new("shiren.toml");
        let path = match file {
            Some(p) => Some(p.to_path_buf()),
            None if implicit.exists() => Some(implicit.to_path_buf()),
            None => None,
        };
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse { path, source })?
            }
            None => Config::default(),
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        Ok(config)
    }

    /// Applies `SHIREN_*` variables read through `get` (a function so tests need not touch the process environment).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(key: &'static str, v: &str) -> Result<T, ConfigError>
        where
            T::Err: fmt::Display,
        {
            v.trim().parse::<T>().map_err(|e| ConfigError::Env {
                key,
                message: e.to_string(),
            })
        }
        if let Some(v) = get("SHIREN_BIND") {
            self.bind = parse("SHIREN_BIND", &v)?;
        }
        if let Some(v) = get("SHIREN_PUBLIC_URL").filter(|v| !v.is_empty()) {
            self.public_url = Some(v);
        }
        if let Some(v) = get("SHIREN_DATA_DIR").filter(|v| !v.is_empty()) {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("SHIREN_DATABASE_URL").filter(|v| !v.is_empty()) {
            self.database_url = Some(v);
        }
        if let Some(v) = get("SHIREN_GATEWAY_PRIVATE_KEY_FILE").filter(|v| !v.is_empty()) {
            self.gateway_private_key_file = Some(PathBuf::from(v));
        }
        if let Some(v) = get("SHIREN_MODELS_DIR").filter(|v| !v.is_empty()) {
            self.models_dir = Some(PathBuf::from(v));
        }
        if let Some(v) = get("SHIREN_RECOGNISER").filter(|v| !v.is_empty()) {
            self.recogniser = match v.trim().to_ascii_lowercase().as_str() {
                "dlib" => crate::face::compare::Recogniser::Dlib,
                "mobileface" => crate::face::compare::Recogniser::MobileFace,
                "fused" => crate::face::compare::Recogniser::Fused,
                other => {
                    return Err(ConfigError::Env {
                        key: "SHIREN_RECOGNISER",
                        message: format!("expected `dlib`, `mobileface` or `fused`, got `{other}`"),
                    })
                }
            };
        }
        if let Some(v) = get("SHIREN_CERTIFY_TTL_SECS") {
            self.certify_ttl_secs = parse("SHIREN_CERTIFY_TTL_SECS", &v)?;
        }
        if let Some(v) = get("SHIREN_TOKEN_TTL_SECS") {
            self.token_ttl_secs = parse("SHIREN_TOKEN_TTL_SECS", &v)?;
        }
        if let Some(v) = get("SHIREN_TIMESTAMP_SKEW_SECS") {
            self.timestamp_skew_secs = parse("SHIREN_TIMESTAMP_SKEW_SECS", &v)?;
        }
        if let Some(v) = get("SHIREN_LOG_FORMAT") {
            self.log_format = match v.trim().to_ascii_lowercase().as_str() {
                "json" => LogFormat::Json,
                "text" | "" => LogFormat::Text,
                other => {
                    return Err(ConfigError::Env {
                        key: "SHIREN_LOG_FORMAT",
                        message: format!("expected `text` or `json`, got `{other}`"),
                    })
                }
            };
        }
        Ok(())
    }

    /// The database URL in force: the configured one, or a SQLite file in the data dir.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("shiren.sqlite").display()
            ),
        }
    }

    /// The models directory in force.
    pub fn effective_models_dir(&self) -> PathBuf {
        self.models_dir
            .clone()
            .unwrap_or_else(crate::face::provision::default_dir)
    }

    /// The gateway private key file in force.
    pub fn effective_gateway_key_file(&self) -> PathBuf {
        self.gateway_private_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("gateway_key.pem"))
    }

    /// The public base URL (no trailing slash), derived from the actually bound address when not configured.
    pub fn effective_public_url(&self, bound: SocketAddr) -> String {
        if let Some(url) = &self.public_url {
            return url.trim_end_matches('/').to_string();
        }
        let host = if bound.ip().is_unspecified() {
            "localhost".to_string()
        } else if bound.is_ipv6() {
            format!("[{}]", bound.ip())
        } else {
            bound.ip().to_string()
        };
        if bound.port() == 80 {
            format!("http://{host}")
        } else {
            format!("http://{host}:{}", bound.port())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn env_overrides_defaults() {
        let env: HashMap<&str, &str> = [
            ("SHIREN_BIND", "127.0.0.1:9000"),
            ("SHIREN_DATA_DIR", "/tmp/x"),
            ("SHIREN_LOG_FORMAT", "json"),
        ]
        .into();
        let mut c = Config::default();
        c.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.bind.port(), 9000);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.log_format, LogFormat::Json);
        assert!(c
            .effective_database_url()
            .starts_with("sqlite:///tmp/x/shiren.sqlite"));
    }

    #[test]
    fn bad_env_value_is_named() {
        let mut c = Config::default();
        let err = c
            .apply_env(|k| (k == "SHIREN_BIND").then(|| "nope".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("SHIREN_BIND"));
    }

    #[test]
    fn model_file_overrides_parse() {
        let c: Config = toml::from_str("[model_files]\nfacemesh = \"/opt/m.onnx\"\n").unwrap();
        assert_eq!(c.model_files["facemesh"], PathBuf::from("/opt/m.onnx"));
    }

    #[test]
    fn toml_file_and_public_url() {
        let c: Config = toml::from_str("bind = \"0.0.0.0:80\"\ncertify_ttl_secs = 60\n").unwrap();
        assert_eq!(c.certify_ttl_secs, 60);
        assert_eq!(c.effective_public_url(c.bind), "http://localhost");
        assert!(toml::from_str::<Config>("nonsense = 1").is_err());
    }

    #[test]
    fn debug_redacts_database_password() {
        let c = Config {
            database_url: Some("postgres://u:secret@h/db".into()),
            ..Config::default()
        };
        let s = format!("{c:?}");
        assert!(!s.contains("secret"), "{s}");
        assert!(s.contains("postgres://u:***@h/db"));
    }
}
