//! `group_nesting`: a group that is a member of another group of the same integration (Entra
//! and Google nest groups; SCIM clients push group members of type `Group`). One row per
//! direct edge, parent and child; transitive reads follow the edges with a recursive query,
//! bounded in depth, so a cycle (which SCIM clients can create) ends.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum GroupNesting {
    Table,
    ParentId,
    ChildId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum DirectoryGroups {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(GroupNesting::Table)
                .col(big_integer(GroupNesting::ParentId))
                .col(big_integer(GroupNesting::ChildId))
                .col(timestamp_with_time_zone(GroupNesting::CreatedAt))
                .primary_key(
                    Index::create()
                        .col(GroupNesting::ParentId)
                        .col(GroupNesting::ChildId),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_group_nesting_parent")
                        .from(GroupNesting::Table, GroupNesting::ParentId)
                        .to(DirectoryGroups::Table, DirectoryGroups::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_group_nesting_child")
                        .from(GroupNesting::Table, GroupNesting::ChildId)
                        .to(DirectoryGroups::Table, DirectoryGroups::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // A group's parents, in order (the primary key serves its children).
        m.create_index(
            Index::create()
                .name("ix_group_nesting_child")
                .table(GroupNesting::Table)
                .col(GroupNesting::ChildId)
                .col(GroupNesting::ParentId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(GroupNesting::Table).to_owned())
            .await
    }
}
