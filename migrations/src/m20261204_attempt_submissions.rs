//! How many times a challenge was submitted: every submission counts (one refused for its frames too), so a
//! challenge cannot be resubmitted without end.
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_attempt_submissions"
    }
}

#[derive(Iden)]
enum Attempts {
    Table,
    Submissions,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Attempts::Table)
                    .add_column(
                        ColumnDef::new(Attempts::Submissions)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Attempts::Table)
                    .drop_column(Attempts::Submissions)
                    .to_owned(),
            )
            .await
    }
}
