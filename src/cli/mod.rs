//! The `shiren` command line: one module per command group. Commands reach the database only through the
//! operator's service (`shiren::operator`), as the console and the admin API do.
mod access_keys;
mod app;
mod audit;
mod billing;
mod face;
mod identity;
mod keys;
mod models;
mod scene;
mod server;
mod verification;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use shiren::config::Config;

#[derive(Parser)]
#[command(
    name = "shiren",
    version,
    about = "Real-person verification (实人认证) speaking the protocols merchants already use"
)]
pub struct Cli {
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
        command: app::AppCommand,
    },
    /// Print the gateway public key (PEM SubjectPublicKeyInfo): the "Alipay public key" merchants configure.
    GatewayKey,
    /// The face engine: evaluation on a labelled photo set.
    Face {
        #[command(subcommand)]
        command: face::FaceCommand,
    },
    /// Face models: provisioning and conversion.
    Models {
        #[command(subcommand)]
        command: models::ModelsCommand,
    },
    /// The local identity registry the decision compares against.
    Identity {
        #[command(subcommand)]
        command: identity::IdentityCommand,
    },
    /// Scenes (认证场景): groups of verifications with their own thresholds.
    Scene {
        #[command(subcommand)]
        command: scene::SceneCommand,
    },
    /// Metering: billing records and daily totals.
    Billing {
        #[command(subcommand)]
        command: billing::BillingCommand,
    },
    /// Verifications: deleting personal data on instruction.
    Verification {
        #[command(subcommand)]
        command: verification::VerificationCommand,
    },
    /// The audit log: list it, check its chain.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// The data keys that seal personal data at rest: status and rotation.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Print the admin API's OpenAPI document (JSON).
    Openapi,
}

/// Skipped rows make `identity import` exit with this status.
const EXIT_ROWS_SKIPPED: u8 = 3;

/// Rows of an import were skipped: a warning and [`EXIT_ROWS_SKIPPED`], not a failure.
#[derive(Debug)]
struct RowsSkipped(usize);

impl std::fmt::Display for RowsSkipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} row(s) skipped", self.0)
    }
}

impl std::error::Error for RowsSkipped {}

/// Loads the config, runs the command, and turns its outcome into the exit status: 0, 1 on an error, 2 when the
/// config cannot be loaded, 3 when an import skipped rows.
pub fn run(cli: Cli) -> ExitCode {
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
    match runtime.block_on(dispatch(cli.command, config)) {
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

async fn dispatch(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => shiren::serve(config).await,
        Command::Migrate => server::migrate(&config).await,
        Command::GatewayKey => server::gateway_key(&config),
        Command::Openapi => server::openapi(),
        Command::Face { command } => face::run(command, &config),
        Command::Models { command } => models::run(command, &config),
        Command::Identity { command } => identity::run(command, config).await,
        Command::Scene { command } => scene::run(command, config).await,
        Command::Billing { command } => billing::run(command, config).await,
        Command::App { command } => app::run(command, config).await,
        Command::Keys { command } => keys::run(command, config).await,
        Command::Verification { command } => verification::run(command, config).await,
        Command::Audit { command } => audit::run(command, config).await,
    }
}
