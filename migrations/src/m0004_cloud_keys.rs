//! The cloud ID-verification API's access keys (one app may have several; secrets stored encrypted) and the
//! signature nonces seen within the clock window (shared by every instance on the same database).
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0004_cloud_keys"
    }
}

#[derive(Iden)]
enum CloudAccessKeys {
    Table,
    AccessKeyId,
    AppId,
    SecretEnc,
    Status,
    CreatedAt,
    LastUsedAt,
}

#[derive(Iden)]
enum CloudNonces {
    Table,
    AccessKeyId,
    Nonce,
    SeenAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CloudAccessKeys::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(CloudAccessKeys::AccessKeyId)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(CloudAccessKeys::AppId)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(ColumnDef::new(CloudAccessKeys::SecretEnc).text().not_null())
                    .col(
                        ColumnDef::new(CloudAccessKeys::Status)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CloudAccessKeys::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CloudAccessKeys::LastUsedAt)
                            .big_integer()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("cloud_access_keys_app")
                    .table(CloudAccessKeys::Table)
                    .col(CloudAccessKeys::AppId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CloudNonces::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(CloudNonces::AccessKeyId)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CloudNonces::Nonce)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(ColumnDef::new(CloudNonces::SeenAt).big_integer().not_null())
                    // The replay check: a second insert of the same nonce for the same key fails.
                    .primary_key(
                        Index::create()
                            .col(CloudNonces::AccessKeyId)
                            .col(CloudNonces::Nonce),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("cloud_nonces_seen")
                    .table(CloudNonces::Table)
                    .col(CloudNonces::SeenAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CloudNonces::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(CloudAccessKeys::Table).to_owned())
            .await
    }
}
