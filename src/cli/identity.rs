//! `shiren identity`: the local identity registry (import from CSV with photos, list, delete).
use std::path::PathBuf;

use clap::Subcommand;

use shiren::authority::import::{mask_cert_no, mask_name};
use shiren::config::Config;
use shiren::operator::Operator;

#[derive(Subcommand)]
pub enum IdentityCommand {
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

pub async fn run(command: IdentityCommand, config: Config) -> anyhow::Result<()> {
    let operator = Operator::open(&config).await?;
    match command {
        IdentityCommand::Import { csv } => {
            let engine = {
                let config = config.clone();
                tokio::task::spawn_blocking(move || super::face::load_engine(&config)).await??
            };
            let report = operator
                .import_identities(&engine, &csv, |done, total| {
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
                Err(super::RowsSkipped(report.rejected.len()).into())
            }
        }
        IdentityCommand::List { full } => {
            for i in operator.identities().await? {
                let (no, name) = if full {
                    (i.cert_no.clone(), i.cert_name.clone())
                } else {
                    (mask_cert_no(&i.cert_no), mask_name(&i.cert_name))
                };
                println!("{no}\t{name}\t{}\t{}", i.embedding_model, i.updated_at);
            }
            Ok(())
        }
        IdentityCommand::Delete { cert_no } => {
            let (i, photo_kept) = operator.delete_identity(&cert_no).await?;
            if let Some(e) = photo_kept {
                eprintln!("warning: the photo could not be removed: {e}");
            }
            println!("deleted {}", mask_cert_no(&i.cert_no));
            Ok(())
        }
    }
}
