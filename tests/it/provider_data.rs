//! Provider data is untrusted input (R18): what a directory sends passes the same text policy
//! as the edge on its way in, a record the database still refuses fails only itself, and
//! each is reported on its run. Through the real Entra and Google clients against the fake,
//! on SQLite and PostgreSQL.

use crate::{
    on_both_databases,
    support::{Backend, Fixture},
    sync::{connect, last_run, started, sync, tenant_users, user_count},
};
use fake_directory::Kind;
use proptest::strategy::{Strategy, ValueTree};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

on_both_databases!(
    a_messy_entra_directory_syncs_with_a_warning_per_bad_record,
    a_messy_google_directory_syncs_with_a_warning_per_bad_record,
    a_record_the_database_refuses_is_skipped_and_an_existing_one_kept,
    arbitrary_unicode_from_the_directory_never_fails_a_sync,
);

const USER_FIELDS: &str = "externalId userName email displayName givenName familyName jobTitle department employeeId aliases";

/// Every user and group the API shows, as JSON.
async fn everything(fx: &Fixture) -> (Vec<Value>, Vec<Value>) {
    let viewer = fx.viewer().await;
    let data = fx
        .ok(
            &viewer,
            &format!(
                "{{ users(first: 500) {{ nodes {{ {USER_FIELDS} }} }} groups(first: 500) {{ nodes {{ externalId displayName email description members(first: 100) {{ nodes {{ externalId }} }} }} }} }}"
            ),
            json!({}),
        )
        .await;
    let list = |v: &Value| v["nodes"].as_array().unwrap().clone();
    (list(&data["users"]), list(&data["groups"]))
}

/// No control or bidi character in any string of `value` (line breaks only in a group's
/// description).
fn assert_clean(value: &Value, multi_line: bool) {
    match value {
        Value::String(s) => {
            let lines = if multi_line {
                dirgate::text::Lines::Multi
            } else {
                dirgate::text::Lines::Single
            };
            assert!(
                dirgate::text::check(s, lines).is_ok(),
                "{s:?} is readable through the API"
            );
        }
        Value::Array(items) => items.iter().for_each(|v| assert_clean(v, multi_line)),
        Value::Object(map) => map
            .iter()
            .for_each(|(k, v)| assert_clean(v, k == "description")),
        _ => {}
    }
}

fn by_id<'a>(items: &'a [Value], id: &str) -> &'a Value {
    items
        .iter()
        .find(|v| v["externalId"] == id)
        .unwrap_or_else(|| panic!("{id} is not listed"))
}

/// The run's warnings as (external id, field, action).
async fn warnings(fx: &Fixture, integration: &Value) -> (i64, Vec<(String, Value, String)>) {
    let viewer = fx.viewer().await;
    let data = fx
        .ok(
            &viewer,
            "query($id: ID!) { integration(id: $id) { syncRuns(first: 1) { nodes { warningCount warnings(first: 500) { totalCount nodes { objectKind externalId field action message } } } } } }",
            json!({ "id": integration }),
        )
        .await;
    let run = &data["integration"]["syncRuns"]["nodes"][0];
    let list = run["warnings"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            assert!(!w["message"].as_str().unwrap().is_empty());
            (
                w["externalId"].as_str().unwrap().to_owned(),
                w["field"].clone(),
                w["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect::<Vec<_>>();
    assert_eq!(run["warnings"]["totalCount"], list.len());
    (run["warningCount"].as_i64().unwrap(), list)
}

fn has(list: &[(String, Value, String)], id: &str, field: &str, action: &str) -> bool {
    list.iter()
        .any(|(i, f, a)| i == id && f.as_str() == Some(field) && a == action)
}

async fn messy_directory_syncs(fx: Fixture, kind: Kind) {
    let (fx, server) = started(fx, 40).await;
    let key = server.tenant(kind);
    server
        .fake
        .edit(|d| d.tenants.get_mut(&key).unwrap().add_messy_records());
    let (api_kind, name) = match kind {
        Kind::Entra => ("ENTRA_ID", "Contoso"),
        Kind::Google => ("GOOGLE_WORKSPACE", "Fabrikam"),
    };
    let id = connect(&fx, api_kind, name, false).await;
    let run = last_run(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(
        run["usersCreated"], 47,
        "40 ordinary users and 7 messy ones"
    );
    assert_eq!(
        run["groupsCreated"], 5,
        "3 ordinary groups and 2 messy ones"
    );

    let (count, list) = warnings(&fx, &id).await;
    for (user, field, action) in [
        ("messy-nul", "displayName", "CLEANED"),
        ("messy-c0", "displayName", "CLEANED"),
        ("messy-c1", "displayName", "CLEANED"),
        ("messy-bidi", "displayName", "CLEANED"),
        ("messy-long", "department", "TRUNCATED"),
        ("messy-aliases", "aliases", "TRUNCATED"),
        ("messy-group-nul", "displayName", "CLEANED"),
    ] {
        assert!(
            has(&list, user, field, action),
            "{user} {field} {action}: {list:?}"
        );
    }
    let ignored = has(&list, "messy-group-nul", "members", "IGNORED_MEMBER");
    assert_eq!(
        ignored,
        kind == Kind::Google,
        "the external member of the Google group is ignored: {list:?}"
    );
    assert_eq!(count as usize, list.len(), "{list:?}");
    assert!(
        !list.iter().any(|(i, _, _)| i.contains("unicode")),
        "legitimate Unicode is no warning: {list:?}"
    );

    let (users, groups) = everything(&fx).await;
    assert_eq!(users.len(), 47);
    for value in users.iter().chain(&groups) {
        assert_clean(value, false);
    }
    assert_eq!(by_id(&users, "messy-nul")["displayName"], "NullByte");
    assert_eq!(by_id(&users, "messy-bidi")["displayName"], "admingnp.exe");
    assert_eq!(
        by_id(&users, "messy-c0")["displayName"],
        "Bell and [31mred[0m"
    );
    assert_eq!(
        by_id(&users, "messy-unicode")["displayName"],
        "Zoë 山田 محمد 👩🏽‍💻 👨‍👩‍👧‍👦",
        "byte for byte"
    );
    let long = by_id(&users, "messy-long")["department"].as_str().unwrap();
    assert_eq!(long.chars().count(), 512);
    assert_eq!(
        by_id(&users, "messy-aliases")["aliases"]
            .as_array()
            .unwrap()
            .len(),
        100
    );
    let unicode = by_id(&groups, "messy-group-unicode");
    assert_eq!(unicode["displayName"], "Équipe 開発 فريق 🚀");
    assert_eq!(unicode["description"], "line one\nline two");
    assert_eq!(
        by_id(&groups, "messy-group-nul")["displayName"],
        "NullGroup"
    );
    for group in ["messy-group-nul", "messy-group-unicode"] {
        let mut members: Vec<String> = by_id(&groups, group)["members"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["externalId"].as_str().unwrap().to_owned())
            .collect();
        members.sort();
        assert_eq!(
            members.len(),
            7,
            "{group}: every messy user, no external one"
        );
        assert!(members.iter().all(|m| m.starts_with("messy-")));
    }
    // The ordinary directory is exact.
    let ordinary = tenant_users(&server, kind)
        .into_iter()
        .filter(|u| !u.starts_with("messy-"))
        .count();
    assert_eq!(ordinary, 40);
    let served = server.fake.directory().tenants[&key].clone();
    for (ext, user) in served
        .users
        .iter()
        .filter(|(k, _)| !k.starts_with("messy-"))
    {
        let shown = by_id(&users, ext);
        assert_eq!(shown["displayName"], user.display_name);
        assert_eq!(shown["department"], json!(user.department));
    }

    // Every later run succeeds too, and changes nothing.
    let again = sync(&fx, &id).await;
    assert_eq!(again["status"], "SUCCEEDED", "{again}");
    for field in [
        "usersCreated",
        "usersUpdated",
        "usersRemoved",
        "groupsCreated",
    ] {
        assert_eq!(again[field], 0, "{field}: {again}");
    }
    assert_eq!(user_count(&fx, json!({ "integrationId": id })).await, 47);
    let (count, _) = warnings(&fx, &id).await;
    match kind {
        // Every Google sync reads everything, and says again what it cleaned.
        Kind::Google => assert!(count >= 8, "{count}"),
        // An Entra re-sync reads what changed: nothing.
        Kind::Entra => assert_eq!(count, 0),
    }
}

async fn a_messy_entra_directory_syncs_with_a_warning_per_bad_record(fx: Fixture) {
    messy_directory_syncs(fx, Kind::Entra).await;
}

async fn a_messy_google_directory_syncs_with_a_warning_per_bad_record(fx: Fixture) {
    messy_directory_syncs(fx, Kind::Google).await;
}

/// Makes the database itself refuse a user whose department is `Refused` (a trigger), as a
/// constraint would: what the cleaning step cannot foresee.
async fn refuse_department(fx: &Fixture) {
    let statements: &[&str] = match fx.backend {
        Backend::Sqlite => &[
            "CREATE TRIGGER refuse_insert BEFORE INSERT ON directory_users WHEN NEW.department = 'Refused' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
            "CREATE TRIGGER refuse_update BEFORE UPDATE ON directory_users WHEN NEW.department = 'Refused' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        ],
        Backend::Postgres => &[
            "CREATE FUNCTION refuse_department() RETURNS trigger AS $$ BEGIN IF NEW.department = 'Refused' THEN RAISE EXCEPTION 'refused by the test' USING ERRCODE = 'check_violation'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_department BEFORE INSERT OR UPDATE ON directory_users FOR EACH ROW EXECUTE FUNCTION refuse_department()",
        ],
    };
    for sql in statements {
        fx.db.execute_unprepared(sql).await.unwrap();
    }
}

async fn a_record_the_database_refuses_is_skipped_and_an_existing_one_kept(fx: Fixture) {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let (fx, server) = started(fx, 60).await;
    let key = server.tenant(Kind::Entra);
    let id = connect(&fx, "ENTRA_ID", "Contoso", false).await;
    refuse_department(&fx).await;
    let ids = tenant_users(&server, Kind::Entra);
    let stored = async |ext: &str| {
        entity::directory_user::Entity::find()
            .filter(entity::directory_user::Column::ExternalId.eq(ext))
            .one(&fx.db)
            .await
            .unwrap()
    };
    let before = stored(&ids[3]).await.unwrap();
    server.fake.edit(|d| {
        let t = d.tenants.get_mut(&key).unwrap();
        // An existing user turns bad, another changes as usual, a new one is bad from the start.
        t.change_user(&ids[3], |u| {
            u.department = Some("Refused".into());
            u.display_name = "Changed Too".into();
        });
        t.change_user(&ids[4], |u| u.display_name = "Renamed".into());
        let mut new = t.users[&ids[5]].clone();
        new.id = "new-and-refused".into();
        new.user_name = "refused@contoso.example".into();
        new.department = Some("Refused".into());
        t.put_user(new);
        t.add_member(
            t.groups.keys().next().unwrap().clone().as_str(),
            "new-and-refused",
        );
    });
    for forced_full in [false, true] {
        if forced_full {
            // The same through a full read (the delta read came first).
            server
                .fake
                .edit(|d| d.tenants.get_mut(&key).unwrap().delta_epoch += 1);
        }
        let run = sync(&fx, &id).await;
        assert_eq!(run["status"], "SUCCEEDED", "{run}");
        assert_eq!(run["usersRemoved"], 0, "a skipped user is not gone: {run}");
        assert_eq!(run["usersArchived"], 0, "{run}");
        let kept = stored(&ids[3]).await.expect("the existing user is kept");
        assert_eq!(kept, before, "kept as it was");
        assert!(stored("new-and-refused").await.is_none());
        assert_eq!(
            stored(&ids[4]).await.unwrap().display_name,
            "Renamed",
            "the rest of the batch is written"
        );
        let (count, list) = warnings(&fx, &id).await;
        assert!(
            has_skip(&list, &ids[3]) && has_skip(&list, "new-and-refused"),
            "{list:?}"
        );
        assert!(count >= 2);
        assert_eq!(user_count(&fx, json!({ "integrationId": id })).await, 60);
    }
}

fn has_skip(list: &[(String, Value, String)], id: &str) -> bool {
    list.iter()
        .any(|(i, f, a)| i == id && f.is_null() && a == "SKIPPED")
}

async fn arbitrary_unicode_from_the_directory_never_fails_a_sync(fx: Fixture) {
    let (fx, server) = started(fx, 30).await;
    let key = server.tenant(Kind::Google);
    let id = connect(&fx, "GOOGLE_WORKSPACE", "Fabrikam", false).await;
    let ids = tenant_users(&server, Kind::Google);
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let text = proptest::collection::vec(proptest::char::any(), 0..80)
        .prop_map(|chars| chars.into_iter().collect::<String>());
    for _round in 0..4 {
        let mut values = Vec::new();
        for _ in 0..ids.len() * 3 {
            values.push(text.new_tree(&mut runner).unwrap().current());
        }
        let mut values = values.into_iter();
        server.fake.edit(|d| {
            let t = d.tenants.get_mut(&key).unwrap();
            for user in &ids {
                t.change_user(user, |u| {
                    u.display_name = values.next().unwrap();
                    u.department = Some(values.next().unwrap());
                    u.aliases = vec![values.next().unwrap()];
                });
            }
        });
        let run = sync(&fx, &id).await;
        assert_eq!(run["status"], "SUCCEEDED", "{run}");
        let (users, groups) = everything(&fx).await;
        assert_eq!(users.len(), 30);
        for value in users.iter().chain(&groups) {
            assert_clean(value, false);
        }
    }
}
