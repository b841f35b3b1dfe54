//! SCIM filters as SQL: every filter a list accepts becomes one `WHERE` condition, so a list
//! counts and pages in the database and a request reads one page, whatever the directory's
//! size. A filter on an attribute with no column is refused (`400 invalidFilter`, RFC 7644
//! §3.4.2.2) rather than evaluated over every row.
//!
//! Comparisons follow RFC 7643's case rules and give the same answer on SQLite and PostgreSQL:
//! `userName` and email addresses compare on their stored keys (lower-cased in Rust,
//! `directory::match_key`); other case-insensitive attributes fold ASCII letters on both
//! databases (`lower()` on SQLite; `lower(… COLLATE "C")` on PostgreSQL, whose `lower()`
//! would otherwise also fold other scripts); `id`, `externalId` and `manager.value` compare exactly; `co`, `sw`,
//! `ew` are written with `instr`/`substr` (SQLite) and `strpos`/`left`/`right` (PostgreSQL)
//! rather than `LIKE`, whose case rules differ between the two; ordering comparisons of text
//! use byte order (`COLLATE "C"` on PostgreSQL, SQLite's default).
//!
//! One filter shape cannot be decided in SQL: a value filter on an email's `type` or
//! `primary` (Entra's `emails[type eq "work"].value eq "…"`), since aliases keep no type. The
//! condition is then a superset ([`Translated::exact`] is false): the caller reads at most
//! [`MAX_INEXACT_ROWS`] candidates and the in-memory evaluator decides.

pub mod read;

use crate::scim_filter::{AttrPath, Filter, Op};
use crate::{
    providers::fields::{USER_FIELDS, UserField},
    text::match_key,
};
use entity::{directory_group, directory_user, enums::UserStatus, group_membership, user_alias};
use sea_orm::{
    ColumnTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect, QueryTrait, RelationTrait,
    sea_query::{Expr, ExprTrait, SimpleExpr},
};
use serde_json::Value;

/// Most candidate rows an inexact filter may leave for the in-memory evaluator.
pub const MAX_INEXACT_ROWS: u64 = 1_000;

/// A filter as a condition.
#[derive(Debug, Clone)]
pub struct Translated {
    pub condition: SimpleExpr,
    /// `false`: the condition is a superset, and the evaluator decides.
    pub exact: bool,
}

/// What a filter attribute is stored as.
#[derive(Debug, Clone, Copy)]
enum Field {
    /// Text compared exactly.
    Exact(Col),
    /// Text stored lower-cased (`match_key`).
    Key(Col),
    /// Text compared ignoring ASCII case.
    Folded(Col),
    /// A time (`meta.created`, `meta.lastModified`).
    Time(Col),
    /// `active`: the user's status.
    Active,
    /// `emails`, `emails.value`: the primary email and the aliases.
    Emails,
    /// `members`, `members.value`: the ids of a group's members.
    Members,
}

#[derive(Debug, Clone, Copy)]
enum Col {
    User(directory_user::Column),
    Group(directory_group::Column),
}

impl Col {
    fn expr(self) -> SimpleExpr {
        match self {
            Col::User(c) => Expr::col((directory_user::Entity, c)),
            Col::Group(c) => Expr::col((directory_group::Entity, c)),
        }
    }
}

/// Which resources a filter runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    User,
    Group,
}

impl Translated {
    /// A condition nothing matches.
    pub fn nothing() -> Self {
        Self {
            condition: Expr::val(false),
            exact: true,
        }
    }
}

/// Why a filter cannot run (`400 invalidFilter`).
pub type Refused = String;

struct Translator {
    backend: DbBackend,
    resource: Resource,
    exact: bool,
}

/// Translates `filter` for `resource` on `backend`.
pub fn translate(
    filter: &Filter,
    resource: Resource,
    backend: DbBackend,
) -> Result<Translated, Refused> {
    let mut t = Translator {
        backend,
        resource,
        exact: true,
    };
    let condition = t.filter(filter, false)?;
    Ok(Translated {
        condition,
        exact: t.exact,
    })
}

fn is_core(path: &AttrPath) -> bool {
    path.uri
        .as_deref()
        .is_none_or(|u| u.to_ascii_lowercase().contains(":core:"))
}

fn is_enterprise(path: &AttrPath) -> bool {
    path.uri
        .as_deref()
        .is_some_and(|u| u.to_ascii_lowercase().contains(":enterprise:"))
}

/// The synced user field SCIM carries at `attr`(`.sub`) (lower-cased) in the core schema or
/// the enterprise extension (`providers::fields`).
fn synced(
    attr: &str,
    sub: Option<&str>,
    core: bool,
    enterprise: bool,
) -> Option<&'static UserField> {
    USER_FIELDS.iter().find(|f| {
        f.scim.is_some_and(|at| {
            at.of_type.is_none()
                && (if at.enterprise { enterprise } else { core })
                && at.attr.eq_ignore_ascii_case(attr)
                && match (at.sub, sub) {
                    (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                    (None, None) => true,
                    _ => false,
                }
        })
    })
}

impl Translator {
    fn field(&self, path: &AttrPath) -> Result<Field, Refused> {
        use directory_group::Column as G;
        use directory_user::Column as U;
        let attr = path.attr.to_ascii_lowercase();
        let sub = path.sub.as_deref().map(str::to_ascii_lowercase);
        if matches!(self.resource, Resource::User)
            && let Some(field) = synced(&attr, sub.as_deref(), is_core(path), is_enterprise(path))
        {
            return Ok(match field.key {
                Some(key) => Field::Key(Col::User(key)),
                None => Field::Folded(Col::User(field.column)),
            });
        }
        let field = match (self.resource, is_core(path), is_enterprise(path)) {
            (Resource::User, true, _) => match (attr.as_str(), sub.as_deref()) {
                ("id", None) => Some(Field::Exact(Col::User(U::ExternalId))),
                ("externalid", None) => Some(Field::Exact(Col::User(U::ScimExternalId))),
                ("active", None) => Some(Field::Active),
                ("emails", None | Some("value")) => Some(Field::Emails),
                ("meta", Some("created")) => Some(Field::Time(Col::User(U::CreatedAt))),
                ("meta", Some("lastmodified")) => Some(Field::Time(Col::User(U::UpdatedAt))),
                _ => None,
            },
            (Resource::User, false, true) => match (attr.as_str(), sub.as_deref()) {
                ("manager", None | Some("value")) => {
                    Some(Field::Exact(Col::User(U::ManagerExternalId)))
                }
                _ => None,
            },
            (Resource::Group, true, _) => match (attr.as_str(), sub.as_deref()) {
                ("id", None) => Some(Field::Exact(Col::Group(G::ExternalId))),
                ("externalid", None) => Some(Field::Exact(Col::Group(G::ScimExternalId))),
                ("displayname", None) => Some(Field::Folded(Col::Group(G::DisplayName))),
                ("members", None | Some("value")) => Some(Field::Members),
                ("meta", Some("created")) => Some(Field::Time(Col::Group(G::CreatedAt))),
                ("meta", Some("lastmodified")) => Some(Field::Time(Col::Group(G::UpdatedAt))),
                _ => None,
            },
            _ => None,
        };
        field.ok_or_else(|| {
            let name = match &path.sub {
                Some(sub) => format!("{}.{sub}", path.attr),
                None => path.attr.clone(),
            };
            format!(
                "filtering on `{name}` is not supported; {}",
                self.supported()
            )
        })
    }

    fn supported(&self) -> &'static str {
        match self.resource {
            Resource::User => {
                "users filter on id, externalId, userName, displayName, name.givenName, \
                 name.familyName, title, active, emails(.value), meta.created, meta.lastModified \
                 and the enterprise employeeNumber, department and manager(.value)"
            }
            Resource::Group => {
                "groups filter on id, externalId, displayName, members(.value), meta.created \
                 and meta.lastModified"
            }
        }
    }

    fn filter(&mut self, filter: &Filter, negated: bool) -> Result<SimpleExpr, Refused> {
        Ok(match filter {
            Filter::And(a, b) => and(self.filter(a, negated)?, self.filter(b, negated)?),
            Filter::Or(a, b) => or(self.filter(a, negated)?, self.filter(b, negated)?),
            Filter::Not(inner) => self.filter(inner, !negated)?.not(),
            Filter::Present(path) => self.present(self.field(path)?),
            Filter::Compare(path, op, value) => self.compare(self.field(path)?, *op, value)?,
            Filter::ValuePath(path, inner) => self.value_path(path, inner, negated)?,
        })
    }

    /// `emails[…]` and `members[…]`: comparisons of `value` decide; those of `type`,
    /// `primary` or `display` of an email cannot, and leave a superset.
    fn value_path(
        &mut self,
        path: &AttrPath,
        inner: &Filter,
        negated: bool,
    ) -> Result<SimpleExpr, Refused> {
        let field = self.field(&AttrPath {
            sub: None,
            ..path.clone()
        })?;
        if !matches!(field, Field::Emails | Field::Members) {
            return Err(format!(
                "a value filter on `{}` is not supported",
                path.attr
            ));
        }
        self.element(field, inner, negated)
    }

    fn element(
        &mut self,
        field: Field,
        inner: &Filter,
        negated: bool,
    ) -> Result<SimpleExpr, Refused> {
        Ok(match inner {
            Filter::And(a, b) => and(
                self.element(field, a, negated)?,
                self.element(field, b, negated)?,
            ),
            Filter::Or(a, b) => or(
                self.element(field, a, negated)?,
                self.element(field, b, negated)?,
            ),
            Filter::Not(x) => self.element(field, x, !negated)?.not(),
            Filter::Compare(sub, op, value) if sub.attr.eq_ignore_ascii_case("value") => {
                self.compare(field, *op, value)?
            }
            Filter::Present(sub) if sub.attr.eq_ignore_ascii_case("value") => self.present(field),
            Filter::Compare(sub, ..) | Filter::Present(sub)
                if matches!(field, Field::Emails)
                    && ["type", "primary", "display"]
                        .iter()
                        .any(|a| sub.attr.eq_ignore_ascii_case(a)) =>
            {
                if negated {
                    return Err(format!(
                        "`{}` of an email cannot be negated in a filter",
                        sub.attr
                    ));
                }
                self.exact = false;
                Expr::val(true)
            }
            other => return Err(format!("{other:?} is not supported inside a value filter")),
        })
    }

    fn present(&self, field: Field) -> SimpleExpr {
        match field {
            Field::Exact(c) | Field::Key(c) | Field::Folded(c) => {
                c.expr().is_not_null().and(c.expr().ne(Expr::val("")))
            }
            Field::Time(_) | Field::Active => Expr::val(true),
            Field::Emails => Col::User(directory_user::Column::EmailKey)
                .expr()
                .is_not_null()
                .or(
                    Expr::col((directory_user::Entity, directory_user::Column::Id))
                        .in_subquery(aliases(None)),
                ),
            Field::Members => Expr::col((directory_group::Entity, directory_group::Column::Id))
                .in_subquery(members(None)),
        }
    }

    fn compare(&self, field: Field, op: Op, value: &Value) -> Result<SimpleExpr, Refused> {
        match field {
            Field::Active => active(op, value),
            Field::Time(c) => time(c, op, value),
            Field::Exact(c) => {
                let v = text(value)?;
                Ok(self.text_op(c.expr(), op, v.to_owned(), true))
            }
            Field::Key(c) => Ok(self.text_op(c.expr(), op, key_of(op, text(value)?), true)),
            Field::Folded(c) => {
                let v = text(value)?.to_ascii_lowercase();
                Ok(self.text_op(self.fold(c.expr()), op, v, true))
            }
            Field::Emails => self.emails(op, text(value)?),
            Field::Members => {
                let v = text(value)?.to_owned();
                let positive = if op == Op::Ne { Op::Eq } else { op };
                let member =
                    Expr::col((directory_user::Entity, directory_user::Column::ExternalId));
                let any = Expr::col((directory_group::Entity, directory_group::Column::Id))
                    .in_subquery(members(Some(self.text_op(member, positive, v, false))));
                Ok(if op == Op::Ne { any.not() } else { any })
            }
        }
    }

    /// An email address (the primary one or an alias) compared with `value`.
    fn emails(&self, op: Op, value: &str) -> Result<SimpleExpr, Refused> {
        let v = key_of(op, value);
        let positive = if op == Op::Ne { Op::Eq } else { op };
        let alias_key = Expr::col((user_alias::Entity, user_alias::Column::AliasKey));
        let primary = self.text_op(
            Col::User(directory_user::Column::EmailKey).expr(),
            positive,
            v.clone(),
            false,
        );
        let alias = self.text_op(alias_key, positive, v, false);
        let id = || Expr::col((directory_user::Entity, directory_user::Column::Id));
        let any = if positive == Op::Eq {
            // One id set, the primary address's and the aliases': each half is an
            // index lookup, and the outer query reads rows by id (SQLite, without
            // statistics, would otherwise scan the integration for `a OR b`).
            let mut with_value = directory_user::Entity::find()
                .select_only()
                .column(directory_user::Column::Id)
                .filter(primary)
                .into_query();
            with_value.union(sea_orm::sea_query::UnionType::All, aliases(Some(alias)));
            id().in_subquery(with_value)
        } else {
            // `co`, `sw`, `ew`, ordering: a scan either way; PostgreSQL hashes the
            // alias subquery once.
            primary.or(id().in_subquery(aliases(Some(alias))))
        };
        // A multi-valued `ne`: no value equals.
        Ok(if op == Op::Ne { any.not() } else { any })
    }

    /// `col op value` for text; `nullable`: `ne` also matches a missing value (RFC 7644:
    /// an absent attribute is not equal to anything).
    fn text_op(&self, col: SimpleExpr, op: Op, value: String, nullable: bool) -> SimpleExpr {
        let n = value.chars().count() as i64;
        let v = || -> SimpleExpr { Expr::val(value.clone()) };
        match op {
            Op::Eq => col.eq(value),
            Op::Ne if nullable => col.clone().is_null().or(col.ne(value)),
            Op::Ne => col.ne(value),
            Op::Co => self.custom("instr(?, ?) > 0", "strpos($1, $2) > 0", [col, v()]),
            Op::Sw => self.custom(
                "substr(?, 1, ?) = ?",
                "left($1, CAST($2 AS integer)) = $3",
                [col, Expr::val(n), v()],
            ),
            Op::Ew if n == 0 => col.is_not_null(),
            Op::Ew => self.custom(
                "substr(?, ?) = ?",
                "right($1, CAST($2 AS integer)) = $3",
                [
                    col,
                    Expr::val(if self.backend == DbBackend::Postgres {
                        n
                    } else {
                        -n
                    }),
                    v(),
                ],
            ),
            Op::Gt => self.custom("? > ?", "$1 COLLATE \"C\" > $2 COLLATE \"C\"", [col, v()]),
            Op::Ge => self.custom("? >= ?", "$1 COLLATE \"C\" >= $2 COLLATE \"C\"", [col, v()]),
            Op::Lt => self.custom("? < ?", "$1 COLLATE \"C\" < $2 COLLATE \"C\"", [col, v()]),
            Op::Le => self.custom("? <= ?", "$1 COLLATE \"C\" <= $2 COLLATE \"C\"", [col, v()]),
        }
    }

    /// A function call written for each backend (sea-query's placeholders are `?` in order on
    /// SQLite and `$n` on PostgreSQL).
    fn custom<const N: usize>(
        &self,
        sqlite: &'static str,
        postgres: &'static str,
        args: [SimpleExpr; N],
    ) -> SimpleExpr {
        match self.backend {
            DbBackend::Postgres => Expr::cust_with_exprs(postgres, args),
            _ => Expr::cust_with_exprs(sqlite, args),
        }
    }

    /// Lower-cases ASCII letters only, the same way on both databases.
    fn fold(&self, col: SimpleExpr) -> SimpleExpr {
        self.custom("lower(?)", "lower($1 COLLATE \"C\")", [col])
    }
}
/// `active` compared with `value` (`true`/`false`, or their strings).
fn active(op: Op, value: &Value) -> Result<SimpleExpr, Refused> {
    let wanted = match value {
        Value::Bool(b) => *b,
        Value::String(s) if s.eq_ignore_ascii_case("true") => true,
        Value::String(s) if s.eq_ignore_ascii_case("false") => false,
        _ => return Err("`active` compares with true or false".into()),
    };
    let status = directory_user::Column::Status;
    let is = |active: bool| {
        status.eq(if active {
            UserStatus::Active
        } else {
            UserStatus::Suspended
        })
    };
    match op {
        Op::Eq => Ok(is(wanted)),
        Op::Ne => Ok(is(!wanted)),
        _ => Err("`active` takes eq, ne or pr".into()),
    }
}

/// A time column compared with `value` (an RFC 3339 date-time).
fn time(c: Col, op: Op, value: &Value) -> Result<SimpleExpr, Refused> {
    let Some(at) = value
        .as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
    else {
        return Err("a time compares with an RFC 3339 date-time string".into());
    };
    let col = c.expr();
    Ok(match op {
        Op::Eq => col.eq(at),
        Op::Ne => col.ne(at),
        Op::Gt => col.gt(at),
        Op::Ge => col.gte(at),
        Op::Lt => col.lt(at),
        Op::Le => col.lte(at),
        Op::Co | Op::Sw | Op::Ew => {
            return Err("a time takes eq, ne, gt, ge, lt, le or pr".into());
        }
    })
}

fn is_true(e: &SimpleExpr) -> bool {
    matches!(e, Expr::Value(sea_orm::sea_query::Value::Bool(Some(true))))
}

/// `a AND b`, without a literal `TRUE` (which would keep SQLite from using its indexes for an
/// `OR` beside it).
fn and(a: SimpleExpr, b: SimpleExpr) -> SimpleExpr {
    match (is_true(&a), is_true(&b)) {
        (true, _) => b,
        (_, true) => a,
        _ => a.and(b),
    }
}

fn or(a: SimpleExpr, b: SimpleExpr) -> SimpleExpr {
    if is_true(&a) || is_true(&b) {
        Expr::val(true)
    } else {
        a.or(b)
    }
}

fn text(value: &Value) -> Result<&str, Refused> {
    value
        .as_str()
        .ok_or_else(|| format!("{value} is not a string; this attribute compares with strings"))
}

/// The stored key a value compares with: `match_key` for equality, lower case otherwise.
fn key_of(op: Op, value: &str) -> String {
    match op {
        Op::Eq | Op::Ne => match_key(value),
        _ => value.to_lowercase(),
    }
}

/// `SELECT user_id FROM user_aliases [WHERE condition]`.
fn aliases(condition: Option<SimpleExpr>) -> sea_orm::sea_query::SelectStatement {
    let mut select = user_alias::Entity::find()
        .select_only()
        .column(user_alias::Column::UserId);
    if let Some(condition) = condition {
        select = select.filter(condition);
    }
    select.into_query()
}

/// `SELECT group_id FROM group_memberships JOIN directory_users [WHERE condition]`.
fn members(condition: Option<SimpleExpr>) -> sea_orm::sea_query::SelectStatement {
    let mut select = group_membership::Entity::find()
        .select_only()
        .column(group_membership::Column::GroupId)
        .join(
            sea_orm::JoinType::InnerJoin,
            group_membership::Relation::User.def(),
        );
    if let Some(condition) = condition {
        select = select.filter(condition);
    }
    select.into_query()
}

#[cfg(test)]
mod tests;
