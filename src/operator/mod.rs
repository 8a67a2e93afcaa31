//! The operator's service: apps, scenes, access keys, verification search, statistics, billing reports, the
//! registry of identities, admin-token checks and console sessions. The console, the admin API and the CLI all call
//! it, so each flow exists once; none of them touches the database.
mod access_keys;
mod apps;
mod audit;
mod auth;
mod billing;
mod data_keys;
mod identities;
mod scenes;
mod search;
mod stats;

use sea_orm::{DatabaseConnection, DbErr};

use crate::domain::calendar::Calendar;
use crate::storage::ObjectStore;

pub use crate::db::apps::{App, AppStatus};
pub use crate::db::attempts::Attempt as StoredAttempt;
pub use crate::db::billing::{BillingFilter, BillingRecord, DailyTotal};
pub use crate::db::cloud_keys::StoredKey;
pub use crate::db::identities::Identity;
pub use crate::db::stats::Window;
pub use crate::db::verifications::{Subject, Verification};
pub use crate::domain::audit::AuditEntry;
pub use crate::domain::scene::{Scene, SceneChanges, SceneSettings, LIVENESS_LEVELS};
pub use audit::{Actor, ChainReport};
pub use auth::token_matches;
pub use auth::Attempt;
pub use billing::{checked_filter, month_filter};
pub use data_keys::{DataKeyStatus, RotationReport};
pub use scenes::SceneRequest;
pub use search::{Outcome, VerificationDetail, VerificationQuery};
pub use stats::{Overview, WindowStats};

/// What the operator's service needs of the configuration.
#[derive(Clone, Debug)]
pub struct OperatorSettings {
    /// The calendar of billing days (`[billing] utc_offset`), which the console's days also follow.
    pub calendar: Calendar,
    /// `[gateway] allow_legacy_rsa_keys`: merchant keys under 2048 bits are registered.
    pub allow_legacy_rsa_keys: bool,
    /// The admin token (`admin_token`); none disables the admin API and the console.
    pub admin_token: Option<String>,
}

impl OperatorSettings {
    pub fn from_config(config: &crate::config::Config) -> OperatorSettings {
        OperatorSettings {
            calendar: config.billing.utc_offset,
            allow_legacy_rsa_keys: config.gateway.allow_legacy_rsa_keys,
            admin_token: config.admin_token.clone(),
        }
    }
}

/// Why an operator's request was not done. The message is the operator's to read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value is missing, malformed or out of range.
    #[error("{0}")]
    Invalid(String),
    /// The app, scene, key or identity does not exist.
    #[error("{0}")]
    NotFound(String),
    /// It exists already.
    #[error("{0}")]
    Conflict(String),
    /// The database (or the object store) failed.
    #[error(transparent)]
    Unavailable(anyhow::Error),
}

impl From<DbErr> for Error {
    fn from(e: DbErr) -> Self {
        Error::Unavailable(e.into())
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// The operator's service over one database.
pub struct Operator {
    db: DatabaseConnection,
    /// The object store, whose data keys also seal the personal columns.
    store: ObjectStore,
    settings: OperatorSettings,
}

impl Operator {
    pub fn new(db: DatabaseConnection, store: ObjectStore, settings: OperatorSettings) -> Operator {
        Operator {
            db,
            store,
            settings,
        }
    }

    /// The service of a command: opens (and migrates) the configured database.
    pub async fn open(config: &crate::config::Config) -> anyhow::Result<Operator> {
        let settings = OperatorSettings::from_config(config);
        let db = crate::open_database(config).await?;
        let store = crate::open_store(config, &db).await?;
        Ok(Operator::new(db, store, settings))
    }

    /// Seconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        chrono::Utc::now().timestamp()
    }

    /// The calendar of billing days.
    pub fn calendar(&self) -> Calendar {
        self.settings.calendar
    }

    /// Whether the database answers (the readiness probe).
    pub async fn database_ready(&self) -> bool {
        crate::db::ping(&self.db).await
    }
}
