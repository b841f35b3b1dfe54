//! Google Workspace through the Admin SDK Directory API: users, groups and group members,
//! paged by `pageToken`.

use super::{
    DirectoryProvider, ExternalGroup, ExternalUser, Member, ProviderError, ProviderPage,
    fields::{GoogleAttr, USER_FIELDS},
    http::Session,
};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Google's page size limit for groups and members.
const GROUP_PAGE: u32 = 200;

/// `users.list`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsersPage {
    #[serde(default)]
    pub users: Vec<GoogleUser>,
    pub next_page_token: Option<String>,
}

/// A Directory API user. `name`, `organizations` and `externalIds` are read by the synced
/// fields' descriptors (`UserField::google`); an entry that is not an object is passed over.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoogleUser {
    pub id: String,
    pub primary_email: String,
    #[serde(default)]
    pub name: Map<String, Value>,
    #[serde(default)]
    pub suspended: bool,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub organizations: Vec<Value>,
    #[serde(default)]
    pub external_ids: Vec<Value>,
    #[serde(default)]
    pub phones: Vec<Value>,
    #[serde(default)]
    pub addresses: Vec<Value>,
    #[serde(default)]
    pub languages: Vec<Value>,
    #[serde(default)]
    pub relations: Vec<Value>,
}

/// The `key` of the first entry of `list` whose `type` is `kind`.
fn of_type<'a>(list: &'a [Value], kind: &str, key: &str) -> Option<&'a Value> {
    list.iter()
        .find(|e| e.get("type").and_then(Value::as_str) == Some(kind))
        .and_then(|e| e.get(key))
}

impl GoogleUser {
    /// The value of a synced field at `at`, when it is text.
    fn value(&self, at: GoogleAttr) -> Option<String> {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        match at {
            GoogleAttr::Name(key) => text(self.name.get(key)),
            GoogleAttr::Organization(key) => {
                let primary = self
                    .organizations
                    .iter()
                    .find(|o| o.get("primary") == Some(&Value::Bool(true)))
                    .or_else(|| self.organizations.first());
                text(primary.and_then(|o| o.get(key)))
            }
            GoogleAttr::ExternalId(kind) => text(of_type(&self.external_ids, kind, "value")),
            GoogleAttr::Phone(kind) => text(of_type(&self.phones, kind, "value")),
            GoogleAttr::Relation(kind) => text(of_type(&self.relations, kind, "value")),
            GoogleAttr::Address(key) => {
                let primary = self
                    .addresses
                    .iter()
                    .find(|a| a.get("primary") == Some(&Value::Bool(true)))
                    .or_else(|| self.addresses.first());
                text(primary.and_then(|a| a.get(key)))
            }
            GoogleAttr::Language(key) => text(self.languages.first().and_then(|l| l.get(key))),
        }
    }
}

/// `groups.list`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupsPage {
    #[serde(default)]
    pub groups: Vec<GoogleGroup>,
    pub next_page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct GoogleGroup {
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
}

/// `members.list`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MembersPage {
    #[serde(default)]
    pub members: Vec<GoogleMember>,
    pub next_page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct GoogleMember {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

impl From<GoogleUser> for ExternalUser {
    fn from(u: GoogleUser) -> Self {
        let mut user = ExternalUser {
            display_name: u
                .value(GoogleAttr::Name("fullName"))
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| u.primary_email.clone()),
            external_id: u.id.clone(),
            email: Some(u.primary_email.clone()),
            user_name: u.primary_email.clone(),
            suspended: u.suspended || u.archived,
            ..ExternalUser::default()
        };
        for field in USER_FIELDS {
            if let Some(at) = field.google {
                (field.given_mut)(&mut user).put(u.value(at));
            }
        }
        user.aliases = u.aliases;
        user
    }
}

impl From<GoogleGroup> for ExternalGroup {
    fn from(g: GoogleGroup) -> Self {
        ExternalGroup {
            display_name: g
                .name
                .or_else(|| g.email.clone())
                .unwrap_or_else(|| g.id.clone()),
            external_id: g.id,
            email: g.email,
            description: g.description,
            members: None,
        }
    }
}

/// The Directory API, for one integration.
pub struct Google {
    session: Arc<Session>,
    base: String,
    page_size: u32,
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Google {
    /// A Directory API client at `base` (`https://admin.googleapis.com`).
    pub fn new(session: Arc<Session>, base: &str, page_size: u32) -> Self {
        Self {
            session,
            base: base.trim_end_matches('/').to_owned(),
            page_size,
        }
    }

    /// The session, to collect a rotated refresh token.
    pub fn session(&self) -> &Session {
        &self.session
    }

    fn url(&self, path: &str, size: u32, cursor: Option<&str>) -> String {
        let mut url = format!("{}/admin/directory/v1/{path}maxResults={size}", self.base);
        if let Some(token) = cursor {
            url.push_str("&pageToken=");
            url.push_str(&encode(token));
        }
        url
    }
}

impl DirectoryProvider for Google {
    async fn users_page(
        &self,
        cursor: Option<String>,
    ) -> Result<ProviderPage<ExternalUser>, ProviderError> {
        let url = self.url(
            "users?customer=my_customer&projection=full&",
            self.page_size,
            cursor.as_deref(),
        );
        let page: UsersPage = self.session.get_json(&url).await?;
        Ok(ProviderPage {
            delta_link: None,
            items: page.users.into_iter().map(Into::into).collect(),
            next: page.next_page_token,
        })
    }

    async fn groups_page(
        &self,
        cursor: Option<String>,
    ) -> Result<ProviderPage<ExternalGroup>, ProviderError> {
        let url = self.url(
            "groups?customer=my_customer&",
            GROUP_PAGE,
            cursor.as_deref(),
        );
        let page: GroupsPage = self.session.get_json(&url).await?;
        Ok(ProviderPage {
            delta_link: None,
            items: page.groups.into_iter().map(Into::into).collect(),
            next: page.next_page_token,
        })
    }

    async fn members_page(
        &self,
        group_external_id: &str,
        cursor: Option<String>,
    ) -> Result<ProviderPage<Member>, ProviderError> {
        let path = format!("groups/{}/members?", encode(group_external_id));
        let url = self.url(&path, GROUP_PAGE, cursor.as_deref());
        let page: MembersPage = self.session.get_json(&url).await?;
        Ok(ProviderPage {
            delta_link: None,
            items: page
                .members
                .into_iter()
                // A member without a type is a user; `CUSTOMER` (everyone in the account) and
                // other kinds are left out.
                .filter_map(|m| match m.kind.as_deref() {
                    None | Some("USER") => Some(Member::User(m.id)),
                    Some("GROUP") => Some(Member::Group(m.id)),
                    Some(_) => None,
                })
                .collect(),
            next: page.next_page_token,
        })
    }
}

impl super::scope::GroupSearch for Google {
    async fn search_groups(
        &self,
        prefix: &str,
        size: u32,
        cursor: Option<String>,
    ) -> Result<ProviderPage<ExternalGroup>, ProviderError> {
        // Google's group search: `name:'Sales EMEA'*` is a name prefix (a `'` inside is
        // escaped with `\`).
        let path = if prefix.is_empty() {
            "groups?customer=my_customer&".to_owned()
        } else {
            let term = prefix.replace('\\', "\\\\").replace('\'', "\\'");
            format!(
                "groups?customer=my_customer&query={}&",
                encode(&format!("name:'{term}'*"))
            )
        };
        let url = self.url(&path, size, cursor.as_deref());
        let page: GroupsPage = self.session.get_json(&url).await?;
        Ok(ProviderPage {
            delta_link: None,
            items: page.groups.into_iter().map(Into::into).collect(),
            next: page.next_page_token,
        })
    }
}

/// Users (or groups) `members.list` names at once are read by id this many at a time.
const BY_ID_AT_ONCE: usize = 8;

/// `orgunits.list`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrgUnitsPage {
    #[serde(default)]
    organization_units: Vec<OrgUnit>,
}

/// An org unit of a Google Workspace account.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgUnit {
    /// Its last path segment.
    #[serde(default)]
    pub name: String,
    /// Its full path, `/Sales/EMEA`: what an `ORG_UNITS` scope names.
    pub org_unit_path: String,
    #[serde(default)]
    pub description: Option<String>,
}

impl Google {
    /// A page of `members.list` of `group` with every member reached through nested groups
    /// (`includeDerivedMembership`), the ids of those of kind `kind` (`USER` or `GROUP`).
    async fn derived_members(
        &self,
        group: &str,
        kind: &str,
        cursor: Option<&str>,
    ) -> Result<(Vec<String>, Option<String>), ProviderError> {
        let path = format!(
            "groups/{}/members?includeDerivedMembership=true&",
            encode(group)
        );
        let page: MembersPage = self
            .session
            .get_json(&self.url(&path, GROUP_PAGE, cursor))
            .await?;
        let ids = page
            .members
            .into_iter()
            .filter(|m| m.kind.as_deref().unwrap_or("USER") == kind)
            .map(|m| m.id)
            .collect();
        Ok((ids, page.next_page_token))
    }

    /// The records at `paths` (relative to the API's root), read [`BY_ID_AT_ONCE`] at a time;
    /// one the directory no longer holds (404: gone, or an account of another domain) is left
    /// out.
    async fn by_id<T: serde::de::DeserializeOwned>(
        &self,
        paths: Vec<String>,
    ) -> Result<Vec<T>, ProviderError> {
        use futures_util::{StreamExt, TryStreamExt};
        let base = format!("{}/admin/directory/v1/", self.base);
        let found: Vec<Option<T>> = futures_util::stream::iter(paths)
            .map(|path| {
                let url = format!("{base}{path}");
                async move {
                    match self.session.get_json::<T>(&url).await {
                        Ok(record) => Ok(Some(record)),
                        Err(ProviderError::Http { status: 404, .. }) => Ok(None),
                        Err(other) => Err(other),
                    }
                }
            })
            .buffered(BY_ID_AT_ONCE)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// A page of the users of org unit `path` and the units below it (`users.list` with
    /// `query=orgUnitPath='…'`).
    async fn users_in_unit(
        &self,
        path: &str,
        cursor: Option<String>,
    ) -> Result<ProviderPage<ExternalUser>, ProviderError> {
        let quoted = format!("orgUnitPath='{}'", path.replace('\'', "\\'"));
        let url = self.url(
            &format!(
                "users?customer=my_customer&projection=full&query={}&",
                encode(&quoted)
            ),
            self.page_size,
            cursor.as_deref(),
        );
        let page: UsersPage = self.session.get_json(&url).await?;
        Ok(ProviderPage {
            delta_link: None,
            items: page.users.into_iter().map(Into::into).collect(),
            next: page.next_page_token,
        })
    }

    /// Every org unit of the account (`orgunits.list`, `type=all`; Google answers it whole).
    pub async fn org_units(&self) -> Result<Vec<OrgUnit>, ProviderError> {
        let url = format!(
            "{}/admin/directory/v1/customer/my_customer/orgunits?type=all",
            self.base
        );
        let page: OrgUnitsPage = self.session.get_json(&url).await?;
        Ok(page.organization_units)
    }
}

impl super::scope::ScopeReads for Google {
    async fn group(&self, id: &str) -> Result<Option<ExternalGroup>, ProviderError> {
        let found: Vec<GoogleGroup> = self.by_id(vec![format!("groups/{}", encode(id))]).await?;
        Ok(found.into_iter().next().map(Into::into))
    }

    async fn nested_groups_page(
        &self,
        group: &str,
        cursor: Option<String>,
    ) -> Result<ProviderPage<ExternalGroup>, ProviderError> {
        // The group's derived members of type `GROUP`, each read by id (`members.list`
        // names members by id and address only).
        let (ids, next) = self
            .derived_members(group, "GROUP", cursor.as_deref())
            .await?;
        let paths = ids
            .iter()
            .map(|id| format!("groups/{}", encode(id)))
            .collect();
        let found: Vec<GoogleGroup> = self.by_id(paths).await?;
        Ok(ProviderPage {
            delta_link: None,
            items: found.into_iter().map(Into::into).collect(),
            next,
        })
    }
}

impl super::scope::OrgUnitReads for Google {
    async fn org_unit_users_page(
        &self,
        path: &str,
        cursor: Option<String>,
    ) -> Result<ProviderPage<ExternalUser>, ProviderError> {
        self.users_in_unit(path, cursor).await
    }
}

impl super::scope_by_ids::MemberIdReads for Google {
    async fn group_user_ids_page(
        &self,
        group: &str,
        cursor: Option<String>,
    ) -> Result<ProviderPage<String>, ProviderError> {
        let (items, next) = self
            .derived_members(group, "USER", cursor.as_deref())
            .await?;
        Ok(ProviderPage {
            items,
            next,
            delta_link: None,
        })
    }

    async fn users_by_id(&self, ids: Vec<String>) -> Result<Vec<ExternalUser>, ProviderError> {
        let paths = ids
            .iter()
            .map(|id| format!("users/{}?projection=full", encode(id)))
            .collect();
        let users: Vec<GoogleUser> = self.by_id(paths).await?;
        Ok(users.into_iter().map(Into::into).collect())
    }
}
