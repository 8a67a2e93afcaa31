//! The `shiren` command line: serve, migrate, manage merchant apps, print the gateway key.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use shiren::config::Config;
use shiren::db::{self, AppStatus, NewApp};

#[derive(Parser)]
#[command(
    name = "shiren",
    version,
    about = "Real-person verification (实人认证) speaking the protocols merchants already use"
)]
struct Cli {
    /// Config file (default: ./shiren.toml when present). Environment variables SHIREN_* override it.
    #[arg(long, global = true, env = "SHIREN_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run migrations and serve HTTP.
    Serve,
    /// Run database migrations and exit.
    Migrate,
    /// Manage merchant apps.
    App {
        #[command(subcommand)]
        command: AppCommand,
    },
    /// Print the gateway public key (PEM SubjectPublicKeyInfo): the "Alipay public key" merchants configure.
    GatewayKey,
    /// The face engine: evaluation on a labelled photo set.
    Face {
        #[command(subcommand)]
        command: FaceCommand,
    },
    /// Face models: provisioning and conversion.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// The local identity registry the decision compares against.
    Identity {
        #[command(subcommand)]
        command: IdentityCommand,
    },
    /// Scenes (认证场景): groups of verifications with their own thresholds.
    Scene {
        #[command(subcommand)]
        command: SceneCommand,
    },
    /// Metering: billing records and daily totals.
    Billing {
        #[command(subcommand)]
        command: BillingCommand,
    },
    /// Print the admin API's OpenAPI document (JSON).
    Openapi,
}

#[derive(Subcommand)]
enum SceneCommand {
    /// Create a scene of an app; prints its id.
    Create {
        #[arg(long)]
        app_id: String,
        #[arg(long)]
        name: String,
        /// The id to use (default: the next free one).
        #[arg(long)]
        scene_id: Option<i64>,
        /// Product code of its verifications.
        #[arg(long, default_value = "FACE")]
        product: String,
        #[command(flatten)]
        settings: SceneArgs,
        /// Make it the app's default scene (used by the gateway).
        #[arg(long)]
        default: bool,
    },
    /// List scenes (of one app with --app-id).
    List {
        #[arg(long)]
        app_id: Option<String>,
    },
    /// Change a scene's name or thresholds; `--match-far default` (and so on) returns to the server's setting.
    Update {
        scene_id: i64,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        settings: SceneArgs,
        /// Make it the app's default scene (used by the gateway).
        #[arg(long)]
        default: bool,
    },
}

#[derive(clap::Args)]
struct SceneArgs {
    /// Target false-accept rate of the face match: 1e-2, 1e-3 or 1e-4 (default: the server's).
    #[arg(long)]
    match_far: Option<String>,
    /// Attempts a person gets, 1-5 (default: the server's).
    #[arg(long)]
    max_attempts: Option<String>,
    /// Days a kept face image stays (default: the server's).
    #[arg(long)]
    retention_days: Option<String>,
    /// Whether face images may be kept at all: yes (as the request asks) or no (never).
    #[arg(long)]
    keep_photos: Option<String>,
    /// Liveness strictness: standard (an open mouth plus one or two actions) or strict (an open mouth plus two
    /// actions, each held longer); default: standard.
    #[arg(long)]
    liveness: Option<String>,
}

#[derive(Subcommand)]
enum BillingCommand {
    /// CSV (header row first) of the billing records of the days FROM to TO (inclusive, days of the billing calendar) on stdout.
    Export {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long = "app")]
        app_id: Option<String>,
    },
    /// Totals per day, app, scene, product and event of the days FROM to TO (inclusive, days of the billing calendar).
    Daily {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long = "app")]
        app_id: Option<String>,
    },
}

#[derive(Subcommand)]
enum IdentityCommand {
    /// Import a CSV with the columns cert_no,cert_name,photo (photo paths relative to the CSV). Bad rows are
    /// reported with their line number and skipped; the exit status is 3 when any row was skipped.
    Import {
        #[arg(long)]
        csv: PathBuf,
    },
    /// List registered identities (ID numbers and names masked unless --full).
    List {
        #[arg(long)]
        full: bool,
    },
    /// Delete an identity and its photo.
    Delete { cert_no: String },
}

#[derive(Subcommand)]
enum FaceCommand {
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

#[derive(Subcommand)]
enum ModelsCommand {
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

#[derive(Subcommand)]
enum AppCommand {
    /// Register a merchant app with its RSA public key (at least 2048 bits unless `[gateway] allow_legacy_rsa_keys`).
    Create {
        #[arg(long)]
        app_id: String,
        #[arg(long)]
        name: String,
        /// File with the app's public key: PEM SubjectPublicKeyInfo, PKCS#1 PEM, or the bare base64 body.
        #[arg(long)]
        public_key: PathBuf,
        /// Allowed prefix of `merchant_config.return_url` (repeatable): `https://m.example/back`, or an app scheme
        /// such as `alipays://`. Without any, every http(s) URL is allowed (and no app scheme).
        #[arg(long = "return-url")]
        return_url: Vec<String>,
    },
    /// List registered apps.
    List,
    /// Disable an app: its calls are then refused with isv.invalid-app-id.
    Disable { app_id: String },
    /// Access keys of the cloud ID-verification API (`POST /`, version 2019-03-07).
    AccessKey {
        #[command(subcommand)]
        command: AccessKeyCommand,
    },
}

#[derive(Subcommand)]
enum AccessKeyCommand {
    /// Create an access key of an app; prints `AccessKeyId: …` and `AccessKeySecret: …`. The secret is shown only
    /// this once (it is stored encrypted).
    Create { app_id: String },
    /// List the access keys of an app (never their secrets).
    List { app_id: String },
    /// Disable an access key: its calls are then refused with InvalidAccessKeyId.Inactive.
    Disable { key_id: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    shiren::telemetry::init(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<RowsSkipped>().is_some() => {
            eprintln!("warning: {e}");
            ExitCode::from(EXIT_ROWS_SKIPPED)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => shiren::serve(config).await,
        Command::Migrate => {
            shiren::open_database(&config).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::GatewayKey => {
            let key = shiren::protocol::alipay::key_file::load_or_create(
                &config.effective_gateway_key_file(),
            )?;
            print!("{}", key.public_key().to_pem());
            Ok(())
        }
        Command::Face { command } => face_command(command, &config),
        Command::Identity { command } => identity_command(command, config).await,
        Command::Scene { command } => scene_command(command, config).await,
        Command::Billing { command } => billing_command(command, config).await,
        Command::Openapi => {
            println!("{}", shiren::api::admin::spec_json());
            Ok(())
        }
        Command::Models { command } => match command {
            ModelsCommand::Install => {
                let dir = config.effective_models_dir();
                let manifest = shiren::face::models::provision::Manifest::builtin();
                let started = std::time::Instant::now();
                let installed = shiren::face::models::provision::ensure(
                    &dir,
                    &manifest,
                    &shiren::face::models::provision::StderrProgress,
                )?;
                println!(
                    "models ready in {} ({} models, runtime {}) after {:.1} s",
                    installed.dir.display(),
                    installed.models.len(),
                    installed.runtime_lib.display(),
                    started.elapsed().as_secs_f64()
                );
                Ok(())
            }
            ModelsCommand::Convert { tfjs, out } => {
                let json = std::fs::read(&tfjs)
                    .with_context(|| format!("cannot read {}", tfjs.display()))?;
                let dir = tfjs.parent().map(PathBuf::from).unwrap_or_default();
                let name = tfjs
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("model")
                    .to_string();
                let model = shiren::face::models::tfjs::convert(
                    &json,
                    &|p| std::fs::read(dir.join(p)),
                    &name,
                )?;
                std::fs::write(&out, model.encode())
                    .with_context(|| format!("cannot write {}", out.display()))?;
                println!(
                    "wrote {} ({} nodes, {} initializers)",
                    out.display(),
                    model.nodes.len(),
                    model.initializers.len()
                );
                Ok(())
            }
        },
        Command::App { command } => {
            let database = shiren::open_database(&config).await?;
            match command {
                AppCommand::Create {
                    app_id,
                    name,
                    public_key,
                    return_url,
                } => {
                    let text = std::fs::read_to_string(&public_key)
                        .with_context(|| format!("cannot read {}", public_key.display()))?;
                    let new = NewApp::parse(
                        &app_id,
                        &name,
                        &text,
                        return_url,
                        config.gateway.allow_legacy_rsa_keys,
                    )
                    .map_err(anyhow::Error::msg)?;
                    let app = db::apps::insert(&database, new, now()).await?;
                    println!(
                        "created app {} ({}, RSA-{})",
                        app.app_id,
                        app.name,
                        app.public_key.bits()
                    );
                    Ok(())
                }
                AppCommand::List => {
                    println!(
                        "{:<32}  {:<8}  {:<24}  return URLs",
                        "app_id", "status", "name"
                    );
                    for app in db::apps::list(&database).await? {
                        println!(
                            "{:<32}  {:<8}  {:<24}  {}",
                            app.app_id,
                            app.status.as_str(),
                            app.name,
                            if app.return_url_prefixes.is_empty() {
                                "(any)".to_string()
                            } else {
                                app.return_url_prefixes.join(" ")
                            }
                        );
                    }
                    Ok(())
                }
                AppCommand::AccessKey { command } => {
                    access_key_command(command, &config, &database).await
                }
                AppCommand::Disable { app_id } => {
                    anyhow::ensure!(
                        db::apps::set_status(&database, &app_id, AppStatus::Disabled, now())
                            .await?,
                        "no app with id {app_id}"
                    );
                    println!("disabled app {app_id}");
                    Ok(())
                }
            }
        }
    }
}

async fn access_key_command(
    command: AccessKeyCommand,
    config: &Config,
    database: &sea_orm::DatabaseConnection,
) -> anyhow::Result<()> {
    match command {
        AccessKeyCommand::Create { app_id } => {
            anyhow::ensure!(
                db::apps::find(database, &app_id).await?.is_some(),
                "no app with id {app_id}"
            );
            let secrets = shiren::access_keys::SecretBox::from_config(config)?;
            let (id, secret) =
                shiren::access_keys::create_key(database, &secrets, &app_id, now()).await?;
            println!("AccessKeyId: {id}");
            println!("AccessKeySecret: {}", secret.expose());
            Ok(())
        }
        AccessKeyCommand::List { app_id } => {
            println!(
                "{:<24}  {:<8}  {:<20}  last used",
                "access_key_id", "status", "created"
            );
            let time = |t: i64| {
                chrono::DateTime::from_timestamp(t, 0)
                    .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                    .unwrap_or_default()
            };
            for k in db::cloud_keys::list(database, &app_id).await? {
                println!(
                    "{:<24}  {:<8}  {:<20}  {}",
                    k.access_key_id,
                    if k.active { "active" } else { "disabled" },
                    time(k.created_at),
                    k.last_used_at.map(time).unwrap_or_else(|| "never".into())
                );
            }
            Ok(())
        }
        AccessKeyCommand::Disable { key_id } => {
            anyhow::ensure!(
                db::cloud_keys::disable(database, &key_id).await?,
                "no access key with id {key_id}"
            );
            println!("disabled access key {key_id}");
            Ok(())
        }
    }
}

/// A threshold argument: a value, or `default` to use the server's setting.
fn threshold<T: std::str::FromStr>(
    arg: Option<&str>,
    name: &str,
) -> anyhow::Result<Option<Option<T>>> {
    match arg.map(str::trim) {
        None => Ok(None),
        Some("default") => Ok(Some(None)),
        Some(v) => v
            .parse()
            .map(|v| Some(Some(v)))
            .map_err(|_| anyhow::anyhow!("--{name}: {v:?} is not a valid value")),
    }
}

fn yes_no(arg: Option<&str>) -> anyhow::Result<Option<bool>> {
    match arg.map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(None),
        Some(v) if matches!(v.as_str(), "yes" | "true" | "1") => Ok(Some(true)),
        Some(v) if matches!(v.as_str(), "no" | "false" | "0") => Ok(Some(false)),
        Some(v) => anyhow::bail!("--keep-photos must be yes or no, not {v:?}"),
    }
}

fn print_scene(s: &db::scenes::Scene) {
    let or_default = |v: Option<String>| v.unwrap_or_else(|| "(server)".into());
    println!(
        "{:<8}  {:<32}  {:<24}  {:<6}  far {:<8}  attempts {:<8}  retention {:<8}  photos {:<3}  liveness {:<8}{}",
        s.scene_id,
        s.app_id,
        s.name,
        s.product,
        or_default(s.match_far.clone()),
        or_default(s.max_attempts.map(|v| v.to_string())),
        or_default(s.retention_days.map(|v| format!("{v}d"))),
        if s.keep_photos { "yes" } else { "no" },
        s.liveness.as_deref().unwrap_or("standard"),
        if s.is_default { "  default" } else { "" },
    );
}

async fn scene_command(command: SceneCommand, config: Config) -> anyhow::Result<()> {
    use db::scenes::{self, NewScene, SceneChanges, SceneSettings};
    let database = shiren::open_database(&config).await?;
    match command {
        SceneCommand::Create {
            app_id,
            name,
            scene_id,
            product,
            settings,
            default,
        } => {
            anyhow::ensure!(
                db::apps::find(&database, &app_id).await?.is_some(),
                "no app with id {app_id}"
            );
            let s = SceneSettings {
                match_far: threshold(settings.match_far.as_deref(), "match-far")?.flatten(),
                max_attempts: threshold(settings.max_attempts.as_deref(), "max-attempts")?
                    .flatten(),
                retention_days: threshold(settings.retention_days.as_deref(), "retention-days")?
                    .flatten(),
                liveness: threshold(settings.liveness.as_deref(), "liveness")?.flatten(),
            };
            let scene = scenes::insert(
                &database,
                NewScene {
                    scene_id,
                    app_id,
                    name,
                    product: product.trim().to_ascii_uppercase(),
                    settings: s,
                    keep_photos: yes_no(settings.keep_photos.as_deref())?.unwrap_or(true),
                    is_default: false,
                },
                now(),
            )
            .await?;
            if default {
                scenes::set_default(&database, scene.scene_id, now()).await?;
            }
            println!("{}", scene.scene_id);
            Ok(())
        }
        SceneCommand::List { app_id } => {
            for s in scenes::list(&database, app_id.as_deref()).await? {
                print_scene(&s);
            }
            Ok(())
        }
        SceneCommand::Update {
            scene_id,
            name,
            settings,
            default,
        } => {
            let scene = scenes::update(
                &database,
                scene_id,
                SceneChanges {
                    name,
                    match_far: threshold(settings.match_far.as_deref(), "match-far")?,
                    max_attempts: threshold(settings.max_attempts.as_deref(), "max-attempts")?,
                    retention_days: threshold(
                        settings.retention_days.as_deref(),
                        "retention-days",
                    )?,
                    liveness: threshold(settings.liveness.as_deref(), "liveness")?,
                    keep_photos: yes_no(settings.keep_photos.as_deref())?,
                },
                now(),
            )
            .await?;
            if default {
                scenes::set_default(&database, scene_id, now()).await?;
            }
            match scenes::find(&database, scene.scene_id).await? {
                Some(s) => print_scene(&s),
                None => print_scene(&scene),
            }
            Ok(())
        }
    }
}

async fn billing_command(command: BillingCommand, config: Config) -> anyhow::Result<()> {
    use shiren::billing::parse_day;
    use shiren::db::billing::BillingFilter;
    let filter = |from: &str, to: &str, app_id: Option<String>| -> anyhow::Result<BillingFilter> {
        let from = parse_day(from).context("--from must be a day, YYYY-MM-DD")?;
        let to = parse_day(to).context("--to must be a day, YYYY-MM-DD")?;
        anyhow::ensure!(from <= to, "--from must not be after --to");
        Ok(BillingFilter {
            from_day: Some(from),
            to_day: Some(to),
            app_id,
            ..Default::default()
        })
    };
    match command {
        BillingCommand::Export { from, to, app_id } => {
            let f = filter(&from, &to, app_id)?;
            let database = shiren::open_database(&config).await?;
            let mut out = std::io::stdout().lock();
            shiren::billing::export_csv(&database, &f, &mut out).await?;
            Ok(())
        }
        BillingCommand::Daily { from, to, app_id } => {
            let f = filter(&from, &to, app_id)?;
            let database = shiren::open_database(&config).await?;
            println!("day,app_id,scene_id,product,event,count");
            for t in db::billing::daily(&database, &f).await? {
                println!(
                    "{},{},{},{},{},{}",
                    t.day,
                    shiren::billing::csv_field(&t.app_id),
                    t.scene_id.map(|s| s.to_string()).unwrap_or_default(),
                    t.product,
                    t.event,
                    t.count
                );
            }
            Ok(())
        }
    }
}

/// Skipped rows make `identity import` exit with this status.
const EXIT_ROWS_SKIPPED: u8 = 3;

#[derive(Debug)]
struct RowsSkipped(usize);

impl std::fmt::Display for RowsSkipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} row(s) skipped", self.0)
    }
}

impl std::error::Error for RowsSkipped {}

async fn identity_command(command: IdentityCommand, config: Config) -> anyhow::Result<()> {
    use shiren::authority::import;
    let database = shiren::open_database(&config).await?;
    let store = shiren::storage::ObjectStore::new(config.data_dir.join("objects"));
    match command {
        IdentityCommand::Import { csv } => {
            let engine = {
                let config = config.clone();
                tokio::task::spawn_blocking(move || load_engine(&config)).await??
            };
            let report =
                import::import_csv(&database, &store, &engine, &csv, now(), |done, total| {
                    eprint!("\rimporting {done}/{total}");
                    if done == total {
                        eprintln!();
                    }
                })
                .await?;
            for r in &report.rejected {
                eprintln!("line {}: {} (skipped)", r.line, r.reason);
            }
            println!(
                "imported {} identit{}, skipped {}",
                report.imported,
                if report.imported == 1 { "y" } else { "ies" },
                report.rejected.len()
            );
            if report.rejected.is_empty() {
                Ok(())
            } else {
                Err(RowsSkipped(report.rejected.len()).into())
            }
        }
        IdentityCommand::List { full } => {
            for i in db::identities::list(&database).await? {
                let (no, name) = if full {
                    (i.cert_no.clone(), i.cert_name.clone())
                } else {
                    (
                        import::mask_cert_no(&i.cert_no),
                        import::mask_name(&i.cert_name),
                    )
                };
                println!("{no}\t{name}\t{}\t{}", i.embedding_model, i.updated_at);
            }
            Ok(())
        }
        IdentityCommand::Delete { cert_no } => {
            let cert_no = cert_no.trim().to_ascii_uppercase();
            let Some(i) = db::identities::delete(&database, &cert_no).await? else {
                anyhow::bail!("no identity with that ID number");
            };
            if let Err(e) = store.delete(&i.photo_key).await {
                eprintln!("warning: the photo could not be removed: {e}");
            }
            println!("deleted {}", import::mask_cert_no(&i.cert_no));
            Ok(())
        }
    }
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

fn load_engine(config: &Config) -> anyhow::Result<shiren::face::engine::OnnxEngine> {
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

fn face_command(command: FaceCommand, config: &Config) -> anyhow::Result<()> {
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
            let target = shiren::face::compare::TargetFar::parse(&far)
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
