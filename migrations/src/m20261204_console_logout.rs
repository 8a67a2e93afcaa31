//! Console sessions ended by logout, kept until they would have expired: the session cookie is stateless (signed),
//! so a logout must be remembered where every instance, and the next start, sees it.
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_console_logout"
    }
}

#[derive(Iden)]
enum ConsoleRevokedSessions {
    Table,
    Nonce,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ConsoleRevokedSessions::Table)
                    .if_not_exists()
                    // The session's nonce (32 hex digits), as in its cookie.
                    .col(
                        ColumnDef::new(ConsoleRevokedSessions::Nonce)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    // When the session would have expired (Unix seconds): the row can go then.
                    .col(
                        ColumnDef::new(ConsoleRevokedSessions::ExpiresAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("console_revoked_sessions_expires")
                    .table(ConsoleRevokedSessions::Table)
                    .col(ConsoleRevokedSessions::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(ConsoleRevokedSessions::Table)
                    .to_owned(),
            )
            .await
    }
}
