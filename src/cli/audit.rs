//! `shiren audit`: the audit log of deletions, purges, key rotations and views of personal data.
use clap::Subcommand;

use shiren::config::Config;
use shiren::operator::Operator;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Print the newest entries, newest first (tab-separated: number, time, who, what, target, detail).
    List {
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
    /// Check the whole log's chain: exits 1 naming the first entry that was altered, removed or inserted.
    Verify,
}

fn time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

pub async fn run(command: AuditCommand, config: Config) -> anyhow::Result<()> {
    let operator = Operator::open(&config).await?;
    match command {
        AuditCommand::List { limit } => {
            for e in operator.audit_entries(None, limit).await? {
                let r = &e.record;
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    e.seq,
                    time(r.at),
                    r.actor,
                    r.action.as_str(),
                    r.target,
                    r.detail
                );
            }
            Ok(())
        }
        AuditCommand::Verify => {
            let report = operator
                .verify_audit_log(|n| eprint!("\rchecked {n} entries"))
                .await?;
            eprintln!();
            match report.broken {
                None => {
                    println!("the audit log is intact: {} entries", report.checked);
                    Ok(())
                }
                Some(e) => anyhow::bail!(
                    "the audit log is broken after {} intact entries: {e}",
                    report.checked
                ),
            }
        }
    }
}
