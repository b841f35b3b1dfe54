//! Nested groups: read from Entra (Graph delta, members inline, `#microsoft.graph.group`),
//! Google (`members.list`, `type: GROUP`) and SCIM pushes (`members[].type == "Group"`), kept
//! in sync with events, and read transitively (a diamond counts a user once; a cycle ends).
//! On SQLite and PostgreSQL, through the real clients against the fake directory.

use crate::{
    on_both_databases,
    scim::ScimClient,
    support::{Fixture, fake::FakeServer},
    sync::{connect, sync},
};
use fake_directory::Kind;
use serde_json::{Value, json};

on_both_databases!(
    entra_nested_groups_are_read_and_followed,
    google_nested_groups_are_read_and_followed,
    a_delta_read_follows_nesting_changes,
    scim_pushes_nested_groups,
    transitive_pages_take_the_same_statements_at_any_size,
    transitive_arguments_are_checked,
);

/// Shapes `kind`'s tenant: Top ⊃ {Left, Right} ⊃ Bottom (a diamond), Cyc1 ⇄ Cyc2 (a cycle);
/// users u0 in Top, u1 in Left, u2 in Right, u3 in Bottom, u4 in Cyc1, u5 in Cyc2. Returns the
/// external ids: groups by name, then users.
pub(crate) fn shape(
    server: &FakeServer,
    kind: Kind,
) -> (std::collections::HashMap<&'static str, String>, Vec<String>) {
    let key = server.tenant(kind);
    let mut names = std::collections::HashMap::new();
    let mut users = Vec::new();
    server.fake.edit(|d| {
        let t = d.tenants.get_mut(&key).unwrap();
        let groups: Vec<String> = t.groups.keys().cloned().collect();
        users = t.users.keys().take(6).cloned().collect();
        for name in ["Top", "Left", "Right", "Bottom", "Cyc1", "Cyc2"] {
            let id = groups[names.len()].clone();
            t.groups.get_mut(&id).unwrap().display_name = name.into();
            names.insert(name, id);
        }
        for members in t.members.values_mut() {
            members.clear();
        }
        let edges = [
            ("Top", "Left"),
            ("Top", "Right"),
            ("Left", "Bottom"),
            ("Right", "Bottom"),
            ("Cyc1", "Cyc2"),
            ("Cyc2", "Cyc1"),
        ];
        for (parent, child) in edges {
            assert!(t.add_member(&names[parent], &names[child]));
        }
        for (i, group) in ["Top", "Left", "Right", "Bottom", "Cyc1", "Cyc2"]
            .iter()
            .enumerate()
        {
            assert!(t.add_member(&names[group], &users[i]));
        }
    });
    (names, users)
}

const GROUPS: &str = r#"{ groups(first: 100) { nodes { id externalId displayName
    memberCount direct: memberCount(transitive: false) all: memberCount(transitive: true)
    members(transitive: true) { totalCount nodes { externalId } }
    childGroups { totalCount nodes { displayName } }
    parentGroups { nodes { displayName } } } } }"#;

fn by_name<'a>(data: &'a Value, name: &str) -> &'a Value {
    data["groups"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["displayName"] == name)
        .unwrap_or_else(|| panic!("no group {name} in {data}"))
}

fn externals(list: &Value) -> Vec<String> {
    let mut ids: Vec<String> = list["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            n["externalId"]
                .as_str()
                .or(n["displayName"].as_str())
                .unwrap()
                .to_owned()
        })
        .collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

/// A fake directory of 12 users and 6 groups per tenant, in use by `fx`.
pub(crate) async fn started(mut fx: Fixture) -> (Fixture, FakeServer) {
    let server = FakeServer::start(12, 6).await;
    fx.use_providers(server.settings());
    (fx, server)
}

/// What every provider must show once the shaped tenant is synced.
async fn the_shape_is_read(fx: &Fixture, users: &[String]) {
    let viewer = fx.viewer().await;
    let data = fx.ok(&viewer, GROUPS, json!({})).await;
    let top = by_name(&data, "Top");
    assert_eq!(top["direct"], 1, "{top}");
    assert_eq!(top["memberCount"], 1);
    assert_eq!(top["all"], 4, "the diamond's user counts once: {top}");
    assert_eq!(top["members"]["totalCount"], 4);
    assert_eq!(externals(&top["members"]), sorted(users[..4].to_vec()));
    assert_eq!(externals(&top["childGroups"]), ["Left", "Right"]);
    let bottom = by_name(&data, "Bottom");
    assert_eq!(externals(&bottom["parentGroups"]), ["Left", "Right"]);
    assert_eq!(bottom["childGroups"]["totalCount"], 0);
    for cyc in ["Cyc1", "Cyc2"] {
        let group = by_name(&data, cyc);
        assert_eq!(
            externals(&group["members"]),
            sorted(users[4..6].to_vec()),
            "a cycle ends: {group}"
        );
    }
    // A user's groups, directly and through nesting; the filtered list likewise.
    let query = r#"query($f: UserFilter) { users(first: 100, filter: $f) { totalCount nodes { externalId
        groups { nodes { displayName } } all: groups(transitive: true) { totalCount nodes { displayName } } } } }"#;
    let listed = fx.ok(&viewer, query, json!({})).await;
    let u3 = listed["users"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["externalId"] == users[3].as_str())
        .unwrap()
        .clone();
    assert_eq!(externals(&u3["groups"]), ["Bottom"]);
    assert_eq!(externals(&u3["all"]), ["Bottom", "Left", "Right", "Top"]);
    assert_eq!(u3["all"]["totalCount"], 4);
    let top_id = top["id"].clone();
    let direct = fx
        .ok(&viewer, query, json!({ "f": { "groupId": top_id } }))
        .await;
    assert_eq!(direct["users"]["totalCount"], 1);
    let all = fx
        .ok(
            &viewer,
            query,
            json!({ "f": { "groupId": top_id, "transitive": true } }),
        )
        .await;
    assert_eq!(all["users"]["totalCount"], 4);
    assert_eq!(externals(&all["users"]), sorted(users[..4].to_vec()));
}

async fn entra_nested_groups_are_read_and_followed(fx: Fixture) {
    let (fx, server) = started(fx).await;
    let (_, users) = shape(&server, Kind::Entra);
    connect(&fx, "ENTRA_ID", "Contoso", false).await;
    the_shape_is_read(&fx, &users).await;
}

async fn google_nested_groups_are_read_and_followed(fx: Fixture) {
    let (fx, server) = started(fx).await;
    let (_, users) = shape(&server, Kind::Google);
    connect(&fx, "GOOGLE_WORKSPACE", "Fabrikam", false).await;
    the_shape_is_read(&fx, &users).await;
}

/// An Entra re-sync reads changes only (delta): a user added to a nested group is a
/// transitive member of its ancestors; a group taken out of its parent leaves with its users;
/// each change is an event.
async fn a_delta_read_follows_nesting_changes(fx: Fixture) {
    let (fx, server) = started(fx).await;
    let (names, users) = shape(&server, Kind::Entra);
    let id = connect(&fx, "ENTRA_ID", "Contoso", false).await;
    let key = server.tenant(Kind::Entra);
    let newcomer = server.fake.directory().tenants[&key]
        .users
        .keys()
        .nth(8)
        .unwrap()
        .clone();
    server.fake.edit(|d| {
        let t = d.tenants.get_mut(&key).unwrap();
        assert!(t.add_member(&names["Bottom"], &newcomer));
        t.remove_member(&names["Top"], &names["Left"]);
    });
    let delta_before = server.fake.requests("/v1.0/groups/delta");
    let run = sync(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert!(server.fake.requests("/v1.0/groups/delta") > delta_before);
    let viewer = fx.viewer().await;
    let data = fx.ok(&viewer, GROUPS, json!({})).await;
    let top = by_name(&data, "Top");
    assert_eq!(externals(&top["childGroups"]), ["Right"]);
    // Top now holds u0, and through Right u2, u3 and the newcomer; u1 left with Left.
    let mut want = vec![
        users[0].clone(),
        users[2].clone(),
        users[3].clone(),
        newcomer,
    ];
    want.sort();
    assert_eq!(externals(&top["members"]), want);
    let events = fx
        .ok(
            &viewer,
            "{ events(first: 500, filter: {types: [GROUP_CHILD_GROUP_ADDED, GROUP_CHILD_GROUP_REMOVED]}) { nodes { type data } } }",
            json!({}),
        )
        .await;
    let events = events["events"]["nodes"].as_array().unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e["type"] == "GROUP_CHILD_GROUP_ADDED")
            .count(),
        6,
        "the first read nests six edges: {events:?}"
    );
    let removed: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "GROUP_CHILD_GROUP_REMOVED")
        .collect();
    assert_eq!(removed.len(), 1, "{events:?}");
    assert_eq!(removed[0]["data"]["object"]["id"], top["id"]);
    assert_eq!(
        removed[0]["data"]["state"]["childGroupId"],
        by_name(&data, "Left")["id"]
    );
}

async fn scim_pushes_nested_groups(fx: Fixture) {
    let scim = ScimClient::start(&fx, "Okta").await;
    const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
    let (_, ada) = scim
        .call(
            "POST",
            "/Users",
            Some(json!({ "schemas": [USER], "userName": "ada@okta.example" })),
        )
        .await;
    let (status, inner) = scim
        .call(
            "POST",
            "/Groups",
            Some(json!({ "schemas": [GROUP], "displayName": "Inner", "members": [{ "value": ada["id"] }] })),
        )
        .await;
    assert_eq!(status, 201, "{inner}");
    // Okta and Entra say `type: Group`; a member without a type that names a group is one too.
    let (status, outer) = scim
        .call(
            "POST",
            "/Groups",
            Some(json!({ "schemas": [GROUP], "displayName": "Outer",
                "members": [{ "value": inner["id"], "type": "Group" }] })),
        )
        .await;
    assert_eq!(status, 201, "{outer}");
    assert_eq!(outer["members"][0]["type"], "Group");
    assert!(
        outer["members"][0]["$ref"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/Groups/{}", inner["id"].as_str().unwrap()))
    );
    // A cycle, by PATCH: Inner gets Outer (no type given).
    let path = format!("/Groups/{}", inner["id"].as_str().unwrap());
    let (status, patched) = scim
        .call(
            "PATCH",
            &path,
            Some(json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{ "op": "add", "path": "members", "value": [{ "value": outer["id"] }] }] })),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    let viewer = fx.viewer().await;
    let data = fx.ok(&viewer, GROUPS, json!({})).await;
    for name in ["Inner", "Outer"] {
        let group = by_name(&data, name);
        assert_eq!(group["all"], 1, "{group}");
        assert_eq!(group["members"]["nodes"][0]["externalId"], ada["id"]);
    }
    assert_eq!(
        externals(&by_name(&data, "Outer")["childGroups"]),
        ["Inner"]
    );
    assert_eq!(
        externals(&by_name(&data, "Inner")["childGroups"]),
        ["Outer"]
    );
    // A group is not its own member; a member that names nothing is refused; nothing changes.
    for value in [inner["id"].clone(), json!("nobody")] {
        let (status, refused) = scim
            .call(
                "PUT",
                &path,
                Some(json!({ "schemas": [GROUP], "displayName": "Inner", "members": [{ "value": value }] })),
            )
            .await;
        assert_eq!(status, 400, "{refused}");
        assert_eq!(refused["scimType"], "invalidValue");
    }
    let again = fx.ok(&viewer, GROUPS, json!({})).await;
    assert_eq!(
        externals(&by_name(&again, "Inner")["childGroups"]),
        ["Outer"]
    );
    // Deleting a group takes its edges with it.
    let (status, _) = scim
        .call(
            "DELETE",
            &format!("/Groups/{}", outer["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let after = fx.ok(&viewer, GROUPS, json!({})).await;
    let inner_now = by_name(&after, "Inner");
    assert_eq!(inner_now["childGroups"]["totalCount"], 0);
    assert_eq!(inner_now["parentGroups"]["nodes"], json!([]));
}

/// `groups(first: N) { members(transitive: true, first: M) }` runs the same statements for
/// N = 5 and 50, over chains of nested groups.
async fn transitive_pages_take_the_same_statements_at_any_size(fx: Fixture) {
    use sea_orm::{ActiveModelTrait, EntityTrait, Set};
    let contoso = fx.integration("Contoso").create().await;
    fx.bulk(&contoso, 200, 60).await;
    let groups: Vec<i64> = entity::directory_group::Entity::find()
        .all(&fx.db)
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.id)
        .collect();
    // Each group nests the next three, and the last ones nest the first (cycles).
    for (i, parent) in groups.iter().enumerate() {
        for step in 1..=3 {
            let child = groups[(i + step) % groups.len()];
            entity::group_nesting::ActiveModel {
                parent_id: Set(*parent),
                child_id: Set(child),
                created_at: Set(chrono::Utc::now()),
            }
            .insert(&fx.db)
            .await
            .unwrap();
        }
    }
    let viewer = fx.viewer().await;
    // (The count is asked once: asked at two levels, `memberCount` and `members { totalCount }`,
    // its keys may land in one wave or two, as ARCHITECTURE's Batching section says.)
    let query = r#"query($n: Int!) { groups(first: $n) { nodes { id
        members(transitive: true, first: 10) { totalCount nodes { id groups(transitive: true, first: 3) { totalCount nodes { id } } } } } } }"#;
    // A first request warms what every request does once (the token's check).
    fx.ok(&viewer, query, json!({ "n": 1 })).await;
    let mut counts = Vec::new();
    for n in [5, 50] {
        fx.reset_statements();
        let data = fx.ok(&viewer, query, json!({ "n": n })).await;
        counts.push(fx.statements());
        let nodes = data["groups"]["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), n);
        for group in nodes {
            // Every group reaches every other: all 200 users, 60 groups each.
            assert_eq!(group["members"]["totalCount"], 200, "{group}");
            assert_eq!(group["members"]["nodes"].as_array().unwrap().len(), 10);
            let user = &group["members"]["nodes"][0];
            assert_eq!(user["groups"]["totalCount"], 60, "{user}");
        }
    }
    assert_eq!(
        counts[0], counts[1],
        "statements for 5 and 50 groups: {counts:?}"
    );
}

async fn transitive_arguments_are_checked(fx: Fixture) {
    let viewer = fx.viewer().await;
    let refused = fx
        .gql(
            &viewer,
            "{ users(filter: {transitive: true}) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(crate::support::error_code(&refused), "INVALID_INPUT");
    assert_eq!(refused["errors"][0]["extensions"]["field"], "transitive");
}
