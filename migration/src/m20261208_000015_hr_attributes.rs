//! The standard HR attributes of a user (`providers::fields` says which source field feeds
//! each): office location, company, division, cost center, hire date, mobile phone, country,
//! preferred language; and an index for a manager's direct reports
//! (`(integration_id, manager_external_id)`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum DirectoryUsers {
    Table,
    IntegrationId,
    ManagerExternalId,
    OfficeLocation,
    CompanyName,
    Division,
    CostCenter,
    HireDate,
    MobilePhone,
    Country,
    PreferredLanguage,
}

const COLUMNS: [DirectoryUsers; 8] = [
    DirectoryUsers::OfficeLocation,
    DirectoryUsers::CompanyName,
    DirectoryUsers::Division,
    DirectoryUsers::CostCenter,
    DirectoryUsers::HireDate,
    DirectoryUsers::MobilePhone,
    DirectoryUsers::Country,
    DirectoryUsers::PreferredLanguage,
];

const REPORTS: &str = "ix_directory_users_manager";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        for column in COLUMNS {
            m.alter_table(
                Table::alter()
                    .table(DirectoryUsers::Table)
                    .add_column(text_null(column))
                    .to_owned(),
            )
            .await?;
        }
        m.create_index(
            Index::create()
                .name(REPORTS)
                .table(DirectoryUsers::Table)
                .col(DirectoryUsers::IntegrationId)
                .col(DirectoryUsers::ManagerExternalId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name(REPORTS)
                .table(DirectoryUsers::Table)
                .to_owned(),
        )
        .await?;
        for column in COLUMNS {
            m.alter_table(
                Table::alter()
                    .table(DirectoryUsers::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
