//! The input policy for provider data. A directory is written by people and HR exports: a name
//! may hold a NUL or a terminal escape, a bidi override, a department far longer than any
//! screen, hundreds of proxy addresses. Every record a provider hands over passes
//! [`Cleaned`] before the reconciler sees it, whichever provider read it, so what is stored
//! obeys the same text policy as the edge (`crate::text`), on SQLite and PostgreSQL alike:
//!
//! - every string field: the characters the edge refuses ([`text::is_refused`]: NUL and other
//!   C0/C1 controls, DEL, bidi embeddings, overrides and isolates) are removed (`CLEANED`);
//!   then it is cut at a character boundary to its maximum ([`MAX_FIELD_CHARS`],
//!   [`MAX_DESCRIPTION_CHARS`]; `TRUNCATED`). A field left empty is absent; a required one
//!   (the user's `userName` and `displayName`, the group's `displayName`) falls back to
//!   another (`CLEANED`).
//! - lists: a user's aliases are cut to [`MAX_ALIASES`], a group's listed members to
//!   [`MAX_MEMBERS`] (`TRUNCATED`).
//! - identifiers (a user's or group's id, a member's id) are never changed, since a changed id
//!   would name another object: an object whose id the policy refuses, or longer than
//!   [`MAX_ID_CHARS`], is skipped (`SKIPPED`), a member with such an id is ignored
//!   (`IGNORED_MEMBER`).
//!
//! Each change is a [`Warning`] on the run's [`Warnings`] (an exact count, the first
//! [`MAX_WARNINGS_KEPT`] kept), never silent.

mod provider;
mod warnings;

pub use provider::{CleanChange, Cleaned};
pub use warnings::{Action, ObjectKind, Warning, Warnings};

use super::{
    ExternalGroup, ExternalUser, Member,
    fields::{FieldMut, USER_FIELDS},
};
use crate::text::{self, Lines};

/// The longest directory id kept (Graph ids are 36-character GUIDs, Google's are 21 digits).
pub const MAX_ID_CHARS: usize = 256;
/// The longest value of a one-line field (names, addresses, titles), as SCIM's bodies allow.
pub const MAX_FIELD_CHARS: usize = 512;
/// The longest group description.
pub const MAX_DESCRIPTION_CHARS: usize = 1_024;
/// Aliases kept per user, as SCIM's multi-valued attributes allow.
pub const MAX_ALIASES: usize = 100;
/// Members listed for one group that are kept (the largest groups of real tenants hold a few
/// hundred thousand users).
pub const MAX_MEMBERS: usize = 500_000;
/// Warnings a run keeps to show; the count stays exact past it.
pub const MAX_WARNINGS_KEPT: usize = 1_000;

/// An id as a warning shows it: refused characters written as `U+XXXX`, cut to
/// [`MAX_ID_CHARS`].
pub fn shown(id: &str) -> String {
    let mut out = String::new();
    for (i, ch) in id.chars().enumerate() {
        if i == MAX_ID_CHARS {
            out.push('…');
            break;
        }
        if text::is_refused(ch, Lines::Single) {
            out.push_str(&format!("U+{:04X}", ch as u32));
        } else {
            out.push(ch);
        }
    }
    out
}

/// Why an id is refused, if it is.
fn refused_id(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some("its directory id is empty".into());
    }
    match text::check_len(id, Lines::Single, MAX_ID_CHARS) {
        Ok(()) => None,
        Err(refusal) => Some(format!("its directory id {refusal}")),
    }
}

/// What [`clean_text`] changed.
#[derive(Debug, Default, PartialEq, Eq)]
struct Fixes {
    /// Characters removed.
    removed: usize,
    /// The length before the cut, when cut.
    cut_from: Option<usize>,
}

/// `value` without the characters the policy refuses, cut to `max` characters.
fn clean_text(value: &mut String, lines: Lines, max: usize) -> Fixes {
    let mut fixes = Fixes::default();
    if text::check(value, lines).is_err() {
        let before = value.chars().count();
        value.retain(|c| !text::is_refused(c, lines));
        fixes.removed = before - value.chars().count();
    }
    if value.len() > max
        && let Some((at, _)) = value.char_indices().nth(max)
    {
        fixes.cut_from = Some(value.chars().count());
        value.truncate(at);
    }
    fixes
}

/// Cleans the fields of one record, noting each change.
struct Record<'a> {
    object: ObjectKind,
    external_id: &'a str,
    warnings: &'a Warnings,
}

impl Record<'_> {
    fn note(&self, field: &'static str, action: Action, message: String) {
        self.warnings.push(Warning::new(
            self.object,
            self.external_id,
            Some(field),
            action,
            message,
        ));
    }

    fn fixes(&self, field: &'static str, fixes: Fixes, max: usize) {
        if fixes.removed > 0 {
            self.note(
                field,
                Action::Cleaned,
                format!(
                    "`{field}` held {} control or bidirectional-text character(s); they were removed",
                    fixes.removed
                ),
            );
        }
        if let Some(from) = fixes.cut_from {
            self.note(
                field,
                Action::Truncated,
                format!("`{field}` was {from} characters long; the first {max} were kept"),
            );
        }
    }

    /// A one-line field; empty after cleaning is `None`.
    fn optional(&self, field: &'static str, value: &mut Option<String>) {
        self.optional_with(field, value, Lines::Single, MAX_FIELD_CHARS);
    }

    fn optional_with(
        &self,
        field: &'static str,
        value: &mut Option<String>,
        lines: Lines,
        max: usize,
    ) {
        if let Some(v) = value {
            let fixes = clean_text(v, lines, max);
            let removed = fixes.removed > 0;
            self.fixes(field, fixes, max);
            if removed && v.trim().is_empty() {
                *value = None;
            }
        }
    }

    /// A required one-line field: empty after cleaning, it takes the first of `fallbacks`
    /// that is not empty (the directory id last).
    fn required(&self, field: &'static str, value: &mut String, fallbacks: &[Option<&str>]) {
        let fixes = clean_text(value, Lines::Single, MAX_FIELD_CHARS);
        self.fixes(field, fixes, MAX_FIELD_CHARS);
        if value.trim().is_empty() {
            let fallback = fallbacks
                .iter()
                .flatten()
                .find(|f| !f.trim().is_empty())
                .copied()
                .unwrap_or(self.external_id);
            *value = fallback.to_owned();
            self.note(
                field,
                Action::Cleaned,
                format!("`{field}` was empty; \"{}\" is shown instead", shown(value)),
            );
        }
    }
}

/// `record` as the policy allows it, or `None` (with a `SKIPPED` warning) when its id is
/// refused.
pub fn clean<T: Clean>(record: T, warnings: &Warnings) -> Option<T> {
    if let Some(why) = refused_id(record.external_id()) {
        warnings.push(Warning::new(
            T::KIND,
            record.external_id(),
            None,
            Action::Skipped,
            format!("the {} was skipped: {why}", T::NOUN),
        ));
        return None;
    }
    Some(record.clean_fields(warnings))
}

/// The fields of a user whose id passed, as the policy allows them.
fn clean_user_fields(mut user: ExternalUser, warnings: &Warnings) -> ExternalUser {
    let external_id = user.external_id.clone();
    let record = Record {
        object: ObjectKind::User,
        external_id: &external_id,
        warnings,
    };
    for field in USER_FIELDS {
        let instead = field
            .instead
            .and_then(|name| USER_FIELDS.iter().find(|f| f.name == name))
            .and_then(|f| (f.given)(&user))
            .map(str::to_owned);
        match (field.given_mut)(&mut user) {
            FieldMut::Optional(value) => record.optional(field.name, value),
            FieldMut::Required(value) => record.required(field.name, value, &[instead.as_deref()]),
        }
    }
    if user.aliases.len() > MAX_ALIASES {
        record.note(
            "aliases",
            Action::Truncated,
            format!(
                "the user has {} aliases; the first {MAX_ALIASES} were kept",
                user.aliases.len()
            ),
        );
        user.aliases.truncate(MAX_ALIASES);
    }
    let mut removed = 0;
    let mut cut = 0;
    for alias in &mut user.aliases {
        let fixes = clean_text(alias, Lines::Single, MAX_FIELD_CHARS);
        removed += fixes.removed;
        cut += usize::from(fixes.cut_from.is_some());
    }
    user.aliases.retain(|a| !a.trim().is_empty());
    if removed > 0 {
        record.note(
            "aliases",
            Action::Cleaned,
            format!("the aliases held {removed} control or bidirectional-text character(s); they were removed"),
        );
    }
    if cut > 0 {
        record.note(
            "aliases",
            Action::Truncated,
            format!("{cut} alias(es) were longer than {MAX_FIELD_CHARS} characters and were cut"),
        );
    }
    user
}

/// The fields (and inline members) of a group whose id passed, as the policy allows them.
fn clean_group_fields(mut group: ExternalGroup, warnings: &Warnings) -> ExternalGroup {
    let external_id = group.external_id.clone();
    let record = Record {
        object: ObjectKind::Group,
        external_id: &external_id,
        warnings,
    };
    record.optional("email", &mut group.email);
    record.required(
        "displayName",
        &mut group.display_name,
        &[group.email.as_deref()],
    );
    record.optional_with(
        "description",
        &mut group.description,
        Lines::Multi,
        MAX_DESCRIPTION_CHARS,
    );
    if let Some(members) = group.members.take() {
        let mut members = clean_members(&external_id, members, warnings);
        cap_members(&external_id, &mut members, warnings);
        group.members = Some(members);
    }
    group
}

/// The member ids of a group's page that the policy allows; each other is ignored with a
/// warning.
pub fn clean_members(group: &str, mut members: Vec<Member>, warnings: &Warnings) -> Vec<Member> {
    members.retain(|member| match refused_id(member.id()) {
        None => true,
        Some(why) => {
            warnings.push(ignored_member(
                group,
                member.id(),
                &format!("a member was ignored: {why}"),
            ));
            false
        }
    });
    members
}

/// Cuts the members listed for one group to [`MAX_MEMBERS`], with a warning when cut.
pub fn cap_members<M>(group: &str, members: &mut Vec<M>, warnings: &Warnings) {
    if members.len() > MAX_MEMBERS {
        warnings.push(Warning::new(
            ObjectKind::Group,
            group,
            Some("members"),
            Action::Truncated,
            format!(
                "the group lists {} members; the first {MAX_MEMBERS} were kept",
                members.len()
            ),
        ));
        members.truncate(MAX_MEMBERS);
    }
}

/// The warning for a member of `group` left out.
pub fn ignored_member(group: &str, member: &str, why: &str) -> Warning {
    Warning::new(
        ObjectKind::Group,
        group,
        Some("members"),
        Action::IgnoredMember,
        format!("{why} (member {})", shown(member)),
    )
}

/// A record the policy cleans: its id is checked, its fields cleaned.
pub trait Clean: Sized {
    const KIND: ObjectKind;
    /// The object, as a message names it.
    const NOUN: &'static str;
    fn external_id(&self) -> &str;
    /// The record with its fields cleaned (its id already passed).
    fn clean_fields(self, warnings: &Warnings) -> Self;
}

impl Clean for ExternalUser {
    const KIND: ObjectKind = ObjectKind::User;
    const NOUN: &'static str = "user";
    fn external_id(&self) -> &str {
        &self.external_id
    }
    fn clean_fields(self, warnings: &Warnings) -> Self {
        clean_user_fields(self, warnings)
    }
}

impl Clean for ExternalGroup {
    const KIND: ObjectKind = ObjectKind::Group;
    const NOUN: &'static str = "group";
    fn external_id(&self) -> &str {
        &self.external_id
    }
    fn clean_fields(self, warnings: &Warnings) -> Self {
        clean_group_fields(self, warnings)
    }
}

/// A value from a provider outside a sync (the tenant and the account of a grant): cleaned
/// and cut the same way, the change logged.
pub fn clean_value(what: &'static str, value: Option<String>) -> Option<String> {
    let mut value = value?;
    let fixes = clean_text(&mut value, Lines::Single, MAX_FIELD_CHARS);
    if fixes != Fixes::default() {
        tracing::warn!(
            field = what,
            removed = fixes.removed,
            cut_from = fixes.cut_from,
            "a provider value was cleaned"
        );
    }
    (!value.trim().is_empty()).then_some(value)
}

#[cfg(test)]
mod tests;
