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
    /// Where reference identities come from (`[authority]`).
    pub authority: AuthorityConfig,
    /// Defaults of the hosted flow and its decision (`[decision]`); scenes may override them.
    pub decision: DecisionConfig,
    /// The scene of the gateway's verifications, by app id, instead of the app's default scene (`[default_scenes]`,
    /// e.g. `"2021000000000001" = 1002`).
    pub default_scenes: std::collections::BTreeMap<String, i64>,
    /// Bearer token of the admin API and the console's login (`SHIREN_ADMIN_TOKEN`), at least
    /// [`MIN_ADMIN_TOKEN_CHARS`] characters; both are off when unset.
    pub admin_token: Option<String>,
    /// Bearer token `/metrics` asks for (`SHIREN_METRICS_TOKEN`), at least [`MIN_ADMIN_TOKEN_CHARS`] characters;
    /// unset, `/metrics` is open (keep it off the internet then).
    pub metrics_token: Option<String>,
    /// The hosted page (`[hosted]`).
    pub hosted: HostedConfig,
    /// Fetching merchants' pictures by URL (`FaceContrastPictureUrl`) (`[picture_url]`).
    pub picture_url: PictureUrlConfig,
    /// Delivery of verification results to merchants' `CallbackUrl` (`[callback]`).
    pub callback: CallbackConfig,
    /// The cloud ID-verification API (`[cloud]`).
    pub cloud: CloudConfig,
    /// Personal data at rest (`[privacy]`).
    pub privacy: PrivacyConfig,
    /// Billing and reconciliation (`[billing]`).
    pub billing: BillingConfig,
    /// The bound on concurrent image decoding and face analysis (`[analysis]`).
    pub analysis: AnalysisConfig,
    /// The Alipay-style gateway's merchant apps (`[gateway]`).
    pub gateway: GatewayConfig,
    /// Limits per ID number, per app and per client address (`[limits]`).
    pub limits: LimitsConfig,
    /// Settings that exist only for tests; no default configuration enables them and the server logs loudly when
    /// one is on (`[testing]`).
    pub testing: TestingConfig,
}

/// How much decode and analysis work runs at once: a burst beyond it waits, and beyond the queue is refused as busy.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisConfig {
    /// Jobs at once (`SHIREN_ANALYSIS_CONCURRENCY`; default the number of cores).
    pub concurrency: Option<usize>,
    /// Jobs waiting for a place before further ones are refused (`SHIREN_ANALYSIS_QUEUE`; default 4 × cores).
    pub queue: Option<usize>,
}

impl AnalysisConfig {
    /// The pool these settings describe.
    pub fn pool(&self) -> crate::face::work::WorkPool {
        crate::face::work::WorkPool::sized(self.concurrency, self.queue)
    }
}

/// Fewest characters an admin token may have.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;

/// The hosted page.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostedConfig {
    /// Origins (`https://host[:port]`, `https://*.host`) that may show the hosted page in a frame, besides shiren
    /// itself (`SHIREN_FRAME_ANCESTORS`, space- or comma-separated). Empty (the default): no other site may frame it.
    pub frame_ancestors: Vec<String>,
}

impl HostedConfig {
    /// The configured origins, each entry split on spaces and commas.
    pub fn frame_ancestor_origins(&self) -> impl Iterator<Item = &str> {
        self.frame_ancestors
            .iter()
            .flat_map(|e| e.split(|c: char| c == ',' || c.is_whitespace()))
            .filter(|o| !o.is_empty())
    }
}

/// Whether `origin` is a CSP source a page may be framed by: `http(s)://host[:port]`, the host possibly starting
/// with `*.`, nothing after it (no path, quotes or separators that could extend the policy).
fn valid_frame_ancestor(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    let host = host.strip_prefix("*.").unwrap_or(host);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Fetching a merchant's picture by URL. Whatever the allow-list says, only public addresses are ever contacted.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PictureUrlConfig {
    /// Hosts pictures may be fetched from: `host.example` (exactly that host), `*.example` (any subdomain of
    /// `example`, not `example` itself) or `*` (any host). Empty (the default) refuses every picture URL
    /// (`SHIREN_PICTURE_URL_ALLOWED_HOSTS`, comma-separated).
    pub allowed_hosts: Vec<String>,
    /// Largest picture accepted, in bytes (`SHIREN_PICTURE_URL_MAX_BYTES`, default 1 MiB).
    pub max_bytes: usize,
    /// Time for the whole download, redirects included, in milliseconds (`SHIREN_PICTURE_URL_TIMEOUT_MS`,
    /// default 3000).
    pub timeout_ms: u64,
    /// Redirects followed, each checked like the original URL (`SHIREN_PICTURE_URL_MAX_REDIRECTS`, default 3).
    pub max_redirects: usize,
}

impl Default for PictureUrlConfig {
    fn default() -> Self {
        PictureUrlConfig {
            allowed_hosts: Vec::new(),
            max_bytes: 1024 * 1024,
            timeout_ms: 3000,
            max_redirects: 3,
        }
    }
}

/// Callback delivery: retried with exponential backoff until the merchant answers 2xx or the attempts run out.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallbackConfig {
    /// Time for one delivery attempt, in milliseconds (`SHIREN_CALLBACK_TIMEOUT_MS`, default 5000).
    pub timeout_ms: u64,
    /// Attempts before a delivery is given up and recorded as failed (`SHIREN_CALLBACK_MAX_ATTEMPTS`, default 8).
    pub max_attempts: u32,
    /// Wait after the first failed attempt, doubled after each further one, in milliseconds
    /// (`SHIREN_CALLBACK_BACKOFF_INITIAL_MS`, default 1000).
    pub backoff_initial_ms: u64,
    /// Longest wait between attempts, in milliseconds (`SHIREN_CALLBACK_BACKOFF_MAX_MS`, default 60000).
    pub backoff_max_ms: u64,
    /// How often the database is polled for due deliveries when nothing wakes the dispatcher, in milliseconds
    /// (`SHIREN_CALLBACK_POLL_MS`, default 5000).
    pub poll_ms: u64,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        CallbackConfig {
            timeout_ms: 5000,
            max_attempts: 8,
            backoff_initial_ms: 1000,
            backoff_max_ms: 60_000,
            poll_ms: 5000,
        }
    }
}

/// The authority the decision compares against.
#[derive(Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AuthorityConfig {
    /// An external authority's URL (`SHIREN_AUTHORITY_URL`); unset means the local registry
    /// (`shiren identity import`).
    pub url: Option<String>,
    /// Shared secret signing requests to the external authority and its answers (`SHIREN_AUTHORITY_SECRET`).
    pub secret: Option<String>,
    /// Timeout of one call to the external authority, in milliseconds (default 3000).
    pub timeout_ms: Option<u64>,
}

impl fmt::Debug for AuthorityConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorityConfig")
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// The cloud ID-verification API (`POST /`, version 2019-03-07).
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudConfig {
    /// Key (64 hex digits) encrypting the stored AccessKeySecrets (`SHIREN_CLOUD_SECRET_KEY`); when unset, a key
    /// file `cloud_secret.key` (mode 0600) in the data dir, created on first use. Keep it out of database backups.
    pub secret_key: Option<String>,
    /// Largest request body accepted on the cloud API, in bytes (`SHIREN_CLOUD_MAX_BODY_BYTES`, default 16 MiB).
    pub max_body_bytes: usize,
}

impl Default for CloudConfig {
    fn default() -> Self {
        CloudConfig {
            secret_key: None,
            max_body_bytes: 16 * 1024 * 1024,
        }
    }
}

impl fmt::Debug for CloudConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudConfig")
            .field("secret_key", &self.secret_key.as_ref().map(|_| "***"))
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

/// Personal data at rest: the data key that seals names, ID numbers, images and embeddings.
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    /// The current data key, 64 hex digits (`SHIREN_DATA_KEY`). When unset, the key file `data.key` (mode 0600) in
    /// the data dir, created on first start; its first line is the current key, further lines older keys. Keep it
    /// out of database and object-store backups: without it they hold nothing readable.
    pub data_key: Option<String>,
    /// Older data keys that still open values while `shiren keys rotate` moves them to the current key
    /// (`SHIREN_PREVIOUS_DATA_KEYS`, comma-separated); only with `data_key`.
    pub previous_data_keys: Vec<String>,
}

impl fmt::Debug for PrivacyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivacyConfig")
            .field("data_key", &self.data_key.as_ref().map(|_| "***"))
            .field("previous_data_keys", &self.previous_data_keys.len())
            .finish()
    }
}

/// Billing and reconciliation.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BillingConfig {
    /// The offset from UTC whose days billing records, reconciliation queries and the console count in
    /// (`SHIREN_BILLING_UTC_OFFSET`, e.g. `+08:00` for Beijing days; default `UTC`). A record keeps the day it was
    /// written with.
    pub utc_offset: crate::billing::Calendar,
}

/// Merchant apps of the Alipay-style gateway.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Register merchant RSA keys of fewer than 2048 bits (1024 at least), which are refused otherwise
    /// (`SHIREN_ALLOW_LEGACY_RSA_KEYS=1`; default off). Only for a merchant that cannot replace an old key yet.
    pub allow_legacy_rsa_keys: bool,
}

/// Defaults of the hosted flow and the decision.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecisionConfig {
    /// Target false-accept rate of the face match: `1e-2`, `1e-3` (default) or `1e-4` (`SHIREN_MATCH_FAR`).
    pub match_far: String,
    /// Attempts a person gets on the hosted page (`SHIREN_MAX_ATTEMPTS`, 1–5, default 3).
    pub max_attempts: u32,
    /// Milliseconds of the opening phase (look straight; colour flashes).
    pub baseline_ms: u32,
    /// Milliseconds given to each challenged action.
    pub action_ms: u32,
    /// Frames per second the page captures.
    pub fps: u32,
    /// Days a reserved face image is kept (shown on the consent screen).
    pub retention_days: u32,
    /// Smallest inter-ocular distance, in pixels, of the frame used for the match.
    pub min_iod_px: f32,
}

impl Default for DecisionConfig {
    fn default() -> Self {
        DecisionConfig {
            match_far: "1e-3".into(),
            max_attempts: 3,
            baseline_ms: 1500,
            action_ms: 2500,
            fps: 8,
            retention_days: 30,
            min_iod_px: 28.0,
        }
    }
}

/// How often one ID number, one app and one client address may call; kept in the database, so several instances
/// share them. 0 switches a single limit off.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// All limits on or off (`SHIREN_LIMITS_ENABLED`, default on).
    pub enabled: bool,
    /// Calls naming one ID number per minute (`SHIREN_LIMITS_IDENTITY_PER_MINUTE`, default 15).
    pub identity_per_minute: u32,
    /// Calls naming one ID number per day (`SHIREN_LIMITS_IDENTITY_PER_DAY`, default 30).
    pub identity_per_day: u32,
    /// Failed verdicts of one ID number per day before it is refused until the next
    /// (`SHIREN_LIMITS_IDENTITY_FAILURES_PER_DAY`, default 10).
    pub identity_failures_per_day: u32,
    /// Calls of one app per second, both APIs together (`SHIREN_LIMITS_APP_PER_SECOND`, default 50).
    pub app_per_second: u32,
    /// Hosted-page challenge and attempt requests of one client address per minute
    /// (`SHIREN_LIMITS_ADDRESS_PER_MINUTE`, default 60).
    pub address_per_minute: u32,
    /// Reverse proxies (addresses or ranges such as `10.0.0.0/8`) whose `X-Forwarded-For` names the client
    /// (`SHIREN_LIMITS_TRUSTED_PROXIES`, comma-separated; default none: the connection's address is the client).
    pub trusted_proxies: Vec<String>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            enabled: true,
            identity_per_minute: 15,
            identity_per_day: 30,
            identity_failures_per_day: 10,
            app_per_second: 50,
            address_per_minute: 60,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Test-only settings.
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TestingConfig {
    /// Every challenge asks exactly these actions in this order (`SHIREN_TEST_FIXED_CHALLENGE=turn,open_mouth`;
    /// `turn` accepts either direction), so a recorded video can perform it.
    pub fixed_challenge: Option<Vec<String>>,
    /// Skip the colour-flash check (`SHIREN_TEST_SKIP_COLOUR_CHECK=1`): a recorded video cannot reflect the flashes.
    pub skip_colour_check: bool,
    /// Picture URLs and callbacks may reach loopback addresses (127.0.0.0/8, ::1), so tests can serve them from
    /// the test process (`SHIREN_TEST_ALLOW_LOOPBACK_URLS=1`). Other private addresses stay refused.
    pub allow_loopback_urls: bool,
    /// Callback URLs may be plain `http` (`SHIREN_TEST_ALLOW_HTTP_CALLBACKS=1`); otherwise `https` is required.
    pub allow_http_callbacks: bool,
    /// The external authority's URL may be plain `http` (`SHIREN_TEST_ALLOW_HTTP_AUTHORITY=1`); otherwise `https`
    /// is required.
    pub allow_http_authority: bool,
}

impl TestingConfig {
    /// Whether any test-only setting is on.
    pub fn any(&self) -> bool {
        self.fixed_challenge.is_some()
            || self.skip_colour_check
            || self.allow_loopback_urls
            || self.allow_http_callbacks
            || self.allow_http_authority
    }
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
            authority: AuthorityConfig::default(),
            decision: DecisionConfig::default(),
            default_scenes: Default::default(),
            admin_token: None,
            metrics_token: None,
            hosted: HostedConfig::default(),
            picture_url: PictureUrlConfig::default(),
            callback: CallbackConfig::default(),
            cloud: CloudConfig::default(),
            privacy: PrivacyConfig::default(),
            billing: BillingConfig::default(),
            analysis: AnalysisConfig::default(),
            gateway: GatewayConfig::default(),
            limits: LimitsConfig::default(),
            testing: TestingConfig::default(),
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
            .field("authority", &self.authority)
            .field("decision", &self.decision)
            .field("analysis", &self.analysis)
            .field("default_scenes", &self.default_scenes)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "***"))
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "***"))
            .field("hosted", &self.hosted)
            .field("picture_url", &self.picture_url)
            .field("callback", &self.callback)
            .field("cloud", &self.cloud)
            .field("privacy", &self.privacy)
            .field("billing", &self.billing)
            .field("gateway", &self.gateway)
            .field("limits", &self.limits)
            .field("testing", &self.testing)
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
    /// A setting that parsed but cannot be used, from whichever source it came.
    #[error("invalid setting {key}: {message}")]
    Invalid { key: &'static str, message: String },
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
        config.validate()?;
        Ok(config)
    }

    /// Refuses settings that parse but must not run: a short admin or metrics token, frame ancestors that are not
    /// origins.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(t) = &self.admin_token {
            if t.chars().count() < MIN_ADMIN_TOKEN_CHARS {
                return Err(ConfigError::Invalid {
                    key: "admin_token (SHIREN_ADMIN_TOKEN)",
                    message: format!(
                        "the admin token must be at least {MIN_ADMIN_TOKEN_CHARS} characters (it has {}); \
                         generate one with e.g. `openssl rand -hex 32`",
                        t.chars().count()
                    ),
                });
            }
        }
        if let Some(t) = &self.metrics_token {
            if t.chars().count() < MIN_ADMIN_TOKEN_CHARS {
                return Err(ConfigError::Invalid {
                    key: "metrics_token (SHIREN_METRICS_TOKEN)",
                    message: format!(
                        "the metrics token must be at least {MIN_ADMIN_TOKEN_CHARS} characters (it has {})",
                        t.chars().count()
                    ),
                });
            }
        }
        if let Some(bad) = self
            .hosted
            .frame_ancestor_origins()
            .find(|o| !valid_frame_ancestor(o))
        {
            return Err(ConfigError::Invalid {
                key: "hosted.frame_ancestors (SHIREN_FRAME_ANCESTORS)",
                message: format!(
                    "`{bad}` is not an origin: expected https://host[:port] or https://*.host (http:// also \
                     accepted), separated by spaces or commas"
                ),
            });
        }
        Ok(())
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
        if let Some(v) = get("SHIREN_AUTHORITY_URL").filter(|v| !v.is_empty()) {
            self.authority.url = Some(v);
        }
        if let Some(v) = get("SHIREN_AUTHORITY_SECRET").filter(|v| !v.is_empty()) {
            self.authority.secret = Some(v);
        }
        if let Some(v) = get("SHIREN_AUTHORITY_TIMEOUT_MS") {
            self.authority.timeout_ms = Some(parse("SHIREN_AUTHORITY_TIMEOUT_MS", &v)?);
        }
        if let Some(v) = get("SHIREN_ADMIN_TOKEN").filter(|v| !v.is_empty()) {
            self.admin_token = Some(v);
        }
        if let Some(v) = get("SHIREN_METRICS_TOKEN").filter(|v| !v.is_empty()) {
            self.metrics_token = Some(v);
        }
        if let Some(v) = get("SHIREN_FRAME_ANCESTORS") {
            self.hosted.frame_ancestors = vec![v];
        }
        if let Some(v) = get("SHIREN_CLOUD_SECRET_KEY").filter(|v| !v.is_empty()) {
            self.cloud.secret_key = Some(v);
        }
        if let Some(v) = get("SHIREN_DATA_KEY").filter(|v| !v.is_empty()) {
            self.privacy.data_key = Some(v);
        }
        if let Some(v) = get("SHIREN_PREVIOUS_DATA_KEYS").filter(|v| !v.is_empty()) {
            self.privacy.previous_data_keys = v
                .split(',')
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty())
                .collect();
        }
        if let Some(v) = get("SHIREN_ANALYSIS_CONCURRENCY") {
            self.analysis.concurrency = Some(parse("SHIREN_ANALYSIS_CONCURRENCY", &v)?);
        }
        if let Some(v) = get("SHIREN_ANALYSIS_QUEUE") {
            self.analysis.queue = Some(parse("SHIREN_ANALYSIS_QUEUE", &v)?);
        }
        if let Some(v) = get("SHIREN_CLOUD_MAX_BODY_BYTES") {
            self.cloud.max_body_bytes = parse("SHIREN_CLOUD_MAX_BODY_BYTES", &v)?;
        }
        if let Some(v) = get("SHIREN_BILLING_UTC_OFFSET").filter(|v| !v.is_empty()) {
            self.billing.utc_offset =
                crate::billing::Calendar::parse(&v).ok_or_else(|| ConfigError::Env {
                    key: "SHIREN_BILLING_UTC_OFFSET",
                    message: crate::domain::calendar::OFFSET_EXPECTED.into(),
                })?;
        }
        if let Some(v) = get("SHIREN_ALLOW_LEGACY_RSA_KEYS") {
            self.gateway.allow_legacy_rsa_keys = matches!(v.trim(), "1" | "true" | "yes");
        }
        if let Some(v) = get("SHIREN_LIMITS_ENABLED") {
            self.limits.enabled = match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                other => {
                    return Err(ConfigError::Env {
                        key: "SHIREN_LIMITS_ENABLED",
                        message: format!("expected `true` or `false`, got `{other}`"),
                    })
                }
            };
        }
        if let Some(v) = get("SHIREN_LIMITS_IDENTITY_PER_MINUTE") {
            self.limits.identity_per_minute = parse("SHIREN_LIMITS_IDENTITY_PER_MINUTE", &v)?;
        }
        if let Some(v) = get("SHIREN_LIMITS_IDENTITY_PER_DAY") {
            self.limits.identity_per_day = parse("SHIREN_LIMITS_IDENTITY_PER_DAY", &v)?;
        }
        if let Some(v) = get("SHIREN_LIMITS_IDENTITY_FAILURES_PER_DAY") {
            self.limits.identity_failures_per_day =
                parse("SHIREN_LIMITS_IDENTITY_FAILURES_PER_DAY", &v)?;
        }
        if let Some(v) = get("SHIREN_LIMITS_APP_PER_SECOND") {
            self.limits.app_per_second = parse("SHIREN_LIMITS_APP_PER_SECOND", &v)?;
        }
        if let Some(v) = get("SHIREN_LIMITS_ADDRESS_PER_MINUTE") {
            self.limits.address_per_minute = parse("SHIREN_LIMITS_ADDRESS_PER_MINUTE", &v)?;
        }
        if let Some(v) = get("SHIREN_LIMITS_TRUSTED_PROXIES") {
            self.limits.trusted_proxies = v
                .split(',')
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .collect();
        }
        if let Some(v) = get("SHIREN_MATCH_FAR") {
            self.decision.match_far = v.trim().to_string();
        }
        if let Some(v) = get("SHIREN_MAX_ATTEMPTS") {
            self.decision.max_attempts = parse("SHIREN_MAX_ATTEMPTS", &v)?;
        }
        if let Some(v) = get("SHIREN_TEST_FIXED_CHALLENGE").filter(|v| !v.is_empty()) {
            self.testing.fixed_challenge =
                Some(v.split(',').map(|a| a.trim().to_string()).collect());
        }
        if let Some(v) = get("SHIREN_TEST_SKIP_COLOUR_CHECK") {
            self.testing.skip_colour_check = matches!(v.trim(), "1" | "true" | "yes");
        }
        if let Some(v) = get("SHIREN_TEST_ALLOW_LOOPBACK_URLS") {
            self.testing.allow_loopback_urls = matches!(v.trim(), "1" | "true" | "yes");
        }
        if let Some(v) = get("SHIREN_TEST_ALLOW_HTTP_CALLBACKS") {
            self.testing.allow_http_callbacks = matches!(v.trim(), "1" | "true" | "yes");
        }
        if let Some(v) = get("SHIREN_TEST_ALLOW_HTTP_AUTHORITY") {
            self.testing.allow_http_authority = matches!(v.trim(), "1" | "true" | "yes");
        }
        if let Some(v) = get("SHIREN_PICTURE_URL_ALLOWED_HOSTS") {
            self.picture_url.allowed_hosts = v
                .split(',')
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .collect();
        }
        if let Some(v) = get("SHIREN_PICTURE_URL_MAX_BYTES") {
            self.picture_url.max_bytes = parse("SHIREN_PICTURE_URL_MAX_BYTES", &v)?;
        }
        if let Some(v) = get("SHIREN_PICTURE_URL_TIMEOUT_MS") {
            self.picture_url.timeout_ms = parse("SHIREN_PICTURE_URL_TIMEOUT_MS", &v)?;
        }
        if let Some(v) = get("SHIREN_PICTURE_URL_MAX_REDIRECTS") {
            self.picture_url.max_redirects = parse("SHIREN_PICTURE_URL_MAX_REDIRECTS", &v)?;
        }
        if let Some(v) = get("SHIREN_CALLBACK_TIMEOUT_MS") {
            self.callback.timeout_ms = parse("SHIREN_CALLBACK_TIMEOUT_MS", &v)?;
        }
        if let Some(v) = get("SHIREN_CALLBACK_MAX_ATTEMPTS") {
            self.callback.max_attempts = parse("SHIREN_CALLBACK_MAX_ATTEMPTS", &v)?;
        }
        if let Some(v) = get("SHIREN_CALLBACK_BACKOFF_INITIAL_MS") {
            self.callback.backoff_initial_ms = parse("SHIREN_CALLBACK_BACKOFF_INITIAL_MS", &v)?;
        }
        if let Some(v) = get("SHIREN_CALLBACK_BACKOFF_MAX_MS") {
            self.callback.backoff_max_ms = parse("SHIREN_CALLBACK_BACKOFF_MAX_MS", &v)?;
        }
        if let Some(v) = get("SHIREN_CALLBACK_POLL_MS") {
            self.callback.poll_ms = parse("SHIREN_CALLBACK_POLL_MS", &v)?;
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
            .unwrap_or_else(crate::face::models::provision::default_dir)
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
    fn billing_offset_from_file_and_env() {
        assert_eq!(Config::default().billing.utc_offset.offset_secs(), 0);
        let c: Config = toml::from_str("[billing]\nutc_offset = \"+08:00\"\n").unwrap();
        assert_eq!(c.billing.utc_offset.offset_secs(), 8 * 3600);
        let err = toml::from_str::<Config>("[billing]\nutc_offset = \"Asia/Shanghai\"\n")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("+08:00"), "{err}");
        let mut c = Config::default();
        c.apply_env(|k| (k == "SHIREN_BILLING_UTC_OFFSET").then(|| "-05:30".to_string()))
            .unwrap();
        assert_eq!(c.billing.utc_offset.label(), "UTC-05:30");
        let err = c
            .apply_env(|k| (k == "SHIREN_BILLING_UTC_OFFSET").then(|| "+25:00".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("SHIREN_BILLING_UTC_OFFSET"));
    }

    #[test]
    fn legacy_rsa_keys_are_off_unless_set() {
        assert!(!Config::default().gateway.allow_legacy_rsa_keys);
        let c: Config = toml::from_str("[gateway]\nallow_legacy_rsa_keys = true\n").unwrap();
        assert!(c.gateway.allow_legacy_rsa_keys);
        let mut c = Config::default();
        c.apply_env(|k| (k == "SHIREN_ALLOW_LEGACY_RSA_KEYS").then(|| "1".to_string()))
            .unwrap();
        assert!(c.gateway.allow_legacy_rsa_keys);
        c.apply_env(|k| (k == "SHIREN_ALLOW_LEGACY_RSA_KEYS").then(|| "0".to_string()))
            .unwrap();
        assert!(!c.gateway.allow_legacy_rsa_keys);
    }

    #[test]
    fn limits_from_file_and_env() {
        let c = Config::default();
        assert!(c.limits.enabled);
        assert_eq!(
            (c.limits.identity_per_minute, c.limits.identity_per_day),
            (15, 30)
        );
        let mut c: Config = toml::from_str(
            "[limits]\nidentity_per_minute = 5\ntrusted_proxies = [\"10.0.0.0/8\"]\n",
        )
        .unwrap();
        assert_eq!(c.limits.identity_per_minute, 5);
        assert_eq!(
            c.limits.identity_per_day, 30,
            "unset keys keep their defaults"
        );
        assert!(toml::from_str::<Config>("[limits]\nper_hour = 1\n").is_err());
        let env: HashMap<&str, &str> = [
            ("SHIREN_LIMITS_ENABLED", "false"),
            ("SHIREN_LIMITS_IDENTITY_PER_DAY", "1000"),
            ("SHIREN_LIMITS_IDENTITY_FAILURES_PER_DAY", "0"),
            ("SHIREN_LIMITS_APP_PER_SECOND", "7"),
            ("SHIREN_LIMITS_ADDRESS_PER_MINUTE", "8"),
            ("SHIREN_LIMITS_TRUSTED_PROXIES", "127.0.0.1, ::1"),
        ]
        .into();
        c.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert!(!c.limits.enabled);
        assert_eq!(c.limits.identity_per_day, 1000);
        assert_eq!(c.limits.identity_failures_per_day, 0);
        assert_eq!(c.limits.app_per_second, 7);
        assert_eq!(c.limits.address_per_minute, 8);
        assert_eq!(c.limits.trusted_proxies, ["127.0.0.1", "::1"]);
        for (k, v) in [
            ("SHIREN_LIMITS_ENABLED", "maybe"),
            ("SHIREN_LIMITS_IDENTITY_PER_MINUTE", "-1"),
        ] {
            let err = c
                .apply_env(|key| (key == k).then(|| v.to_string()))
                .unwrap_err();
            assert!(err.to_string().contains(k), "{err}");
        }
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
    fn picture_url_and_callback_settings() {
        let c = Config::default();
        assert!(
            c.picture_url.allowed_hosts.is_empty(),
            "fetching is off by default"
        );
        assert_eq!(c.picture_url.max_bytes, 1 << 20);
        assert_eq!(c.picture_url.timeout_ms, 3000);
        assert_eq!(c.callback.max_attempts, 8);
        assert!(!c.testing.any());
        let mut c: Config = toml::from_str(
            "[picture_url]\nallowed_hosts = [\"*.oss.example\"]\nmax_redirects = 1\n[callback]\nmax_attempts = 3\n",
        )
        .unwrap();
        assert_eq!(
            c.picture_url.allowed_hosts,
            vec!["*.oss.example".to_string()]
        );
        assert_eq!(c.picture_url.max_redirects, 1);
        assert_eq!(c.callback.max_attempts, 3);
        let env: HashMap<&str, &str> = [
            ("SHIREN_PICTURE_URL_ALLOWED_HOSTS", "a.example, *.b.example"),
            ("SHIREN_PICTURE_URL_TIMEOUT_MS", "500"),
            ("SHIREN_CALLBACK_BACKOFF_INITIAL_MS", "20"),
            ("SHIREN_TEST_ALLOW_LOOPBACK_URLS", "1"),
        ]
        .into();
        c.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.picture_url.allowed_hosts, ["a.example", "*.b.example"]);
        assert_eq!(c.picture_url.timeout_ms, 500);
        assert_eq!(c.callback.backoff_initial_ms, 20);
        assert!(c.testing.allow_loopback_urls && c.testing.any());
    }

    #[test]
    fn short_admin_tokens_are_refused() {
        let mut c = Config::default();
        assert!(
            c.validate().is_ok(),
            "no admin token: console and admin API off"
        );
        c.admin_token = Some("x".repeat(MIN_ADMIN_TOKEN_CHARS - 1));
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("SHIREN_ADMIN_TOKEN") && err.contains("at least 16"),
            "{err}"
        );
        // Characters, not bytes: 15 CJK characters are 45 bytes and still too short.
        c.admin_token = Some("令".repeat(15));
        assert!(c.validate().is_err());
        c.admin_token = Some("x".repeat(MIN_ADMIN_TOKEN_CHARS));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn frame_ancestors_are_origins() {
        let mut c = Config::default();
        c.apply_env(|k| {
            (k == "SHIREN_FRAME_ANCESTORS").then(|| {
                "https://bank.example, https://*.bank.example  http://127.0.0.1:8443".into()
            })
        })
        .unwrap();
        assert!(c.validate().is_ok());
        assert_eq!(
            c.hosted.frame_ancestor_origins().collect::<Vec<_>>(),
            [
                "https://bank.example",
                "https://*.bank.example",
                "http://127.0.0.1:8443"
            ]
        );
        for bad in [
            "*",
            "https:",
            "'none'",
            "https://bank.example/path",
            "https://bank.example;script-src",
            "https://bank.example:",
            "https://bank.example:123456",
            "https://*",
            "javascript://x",
            "bank.example",
            "https://-x.example",
            "https://a..example",
        ] {
            let c: Config =
                toml::from_str(&format!("[hosted]\nframe_ancestors = [{bad:?}]\n")).unwrap();
            assert!(c.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_redacts_database_password() {
        let mut c = Config {
            database_url: Some("postgres://u:pa55word@h/db".into()),
            ..Config::default()
        };
        c.authority.secret = Some("authority-hmac-key".into());
        c.admin_token = Some("topsecret-admin".into());
        c.metrics_token = Some("topsecret-metrics".into());
        c.cloud.secret_key = Some("cafebabe-cloud-key".into());
        let s = format!("{c:?}");
        assert!(
            !s.contains("pa55word")
                && !s.contains("authority-hmac-key")
                && !s.contains("topsecret")
                && !s.contains("cafebabe"),
            "{s}"
        );
        assert!(s.contains("postgres://u:***@h/db"));
    }
}
