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
use std::time::{Duration, Instant};

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, Statement, TransactionTrait,
};

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

/// How long an instance waits for another one's migration before it gives up.
const MIGRATION_WAIT: Duration = Duration::from_secs(600);

/// Brings the schema up to date, one instance at a time: any number of instances may start together on a fresh
/// database; the first migrates while the others wait for it, then find nothing left to do. The lock is the
/// database's own, held on the connection that migrates: PostgreSQL's transaction-scoped advisory lock, MySQL's
/// named lock, SQLite's write lock on the file (taken by the transaction's first statement, a write).
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let txn = begin_migration(db, backend).await?;
    let migrated = Migrator::up(&txn, None).await;
    if backend == DbBackend::MySql {
        // A named lock belongs to the session, not to the transaction (DDL commits implicitly in MySQL).
        txn.execute_unprepared("DO RELEASE_LOCK('shiren_migration')")
            .await?;
    }
    migrated?;
    txn.commit().await
}

/// A transaction on one connection that holds the migration lock.
async fn begin_migration(
    db: &DatabaseConnection,
    backend: DbBackend,
) -> Result<DatabaseTransaction, DbErr> {
    let started = Instant::now();
    loop {
        let txn = db.begin().await?;
        let locked = match backend {
            // 0x7368_6972 is "shir": the same key for every shiren database on the server is fine, as a
            // migration takes well under a second.
            DbBackend::Postgres => txn
                .execute_unprepared("SELECT pg_advisory_xact_lock(1936222578)")
                .await
                .map(|_| true),
            DbBackend::MySql => {
                let wait = MIGRATION_WAIT.as_secs();
                let got = txn
                    .query_one(Statement::from_string(
                        backend,
                        format!("SELECT GET_LOCK('shiren_migration', {wait}) AS got"),
                    ))
                    .await?
                    .and_then(|row| row.try_get::<Option<i64>>("", "got").ok().flatten());
                Ok(got == Some(1))
            }
            // Setting the header's application id is a write: the transaction takes the file's write lock at
            // once, waiting up to SQLite's busy timeout for another writer, and errs if it cannot.
            DbBackend::Sqlite => match txn
                .execute_unprepared("PRAGMA application_id = 1936222578")
                .await
            {
                Ok(_) => Ok(true),
                Err(e) if is_busy(&e) => Ok(false),
                Err(e) => Err(e),
            },
        };
        match locked {
            Ok(true) => return Ok(txn),
            Ok(false) if started.elapsed() < MIGRATION_WAIT && backend == DbBackend::Sqlite => {
                txn.rollback().await?;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(false) => {
                return Err(DbErr::Custom(format!(
                    "another instance held the migration lock for more than {} s",
                    MIGRATION_WAIT.as_secs()
                )))
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether SQLite answered "database is locked" (another connection holds the write lock).
fn is_busy(e: &DbErr) -> bool {
    e.to_string().contains("database is locked")
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

/// Inserts a row unless one with the same `key` columns exists; whether it inserted. PostgreSQL and SQLite: `ON
/// CONFLICT (key) DO NOTHING`. MySQL has no such clause (and sea-query's `ON DUPLICATE KEY UPDATE k = k` counts a
/// duplicate as a row found): there a duplicate-key error, which leaves a MySQL transaction usable, means "exists".
pub(crate) async fn insert_unless_exists<A, C, K>(
    insert: sea_orm::Insert<A>,
    key: K,
    conn: &C,
) -> Result<bool, DbErr>
where
    A: sea_orm::ActiveModelTrait,
    <A::Entity as sea_orm::EntityTrait>::Model: sea_orm::IntoActiveModel<A>,
    C: ConnectionTrait,
    K: IntoIterator,
    K::Item: sea_orm::sea_query::IntoIden,
{
    if conn.get_database_backend() == DbBackend::MySql {
        return match insert.exec_without_returning(conn).await {
            Ok(n) => Ok(n > 0),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e),
        };
    }
    let rows = insert
        .on_conflict(
            sea_orm::sea_query::OnConflict::columns(key)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(rows > 0)
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
