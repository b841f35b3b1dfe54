//! Every relation goes through the DataLoader: the statements a request runs do not grow with
//! the page size.

use crate::{on_both_databases, support::Fixture};
use serde_json::json;

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

on_both_databases!(nested_query_statement_count_does_not_grow_with_page_size);

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
    assert_eq!(
        counts[0], counts[1],
        "statements at page size 10 vs 200: {counts:?}"
    );
    assert!(
        counts[0] < 40,
        "a nested query should need a few dozen statements at most: {counts:?}"
    );
}
