//! The fake's data: tenants (an Entra tenant or a Google Workspace domain) with users, groups,
//! memberships and the accounts that may sign in; generated from a seed or loaded from JSON.

use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Which provider a tenant imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Entra,
    Google,
}

/// A directory user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    /// UPN (Entra) or primary email (Google).
    pub user_name: String,
    #[serde(default)]
    pub mail: Option<String>,
    pub display_name: String,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub surname: Option<String>,
    #[serde(default)]
    pub job_title: Option<String>,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub employee_id: Option<String>,
    /// Entra `employeeType`; Google's primary organization's `description`.
    #[serde(default)]
    pub employee_type: Option<String>,
    /// `accountEnabled: false` (Entra) / `suspended: true` (Google).
    #[serde(default)]
    pub suspended: bool,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Google: the org unit the user is in (`/` the root, `/Sales/EMEA` a unit below).
    #[serde(default = "root_unit")]
    pub org_unit_path: String,
    /// The HR attributes, each served where its provider carries it.
    #[serde(default)]
    pub hr: Hr,
}

/// A user's HR attributes as a directory holds them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hr {
    /// Entra `officeLocation`; Google's primary organization's `location`.
    pub office_location: Option<String>,
    /// Entra `companyName`; Google's primary organization's `name`.
    pub company_name: Option<String>,
    /// Entra `employeeOrgData.division` (Google has none).
    pub division: Option<String>,
    /// Entra `employeeOrgData.costCenter`; Google's primary organization's `costCenter`.
    pub cost_center: Option<String>,
    /// Entra `employeeHireDate` (Google has none).
    pub hire_date: Option<String>,
    /// Entra `mobilePhone`; Google's `phones` entry of type `mobile`.
    pub mobile_phone: Option<String>,
    /// Entra `country`; Google's primary `addresses` entry's `country`.
    pub country: Option<String>,
    /// Entra `preferredLanguage`; Google's first `languages` entry's `languageCode`.
    pub preferred_language: Option<String>,
    /// The manager's id (Entra `manager`); Google's `relations` entry of type `manager`
    /// names the manager's primary email.
    pub manager: Option<String>,
}

fn root_unit() -> String {
    "/".to_owned()
}

/// Whether an org unit `path` is `unit` or below it (Google's `orgUnitPath` query).
pub fn in_unit(path: &str, unit: &str) -> bool {
    unit == "/"
        || path == unit
        || path
            .strip_prefix(unit)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// A directory group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    pub display_name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A tenant: one Entra tenant or one Google Workspace domain.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub kind: Kind,
    /// The Entra tenant id, or the Google customer id.
    pub id: String,
    /// The primary domain.
    pub domain: String,
    pub users: BTreeMap<String, User>,
    pub groups: BTreeMap<String, Group>,
    /// Group id → direct member ids: users of the tenant, or groups of it (nested groups,
    /// listed as `#microsoft.graph.group` by Graph and `type: GROUP` by Google).
    #[serde(default)]
    pub members: BTreeMap<String, BTreeSet<String>>,
    /// Group id → members that are no user of the tenant (Google: accounts of other
    /// domains, listed with `type: USER` and their own ids).
    #[serde(default)]
    pub external_members: BTreeMap<String, BTreeSet<String>>,
    /// Accounts that may grant consent for the organisation (Global Administrator, super admin).
    pub admins: BTreeSet<String>,
    /// Accounts that may sign in but not consent for the organisation.
    #[serde(default)]
    pub non_admins: BTreeSet<String>,
    /// Set once an administrator approved the app (Entra's admin consent workflow): then
    /// non-admins may complete the sign-in too.
    #[serde(default)]
    pub app_approved: bool,
    /// Non-admins who asked for the app's approval through Entra's admin consent workflow
    /// ("Request approval"), in order.
    #[serde(default)]
    pub approval_requests: Vec<String>,
    /// When set, every refresh of this tenant's grants is refused with this OAuth error code
    /// (Entra: `interaction_required`, `consent_required`, `login_required`; Google:
    /// `admin_policy_enforced`), as when a new policy needs the admin to sign in again.
    #[serde(default)]
    pub refresh_error: Option<String>,
    /// Bumped to invalidate every delta token issued before.
    #[serde(default)]
    pub delta_epoch: u64,
    /// What changed, in order, for delta queries.
    #[serde(skip)]
    pub changes: Vec<Change>,
}

/// One change to a tenant, as delta queries report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A user was created or changed (`removed`: deleted).
    User { id: String, removed: bool },
    /// A group was created or changed (`removed`: deleted).
    Group { id: String, removed: bool },
    /// A user joined (or, `removed`, left) a group.
    Member {
        group: String,
        user: String,
        removed: bool,
    },
}

impl Tenant {
    /// An empty tenant with an admin account `admin@DOMAIN` and a non-admin `user@DOMAIN`.
    pub fn new(kind: Kind, id: &str, domain: &str) -> Self {
        Self {
            kind,
            id: id.to_owned(),
            domain: domain.to_owned(),
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            members: BTreeMap::new(),
            external_members: BTreeMap::new(),
            admins: BTreeSet::from([format!("admin@{domain}")]),
            non_admins: BTreeSet::from([format!("user@{domain}")]),
            app_approved: false,
            approval_requests: Vec::new(),
            refresh_error: None,
            delta_epoch: 0,
            changes: Vec::new(),
        }
    }

    /// Records a change for delta queries.
    pub fn record(&mut self, change: Change) {
        self.changes.push(change);
    }

    /// Adds or replaces a user, as delta queries will report it.
    pub fn put_user(&mut self, user: User) {
        let id = user.id.clone();
        self.users.insert(id.clone(), user);
        self.record(Change::User { id, removed: false });
    }

    /// Changes a user in place, as delta queries will report it; `None` if there is no such user.
    pub fn change_user(&mut self, id: &str, change: impl FnOnce(&mut User)) -> Option<&User> {
        change(self.users.get_mut(id)?);
        self.record(Change::User {
            id: id.to_owned(),
            removed: false,
        });
        self.users.get(id)
    }

    /// Makes a user a member of a group, as delta queries will report it (`false`: no such
    /// group or user).
    /// Adds a user, or a group (nesting it), to a group, as delta queries will report it.
    pub fn add_member(&mut self, group: &str, user: &str) -> bool {
        let member_known = self.users.contains_key(user) || self.groups.contains_key(user);
        if !self.groups.contains_key(group) || !member_known || group == user {
            return false;
        }
        if self
            .members
            .entry(group.to_owned())
            .or_default()
            .insert(user.to_owned())
        {
            self.record(Change::Member {
                group: group.to_owned(),
                user: user.to_owned(),
                removed: false,
            });
        }
        true
    }

    /// The users and the groups reachable from `group` through its members, each once, in id
    /// order (the group itself left out; a cycle ends).
    pub fn transitive_members(&self, group: &str) -> (BTreeSet<&String>, BTreeSet<&String>) {
        let (mut users, mut groups) = (BTreeSet::new(), BTreeSet::new());
        let mut todo = vec![group];
        while let Some(at) = todo.pop() {
            for member in self.members.get(at).into_iter().flatten() {
                if self.groups.contains_key(member) {
                    if member != group && groups.insert(member) {
                        todo.push(member);
                    }
                } else if self.users.contains_key(member) {
                    users.insert(member);
                }
            }
        }
        (users, groups)
    }

    /// The org units the tenant's users are in, with every unit above them, root left out.
    pub fn org_units(&self) -> BTreeSet<String> {
        let mut units = BTreeSet::new();
        for user in self.users.values() {
            let mut path = user.org_unit_path.as_str();
            while path.len() > 1 {
                units.insert(path.to_owned());
                path = match path.rfind('/') {
                    Some(0) | None => "/",
                    Some(at) => &path[..at],
                };
            }
        }
        units
    }

    /// Nests a few groups, as real directories do: the first (by id) holds the second and the
    /// third, the second holds the fourth.
    pub fn nest_some_groups(&mut self) {
        let ids: Vec<String> = self.groups.keys().take(4).cloned().collect();
        for (child, parent) in [(1, 0), (2, 0), (3, 1)] {
            if let (Some(parent), Some(child)) = (ids.get(parent), ids.get(child)) {
                self.add_member(parent, child);
            }
        }
    }

    /// Whether `id` names one of the tenant's groups (a member that is a nested group).
    pub fn is_group(&self, id: &str) -> bool {
        self.groups.contains_key(id)
    }

    /// Takes a user (or a nested group) out of a group, as delta queries will report it.
    pub fn remove_member(&mut self, group: &str, user: &str) {
        if self
            .members
            .get_mut(group)
            .is_some_and(|members| members.remove(user))
        {
            self.record(Change::Member {
                group: group.to_owned(),
                user: user.to_owned(),
                removed: true,
            });
        }
    }

    /// Deletes a user and its memberships, as delta queries will report it.
    pub fn remove_user(&mut self, id: &str) -> Option<User> {
        let user = self.users.remove(id)?;
        let mut left = Vec::new();
        for (group, members) in self.members.iter_mut() {
            if members.remove(id) {
                left.push(group.clone());
            }
        }
        for group in left {
            self.record(Change::Member {
                group,
                user: id.to_owned(),
                removed: true,
            });
        }
        self.record(Change::User {
            id: id.to_owned(),
            removed: true,
        });
        Some(user)
    }

    /// Adds the records real directories hold and fixtures lack, each once, as changes delta
    /// queries report: a user per kind of bad value (a NUL, other C0 and C1 controls, a bidi
    /// override, a 5,000-character department, 150 aliases), a group whose name holds a NUL
    /// with those users and an external member, and one with legitimate Unicode names. Their
    /// ids start with `messy-`.
    pub fn add_messy_records(&mut self) {
        let domain = self.domain.clone();
        let user = |id: &str, display_name: &str| User {
            id: format!("messy-{id}"),
            user_name: format!("messy.{id}@{domain}"),
            mail: Some(format!("messy.{id}@{domain}")),
            display_name: display_name.to_owned(),
            given_name: None,
            surname: None,
            job_title: None,
            department: None,
            employee_id: None,
            employee_type: None,
            suspended: false,
            aliases: Vec::new(),
            org_unit_path: root_unit(),
            hr: Hr::default(),
        };
        let mut users = vec![
            user("nul", "Null\u{0}Byte"),
            user("c0", "Bell\u{7} and \u{1b}[31mred\u{1b}[0m"),
            user("c1", "Next\u{85}Line\u{9b}"),
            user("bidi", "admin\u{202e}gnp.exe"),
            user("unicode", "Zoë 山田 محمد 👩🏽‍💻 👨‍👩‍👧‍👦"),
        ];
        let mut long = user("long", "Long Department");
        long.department = Some("D".repeat(5_000));
        let mut aliases = user("aliases", "Many Aliases");
        aliases.aliases = (0..150)
            .map(|i| format!("messy.alias{i}@{domain}"))
            .collect();
        users.extend([long, aliases]);
        let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
        for user in users {
            self.put_user(user);
        }
        for (id, name) in [
            ("messy-group-nul", "Null\u{0}Group"),
            ("messy-group-unicode", "Équipe 開発 فريق 🚀"),
        ] {
            self.groups.insert(
                id.to_owned(),
                Group {
                    id: id.to_owned(),
                    display_name: name.to_owned(),
                    email: None,
                    description: Some("line one\nline two".into()),
                },
            );
            self.members.entry(id.to_owned()).or_default();
            self.record(Change::Group {
                id: id.to_owned(),
                removed: false,
            });
            for user in &ids {
                self.add_member(id, user);
            }
        }
        self.external_members
            .entry("messy-group-nul".to_owned())
            .or_default()
            .insert("external-partner-1".to_owned());
    }

    /// Whether `account` may sign in to this tenant.
    pub fn has_account(&self, account: &str) -> bool {
        self.admins.contains(account) || self.non_admins.contains(account)
    }
}

/// The whole fake: every tenant, keyed by tenant id (Entra) or domain (Google).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Directory {
    pub tenants: BTreeMap<String, Tenant>,
}

const FIRST: &[&str] = &[
    "Adele",
    "Alex",
    "Allan",
    "Bianca",
    "Brian",
    "Christie",
    "Debra",
    "Diego",
    "Emily",
    "Enrico",
    "Grady",
    "Henrietta",
    "Irvin",
    "Isaiah",
    "Johanna",
    "Joni",
    "Lee",
    "Lidia",
    "Lynne",
    "Megan",
    "Miriam",
    "Nestor",
    "Patti",
    "Pradeep",
    "Raul",
    "Sanjay",
    "Tomas",
    "Yuki",
    "Zoe",
    "Liz",
];
const LAST: &[&str] = &[
    "Vance",
    "Wilber",
    "Deyoung",
    "Pincus",
    "Johnson",
    "Cline",
    "Berger",
    "Soto",
    "Braun",
    "Rossi",
    "Archie",
    "Cerveny",
    "Sink",
    "Ochieng",
    "Lauer",
    "Sherman",
    "Gu",
    "Holloway",
    "Fernandez",
    "Bowen",
    "Graham",
    "Wilke",
    "Fernandes",
    "Gupta",
    "Smith",
    "Okafor",
    "Nakamura",
];
const DEPARTMENTS: &[&str] = &[
    "Sales",
    "Retail",
    "Engineering",
    "Finance",
    "Legal",
    "Marketing",
    "Operations",
    "Support",
];

impl Directory {
    /// A deterministic directory: one Entra tenant (`contoso.example`) and one Google domain
    /// (`fabrikam.example`), each with `users` users and `groups` groups, about one
    /// membership per user, and one user in fifty suspended.
    pub fn generate(seed: u64, users: usize, groups: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut dir = Directory::default();
        for (kind, domain) in [
            (Kind::Entra, "contoso.example"),
            (Kind::Google, "fabrikam.example"),
        ] {
            let id = match kind {
                Kind::Entra => uuid_like(&mut rng),
                Kind::Google => format!("C0{:07x}", rng.r#gen::<u32>() & 0x0fff_ffff),
            };
            let mut tenant = Tenant::new(kind, &id, domain);
            for i in 0..users {
                let first = FIRST[rng.gen_range(0..FIRST.len())];
                let last = LAST[rng.gen_range(0..LAST.len())];
                let local = format!("{}.{}{i}", first.to_lowercase(), last.to_lowercase());
                let user_name = format!("{local}@{domain}");
                let user_id = match kind {
                    Kind::Entra => uuid_like(&mut rng),
                    Kind::Google => format!("1{:020}", rng.r#gen::<u64>() % 10u64.pow(19)),
                };
                let aliases = if i % 10 == 0 {
                    vec![format!(
                        "{}@{domain}",
                        first.to_lowercase() + &i.to_string()
                    )]
                } else {
                    Vec::new()
                };
                tenant.users.insert(
                    user_id.clone(),
                    User {
                        id: user_id,
                        user_name: user_name.clone(),
                        mail: Some(user_name),
                        display_name: format!("{first} {last}"),
                        given_name: Some(first.to_owned()),
                        surname: Some(last.to_owned()),
                        job_title: Some("Associate".into()),
                        department: Some(DEPARTMENTS[i % DEPARTMENTS.len()].to_owned()),
                        employee_id: Some(format!("E{i:06}")),
                        employee_type: Some(
                            if i % 10 == 9 {
                                "Contractor"
                            } else {
                                "Employee"
                            }
                            .into(),
                        ),
                        suspended: i % 50 == 49,
                        aliases,
                        hr: Hr {
                            office_location: Some(format!("Building {}", i % 7 + 1)),
                            company_name: Some("Contoso Ltd".into()),
                            division: Some(if i % 3 == 0 { "Field" } else { "Core" }.into()),
                            cost_center: Some(format!("CC-{:03}", i % 40)),
                            hire_date: Some(format!(
                                "20{:02}-0{}-1{}T00:00:00Z",
                                15 + i % 10,
                                1 + i % 9,
                                i % 10
                            )),
                            mobile_phone: Some(format!("+1 555 01{:02}", i % 100)),
                            country: Some(["US", "GB", "DE", "FR"][i % 4].into()),
                            preferred_language: Some(
                                ["en-US", "en-GB", "de-DE", "fr-FR"][i % 4].into(),
                            ),
                            manager: None,
                        },
                        // Org units by department; one user in four a level below.
                        org_unit_path: if i % 4 == 0 {
                            format!("/{}/EMEA", DEPARTMENTS[i % DEPARTMENTS.len()])
                        } else {
                            format!("/{}", DEPARTMENTS[i % DEPARTMENTS.len()])
                        },
                    },
                );
            }
            let user_ids: Vec<String> = tenant.users.keys().cloned().collect();
            // A management tree: each user's manager is one of the first tenth.
            for (i, id) in user_ids.iter().enumerate().skip(1) {
                let manager = user_ids[(i - 1) / 10].clone();
                if let Some(user) = tenant.users.get_mut(id) {
                    user.hr.manager = Some(manager);
                }
            }
            for g in 0..groups {
                let group_id = match kind {
                    Kind::Entra => uuid_like(&mut rng),
                    Kind::Google => format!("0{:014x}", rng.r#gen::<u64>() & 0x00ff_ffff_ffff_ffff),
                };
                let name = format!("{} {g}", DEPARTMENTS[g % DEPARTMENTS.len()]);
                tenant.groups.insert(
                    group_id.clone(),
                    Group {
                        id: group_id.clone(),
                        display_name: name.clone(),
                        email: Some(format!(
                            "{}-{g}@{domain}",
                            DEPARTMENTS[g % DEPARTMENTS.len()].to_lowercase()
                        )),
                        description: Some(format!("The {name} team")),
                    },
                );
                tenant.members.insert(group_id, BTreeSet::new());
            }
            let group_ids: Vec<String> = tenant.groups.keys().cloned().collect();
            if !group_ids.is_empty() {
                for user in &user_ids {
                    let group = group_ids.choose(&mut rng).expect("groups exist");
                    tenant
                        .members
                        .entry(group.clone())
                        .or_default()
                        .insert(user.clone());
                }
            }
            let key = match kind {
                Kind::Entra => tenant.id.clone(),
                Kind::Google => tenant.domain.clone(),
            };
            dir.tenants.insert(key, tenant);
        }
        dir
    }

    /// The tenant an account belongs to, by the account's domain.
    pub fn tenant_of_account(&self, account: &str) -> Option<&Tenant> {
        self.tenants.values().find(|t| t.has_account(account))
    }
}

fn uuid_like(rng: &mut StdRng) -> String {
    let b: [u8; 16] = rng.r#gen();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
