//! Personal data at rest: the data keys (`keys`), the check that a server holds the key its database was sealed
//! with, and the pass that seals clear values and moves values from older keys to the current one.
pub mod keys;

pub use keys::DataKeys;

use anyhow::{bail, Context};
use sea_orm::DatabaseConnection;

use crate::db;
pub use crate::db::verifications::Erasure;
use crate::domain::audit::{AuditAction, AuditRecord};
use crate::domain::seal::KeyRing;
use crate::storage::ObjectStore;

/// The text sealed as each key's canary.
const CANARY: &str = "shiren data key canary";
const CANARY_CONTEXT: &str = "data_keys.canary";

/// How a ring relates to the keys the database knows.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// The ring holds keys the data was sealed with; these (of the ring) are new to the database.
    Admitted { new: Vec<String> },
    /// None of the ring's keys sealed the database's data.
    WrongKey {
        database: Vec<String>,
        server: Vec<String>,
    },
    /// The key with this id is registered but its canary does not open: the key file was altered, or the row.
    Damaged(String),
}

/// Decides whether a server with `ring` may use a database whose registered keys are `registered` (id, canary).
pub fn admission(ring: &KeyRing, registered: &[(String, String)]) -> Admission {
    let ids = ring.ids();
    if !registered.is_empty() && registered.iter().all(|(id, _)| !ids.contains(&id.as_str())) {
        return Admission::WrongKey {
            database: registered.iter().map(|(id, _)| id.clone()).collect(),
            server: ids.iter().map(|s| s.to_string()).collect(),
        };
    }
    for (id, canary) in registered {
        if ids.contains(&id.as_str())
            && ring.open_text(CANARY_CONTEXT, canary).as_deref() != Ok(CANARY)
        {
            return Admission::Damaged(id.clone());
        }
    }
    let current = ring.current().id();
    let new = if registered.iter().any(|(id, _)| id == current) {
        Vec::new()
    } else {
        vec![current.to_string()]
    };
    Admission::Admitted { new }
}

/// Checks the server's keys against the database and registers a new current key; true when it registered one (a
/// first start with sealing, or a rotation's new key). Refuses (with what to do) a server whose keys did not seal
/// the database's data.
pub async fn admit(db: &DatabaseConnection, keys: &DataKeys, now: i64) -> anyhow::Result<bool> {
    let ring = keys.ring();
    let registered: Vec<(String, String)> = db::data_keys::list(db)
        .await
        .context("cannot read the data keys registered in the database")?
        .into_iter()
        .map(|k| (k.key_id, k.canary))
        .collect();
    match admission(&ring, &registered) {
        Admission::Admitted { new } => {
            let registered = !new.is_empty();
            for id in new {
                db::data_keys::register(
                    db,
                    &db::data_keys::RegisteredKey {
                        key_id: id,
                        canary: ring.seal_text(CANARY_CONTEXT, CANARY),
                        created_at: now,
                    },
                )
                .await
                .context("cannot register the data key in the database")?;
            }
            Ok(registered)
        }
        Admission::WrongKey { database, server } => bail!(
            "this server's data key ({}) is not the one the database's personal data is sealed under ({}). Start it \
             with that key: privacy.data_key / SHIREN_DATA_KEY, or the key file data.key in the data dir. A new \
             key is brought in only by `shiren keys rotate`, which keeps the old one until everything is moved.",
            server.join(", "),
            database.join(", ")
        ),
        Admission::Damaged(id) => bail!(
            "data key {id} is registered in the database but its check value does not open with it: the key \
             file or the database's data_keys table has been altered"
        ),
    }
}

/// Erases a verification's personal data on instruction (name, ID number, kept images) and records it in the audit
/// log; the verdict, its checks and the billing record stay. `actor` says who instructed it.
pub async fn erase_verification(
    db: &DatabaseConnection,
    store: &ObjectStore,
    certify_id: &str,
    actor: &str,
    now: i64,
) -> anyhow::Result<Erasure> {
    let erasure = db::verifications::erase(db, certify_id, now).await?;
    if let Erasure::Erased { objects } = &erasure {
        let mut kept = 0;
        for key in objects {
            if let Err(e) = store.delete(key).await {
                kept += 1;
                // The object is sealed and no longer referred to; its key (no personal data) lets an operator
                // remove it by hand.
                tracing::error!(object = %key, error = %e, "an erased verification's image could not be deleted");
            }
        }
        db::audit::append(
            db,
            AuditRecord {
                at: now,
                actor: actor.to_string(),
                action: AuditAction::VerificationDeleted,
                target: certify_id.to_string(),
                detail: format!(
                    "name, ID number and {} image(s) deleted{}",
                    objects.len() - kept,
                    if kept > 0 {
                        format!("; {kept} image(s) could not be deleted")
                    } else {
                        String::new()
                    }
                ),
            },
        )
        .await?;
    }
    Ok(erasure)
}

/// Appends to the audit log.
pub async fn audit(db: &DatabaseConnection, record: AuditRecord) -> anyhow::Result<()> {
    db::audit::append(db, record).await?;
    Ok(())
}

/// What a sealing pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResealReport {
    pub verifications: u64,
    pub identities: u64,
    pub objects: u64,
    /// Values that could not be opened (damaged, or under a key the server does not hold); they stay as they are.
    pub failed: u64,
}

impl ResealReport {
    pub fn total(&self) -> u64 {
        self.verifications + self.identities + self.objects
    }
}

/// What a sealing pass has to look at: values not under the current key, and objects to check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    pub verifications: u64,
    pub identities: u64,
    /// Objects the database refers to (each is read to see which key sealed it).
    pub objects: u64,
}

pub async fn pending(db: &DatabaseConnection, ring: &KeyRing) -> anyhow::Result<Pending> {
    Ok(Pending {
        verifications: db::verifications::count_stale_subjects(db, ring).await?,
        identities: db::identities::count_stale(db, ring).await?,
        objects: db::verifications::count_images(db).await? + db::identities::count(db).await?,
    })
}

/// Rows per batch of a sealing pass.
const BATCH: u64 = 200;

/// Seals every personal value that is clear (stored before sealing) or sealed under an older key, under the current
/// key: verifications' names and numbers, the registry, and the objects both refer to. Batched and restartable:
/// each value is rewritten only when it is still what was read, so several instances may run it at once, and an
/// interrupted pass is finished by the next. Objects are each read to see their key, which takes a while in a large
/// store: `objects` says whether to look at them at all. `progress` hears each batch (what kind, how many done of
/// how many).
pub async fn reseal(
    db: &DatabaseConnection,
    store: &ObjectStore,
    keys: &DataKeys,
    objects: bool,
    mut progress: impl FnMut(&str, u64, u64),
) -> anyhow::Result<ResealReport> {
    let ring = keys.ring();
    let todo = pending(db, &ring).await?;
    let mut report = ResealReport::default();
    let mut objects_seen = 0u64;
    let mut after = String::new();
    loop {
        let rows = db::verifications::stale_subjects(db, &ring, &after, BATCH).await?;
        let Some(last) = rows.last() else { break };
        after = last.certify_id().to_string();
        for row in &rows {
            match db::verifications::reseal_subject(db, &ring, row).await {
                Ok(true) => report.verifications += 1,
                Ok(false) => {}
                Err(e) => {
                    report.failed += 1;
                    tracing::error!(certify_id = row.certify_id(), error = %e, "cannot reseal a verification");
                }
            }
        }
        progress("verifications", report.verifications, todo.verifications);
    }
    let mut skip = Vec::new();
    loop {
        let rows = db::identities::stale(db, &ring, BATCH, &skip).await?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            match db::identities::reseal(db, &ring, &row).await {
                Ok(true) => report.identities += 1,
                Ok(false) => skip.push(row),
                Err(e) => {
                    report.failed += 1;
                    tracing::error!(error = %e, "cannot reseal an identity");
                    skip.push(row);
                }
            }
        }
        progress("identities", report.identities, todo.identities);
    }
    if !objects {
        return Ok(report);
    }
    for key in db::identities::photo_keys(db).await? {
        reseal_object(store, &key, &mut report).await;
        objects_seen += 1;
    }
    let mut after = String::new();
    loop {
        let rows = db::verifications::image_keys_after(db, &after, BATCH).await?;
        let Some((last, _)) = rows.last() else { break };
        after = last.clone();
        for (_, objects) in rows {
            for key in objects {
                reseal_object(store, &key, &mut report).await;
                objects_seen += 1;
            }
        }
        progress("objects", objects_seen, todo.objects);
    }
    Ok(report)
}

async fn reseal_object(store: &ObjectStore, key: &str, report: &mut ResealReport) {
    match store.reseal(key).await {
        Ok(true) => report.objects += 1,
        Ok(false) => {}
        Err(e) => {
            report.failed += 1;
            tracing::error!(object = key, error = %e, "cannot reseal an object");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::seal::DataKey;

    fn ring(current: u8, older: &[u8]) -> KeyRing {
        KeyRing::new(
            DataKey::from_bytes(&[current; 32]),
            older
                .iter()
                .map(|b| DataKey::from_bytes(&[*b; 32]))
                .collect(),
        )
    }

    fn canary(r: &KeyRing) -> (String, String) {
        (
            r.current().id().to_string(),
            r.seal_text(CANARY_CONTEXT, CANARY),
        )
    }

    #[test]
    fn admission_cases() {
        let one = ring(1, &[]);
        // A fresh database: the key is registered.
        assert_eq!(
            admission(&one, &[]),
            Admission::Admitted {
                new: vec![one.current().id().to_string()]
            }
        );
        // The same key again: nothing new.
        assert_eq!(
            admission(&one, &[canary(&one)]),
            Admission::Admitted { new: vec![] }
        );
        // Another key alone: refused, naming both.
        let other = ring(2, &[]);
        match admission(&other, &[canary(&one)]) {
            Admission::WrongKey { database, server } => {
                assert_eq!(database, vec![one.current().id().to_string()]);
                assert_eq!(server, vec![other.current().id().to_string()]);
            }
            a => panic!("{a:?}"),
        }
        // A rotation: the new key beside the old one is admitted and registered.
        let rotating = ring(2, &[1]);
        assert_eq!(
            admission(&rotating, &[canary(&one)]),
            Admission::Admitted {
                new: vec![rotating.current().id().to_string()]
            }
        );
        // A canary that does not open under the key of its id.
        let forged = (
            one.current().id().to_string(),
            other.seal_text(CANARY_CONTEXT, CANARY),
        );
        assert_eq!(
            admission(&one, &[forged]),
            Admission::Damaged(one.current().id().to_string())
        );
    }

    fn request(order: &str) -> crate::domain::request::InitializeRequest {
        crate::domain::request::parse_initialize(
            &serde_json::json!({
                "outer_order_no": order,
                "biz_code": "FACE",
                "identity_param": {"identity_type": "CERT_INFO", "cert_type": "IDENTITY_CARD",
                    "cert_name": "张三", "cert_no": crate::domain::idcard::with_check_char("33010219900307123")},
                "merchant_config": {"return_url": "https://m.example/back"}
            })
            .to_string(),
            crate::domain::request::Limits {
                max_contrast_picture_bytes: 1 << 20,
                today: chrono::Utc::now().date_naive(),
            },
        )
        .unwrap()
    }

    #[tokio::test]
    async fn clear_rows_are_sealed_and_a_rotation_moves_everything() {
        use sea_orm::{ConnectionTrait, Statement};
        let (dir, db) = db::fresh_sqlite().await;
        let number = crate::domain::idcard::with_check_char("33010219900307123");
        let old = DataKeys::fixed(ring(1, &[]));
        let store = ObjectStore::new(dir.path().join("objects"), old.clone());
        db.execute_unprepared(
            "INSERT INTO apps (app_id, name, public_key_pem, return_url_prefixes, status, created_at, updated_at) \
             VALUES ('app', 't', 'x', '[]', 'active', 1, 1)",
        )
        .await
        .unwrap();
        // One verification stored sealed, with a kept picture; one as an older version left it, in clear.
        let req = request("o1");
        db::verifications::insert(
            &db,
            db::verifications::NewVerification {
                keys: &old.ring(),
                certify_id: "cid1",
                app_id: "app",
                request: &req,
                contrast_picture_key: Some("contrast/cid1".into()),
                scene_id: None,
                now: 1,
                expires_at: 100,
                api: "alipay",
                callback: None,
            },
        )
        .await
        .unwrap();
        store
            .put("contrast/cid1", b"\xff\xd8\xff picture")
            .await
            .unwrap();
        let req2 = request("o2");
        db::verifications::insert(
            &db,
            db::verifications::NewVerification {
                keys: &old.ring(),
                certify_id: "cid2",
                app_id: "app",
                request: &req2,
                contrast_picture_key: None,
                scene_id: None,
                now: 1,
                expires_at: 100,
                api: "alipay",
                callback: None,
            },
        )
        .await
        .unwrap();
        db.execute(Statement::from_sql_and_values(
            db.get_database_backend(),
            "UPDATE verifications SET cert_name = '李四', cert_no = ?, cert_no_index = NULL WHERE certify_id = 'cid2'",
            [number.clone().into()],
        ))
        .await
        .unwrap();
        // A registry row as an older version left it: everything clear, no blind index.
        db.execute_unprepared(&format!(
            "INSERT INTO identities (cert_no, cert_name, photo_key, embedding, embedding_model, created_at, \
             updated_at) VALUES ('{number}', '王五', 'identities/x', 'AACAPw==', 'm', 1, 1)"
        ))
        .await
        .unwrap();
        assert_eq!(pending(&db, &old.ring()).await.unwrap().verifications, 1);
        assert_eq!(pending(&db, &old.ring()).await.unwrap().identities, 1);
        let first = reseal(&db, &store, &old, true, |_, _, _| {}).await.unwrap();
        assert_eq!(
            (first.verifications, first.identities, first.failed),
            (1, 1, 0)
        );
        let s = db::verifications::find_subject(&db, &old.ring(), "cid2")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (s.cert_name.as_str(), s.cert_no.as_str()),
            ("李四", number.as_str())
        );
        let i = db::identities::find(&db, &old.ring(), &number)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (i.cert_name.as_str(), i.embedding.as_slice()),
            ("王五", &[1.0f32][..])
        );
        assert_eq!(
            reseal(&db, &store, &old, true, |_, _, _| {})
                .await
                .unwrap()
                .total(),
            0
        );

        // A rotation: a ring with the new key current moves every value; then the new key alone opens them all.
        let rotating = DataKeys::fixed(ring(2, &[1]));
        let store2 = ObjectStore::new(dir.path().join("objects"), rotating.clone());
        let mut seen = Vec::new();
        let moved = reseal(&db, &store2, &rotating, true, |kind, done, total| {
            seen.push((kind.to_string(), done, total))
        })
        .await
        .unwrap();
        assert_eq!(
            (moved.verifications, moved.identities, moved.objects),
            (2, 1, 1)
        );
        assert!(
            seen.contains(&("verifications".to_string(), 2, 2)),
            "{seen:?}"
        );
        let new = ring(2, &[]);
        for id in ["cid1", "cid2"] {
            let s = db::verifications::find_subject(&db, &new, id)
                .await
                .unwrap()
                .unwrap();
            assert!(!s.cert_name.is_empty());
            assert!(db::verifications::find_subject(&db, &ring(1, &[]), id)
                .await
                .is_err());
        }
        assert_eq!(
            db::identities::find(&db, &new, &number)
                .await
                .unwrap()
                .unwrap()
                .cert_name,
            "王五"
        );
        let store_new = ObjectStore::new(dir.path().join("objects"), DataKeys::fixed(new.clone()));
        assert_eq!(
            store_new.get("contrast/cid1").await.unwrap().unwrap(),
            b"\xff\xd8\xff picture"
        );
        assert_eq!(pending(&db, &new).await.unwrap().verifications, 0);
        // Lookups by number find the row under the new index; the old key's index no longer matches.
        let v = db::verifications::find(&db, "cid1").await.unwrap().unwrap();
        assert!(req.has_digest(&rotating.ring(), &v.request_digest));
    }

    #[tokio::test]
    async fn admit_registers_then_refuses_a_wrong_key() {
        let (_dir, db) = db::fresh_sqlite().await;
        let first = DataKeys::fixed(ring(1, &[]));
        admit(&db, &first, 1).await.unwrap();
        admit(&db, &first, 2).await.unwrap();
        let err = admit(&db, &DataKeys::fixed(ring(2, &[])), 3)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("not the one"), "{err}");
        assert!(err.contains(ring(1, &[]).current().id()), "{err}");
        admit(&db, &DataKeys::fixed(ring(2, &[1])), 4)
            .await
            .unwrap();
        assert_eq!(db::data_keys::list(&db).await.unwrap().len(), 2);
    }
}
