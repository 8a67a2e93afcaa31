//! What the cloud API's verifications add: the merchant's callback (URL and token, delivered when a verification
//! finishes) and the api the verification came through.
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0005_cloud_verifications"
    }
}

#[derive(Iden)]
enum Verifications {
    Table,
    CallbackUrl,
    CallbackToken,
    Api,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        for col in [
            ColumnDef::new(Verifications::CallbackUrl)
                .string_len(1024)
                .null()
                .to_owned(),
            ColumnDef::new(Verifications::CallbackToken)
                .string_len(256)
                .null()
                .to_owned(),
            ColumnDef::new(Verifications::Api)
                .string_len(16)
                .not_null()
                .default("alipay")
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Verifications::Table)
                        .add_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for col in [
            Verifications::Api,
            Verifications::CallbackToken,
            Verifications::CallbackUrl,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Verifications::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
