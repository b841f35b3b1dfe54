use super::*;
use crate::scim_filter::parse;

fn sql(filter: &str, resource: Resource, backend: DbBackend) -> Result<(String, bool), Refused> {
    let t = translate(&parse(filter).unwrap(), resource, backend)?;
    let query = directory_user::Entity::find()
        .filter(t.condition)
        .build(backend)
        .to_string();
    Ok((query, t.exact))
}

#[test]
fn translate_covers_the_filters_clients_send() {
    for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
        for filter in [
            r#"userName eq "Adele@Contoso.example""#,
            r#"externalId eq "00u1""#,
            r#"id eq "a" and active eq true"#,
            r#"name.familyName sw "V" or title co "eng""#,
            r#"not (displayName ew "x")"#,
            r#"emails.value eq "a@b.c""#,
            r#"meta.lastModified gt "2026-01-01T00:00:00Z""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "R&D""#,
            r#"active eq "False""#,
            r#"userName pr"#,
        ] {
            let (_, exact) = sql(filter, Resource::User, backend).unwrap();
            assert!(exact, "{filter}");
        }
        let (_, exact) = sql(r#"members[value eq "u1"]"#, Resource::Group, backend).unwrap();
        assert!(exact);
    }
}

#[test]
fn translate_leaves_a_superset_for_email_types_only() {
    let (query, exact) = sql(
        r#"emails[type eq "work"].value eq "a@b.c""#,
        Resource::User,
        DbBackend::Postgres,
    )
    .unwrap();
    assert!(!exact);
    assert!(query.contains("a@b.c"), "{query}");
    assert!(
        sql(
            r#"not (emails[type eq "work"])"#,
            Resource::User,
            DbBackend::Sqlite
        )
        .is_err()
    );
}

#[test]
fn translate_refuses_attributes_without_a_column_and_wrong_types() {
    for filter in [
        r#"nickName eq "x""#,
        r#"phoneNumbers.value eq "1""#,
        r#"active eq "maybe""#,
        r#"userName eq 1"#,
        r#"meta.created co "2026""#,
    ] {
        assert!(
            sql(filter, Resource::User, DbBackend::Sqlite).is_err(),
            "{filter}"
        );
    }
    assert!(sql(r#"userName eq "x""#, Resource::Group, DbBackend::Sqlite).is_err());
}

#[test]
fn translate_folds_ascii_the_same_way_on_both_databases() {
    let (pg, _) = sql(
        r#"displayName eq "ADELE""#,
        Resource::User,
        DbBackend::Postgres,
    )
    .unwrap();
    assert!(
        pg.contains("COLLATE \"C\"") && pg.contains("'adele'"),
        "{pg}"
    );
    let (lite, _) = sql(
        r#"displayName eq "ADELE""#,
        Resource::User,
        DbBackend::Sqlite,
    )
    .unwrap();
    assert!(
        lite.contains("lower(") && lite.contains("'adele'"),
        "{lite}"
    );
}
