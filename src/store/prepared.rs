//! Statements as PostgreSQL prepares them.
//!
//! sqlx prepares every statement a connection runs and keeps it (its statement cache), and
//! PostgreSQL plans a prepared statement again for each execution until a plan made without
//! its parameters' values costs no more than those made with them. A statement whose text
//! says all that its plan depends on is planned once per connection.

use sea_orm::QueryTrait;

/// `select` as `backend` runs it, its page size written into the text on PostgreSQL.
///
/// With `LIMIT $n` the plan made without parameters is priced at a tenth of the table, so
/// PostgreSQL never keeps it and planned every page again (0.16 ms of the server's time per
/// execution, measured with `log_min_duration_statement`, as much as running it). With the
/// size in the text, a first page (no other parameter) is planned once per connection. The
/// size is a number dirgate formats (`first + 1`), never text from a request; a connection
/// holds one statement per page size asked for, within sqlx's statement cache.
pub fn statement<S: QueryTrait>(backend: sea_orm::DbBackend, select: S) -> sea_orm::Statement {
    inline_limit(select.build(backend))
}

/// `statement` with a trailing `LIMIT $n` (its last parameter) written as the number, on
/// PostgreSQL; anything else unchanged.
pub fn inline_limit(mut statement: sea_orm::Statement) -> sea_orm::Statement {
    if statement.db_backend != sea_orm::DbBackend::Postgres {
        return statement;
    }
    let Some(values) = statement.values.as_mut() else {
        return statement;
    };
    let suffix = format!(" LIMIT ${}", values.0.len());
    if !statement.sql.ends_with(&suffix) {
        return statement;
    }
    let limit = match values.0.last() {
        Some(sea_orm::Value::BigUnsigned(Some(limit))) => *limit,
        _ => return statement,
    };
    values.0.pop();
    statement.sql.truncate(statement.sql.len() - suffix.len());
    statement.sql.push_str(&format!(" LIMIT {limit}"));
    statement
}

#[cfg(test)]
mod tests {
    use super::*;
    use entity::device;
    use sea_orm::{
        ColumnTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select,
    };

    /// A second page of 20 as `page` asks for it: one row over the page.
    fn second_page() -> Select<device::Entity> {
        device::Entity::find()
            .filter(device::Column::Name.eq("Spare"))
            .filter(device::Column::Id.gt(7))
            .order_by_asc(device::Column::Id)
            .limit(21)
    }

    #[test]
    fn a_page_size_is_written_into_postgresqls_text_and_bound_on_sqlite() {
        let pg = statement(DbBackend::Postgres, second_page());
        assert!(
            pg.sql.ends_with(r#"ORDER BY "devices"."id" ASC LIMIT 21"#),
            "{}",
            pg.sql
        );
        let values = pg.values.unwrap().0;
        assert_eq!(values.len(), 2, "the name and the cursor: {values:?}");
        assert!(!values.contains(&sea_orm::Value::BigUnsigned(Some(21))));
        let sqlite = statement(DbBackend::Sqlite, second_page());
        assert!(sqlite.sql.ends_with("LIMIT ?"), "{}", sqlite.sql);
        assert_eq!(sqlite.values.unwrap().0.len(), 3);
    }

    #[test]
    fn only_a_trailing_limit_parameter_is_written_into_the_text() {
        // A `LIMIT` inside the statement, with another parameter after it, stays bound.
        let inner = second_page().build(DbBackend::Postgres);
        let mut values = inner.values.unwrap().0;
        values.push(sea_orm::Value::from(3_i64));
        let outer = sea_orm::Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                r#"SELECT * FROM ({}) AS "p" WHERE "p"."id" > ${}"#,
                inner.sql,
                values.len()
            ),
            values,
        );
        let same = inline_limit(outer.clone());
        assert_eq!(same.sql, outer.sql);
        assert_eq!(same.values, outer.values);
        // Nor is a trailing `LIMIT $n` whose value is not a page size of dirgate's.
        let text = sea_orm::Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT 1 LIMIT $1",
            [sea_orm::Value::from("1; DROP TABLE devices")],
        );
        assert_eq!(inline_limit(text.clone()).sql, text.sql);
    }
}
