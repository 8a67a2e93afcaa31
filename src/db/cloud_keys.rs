//! The cloud API's access keys and the signature nonces seen recently. Secrets stay encrypted here; only
//! `crate::access_keys` opens them.
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};

use super::entities::{cloud_access_key as key, cloud_nonce as nonce};

/// An access key as stored (the secret still encrypted).
#[derive(Clone)]
pub struct StoredKey {
    pub access_key_id: String,
    pub app_id: String,
    pub secret_enc: String,
    pub active: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("access_key_id", &self.access_key_id)
            .field("app_id", &self.app_id)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

fn to_domain(m: key::Model) -> StoredKey {
    StoredKey {
        active: m.status == "active",
        access_key_id: m.access_key_id,
        app_id: m.app_id,
        secret_enc: m.secret_enc,
        created_at: m.created_at,
        last_used_at: m.last_used_at,
    }
}

pub async fn insert(
    db: &DatabaseConnection,
    access_key_id: &str,
    app_id: &str,
    secret_enc: String,
    now: i64,
) -> Result<(), DbErr> {
    key::Entity::insert(key::ActiveModel {
        access_key_id: Set(access_key_id.to_string()),
        app_id: Set(app_id.to_string()),
        secret_enc: Set(secret_enc),
        status: Set("active".into()),
        created_at: Set(now),
        last_used_at: Set(None),
    })
    .exec(db)
    .await?;
    Ok(())
}

pub async fn find(
    db: &DatabaseConnection,
    access_key_id: &str,
) -> Result<Option<StoredKey>, DbErr> {
    Ok(key::Entity::find_by_id(access_key_id.to_string())
        .one(db)
        .await?
        .map(to_domain))
}

pub async fn list(db: &DatabaseConnection, app_id: &str) -> Result<Vec<StoredKey>, DbErr> {
    Ok(key::Entity::find()
        .filter(key::Column::AppId.eq(app_id))
        .order_by_asc(key::Column::CreatedAt)
        .order_by_asc(key::Column::AccessKeyId)
        .all(db)
        .await?
        .into_iter()
        .map(to_domain)
        .collect())
}

/// Disables a key; false when there is no such key.
pub async fn disable(db: &DatabaseConnection, access_key_id: &str) -> Result<bool, DbErr> {
    let Some(m) = key::Entity::find_by_id(access_key_id.to_string())
        .one(db)
        .await?
    else {
        return Ok(false);
    };
    let mut a: key::ActiveModel = m.into();
    a.status = Set("disabled".into());
    a.update(db).await?;
    Ok(true)
}

/// Records that a key was used at `now`.
pub async fn touch(db: &DatabaseConnection, access_key_id: &str, now: i64) -> Result<(), DbErr> {
    key::Entity::update_many()
        .col_expr(
            key::Column::LastUsedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(key::Column::AccessKeyId.eq(access_key_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Records a nonce of a key; false when it was already recorded (a replay).
pub async fn record_nonce(
    db: &DatabaseConnection,
    access_key_id: &str,
    value: &str,
    now: i64,
) -> Result<bool, DbErr> {
    let row = nonce::ActiveModel {
        access_key_id: Set(access_key_id.to_string()),
        nonce: Set(value.to_string()),
        seen_at: Set(now),
    };
    match nonce::Entity::insert(row).exec(db).await {
        Ok(_) => Ok(true),
        Err(e) if super::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Deletes nonces seen before `before`; returns how many.
pub async fn purge_nonces(db: &DatabaseConnection, before: i64) -> Result<u64, DbErr> {
    Ok(nonce::Entity::delete_many()
        .filter(nonce::Column::SeenAt.lt(before))
        .exec(db)
        .await?
        .rows_affected)
}
