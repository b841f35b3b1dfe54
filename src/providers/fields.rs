//! The synced fields of a user and of a group, each defined once.
//!
//! A field is a text a directory gives and dirgate stores in one column. Its entry in
//! [`USER_FIELDS`] or [`GROUP_FIELDS`] names it the way the API, the events, the warnings and
//! the changed-field lists spell it, and says where it lives (the column, the match-key column
//! lookups use, the SCIM attribute) and how to read it from a directory's record and from a
//! stored row and write it to a row. Everything that goes field by field is derived from
//! these lists: the sync's diff and its `changedFields`, the upsert's columns (also the
//! PostgreSQL statement's text), a full read's fingerprints, a SCIM write's columns and its
//! filters, the events' state, the columns a GraphQL document reads, the input policy's
//! per-field cleaning. Adding an attribute is an entry here, its column (a migration and the
//! entity's field) and where each provider finds it.

use super::{ExternalGroup, ExternalUser};
use entity::{directory_group, directory_user, enums::UserStatus};
use sea_orm::ActiveValue::Set;

/// A field's value in a directory's record, to clean or fill in.
pub enum FieldMut<'a> {
    /// A text every record has (`userName`, `displayName`).
    Required(&'a mut String),
    /// A text a record may lack.
    Optional(&'a mut Option<String>),
}

impl FieldMut<'_> {
    /// Sets the value; a required field without one becomes empty.
    pub fn set(self, value: Option<&str>) {
        match self {
            Self::Required(v) => *v = value.unwrap_or_default().to_owned(),
            Self::Optional(v) => *v = value.map(str::to_owned),
        }
    }

    /// Sets the value without copying it.
    pub fn put(self, value: Option<String>) {
        match self {
            Self::Required(v) => *v = value.unwrap_or_default(),
            Self::Optional(v) => *v = value,
        }
    }
}

/// Where a user field sits in a SCIM user resource.
#[derive(Debug, Clone, Copy)]
pub struct ScimAttr {
    /// In the enterprise extension (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`)
    /// rather than the core schema.
    pub enterprise: bool,
    pub attr: &'static str,
    /// The sub-attribute (`name.givenName`).
    pub sub: Option<&'static str>,
    /// A multi-valued attribute's entry of this `type` (`phoneNumbers[type eq "mobile"]`);
    /// such a field is read and written, not filtered on.
    pub of_type: Option<&'static str>,
}

/// Where a user field sits in a Google Directory API `user`.
#[derive(Debug, Clone, Copy)]
pub enum GoogleAttr {
    /// A property of `name` (`givenName`).
    Name(&'static str),
    /// A property of the primary (else the first) of `organizations` (`title`).
    Organization(&'static str),
    /// The `value` of the first of `externalIds` of this `type` (`organization`).
    ExternalId(&'static str),
    /// The `value` of the first of `phones` of this `type` (`mobile`).
    Phone(&'static str),
    /// A property of the primary (else the first) of `addresses` (`country`).
    Address(&'static str),
    /// A property of the first of `languages` (`languageCode`).
    Language(&'static str),
    /// The `value` of the first of `relations` of this `type` (`manager`: an email).
    Relation(&'static str),
}

/// One synced text field of a user.
pub struct UserField {
    /// As the API, the events and the warnings spell it.
    pub name: &'static str,
    pub column: directory_user::Column,
    /// The column of its match key (trimmed, lower-cased), when lookups match on it.
    pub key: Option<directory_user::Column>,
    /// Where SCIM carries it, when a SCIM client sets it.
    pub scim: Option<ScimAttr>,
    /// The Graph `user` property that carries it as plain text, when Entra's client reads it
    /// as such (it adds the property to its `$select` and reads it from full and delta pages).
    pub entra: Option<&'static str>,
    /// Where Google's client reads it, when it reads it by the list.
    pub google: Option<GoogleAttr>,
    /// Whether every user has it (a `NOT NULL` column).
    pub required: bool,
    /// A required field's stand-in: the field whose value it takes when the directory's is
    /// empty or cleaning leaves nothing (an earlier field of [`USER_FIELDS`]).
    pub instead: Option<&'static str>,
    /// Its value in a directory's record.
    pub given: fn(&ExternalUser) -> Option<&str>,
    /// The same, to clean or fill in.
    pub given_mut: fn(&mut ExternalUser) -> FieldMut<'_>,
    /// Its value in a stored row.
    pub stored: fn(&directory_user::Model) -> Option<&str>,
    /// Writes a value to a row (and its match key).
    pub set: fn(&mut directory_user::ActiveModel, Option<&str>),
}

/// One synced text field of a group.
pub struct GroupField {
    /// As the API, the events and the warnings spell it.
    pub name: &'static str,
    pub column: directory_group::Column,
    /// Whether every group has it (a `NOT NULL` column).
    pub required: bool,
    /// Its value in a directory's record.
    pub given: fn(&ExternalGroup) -> Option<&str>,
    /// Its value in a stored row.
    pub stored: fn(&directory_group::Model) -> Option<&str>,
    /// Writes a value to a row.
    pub set: fn(&mut directory_group::ActiveModel, Option<&str>),
}

/// The row's value of a text a field may hold as `String` or `Option<String>`.
macro_rules! read {
    (required, $v:expr) => {
        Some($v.as_str())
    };
    (optional, $v:expr) => {
        $v.as_deref()
    };
}

/// A value for a `String` or `Option<String>` column.
macro_rules! value {
    (required, $v:expr) => {
        $v.unwrap_or_default().to_owned()
    };
    (optional, $v:expr) => {
        $v.map(str::to_owned)
    };
}

macro_rules! field_mut {
    (required, $v:expr) => {
        FieldMut::Required($v)
    };
    (optional, $v:expr) => {
        FieldMut::Optional($v)
    };
}

macro_rules! scim {
    () => {
        None
    };
    (core $attr:literal [$of_type:literal] . $sub:literal) => {
        Some(ScimAttr { enterprise: false, attr: $attr, sub: Some($sub), of_type: Some($of_type) })
    };
    (core $attr:literal $(. $sub:literal)?) => {
        Some(ScimAttr { enterprise: false, attr: $attr, sub: scim!(@sub $($sub)?), of_type: None })
    };
    (enterprise $attr:literal) => {
        Some(ScimAttr { enterprise: true, attr: $attr, sub: None, of_type: None })
    };
    (@sub) => { None };
    (@sub $sub:literal) => { Some($sub) };
}

/// A [`UserField`]: `field: kind "apiName", Column [, instead "field"] [, key key_field KeyColumn]
/// [, entra "graphProperty"] [, google Name|Organization|ExternalId "attr"]
/// [, scim (core|enterprise) "attr"[."sub"]]`.
macro_rules! user_field {
    ($field:ident: $kind:ident $name:literal, $column:ident $(, instead $instead:literal)?
        $(, key $keyfield:ident $key:ident)? $(, entra $entra:literal)? $(, google $gkind:ident $gattr:literal)?
        $(, scim $($scim:tt)+)?) => {
        UserField {
            name: $name,
            column: directory_user::Column::$column,
            key: user_field!(@key $($key)?),
            scim: scim!($($($scim)+)?),
            entra: user_field!(@instead $($entra)?),
            google: user_field!(@google $($gkind $gattr)?),
            required: user_field!(@required $kind),
            instead: user_field!(@instead $($instead)?),
            given: |u| read!($kind, u.$field),
            given_mut: |u| field_mut!($kind, &mut u.$field),
            stored: |m| read!($kind, m.$field),
            set: |a, v| {
                $(a.$keyfield = Set(value!($kind, v.map(crate::text::match_key).as_deref()));)?
                a.$field = Set(value!($kind, v));
            },
        }
    };
    (@key) => { None };
    (@key $key:ident) => { Some(directory_user::Column::$key) };
    (@google) => { None };
    (@google $kind:ident $attr:literal) => { Some(GoogleAttr::$kind($attr)) };
    (@instead) => { None };
    (@instead $instead:literal) => { Some($instead) };
    (@required required) => { true };
    (@required optional) => { false };
}

/// Every synced text field of a user, in the order the API and the events list them.
pub static USER_FIELDS: &[UserField] = &[
    user_field!(user_name: required "userName", UserName, instead "email", key user_name_key UserNameKey, scim core "userName"),
    user_field!(email: optional "email", Email, key email_key EmailKey),
    user_field!(display_name: required "displayName", DisplayName, instead "userName", scim core "displayName"),
    user_field!(given_name: optional "givenName", GivenName, entra "givenName",
        google Name "givenName", scim core "name"."givenName"),
    user_field!(family_name: optional "familyName", FamilyName, entra "surname",
        google Name "familyName", scim core "name"."familyName"),
    user_field!(job_title: optional "jobTitle", JobTitle, entra "jobTitle",
        google Organization "title", scim core "title"),
    user_field!(department: optional "department", Department, entra "department",
        google Organization "department", scim enterprise "department"),
    user_field!(employee_id: optional "employeeId", EmployeeId, entra "employeeId",
        google ExternalId "organization", scim enterprise "employeeNumber"),
    user_field!(employee_type: optional "employeeType", EmployeeType, entra "employeeType",
        google Organization "description", scim core "userType"),
    user_field!(office_location: optional "officeLocation", OfficeLocation, entra "officeLocation",
        google Organization "location"),
    user_field!(company_name: optional "companyName", CompanyName, entra "companyName",
        google Organization "name", scim enterprise "organization"),
    user_field!(division: optional "division", Division, entra "employeeOrgData/division",
        scim enterprise "division"),
    user_field!(cost_center: optional "costCenter", CostCenter, entra "employeeOrgData/costCenter",
        google Organization "costCenter", scim enterprise "costCenter"),
    user_field!(hire_date: optional "hireDate", HireDate, entra "employeeHireDate"),
    user_field!(mobile_phone: optional "mobilePhone", MobilePhone, entra "mobilePhone",
        google Phone "mobile", scim core "phoneNumbers"["mobile"]."value"),
    user_field!(country: optional "country", Country, entra "country",
        google Address "country", scim core "addresses"["work"]."country"),
    user_field!(preferred_language: optional "preferredLanguage", PreferredLanguage,
        entra "preferredLanguage", google Language "languageCode", scim core "preferredLanguage"),
    // Entra carries the manager as a relationship (`manager@delta`), read by its client;
    // SCIM's `manager.value` is read by the SCIM write itself (`scim::users`).
    user_field!(manager_external_id: optional "managerId", ManagerExternalId,
        google Relation "manager"),
];

macro_rules! group_field {
    ($field:ident: $kind:ident $name:literal, $column:ident) => {
        GroupField {
            name: $name,
            column: directory_group::Column::$column,
            required: user_field!(@required $kind),
            given: |g| read!($kind, g.$field),
            stored: |m| read!($kind, m.$field),
            set: |a, v| a.$field = Set(value!($kind, v)),
        }
    };
}

/// Every synced text field of a group, in the order the API and the events list them.
pub static GROUP_FIELDS: &[GroupField] = &[
    group_field!(display_name: required "displayName", DisplayName),
    group_field!(email: optional "email", Email),
    group_field!(description: optional "description", Description),
];

impl ExternalUser {
    /// The status a directory's record gives: suspended when the directory says so (Entra
    /// `accountEnabled: false`, Google `suspended`, SCIM `active: false`), else active.
    pub fn status(&self) -> UserStatus {
        if self.suspended {
            UserStatus::Suspended
        } else {
            UserStatus::Active
        }
    }

    /// A stored user as its directory would describe it (to merge a partial change onto).
    pub fn of_row(row: &directory_user::Model, aliases: Vec<String>) -> Self {
        let mut user = ExternalUser {
            external_id: row.external_id.clone(),
            suspended: row.status == UserStatus::Suspended,
            aliases,
            ..ExternalUser::default()
        };
        for field in USER_FIELDS {
            (field.given_mut)(&mut user).set((field.stored)(row));
        }
        user
    }
}

/// Writes a directory's record onto a user row: every synced field (and its match key), the
/// status; a user written by its directory is present again, so no longer archived (R14).
pub fn set_user(
    active: &mut directory_user::ActiveModel,
    user: &ExternalUser,
    at: chrono::DateTime<chrono::Utc>,
) {
    for field in USER_FIELDS {
        (field.set)(active, (field.given)(user));
    }
    active.status = Set(user.status());
    active.archived_at = Set(None);
    active.updated_at = Set(at);
}

/// The names of the fields a write of `user` (from the integration named `origin`) changes
/// in `row`: its synced fields, `status` and `origin`. Empty: nothing to write.
pub fn user_changes(
    row: &directory_user::Model,
    user: &ExternalUser,
    origin: &str,
) -> Vec<&'static str> {
    differences(
        |f| (f.stored)(row) != (f.given)(user),
        row.status != user.status(),
        row.origin_name != origin,
    )
}

/// The names of the fields that differ between two states of a stored user: its synced
/// fields, `status` and `origin`.
pub fn user_row_changes(
    before: &directory_user::Model,
    after: &directory_user::Model,
) -> Vec<&'static str> {
    differences(
        |f| (f.stored)(before) != (f.stored)(after),
        before.status != after.status,
        before.origin_name != after.origin_name,
    )
}

/// The synced fields for which `differs`, then `status` and `origin` when they do, by name.
fn differences(
    differs: impl Fn(&UserField) -> bool,
    status: bool,
    origin: bool,
) -> Vec<&'static str> {
    let mut changed: Vec<&str> = USER_FIELDS
        .iter()
        .filter(|f| differs(f))
        .map(|f| f.name)
        .collect();
    changed.extend(status.then_some("status"));
    changed.extend(origin.then_some("origin"));
    changed
}

/// The names of the fields a write of `group` changes in `row`.
pub fn group_changes(row: &directory_group::Model, group: &ExternalGroup) -> Vec<&'static str> {
    GROUP_FIELDS
        .iter()
        .filter(|f| (f.stored)(row) != (f.given)(group))
        .map(|f| f.name)
        .collect()
}

/// The names of the fields that differ between two states of a stored group.
pub fn group_row_changes(
    before: &directory_group::Model,
    after: &directory_group::Model,
) -> Vec<&'static str> {
    GROUP_FIELDS
        .iter()
        .filter(|f| (f.stored)(before) != (f.stored)(after))
        .map(|f| f.name)
        .collect()
}

/// Of `aliases`, the first of each match key (a directory may list one address twice, in
/// two cases), in order.
pub fn distinct_aliases(aliases: &[String]) -> Vec<&String> {
    let mut keys = std::collections::HashSet::new();
    aliases
        .iter()
        .filter(|a| keys.insert(crate::text::match_key(a)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> ExternalUser {
        ExternalUser {
            external_id: "u1".into(),
            user_name: "ada@example.com".into(),
            email: Some("Ada@Example.com".into()),
            display_name: "Ada".into(),
            given_name: Some("Ada".into()),
            family_name: Some("Lovelace".into()),
            job_title: Some("Engineer".into()),
            department: Some("R&D".into()),
            employee_id: Some("7".into()),
            employee_type: Some("Contractor".into()),
            suspended: true,
            aliases: vec!["a@example.com".into()],
            ..ExternalUser::default()
        }
    }

    fn stored(user: &ExternalUser) -> directory_user::Model {
        let mut active = directory_user::ActiveModel::default();
        set_user(&mut active, user, chrono::Utc::now());
        directory_user::Model {
            id: 1,
            integration_id: Some(1),
            origin_name: "Entra".into(),
            external_id: user.external_id.clone(),
            user_name: active.user_name.unwrap(),
            user_name_key: active.user_name_key.unwrap(),
            email: active.email.unwrap(),
            email_key: active.email_key.unwrap(),
            display_name: active.display_name.unwrap(),
            given_name: active.given_name.unwrap(),
            family_name: active.family_name.unwrap(),
            job_title: active.job_title.unwrap(),
            department: active.department.unwrap(),
            employee_id: active.employee_id.unwrap(),
            manager_external_id: active.manager_external_id.unwrap(),
            status: active.status.unwrap(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            archived_at: None,
            last_seen_run_id: None,
            scim_resource: None,
            scim_external_id: None,
            employee_type: active.employee_type.unwrap(),
            office_location: active.office_location.unwrap(),
            company_name: active.company_name.unwrap(),
            division: active.division.unwrap(),
            cost_center: active.cost_center.unwrap(),
            hire_date: active.hire_date.unwrap(),
            mobile_phone: active.mobile_phone.unwrap(),
            country: active.country.unwrap(),
            preferred_language: active.preferred_language.unwrap(),
        }
    }

    #[test]
    fn a_row_written_from_a_record_reads_back_as_the_record() {
        let user = user();
        let row = stored(&user);
        assert_eq!(row.email_key.as_deref(), Some("ada@example.com"));
        assert_eq!(row.user_name_key, "ada@example.com");
        assert_eq!(row.status, UserStatus::Suspended);
        assert_eq!(ExternalUser::of_row(&row, user.aliases.clone()), user);
        assert!(user_changes(&row, &user, "Entra").is_empty());
    }

    #[test]
    fn every_field_that_differs_is_named_once() {
        let user = user();
        let row = stored(&user);
        for field in USER_FIELDS {
            let mut other = user.clone();
            (field.given_mut)(&mut other).set(Some("something else"));
            assert_eq!(user_changes(&row, &other, "Entra"), [field.name]);
            assert_eq!(user_row_changes(&row, &stored(&other)), [field.name]);
        }
        let mut other = user.clone();
        other.suspended = false;
        assert_eq!(user_changes(&row, &other, "Okta"), ["status", "origin"]);
        let names: std::collections::HashSet<_> = USER_FIELDS.iter().map(|f| f.name).collect();
        assert_eq!(names.len(), USER_FIELDS.len());
    }

    #[test]
    fn an_alias_repeated_in_another_case_is_kept_once() {
        let aliases = ["a@x.com", "B@x.com", "A@X.com ", "b@x.com"].map(String::from);
        assert_eq!(distinct_aliases(&aliases), [&aliases[0], &aliases[1]]);
    }

    #[test]
    fn a_group_field_that_differs_is_named() {
        let group = ExternalGroup {
            external_id: "g1".into(),
            display_name: "Sales".into(),
            email: None,
            description: Some("All of sales".into()),
            members: None,
        };
        let mut active = directory_group::ActiveModel::default();
        for field in GROUP_FIELDS {
            (field.set)(&mut active, (field.given)(&group));
        }
        assert_eq!(
            active.description.clone().unwrap().as_deref(),
            Some("All of sales")
        );
        let mut other = group.clone();
        other.email = Some("sales@x.com".into());
        let row = directory_group::Model {
            id: 1,
            integration_id: 1,
            external_id: "g1".into(),
            display_name: active.display_name.unwrap(),
            email: active.email.unwrap(),
            description: active.description.unwrap(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            last_seen_run_id: None,
            scim_resource: None,
            scim_external_id: None,
        };
        assert!(group_changes(&row, &group).is_empty());
        assert_eq!(group_changes(&row, &other), ["email"]);
    }
}
