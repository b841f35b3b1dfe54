//! Graph delta queries: `/users/delta` and `/groups/delta` (members inline as
//! `members@delta`), paged by `@odata.nextLink` and ending in `@odata.deltaLink`. A first round
//! is a full read ([`EntraDelta`]); later rounds start from the stored links and read changes
//! only (the [`IncrementalProvider`] capability). A change carries only what changed, so it is
//! merged onto what dirgate holds.

use super::{
    Entra, GraphUser, Texts,
    texts::{Key, user_select},
};
use crate::providers::{
    DirectoryProvider, ExternalGroup, ExternalUser, GroupChange, IncrementalProvider, Member,
    MemberChange, ObjectChange, ProviderError, ProviderPage,
};
use serde::Deserialize;

/// A Graph delta page: `@odata.nextLink` while there is more, `@odata.deltaLink` on the last.
#[derive(Debug, Deserialize)]
pub struct DeltaPage<T> {
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    pub delta_link: Option<String>,
}

/// The group properties a delta query selects (fixed by the first request).
const GROUP_DELTA_SELECT: &str = "displayName,mail,description,members";

/// Tells a property that is absent (unchanged, in a delta) from one that is `null`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A user in a page: removed, or with at least the changed properties (absent ones are
/// unchanged; a full page's user has all it has). Read by one map visitor, no buffering.
#[derive(Debug, Default)]
pub struct UserDelta {
    pub id: String,
    pub removed: Option<serde_json::Value>,
    pub user_principal_name: Option<Option<String>>,
    pub mail: Option<Option<String>>,
    pub display_name: Option<Option<String>>,
    pub account_enabled: Option<Option<bool>>,
    pub other_mails: Option<Option<Vec<String>>>,
    pub proxy_addresses: Option<Option<Vec<String>>>,
    /// The synced fields Graph carries as plain text that the change carries.
    pub texts: Texts,
    /// The manager, when the change carries it (`manager@delta`, or a listing's expanded
    /// `manager`): `Some(None)` when it has none.
    pub manager: Option<Option<String>>,
}

impl<'de> Deserialize<'de> for UserDelta {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Properties;
        impl<'de> serde::de::Visitor<'de> for Properties {
            type Value = UserDelta;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a Graph user")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<UserDelta, A::Error> {
                let mut user = UserDelta::default();
                let mut id = None;
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    match &*key {
                        "id" => id = Some(map.next_value()?),
                        "@removed" => user.removed = map.next_value()?,
                        "userPrincipalName" => user.user_principal_name = Some(map.next_value()?),
                        "mail" => user.mail = Some(map.next_value()?),
                        "displayName" => user.display_name = Some(map.next_value()?),
                        "accountEnabled" => user.account_enabled = Some(map.next_value()?),
                        "otherMails" => user.other_mails = Some(map.next_value()?),
                        "proxyAddresses" => user.proxy_addresses = Some(map.next_value()?),
                        "manager@delta" => {
                            // An odd value costs the manager, never the page.
                            let value: serde_json::Value = map.next_value()?;
                            let links: Vec<ManagerLink> =
                                serde_json::from_value(value).unwrap_or_default();
                            user.manager = Some(
                                links
                                    .into_iter()
                                    .rfind(|l| l.removed.is_none())
                                    .map(|l| l.id),
                            );
                        }
                        "manager" => {
                            let value: serde_json::Value = map.next_value()?;
                            let link: Option<ManagerLink> =
                                serde_json::from_value(value).unwrap_or_default();
                            user.manager = Some(link.map(|l| l.id));
                        }
                        other => {
                            if !user.texts.read(other, &mut map)? {
                                map.next_value::<serde::de::IgnoredAny>()?;
                            }
                        }
                    }
                }
                user.id = id.ok_or_else(|| serde::de::Error::missing_field("id"))?;
                Ok(user)
            }
        }
        deserializer.deserialize_map(Properties)
    }
}

/// A user's manager as Graph names it: its id (`@removed` when it no longer is).
#[derive(Debug, Deserialize)]
struct ManagerLink {
    id: String,
    #[serde(rename = "@removed")]
    removed: Option<serde_json::Value>,
}

impl UserDelta {
    /// The user after this change, given what dirgate holds of it (`None`: a new user).
    pub fn merge(self, base: Option<&ExternalUser>) -> ExternalUser {
        fn over<T>(change: Option<Option<T>>, old: Option<T>) -> Option<T> {
            match change {
                Some(new) => new,
                None => old,
            }
        }
        let base_user = base.map(|b| GraphUser {
            id: b.external_id.clone(),
            user_principal_name: Some(b.user_name.clone()),
            mail: b.email.clone(),
            display_name: Some(b.display_name.clone()),
            account_enabled: Some(!b.suspended),
            other_mails: b.aliases.clone(),
            proxy_addresses: Vec::new(),
            texts: Texts::of(b),
            manager: b.manager_external_id.clone(),
        });
        let b = base_user.unwrap_or(GraphUser {
            id: self.id.clone(),
            user_principal_name: None,
            mail: None,
            display_name: None,
            account_enabled: None,
            other_mails: Vec::new(),
            proxy_addresses: Vec::new(),
            texts: Texts::default(),
            manager: None,
        });
        // The aliases come from both lists: a change to either recomputes them.
        let (other_mails, proxy_addresses) =
            if self.other_mails.is_some() || self.proxy_addresses.is_some() {
                (
                    self.other_mails.flatten().unwrap_or_default(),
                    self.proxy_addresses.flatten().unwrap_or_default(),
                )
            } else {
                (b.other_mails, b.proxy_addresses)
            };
        GraphUser {
            id: self.id,
            user_principal_name: over(self.user_principal_name, b.user_principal_name),
            mail: over(self.mail, b.mail),
            display_name: over(self.display_name, b.display_name),
            account_enabled: over(self.account_enabled, b.account_enabled),
            other_mails,
            proxy_addresses,
            texts: self.texts.over(b.texts),
            manager: over(self.manager, b.manager),
        }
        .into()
    }
}

/// A group in a delta page: removed, or changed, with its membership changes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupDelta {
    pub id: String,
    #[serde(rename = "@removed")]
    pub removed: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "present")]
    pub display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub mail: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Option<String>>,
    #[serde(rename = "members@delta", default)]
    pub members: Vec<MemberDelta>,
}

/// One membership change of a group.
#[derive(Debug, Deserialize)]
pub struct MemberDelta {
    pub id: String,
    #[serde(rename = "@odata.type")]
    pub odata_type: Option<String>,
    #[serde(rename = "@removed")]
    pub removed: Option<serde_json::Value>,
}

impl MemberDelta {
    /// The user or nested group that changed; `None` for other kinds (devices, ...), left
    /// out as in a full read.
    pub fn member(&self) -> Option<Member> {
        super::member_of(self.odata_type.as_deref(), &self.id)
    }
}

impl GroupDelta {
    /// The group after this change, given what dirgate holds of it (`None`: a new group).
    pub fn merge(&self, base: Option<&ExternalGroup>) -> ExternalGroup {
        let pick = |change: &Option<Option<String>>, old: Option<String>| match change {
            Some(new) => new.clone(),
            None => old,
        };
        ExternalGroup {
            external_id: self.id.clone(),
            display_name: pick(&self.display_name, base.map(|b| b.display_name.clone()))
                .unwrap_or_else(|| self.id.clone()),
            email: pick(&self.mail, base.and_then(|b| b.email.clone())),
            description: pick(&self.description, base.and_then(|b| b.description.clone())),
            members: None,
        }
    }
}

impl Entra {
    /// Graph delta queries: the first round enumerates the directory and ends in a delta
    /// link; later rounds start from that link and read changes only.
    pub fn delta(&self) -> EntraDelta<'_> {
        EntraDelta {
            graph: self,
            seen: Default::default(),
        }
    }

    /// A delta page, asking for the configured page size with `Prefer: odata.maxpagesize`.
    async fn delta_page<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<(Vec<T>, Option<String>, Option<String>), ProviderError> {
        let page: DeltaPage<T> = self
            .session
            .get_json_with(
                url,
                &[("prefer", format!("odata.maxpagesize={}", self.page_size))],
            )
            .await?;
        let next = self.checked(page.next_link, url)?;
        let delta = self.checked(page.delta_link, url)?;
        if next.is_none() && delta.is_none() {
            return Err(ProviderError::Malformed {
                provider: "Microsoft",
                url: url.to_owned(),
                detail: "a delta page carries neither @odata.nextLink nor @odata.deltaLink".into(),
            });
        }
        Ok((page.value, next, delta))
    }

    /// Delta links that read the changes from now on, without enumerating the directory
    /// (`$deltatoken=latest`): what a scoped read keeps, taken before it reads its scope, so
    /// a change made during the read is read again, never lost. `(users, groups)`.
    pub async fn latest_links(&self) -> Result<(String, String), ProviderError> {
        let users = self.latest(&self.users_delta_url()).await?;
        let groups = self.latest(&self.groups_delta_url()).await?;
        Ok((users, groups))
    }

    async fn latest(&self, url: &str) -> Result<String, ProviderError> {
        let url = format!("{url}&$deltatoken=latest");
        let (_, _, delta) = self.delta_page::<serde::de::IgnoredAny>(&url).await?;
        delta.ok_or_else(|| ProviderError::Malformed {
            provider: "Microsoft",
            url,
            detail: "`$deltatoken=latest` answered without an @odata.deltaLink".into(),
        })
    }

    fn users_delta_url(&self) -> String {
        format!("{}/v1.0/users/delta?$select={}", self.base, user_select())
    }

    fn groups_delta_url(&self) -> String {
        format!(
            "{}/v1.0/groups/delta?$select={GROUP_DELTA_SELECT}",
            self.base
        )
    }
}

impl ObjectChange<ExternalUser> for UserDelta {
    fn external_id(&self) -> &str {
        &self.id
    }

    fn is_removal(&self) -> bool {
        self.removed.is_some()
    }

    fn merged(self, base: Option<&ExternalUser>) -> ExternalUser {
        self.merge(base)
    }
}

impl ObjectChange<ExternalGroup> for GroupDelta {
    fn external_id(&self) -> &str {
        &self.id
    }

    fn is_removal(&self) -> bool {
        self.removed.is_some()
    }

    fn merged(self, base: Option<&ExternalGroup>) -> ExternalGroup {
        self.merge(base)
    }
}

impl GroupChange for GroupDelta {
    fn member_changes(&self) -> Vec<MemberChange> {
        self.members
            .iter()
            .filter_map(|m| {
                Some(MemberChange {
                    member: m.member()?,
                    removed: m.removed.is_some(),
                })
            })
            .collect()
    }
}

impl IncrementalProvider for Entra {
    type UserChange = UserDelta;
    type GroupChange = GroupDelta;

    fn full_read(&self) -> impl DirectoryProvider + '_ {
        self.delta()
    }

    async fn user_changes(&self, url: &str) -> Result<ProviderPage<UserDelta>, ProviderError> {
        let (items, next, delta_link) = self.delta_page::<UserDelta>(url).await?;
        Ok(ProviderPage {
            items,
            next,
            delta_link,
        })
    }

    async fn group_changes(&self, url: &str) -> Result<ProviderPage<GroupDelta>, ProviderError> {
        let (items, next, delta_link) = self.delta_page::<GroupDelta>(url).await?;
        Ok(ProviderPage {
            items,
            next,
            delta_link,
        })
    }
}

/// Graph through delta queries, as a [`DirectoryProvider`] for a full read: users and groups
/// come from `/users/delta` and `/groups/delta` (members inline, as `members@delta`), and the
/// last pages carry the delta links the next, incremental, sync starts from.
pub struct EntraDelta<'a> {
    graph: &'a Entra,
    /// Groups met so far in this round: Graph may list a big group again on a later page with
    /// more members and without its other properties.
    seen: std::sync::Mutex<std::collections::HashMap<String, ExternalGroup>>,
}

impl DirectoryProvider for EntraDelta<'_> {
    async fn users_page(
        &self,
        cursor: Option<String>,
    ) -> Result<ProviderPage<ExternalUser>, ProviderError> {
        let url = cursor.unwrap_or_else(|| self.graph.users_delta_url());
        let page = self.graph.user_changes(&url).await?;
        Ok(ProviderPage {
            // A first round lists what exists; an object removed meanwhile is left out.
            items: page
                .items
                .into_iter()
                .filter(|u| u.removed.is_none())
                .map(|u| u.merge(None))
                .collect(),
            next: page.next,
            delta_link: page.delta_link,
        })
    }

    async fn groups_page(
        &self,
        cursor: Option<String>,
    ) -> Result<ProviderPage<ExternalGroup>, ProviderError> {
        let url = cursor.unwrap_or_else(|| self.graph.groups_delta_url());
        let page = self.graph.group_changes(&url).await?;
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        Ok(ProviderPage {
            items: page
                .items
                .into_iter()
                .filter(|g| g.removed.is_none())
                .map(|g| {
                    let mut group = g.merge(seen.get(&g.id));
                    seen.insert(g.id.clone(), group.clone());
                    group.members = Some(
                        g.members
                            .iter()
                            .filter(|m| m.removed.is_none())
                            .filter_map(MemberDelta::member)
                            .collect(),
                    );
                    group
                })
                .collect(),
            next: page.next,
            delta_link: page.delta_link,
        })
    }

    async fn members_page(
        &self,
        group_external_id: &str,
        cursor: Option<String>,
    ) -> Result<ProviderPage<Member>, ProviderError> {
        self.graph.members_page(group_external_id, cursor).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> ExternalUser {
        ExternalUser {
            external_id: "u1".into(),
            user_name: "adele@contoso.example".into(),
            email: Some("adele@contoso.example".into()),
            display_name: "Adele Vance".into(),
            given_name: Some("Adele".into()),
            family_name: Some("Vance".into()),
            job_title: Some("Retail Manager".into()),
            department: Some("Retail".into()),
            employee_id: None,
            employee_type: Some("Employee".into()),
            suspended: false,
            aliases: vec!["av@contoso.example".into()],
            ..ExternalUser::default()
        }
    }

    #[test]
    fn a_partial_delta_changes_only_what_it_carries() {
        let change: UserDelta =
            serde_json::from_str(r#"{"id":"u1","department":"Sales","jobTitle":null}"#).unwrap();
        let merged = change.merge(Some(&stored()));
        assert_eq!(merged.department.as_deref(), Some("Sales"));
        assert_eq!(merged.job_title, None, "an explicit null clears");
        assert_eq!(merged.display_name, "Adele Vance", "absent stays");
        assert_eq!(merged.aliases, vec!["av@contoso.example".to_owned()]);
        assert!(!merged.suspended);
    }

    #[test]
    fn a_delta_can_disable_a_user_and_replace_its_aliases() {
        let change: UserDelta = serde_json::from_str(
            r#"{"id":"u1","accountEnabled":false,"proxyAddresses":["SMTP:adele@contoso.example","smtp:a.vance@contoso.example"]}"#,
        )
        .unwrap();
        let merged = change.merge(Some(&stored()));
        assert!(merged.suspended);
        assert_eq!(merged.aliases, vec!["a.vance@contoso.example".to_owned()]);
    }

    #[test]
    fn a_synced_property_that_is_not_text_is_absent_and_costs_nothing_else() {
        let change: UserDelta = serde_json::from_str(
            r#"{"id":"u1","jobTitle":{"odd":true},"department":["Sales"],"surname":null,"givenName":"Ada","unknown":[1,{"a":2}]}"#,
        )
        .unwrap();
        let merged = change.merge(Some(&stored()));
        assert_eq!(
            merged.job_title.as_deref(),
            Some("Retail Manager"),
            "odd value: kept"
        );
        assert_eq!(
            merged.department.as_deref(),
            Some("Retail"),
            "odd value: kept"
        );
        assert_eq!(merged.family_name, None, "null clears");
        assert_eq!(merged.given_name.as_deref(), Some("Ada"));
        let full: UserDelta =
            serde_json::from_str(r#"{"id":"u2","userPrincipalName":"b@x.com","jobTitle":7}"#)
                .unwrap();
        let user = full.merge(None);
        assert_eq!(user.job_title, None);
        assert_eq!(user.user_name, "b@x.com");
    }

    #[test]
    fn the_select_names_every_graph_carried_field() {
        let select = user_select();
        for property in [
            "givenName",
            "surname",
            "jobTitle",
            "department",
            "employeeId",
        ] {
            assert!(select.split(',').any(|p| p == property), "{property}");
        }
    }

    #[test]
    fn a_removed_user_is_told_apart() {
        let change: UserDelta =
            serde_json::from_str(r#"{"id":"u1","@removed":{"reason":"changed"}}"#).unwrap();
        assert!(change.removed.is_some());
    }
}
