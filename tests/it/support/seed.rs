//! Named builders that seed what a test needs through the entity layer (the API cannot
//! create users: R10).

use super::Fixture;
use chrono::Utc;
use entity::{
    device, directory_group, directory_user,
    enums::{AssignmentSource, DevicePlatform, DirectoryKind, IntegrationStatus, UserStatus},
    group_membership, integration, user_alias,
};
use sea_orm::{ActiveModelTrait, EntityTrait, Set};

impl Fixture {
    /// An integration named `name`: ACTIVE Entra ID unless told otherwise.
    pub fn integration(&self, name: &str) -> IntegrationBuilder<'_> {
        IntegrationBuilder {
            fx: self,
            name: name.to_owned(),
            kind: DirectoryKind::EntraId,
            status: IntegrationStatus::Active,
            auto_assign: false,
        }
    }

    /// A user of `integration` signing in as `user_name`.
    pub fn user<'a>(
        &'a self,
        integration: &integration::Model,
        user_name: &str,
    ) -> UserBuilder<'a> {
        UserBuilder {
            fx: self,
            integration_id: integration.id,
            origin: integration.name.clone(),
            user_name: user_name.to_owned(),
            display_name: user_name.split('@').next().unwrap_or(user_name).to_owned(),
            email: Some(user_name.to_owned()),
            aliases: Vec::new(),
            status: UserStatus::Active,
            detached: false,
        }
    }

    /// A group of `integration` with `members`.
    pub async fn group(
        &self,
        integration: &integration::Model,
        name: &str,
        members: &[&directory_user::Model],
    ) -> directory_group::Model {
        let now = Utc::now();
        let group = directory_group::ActiveModel {
            integration_id: Set(integration.id),
            external_id: Set(format!("group-{name}")),
            display_name: Set(name.to_owned()),
            email: Set(None),
            description: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&self.db)
        .await
        .expect("insert group");
        for member in members {
            group_membership::ActiveModel {
                group_id: Set(group.id),
                user_id: Set(member.id),
                created_at: Set(now),
            }
            .insert(&self.db)
            .await
            .expect("insert membership");
        }
        group
    }

    /// A device with `serial`, assigned by hand to `user` when given.
    pub async fn device(
        &self,
        serial: &str,
        user: Option<&directory_user::Model>,
    ) -> device::Model {
        let now = Utc::now();
        device::ActiveModel {
            serial_number: Set(serial.to_uppercase()),
            name: Set(format!("Device {serial}")),
            platform: Set(DevicePlatform::Macos),
            model: Set(Some("MacBookPro18,3".into())),
            os_version: Set(Some("15.1".into())),
            enrollment_identity: Set(None),
            enrollment_identity_key: Set(None),
            user_id: Set(user.map(|u| u.id)),
            assignment_source: Set(user.map(|_| AssignmentSource::Manual)),
            assigned_at: Set(user.map(|_| now)),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&self.db)
        .await
        .expect("insert device")
    }

    /// `users` users and `groups` groups in `integration`, each user in two groups and with a
    /// device, inserted in bulk.
    pub async fn bulk(&self, integration: &integration::Model, users: usize, groups: usize) {
        let now = Utc::now();
        let user_rows: Vec<directory_user::ActiveModel> = (0..users)
            .map(|i| {
                let name = format!("user{i:05}@bulk.example");
                directory_user::ActiveModel {
                    integration_id: Set(Some(integration.id)),
                    origin_name: Set(integration.name.clone()),
                    external_id: Set(format!("ext-{i}")),
                    user_name: Set(name.clone()),
                    user_name_key: Set(name.clone()),
                    email: Set(Some(name.clone())),
                    email_key: Set(Some(name)),
                    display_name: Set(format!("Bulk User {i}")),
                    status: Set(UserStatus::Active),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                }
            })
            .collect();
        for chunk in user_rows.chunks(500) {
            directory_user::Entity::insert_many(chunk.to_vec())
                .exec(&self.db)
                .await
                .expect("insert users");
        }
        let group_rows: Vec<directory_group::ActiveModel> = (0..groups)
            .map(|i| directory_group::ActiveModel {
                integration_id: Set(integration.id),
                external_id: Set(format!("bulk-group-{i}")),
                display_name: Set(format!("Bulk Group {i}")),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            })
            .collect();
        for chunk in group_rows.chunks(500) {
            directory_group::Entity::insert_many(chunk.to_vec())
                .exec(&self.db)
                .await
                .expect("insert groups");
        }
        let user_ids: Vec<i64> = directory_user::Entity::find()
            .all(&self.db)
            .await
            .expect("users")
            .into_iter()
            .filter(|u| u.integration_id == Some(integration.id))
            .map(|u| u.id)
            .collect();
        let group_ids: Vec<i64> = directory_group::Entity::find()
            .all(&self.db)
            .await
            .expect("groups")
            .into_iter()
            .filter(|g| g.integration_id == integration.id)
            .map(|g| g.id)
            .collect();
        let mut memberships = Vec::new();
        for (i, user) in user_ids.iter().enumerate() {
            for offset in [0, 1] {
                if group_ids.is_empty() {
                    break;
                }
                let group = group_ids[(i + offset) % group_ids.len()];
                if offset == 1 && group_ids.len() == 1 {
                    break;
                }
                memberships.push(group_membership::ActiveModel {
                    group_id: Set(group),
                    user_id: Set(*user),
                    created_at: Set(now),
                });
            }
        }
        for chunk in memberships.chunks(500) {
            group_membership::Entity::insert_many(chunk.to_vec())
                .exec(&self.db)
                .await
                .expect("insert memberships");
        }
        let devices: Vec<device::ActiveModel> = user_ids
            .iter()
            .map(|user| device::ActiveModel {
                serial_number: Set(format!("BULK{user:08}")),
                name: Set(format!("Bulk device {user}")),
                platform: Set(DevicePlatform::Windows),
                user_id: Set(Some(*user)),
                assignment_source: Set(Some(AssignmentSource::Manual)),
                assigned_at: Set(Some(now)),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            })
            .collect();
        for chunk in devices.chunks(500) {
            device::Entity::insert_many(chunk.to_vec())
                .exec(&self.db)
                .await
                .expect("insert devices");
        }
    }
}

/// Builds an integration row.
pub struct IntegrationBuilder<'a> {
    fx: &'a Fixture,
    name: String,
    kind: DirectoryKind,
    status: IntegrationStatus,
    auto_assign: bool,
}

impl IntegrationBuilder<'_> {
    pub fn kind(mut self, kind: DirectoryKind) -> Self {
        self.kind = kind;
        self
    }

    pub fn status(mut self, status: IntegrationStatus) -> Self {
        self.status = status;
        self
    }

    /// Turns automatic device assignment on (R12).
    pub fn auto_assign(mut self) -> Self {
        self.auto_assign = true;
        self
    }

    pub async fn create(self) -> integration::Model {
        let now = Utc::now();
        integration::ActiveModel {
            awaiting_scope: sea_orm::Set(false),
            name: Set(self.name.clone()),
            name_key: Set(self.name.trim().to_lowercase()),
            kind: Set(self.kind),
            status: Set(self.status),
            tenant: Set(Some("contoso.example".into())),
            authorized_by: Set(Some("admin@contoso.example".into())),
            granted_scopes: Set(Some("User.Read.All Group.Read.All".into())),
            auto_assign_devices: Set(self.auto_assign),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&self.fx.db)
        .await
        .expect("insert integration")
    }
}

/// Builds a directory user row.
pub struct UserBuilder<'a> {
    fx: &'a Fixture,
    integration_id: i64,
    origin: String,
    user_name: String,
    display_name: String,
    email: Option<String>,
    aliases: Vec<String>,
    status: UserStatus,
    detached: bool,
}

impl UserBuilder<'_> {
    pub fn display_name(mut self, name: &str) -> Self {
        self.display_name = name.to_owned();
        self
    }

    pub fn email(mut self, email: Option<&str>) -> Self {
        self.email = email.map(str::to_owned);
        self
    }

    pub fn alias(mut self, alias: &str) -> Self {
        self.aliases.push(alias.to_owned());
        self
    }

    pub fn status(mut self, status: UserStatus) -> Self {
        self.status = status;
        self
    }

    /// Archived with no integration, as after its integration was deleted (R9).
    pub fn detached(mut self) -> Self {
        self.detached = true;
        self.status = UserStatus::Archived;
        self
    }

    pub async fn create(self) -> directory_user::Model {
        let now = Utc::now();
        let user = directory_user::ActiveModel {
            integration_id: Set((!self.detached).then_some(self.integration_id)),
            origin_name: Set(self.origin),
            external_id: Set(format!("ext-{}", self.user_name)),
            user_name: Set(self.user_name.clone()),
            user_name_key: Set(self.user_name.to_lowercase()),
            email_key: Set(self.email.as_ref().map(|e| e.to_lowercase())),
            email: Set(self.email),
            display_name: Set(self.display_name),
            status: Set(self.status),
            archived_at: Set((self.status == UserStatus::Archived).then_some(now)),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&self.fx.db)
        .await
        .expect("insert user");
        for alias in self.aliases {
            user_alias::ActiveModel {
                user_id: Set(user.id),
                alias_key: Set(alias.to_lowercase()),
                alias: Set(alias),
                ..Default::default()
            }
            .insert(&self.fx.db)
            .await
            .expect("insert alias");
        }
        user
    }
}
