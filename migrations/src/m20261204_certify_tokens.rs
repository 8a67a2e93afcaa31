//! Indexes of the hosted page's tokens: by verification (one page token per verification is looked up when its
//! certify URL is opened again) and by expiry (the periodic purge of tokens of expired verifications).
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_certify_tokens"
    }
}

#[derive(Iden)]
enum CertifyTokens {
    Table,
    CertifyId,
    ExpiresAt,
}

const INDEXES: [(&str, CertifyTokens); 2] = [
    ("ix_certify_tokens_certify_id", CertifyTokens::CertifyId),
    ("ix_certify_tokens_expires_at", CertifyTokens::ExpiresAt),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, col) in INDEXES {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(CertifyTokens::Table)
                        .col(col)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, _) in INDEXES {
            manager
                .drop_index(
                    Index::drop()
                        .name(name)
                        .table(CertifyTokens::Table)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
