//! A request reads only the text columns its fields show (`store::columns`,
//! `graphql::projection`): every field of `User`, `Device` and `Group` (its scalars, and its
//! relations as `{ __typename }`), asked for alone along every path that reaches the type,
//! answers what it answers with every column read.

use crate::{
    on_both_databases,
    support::{Fixture, no_vars},
};
use dirgate::graphql::{Authentication, projection::Projection};
use entity::{device, directory_group, directory_user};
use sea_orm::{EntityTrait, sea_query::Expr};
use serde_json::Value;

on_both_databases!(every_field_alone_answers_what_it_answers_with_every_column_read);

/// The paths to each type; `@` is where the fields go.
const USER_PATHS: &[&str] = &[
    "{ users(first: 10) { nodes { @ } } }",
    "{ users(first: 2, orderBy: {field: DISPLAY_NAME}) { edges { cursor node { @ } } } }",
    "{ users(first: 2, orderBy: {field: EMAIL, direction: DESC}) { edges { cursor node { @ } } } }",
    "{ devices(first: 10) { nodes { user { @ } } } }",
    "{ groups(first: 10) { nodes { members(first: 10) { nodes { @ } } } } }",
    "{ integrations(first: 5) { nodes { users(first: 10) { nodes { @ } } } } }",
];
const DEVICE_PATHS: &[&str] = &[
    "{ devices(first: 10) { nodes { @ } } }",
    "{ devices(first: 10) { nodes { @ user { id } } } }",
    "{ devices(first: 2, orderBy: {field: NAME}) { edges { cursor node { @ } } } }",
    "{ devices(first: 2, orderBy: {field: SERIAL_NUMBER, direction: DESC}) { edges { cursor node { @ } } } }",
    "{ users(first: 10) { nodes { devices { nodes { @ } } } } }",
    "{ devices(first: 10) { nodes { user { devices { nodes { @ } } } } } }",
    "{ groups(first: 10) { nodes { members(first: 10) { nodes { devices { nodes { @ } } } } } } }",
];
const GROUP_PATHS: &[&str] = &[
    "{ groups(first: 10) { nodes { @ } } }",
    "{ groups(first: 2, orderBy: {field: DISPLAY_NAME}) { edges { cursor node { @ } } } }",
    "{ users(first: 10) { nodes { groups { nodes { @ } } } } }",
    "{ devices(first: 10) { nodes { user { groups { nodes { @ } } } } } }",
    "{ integrations(first: 5) { nodes { groups(first: 10) { nodes { @ } } } } }",
];

async fn every_field_alone_answers_what_it_answers_with_every_column_read(fx: Fixture) {
    let acme = fx.integration("Acme").create().await;
    let ada = fx.user(&acme, "ada@acme.test").create().await;
    let bob = fx
        .user(&acme, "bob@acme.test")
        .display_name("bob")
        .create()
        .await;
    let cy = fx.user(&acme, "cy@acme.test").email(None).create().await;
    fx.group(&acme, "Engineering", &[&ada, &bob]).await;
    fx.group(&acme, "all", &[&ada, &bob, &cy]).await;
    fx.device("c02a", Some(&ada)).await;
    fx.device("c02b", Some(&bob)).await;
    fx.device("c02c", None).await;
    // Every text column holds text, so a placeholder (`''` or null) would show.
    let text = |column: &str| Expr::cust(format!("'{column} ' || CAST(id AS TEXT)"));
    directory_user::Entity::update_many()
        .col_expr(directory_user::Column::GivenName, text("given"))
        .col_expr(directory_user::Column::FamilyName, text("family"))
        .col_expr(directory_user::Column::JobTitle, text("job"))
        .col_expr(directory_user::Column::Department, text("dept"))
        .col_expr(directory_user::Column::EmployeeId, text("emp"))
        .col_expr(directory_user::Column::EmployeeType, text("type"))
        .col_expr(directory_user::Column::OfficeLocation, text("office"))
        .col_expr(directory_user::Column::CompanyName, text("company"))
        .col_expr(directory_user::Column::Division, text("division"))
        .col_expr(directory_user::Column::CostCenter, text("cc"))
        .col_expr(directory_user::Column::HireDate, Expr::cust("'2020-01-02'"))
        .col_expr(directory_user::Column::MobilePhone, text("mobile"))
        .col_expr(directory_user::Column::Country, text("country"))
        .col_expr(directory_user::Column::PreferredLanguage, text("lang"))
        // Each user its own manager, so `manager` shows a user.
        .col_expr(
            directory_user::Column::ManagerExternalId,
            Expr::col(directory_user::Column::ExternalId),
        )
        .exec(&fx.db)
        .await
        .unwrap();
    directory_group::Entity::update_many()
        .col_expr(directory_group::Column::Email, text("group-mail"))
        .col_expr(directory_group::Column::Description, text("about"))
        .exec(&fx.db)
        .await
        .unwrap();
    device::Entity::update_many()
        .col_expr(device::Column::EnrollmentIdentity, text("signed-in"))
        .exec(&fx.db)
        .await
        .unwrap();

    let auth = fx.admin().await;
    let mut runs = 0;
    for (type_name, paths) in [
        ("User", USER_PATHS),
        ("Device", DEVICE_PATHS),
        ("Group", GROUP_PATHS),
    ] {
        for (selection, field) in fields_to_ask(&fx, &auth, type_name).await {
            let mut shown = false;
            for path in paths {
                let query = path.replace('@', &format!("id {selection}"));
                let projected = fx.ok(&auth, &query, no_vars()).await;
                let every_column = read_every_column(&fx, &auth, &query).await;
                assert_eq!(projected, every_column, "{query}");
                shown |= shows_text(&every_column, &field);
                runs += 1;
            }
            if !["archivedAt", "assignment"].contains(&field.as_str()) {
                assert!(shown, "no path shows {type_name}.{field} with a value");
            }
        }
    }
    // 3 types with over 8 leaf fields each, along their paths.
    assert!(runs > 100, "{runs}");
}

/// The fields of `type_name` to ask for, each with how to select it: a scalar or an enum (or
/// a list of them) without required arguments as itself, an object without required
/// arguments as `field { __typename }` (so a relation that a left-out column would hide shows
/// too). An argument is required when it is non-null without a default.
async fn fields_to_ask(
    fx: &Fixture,
    auth: &Authentication,
    type_name: &str,
) -> Vec<(String, String)> {
    let data = fx
        .ok(
            auth,
            r#"query($t: String!) { __type(name: $t) { fields {
                name args { name defaultValue type { kind } }
                type { kind ofType { kind ofType { kind ofType { kind } } } }
            } } }"#,
            serde_json::json!({ "t": type_name }),
        )
        .await;
    let fields = data["__type"]["fields"].as_array().unwrap();
    let mut asked = Vec::new();
    for field in fields {
        let name = field["name"].as_str().unwrap().to_owned();
        let args = field["args"].as_array().unwrap();
        let optional = args
            .iter()
            .all(|a| a["type"]["kind"] != "NON_NULL" || !a["defaultValue"].is_null());
        let mut ty = &field["type"];
        while matches!(ty["kind"].as_str(), Some("NON_NULL" | "LIST")) {
            ty = &ty["ofType"];
        }
        match ty["kind"].as_str() {
            Some("SCALAR" | "ENUM") if optional => asked.push((name.clone(), name)),
            Some("OBJECT" | "INTERFACE") if optional => {
                asked.push((format!("{name} {{ __typename }}"), name))
            }
            _ => {}
        }
    }
    let leaves = asked.iter().filter(|(s, n)| s == n).count();
    assert!(
        leaves >= 8 && asked.len() > leaves,
        "{type_name}: {asked:?}"
    );
    asked
}

/// `query` answered with every column of every model read: through the schema, with a
/// loader that reads every column, as the WebSocket endpoint runs its requests.
async fn read_every_column(fx: &Fixture, auth: &Authentication, query: &str) -> Value {
    let (request, loaders) = dirgate::graphql::prepare(
        async_graphql::Request::new(query),
        &fx.db,
        auth.clone(),
        Projection::ALL,
    );
    let driver = loaders.driver();
    let response = tokio::select! {
        biased;
        response = fx.app.schema.execute(request) => response,
        () = driver => unreachable!("the driver never ends by itself"),
    };
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    serde_json::to_value(&response.data).unwrap()
}

/// Whether `field` has a non-empty value anywhere in `data`.
fn shows_text(data: &Value, field: &str) -> bool {
    match data {
        Value::Object(map) => map.iter().any(|(key, value)| {
            (key == field && !matches!(value, Value::Null) && value != "")
                || shows_text(value, field)
        }),
        Value::Array(items) => items.iter().any(|item| shows_text(item, field)),
        _ => false,
    }
}
