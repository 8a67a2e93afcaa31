//! Rate counters of the limits per ID number, app and client address: one row per (kind, key, window start),
//! shared by every instance on the database and deleted once its window is over.
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_limits"
    }
}

#[derive(Iden)]
enum RateCounters {
    Table,
    Kind,
    CounterKey,
    WindowStart,
    Hits,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RateCounters::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(RateCounters::Kind).string_len(16).not_null())
                    .col(
                        ColumnDef::new(RateCounters::CounterKey)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RateCounters::WindowStart)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(RateCounters::Hits).big_integer().not_null())
                    .col(
                        ColumnDef::new(RateCounters::ExpiresAt)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(RateCounters::Kind)
                            .col(RateCounters::CounterKey)
                            .col(RateCounters::WindowStart),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_rate_counters_expires_at")
                    .table(RateCounters::Table)
                    .col(RateCounters::ExpiresAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RateCounters::Table).to_owned())
            .await
    }
}
