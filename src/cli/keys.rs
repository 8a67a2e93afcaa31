//! `shiren keys`: the data keys that seal personal data at rest.
use clap::Subcommand;

use shiren::config::Config;
use shiren::operator::Operator;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Show the data keys this server holds, those the database knows, and how many values each still seals.
    Status,
    /// Put a new data key in use and move every sealed value to it, in batches, with progress. Interrupted, it
    /// resumes where it stopped when run again (the new key stays; the old one is dropped only at the end).
    Rotate,
}

pub async fn run(command: KeysCommand, config: Config) -> anyhow::Result<()> {
    let operator = Operator::open(&config).await?;
    match command {
        KeysCommand::Status => {
            let s = operator.data_key_status().await?;
            println!("current key: {}", s.current);
            if !s.older.is_empty() {
                println!(
                    "older keys:  {} (a rotation is not finished: run `shiren keys rotate`)",
                    s.older.join(", ")
                );
            }
            println!("registered in the database: {}", s.registered.join(", "));
            println!(
                "not under the current key: {} verification(s), {} identit(ies), {} object(s) to check",
                s.pending.verifications, s.pending.identities, s.pending.objects
            );
            Ok(())
        }
        KeysCommand::Rotate => {
            let report = operator
                .rotate_data_keys(
                    |step| eprintln!("{step}"),
                    |kind, done, total| {
                        let pct = (done.min(total) * 100).checked_div(total).unwrap_or(100);
                        eprint!(
                            "\r  {kind:<13} {done:>8}/{total:<8} {}{} {pct:>3}%",
                            "#".repeat((pct / 4) as usize),
                            ".".repeat(25 - (pct / 4) as usize)
                        );
                        if done >= total {
                            eprintln!();
                        }
                    },
                )
                .await?;
            println!(
                "data key {} now seals everything: {} verification(s), {} identit(ies), {} object(s) resealed; \
                 retired: {}",
                report.current,
                report.resealed.verifications,
                report.resealed.identities,
                report.resealed.objects,
                if report.retired.is_empty() { "none".to_string() } else { report.retired.join(", ") }
            );
            Ok(())
        }
    }
}
