//! Personal data sealed at rest: the registry of data keys (one canary per key, so that a server started with the
//! wrong key refuses to start), and a blind index of the ID number of each verification and registry identity. The
//! values themselves are sealed by the server at start (it holds the key; a migration does not). Also the
//! append-only audit log (each entry chained to the one before by its hash), and when a verification's personal
//! data was erased, its result first read, and what consent text the person agreed to when.
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_sealed_personal_data"
    }
}

#[derive(Iden)]
enum DataKeys {
    Table,
    KeyId,
    Canary,
    CreatedAt,
}

#[derive(Iden)]
enum Verifications {
    Table,
    CertName,
    CertNo,
    CertNoIndex,
    ErasedAt,
    ResultReadAt,
    ConsentAt,
    ConsentVersion,
}

#[derive(Iden)]
enum AuditLog {
    Table,
    Seq,
    At,
    Actor,
    Action,
    Target,
    Detail,
    PrevHash,
    Hash,
}

#[derive(Iden)]
enum Identities {
    Table,
    CertName,
    CertNo,
    CertNoIndex,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Sealed values are longer than the clear ones the columns were sized for. SQLite does not enforce sizes
        // (and cannot change a column's type); the others widen to text.
        if manager.get_database_backend() != sea_orm_migration::sea_orm::DatabaseBackend::Sqlite {
            for col in [Verifications::CertName, Verifications::CertNo] {
                manager
                    .alter_table(
                        Table::alter()
                            .table(Verifications::Table)
                            .modify_column(ColumnDef::new(col).text().not_null())
                            .to_owned(),
                    )
                    .await?;
            }
            for col in [Identities::CertName, Identities::CertNo] {
                let mut def = ColumnDef::new(col);
                // The sealed number is the registry's primary key: MySQL keys no TEXT column (error 1170), so there
                // it is a string wide enough for a sealed number (about 80 characters).
                if manager.get_database_backend()
                    == sea_orm_migration::sea_orm::DatabaseBackend::MySql
                {
                    def.string_len(255);
                } else {
                    def.text();
                }
                manager
                    .alter_table(
                        Table::alter()
                            .table(Identities::Table)
                            .modify_column(def.not_null())
                            .to_owned(),
                    )
                    .await?;
            }
        }
        manager
            .create_table(
                Table::create()
                    .table(DataKeys::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(DataKeys::KeyId)
                            .string_len(16)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(DataKeys::Canary).text().not_null())
                    .col(ColumnDef::new(DataKeys::CreatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Verifications::Table)
                    .add_column(
                        ColumnDef::new(Verifications::CertNoIndex)
                            .string_len(32)
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Verifications::Table)
                    .add_column(
                        ColumnDef::new(Verifications::ConsentVersion)
                            .string_len(64)
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        for col in [
            Verifications::ErasedAt,
            Verifications::ResultReadAt,
            Verifications::ConsentAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Verifications::Table)
                        .add_column(ColumnDef::new(col).big_integer().null())
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .if_not_exists()
                    // Not auto-incremented: an instance appends `last + 1`, and the primary key makes a concurrent
                    // append of the same number fail (and retry) instead of forking the chain.
                    .col(
                        ColumnDef::new(AuditLog::Seq)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AuditLog::At).big_integer().not_null())
                    .col(ColumnDef::new(AuditLog::Actor).string_len(128).not_null())
                    .col(ColumnDef::new(AuditLog::Action).string_len(32).not_null())
                    .col(ColumnDef::new(AuditLog::Target).string_len(128).not_null())
                    .col(ColumnDef::new(AuditLog::Detail).text().not_null())
                    .col(ColumnDef::new(AuditLog::PrevHash).string_len(64).not_null())
                    .col(ColumnDef::new(AuditLog::Hash).string_len(64).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_verifications_cert_no_index")
                    .table(Verifications::Table)
                    .col(Verifications::CertNoIndex)
                    .to_owned(),
            )
            .await?;
        // The registry keeps its key column, which now holds the sealed number (until the server's start-up pass
        // seals a row: the clear one); rows are found by the blind index of the number.
        manager
            .alter_table(
                Table::alter()
                    .table(Identities::Table)
                    .add_column(
                        ColumnDef::new(Identities::CertNoIndex)
                            .string_len(32)
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_identities_cert_no_index")
                    .table(Identities::Table)
                    .col(Identities::CertNoIndex)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditLog::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(DataKeys::Table).to_owned())
            .await
    }
}
