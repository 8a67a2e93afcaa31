//! The local identity registry: reference identities with their photo and face embedding.
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};

use super::entities::identity;
use super::verifications::{index_form, CERT_NO_PURPOSE};
use crate::domain::seal::{KeyRing, OpenError};

/// A registered identity.
#[derive(Clone)]
pub struct Identity {
    pub cert_no: String,
    pub cert_name: String,
    pub photo_key: String,
    pub embedding: Vec<f32>,
    /// Which recogniser produced the embedding (embeddings of different recognisers do not compare).
    pub embedding_model: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("embedding_model", &self.embedding_model)
            .finish_non_exhaustive()
    }
}

/// Embeddings are stored as base64 of little-endian f32s.
pub fn encode_embedding(v: &[f32]) -> String {
    B64.encode(v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>())
}

pub fn decode_embedding(s: &str) -> Option<Vec<f32>> {
    let b = B64.decode(s).ok()?;
    (b.len() % 4 == 0).then(|| {
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    })
}

/// The sealing context of an identity's personal column. The number's own context names the column only (the row is
/// found by the blind index); the name and the embedding are bound to the number.
fn context(column: &str, cert_no: &str) -> String {
    format!("identities.{column}|{cert_no}")
}

fn opened<T>(r: Result<T, OpenError>) -> Result<T, DbErr> {
    r.map_err(|e| DbErr::Custom(format!("identity: {e}")))
}

/// A stored identity in clear. A row stored before sealing (no blind index, everything clear) opens as it is, until
/// the start-up pass seals it.
fn to_domain(keys: &KeyRing, m: identity::Model) -> Result<Identity, DbErr> {
    let legacy = m.cert_no_index.is_none();
    let clear = |context: &str, stored: &str| match keys.open_text(context, stored) {
        Err(OpenError::NotSealed) if legacy => Ok(stored.to_string()),
        other => opened(other),
    };
    let cert_no = clear(&context("cert_no", ""), &m.cert_no)?;
    let cert_name = clear(&context("cert_name", &cert_no), &m.cert_name)?;
    let embedding = clear(&context("embedding", &cert_no), &m.embedding)?;
    Ok(Identity {
        embedding: decode_embedding(&embedding).unwrap_or_default(),
        cert_no,
        cert_name,
        photo_key: m.photo_key,
        embedding_model: m.embedding_model,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

/// The sealed values of an identity: (number, its blind index, name, embedding).
fn sealed(keys: &KeyRing, i: &Identity) -> (String, String, String, String) {
    (
        keys.seal_text(&context("cert_no", ""), &i.cert_no),
        keys.index(CERT_NO_PURPOSE, &index_form(&i.cert_no)),
        keys.seal_text(&context("cert_name", &i.cert_no), &i.cert_name),
        keys.seal_text(
            &context("embedding", &i.cert_no),
            &encode_embedding(&i.embedding),
        ),
    )
}

/// The rows of one number: indexed under any key of the ring, or stored in clear before sealing.
fn of_number(keys: &KeyRing, cert_no: &str) -> Condition {
    Condition::any()
        .add(
            identity::Column::CertNoIndex
                .is_in(keys.indexes(CERT_NO_PURPOSE, &index_form(cert_no))),
        )
        .add(
            Condition::all()
                .add(identity::Column::CertNoIndex.is_null())
                .add(identity::Column::CertNo.eq(cert_no)),
        )
}

/// Inserts or replaces the identity with this ID number (a row of it under an older key, or in clear, is replaced
/// too); returns the photo key of the identity it replaced.
pub async fn upsert(
    db: &DatabaseConnection,
    keys: &KeyRing,
    i: &Identity,
) -> Result<Option<String>, DbErr> {
    let (cert_no, index, cert_name, embedding) = sealed(keys, i);
    for _ in 0..3 {
        let txn = db.begin().await?;
        let existing = identity::Entity::find()
            .filter(of_number(keys, &i.cert_no))
            .all(&txn)
            .await?;
        let replaced = existing.first().map(|m| m.photo_key.clone());
        identity::Entity::delete_many()
            .filter(of_number(keys, &i.cert_no))
            .exec(&txn)
            .await?;
        let inserted = identity::Entity::insert(identity::ActiveModel {
            cert_no: Set(cert_no.clone()),
            cert_no_index: Set(Some(index.clone())),
            cert_name: Set(cert_name.clone()),
            photo_key: Set(i.photo_key.clone()),
            embedding: Set(embedding.clone()),
            embedding_model: Set(i.embedding_model.clone()),
            created_at: Set(existing.first().map_or(i.created_at, |m| m.created_at)),
            updated_at: Set(i.updated_at),
        })
        .exec_without_returning(&txn)
        .await;
        match inserted {
            Ok(_) => {
                txn.commit().await?;
                return Ok(replaced);
            }
            // Another writer stored the number meanwhile: replace its row in the next round.
            Err(e) if super::is_unique_violation(&e) => txn.rollback().await?,
            Err(e) => return Err(e),
        }
    }
    Err(DbErr::Custom(
        "identity: concurrent writers kept replacing the same number".into(),
    ))
}

pub async fn find(
    db: &DatabaseConnection,
    keys: &KeyRing,
    cert_no: &str,
) -> Result<Option<Identity>, DbErr> {
    identity::Entity::find()
        .filter(of_number(keys, cert_no))
        .one(db)
        .await?
        .map(|m| to_domain(keys, m))
        .transpose()
}

/// Every identity, by ID number.
pub async fn list(db: &DatabaseConnection, keys: &KeyRing) -> Result<Vec<Identity>, DbErr> {
    let mut all = identity::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|m| to_domain(keys, m))
        .collect::<Result<Vec<_>, _>>()?;
    all.sort_by(|a, b| a.cert_no.cmp(&b.cert_no));
    Ok(all)
}

/// Deletes an identity; returns it when it existed.
pub async fn delete(
    db: &DatabaseConnection,
    keys: &KeyRing,
    cert_no: &str,
) -> Result<Option<Identity>, DbErr> {
    let found = find(db, keys, cert_no).await?;
    if found.is_some() {
        identity::Entity::delete_many()
            .filter(of_number(keys, cert_no))
            .exec(db)
            .await?;
    }
    Ok(found)
}

fn stale_condition(keys: &KeyRing) -> Condition {
    let id = keys.current().id();
    Condition::any()
        .add(identity::Column::CertNoIndex.is_null())
        .add(super::not_current(identity::Column::CertNo, id))
        .add(super::not_current(identity::Column::CertName, id))
        .add(super::not_current(identity::Column::Embedding, id))
}

/// How many identities are clear or sealed under an older key.
pub async fn count_stale(db: &DatabaseConnection, keys: &KeyRing) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    identity::Entity::find()
        .filter(stale_condition(keys))
        .count(db)
        .await
}

/// Up to `limit` identities (their stored key column) that are clear or sealed under an older key, leaving out
/// `skip` (those that did not open).
pub async fn stale(
    db: &DatabaseConnection,
    keys: &KeyRing,
    limit: u64,
    skip: &[String],
) -> Result<Vec<String>, DbErr> {
    use sea_orm::QuerySelect;
    Ok(identity::Entity::find()
        .filter(stale_condition(keys))
        .filter(identity::Column::CertNo.is_not_in(skip.iter().cloned()))
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.cert_no)
        .collect())
}

/// Seals one stale identity under the current key. False when it was changed or removed meanwhile.
pub async fn reseal(db: &DatabaseConnection, keys: &KeyRing, stored: &str) -> Result<bool, DbErr> {
    let Some(m) = identity::Entity::find_by_id(stored.to_string())
        .one(db)
        .await?
    else {
        return Ok(false);
    };
    let before = m.clone();
    let i = to_domain(keys, m)?;
    let (cert_no, index, cert_name, embedding) = sealed(keys, &i);
    let mut q = identity::Entity::update_many()
        .col_expr(identity::Column::CertNo, Expr::value(cert_no))
        .col_expr(identity::Column::CertNoIndex, Expr::value(index))
        .col_expr(identity::Column::CertName, Expr::value(cert_name))
        .col_expr(identity::Column::Embedding, Expr::value(embedding))
        .filter(identity::Column::CertNo.eq(before.cert_no.as_str()))
        .filter(identity::Column::CertName.eq(before.cert_name.as_str()))
        .filter(identity::Column::Embedding.eq(before.embedding.as_str()));
    q = match &before.cert_no_index {
        Some(x) => q.filter(identity::Column::CertNoIndex.eq(x.as_str())),
        None => q.filter(identity::Column::CertNoIndex.is_null()),
    };
    Ok(q.exec(db).await?.rows_affected == 1)
}

/// How many identities there are (each has a photo).
pub async fn count(db: &DatabaseConnection) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    identity::Entity::find().count(db).await
}

/// The photo keys of all identities (for the pass that seals or reseals objects).
pub async fn photo_keys(db: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
    use sea_orm::QuerySelect;
    identity::Entity::find()
        .select_only()
        .column(identity::Column::PhotoKey)
        .into_tuple::<String>()
        .all(db)
        .await
}
