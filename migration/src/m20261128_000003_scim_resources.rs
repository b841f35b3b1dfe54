//! SCIM resources as the provisioning client sent them (canonical attribute names), so every
//! attribute of the published schemas reads back as written; dirgate's own columns are derived
//! from it. The client's `externalId` gets a column and an index: Entra looks users and groups
//! up by it before every create.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DirectoryUsers {
    Table,
    IntegrationId,
    ScimResource,
    ScimExternalId,
}

#[derive(DeriveIden)]
enum DirectoryGroups {
    Table,
    IntegrationId,
    ScimResource,
    ScimExternalId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in [DirectoryUsers::ScimResource, DirectoryUsers::ScimExternalId] {
            m.alter_table(
                Table::alter()
                    .table(DirectoryUsers::Table)
                    .add_column(text_null(column))
                    .to_owned(),
            )
            .await?;
        }
        for column in [
            DirectoryGroups::ScimResource,
            DirectoryGroups::ScimExternalId,
        ] {
            m.alter_table(
                Table::alter()
                    .table(DirectoryGroups::Table)
                    .add_column(text_null(column))
                    .to_owned(),
            )
            .await?;
        }
        m.create_index(
            Index::create()
                .name("ix_directory_users_scim_external_id")
                .table(DirectoryUsers::Table)
                .col(DirectoryUsers::IntegrationId)
                .col(DirectoryUsers::ScimExternalId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_directory_groups_scim_external_id")
                .table(DirectoryGroups::Table)
                .col(DirectoryGroups::IntegrationId)
                .col(DirectoryGroups::ScimExternalId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for index in [
            ("ix_directory_users_scim_external_id", "directory_users"),
            ("ix_directory_groups_scim_external_id", "directory_groups"),
        ] {
            m.drop_index(
                Index::drop()
                    .name(index.0)
                    .table(Alias::new(index.1))
                    .to_owned(),
            )
            .await?;
        }
        for column in [DirectoryUsers::ScimResource, DirectoryUsers::ScimExternalId] {
            m.alter_table(
                Table::alter()
                    .table(DirectoryUsers::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        for column in [
            DirectoryGroups::ScimResource,
            DirectoryGroups::ScimExternalId,
        ] {
            m.alter_table(
                Table::alter()
                    .table(DirectoryGroups::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
