//! A scene's liveness strictness: `standard` (the server's challenge) or `strict` (every challenge asks three
//! actions, each held longer). Unset means standard.
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0007_scene_liveness"
    }
}

#[derive(Iden)]
enum Scenes {
    Table,
    Liveness,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Scenes::Table)
                    .add_column(ColumnDef::new(Scenes::Liveness).string_len(16).null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Scenes::Table)
                    .drop_column(Scenes::Liveness)
                    .to_owned(),
            )
            .await
    }
}
