//! A user's manager and direct reports as the API reads them: the users a manager reference
//! names (`User.manager`, through the loader), the users reporting to a manager (a filter,
//! and a page per manager in one statement for `User.directReports`), and their counts.

use super::{
    Db,
    columns::{Columns, project},
    page::{Direction, Page, PageArgs},
    related::pages_of,
    rows,
};
use crate::error::DomainError;
use entity::directory_user;
use sea_orm::{
    ColumnTrait, DbErr, EntityTrait, JoinType, QueryFilter,
    sea_query::{Expr, ExprTrait, Func},
};
use std::collections::HashMap;

/// The users of these integrations that these references name (at most [`MAX_KEYS`] each):
/// by the directory's id, or (Google names a manager by primary email) by user name,
/// case-insensitively; reading `columns` of them. The caller pairs each row with its
/// reference.
pub async fn users_by_reference(
    db: &impl Db,
    integrations: &[i64],
    references: &[String],
    columns: Columns,
) -> Result<Vec<directory_user::Model>, DomainError> {
    use sea_orm::Condition;
    let keys: Vec<String> = references.iter().map(|r| r.to_lowercase()).collect();
    rows::models(
        db,
        project(
            directory_user::Entity::find()
                .filter(directory_user::Column::IntegrationId.is_in(integrations.iter().copied()))
                .filter(
                    Condition::any()
                        .add(directory_user::Column::ExternalId.is_in(references.iter().cloned()))
                        .add(directory_user::Column::UserNameKey.is_in(keys)),
                ),
            columns,
        ),
    )
    .await
    .map_err(Into::into)
}

/// The users whose manager is the user `manager` names (a value, or the parent column of a
/// batch): users of its integration whose manager reference is its id, user name or
/// user-name key (Google names a manager by primary email). On the index
/// `(integration_id, manager_external_id)`.
pub fn reporting_to(manager: Expr) -> sea_orm::Condition {
    use directory_user::Column as U;
    // The manager's row under its own name, so the reports' columns stay the outer query's.
    let of_manager = |column: U| {
        let manager_row = sea_orm::sea_query::Alias::new("dg_manager");
        sea_orm::sea_query::Query::select()
            .column((manager_row.clone(), column))
            .from_as(directory_user::Entity, manager_row.clone())
            .and_where(Expr::col((manager_row, U::Id)).eq(manager.clone()))
            .to_owned()
    };
    sea_orm::Condition::all()
        .add(U::IntegrationId.in_subquery(of_manager(U::IntegrationId)))
        .add(
            [U::ExternalId, U::UserName, U::UserNameKey]
                .into_iter()
                .fold(sea_orm::Condition::any(), |any, column| {
                    any.add(U::ManagerExternalId.in_subquery(of_manager(column)))
                }),
        )
}

/// A direct report's manager in a page of reports (`dg_parent`): the user of its
/// integration its manager reference names by id, else by user name (through its lower-cased
/// key, on its index), as [`reporting_to`] matches them.
const MANAGER_OF_ROW: &str = r#"COALESCE((SELECT "dg_m"."id" FROM "directory_users" AS "dg_m" WHERE "dg_m"."integration_id" = "directory_users"."integration_id" AND "dg_m"."external_id" = "directory_users"."manager_external_id"), (SELECT MIN("dg_m"."id") FROM "directory_users" AS "dg_m" WHERE "dg_m"."integration_id" = "directory_users"."integration_id" AND "dg_m"."user_name_key" = LOWER("directory_users"."manager_external_id")))"#;

/// A page of the direct reports of each of these users, reading `columns` of them.
pub async fn reports_of_users(
    db: &impl Db,
    parents: &[i64],
    args: PageArgs,
    dir: Direction,
    columns: Columns,
) -> Result<HashMap<i64, Page<directory_user::Model>>, DomainError> {
    pages_of(
        db,
        parents,
        |manager| {
            project(
                directory_user::Entity::find().filter(reporting_to(manager)),
                columns,
            )
        },
        (MANAGER_OF_ROW, r#""directory_users"."id""#),
        args,
        dir,
    )
    .await
}

/// How many direct reports each of these users has, as `(manager, count)`; one with none
/// is left out.
pub async fn count_reports(db: &impl Db, managers: &[i64]) -> Result<Vec<(i64, i64)>, DbErr> {
    use sea_orm::sea_query::{Alias, Query};
    let (m, r) = (Alias::new("dg_m"), Alias::new("dg_r"));
    use directory_user::Column as U;
    let statement = Query::select()
        .column((m.clone(), U::Id))
        .expr(Func::count(Expr::col((r.clone(), U::Id))))
        .from_as(directory_user::Entity, m.clone())
        .join_as(
            JoinType::InnerJoin,
            directory_user::Entity,
            r.clone(),
            Expr::col((r.clone(), U::IntegrationId))
                .equals((m.clone(), U::IntegrationId))
                .and(
                    Expr::col((r.clone(), U::ManagerExternalId))
                        .equals((m.clone(), U::ExternalId))
                        .or(Expr::col((r.clone(), U::ManagerExternalId))
                            .equals((m.clone(), U::UserName)))
                        .or(Expr::col((r.clone(), U::ManagerExternalId))
                            .equals((m.clone(), U::UserNameKey))),
                ),
        )
        .and_where(Expr::col((m.clone(), U::Id)).is_in(managers.iter().copied()))
        .group_by_col((m, U::Id))
        .to_owned();
    let backend = db.get_database_backend();
    let rows = db.query_all_raw(backend.build(&statement)).await?;
    rows.iter()
        .map(|row| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?)))
        .collect()
}
