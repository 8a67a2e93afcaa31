//! Rate counters: one row per (kind, key, window start), incremented atomically by whichever instance counts, and
//! deleted once no window needs it.
use sea_orm::sea_query::{Alias, Expr, OnConflict, Query};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, TransactionTrait};

const TABLE: &str = "rate_counters";

/// One counter: `kind` names the limit, `key` what it counts (an app id, a keyed hash); a window is named by its
/// start, and the row is needed until `expires_at`.
#[derive(Clone, Copy, Debug)]
pub struct Counter<'a> {
    pub kind: &'a str,
    pub key: &'a str,
    pub window_start: i64,
    pub expires_at: i64,
}

fn col(name: &str) -> Alias {
    Alias::new(name)
}

/// Adds one to the counter (creating it at 1) and returns its new value, in one statement: concurrent instances
/// each see their own increment.
pub async fn hit(db: &DatabaseConnection, c: Counter<'_>) -> Result<i64, DbErr> {
    let mut insert = Query::insert();
    insert
        .into_table(col(TABLE))
        .columns([
            col("kind"),
            col("counter_key"),
            col("window_start"),
            col("hits"),
            col("expires_at"),
        ])
        .values([
            c.kind.into(),
            c.key.into(),
            c.window_start.into(),
            1i64.into(),
            c.expires_at.into(),
        ])
        .map_err(|e| DbErr::Custom(e.to_string()))?
        .on_conflict(
            OnConflict::columns([col("kind"), col("counter_key"), col("window_start")])
                .value(col("hits"), Expr::col((col(TABLE), col("hits"))).add(1))
                .to_owned(),
        );
    let backend = db.get_database_backend();
    if backend == DatabaseBackend::MySql {
        // No RETURNING: increment, then read, in one transaction. The upsert's row lock is held until the commit,
        // so no other increment lands between the two and each caller reads its own count.
        let txn = db.begin().await?;
        txn.execute(backend.build(&insert)).await?;
        let hits = get(&txn, c.kind, c.key, c.window_start).await?;
        txn.commit().await?;
        return Ok(hits);
    }
    insert.returning_col(col("hits"));
    let row = db
        .query_one(backend.build(&insert))
        .await?
        .ok_or_else(|| DbErr::Custom("the counter upsert returned no row".into()))?;
    row.try_get::<i64>("", "hits")
}

/// The counter's value (0 when it does not exist).
pub async fn get(
    db: &impl ConnectionTrait,
    kind: &str,
    key: &str,
    window_start: i64,
) -> Result<i64, DbErr> {
    let select = Query::select()
        .column(col("hits"))
        .from(col(TABLE))
        .and_where(Expr::col(col("kind")).eq(kind))
        .and_where(Expr::col(col("counter_key")).eq(key))
        .and_where(Expr::col(col("window_start")).eq(window_start))
        .to_owned();
    let backend = db.get_database_backend();
    match db.query_one(backend.build(&select)).await? {
        Some(row) => row.try_get::<i64>("", "hits"),
        None => Ok(0),
    }
}

/// Deletes every window of one counter (e.g. an address's failures once it gave the right token).
pub async fn forget(db: &DatabaseConnection, kind: &str, key: &str) -> Result<u64, DbErr> {
    let delete = Query::delete()
        .from_table(col(TABLE))
        .and_where(Expr::col(col("kind")).eq(kind))
        .and_where(Expr::col(col("counter_key")).eq(key))
        .to_owned();
    let backend = db.get_database_backend();
    Ok(db.execute(backend.build(&delete)).await?.rows_affected())
}

/// Deletes the counters no window needs at `now`; returns how many. Safe to run on several instances at once: a
/// counter still in use is never past its `expires_at`.
pub async fn purge(db: &DatabaseConnection, now: i64) -> Result<u64, DbErr> {
    let delete = Query::delete()
        .from_table(col(TABLE))
        .and_where(Expr::col(col("expires_at")).lt(now))
        .to_owned();
    let backend = db.get_database_backend();
    Ok(db.execute(backend.build(&delete)).await?.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn fresh() -> (tempfile::TempDir, DatabaseConnection) {
        crate::db::fresh_sqlite().await
    }

    fn c<'a>(kind: &'a str, key: &'a str, window_start: i64) -> Counter<'a> {
        Counter {
            kind,
            key,
            window_start,
            expires_at: window_start + 120,
        }
    }

    #[test]
    fn counters_increment_atomically_and_are_purged_after_their_windows() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (_dir, db) = fresh().await;
            assert_eq!(get(&db, "k", "a", 0).await.unwrap(), 0);
            for n in 1..=3 {
                assert_eq!(hit(&db, c("k", "a", 0)).await.unwrap(), n);
            }
            // Another kind, key or window is another counter.
            assert_eq!(hit(&db, c("j", "a", 0)).await.unwrap(), 1);
            assert_eq!(hit(&db, c("k", "b", 0)).await.unwrap(), 1);
            assert_eq!(hit(&db, c("k", "a", 60)).await.unwrap(), 1);
            assert_eq!(get(&db, "k", "a", 0).await.unwrap(), 3);
            // Concurrent hits: each sees its own increment, none is lost.
            let tasks: Vec<_> = (0..40)
                .map(|_| {
                    let db = db.clone();
                    tokio::spawn(async move { hit(&db, c("k", "race", 0)).await.unwrap() })
                })
                .collect();
            let mut seen = Vec::new();
            for t in tasks {
                seen.push(t.await.unwrap());
            }
            seen.sort();
            assert_eq!(seen, (1..=40).collect::<Vec<i64>>());
            // Purged once past `expires_at` (window start + 120 here), not before.
            assert_eq!(purge(&db, 120).await.unwrap(), 0);
            assert_eq!(purge(&db, 121).await.unwrap(), 4);
            assert_eq!(get(&db, "k", "a", 0).await.unwrap(), 0);
            assert_eq!(get(&db, "k", "a", 60).await.unwrap(), 1);
        });
    }
}
