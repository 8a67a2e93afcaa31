//! `shiren scene`: create, list and change scenes.
use clap::Subcommand;

use shiren::config::Config;
use shiren::domain::scene::{SettingNames, SettingsText};
use shiren::operator::{Operator, Scene, SceneChanges, SceneRequest};

#[derive(Subcommand)]
pub enum SceneCommand {
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
pub struct SceneArgs {
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

/// What the messages call the settings: their flags.
const FLAGS: SettingNames = SettingNames {
    match_far: "--match-far",
    max_attempts: "--max-attempts",
    retention_days: "--retention-days",
    liveness: "--liveness",
    keep_photos: "--keep-photos",
};

impl SceneArgs {
    /// The changes the flags ask for: a flag not given leaves its setting alone, `default` returns it to the
    /// server's.
    fn changes(&self) -> anyhow::Result<SceneChanges> {
        SettingsText {
            match_far: self.match_far.as_deref(),
            max_attempts: self.max_attempts.as_deref(),
            retention_days: self.retention_days.as_deref(),
            liveness: self.liveness.as_deref(),
            keep_photos: self.keep_photos.as_deref(),
        }
        .changes(&FLAGS)
        .map_err(anyhow::Error::msg)
    }
}

fn print_scene(s: &Scene) {
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

pub async fn run(command: SceneCommand, config: Config) -> anyhow::Result<()> {
    let operator = Operator::open(&config).await?;
    match command {
        SceneCommand::Create {
            app_id,
            name,
            scene_id,
            product,
            settings,
            default,
        } => {
            let scene = operator
                .create_scene(SceneRequest {
                    app_id,
                    name,
                    scene_id,
                    product,
                    settings: settings.changes()?,
                    make_default: default,
                })
                .await?;
            println!("{}", scene.scene_id);
            Ok(())
        }
        SceneCommand::List { app_id } => {
            for s in operator.scenes(app_id.as_deref()).await? {
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
            let changes = SceneChanges {
                name,
                ..settings.changes()?
            };
            print_scene(&operator.update_scene(scene_id, changes, default).await?);
            Ok(())
        }
    }
}
