//! The database: connection, migrations, and queries that return domain types.
pub mod apps;
pub mod attempts;
pub mod billing;
pub mod callbacks;
pub mod cloud_keys;
pub mod console_sessions;
mod entities;
pub mod identities;
pub mod limits;
pub mod scenes;
pub mod stats;
pub mod verifications;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};

pub use apps::{App, AppStatus, NewApp};
pub use verifications::{NewVerification, Verification};

/// Opens the database at `url`; for SQLite the file's directory is created (0700) and WAL mode switched on, and the
/// file is created 0600 (its WAL and shared-memory files follow its mode), older ones tightened.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    if let Some(path) = sqlite_path(url) {
        let path = std::path::Path::new(&path);
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                crate::files::create_dir(dir)
                    .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", dir.display())))?;
            }
        }
        // Only where the URL lets SQLite create the file (`mode=rwc`, as the default URL has it): elsewhere a missing
        // file stays an error.
        if url.contains("mode=rwc") {
            crate::files::create_file_if_missing(path)
                .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", path.display())))?;
        }
        for f in crate::files::sqlite_files(path) {
            crate::files::tighten(&f);
        }
    }
    let mut opts = ConnectOptions::new(url.to_string());
    opts.sqlx_logging(false).max_connections(16);
    let db = Database::connect(opts).await?;
    if url.starts_with("sqlite:") {
        db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
    }
    Ok(db)
}

fn sqlite_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    (!path.is_empty() && path != ":memory:").then(|| path.to_string())
}

/// Brings the schema up to date.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Whether the database answers.
pub async fn ping(db: &DatabaseConnection) -> bool {
    db.ping().await.is_ok()
}

/// Whether an error is a unique-constraint violation (a concurrent insert won the race).
pub(crate) fn is_unique_violation(e: &DbErr) -> bool {
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn sqlite_paths() {
        assert_eq!(
            super::sqlite_path("sqlite://./data/x.sqlite?mode=rwc").as_deref(),
            Some("./data/x.sqlite")
        );
        assert_eq!(super::sqlite_path("sqlite::memory:"), None);
        assert_eq!(super::sqlite_path("postgres://h/db"), None);
    }
}
