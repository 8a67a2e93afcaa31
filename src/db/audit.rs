//! The audit log: appended entry by entry, each chained to the one before (see `domain::audit`).
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::entities::audit_entry;
use crate::domain::audit::{next_entry, AuditAction, AuditEntry, AuditRecord};

fn to_domain(m: audit_entry::Model) -> Result<AuditEntry, DbErr> {
    Ok(AuditEntry {
        seq: m.seq,
        record: AuditRecord {
            at: m.at,
            actor: m.actor,
            action: AuditAction::parse(&m.action).ok_or_else(|| {
                DbErr::Custom(format!(
                    "audit entry {}: unknown action {}",
                    m.seq, m.action
                ))
            })?,
            target: m.target,
            detail: m.detail,
        },
        prev_hash: m.prev_hash,
        hash: m.hash,
    })
}

/// The last entry.
pub async fn last(db: &DatabaseConnection) -> Result<Option<AuditEntry>, DbErr> {
    audit_entry::Entity::find()
        .order_by_desc(audit_entry::Column::Seq)
        .one(db)
        .await?
        .map(to_domain)
        .transpose()
}

/// Appends an entry after the last one. Instances appending at once race for the next number; the loser reads the
/// new last entry and tries again.
pub async fn append(db: &DatabaseConnection, record: AuditRecord) -> Result<AuditEntry, DbErr> {
    let mut tries = 0;
    loop {
        let entry = next_entry(last(db).await?.as_ref(), record.clone());
        let r = &entry.record;
        let inserted = audit_entry::Entity::insert(audit_entry::ActiveModel {
            seq: Set(entry.seq),
            at: Set(r.at),
            actor: Set(r.actor.clone()),
            action: Set(r.action.as_str().to_string()),
            target: Set(r.target.clone()),
            detail: Set(r.detail.clone()),
            prev_hash: Set(entry.prev_hash.clone()),
            hash: Set(entry.hash.clone()),
        })
        .exec_without_returning(db)
        .await;
        match inserted {
            Ok(_) => return Ok(entry),
            Err(e) if super::is_unique_violation(&e) && tries < 50 => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Up to `limit` entries after `after_seq`, oldest first.
pub async fn page(
    db: &DatabaseConnection,
    after_seq: i64,
    limit: u64,
) -> Result<Vec<AuditEntry>, DbErr> {
    audit_entry::Entity::find()
        .filter(audit_entry::Column::Seq.gt(after_seq))
        .order_by_asc(audit_entry::Column::Seq)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(to_domain)
        .collect()
}

/// Up to `limit` entries before `before_seq` (none: the newest), newest first.
pub async fn newest(
    db: &DatabaseConnection,
    before_seq: Option<i64>,
    limit: u64,
) -> Result<Vec<AuditEntry>, DbErr> {
    let mut q = audit_entry::Entity::find();
    if let Some(b) = before_seq {
        q = q.filter(audit_entry::Column::Seq.lt(b));
    }
    q.order_by_desc(audit_entry::Column::Seq)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(to_domain)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::ChainVerifier;

    fn record(i: i64) -> AuditRecord {
        AuditRecord {
            at: i,
            actor: "cli".into(),
            action: AuditAction::VerificationDeleted,
            target: format!("cid{i}"),
            detail: String::new(),
        }
    }

    #[tokio::test]
    async fn concurrent_appends_make_one_chain() {
        let (_dir, db) = crate::db::fresh_sqlite().await;
        let mut tasks = Vec::new();
        for i in 0..20 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                append(&db, record(i)).await.unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let all = page(&db, 0, 100).await.unwrap();
        assert_eq!(all.len(), 20);
        let mut v = ChainVerifier::default();
        for e in &all {
            v.push(e).unwrap();
        }
        assert_eq!(newest(&db, None, 3).await.unwrap()[0].seq, 20);
        assert_eq!(newest(&db, Some(20), 1).await.unwrap()[0].seq, 19);
    }
}
