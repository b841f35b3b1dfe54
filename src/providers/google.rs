//! Google Workspace through the Admin SDK Directory API: users, groups and group members,
//! paged by `pageToken`.

use super::{
    DirectoryProvider, ExternalGroup, ExternalUser, ProviderError, ProviderPage, http::Session,
};
use serde::Deserialize;
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

/// A Directory API user.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoogleUser {
    pub id: String,
    pub primary_email: String,
    #[serde(default)]
    pub name: GoogleName,
    #[serde(default)]
    pub suspended: bool,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub organizations: Vec<GoogleOrganization>,
    #[serde(default)]
    pub external_ids: Vec<GoogleExternalId>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoogleName {
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub full_name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct GoogleOrganization {
    pub title: Option<String>,
    pub department: Option<String>,
    #[serde(default)]
    pub primary: bool,
}

#[derive(Debug, Deserialize)]
pub struct GoogleExternalId {
    pub value: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
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
        let org = u
            .organizations
            .iter()
            .find(|o| o.primary)
            .or_else(|| u.organizations.first());
        let employee_id = u
            .external_ids
            .iter()
            .find(|e| e.kind.as_deref() == Some("organization"))
            .and_then(|e| e.value.clone());
        ExternalUser {
            display_name: u
                .name
                .full_name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| u.primary_email.clone()),
            external_id: u.id,
            email: Some(u.primary_email.clone()),
            user_name: u.primary_email,
            given_name: u.name.given_name,
            family_name: u.name.family_name,
            job_title: org.and_then(|o| o.title.clone()),
            department: org.and_then(|o| o.department.clone()),
            employee_id,
            suspended: u.suspended || u.archived,
            aliases: u.aliases,
        }
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
    ) -> Result<ProviderPage<String>, ProviderError> {
        let path = format!("groups/{}/members?", encode(group_external_id));
        let url = self.url(&path, GROUP_PAGE, cursor.as_deref());
        let page: MembersPage = self.session.get_json(&url).await?;
        Ok(ProviderPage {
            delta_link: None,
            items: page
                .members
                .into_iter()
                .filter(|m| m.kind.as_deref().is_none_or(|k| k == "USER"))
                .map(|m| m.id)
                .collect(),
            next: page.next_page_token,
        })
    }
}
