//! `integrations.awaiting_scope`: the admin asked, when adding the integration, to choose what
//! it imports before anything is: the sign-in then leaves it AWAITING_SCOPE (R19) until a
//! scope is set.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Integrations {
    Table,
    AwaitingScope,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Integrations::Table)
                .add_column(boolean(Integrations::AwaitingScope).default(false))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Integrations::Table)
                .drop_column(Integrations::AwaitingScope)
                .to_owned(),
        )
        .await
    }
}
