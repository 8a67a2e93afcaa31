//! `shiren verification`: deleting a verification's personal data on instruction.
use clap::Subcommand;

use shiren::config::Config;
use shiren::operator::{Actor, Operator};

#[derive(Subcommand)]
pub enum VerificationCommand {
    /// Delete a verification's personal data (name, ID number, kept images). Its verdict and billing record stay;
    /// the audit log records the deletion.
    Delete { certify_id: String },
}

pub async fn run(command: VerificationCommand, config: Config) -> anyhow::Result<()> {
    let operator = Operator::open(&config).await?;
    match command {
        VerificationCommand::Delete { certify_id } => {
            operator
                .delete_verification(&certify_id, Actor::Cli)
                .await?;
            println!("deleted the personal data of {certify_id}");
            Ok(())
        }
    }
}
