//! SCIM lists filter and page in the database: the answers equal what the filter evaluator
//! says of every resource, the same on SQLite and PostgreSQL; a list reads a bounded number
//! of statements and rows whatever the directory's size; attributes without a column are a
//! typed `400 invalidFilter`.

use crate::{on_both_databases, scim::ScimClient, support::Fixture};
use dirgate::scim_filter as filter;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

on_both_databases!(
    scim_list_filters_agree_with_the_evaluator,
    scim_list_pages_in_the_database,
    scim_list_refuses_filters_it_cannot_run_in_sql,
    scim_list_pages_big_lists_in_id_order,
);

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn enc(filter: &str) -> String {
    url::form_urlencoded::byte_serialize(filter.as_bytes()).collect()
}

async fn create_user(
    scim: &ScimClient,
    user_name: &str,
    given: &str,
    family: &str,
    extra: Value,
) -> String {
    let mut body = json!({
        "schemas": [USER, ENTERPRISE],
        "userName": user_name,
        "name": { "givenName": given, "familyName": family },
        "displayName": format!("{given} {family}"),
        "emails": [{ "value": user_name.to_lowercase(), "type": "work", "primary": true }],
        "active": true,
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (status, created) = scim.call("POST", "/Users", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

async fn ids(scim: &ScimClient, path: &str) -> Vec<String> {
    let (status, list) = scim.call("GET", path, None).await;
    assert_eq!(status, 200, "{path}: {list}");
    let mut ids: Vec<String> = list["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(list["totalResults"], ids.len(), "{path}");
    ids.sort();
    ids
}

async fn scim_list_filters_agree_with_the_evaluator(fx: Fixture) {
    let scim = ScimClient::start(&fx, "Okta").await;
    let adele = create_user(
        &scim,
        "Adele@Contoso.example",
        "Adele",
        "Vance",
        json!({ "title": "Engineer", "externalId": "00uA" }),
    )
    .await;
    create_user(&scim, "alex@contoso.example", "Alex", "Wilber", json!({ "title": "Sales lead", ENTERPRISE: { "department": "Sales", "employeeNumber": "701" } })).await;
    create_user(&scim, "MEGAN@contoso.example", "Megan", "Bowen", json!({ "title": "engineering manager", ENTERPRISE: { "department": "R&D", "manager": { "value": adele.clone() } } })).await;
    create_user(
        &scim,
        "zoe@fabrikam.example",
        "Zoë",
        "Ångström",
        json!({ "externalId": "00uZ" }),
    )
    .await;
    let lynne = create_user(
        &scim,
        "lynne@contoso.example",
        "Lynne",
        "Robbins",
        json!({}),
    )
    .await;
    let (status, _) = scim
        .call(
            "PATCH",
            &format!("/Users/{lynne}"),
            Some(json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{ "op": "replace", "path": "active", "value": false }] })),
        )
        .await;
    assert_eq!(status, 200);
    let (status, group) = scim
        .call("POST", "/Groups", Some(json!({ "schemas": [GROUP], "displayName": "Sales Team", "externalId": "g1", "members": [{ "value": adele }] })))
        .await;
    assert_eq!(status, 201, "{group}");
    scim.call(
        "POST",
        "/Groups",
        Some(json!({ "schemas": [GROUP], "displayName": "Engineering" })),
    )
    .await;

    let (_, all_users) = scim.call("GET", "/Users", None).await;
    let (_, all_groups) = scim.call("GET", "/Groups", None).await;
    let expected = |all: &Value, f: &str| {
        let parsed = filter::parse(f).unwrap();
        let mut ids: Vec<String> = all["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| parsed.matches(r))
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    for f in [
        r#"userName eq "adele@contoso.example""#,
        r#"userName eq "ADELE@CONTOSO.EXAMPLE""#,
        r#"userName sw "a""#,
        r#"userName ew "@contoso.example""#,
        r#"userName co "EGAN""#,
        r#"userName gt "m""#,
        r#"externalId eq "00uA""#,
        r#"externalId eq "00ua""#,
        r#"externalId pr"#,
        r#"id eq "no-such-id""#,
        r#"active eq true"#,
        r#"active eq false"#,
        r#"active ne true"#,
        r#"name.familyName sw "V" or name.givenName eq "alex""#,
        r#"title co "engineer" and not (title sw "Sales")"#,
        r#"title pr"#,
        r#"not (title pr)"#,
        r#"title ne "Engineer""#,
        r#"displayName eq "megan bowen""#,
        r#"name.familyName eq "Ångström""#,
        r#"emails.value eq "alex@contoso.example""#,
        r#"emails co "fabrikam""#,
        r#"emails[value eq "megan@contoso.example"]"#,
        r#"emails ne "alex@contoso.example""#,
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "sales""#,
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701""#,
        r#"meta.created gt "2000-01-01T00:00:00Z""#,
        r#"meta.lastModified lt "2000-01-01T00:00:00Z""#,
        r#"emails[type eq "work"].value eq "zoe@fabrikam.example""#,
        r#"emails[type eq "home"].value eq "zoe@fabrikam.example""#,
    ] {
        assert_eq!(
            ids(&scim, &format!("/Users?filter={}", enc(f))).await,
            expected(&all_users, f),
            "{f}"
        );
    }
    for f in [
        r#"displayName eq "sales team""#,
        r#"displayName sw "Eng""#,
        r#"externalId eq "g1""#,
        r#"members[value eq "no-one"]"#,
        r#"members pr"#,
        r#"not (members pr)"#,
    ] {
        assert_eq!(
            ids(&scim, &format!("/Groups?filter={}", enc(f))).await,
            expected(&all_groups, f),
            "{f}"
        );
    }
    // Decided by the stored members, not a rendered list.
    let with_adele = ids(
        &scim,
        &format!(
            "/Groups?excludedAttributes=members&filter={}",
            enc(&format!("members[value eq \"{adele}\"]"))
        ),
    )
    .await;
    assert_eq!(with_adele, vec![group["id"].as_str().unwrap().to_owned()]);
    // The manager reference is compared exactly.
    let managed = ids(&scim, &format!("/Users?filter={}", enc(&format!("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"{adele}\"")))).await;
    assert_eq!(managed.len(), 1);
    // Non-ASCII letters are not case-folded, on either database.
    assert!(
        ids(
            &scim,
            &format!("/Users?filter={}", enc(r#"name.familyName eq "ångström""#))
        )
        .await
        .is_empty()
    );
}

async fn scim_list_pages_in_the_database(fx: Fixture) {
    let scim = ScimClient::start(&fx, "Okta").await;
    let mut created = Vec::new();
    for i in 0..30 {
        created.push(
            create_user(
                &scim,
                &format!("user{i:02}@contoso.example"),
                "User",
                &format!("N{i:02}"),
                json!({}),
            )
            .await,
        );
    }
    let page = |start: usize, count: usize| {
        format!(
            "/Users?filter={}&startIndex={start}&count={count}",
            enc("active eq true")
        )
    };
    let (_, first) = scim.call("GET", &page(1, 10), None).await;
    assert_eq!(first["totalResults"], 30);
    assert_eq!(first["itemsPerPage"], 10);
    assert_eq!(first["Resources"][0]["id"], created[0]);
    let (_, last) = scim.call("GET", &page(25, 10), None).await;
    assert_eq!(last["startIndex"], 25);
    assert_eq!(last["itemsPerPage"], 6);
    assert_eq!(last["Resources"][5]["id"], created[29]);
    let (_, past) = scim.call("GET", &page(31, 10), None).await;
    assert_eq!(
        (past["totalResults"].clone(), past["itemsPerPage"].clone()),
        (json!(30), json!(0))
    );
    let (_, none) = scim.call("GET", &page(1, 0), None).await;
    assert_eq!(
        (none["totalResults"].clone(), none["itemsPerPage"].clone()),
        (json!(30), json!(0))
    );

    // One page costs the same statements at 30 users as at 3 (count, page, their groups,
    // and the token check).
    fx.reset_statements();
    scim.call("GET", &page(1, 10), None).await;
    let at_thirty = fx.statements();
    assert!(at_thirty <= 5, "{at_thirty} statements for one page");

    // Root search pages across users then groups.
    for i in 0..3 {
        scim.call(
            "POST",
            "/Groups",
            Some(json!({ "schemas": [GROUP], "displayName": format!("G{i}") })),
        )
        .await;
    }
    let search = |start: i64, count: i64| json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "startIndex": start, "count": count });
    let (_, across) = scim.call("POST", "/.search", Some(search(29, 3))).await;
    assert_eq!(across["totalResults"], 33);
    let got: Vec<&str> = across["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["schemas"][0].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![USER, USER, GROUP]);
    let filtered = json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "displayName sw \"G\"" });
    let (_, groups_only) = scim.call("POST", "/.search", Some(filtered)).await;
    assert_eq!(groups_only["totalResults"], 3, "{groups_only}");
    let by_user_name = json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName eq \"user01@contoso.example\"" });
    let (_, users_only) = scim.call("POST", "/.search", Some(by_user_name)).await;
    assert_eq!(
        users_only["totalResults"], 1,
        "a filter on a user attribute matches no group"
    );
}

async fn scim_list_refuses_filters_it_cannot_run_in_sql(fx: Fixture) {
    let scim = ScimClient::start(&fx, "Okta").await;
    for (path, f) in [
        ("/Users", r#"nickName eq "x""#),
        ("/Users", r#"phoneNumbers.value eq "555""#),
        ("/Users", r#"active eq "maybe""#),
        ("/Groups", r#"userName eq "x""#),
        ("/Users", r#"meta.created co "2026""#),
    ] {
        let (status, err) = scim
            .call("GET", &format!("{path}?filter={}", enc(f)), None)
            .await;
        assert_eq!(status, 400, "{f}: {err}");
        assert_eq!(err["scimType"], "invalidFilter", "{f}");
    }
}

async fn scim_list_pages_big_lists_in_id_order(fx: Fixture) {
    let scim = ScimClient::start(&fx, "Okta").await;
    let integration = entity::integration::Entity::find()
        .one(&fx.db)
        .await
        .unwrap()
        .unwrap();
    // Past the count under which matching ids are sorted in memory.
    fx.bulk(&integration, 1_500, 3).await;
    let page = |filter: &str, start: usize| {
        format!("/Users?count=100&startIndex={start}&filter={}", enc(filter))
    };
    for (filter, start, total, first) in [
        ("active eq true", 1_201, 1_500, 1_200),
        ("userName sw \"user01\"", 401, 500, 1_400),
        ("userName sw \"user014\"", 1, 100, 1_400),
    ] {
        let (_, list) = scim.call("GET", &page(filter, start), None).await;
        assert_eq!(list["totalResults"], total, "{filter}");
        let ids: Vec<&str> = list["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        let wanted: Vec<String> = (0..100).map(|k| format!("ext-{}", first + k)).collect();
        assert_eq!(ids, wanted, "{filter} from {start}");
    }
}
