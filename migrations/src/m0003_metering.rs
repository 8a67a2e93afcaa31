//! Scenes (认证场景) with their thresholds, the scene of each verification, and the billing records written with
//! the decisions they bill.
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0003_metering"
    }
}

#[derive(Iden)]
enum Scenes {
    Table,
    SceneId,
    AppId,
    Name,
    Product,
    MatchFar,
    MaxAttempts,
    RetentionDays,
    KeepPhotos,
    IsDefault,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(Iden)]
enum Verifications {
    Table,
    SceneId,
    CreatedAt,
}

#[derive(Iden)]
enum BillingRecords {
    Table,
    Id,
    CertifyId,
    Event,
    AppId,
    SceneId,
    Product,
    OuterOrderNo,
    Day,
    BilledAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Scenes::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Scenes::SceneId)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Scenes::AppId).string_len(32).not_null())
                    .col(ColumnDef::new(Scenes::Name).string_len(128).not_null())
                    .col(ColumnDef::new(Scenes::Product).string_len(16).not_null())
                    .col(ColumnDef::new(Scenes::MatchFar).string_len(8).null())
                    .col(ColumnDef::new(Scenes::MaxAttempts).integer().null())
                    .col(ColumnDef::new(Scenes::RetentionDays).integer().null())
                    .col(ColumnDef::new(Scenes::KeepPhotos).boolean().not_null())
                    .col(ColumnDef::new(Scenes::IsDefault).boolean().not_null())
                    .col(ColumnDef::new(Scenes::Status).string_len(16).not_null())
                    .col(ColumnDef::new(Scenes::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Scenes::UpdatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("scenes_app_name")
                    .table(Scenes::Table)
                    .col(Scenes::AppId)
                    .col(Scenes::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Verifications::Table)
                    .add_column(ColumnDef::new(Verifications::SceneId).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("verifications_created")
                    .table(Verifications::Table)
                    .col(Verifications::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BillingRecords::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(BillingRecords::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(BillingRecords::CertifyId)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(BillingRecords::Event)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(BillingRecords::AppId)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(ColumnDef::new(BillingRecords::SceneId).big_integer().null())
                    .col(
                        ColumnDef::new(BillingRecords::Product)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(BillingRecords::OuterOrderNo)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(BillingRecords::Day)
                            .string_len(10)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(BillingRecords::BilledAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // Never doubled: one record per verification and billable event.
        manager
            .create_index(
                Index::create()
                    .name("billing_records_certify_event")
                    .table(BillingRecords::Table)
                    .col(BillingRecords::CertifyId)
                    .col(BillingRecords::Event)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("billing_records_day_app")
                    .table(BillingRecords::Table)
                    .col(BillingRecords::Day)
                    .col(BillingRecords::AppId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(BillingRecords::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("verifications_created")
                    .table(Verifications::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Verifications::Table)
                    .drop_column(Verifications::SceneId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Scenes::Table).to_owned())
            .await
    }
}
