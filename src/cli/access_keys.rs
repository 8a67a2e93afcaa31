//! `shiren app access-key`: access keys of the cloud ID-verification API.
use clap::Subcommand;

use shiren::access_keys::SecretBox;
use shiren::config::Config;
use shiren::operator::Operator;

#[derive(Subcommand)]
pub enum AccessKeyCommand {
    /// Create an access key of an app; prints `AccessKeyId: …` and `AccessKeySecret: …`. The secret is shown only
    /// this once (it is stored encrypted).
    Create { app_id: String },
    /// List the access keys of an app (never their secrets).
    List { app_id: String },
    /// Disable an access key: its calls are then refused with InvalidAccessKeyId.Inactive.
    Disable { key_id: String },
}

/// A Unix time as `YYYY-MM-DDTHH:MM:SSZ`.
fn time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

pub async fn run(
    command: AccessKeyCommand,
    config: &Config,
    operator: &Operator,
) -> anyhow::Result<()> {
    match command {
        AccessKeyCommand::Create { app_id } => {
            let secrets = SecretBox::from_config(config)?;
            let (id, secret) = operator.create_access_key(&secrets, &app_id).await?;
            println!("AccessKeyId: {id}");
            println!("AccessKeySecret: {}", secret.expose());
            Ok(())
        }
        AccessKeyCommand::List { app_id } => {
            println!(
                "{:<24}  {:<8}  {:<20}  last used",
                "access_key_id", "status", "created"
            );
            for k in operator.access_keys(&app_id).await? {
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
            operator.disable_access_key(&key_id).await?;
            println!("disabled access key {key_id}");
            Ok(())
        }
    }
}
