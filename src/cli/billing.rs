//! `shiren billing`: the billing records of a period as CSV, and their daily totals.
use anyhow::Context;
use clap::Subcommand;

use shiren::billing::{csv_field, parse_day};
use shiren::config::Config;
use shiren::operator::{checked_filter, BillingFilter, Operator};

#[derive(Subcommand)]
pub enum BillingCommand {
    /// CSV (header row first) of the billing records of the days FROM to TO (inclusive, days of the billing calendar) on stdout.
    Export {
        #[command(flatten)]
        period: Period,
    },
    /// Totals per day, app, scene, product and event of the days FROM to TO (inclusive, days of the billing calendar).
    Daily {
        #[command(flatten)]
        period: Period,
    },
}

/// The days (and the app) a report covers.
#[derive(clap::Args)]
pub struct Period {
    #[arg(long)]
    from: String,
    #[arg(long)]
    to: String,
    #[arg(long = "app")]
    app_id: Option<String>,
}

impl Period {
    /// The filter of `--from`, `--to` and `--app`.
    fn filter(self) -> anyhow::Result<BillingFilter> {
        let from = parse_day(&self.from).context("--from must be a day, YYYY-MM-DD")?;
        let to = parse_day(&self.to).context("--to must be a day, YYYY-MM-DD")?;
        Ok(checked_filter(BillingFilter {
            from_day: Some(from),
            to_day: Some(to),
            app_id: self.app_id,
            ..Default::default()
        })?)
    }
}

pub async fn run(command: BillingCommand, config: Config) -> anyhow::Result<()> {
    match command {
        BillingCommand::Export { period } => {
            let f = period.filter()?;
            let operator = Operator::open(&config).await?;
            let mut out = std::io::stdout().lock();
            operator.export_billing_csv(&f, &mut out).await?;
            Ok(())
        }
        BillingCommand::Daily { period } => {
            let f = period.filter()?;
            let operator = Operator::open(&config).await?;
            println!("day,app_id,scene_id,product,event,count");
            for t in operator.billing_daily(&f).await? {
                println!(
                    "{},{},{},{},{},{}",
                    t.day,
                    csv_field(&t.app_id),
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
