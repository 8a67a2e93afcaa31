//! Callback deliveries: one per finished verification that named a `CallbackUrl`, written in the verdict's
//! transaction and worked off by the callback dispatcher. Times in this table are Unix milliseconds (the
//! backoff starts at a second and tests use far less), hence the `_ms` suffixes.
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0006_callbacks"
    }
}

#[derive(Iden)]
enum CallbackDeliveries {
    Table,
    CertifyId,
    Url,
    Token,
    Passed,
    Status,
    Attempts,
    NextAttemptAtMs,
    DeliveredAtMs,
    LastStatus,
    LastError,
    CreatedAtMs,
    UpdatedAtMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CallbackDeliveries::Table)
                    .if_not_exists()
                    // One delivery per verification.
                    .col(
                        ColumnDef::new(CallbackDeliveries::CertifyId)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(CallbackDeliveries::Url).text().not_null())
                    .col(ColumnDef::new(CallbackDeliveries::Token).text().null())
                    // The SubCode sent as `passed`.
                    .col(
                        ColumnDef::new(CallbackDeliveries::Passed)
                            .string_len(8)
                            .not_null(),
                    )
                    // `pending`, `delivered` or `failed` (given up).
                    .col(
                        ColumnDef::new(CallbackDeliveries::Status)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CallbackDeliveries::Attempts)
                            .integer()
                            .not_null(),
                    )
                    // When the next attempt is due; while an attempt runs, the end of its lease.
                    .col(
                        ColumnDef::new(CallbackDeliveries::NextAttemptAtMs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CallbackDeliveries::DeliveredAtMs)
                            .big_integer()
                            .null(),
                    )
                    // HTTP status of the last attempt, if one came back.
                    .col(
                        ColumnDef::new(CallbackDeliveries::LastStatus)
                            .integer()
                            .null(),
                    )
                    // Why the last attempt failed, without URL or token.
                    .col(
                        ColumnDef::new(CallbackDeliveries::LastError)
                            .string_len(255)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(CallbackDeliveries::CreatedAtMs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CallbackDeliveries::UpdatedAtMs)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("callback_deliveries_due")
                    .table(CallbackDeliveries::Table)
                    .col(CallbackDeliveries::Status)
                    .col(CallbackDeliveries::NextAttemptAtMs)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CallbackDeliveries::Table).to_owned())
            .await
    }
}
