//! `/metrics` (`src/metrics.rs`): scraped over real HTTP before and after a pull sync (with a
//! throttled page), a SCIM push and a GraphQL query, and the numbers moved. The recorder is
//! the process's, shared by every test in this binary: each check compares a series this
//! test alone moves (its integration's label) or asks for at least this test's increase.

use crate::{
    http::Server,
    on_both_databases,
    scim::ScimClient,
    support::Fixture,
    sync::{connect, started},
};
use dirgate::auth::TokenRole;
use fake_directory::FaultAction;
use serde_json::json;

on_both_databases!(metrics_move_with_syncs_scim_pushes_and_queries);

/// The value of the series `name{labels}` (labels in any order), 0 when absent.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
            (metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| v.parse::<f64>().ok())?
        })
        .sum()
}

async fn scrape(server: &Server, token: &str) -> String {
    let res = reqwest::Client::new()
        .get(server.url("/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    res.text().await.unwrap()
}

async fn metrics_move_with_syncs_scim_pushes_and_queries(fx: Fixture) {
    let (fx, fake) = started(fx, 30).await;
    let server = Server::serve(fx).await;
    let fx = &server.fx;
    let viewer = fx.token(TokenRole::Viewer).await;

    let res = reqwest::Client::new()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "metrics need a token");

    let before = scrape(&server, &viewer).await;
    // A pull sync whose first users page is throttled once (and waits its Retry-After).
    fake.fake.inject(fake_directory::Fault {
        route: "/v1.0/users".into(),
        count: 1,
        action: FaultAction::Status {
            status: 429,
            retry_after: Some(0),
            reason: None,
        },
    });
    connect(fx, "ENTRA_ID", "Contoso", false).await;
    // A SCIM push.
    let scim = ScimClient::start(fx, "Okta").await;
    // The integration label is the id in the SCIM base URL.
    let integration = scim.base.rsplit('/').next().unwrap().to_owned();
    let (status, _) = scim
        .call(
            "POST",
            "/Users",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "metrics@okta.example",
                "active": true
            })),
        )
        .await;
    assert_eq!(status, 201);
    let res = reqwest::Client::new()
        .get(format!(
            "{}/Users",
            scim.base.replace(&format!("/{integration}"), "/987654321")
        ))
        .bearer_auth(&scim.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // A GraphQL query and one refused request.
    let client = reqwest::Client::new();
    let res = client
        .post(server.url("/graphql"))
        .bearer_auth(&viewer)
        .json(&json!({ "query": "{ users { totalCount } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = client
        .post(server.url("/graphql"))
        .json(&json!({ "query": "{ users { totalCount } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    let after = scrape(&server, &viewer).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    let entra = [("provider", "entra")];
    assert!(
        moved(
            "dirgate_sync_runs_total",
            &[
                ("provider", "entra"),
                ("trigger", "initial"),
                ("outcome", "succeeded")
            ]
        ) >= 1.0,
        "{after}"
    );
    assert!(moved("dirgate_sync_run_duration_seconds_count", &entra) >= 1.0);
    assert!(
        moved(
            "dirgate_sync_users_written_total",
            &[("provider", "entra"), ("change", "created")]
        ) >= 30.0
    );
    assert!(
        moved(
            "dirgate_sync_groups_written_total",
            &[("provider", "entra"), ("change", "created")]
        ) >= 3.0
    );
    assert!(moved("dirgate_sync_pages_read_total", &entra) >= 1.0);
    assert!(
        moved(
            "dirgate_provider_requests_total",
            &[("provider", "entra"), ("outcome", "ok")]
        ) >= 2.0
    );
    assert!(
        moved(
            "dirgate_provider_requests_total",
            &[("provider", "entra"), ("outcome", "throttled")]
        ) >= 1.0
    );
    assert!(
        moved(
            "dirgate_provider_retries_total",
            &[("provider", "entra"), ("reason", "throttled")]
        ) >= 1.0
    );
    assert!(moved("dirgate_provider_throttle_wait_seconds_count", &entra) >= 1.0);
    // The SCIM integration's series (every test process shares the recorder, and a SQLite
    // and a PostgreSQL test may both have integration 2: at least this test's request).
    assert!(
        moved(
            "dirgate_scim_requests_total",
            &[
                ("method", "POST"),
                ("status", "201"),
                ("integration", &integration)
            ]
        ) >= 1.0,
        "{after}"
    );
    // A request with a wrong token mints no label of its own.
    assert!(!after.contains("integration=\"987654321\""));
    assert!(
        moved(
            "dirgate_scim_requests_total",
            &[("status", "401"), ("integration", "none")]
        ) >= 1.0
    );
    assert!(
        moved(
            "dirgate_graphql_requests_total",
            &[("operation", "query"), ("code", "ok")]
        ) >= 1.0
    );
    assert!(
        moved(
            "dirgate_graphql_requests_total",
            &[("operation", "none"), ("code", "UNAUTHENTICATED")]
        ) >= 1.0
    );
    assert!(
        moved(
            "dirgate_graphql_request_duration_seconds_count",
            &[("operation", "query")]
        ) >= 1.0
    );
    assert!(after.contains("dirgate_db_pool_connections{state=\"idle\"}"));
    assert!(after.contains("# HELP dirgate_sync_runs_total"));
}
