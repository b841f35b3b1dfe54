//! The loaders of pages: an integration's or a group's users (with what they are asked for
//! beside them), an integration's groups, its sync runs; each wave's pages of one kind in
//! one statement (`store::page::fetch_per_parent`).

use super::{
    BatchLoader, GroupPageKey, LoadResult, Prefetch, PrefetchedUser, Prefetches, RunPageKey,
    UserPageKey, UserParent,
};
use crate::{
    error::DomainError,
    store::{
        columns::project,
        page::{self, Direction, Page, PageArgs},
        rows::FromColumns,
    },
};
use async_graphql::dataloader::Loader;
use entity::{directory_group, directory_user, group_membership, sync_run};
use sea_orm::{
    DatabaseConnection, EntityTrait, JoinType, QueryFilter, QuerySelect, RelationTrait, Select,
    sea_query::{Expr, ExprTrait},
};
use std::collections::HashMap;

/// Splits keys by their page arguments: one statement per distinct arguments (in
/// practice one, as siblings in a response share their arguments).
fn by_args<'a, K: Copy + 'a, P: Copy + std::hash::Hash + Eq>(
    keys: impl IntoIterator<Item = &'a K>,
    split: impl Fn(K) -> (P, PageArgs),
) -> HashMap<PageArgs, Vec<P>> {
    let mut out: HashMap<PageArgs, Vec<P>> = HashMap::new();
    for key in keys {
        let (parent, args) = split(*key);
        out.entry(args).or_default().push(parent);
    }
    out
}

/// Reads a page of children for each of `parents` (`select(parent)` gives the children of the
/// parent the expression names); every parent gets a page, empty when it has no children.
async fn pages_of<E, K>(
    db: &DatabaseConnection,
    parents: &[i64],
    select: impl Fn(Expr) -> Select<E>,
    sql: (&'static str, &'static str),
    args: PageArgs,
    dir: Direction,
    key: impl Fn(i64) -> K,
) -> Result<HashMap<K, Page<E::Model>>, DomainError>
where
    E: EntityTrait,
    E::Model: FromColumns,
    K: std::hash::Hash + Eq,
{
    let per_parent = page::PerParent {
        parent_sql: sql.0,
        order_sql: sql.1,
        args,
        dir,
    };
    let mut found = page::fetch_per_parent(db, parents, select, per_parent).await?;
    Ok(parents
        .iter()
        .map(|parent| {
            let page = found.remove(parent).unwrap_or_else(Page::empty);
            (key(*parent), page)
        })
        .collect())
}

/// The members of the group `group` names (a value, or the parent column of a batch).
pub fn members_of(group: Expr) -> Select<directory_user::Entity> {
    directory_user::Entity::find()
        .join(
            JoinType::InnerJoin,
            group_membership::Relation::User.def().rev(),
        )
        .filter(Expr::col((group_membership::Entity, group_membership::Column::GroupId)).eq(group))
}

/// The parent and the order of [`members_of`]: ordered by the membership's user id (the same
/// value as the user's), so both databases read the `(group_id, user_id)` index in order.
pub const MEMBERS_SQL: (&str, &str) = (
    r#""group_memberships"."group_id""#,
    r#""group_memberships"."user_id""#,
);

impl Loader<UserPageKey> for BatchLoader {
    type Value = Page<PrefetchedUser>;
    type Error = DomainError;

    async fn load(&self, keys: &[UserPageKey]) -> LoadResult<UserPageKey, Self::Value> {
        self.batch(async {
            let mut out = HashMap::new();
            let asked: std::collections::HashSet<Prefetch> = keys.iter().map(|k| k.2).collect();
            for beside in asked {
                let keys = keys.iter().filter(|k| k.2 == beside);
                for (args, parents) in by_args(keys, |UserPageKey(parent, args, _)| (parent, args))
                {
                    let pages = self.user_pages(&parents, args).await?;
                    let users: Vec<i64> = pages
                        .values()
                        .flat_map(|p| p.items.iter().map(|u| u.id))
                        .collect();
                    let read = Prefetches::of(&self.db, self.projection, users, beside).await?;
                    out.extend(pages.into_iter().map(|(parent, page)| {
                        let page = page.map(|user| read.attach(user));
                        (UserPageKey(parent, args, beside), page)
                    }));
                }
            }
            Ok(out)
        })
        .await
    }
}

impl BatchLoader {
    /// A page of users of each of `parents`.
    async fn user_pages(
        &self,
        parents: &[UserParent],
        args: PageArgs,
    ) -> LoadResult<UserParent, Page<directory_user::Model>> {
        let mut out = HashMap::new();
        let of_integration: Vec<i64> = parents
            .iter()
            .filter_map(|p| match p {
                UserParent::Integration(id) => Some(*id),
                UserParent::Group(_) => None,
            })
            .collect();
        let of_group: Vec<i64> = parents
            .iter()
            .filter_map(|p| match p {
                UserParent::Group(id) => Some(*id),
                UserParent::Integration(_) => None,
            })
            .collect();
        if !of_integration.is_empty() {
            out.extend(
                pages_of(
                    &self.db,
                    &of_integration,
                    |integration| {
                        project(
                            directory_user::Entity::find().filter(
                                Expr::col((
                                    directory_user::Entity,
                                    directory_user::Column::IntegrationId,
                                ))
                                .eq(integration),
                            ),
                            self.projection.users,
                        )
                    },
                    (
                        r#""directory_users"."integration_id""#,
                        r#""directory_users"."id""#,
                    ),
                    args,
                    Direction::Asc,
                    UserParent::Integration,
                )
                .await?,
            );
        }
        if !of_group.is_empty() {
            out.extend(
                pages_of(
                    &self.db,
                    &of_group,
                    |group| project(members_of(group), self.projection.users),
                    MEMBERS_SQL,
                    args,
                    Direction::Asc,
                    UserParent::Group,
                )
                .await?,
            );
        }
        Ok(out)
    }
}

impl Loader<GroupPageKey> for BatchLoader {
    type Value = Page<directory_group::Model>;
    type Error = DomainError;

    async fn load(&self, keys: &[GroupPageKey]) -> LoadResult<GroupPageKey, Self::Value> {
        self.batch(async {
            let mut out = HashMap::new();
            for (args, parents) in by_args(keys, |GroupPageKey(parent, args)| (parent, args)) {
                out.extend(
                    pages_of(
                        &self.db,
                        &parents,
                        |integration| {
                            project(
                                directory_group::Entity::find().filter(
                                    Expr::col((
                                        directory_group::Entity,
                                        directory_group::Column::IntegrationId,
                                    ))
                                    .eq(integration),
                                ),
                                self.projection.groups,
                            )
                        },
                        (
                            r#""directory_groups"."integration_id""#,
                            r#""directory_groups"."id""#,
                        ),
                        args,
                        Direction::Asc,
                        |id| GroupPageKey(id, args),
                    )
                    .await?,
                );
            }
            Ok(out)
        })
        .await
    }
}

impl Loader<RunPageKey> for BatchLoader {
    type Value = Page<sync_run::Model>;
    type Error = DomainError;

    async fn load(&self, keys: &[RunPageKey]) -> LoadResult<RunPageKey, Self::Value> {
        self.batch(async {
            let mut out = HashMap::new();
            for (args, parents) in by_args(keys, |RunPageKey(parent, args)| (parent, args)) {
                out.extend(
                    pages_of(
                        &self.db,
                        &parents,
                        |integration| {
                            sync_run::Entity::find().filter(
                                Expr::col((sync_run::Entity, sync_run::Column::IntegrationId))
                                    .eq(integration),
                            )
                        },
                        (r#""sync_runs"."integration_id""#, r#""sync_runs"."id""#),
                        args,
                        Direction::Desc,
                        |id| RunPageKey(id, args),
                    )
                    .await?,
                );
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ConnectionTrait, Statement};

    /// SQLite's plan of a page of members of many groups: each group's arm seeks its members
    /// in the `(group_id, user_id)` index and stops at the page's end, without sorting.
    #[tokio::test]
    async fn a_page_of_members_reads_each_group_in_index_order() {
        let db = crate::db::connect("sqlite::memory:").await.unwrap();
        crate::db::migrate(&db).await.unwrap();
        let args = PageArgs {
            first: 20,
            after: Some(7),
        };
        let per_parent = page::PerParent {
            parent_sql: MEMBERS_SQL.0,
            order_sql: MEMBERS_SQL.1,
            args,
            dir: Direction::Asc,
        };
        let statement = page::per_parent_statement(&[1, 2, 3], members_of, per_parent).unwrap();
        let built = db.get_database_backend().build(&statement);
        let (sql, values) = (built.sql.clone(), built.values.clone());
        assert_eq!(
            sql.matches("LIMIT").count(),
            3,
            "one limited arm per group: {sql}"
        );
        let plan = db
            .query_all_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                format!("EXPLAIN QUERY PLAN {sql}"),
                values.unwrap(),
            ))
            .await
            .unwrap();
        let plan: Vec<String> = plan
            .iter()
            .map(|r| r.try_get::<String>("", "detail").unwrap())
            .collect();
        assert!(
            plan.iter()
                .filter(|d| d.contains("group_memberships") && d.contains("INDEX"))
                .count()
                >= 3,
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|d| d.contains("TEMP B-TREE")),
            "a page sorts its group's members: {plan:?}"
        );
    }
}
