//! Every relation goes through the DataLoader: the statements a request runs do not grow with
//! the page size.

use crate::{on_both_databases, support::Fixture};
use serde_json::{Value, json};

const NESTED: &str = r#"query($n: Int!) {
  users(first: $n) {
    totalCount
    edges { cursor node {
      id displayName origin status aliases
      integration { id name userCount groupCount }
      groups { id displayName memberCount }
      devices { serialNumber user { id } assignment { source } }
    } }
  }
  groups(first: $n) {
    totalCount
    nodes {
      id
      integration { name }
      members(first: 5) { totalCount nodes { id groups { id } } }
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
            data["users"]["edges"][0]["node"]["groups"]
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
