//! Lists of an integration's users and groups in id order (the SCIM endpoint's pages, GraphQL
//! connections): an index on `(integration_id, id)` gives that order without sorting the
//! integration's rows, and carries the user's `status`, so skipping to a page (`OFFSET`)
//! reads the index alone.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DirectoryUsers {
    Table,
    IntegrationId,
    Id,
    Status,
}

#[derive(DeriveIden)]
enum DirectoryGroups {
    Table,
    IntegrationId,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name("ix_directory_users_integration_order")
                .table(DirectoryUsers::Table)
                .col(DirectoryUsers::IntegrationId)
                .col(DirectoryUsers::Id)
                .col(DirectoryUsers::Status)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_directory_groups_integration_order")
                .table(DirectoryGroups::Table)
                .col(DirectoryGroups::IntegrationId)
                .col(DirectoryGroups::Id)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (index, table) in [
            ("ix_directory_users_integration_order", "directory_users"),
            ("ix_directory_groups_integration_order", "directory_groups"),
        ] {
            m.drop_index(
                Index::drop()
                    .name(index)
                    .table(Alias::new(table))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
