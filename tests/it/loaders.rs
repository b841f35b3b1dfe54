//! Every relation goes through the DataLoader: the statements a request runs do not grow with
//! the page size.

use crate::{on_both_databases, support::Fixture};
use dirgate::store::columns::Columns;
use serde_json::{Value, json};

const NESTED: &str = r#"query($n: Int!) {
  users(first: $n) {
    totalCount
    edges { cursor node {
      id displayName origin status aliases
      integration { id name userCount groupCount }
      groups { nodes { id displayName memberCount } }
      devices { nodes { serialNumber user { id } assignment { source } } }
    } }
  }
  groups(first: $n) {
    totalCount
    nodes {
      id
      integration { name }
      members(first: 5) { totalCount nodes { id groups { nodes { id } } } }
    }
  }
  devices(first: $n) { nodes { serialNumber user { displayName integration { name } } } }
  integrations(first: 5) { nodes {
    users(first: 3) { totalCount nodes { id } }
    groups(first: 3) { totalCount nodes { id } }
    syncRuns(first: 2) { totalCount nodes { id } }
  } }
}"#;

on_both_databases!(
    nested_query_statement_count_does_not_grow_with_page_size,
    pages_of_the_largest_page_of_parents_are_each_right,
    a_page_of_a_big_group_reads_a_page_of_it,
    a_page_of_devices_with_their_users_and_groups_takes_two_statements,
    members_asked_for_with_their_devices_read_them_in_one_statement,
    the_groups_of_a_few_users_read_only_their_groups,
    devices_and_users_decoded_by_position_equal_sea_orms_own_decoding,
    groups_and_members_decoded_by_position_equal_sea_orms_own_decoding,
    page_statements_are_not_planned_again_for_each_execution,
);

/// The same on the multi-thread runtime that `dirgate serve` runs, with requests side by side.
mod on_the_server_runtime {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        concurrent_requests_each_run_the_statements_of_one(Fixture::sqlite().await).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let fx = Fixture::postgres().await;
        let guard = fx.guard();
        concurrent_requests_each_run_the_statements_of_one(fx).await;
        guard.drop_schema().await;
    }
}

async fn concurrent_requests_each_run_the_statements_of_one(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    fx.bulk(&contoso, 250, 220).await;
    let auth = fx.viewer().await;
    // Background work starting with the app (the event bus names its channel) runs now, not
    // inside a measured request.
    fx.ok(&auth, NESTED, json!({ "n": 1 })).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut alone = Vec::new();
    for n in [10, 200] {
        fx.reset_statements();
        fx.ok(&auth, NESTED, json!({ "n": n })).await;
        alone.push(fx.statements());
    }
    assert!(
        alone[0].abs_diff(alone[1]) <= 1,
        "page size 10 vs 200: {alone:?}"
    );
    let one = alone[0].min(alone[1]);
    fx.reset_statements();
    let requests = (0..4).map(|_| fx.ok(&auth, NESTED, json!({ "n": 200 })));
    let answers = futures_util::future::join_all(requests).await;
    assert!(
        answers
            .iter()
            .all(|a| a["users"]["edges"].as_array().unwrap().len() == 200)
    );
    let together = fx.statements();
    assert!(
        together <= 4 * (one + 1),
        "four requests side by side run at most four times the statements of one: {together} vs {one}"
    );
}

async fn nested_query_statement_count_does_not_grow_with_page_size(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    fx.bulk(&contoso, 250, 220).await;
    let auth = fx.viewer().await;
    let mut counts = Vec::new();
    for n in [10, 200] {
        fx.reset_statements();
        let data = fx.ok(&auth, NESTED, json!({ "n": n })).await;
        let statements = fx.statements();
        assert_eq!(data["users"]["edges"].as_array().unwrap().len(), n);
        assert_eq!(data["groups"]["nodes"].as_array().unwrap().len(), n);
        assert_eq!(data["devices"]["nodes"].as_array().unwrap().len(), n);
        // Group 0 holds users 0, 219 and 220 (see `Fixture::bulk`).
        let first_group = &data["groups"]["nodes"][0]["members"];
        assert_eq!(first_group["totalCount"], 3);
        assert_eq!(first_group["nodes"].as_array().unwrap().len(), 3);
        assert!(
            data["users"]["edges"][0]["node"]["groups"]["nodes"]
                .as_array()
                .unwrap()
                .len()
                == 2
        );
        println!(
            "{:?}: page size {n}: {statements} SQL statements",
            fx.backend
        );
        counts.push(statements);
    }
    // A wave's timing may add or save one statement (a relation's keys landing in one wave
    // or the next); what must not happen is growth with the page size.
    assert!(
        counts[0].abs_diff(counts[1]) <= 1,
        "statements at page size 10 vs 200: {counts:?}"
    );
    assert!(
        counts[0] < 40,
        "a nested query should need a few dozen statements at most: {counts:?}"
    );
}

/// 500 groups (the largest page) with a page of members each: more parents than one statement
/// takes (`PARENTS_PER_STATEMENT`), and a cursor inside each; every group gets exactly its own
/// members, in order.
async fn pages_of_the_largest_page_of_parents_are_each_right(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    fx.bulk(&contoso, 1_200, 500).await;
    let auth = fx.viewer().await;
    let data = fx
        .ok(
            &auth,
            "{ groups(first: 500) { nodes { id members(first: 2) { totalCount pageInfo { hasNextPage endCursor } nodes { id } } } } }",
            json!({}),
        )
        .await;
    let groups = data["groups"]["nodes"].as_array().unwrap();
    assert_eq!(groups.len(), 500);
    for group in groups {
        let members = &group["members"];
        let total = members["totalCount"].as_u64().unwrap();
        let nodes = members["nodes"].as_array().unwrap();
        assert_eq!(nodes.len() as u64, total.min(2), "{group}");
        assert_eq!(members["pageInfo"]["hasNextPage"], total > 2, "{group}");
    }
    // The rest of the last group, from its cursor: its own members only, none twice.
    let last = &groups[499];
    let members = &last["members"];
    let rest = fx
        .ok(
            &auth,
            "query($id: ID!, $after: String) { node(id: $id) { ... on Group { members(first: 100, after: $after) { nodes { id } } } } }",
            json!({ "id": last["id"], "after": members["pageInfo"]["endCursor"] }),
        )
        .await;
    let mut seen: Vec<&Value> = members["nodes"].as_array().unwrap().iter().collect();
    seen.extend(rest["node"]["members"]["nodes"].as_array().unwrap());
    assert_eq!(seen.len() as u64, members["totalCount"].as_u64().unwrap());
    let distinct: std::collections::HashSet<String> =
        seen.iter().map(|v| v["id"].to_string()).collect();
    assert_eq!(distinct.len(), seen.len());
}

/// A page of members of a 3,000-member group reads `first + 1` memberships, not 3,000: the
/// database's own account of the statement `store::page` runs (PostgreSQL's
/// `EXPLAIN ANALYZE`: rows actually read; SQLite's plan: an index search, no sort).
async fn a_page_of_a_big_group_reads_a_page_of_it(fx: Fixture) {
    use dirgate::store::page;
    use entity::{directory_user, group_membership};
    use sea_orm::{
        ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter,
        QuerySelect, RelationTrait, Statement,
        sea_query::{Expr, ExprTrait},
    };
    let contoso = fx.integration("Contoso").create().await;
    fx.bulk(&contoso, 3_000, 1).await;
    let group: i64 = entity::directory_group::Entity::find()
        .select_only()
        .column(entity::directory_group::Column::Id)
        .into_tuple()
        .one(&fx.db)
        .await
        .unwrap()
        .unwrap();
    let size = group_membership::Entity::find()
        .filter(group_membership::Column::GroupId.eq(group))
        .count(&fx.db)
        .await
        .unwrap();
    assert_eq!(size, 3_000, "every user is in the one group");
    let members = |parent: Expr| {
        directory_user::Entity::find()
            .join(
                sea_orm::JoinType::InnerJoin,
                group_membership::Relation::User.def().rev(),
            )
            .filter(
                Expr::col((group_membership::Entity, group_membership::Column::GroupId)).eq(parent),
            )
    };
    let backend = fx.db.get_database_backend();
    let statements = page::per_parent_statements(backend, &[group], members, members_page(2));
    assert_eq!(statements.len(), 1);
    let statement = &statements[0];
    let rows = fx.db.query_all_raw(statement.clone()).await.unwrap();
    assert_eq!(rows.len(), 3, "first + 1 rows");
    let explain = |prefix: &str| {
        Statement::from_sql_and_values(
            backend,
            format!("{prefix} {}", statement.sql),
            statement.values.clone().unwrap(),
        )
    };
    if backend == DbBackend::Postgres {
        let plan = fx
            .db
            .query_one_raw(explain("EXPLAIN (ANALYZE, FORMAT JSON)"))
            .await
            .unwrap()
            .unwrap();
        let plan: Value = plan.try_get("", "QUERY PLAN").unwrap();
        // Every scan of the memberships returned at most a page's rows.
        let found = scans(&plan, "group_memberships");
        assert!(!found.is_empty(), "{plan}");
        for (rows, loops) in found {
            assert!(
                rows * loops <= 3.0,
                "read {rows} x {loops} memberships: {plan}"
            );
        }
    } else {
        let plan = fx.sqlite_plan(statement.clone()).await;
        assert!(
            plan.iter()
                .any(|d| d.contains("group_memberships") && d.contains("INDEX")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|d| d.contains("TEMP B-TREE")), "{plan:?}");
    }
}

/// The scans of `relation` in PostgreSQL's `EXPLAIN (ANALYZE, FORMAT JSON)` output: (rows
/// returned per loop, loops).
fn scans(plan: &Value, relation: &str) -> Vec<(f64, f64)> {
    fn walk(node: &Value, relation: &str, out: &mut Vec<(f64, f64)>) {
        if node["Relation Name"] == relation {
            out.push((
                node["Actual Rows"].as_f64().unwrap(),
                node["Actual Loops"].as_f64().unwrap(),
            ));
        }
        for child in node["Plans"].as_array().into_iter().flatten() {
            walk(child, relation, out);
        }
    }
    let mut out = Vec::new();
    walk(&plan[0]["Plan"], relation, &mut out);
    out
}

/// A user's groups are found by primary key, one per membership, whatever the planner's costs:
/// the statement never reads the whole groups table (PostgreSQL's default costs hashed all of
/// it for a plain join on the benchmark's data), so its time does not grow with the number of
/// groups. On PostgreSQL the plan is taken with nested loops priced out, as a planner that
/// prefers hashing would see them.
async fn the_groups_of_a_few_users_read_only_their_groups(fx: Fixture) {
    use dirgate::store::{
        page::{Direction, PageArgs},
        related::user_groups_statements,
    };
    use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, Statement, TransactionTrait};
    let contoso = fx.integration("Contoso").create().await;
    fx.bulk(&contoso, 300, 2_000).await;
    let backend = fx.db.get_database_backend();
    let users: Vec<i64> = entity::directory_user::Entity::find()
        .all(&fx.db)
        .await
        .unwrap()
        .into_iter()
        .take(10)
        .map(|u| u.id)
        .collect();
    let args = PageArgs {
        first: 50,
        after: None,
    };
    let statements = user_groups_statements(backend, &users, args, Direction::Asc, Columns::ALL);
    assert_eq!(statements.len(), 1, "one statement for the ten users");
    let statement = statements[0].clone();
    let rows = fx.db.query_all_raw(statement.clone()).await.unwrap();
    assert_eq!(rows.len(), 20, "two groups each (`Fixture::bulk`)");
    if backend == DbBackend::Postgres {
        let txn = fx.db.begin().await.unwrap();
        txn.execute_unprepared("SET LOCAL enable_nestloop = off")
            .await
            .unwrap();
        let explain = Statement::from_sql_and_values(
            backend,
            format!("EXPLAIN (ANALYZE, FORMAT JSON) {}", statement.sql),
            statement.values.clone().unwrap(),
        );
        let plan = txn.query_one_raw(explain).await.unwrap().unwrap();
        txn.rollback().await.unwrap();
        let plan: Value = plan.try_get("", "QUERY PLAN").unwrap();
        let read: f64 = scans(&plan, "directory_groups")
            .iter()
            .map(|(rows, loops)| rows * loops)
            .sum();
        assert!(
            read > 0.0 && read <= 20.0,
            "read {read} of 2,000 groups for 20 memberships: {plan}"
        );
    } else {
        let plan = fx.sqlite_plan(statement).await;
        assert!(
            plan.iter()
                .any(|d| d.contains("SEARCH g USING INTEGER PRIMARY KEY")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|d| d.starts_with("SCAN g")), "{plan:?}");
    }
}

/// The read benchmark's nested shape (`read_bench`): the devices' users come in the page's
/// own statement (a left join, seen ahead in the query), and their groups in one more, at any
/// page size; a device without a user has none.
/// A page of members whose devices are asked for reads them beside the page, in one statement
/// for all the groups' members, and each member shows the devices it shows on its own.
async fn members_asked_for_with_their_devices_read_them_in_one_statement(mut fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    fx.bulk(&contoso, 60, 6).await;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    // A member with two devices and one with none, in a seventh group.
    let first = entity::directory_user::Entity::find()
        .filter(entity::directory_user::Column::UserName.eq("user00000@bulk.example"))
        .one(&fx.db)
        .await
        .unwrap()
        .unwrap();
    fx.device("second", Some(&first)).await;
    let lone = fx.user(&contoso, "lone@contoso.test").create().await;
    fx.group(&contoso, "Mixed", &[&first, &lone]).await;
    let auth = fx.viewer().await;
    fx.stop_background().await;
    // Each user's devices and groups as the lists of devices and of groups show them,
    // neither read beside a page of users.
    let lists = fx
        .ok(
            &auth,
            r#"{ devices(first: 100) { nodes { id serialNumber user { id } } }
                 groups(first: 10) { nodes { id members(first: 50) { nodes { id } } } } }"#,
            json!({}),
        )
        .await;
    let mut devices_of: std::collections::HashMap<String, Value> = std::collections::HashMap::new();
    let mut groups_of: std::collections::HashMap<String, Value> = std::collections::HashMap::new();
    for group in lists["groups"]["nodes"].as_array().unwrap() {
        for member in group["members"]["nodes"].as_array().unwrap() {
            let id = member["id"].as_str().unwrap().to_owned();
            devices_of.entry(id.clone()).or_insert(json!([]));
            let groups = groups_of.entry(id).or_insert(json!([]));
            groups
                .as_array_mut()
                .unwrap()
                .push(json!({ "id": group["id"] }));
        }
    }
    for device in lists["devices"]["nodes"].as_array().unwrap() {
        let user = device["user"]["id"].as_str().unwrap().to_owned();
        let devices = devices_of.get_mut(&user).unwrap();
        let device = json!({ "id": device["id"], "serialNumber": device["serialNumber"] });
        devices.as_array_mut().unwrap().push(device);
    }
    let devices_of: std::collections::HashMap<&str, &Value> =
        devices_of.iter().map(|(k, v)| (k.as_str(), v)).collect();
    // The root list of users reads them through the loader, one statement each (reading
    // them beside the page there, inside its root query, made the nested query's waves split
    // now and then: `nested_query_statement_count_does_not_grow_with_page_size`).
    fx.reset_statements();
    let root = fx
        .ok(
            &auth,
            "{ users(first: 100) { nodes { id devices { nodes { id serialNumber } } groups { nodes { id } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(fx.statements(), 3);
    let root = root["users"]["nodes"].as_array().unwrap();
    assert_eq!(root.len(), 61, "60 bulk users and the lone one");
    for user in root {
        let id = user["id"].as_str().unwrap();
        assert_eq!(&user["devices"]["nodes"], devices_of[id], "{id}");
        assert_eq!(user["groups"]["nodes"], groups_of[id], "{id}");
    }
    // A page of devices asked for its users' devices reads them beside the page: one more
    // statement.
    fx.reset_statements();
    let by_device = fx
        .ok(
            &auth,
            "{ devices(first: 100) { nodes { user { id devices { nodes { id serialNumber } } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(fx.statements(), 2);
    for device in by_device["devices"]["nodes"].as_array().unwrap() {
        let id = device["user"]["id"].as_str().unwrap();
        assert_eq!(&device["user"]["devices"]["nodes"], devices_of[id], "{id}");
    }
    fx.reset_statements();
    let paged = fx
        .ok(
            &auth,
            r#"{ groups(first: 10) { nodes {
                 members(first: 50) { nodes { id devices { nodes { id serialNumber } } } }
                 integration { users(first: 50) { edges { node { id devices { nodes { id } } } } } }
               } } }"#,
            json!({}),
        )
        .await;
    // The groups; their members, and the members' devices; the integration; its users, and
    // their devices.
    assert_eq!(fx.statements(), 6);
    let (mut members, mut two, mut none) = (0, 0, 0);
    for group in paged["groups"]["nodes"].as_array().unwrap() {
        for member in group["members"]["nodes"].as_array().unwrap() {
            let id = member["id"].as_str().unwrap();
            assert_eq!(&member["devices"]["nodes"], devices_of[id], "{id}");
            members += 1;
            let n = member["devices"]["nodes"].as_array().unwrap().len();
            two += usize::from(n == 2);
            none += usize::from(n == 0);
        }
        for edge in group["integration"]["users"]["edges"].as_array().unwrap() {
            let node = &edge["node"];
            let id = node["id"].as_str().unwrap();
            let ids: Vec<&Value> = devices_of[id]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| &d["id"])
                .collect();
            let paged: Vec<&Value> = node["devices"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| &d["id"])
                .collect();
            assert_eq!(paged, ids, "{id}");
        }
    }
    assert_eq!(
        members, 122,
        "every bulk user in two of six groups, and Mixed's two"
    );
    assert_eq!(
        (two, none),
        (3, 1),
        "the user with two devices in its three groups"
    );
}

async fn a_page_of_devices_with_their_users_and_groups_takes_two_statements(mut fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    fx.bulk(&contoso, 250, 220).await;
    let auth = fx.viewer().await;
    let admin = fx.admin().await;
    fx.ok(
        &admin,
        r#"mutation { registerDevice(input: {serialNumber: "A0NOUSER", name: "Spare", platform: MACOS}) { device { id } userErrors { field message code } } }"#,
        json!({}),
    )
    .await;
    fx.stop_background().await;
    const SHAPE: &str = r#"query($n: Int!) {
      devices(first: $n) { nodes { serialNumber user { id email groups { nodes { displayName } } } } }
    }"#;
    // Each user's groups as the groups' members show them (not read beside a page).
    let listed = fx
        .ok(
            &auth,
            "{ groups(first: 300) { nodes { displayName members(first: 300) { nodes { id } } } } }",
            json!({}),
        )
        .await;
    let mut groups_of: std::collections::HashMap<String, Value> = std::collections::HashMap::new();
    for group in listed["groups"]["nodes"].as_array().unwrap() {
        for member in group["members"]["nodes"].as_array().unwrap() {
            let groups = groups_of
                .entry(member["id"].as_str().unwrap().to_owned())
                .or_insert(json!([]));
            let group = json!({ "displayName": group["displayName"] });
            groups.as_array_mut().unwrap().push(group);
        }
    }
    for n in [10, 251] {
        fx.reset_statements();
        let data = fx.ok(&auth, SHAPE, json!({ "n": n })).await;
        assert_eq!(fx.statements(), 2, "page size {n}");
        let nodes = data["devices"]["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), n);
        for node in nodes {
            let serial = node["serialNumber"].as_str().unwrap();
            if serial == "A0NOUSER" {
                assert!(node["user"].is_null());
                continue;
            }
            // `Fixture::bulk`: device BULK<user id> of each user, in two groups.
            let user: i64 = serial.trim_start_matches("BULK").parse().unwrap();
            let id = dirgate::graphql::ids::encode(dirgate::graphql::ids::kinds::USER, user);
            assert_eq!(node["user"]["id"], json!(id.to_string()), "{node}");
            assert!(node["user"]["email"].is_string());
            assert_eq!(
                node["user"]["groups"]["nodes"].as_array().unwrap().len(),
                2,
                "{node}"
            );
            assert_eq!(
                node["user"]["groups"]["nodes"],
                groups_of[id.as_str()],
                "{node}"
            );
        }
    }
}

/// `store::rows` reads a device and its user by column position (the hot read path);
/// sea-orm's derived decoding reads them by name. Both must give the same models, with every
/// column set and with every nullable one NULL, and no user for a device without one.
async fn devices_and_users_decoded_by_position_equal_sea_orms_own_decoding(fx: Fixture) {
    use chrono::Utc;
    use dirgate::store::rows;
    use entity::{
        device, directory_user,
        enums::{AssignmentSource, DevicePlatform},
    };
    use sea_orm::{
        ActiveModelTrait, ConnectionTrait, EntityTrait, JoinType, QuerySelect, QueryTrait, Set,
    };
    let contoso = fx.integration("Contoso").create().await;
    let now = Utc::now();
    let full = full_user(&fx, &contoso).await;
    let sparse = fx.user(&contoso, "sparse").create().await;
    let full_device = device::ActiveModel {
        serial_number: Set("FULL1".into()),
        name: Set("Full".into()),
        platform: Set(DevicePlatform::Windows),
        model: Set(Some("Surface".into())),
        os_version: Set(Some("11".into())),
        enrollment_identity: Set(Some("Full@Contoso.example".into())),
        enrollment_identity_key: Set(Some("full@contoso.example".into())),
        user_id: Set(Some(full.id)),
        assignment_source: Set(Some(AssignmentSource::Automatic)),
        assigned_at: Set(Some(now)),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&fx.db)
    .await
    .unwrap();
    fx.device("sparse1", Some(&sparse)).await;
    fx.device("nouser1", None).await;

    let select = device::Entity::find()
        .join(
            JoinType::LeftJoin,
            device::Entity::belongs_to(directory_user::Entity)
                .from(device::Column::UserId)
                .to(directory_user::Column::Id)
                .into(),
        )
        .select_also(directory_user::Entity);
    let by_name = select.clone().all(&fx.db).await.unwrap();
    let rows = fx
        .db
        .query_all_raw(select.build(fx.db.get_database_backend()))
        .await
        .unwrap();
    let user_at = rows::columns_of::<device::Entity>();
    let by_position: Vec<(device::Model, Option<directory_user::Model>)> = rows
        .iter()
        .map(|row| {
            (
                rows::device_at(row, 0).unwrap(),
                rows::user_at(row, user_at).unwrap(),
            )
        })
        .collect();
    assert_eq!(by_position.len(), 3);
    assert_eq!(by_position, by_name);
    assert!(by_position.contains(&(full_device, Some(full))));
    assert!(
        by_position
            .iter()
            .any(|(d, u)| d.serial_number == "NOUSER1" && u.is_none())
    );
}

/// A user with every column set, quotes and all.
async fn full_user(
    fx: &Fixture,
    integration: &entity::integration::Model,
) -> entity::directory_user::Model {
    use entity::{directory_user, enums::UserStatus};
    use sea_orm::{ActiveModelTrait, Set};
    let now = chrono::Utc::now();
    directory_user::ActiveModel {
        integration_id: Set(Some(integration.id)),
        origin_name: Set(integration.name.clone()),
        external_id: Set("ext-full".into()),
        user_name: Set("Full@Contoso.example".into()),
        user_name_key: Set("full@contoso.example".into()),
        email: Set(Some("Full@Contoso.example".into())),
        email_key: Set(Some("full@contoso.example".into())),
        display_name: Set("Full \"Quoted\" Name".into()),
        given_name: Set(Some("Full".into())),
        family_name: Set(Some("Name".into())),
        job_title: Set(Some("Engineer".into())),
        department: Set(Some("R&D".into())),
        employee_id: Set(Some("E-1".into())),
        employee_type: Set(Some("Contractor".into())),
        manager_external_id: Set(Some("ext-boss".into())),
        status: Set(UserStatus::Archived),
        created_at: Set(now),
        updated_at: Set(now),
        archived_at: Set(Some(now)),
        last_seen_run_id: Set(Some(7)),
        scim_resource: Set(Some(r#"{"schemas":[]}"#.into())),
        scim_external_id: Set(Some("scim-1".into())),
        ..Default::default()
    }
    .insert(&fx.db)
    .await
    .unwrap()
}

/// The groups of users (`user_groups_statements`: the group's columns, then the member and
/// the group id) and the
/// members of groups (`page::fetch_per_parent`: the user's columns, then the parent and the
/// key) are decoded by position on the hot read path; both must give the models sea-orm's
/// derived decoding gives by name, with every column set and with every nullable one NULL.
async fn groups_and_members_decoded_by_position_equal_sea_orms_own_decoding(fx: Fixture) {
    use dirgate::{
        store::related::user_groups_statements,
        store::{
            page::{self, Direction, PageArgs},
            rows::FromColumns,
        },
    };
    use entity::{directory_group, directory_user, group_membership};
    use sea_orm::{
        ActiveModelTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QuerySelect,
        RelationTrait, Set, sea_query::ExprTrait,
    };
    let contoso = fx.integration("Contoso").create().await;
    let full = full_user(&fx, &contoso).await;
    let sparse = fx.user(&contoso, "sparse").create().await;
    let bare = fx.group(&contoso, "Bare", &[&full]).await;
    let mut rich: directory_group::ActiveModel = fx
        .group(&contoso, "Rich \"Group\"", &[&full, &sparse])
        .await
        .into();
    rich.email = Set(Some("rich@contoso.example".into()));
    rich.description = Set(Some("Every column set".into()));
    rich.last_seen_run_id = Set(Some(9));
    rich.scim_resource = Set(Some(r#"{"schemas":[]}"#.into()));
    rich.scim_external_id = Set(Some("scim-g".into()));
    let rich = rich.update(&fx.db).await.unwrap();

    let backend = fx.db.get_database_backend();
    let rows = fx
        .db
        .query_all_raw(
            user_groups_statements(
                backend,
                &[full.id, sparse.id],
                PageArgs {
                    first: 10,
                    after: None,
                },
                Direction::Asc,
                Columns::ALL,
            )
            .remove(0),
        )
        .await
        .unwrap();
    let member_at = dirgate::store::rows::columns_of::<directory_group::Entity>();
    let by_position: Vec<(i64, directory_group::Model)> = rows
        .iter()
        .map(|row| {
            let member: i64 = row.try_get_by_index(member_at).unwrap();
            (
                member,
                directory_group::Model::from_columns(row, 0).unwrap(),
            )
        })
        .collect();
    let by_name: Vec<(i64, directory_group::Model)> = rows
        .iter()
        .map(|row| {
            let member: i64 = row.try_get("", "dg_parent").unwrap();
            (
                member,
                directory_group::Model::from_query_result(row, "").unwrap(),
            )
        })
        .collect();
    assert_eq!(by_position.len(), 3);
    assert_eq!(by_position, by_name);
    assert!(by_position.contains(&(full.id, rich.clone())));
    assert!(by_position.contains(&(full.id, bare.clone())));

    let members = |parent: sea_orm::sea_query::Expr| {
        directory_user::Entity::find()
            .join(
                sea_orm::JoinType::InnerJoin,
                group_membership::Relation::User.def().rev(),
            )
            .filter(
                sea_orm::sea_query::Expr::col((
                    group_membership::Entity,
                    group_membership::Column::GroupId,
                ))
                .eq(parent),
            )
    };
    let pages = page::fetch_per_parent(&fx.db, &[bare.id, rich.id], members, members_page(10))
        .await
        .unwrap();
    let stored = |id: i64| {
        let db = fx.db.clone();
        async move {
            directory_user::Entity::find_by_id(id)
                .one(&db)
                .await
                .unwrap()
                .unwrap()
        }
    };
    assert_eq!(pages[&bare.id].items, vec![stored(full.id).await]);
    assert_eq!(
        pages[&rich.id].items,
        vec![stored(full.id).await, stored(sparse.id).await]
    );
    assert_eq!(pages[&rich.id].items[0], full);
}

/// The first `first` members of each group, by user id (the loader's order).
fn members_page(first: u64) -> dirgate::store::page::PerParent {
    use dirgate::store::page::{Direction, PageArgs, PerParent};
    PerParent {
        parent_sql: r#""group_memberships"."group_id""#,
        order_sql: r#""group_memberships"."user_id""#,
        args: PageArgs { first, after: None },
        dir: Direction::Asc,
    }
}

/// PostgreSQL plans a prepared statement again for each execution until a plan made without
/// its parameters' values costs no more than those made with them, which a `LIMIT $n` never
/// does (`store::prepared`). The hot pages carry their size in the text: on one connection,
/// a first page of devices with their users and a page of users are planned for their
/// parameters at most the five times PostgreSQL tries, then run on the plan it keeps.
///
/// The members of a batch of groups carry their page size in the text too. Without the array
/// PostgreSQL prices `unnest` at 10 parents, so this batch of 4 is planned each time (its own
/// plan is the cheaper); a page of 20 groups runs on the kept plan. SQLite prepares a
/// statement once and plans it then; there the same reads must give the same pages.
async fn page_statements_are_not_planned_again_for_each_execution(fx: Fixture) {
    use dirgate::store::related::{MEMBERS_SQL, members_of};
    use dirgate::{
        directory::{
            devices::{self, DeviceFilter},
            users::{self, UserFilter},
        },
        store::{
            order::Order,
            page::{self, Direction, PageArgs, PerParent},
        },
    };
    use entity::directory_group;
    use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, Statement, TransactionTrait};
    let contoso = fx.integration("Contoso").create().await;
    // Enough rows that a plan for a tenth of the table costs more than one for a page.
    fx.bulk(&contoso, 1_000, 4).await;
    let backend = fx.db.get_database_backend();
    let groups: Vec<i64> = directory_group::Entity::find()
        .all(&fx.db)
        .await
        .unwrap()
        .iter()
        .map(|g| g.id)
        .collect();
    let per_parent = PerParent {
        parent_sql: MEMBERS_SQL.0,
        order_sql: MEMBERS_SQL.1,
        args: PageArgs {
            first: 5,
            after: None,
        },
        dir: Direction::Asc,
    };
    let args = PageArgs {
        first: 20,
        after: None,
    };
    if backend == DbBackend::Postgres {
        // The statistics autovacuum would gather on a live database.
        fx.db
            .execute_unprepared("ANALYZE devices, directory_users, group_memberships")
            .await
            .unwrap();
    }
    // One transaction: one connection, whose prepared statements PostgreSQL lists.
    let txn = fx.db.begin().await.unwrap();
    for _ in 0..8 {
        let (page, with_users) = devices::list_with_users(
            &txn,
            &DeviceFilter::default(),
            args,
            Order::default(),
            None,
            (Columns::ALL, Columns::ALL),
        )
        .await
        .unwrap();
        // The users of the 21 rows read: the page and the one that tells a next page follows.
        assert_eq!((page.items.len(), with_users.len()), (20, 21));
        assert!(page.has_next);
        let page = users::list(
            &txn,
            &UserFilter::default(),
            args,
            Order::default(),
            None,
            Columns::ALL,
        )
        .await
        .unwrap();
        assert_eq!(page.items.len(), 20);
        let mut members = 0;
        for statement in page::per_parent_statements(backend, &groups, members_of, per_parent) {
            members += txn.query_all_raw(statement).await.unwrap().len();
        }
        // Six of each group's members (`Fixture::bulk`) and one over the page of 5.
        assert_eq!(members, groups.len() * 6, "{groups:?}");
    }
    if backend == DbBackend::Postgres {
        let plans = txn
            .query_all_raw(Statement::from_string(
                backend,
                // This statement is prepared too, and names what it looks for.
                "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements \
                 WHERE statement LIKE '%LIMIT%' AND statement NOT LIKE '%pg_prepared%'",
            ))
            .await
            .unwrap();
        let mut planned = Vec::new();
        for plan in plans {
            let statement: String = plan.try_get("", "statement").unwrap();
            if statement.starts_with(r#"SELECT "dg_page".*"#) {
                assert!(
                    statement.ends_with(r#"LIMIT 6) AS "dg_page""#),
                    "{statement}"
                );
                continue;
            }
            planned.push(statement.clone());
            let generic: i64 = plan.try_get("", "generic_plans").unwrap();
            let custom: i64 = plan.try_get("", "custom_plans").unwrap();
            assert!(
                custom <= 5 && generic >= 3,
                "planned for its values {custom} times and run on the kept plan {generic} \
                 times: {statement}"
            );
        }
        assert_eq!(
            planned.len(),
            2,
            "devices with users, and users: {planned:#?}"
        );
    }
    txn.rollback().await.unwrap();
}
