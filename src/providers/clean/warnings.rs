//! A run's warnings: what the cleaning step and the reconciler did to records beyond what the
//! directory said, counted exactly and the first [`MAX_WARNINGS_KEPT`] kept.

use super::{MAX_WARNINGS_KEPT, shown};
use std::sync::{Arc, Mutex};

/// The kind of object a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    User,
    Group,
}

impl ObjectKind {
    /// The stored (and API) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "USER",
            Self::Group => "GROUP",
        }
    }
}

/// What happened to a record, or part of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Characters the text policy refuses were removed, or an empty required field replaced.
    Cleaned,
    /// A value or a list was cut to its maximum.
    Truncated,
    /// The record was not stored this run (an id the policy refuses, or a value the database
    /// refused); a stored object skipped stays as it was.
    Skipped,
    /// A member that is not a user of this directory (an external account, another object
    /// type, a skipped user) was left out of its group.
    IgnoredMember,
}

impl Action {
    pub const ALL: [Action; 4] = [
        Self::Cleaned,
        Self::Truncated,
        Self::Skipped,
        Self::IgnoredMember,
    ];

    /// The stored (and API) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cleaned => "CLEANED",
            Self::Truncated => "TRUNCATED",
            Self::Skipped => "SKIPPED",
            Self::IgnoredMember => "IGNORED_MEMBER",
        }
    }

    /// The `action` label of `dirgate_sync_warnings_total`.
    pub fn metric_label(self) -> &'static str {
        match self {
            Self::Cleaned => "cleaned",
            Self::Truncated => "truncated",
            Self::Skipped => "skipped",
            Self::IgnoredMember => "ignored_member",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One thing a run did to a record that the directory did not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub object: ObjectKind,
    /// The object's directory id, shown safely ([`shown`]).
    pub external_id: String,
    /// The field, as the API spells it; `None` for the whole record.
    pub field: Option<&'static str>,
    pub action: Action,
    /// What happened, for an admin.
    pub message: String,
}

impl Warning {
    pub fn new(
        object: ObjectKind,
        external_id: &str,
        field: Option<&'static str>,
        action: Action,
        message: impl Into<String>,
    ) -> Self {
        Self {
            object,
            external_id: shown(external_id),
            field,
            action,
            message: message.into(),
        }
    }
}

/// A run's warnings: counted exactly, the first [`MAX_WARNINGS_KEPT`] kept. Shared by the
/// cleaning step and the reconciler's phases, which may run at once.
#[derive(Debug, Default)]
pub struct Warnings {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    by_action: [u64; 4],
    kept: Vec<Warning>,
}

impl Warnings {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn push(&self, warning: Warning) {
        tracing::debug!(
            object = warning.object.as_str(),
            external_id = %warning.external_id,
            field = warning.field,
            action = warning.action.as_str(),
            "{}",
            warning.message
        );
        let mut state = self.lock();
        state.by_action[warning.action.index()] += 1;
        if state.kept.len() < MAX_WARNINGS_KEPT {
            state.kept.push(warning);
        }
    }

    /// Every warning pushed so far.
    pub fn count(&self) -> u64 {
        self.lock().by_action.iter().sum()
    }

    /// How many of each action, in [`Action::ALL`]'s order.
    pub fn by_action(&self) -> [(Action, u64); 4] {
        let state = self.lock();
        Action::ALL.map(|a| (a, state.by_action[a.index()]))
    }

    /// The warnings kept, in the order they came.
    pub fn kept(&self) -> Vec<Warning> {
        self.lock().kept.clone()
    }
}
