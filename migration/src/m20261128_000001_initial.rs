//! The initial data model: integrations, sync runs, directory users (and their aliases),
//! groups, memberships, devices, API tokens, audit events and pending OAuth authorizations.
//!
//! Constraints live here, not only in code: case-insensitive unique integration names
//! (`name_key`), unique `(integration_id, external_id)` for users and groups, unique device
//! serial numbers, foreign keys, and the indexes the GraphQL filters need.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Integrations {
    Table,
    Id,
    Name,
    NameKey,
    Kind,
    Status,
    StatusReason,
    Tenant,
    AuthorizedBy,
    GrantedScopes,
    AutoAssignDevices,
    SyncIntervalMinutes,
    RefreshTokenEnc,
    DeltaState,
    ScimTokenHash,
    ScimTokenHint,
    CreatedAt,
    UpdatedAt,
    LastSyncedAt,
    NextSyncAt,
}

#[derive(DeriveIden)]
enum SyncRuns {
    Table,
    Id,
    IntegrationId,
    Trigger,
    Status,
    QueuedAt,
    StartedAt,
    FinishedAt,
    PagesRead,
    UsersCreated,
    UsersUpdated,
    UsersSuspended,
    UsersRemoved,
    UsersArchived,
    UsersRestored,
    GroupsCreated,
    GroupsUpdated,
    GroupsRemoved,
    Error,
    LeaseOwner,
    LeaseExpiresAt,
}

#[derive(DeriveIden)]
enum DirectoryUsers {
    Table,
    Id,
    IntegrationId,
    OriginName,
    ExternalId,
    UserName,
    UserNameKey,
    Email,
    EmailKey,
    DisplayName,
    GivenName,
    FamilyName,
    JobTitle,
    Department,
    EmployeeId,
    ManagerExternalId,
    Status,
    CreatedAt,
    UpdatedAt,
    ArchivedAt,
    LastSeenRunId,
}

#[derive(DeriveIden)]
enum UserAliases {
    Table,
    Id,
    UserId,
    Alias,
    AliasKey,
}

#[derive(DeriveIden)]
enum DirectoryGroups {
    Table,
    Id,
    IntegrationId,
    ExternalId,
    DisplayName,
    Email,
    Description,
    CreatedAt,
    UpdatedAt,
    LastSeenRunId,
}

#[derive(DeriveIden)]
enum GroupMemberships {
    Table,
    GroupId,
    UserId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Devices {
    Table,
    Id,
    SerialNumber,
    Name,
    Platform,
    Model,
    OsVersion,
    EnrollmentIdentity,
    EnrollmentIdentityKey,
    UserId,
    AssignmentSource,
    AssignedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    Name,
    Role,
    SecretHash,
    Hint,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    Actor,
    ActorTokenId,
    Action,
    TargetType,
    TargetId,
    Details,
    CreatedAt,
}

#[derive(DeriveIden)]
enum OauthAuthorizations {
    Table,
    Id,
    IntegrationId,
    StateHash,
    CodeVerifier,
    Purpose,
    RedirectUri,
    CreatedAt,
    ExpiresAt,
    ConsumedAt,
}

fn index(name: &str, table: impl IntoIden + 'static) -> IndexCreateStatement {
    Index::create().name(name).table(table).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Integrations::Table)
                .col(big_pk_auto(Integrations::Id))
                .col(string_len(Integrations::Name, 64))
                .col(string_len(Integrations::NameKey, 64))
                .col(string_len(Integrations::Kind, 32))
                .col(string_len(Integrations::Status, 32))
                .col(text_null(Integrations::StatusReason))
                .col(string_null(Integrations::Tenant))
                .col(string_null(Integrations::AuthorizedBy))
                .col(text_null(Integrations::GrantedScopes))
                .col(boolean(Integrations::AutoAssignDevices).default(false))
                .col(integer_null(Integrations::SyncIntervalMinutes))
                .col(blob_null(Integrations::RefreshTokenEnc))
                .col(text_null(Integrations::DeltaState))
                .col(string_len_null(Integrations::ScimTokenHash, 64))
                .col(string_len_null(Integrations::ScimTokenHint, 16))
                .col(timestamp_with_time_zone(Integrations::CreatedAt))
                .col(timestamp_with_time_zone(Integrations::UpdatedAt))
                .col(timestamp_with_time_zone_null(Integrations::LastSyncedAt))
                .col(timestamp_with_time_zone_null(Integrations::NextSyncAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ux_integrations_name_key", Integrations::Table)
                .col(Integrations::NameKey)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ux_integrations_scim_token_hash", Integrations::Table)
                .col(Integrations::ScimTokenHash)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(SyncRuns::Table)
                .col(big_pk_auto(SyncRuns::Id))
                .col(big_integer(SyncRuns::IntegrationId))
                .col(string_len(SyncRuns::Trigger, 16))
                .col(string_len(SyncRuns::Status, 16))
                .col(timestamp_with_time_zone(SyncRuns::QueuedAt))
                .col(timestamp_with_time_zone_null(SyncRuns::StartedAt))
                .col(timestamp_with_time_zone_null(SyncRuns::FinishedAt))
                .col(integer(SyncRuns::PagesRead).default(0))
                .col(integer(SyncRuns::UsersCreated).default(0))
                .col(integer(SyncRuns::UsersUpdated).default(0))
                .col(integer(SyncRuns::UsersSuspended).default(0))
                .col(integer(SyncRuns::UsersRemoved).default(0))
                .col(integer(SyncRuns::UsersArchived).default(0))
                .col(integer(SyncRuns::UsersRestored).default(0))
                .col(integer(SyncRuns::GroupsCreated).default(0))
                .col(integer(SyncRuns::GroupsUpdated).default(0))
                .col(integer(SyncRuns::GroupsRemoved).default(0))
                .col(text_null(SyncRuns::Error))
                .col(string_null(SyncRuns::LeaseOwner))
                .col(timestamp_with_time_zone_null(SyncRuns::LeaseExpiresAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_sync_runs_integration")
                        .from(SyncRuns::Table, SyncRuns::IntegrationId)
                        .to(Integrations::Table, Integrations::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ix_sync_runs_integration", SyncRuns::Table)
                .col(SyncRuns::IntegrationId)
                .col(SyncRuns::Id)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(DirectoryUsers::Table)
                .col(big_pk_auto(DirectoryUsers::Id))
                // NULL once the integration is deleted and the user archived (R9).
                .col(big_integer_null(DirectoryUsers::IntegrationId))
                .col(string_len(DirectoryUsers::OriginName, 64))
                .col(string(DirectoryUsers::ExternalId))
                .col(string(DirectoryUsers::UserName))
                .col(string(DirectoryUsers::UserNameKey))
                .col(string_null(DirectoryUsers::Email))
                .col(string_null(DirectoryUsers::EmailKey))
                .col(string(DirectoryUsers::DisplayName))
                .col(string_null(DirectoryUsers::GivenName))
                .col(string_null(DirectoryUsers::FamilyName))
                .col(string_null(DirectoryUsers::JobTitle))
                .col(string_null(DirectoryUsers::Department))
                .col(string_null(DirectoryUsers::EmployeeId))
                .col(string_null(DirectoryUsers::ManagerExternalId))
                .col(string_len(DirectoryUsers::Status, 16))
                .col(timestamp_with_time_zone(DirectoryUsers::CreatedAt))
                .col(timestamp_with_time_zone(DirectoryUsers::UpdatedAt))
                .col(timestamp_with_time_zone_null(DirectoryUsers::ArchivedAt))
                .col(big_integer_null(DirectoryUsers::LastSeenRunId))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_directory_users_integration")
                        .from(DirectoryUsers::Table, DirectoryUsers::IntegrationId)
                        .to(Integrations::Table, Integrations::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ux_directory_users_external", DirectoryUsers::Table)
                .col(DirectoryUsers::IntegrationId)
                .col(DirectoryUsers::ExternalId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ix_directory_users_user_name_key", DirectoryUsers::Table)
                .col(DirectoryUsers::UserNameKey)
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ix_directory_users_email_key", DirectoryUsers::Table)
                .col(DirectoryUsers::EmailKey)
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ix_directory_users_status", DirectoryUsers::Table)
                .col(DirectoryUsers::Status)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(UserAliases::Table)
                .col(big_pk_auto(UserAliases::Id))
                .col(big_integer(UserAliases::UserId))
                .col(string(UserAliases::Alias))
                .col(string(UserAliases::AliasKey))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_user_aliases_user")
                        .from(UserAliases::Table, UserAliases::UserId)
                        .to(DirectoryUsers::Table, DirectoryUsers::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ux_user_aliases_user_alias", UserAliases::Table)
                .col(UserAliases::UserId)
                .col(UserAliases::AliasKey)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ix_user_aliases_alias_key", UserAliases::Table)
                .col(UserAliases::AliasKey)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(DirectoryGroups::Table)
                .col(big_pk_auto(DirectoryGroups::Id))
                .col(big_integer(DirectoryGroups::IntegrationId))
                .col(string(DirectoryGroups::ExternalId))
                .col(string(DirectoryGroups::DisplayName))
                .col(string_null(DirectoryGroups::Email))
                .col(text_null(DirectoryGroups::Description))
                .col(timestamp_with_time_zone(DirectoryGroups::CreatedAt))
                .col(timestamp_with_time_zone(DirectoryGroups::UpdatedAt))
                .col(big_integer_null(DirectoryGroups::LastSeenRunId))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_directory_groups_integration")
                        .from(DirectoryGroups::Table, DirectoryGroups::IntegrationId)
                        .to(Integrations::Table, Integrations::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ux_directory_groups_external", DirectoryGroups::Table)
                .col(DirectoryGroups::IntegrationId)
                .col(DirectoryGroups::ExternalId)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(GroupMemberships::Table)
                .col(big_integer(GroupMemberships::GroupId))
                .col(big_integer(GroupMemberships::UserId))
                .col(timestamp_with_time_zone(GroupMemberships::CreatedAt))
                .primary_key(
                    Index::create()
                        .col(GroupMemberships::GroupId)
                        .col(GroupMemberships::UserId),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_group_memberships_group")
                        .from(GroupMemberships::Table, GroupMemberships::GroupId)
                        .to(DirectoryGroups::Table, DirectoryGroups::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_group_memberships_user")
                        .from(GroupMemberships::Table, GroupMemberships::UserId)
                        .to(DirectoryUsers::Table, DirectoryUsers::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ix_group_memberships_user", GroupMemberships::Table)
                .col(GroupMemberships::UserId)
                .col(GroupMemberships::GroupId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Devices::Table)
                .col(big_pk_auto(Devices::Id))
                .col(string_len(Devices::SerialNumber, 64))
                .col(string(Devices::Name))
                .col(string_len(Devices::Platform, 16))
                .col(string_null(Devices::Model))
                .col(string_null(Devices::OsVersion))
                .col(string_null(Devices::EnrollmentIdentity))
                .col(string_null(Devices::EnrollmentIdentityKey))
                .col(big_integer_null(Devices::UserId))
                .col(string_len_null(Devices::AssignmentSource, 16))
                .col(timestamp_with_time_zone_null(Devices::AssignedAt))
                .col(timestamp_with_time_zone(Devices::CreatedAt))
                .col(timestamp_with_time_zone(Devices::UpdatedAt))
                // A user with a device is archived, never deleted (R9, R14): the database
                // refuses to delete it.
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_devices_user")
                        .from(Devices::Table, Devices::UserId)
                        .to(DirectoryUsers::Table, DirectoryUsers::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ux_devices_serial_number", Devices::Table)
                .col(Devices::SerialNumber)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ix_devices_user", Devices::Table)
                .col(Devices::UserId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ix_devices_enrollment_identity_key", Devices::Table)
                .col(Devices::EnrollmentIdentityKey)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ApiTokens::Table)
                .col(big_pk_auto(ApiTokens::Id))
                .col(string_len(ApiTokens::Name, 64))
                .col(string_len(ApiTokens::Role, 16))
                .col(string_len(ApiTokens::SecretHash, 64))
                .col(string_len(ApiTokens::Hint, 16))
                .col(timestamp_with_time_zone(ApiTokens::CreatedAt))
                .col(timestamp_with_time_zone_null(ApiTokens::LastUsedAt))
                .col(timestamp_with_time_zone_null(ApiTokens::RevokedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(AuditEvents::Table)
                .col(big_pk_auto(AuditEvents::Id))
                .col(string(AuditEvents::Actor))
                .col(big_integer_null(AuditEvents::ActorTokenId))
                .col(string_len(AuditEvents::Action, 64))
                .col(string_len_null(AuditEvents::TargetType, 32))
                .col(string_null(AuditEvents::TargetId))
                .col(text_null(AuditEvents::Details))
                .col(timestamp_with_time_zone(AuditEvents::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ix_audit_events_created_at", AuditEvents::Table)
                .col(AuditEvents::CreatedAt)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(OauthAuthorizations::Table)
                .col(big_pk_auto(OauthAuthorizations::Id))
                .col(big_integer(OauthAuthorizations::IntegrationId))
                .col(string_len(OauthAuthorizations::StateHash, 64))
                .col(text(OauthAuthorizations::CodeVerifier))
                .col(string_len(OauthAuthorizations::Purpose, 16))
                .col(text(OauthAuthorizations::RedirectUri))
                .col(timestamp_with_time_zone(OauthAuthorizations::CreatedAt))
                .col(timestamp_with_time_zone(OauthAuthorizations::ExpiresAt))
                .col(timestamp_with_time_zone_null(
                    OauthAuthorizations::ConsumedAt,
                ))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_oauth_authorizations_integration")
                        .from(
                            OauthAuthorizations::Table,
                            OauthAuthorizations::IntegrationId,
                        )
                        .to(Integrations::Table, Integrations::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("ux_oauth_authorizations_state", OauthAuthorizations::Table)
                .col(OauthAuthorizations::StateHash)
                .unique()
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            OauthAuthorizations::Table.into_iden(),
            AuditEvents::Table.into_iden(),
            ApiTokens::Table.into_iden(),
            Devices::Table.into_iden(),
            GroupMemberships::Table.into_iden(),
            DirectoryGroups::Table.into_iden(),
            UserAliases::Table.into_iden(),
            DirectoryUsers::Table.into_iden(),
            SyncRuns::Table.into_iden(),
            Integrations::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
