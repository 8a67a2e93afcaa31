//! Console sessions ended by logout, kept until they would have expired, so that a logged-out cookie stays refused
//! after a restart and on every instance sharing the database.
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set};

mod revoked {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "console_revoked_sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub nonce: String,
        pub expires_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Records that the session `nonce` (valid until `expires_at`) was logged out, and forgets sessions that have
/// expired by `now` anyway.
pub async fn revoke(
    db: &DatabaseConnection,
    nonce: &str,
    expires_at: i64,
    now: i64,
) -> Result<(), DbErr> {
    let insert = revoked::Entity::insert(revoked::ActiveModel {
        nonce: Set(nonce.to_string()),
        expires_at: Set(expires_at),
    });
    super::insert_unless_exists(insert, [revoked::Column::Nonce], db).await?;
    revoked::Entity::delete_many()
        .filter(revoked::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?;
    Ok(())
}

/// Whether the session `nonce` was logged out.
pub async fn is_revoked(db: &DatabaseConnection, nonce: &str) -> Result<bool, DbErr> {
    Ok(revoked::Entity::find_by_id(nonce.to_string())
        .one(db)
        .await?
        .is_some())
}
