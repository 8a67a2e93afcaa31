//! `shiren app`: register, list and disable merchant apps; their cloud-API access keys (`keys`).
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use shiren::config::Config;
use shiren::operator::Operator;

#[derive(Subcommand)]
pub enum AppCommand {
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
        command: super::access_keys::AccessKeyCommand,
    },
}

pub async fn run(command: AppCommand, config: Config) -> anyhow::Result<()> {
    let operator = Operator::open(&config).await?;
    match command {
        AppCommand::Create {
            app_id,
            name,
            public_key,
            return_url,
        } => {
            let text = std::fs::read_to_string(&public_key)
                .with_context(|| format!("cannot read {}", public_key.display()))?;
            let app = operator
                .create_app(&app_id, &name, &text, return_url)
                .await?;
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
            for app in operator.apps().await? {
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
            super::access_keys::run(command, &config, &operator).await
        }
        AppCommand::Disable { app_id } => {
            operator.disable_app(&app_id).await?;
            println!("disabled app {app_id}");
            Ok(())
        }
    }
}
