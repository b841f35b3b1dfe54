//! SCIM resources as the provisioning client sent them (canonical attribute names), so every
//! attribute of the published schemas reads back as written; dirgate's own columns are derived
//! from it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DirectoryUsers {
    Table,
    ScimResource,
}

#[derive(DeriveIden)]
enum DirectoryGroups {
    Table,
    ScimResource,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(DirectoryUsers::Table)
                .add_column(text_null(DirectoryUsers::ScimResource))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(DirectoryGroups::Table)
                .add_column(text_null(DirectoryGroups::ScimResource))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(DirectoryUsers::Table)
                .drop_column(DirectoryUsers::ScimResource)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(DirectoryGroups::Table)
                .drop_column(DirectoryGroups::ScimResource)
                .to_owned(),
        )
        .await
    }
}
