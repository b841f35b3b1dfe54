//! `directory_users.employee_type`: how the organisation employs a user (Entra `employeeType`,
//! Google's primary organization's `description`, SCIM `userType`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DirectoryUsers {
    Table,
    EmployeeType,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(DirectoryUsers::Table)
                .add_column(text_null(DirectoryUsers::EmployeeType))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(DirectoryUsers::Table)
                .drop_column(DirectoryUsers::EmployeeType)
                .to_owned(),
        )
        .await
    }
}
