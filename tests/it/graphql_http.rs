//! GraphQL over HTTP to the letter (`src/http/graphql.rs`): content negotiation, the status
//! codes of each media type, `Content-Type` on POST, GET for queries only. The full
//! `graphql-http` audit runs against a real server in CI (`.ci/web/graphql-http-audit.mjs`);
//! these tests keep each rule in the test binary on both databases.

use crate::{
    http::Server,
    on_both_databases,
    support::{Backend, Fixture},
};
use dirgate::{Config, auth::TokenRole};
use serde_json::{Value, json};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

struct Answer {
    status: u16,
    content_type: String,
    body: Value,
}

async fn send(
    server: &Server,
    token: &str,
    accept: Option<&str>,
    content_type: Option<&str>,
    body: &str,
) -> Answer {
    let mut req = reqwest::Client::new()
        .post(server.url("/graphql"))
        .bearer_auth(token)
        .body(body.to_owned());
    if let Some(accept) = accept {
        req = req.header("accept", accept);
    }
    if let Some(content_type) = content_type {
        req = req.header("content-type", content_type);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = res.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        content_type,
        body,
    }
}

async fn negotiation_and_status_codes(fx: Fixture) {
    let server = Server::serve(fx).await;
    let token = server.fx.token(TokenRole::Viewer).await;
    let json_ct = Some("application/json");
    let typename = r#"{"query":"{ __typename }"}"#;

    // The media type follows Accept.
    for (accept, expected) in [
        (None, "application/json"),
        (Some("application/json"), "application/json"),
        (Some("*/*"), "application/json"),
        (Some(GRAPHQL_RESPONSE), GRAPHQL_RESPONSE),
        (
            Some("application/graphql-response+json, application/json, multipart/mixed"),
            GRAPHQL_RESPONSE,
        ),
    ] {
        let a = send(&server, &token, accept, json_ct, typename).await;
        assert_eq!(a.status, 200, "{accept:?}");
        assert!(
            a.content_type.starts_with(expected),
            "{accept:?}: {}",
            a.content_type
        );
        assert_eq!(a.body["data"]["__typename"], "Query");
    }
    let a = send(&server, &token, Some("text/html"), json_ct, typename).await;
    assert_eq!(a.status, 406);
    assert_eq!(a.body["errors"][0]["extensions"]["code"], "BAD_REQUEST");

    // Request errors: 200 with errors under application/json, 400 without `data` under
    // application/graphql-response+json.
    for (body, code) in [
        (r#"{"query":"{"}"#, "GRAPHQL_PARSE_FAILED"),
        (
            r#"{"query":"{ noSuchField }"}"#,
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            r#"{"query":"query Q($id: ID!) { __typename }","variables":{"id":null}}"#,
            "",
        ),
    ] {
        let a = send(&server, &token, Some("application/json"), json_ct, body).await;
        assert_eq!(a.status, 200, "{body}");
        assert!(a.body.get("data").is_none(), "{body}: {}", a.body);
        assert!(!a.body["errors"].as_array().unwrap().is_empty());
        let a = send(&server, &token, Some(GRAPHQL_RESPONSE), json_ct, body).await;
        assert_eq!(a.status, 400, "{body}");
        assert!(a.content_type.starts_with(GRAPHQL_RESPONSE));
        assert!(a.body.get("data").is_none(), "{body}: {}", a.body);
        if !code.is_empty() {
            assert_eq!(
                a.body["errors"][0]["extensions"]["code"], code,
                "{}",
                a.body
            );
        }
    }
    // A bound is a request error too.
    let deep = format!(
        r#"{{"query":"{{ {} }}"}}"#,
        "users { nodes { ".repeat(20) + &"} } ".repeat(20)
    );
    let a = send(&server, &token, Some(GRAPHQL_RESPONSE), json_ct, &deep).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.body["errors"][0]["extensions"]["code"], "LIMIT_EXCEEDED");

    // A field error is not a request error: 200 with data under both.
    let field_error = r#"{"query":"{ __typename node(id: \"not-an-id\") { id } }"}"#;
    for accept in ["application/json", GRAPHQL_RESPONSE] {
        let a = send(&server, &token, Some(accept), json_ct, field_error).await;
        assert_eq!(a.status, 200, "{accept}: {}", a.body);
        assert_eq!(a.body["data"]["__typename"], "Query", "{}", a.body);
        assert!(a.body["errors"][0]["path"].is_array(), "{}", a.body);
    }

    // Not a GraphQL request: 400 under both media types.
    for body in [
        "",
        "{ \"not a JSON",
        r#"{"notquery":"{ __typename }"}"#,
        r#"{"query":0}"#,
        r#"{"query":["array"]}"#,
        r#"{"query":"{ __typename }","operationName":false}"#,
        r#"{"query":"{ __typename }","variables":"string"}"#,
        r#"{"query":"{ __typename }","extensions":["array"]}"#,
    ] {
        for accept in ["application/json", GRAPHQL_RESPONSE] {
            let a = send(&server, &token, Some(accept), json_ct, body).await;
            assert_eq!(a.status, 400, "{accept} {body:?}");
            assert_eq!(a.body["errors"][0]["extensions"]["code"], "BAD_REQUEST");
        }
    }
    // null parameters and a map of extensions are allowed.
    let a = send(
        &server,
        &token,
        None,
        json_ct,
        r#"{"query":"query Q { __typename }","operationName":"Q","variables":null,"extensions":{"some":"value"}}"#,
    )
    .await;
    assert_eq!(a.status, 200);
    assert!(a.body.get("errors").is_none(), "{}", a.body);

    // POST needs Content-Type: application/json in UTF-8.
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/json; charset=latin1"),
    ] {
        let a = send(&server, &token, None, content_type, typename).await;
        assert_eq!(a.status, 415, "{content_type:?}");
        assert_eq!(a.body["errors"][0]["extensions"]["code"], "BAD_REQUEST");
    }
    let a = send(
        &server,
        &token,
        None,
        Some("application/json; charset=utf-8"),
        r#"{"query":"{ __type(name: \"Run🏃Swim🏊\") { name } }"}"#,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);

    // Refusals before the document keep the negotiated media type.
    let a = send(
        &server,
        "dg_nope",
        Some(GRAPHQL_RESPONSE),
        json_ct,
        typename,
    )
    .await;
    assert_eq!(a.status, 401);
    assert!(a.content_type.starts_with(GRAPHQL_RESPONSE));
    assert!(a.body.get("data").is_none());
}
on_both_databases!(negotiation_and_status_codes);

#[tokio::test]
async fn get_runs_queries_with_variables_and_refuses_mutations_with_allow() {
    let server = Server::start(Backend::Sqlite, Config::defaults()).await;
    let token = server.fx.token(TokenRole::Admin).await;
    let client = reqwest::Client::new();
    let variables = json!({ "name": "Query" }).to_string();
    let res = client
        .get(server.url("/graphql"))
        .query(&[
            (
                "query",
                "query T($name: String!) { __type(name: $name) { name } }",
            ),
            ("variables", variables.as_str()),
        ])
        .header("accept", GRAPHQL_RESPONSE)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["__type"]["name"], "Query");
    let res = client
        .get(server.url("/graphql"))
        .query(&[("query", "mutation { __typename }")])
        .header("accept", GRAPHQL_RESPONSE)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "POST");
    let res = client
        .get(server.url("/graphql"))
        .header("accept", GRAPHQL_RESPONSE)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "no query");
}
