//! `integrations.scope`: what an integration imports (R19), as JSON: `{"kind": "ALL"}` (or
//! NULL, the default), `{"kind": "GROUPS", "groups": [...]}` with the directory's group ids,
//! `{"kind": "ORG_UNITS", "paths": [...]}` (Google).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Integrations {
    Table,
    Scope,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Integrations::Table)
                .add_column(text_null(Integrations::Scope))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Integrations::Table)
                .drop_column(Integrations::Scope)
                .to_owned(),
        )
        .await
    }
}
