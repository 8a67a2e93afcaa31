//! The hosted flow: the local identity registry, the attempts of a verification (challenge and verdict), the
//! browser session a certify token is bound to, and the decision of a verification.
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0002_hosted"
    }
}

#[derive(Iden)]
enum Identities {
    Table,
    CertNo,
    CertName,
    PhotoKey,
    Embedding,
    EmbeddingModel,
    CreatedAt,
    UpdatedAt,
}

#[derive(Iden)]
enum Attempts {
    Table,
    ChallengeId,
    CertifyId,
    Attempt,
    Challenge,
    IssuedAt,
    SubmittedAt,
    Outcome,
    FailReason,
    Checks,
    DecisionMs,
}

#[derive(Iden)]
enum CertifyTokens {
    Table,
    SessionHash,
}

#[derive(Iden)]
enum Verifications {
    Table,
    Decision,
    FaceImageKey,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Identities::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Identities::CertNo)
                            .string_len(32)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Identities::CertName)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Identities::PhotoKey)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Identities::Embedding).text().not_null())
                    .col(
                        ColumnDef::new(Identities::EmbeddingModel)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Identities::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Identities::UpdatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Attempts::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Attempts::ChallengeId)
                            .string_len(32)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Attempts::CertifyId)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Attempts::Attempt).integer().not_null())
                    .col(ColumnDef::new(Attempts::Challenge).text().not_null())
                    .col(ColumnDef::new(Attempts::IssuedAt).big_integer().not_null())
                    .col(ColumnDef::new(Attempts::SubmittedAt).big_integer().null())
                    .col(ColumnDef::new(Attempts::Outcome).string_len(16).null())
                    .col(ColumnDef::new(Attempts::FailReason).string_len(64).null())
                    .col(ColumnDef::new(Attempts::Checks).text().null())
                    .col(ColumnDef::new(Attempts::DecisionMs).integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("attempts_certify_attempt")
                    .table(Attempts::Table)
                    .col(Attempts::CertifyId)
                    .col(Attempts::Attempt)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // One column per statement: SQLite alters one column at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(CertifyTokens::Table)
                    .add_column(
                        ColumnDef::new(CertifyTokens::SessionHash)
                            .string_len(64)
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Verifications::Table)
                    .add_column(ColumnDef::new(Verifications::Decision).text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Verifications::Table)
                    .add_column(
                        ColumnDef::new(Verifications::FaceImageKey)
                            .string_len(128)
                            .null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (t, c) in [
            (
                Verifications::Table.into_iden(),
                Verifications::FaceImageKey.into_iden(),
            ),
            (
                Verifications::Table.into_iden(),
                Verifications::Decision.into_iden(),
            ),
            (
                CertifyTokens::Table.into_iden(),
                CertifyTokens::SessionHash.into_iden(),
            ),
        ] {
            manager
                .alter_table(Table::alter().table(t).drop_column(c).to_owned())
                .await?;
        }
        manager
            .drop_table(Table::drop().table(Attempts::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Identities::Table).to_owned())
            .await
    }
}
