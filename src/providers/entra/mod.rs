//! Microsoft Entra ID through Microsoft Graph v1.0: users, groups and group members, paged by
//! `@odata.nextLink` (here), and Graph delta queries, the incremental reads (`delta.rs`).

mod delta;
mod texts;

pub use delta::{DeltaPage, EntraDelta, GroupDelta, MemberDelta, UserDelta};
use texts::Texts;
pub use texts::user_select;

use super::{
    DirectoryProvider, ExternalGroup, ExternalUser, Member, ProviderError, ProviderPage,
    http::Session,
};
use serde::Deserialize;
use std::sync::Arc;

const GROUP_SELECT: &str = "id,displayName,mail,description";

/// A Graph collection page.
#[derive(Debug, Deserialize)]
pub struct GraphPage<T> {
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
}

/// A Graph `user` as dirgate describes it (a page's `user` is read as a [`UserDelta`] and
/// merged onto nothing).
#[derive(Debug)]
pub struct GraphUser {
    pub id: String,
    pub user_principal_name: Option<String>,
    pub mail: Option<String>,
    pub display_name: Option<String>,
    pub account_enabled: Option<bool>,
    pub other_mails: Vec<String>,
    pub proxy_addresses: Vec<String>,
    /// The synced fields Graph carries as plain text (`jobTitle`, `department`, ...).
    pub texts: Texts,
    /// The manager's id.
    pub manager: Option<String>,
}

/// A user listing's manager, its id only (delta reads carry it as `manager@delta`).
const MANAGER_EXPAND: &str = "manager($select=id)";

/// A Graph `group`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphGroup {
    pub id: String,
    pub display_name: Option<String>,
    pub mail: Option<String>,
    pub description: Option<String>,
}

/// A member of a group: a user, a group, a device...
#[derive(Debug, Deserialize)]
pub struct GraphMember {
    pub id: String,
    #[serde(rename = "@odata.type")]
    pub odata_type: Option<String>,
}

/// The member `odata_type` and `id` name: a user or a nested group; `None` for the other
/// kinds Graph lists (devices, service principals, org contacts).
pub fn member_of(odata_type: Option<&str>, id: &str) -> Option<Member> {
    match odata_type {
        Some("#microsoft.graph.user") => Some(Member::User(id.to_owned())),
        Some("#microsoft.graph.group") => Some(Member::Group(id.to_owned())),
        _ => None,
    }
}

impl From<GraphUser> for ExternalUser {
    fn from(u: GraphUser) -> Self {
        let user_name = u
            .user_principal_name
            .clone()
            .or_else(|| u.mail.clone())
            .unwrap_or_else(|| u.id.clone());
        let mut aliases: Vec<String> = Vec::new();
        let primary = u.mail.as_deref().unwrap_or(&user_name).to_lowercase();
        let candidates = u.other_mails.iter().cloned().chain(
            u.proxy_addresses
                .iter()
                .filter_map(|p| p.split_once(':'))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("smtp"))
                .map(|(_, address)| address.to_owned()),
        );
        for alias in candidates {
            let key = alias.to_lowercase();
            if key != primary
                && key != user_name.to_lowercase()
                && !aliases.iter().any(|a| a.to_lowercase() == key)
            {
                aliases.push(alias);
            }
        }
        let mut user = ExternalUser {
            display_name: u
                .display_name
                .clone()
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| user_name.clone()),
            external_id: u.id,
            user_name,
            email: u.mail,
            suspended: u.account_enabled == Some(false),
            aliases,
            manager_external_id: u.manager,
            ..ExternalUser::default()
        };
        u.texts.apply(&mut user);
        user
    }
}

impl From<GraphGroup> for ExternalGroup {
    fn from(g: GraphGroup) -> Self {
        ExternalGroup {
            display_name: g.display_name.unwrap_or_else(|| g.id.clone()),
            external_id: g.id,
            email: g.mail,
            description: g.description,
            members: None,
        }
    }
}

/// Graph, for one integration.
pub struct Entra {
    session: Arc<Session>,
    base: String,
    page_size: u32,
}

impl Entra {
    /// A Graph client at `base` (`https://graph.microsoft.com`).
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

    /// A follow-up link must stay on the configured Graph host: the access token goes with it.
    fn checked(&self, next: Option<String>, url: &str) -> Result<Option<String>, ProviderError> {
        match next {
            Some(link) if !link.starts_with(&format!("{}/", self.base)) => {
                Err(ProviderError::Malformed {
                    provider: "Microsoft",
                    url: url.to_owned(),
                    detail: format!("@odata.nextLink points elsewhere: {link}"),
                })
            }
            other => Ok(other),
        }
    }

    async fn page<T: serde::de::DeserializeOwned, U>(
        &self,
        cursor: Option<String>,
        first: String,
        map: impl Fn(T) -> Option<U>,
    ) -> Result<ProviderPage<U>, ProviderError> {
        let url = cursor.unwrap_or(first);
        let page: GraphPage<T> = self.session.get_json(&url).await?;
        Ok(ProviderPage {
            items: page.value.into_iter().filter_map(map).collect(),
            next: self.checked(page.next_link, &url)?,
            delta_link: None,
        })
    }
}

impl DirectoryProvider for Entra {
    async fn users_page(
        &self,
        cursor: Option<String>,
    ) -> Result<ProviderPage<ExternalUser>, ProviderError> {
        let first = format!(
            "{}/v1.0/users?$select={}&$expand={MANAGER_EXPAND}&$top={}",
            self.base,
            user_select(),
            self.page_size
        );
        self.page(cursor, first, |u: UserDelta| Some(u.merge(None)))
            .await
    }

    async fn groups_page(
        &self,
        cursor: Option<String>,
    ) -> Result<ProviderPage<ExternalGroup>, ProviderError> {
        let first = format!(
            "{}/v1.0/groups?$select={GROUP_SELECT}&$top={}",
            self.base, self.page_size
        );
        self.page(cursor, first, |g: GraphGroup| Some(g.into()))
            .await
    }

    async fn members_page(
        &self,
        group_external_id: &str,
        cursor: Option<String>,
    ) -> Result<ProviderPage<Member>, ProviderError> {
        let first = format!(
            "{}/v1.0/groups/{}/members?$select=id&$top={}",
            self.base,
            url::form_urlencoded::byte_serialize(group_external_id.as_bytes()).collect::<String>(),
            self.page_size
        );
        self.page(cursor, first, |m: GraphMember| {
            member_of(m.odata_type.as_deref(), &m.id)
        })
        .await
    }
}

/// `id` as one path segment of a Graph URL.
fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

impl super::scope::ScopeReads for Entra {
    async fn group(&self, id: &str) -> Result<Option<ExternalGroup>, ProviderError> {
        let url = format!(
            "{}/v1.0/groups/{}?$select={GROUP_SELECT}",
            self.base,
            segment(id)
        );
        match self.session.get_json::<GraphGroup>(&url).await {
            Ok(group) => Ok(Some(group.into())),
            Err(ProviderError::Http { status: 404, .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    async fn nested_groups_page(
        &self,
        group: &str,
        cursor: Option<String>,
    ) -> Result<ProviderPage<ExternalGroup>, ProviderError> {
        let first = format!(
            "{}/v1.0/groups/{}/transitiveMembers/microsoft.graph.group?$select={GROUP_SELECT}&$top={}",
            self.base,
            segment(group),
            self.page_size
        );
        self.page(cursor, first, |g: GraphGroup| Some(g.into()))
            .await
    }
}

impl super::scope::GroupUserReads for Entra {
    async fn group_users_page(
        &self,
        group: &str,
        cursor: Option<String>,
    ) -> Result<ProviderPage<ExternalUser>, ProviderError> {
        let first = format!(
            "{}/v1.0/groups/{}/transitiveMembers/microsoft.graph.user?$select={}&$expand={MANAGER_EXPAND}&$top={}",
            self.base,
            segment(group),
            user_select(),
            self.page_size
        );
        self.page(cursor, first, |u: delta::UserDelta| Some(u.merge(None)))
            .await
    }
}

impl super::scope::GroupSearch for Entra {
    async fn search_groups(
        &self,
        prefix: &str,
        size: u32,
        cursor: Option<String>,
    ) -> Result<ProviderPage<ExternalGroup>, ProviderError> {
        // OData quotes a `'` by doubling it; the whole filter is one encoded query value.
        let filter = format!("startswith(displayName,'{}')", prefix.replace('\'', "''"));
        let filter: String = url::form_urlencoded::byte_serialize(filter.as_bytes()).collect();
        let first = if prefix.is_empty() {
            format!(
                "{}/v1.0/groups?$select={GROUP_SELECT}&$top={size}",
                self.base
            )
        } else {
            format!(
                "{}/v1.0/groups?$filter={filter}&$select={GROUP_SELECT}&$top={size}",
                self.base
            )
        };
        self.page(cursor, first, |g: GraphGroup| Some(g.into()))
            .await
    }
}
