//! The data keys personal data is sealed under, each with a canary that proves a key is the right one.
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set};

use super::entities::data_key;

/// A registered key: its id and its sealed canary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredKey {
    pub key_id: String,
    pub canary: String,
    pub created_at: i64,
}

pub async fn list(db: &DatabaseConnection) -> Result<Vec<RegisteredKey>, DbErr> {
    Ok(data_key::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|m| RegisteredKey {
            key_id: m.key_id,
            canary: m.canary,
            created_at: m.created_at,
        })
        .collect())
}

/// Registers a key (nothing when it is registered already, e.g. by another instance starting at the same time).
pub async fn register(db: &DatabaseConnection, key: &RegisteredKey) -> Result<(), DbErr> {
    let insert = data_key::Entity::insert(data_key::ActiveModel {
        key_id: Set(key.key_id.clone()),
        canary: Set(key.canary.clone()),
        created_at: Set(key.created_at),
    });
    super::insert_unless_exists(insert, [data_key::Column::KeyId], db).await?;
    Ok(())
}

/// Forgets keys that no longer seal anything.
pub async fn retire(db: &DatabaseConnection, key_ids: &[String]) -> Result<u64, DbErr> {
    Ok(data_key::Entity::delete_many()
        .filter(data_key::Column::KeyId.is_in(key_ids.iter().cloned()))
        .exec(db)
        .await?
        .rows_affected)
}
