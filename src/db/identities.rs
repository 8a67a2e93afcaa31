//! The local identity registry: reference identities with their photo and face embedding.
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sea_orm::sea_query::OnConflict;
use sea_orm::{DatabaseConnection, DbErr, EntityTrait, QueryOrder, Set};

use super::entities::identity;

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

fn to_domain(m: identity::Model) -> Identity {
    Identity {
        embedding: decode_embedding(&m.embedding).unwrap_or_default(),
        cert_no: m.cert_no,
        cert_name: m.cert_name,
        photo_key: m.photo_key,
        embedding_model: m.embedding_model,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

/// Inserts or replaces the identity with this ID number.
pub async fn upsert(db: &DatabaseConnection, i: &Identity) -> Result<(), DbErr> {
    identity::Entity::insert(identity::ActiveModel {
        cert_no: Set(i.cert_no.clone()),
        cert_name: Set(i.cert_name.clone()),
        photo_key: Set(i.photo_key.clone()),
        embedding: Set(encode_embedding(&i.embedding)),
        embedding_model: Set(i.embedding_model.clone()),
        created_at: Set(i.created_at),
        updated_at: Set(i.updated_at),
    })
    .on_conflict(
        OnConflict::column(identity::Column::CertNo)
            .update_columns([
                identity::Column::CertName,
                identity::Column::PhotoKey,
                identity::Column::Embedding,
                identity::Column::EmbeddingModel,
                identity::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

pub async fn find(db: &DatabaseConnection, cert_no: &str) -> Result<Option<Identity>, DbErr> {
    Ok(identity::Entity::find_by_id(cert_no.to_string())
        .one(db)
        .await?
        .map(to_domain))
}

pub async fn list(db: &DatabaseConnection) -> Result<Vec<Identity>, DbErr> {
    Ok(identity::Entity::find()
        .order_by_asc(identity::Column::CertNo)
        .all(db)
        .await?
        .into_iter()
        .map(to_domain)
        .collect())
}

/// Deletes an identity; returns it when it existed.
pub async fn delete(db: &DatabaseConnection, cert_no: &str) -> Result<Option<Identity>, DbErr> {
    let found = find(db, cert_no).await?;
    if found.is_some() {
        identity::Entity::delete_by_id(cert_no.to_string())
            .exec(db)
            .await?;
    }
    Ok(found)
}
