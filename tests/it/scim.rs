//! SCIM integrations (R13): added ACTIVE with a token shown once and stored as a hash, a base
//! URL of their own, rotation at once. On SQLite and PostgreSQL.

use crate::{
    on_both_databases,
    support::{Fixture, error_code, user_error},
};
use sea_orm::EntityTrait;
use serde_json::{Value, json};

on_both_databases!(
    a_scim_integration_gets_a_base_url_and_a_token_shown_once,
    rotating_a_scim_token_replaces_it,
);

const ADD_SCIM: &str = "mutation($name: String!) { addIntegration(input: { kind: SCIM, name: $name }) { authorizationUrl scimBaseUrl scimToken integration { id kind status scimBaseUrl scimTokenHint } userErrors { field message code } } }";

/// Adds a SCIM integration; returns its payload.
pub(crate) async fn add_scim(fx: &Fixture, name: &str) -> Value {
    let admin = fx.admin().await;
    fx.ok(&admin, ADD_SCIM, json!({ "name": name })).await["addIntegration"].clone()
}

async fn a_scim_integration_gets_a_base_url_and_a_token_shown_once(fx: Fixture) {
    let added = add_scim(&fx, "Okta").await;
    let token = added["scimToken"].as_str().unwrap().to_owned();
    assert!(token.starts_with("dgscim_") && token.len() > 40, "{token}");
    assert!(added["authorizationUrl"].is_null());
    let integration = &added["integration"];
    assert_eq!(integration["kind"], "SCIM");
    assert_eq!(
        integration["status"], "ACTIVE",
        "a SCIM integration needs no sign-in"
    );
    let base = added["scimBaseUrl"].as_str().unwrap();
    assert_eq!(integration["scimBaseUrl"], base);
    assert!(base.contains("/scim/v2/"), "{base}");
    let hint = integration["scimTokenHint"].as_str().unwrap();
    assert!(hint.ends_with(&token[token.len() - 4..]), "{hint}");
    assert!(!hint.contains(&token[7..20]), "the hint is not the token");

    // Later reads never show the token; the database holds only a hash.
    let viewer = fx.viewer().await;
    let details = fx
        .ok(
            &viewer,
            "query($id: ID!) { integration(id: $id) { scimBaseUrl scimTokenHint } }",
            json!({ "id": integration["id"] }),
        )
        .await;
    assert!(!details.to_string().contains(&token));
    let row = entity::integration::Entity::find()
        .one(&fx.db)
        .await
        .unwrap()
        .unwrap();
    let stored = row.scim_token_hash.unwrap();
    assert_ne!(stored, token);
    assert!(!stored.contains(&token[7..]));

    // Names stay unique across kinds (R3).
    let admin = fx.admin().await;
    let again = fx.gql(&admin, ADD_SCIM, json!({ "name": "okta" })).await;
    assert_eq!(
        user_error(&again),
        ("NAME_TAKEN".into(), "input.name".into())
    );
}

async fn rotating_a_scim_token_replaces_it(fx: Fixture) {
    let added = add_scim(&fx, "Okta").await;
    let id = added["integration"]["id"].clone();
    let admin = fx.admin().await;
    const ROTATE: &str = "mutation($id: ID!) { rotateScimToken(input: {id: $id}) { scimToken integration { scimTokenHint } userErrors { field message code } } }";
    let rotated = fx.ok(&admin, ROTATE, json!({ "id": id })).await["rotateScimToken"].clone();
    let token = rotated["scimToken"].as_str().unwrap();
    assert_ne!(token, added["scimToken"].as_str().unwrap());
    assert!(
        rotated["integration"]["scimTokenHint"]
            .as_str()
            .unwrap()
            .ends_with(&token[token.len() - 4..])
    );
    let viewer = fx.viewer().await;
    assert_eq!(
        error_code(&fx.gql(&viewer, ROTATE, json!({ "id": id })).await),
        "FORBIDDEN"
    );
    // Only SCIM integrations have a SCIM token.
    let entra = fx.integration("Contoso").create().await;
    let refused = fx
        .gql(
            &admin,
            ROTATE,
            json!({ "id": dirgate::graphql::ids::encode("Integration", entra.id).as_str() }),
        )
        .await;
    assert_eq!(
        user_error(&refused),
        ("INVALID_INPUT".into(), "input.id".into())
    );
}

// ---------------------------------------------------------------------------------------------
// The SCIM endpoint over real HTTP.

/// The real router on a loopback port, and a SCIM integration's base URL and token.
pub(crate) struct ScimClient {
    pub base: String,
    pub token: String,
    pub integration: Value,
    http: reqwest::Client,
    stop: tokio_util::sync::CancellationToken,
}

impl Drop for ScimClient {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl ScimClient {
    pub(crate) async fn start(fx: &Fixture, name: &str) -> Self {
        let added = add_scim(fx, name).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(dirgate::http::serve(
            fx.app.clone(),
            listener,
            stop.clone().cancelled_owned(),
        ));
        let path = added["scimBaseUrl"].as_str().unwrap();
        let path = &path[path.find("/scim/v2/").unwrap()..];
        Self {
            base: format!("http://{addr}{path}"),
            token: added["scimToken"].as_str().unwrap().to_owned(),
            integration: added["integration"].clone(),
            http: reqwest::Client::new(),
            stop,
        }
    }

    /// Sends a request; returns the status and the JSON body (Null when empty).
    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_with(method, path, body, &self.token).await
    }

    pub(crate) async fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: &str,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        if status != 204 {
            let kind = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            assert_eq!(kind, "application/scim+json", "{method} {path}");
        }
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub(crate) async fn raw(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let response = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/scim+json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn enc(filter: &str) -> String {
    url::form_urlencoded::byte_serialize(filter.as_bytes()).collect()
}

/// The user GraphQL shows for a SCIM id.
async fn graphql_user(fx: &Fixture, external: &str) -> Value {
    let viewer = fx.viewer().await;
    let data = fx
        .ok(
            &viewer,
            "{ users(first: 500) { nodes { externalId userName email displayName givenName familyName department status origin groups { nodes { displayName } } } } }",
            json!({}),
        )
        .await;
    data["users"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["externalId"] == external)
        .cloned()
        .unwrap_or(Value::Null)
}

on_both_databases!(
    okta_provisioning_replayed,
    entra_provisioning_replayed,
    scim_tokens_only_open_their_own_integration,
    bad_scim_input_is_refused_and_changes_nothing,
    scim_users_are_auto_assigned_and_deleted_per_r14,
    concurrent_creates_of_one_user_name_make_one_user,
    deleting_a_scim_integration_closes_its_endpoint,
);

/// Okta: test connection, lookup before create, create (with a password never echoed), full
/// PUT for an update, deactivation with `active: false`, a group pushed with members.
async fn okta_provisioning_replayed(fx: Fixture) {
    let scim = ScimClient::start(&fx, "Okta").await;
    // Test connection.
    let (status, list) = scim.call("GET", "/Users?startIndex=1&count=2", None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["totalResults"], 0);
    assert_eq!(list["startIndex"], 1);
    assert_eq!(
        list["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:ListResponse"
    );
    // Lookup before create.
    let lookup = format!(
        "/Users?filter={}&startIndex=1&count=100",
        enc("userName eq \"dev.one@okta.example\"")
    );
    let (_, found) = scim.call("GET", &lookup, None).await;
    assert_eq!(found["totalResults"], 0);
    let create = json!({
        "schemas": [USER_SCHEMA],
        "userName": "dev.one@okta.example",
        "name": { "givenName": "Dev", "familyName": "One" },
        "emails": [{ "primary": true, "value": "dev.one@okta.example", "type": "work" }],
        "displayName": "Dev One",
        "locale": "en-US",
        "externalId": "00u1okta",
        "groups": [],
        "password": "Sup3rSecret!",
        "active": true
    });
    let (status, user) = scim.call("POST", "/Users", Some(create.clone())).await;
    assert_eq!(status, 201, "{user}");
    assert!(user.get("password").is_none(), "a password is never echoed");
    let id = user["id"].as_str().unwrap().to_owned();
    assert_eq!(user["meta"]["resourceType"], "User");
    assert!(
        user["meta"]["location"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/Users/{id}"))
    );
    assert!(user["meta"]["version"].as_str().unwrap().starts_with("W/"));
    assert_eq!(user["externalId"], "00u1okta");
    // Seen by the lookup now, and in GraphQL at once.
    let (_, found) = scim.call("GET", &lookup, None).await;
    assert_eq!(found["totalResults"], 1);
    assert_eq!(found["Resources"][0]["id"], id.as_str());
    let seen = graphql_user(&fx, &id).await;
    assert_eq!(seen["userName"], "dev.one@okta.example");
    assert_eq!(seen["givenName"], "Dev");
    assert_eq!(seen["origin"], "Okta");
    // The same userName again: 409 uniqueness.
    let (status, err) = scim.call("POST", "/Users", Some(create.clone())).await;
    assert_eq!(status, 409);
    assert_eq!(err["scimType"], "uniqueness");
    assert_eq!(err["status"], "409");
    // Full PUT for an update.
    let mut update = create.clone();
    update["name"]["familyName"] = json!("Uno");
    update[ENTERPRISE] = json!({ "department": "Platform" });
    update["schemas"] = json!([USER_SCHEMA, ENTERPRISE]);
    let (status, user) = scim
        .call("PUT", &format!("/Users/{id}"), Some(update.clone()))
        .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["name"]["familyName"], "Uno");
    let seen = graphql_user(&fx, &id).await;
    assert_eq!(seen["familyName"], "Uno");
    assert_eq!(seen["department"], "Platform");
    // Deactivation: active false, never DELETE.
    let (status, user) = scim
        .call(
            "PATCH",
            &format!("/Users/{id}"),
            Some(json!({ "schemas": [PATCH_SCHEMA], "Operations": [{ "op": "replace", "value": { "active": false } }] })),
        )
        .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["active"], false);
    assert_eq!(graphql_user(&fx, &id).await["status"], "SUSPENDED");
    // Reactivation by full PUT.
    update["active"] = json!(true);
    let (_, user) = scim
        .call("PUT", &format!("/Users/{id}"), Some(update))
        .await;
    assert_eq!(user["active"], true);
    assert_eq!(graphql_user(&fx, &id).await["status"], "ACTIVE");
    // A group with the user.
    let (status, group) = scim
        .call(
            "POST",
            "/Groups",
            Some(json!({ "schemas": [GROUP_SCHEMA], "displayName": "Engineering", "members": [{ "value": id }] })),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    assert_eq!(group["members"][0]["value"], id.as_str());
    assert_eq!(
        graphql_user(&fx, &id).await["groups"]["nodes"],
        json!([{ "displayName": "Engineering" }])
    );
    // The user's read-only `groups` says so too.
    let (_, user) = scim.call("GET", &format!("/Users/{id}"), None).await;
    assert_eq!(user["groups"][0]["value"], group["id"]);
    assert_eq!(user["groups"][0]["display"], "Engineering");
}

/// Entra provisioning: lookups by userName, externalId and work email; groups by displayName
/// without members; the default PATCH dialect; member add and remove.
async fn entra_provisioning_replayed(fx: Fixture) {
    let scim = ScimClient::start(&fx, "Entra provisioning").await;
    for filter in [
        "userName eq \"AdeleV@contoso.example\"",
        "externalId eq \"AdeleV\"",
        "emails[type eq \"work\"].value eq \"AdeleV@contoso.example\"",
    ] {
        let (status, found) = scim
            .call("GET", &format!("/Users?filter={}", enc(filter)), None)
            .await;
        assert_eq!(status, 200, "{filter}: {found}");
        assert_eq!(found["totalResults"], 0, "{filter}");
    }
    let (status, user) = scim
        .call(
            "POST",
            "/Users",
            Some(json!({
                "schemas": [USER_SCHEMA, ENTERPRISE],
                "externalId": "AdeleV",
                "userName": "AdeleV@contoso.example",
                "active": true,
                "displayName": "Adele Vance",
                "emails": [{ "primary": true, "type": "work", "value": "AdeleV@contoso.example" }],
                "meta": { "resourceType": "User" },
                "name": { "formatted": "Adele Vance", "familyName": "Vance", "givenName": "Adele" },
                "title": "Retail Manager",
                ENTERPRISE: { "department": "Retail", "employeeNumber": "1001" }
            })),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    let id = user["id"].as_str().unwrap().to_owned();
    for filter in [
        "userName eq \"adelev@contoso.example\"",
        "externalId eq \"AdeleV\"",
        "emails[type eq \"work\"].value eq \"AdeleV@contoso.example\"",
    ] {
        let (_, found) = scim
            .call("GET", &format!("/Users?filter={}", enc(filter)), None)
            .await;
        assert_eq!(found["totalResults"], 1, "{filter}: {found}");
    }
    // The default dialect: capitalised ops, a boolean as a string, one op per attribute.
    let (status, user) = scim
        .call(
            "PATCH",
            &format!("/Users/{id}"),
            Some(json!({ "schemas": [PATCH_SCHEMA], "Operations": [
                { "op": "Replace", "path": "title", "value": "Store Manager" },
                { "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "adele.vance@contoso.example" },
                { "op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Sales" },
                { "op": "Replace", "path": "active", "value": "False" }
            ] })),
        )
        .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["active"], false);
    assert_eq!(user[ENTERPRISE]["department"], "Sales");
    let seen = graphql_user(&fx, &id).await;
    assert_eq!(seen["email"], "adele.vance@contoso.example");
    assert_eq!(seen["department"], "Sales");
    assert_eq!(seen["status"], "SUSPENDED");
    // aadOptscim062020: a path-less replace with dotted and URN keys, real booleans.
    let (status, user) = scim
        .call(
            "PATCH",
            &format!("/Users/{id}"),
            Some(
                json!({ "schemas": [PATCH_SCHEMA], "Operations": [{ "op": "replace", "value": {
                "active": true,
                "name.givenName": "Adèle",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "1002"
            } }] }),
            ),
        )
        .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["name"]["givenName"], "Adèle");
    assert_eq!(
        user["name"]["familyName"], "Vance",
        "the rest of `name` stays"
    );
    assert_eq!(user[ENTERPRISE]["employeeNumber"], "1002");
    assert_eq!(graphql_user(&fx, &id).await["status"], "ACTIVE");

    // A second user, and a group found by displayName without members.
    let (_, other) = scim
        .call(
            "POST",
            "/Users",
            Some(json!({ "schemas": [USER_SCHEMA], "userName": "AlexW@contoso.example", "externalId": "AlexW" })),
        )
        .await;
    let other = other["id"].as_str().unwrap().to_owned();
    let by_name = format!(
        "/Groups?excludedAttributes=members&filter={}",
        enc("displayName eq \"Sales Team\"")
    );
    let (_, found) = scim.call("GET", &by_name, None).await;
    assert_eq!(found["totalResults"], 0);
    let (status, group) = scim
        .call(
            "POST",
            "/Groups",
            Some(json!({ "schemas": [GROUP_SCHEMA], "externalId": "sales", "displayName": "Sales Team", "members": [] })),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    let gid = group["id"].as_str().unwrap().to_owned();
    let (_, found) = scim.call("GET", &by_name, None).await;
    assert_eq!(found["totalResults"], 1);
    assert!(
        found["Resources"][0].get("members").is_none(),
        "members excluded"
    );
    // Members added, then removed both ways Entra does it.
    let patch_group = |ops: Value| json!({ "schemas": [PATCH_SCHEMA], "Operations": ops });
    let (status, _) = scim
        .call(
            "PATCH",
            &format!("/Groups/{gid}"),
            Some(patch_group(json!([{ "op": "Add", "path": "members", "value": [{ "value": id }, { "value": other }] }]))),
        )
        .await;
    assert_eq!(status, 200);
    let (_, g) = scim.call("GET", &format!("/Groups/{gid}"), None).await;
    assert_eq!(g["members"].as_array().unwrap().len(), 2, "{g}");
    scim.call(
        "PATCH",
        &format!("/Groups/{gid}"),
        Some(patch_group(
            json!([{ "op": "Remove", "path": "members", "value": [{ "value": other }] }]),
        )),
    )
    .await;
    scim.call(
        "PATCH",
        &format!("/Groups/{gid}"),
        Some(patch_group(
            json!([{ "op": "remove", "path": format!("members[value eq \"{id}\"]") }]),
        )),
    )
    .await;
    let (_, g) = scim.call("GET", &format!("/Groups/{gid}"), None).await;
    assert_eq!(g["members"], json!([]), "{g}");
    assert_eq!(graphql_user(&fx, &id).await["groups"]["nodes"], json!([]));
    // Hard delete: a user without a device is removed (R14).
    let (status, _) = scim.call("DELETE", &format!("/Users/{other}"), None).await;
    assert_eq!(status, 204);
    assert!(graphql_user(&fx, &other).await.is_null());
    let (status, _) = scim.call("GET", &format!("/Users/{other}"), None).await;
    assert_eq!(status, 404);
}

async fn scim_tokens_only_open_their_own_integration(fx: Fixture) {
    let okta = ScimClient::start(&fx, "Okta").await;
    let other = add_scim(&fx, "OneLogin").await;
    let other_token = other["scimToken"].as_str().unwrap();
    let (status, body) = okta.call_with("GET", "/Users", None, other_token).await;
    assert_eq!(status, 401, "another integration's token: {body}");
    assert_eq!(body["status"], "401");
    let (status, _) = okta.call_with("GET", "/Users", None, "dgscim_wrong").await;
    assert_eq!(status, 401);
    let (status, _) = okta.call("GET", "/Users", None).await;
    assert_eq!(status, 200);
    // A rotated token stops the old one at once.
    let admin = fx.admin().await;
    let rotated = fx
        .ok(
            &admin,
            "mutation($id: ID!) { rotateScimToken(input: {id: $id}) { scimToken userErrors { field message code } } }",
            json!({ "id": okta.integration["id"] }),
        )
        .await;
    let (status, _) = okta.call("GET", "/Users", None).await;
    assert_eq!(status, 401, "the old token");
    let fresh = rotated["rotateScimToken"]["scimToken"].as_str().unwrap();
    let (status, _) = okta.call_with("GET", "/Users", None, fresh).await;
    assert_eq!(status, 200);
    // Discovery answers what is supported.
    let (_, config) = okta
        .call_with("GET", "/ServiceProviderConfig", None, fresh)
        .await;
    assert_eq!(config["patch"]["supported"], true);
    assert_eq!(config["bulk"]["supported"], false);
    assert_eq!(config["filter"]["supported"], true);
    let (_, types) = okta.call_with("GET", "/ResourceTypes", None, fresh).await;
    assert_eq!(types["totalResults"], 2);
    let (status, user_schema) = okta
        .call_with("GET", &format!("/Schemas/{USER_SCHEMA}"), None, fresh)
        .await;
    assert_eq!(status, 200);
    assert_eq!(user_schema["id"], USER_SCHEMA);
}

async fn bad_scim_input_is_refused_and_changes_nothing(fx: Fixture) {
    let scim = ScimClient::start(&fx, "Okta").await;
    let (_, user) = scim
        .call(
            "POST",
            "/Users",
            Some(json!({ "schemas": [USER_SCHEMA], "userName": "keep@x.example" })),
        )
        .await;
    let id = user["id"].as_str().unwrap().to_owned();
    let version = user["meta"]["version"].clone();
    let cases: Vec<(&str, String, Option<&str>, u16, &str)> = vec![
        (
            "POST",
            "/Users".into(),
            Some("{ not json"),
            400,
            "invalidSyntax",
        ),
        (
            "POST",
            "/Users".into(),
            Some(r#"{"schemas":["urn:wrong"],"userName":"a"}"#),
            400,
            "invalidSyntax",
        ),
        (
            "POST",
            "/Users".into(),
            Some(r#"{"userName":"no-schemas"}"#),
            400,
            "invalidSyntax",
        ),
        (
            "POST",
            "/Users".into(),
            Some(
                r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a","shoeSize":"9"}"#,
            ),
            400,
            "invalidSyntax",
        ),
        (
            "POST",
            "/Users".into(),
            Some(r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"active":true}"#),
            400,
            "invalidValue",
        ),
        (
            "POST",
            "/Users".into(),
            Some(r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":42}"#),
            400,
            "invalidValue",
        ),
        (
            "GET",
            format!("/Users?filter={}", enc("userName eq")),
            None,
            400,
            "invalidFilter",
        ),
        (
            "GET",
            format!("/Users?filter={}", enc("userName zz \"a\"")),
            None,
            400,
            "invalidFilter",
        ),
        (
            "GET",
            "/Users?startIndex=abc".into(),
            None,
            400,
            "invalidValue",
        ),
        (
            "PATCH",
            format!("/Users/{id}"),
            Some(
                r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"shoeSize","value":"9"}]}"#,
            ),
            400,
            "invalidPath",
        ),
        (
            "PATCH",
            format!("/Users/{id}"),
            Some(
                r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"userName"}]}"#,
            ),
            400,
            "invalidValue",
        ),
        (
            "PATCH",
            format!("/Users/{id}"),
            Some(r#"{"Operations":[]}"#),
            400,
            "invalidSyntax",
        ),
    ];
    for (method, path, body, status, scim_type) in cases {
        let (got, err) = match body {
            Some(b) => scim.raw(method, &path, b).await,
            None => scim.call(method, &path, None).await,
        };
        assert_eq!(got, status, "{method} {path} {body:?}: {err}");
        assert_eq!(
            err["scimType"], scim_type,
            "{method} {path} {body:?}: {err}"
        );
        assert_eq!(
            err["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
    }
    let (status, _) = scim.call("GET", "/Users/unknown", None).await;
    assert_eq!(status, 404);
    // Nothing changed.
    let (_, after) = scim.call("GET", &format!("/Users/{id}"), None).await;
    assert_eq!(after["meta"]["version"], version);
    assert_eq!(after["userName"], "keep@x.example");
    let (_, list) = scim.call("GET", "/Users", None).await;
    assert_eq!(list["totalResults"], 1);
    // A negative startIndex counts as 1, a negative count as 0.
    let (_, list) = scim
        .call("GET", "/Users?startIndex=-4&count=-1", None)
        .await;
    assert_eq!(list["startIndex"], 1);
    assert_eq!(list["itemsPerPage"], 0);
    assert_eq!(list["totalResults"], 1);
}

/// R12: a user pushed by SCIM whose email matches an unassigned device's enrollment identity
/// gets it (autoAssignDevices on); R14: deleting a user with a device archives it, without
/// one removes it; a user created again after its deletion comes back.
async fn scim_users_are_auto_assigned_and_deleted_per_r14(fx: Fixture) {
    let admin = fx.admin().await;
    let scim = ScimClient::start(&fx, "Okta").await;
    fx.ok(
        &admin,
        "mutation($id: ID!) { updateIntegrationSettings(input: { id: $id, autoAssignDevices: true }) { integration { id } userErrors { field message code } } }",
        json!({ "id": scim.integration["id"] }),
    )
    .await;
    fx.ok(
        &admin,
        "mutation { registerDevice(input: { serialNumber: \"C02SCIM\", name: \"Mac\", platform: MACOS, enrollmentIdentity: \"kim@okta.example\" }) { device { id } userErrors { field message code } } }",
        json!({}),
    )
    .await;
    let (status, kim) = scim
        .call(
            "POST",
            "/Users",
            Some(json!({ "schemas": [USER_SCHEMA], "userName": "kim@okta.example", "emails": [{ "value": "kim@okta.example", "primary": true }] })),
        )
        .await;
    assert_eq!(status, 201, "{kim}");
    let kim_id = kim["id"].as_str().unwrap().to_owned();
    let viewer = fx.viewer().await;
    let device = fx
        .ok(
            &viewer,
            "{ devices { nodes { serialNumber user { externalId } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        device["devices"]["nodes"][0]["user"]["externalId"],
        kim_id.as_str(),
        "assigned at once (R12): {device}"
    );
    // Deleted with a device: archived, gone for SCIM, kept for the device.
    let (status, _) = scim.call("DELETE", &format!("/Users/{kim_id}"), None).await;
    assert_eq!(status, 204);
    assert_eq!(graphql_user(&fx, &kim_id).await["status"], "ARCHIVED");
    let (status, _) = scim.call("GET", &format!("/Users/{kim_id}"), None).await;
    assert_eq!(status, 404);
    let (_, list) = scim.call("GET", "/Users", None).await;
    assert_eq!(list["totalResults"], 0);
    // Created again: the same person comes back, device and all.
    let (status, again) = scim
        .call(
            "POST",
            "/Users",
            Some(json!({ "schemas": [USER_SCHEMA], "userName": "KIM@okta.example" })),
        )
        .await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["id"], kim_id.as_str(), "restored, not duplicated");
    assert_eq!(graphql_user(&fx, &kim_id).await["status"], "ACTIVE");
}

#[tokio::test]
async fn scim_rate_limit_and_body_limit() {
    let mut config = dirgate::Config::defaults();
    config.scim_requests_per_second = 5;
    config.max_body_bytes = 4096;
    let fx = Fixture::with_config(crate::support::Backend::Sqlite, config).await;
    let scim = ScimClient::start(&fx, "Okta").await;
    let mut limited = None;
    for _ in 0..20 {
        let response = scim
            .http
            .get(format!("{}/Users", scim.base))
            .bearer_auth(&scim.token)
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("more than 5 requests in a second are refused");
    assert_eq!(limited.headers()["retry-after"], "1");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["status"], "429");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let big = json!({ "schemas": [USER_SCHEMA], "userName": "big@x.example", "displayName": "x".repeat(5000) });
    let (status, _) = scim.raw("POST", "/Users", &big.to_string()).await;
    assert_eq!(status, 413, "the body limit applies to SCIM too");
    let (_, list) = scim.call("GET", "/Users", None).await;
    assert_eq!(list["totalResults"], 0, "nothing was created");
}

async fn concurrent_creates_of_one_user_name_make_one_user(fx: Fixture) {
    let scim = ScimClient::start(&fx, "Okta").await;
    let body = json!({ "schemas": [USER_SCHEMA], "userName": "twice@okta.example" });
    let calls = (0..8).map(|_| scim.call("POST", "/Users", Some(body.clone())));
    let statuses: Vec<u16> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        7,
        "{statuses:?}"
    );
    let (_, list) = scim.call("GET", "/Users", None).await;
    assert_eq!(list["totalResults"], 1);
}

/// R9 for a SCIM integration: its users without devices and its groups go, a user with a
/// device stays archived with the integration's name; its token opens nothing any more.
async fn deleting_a_scim_integration_closes_its_endpoint(fx: Fixture) {
    let scim = ScimClient::start(&fx, "Okta").await;
    let mut ids = Vec::new();
    for name in ["keep@okta.example", "go@okta.example"] {
        let (_, user) = scim
            .call(
                "POST",
                "/Users",
                Some(json!({ "schemas": [USER_SCHEMA], "userName": name })),
            )
            .await;
        ids.push(user["id"].as_str().unwrap().to_owned());
    }
    scim.call(
        "POST",
        "/Groups",
        Some(json!({ "schemas": [GROUP_SCHEMA], "displayName": "All", "members": [{ "value": ids[0] }, { "value": ids[1] }] })),
    )
    .await;
    let admin = fx.admin().await;
    let viewer = fx.viewer().await;
    let keep = fx
        .ok(
            &viewer,
            "{ users(first: 10) { nodes { id userName } } }",
            json!({}),
        )
        .await["users"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["userName"] == "keep@okta.example")
        .unwrap()["id"]
        .clone();
    let device = fx.device("C02KEEPSCIM", None).await;
    fx.ok(
        &admin,
        "mutation($d: ID!, $u: ID!) { assignDeviceUser(input: {deviceId: $d, userId: $u}) { device { id } userErrors { field message code } } }",
        json!({ "d": dirgate::graphql::ids::encode("Device", device.id).as_str(), "u": keep }),
    )
    .await;
    let deleted = fx
        .ok(
            &admin,
            "mutation($id: ID!) { deleteIntegration(input: { id: $id, confirmName: \"Okta\" }) { usersRemoved usersRetained userErrors { field message code } } }",
            json!({ "id": scim.integration["id"] }),
        )
        .await;
    assert_eq!(deleted["deleteIntegration"]["usersRemoved"], 1, "{deleted}");
    assert_eq!(deleted["deleteIntegration"]["usersRetained"], 1);
    let kept = graphql_user(&fx, &ids[0]).await;
    assert_eq!(kept["status"], "ARCHIVED");
    assert_eq!(kept["origin"], "Okta");
    assert_eq!(kept["groups"]["nodes"], json!([]));
    let (status, _) = scim.call("GET", "/Users", None).await;
    assert_eq!(
        status, 401,
        "the token opens nothing once its integration is gone"
    );
}
