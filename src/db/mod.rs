//! The database: connection, migrations, and queries that return domain types.
pub mod apps;
pub mod attempts;
pub mod audit;
pub mod billing;
pub mod callbacks;
pub mod cloud_keys;
pub mod console_sessions;
pub mod data_keys;
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

/// Opens the database at `url` (for SQLite in WAL mode). A SQLite file's directory and mode are the caller's:
/// `files::prepare_sqlite` makes them before the server connects.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url.to_string());
    opts.sqlx_logging(false).max_connections(16);
    // Deleted or rewritten rows (erased personal data, values resealed under a new key) are overwritten with zeros
    // in the file, not left in free pages. A per-connection setting: every connection of the pool gets it.
    opts.map_sqlx_sqlite_opts(|o| o.pragma("secure_delete", "on"));
    let db = Database::connect(opts).await?;
    if url.starts_with("sqlite:") {
        db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
    }
    Ok(db)
}

/// Brings the schema up to date.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Whether the database answers.
pub async fn ping(db: &DatabaseConnection) -> bool {
    db.ping().await.is_ok()
}

/// A condition: the stored text is neither empty nor sealed under the data key `key_id` (see `domain::seal`).
pub(crate) fn not_current(column: impl sea_orm::ColumnTrait, key_id: &str) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(column.ne(""))
        .add(column.not_like(format!("s1.{key_id}.%")))
}

/// Whether an error is a unique-constraint violation (a concurrent insert won the race).
pub(crate) fn is_unique_violation(e: &DbErr) -> bool {
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// A fresh, migrated SQLite database in a temporary directory, for unit tests; the directory lives as long as the
/// returned guard.
#[cfg(test)]
pub async fn fresh_sqlite() -> (tempfile::TempDir, DatabaseConnection) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("t.sqlite").display()
    );
    let db = connect(&url).await.unwrap();
    migrate(&db).await.unwrap();
    (dir, db)
}
