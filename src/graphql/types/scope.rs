//! `IntegrationScope`: what an integration imports (R19), as the API shows it.

use crate::providers::scope::Scope;
use async_graphql::{Enum, SimpleObject};

/// What an integration imports.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ScopeKind {
    /// Every user and group of the directory (the default).
    All,
    /// The users of chosen groups, directly or through nested groups; those groups and the
    /// groups nested in them.
    Groups,
    /// Google Workspace: the users of chosen org units and the units below them.
    OrgUnits,
}

/// What an integration imports: its whole directory, or a part an admin chose. Users outside
/// the scope are not imported, and one that leaves it is removed or archived as if it left
/// the directory (held like any mass removal).
#[derive(SimpleObject)]
pub struct IntegrationScope {
    /// Which kind of scope.
    pub kind: ScopeKind,
    /// GROUPS: the directory's ids of the chosen groups (at most 50); empty otherwise.
    pub group_ids: Vec<String>,
    /// ORG_UNITS: the chosen org units' paths (at most 50); empty otherwise.
    pub org_unit_paths: Vec<String>,
}

impl From<Scope> for IntegrationScope {
    fn from(scope: Scope) -> Self {
        match scope {
            Scope::All => Self {
                kind: ScopeKind::All,
                group_ids: Vec::new(),
                org_unit_paths: Vec::new(),
            },
            Scope::Groups { groups } => Self {
                kind: ScopeKind::Groups,
                group_ids: groups,
                org_unit_paths: Vec::new(),
            },
            Scope::OrgUnits { paths } => Self {
                kind: ScopeKind::OrgUnits,
                group_ids: Vec::new(),
                org_unit_paths: paths,
            },
        }
    }
}
