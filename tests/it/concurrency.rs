//! Writes from several connections at once: an admin's mutation while other work writes (a
//! sync committing page after page, SCIM pushes) waits its turn and succeeds; it never fails
//! with INTERNAL because another connection held the database. On SQLite, where one writer
//! at a time holds the database, and on PostgreSQL.

use crate::{on_both_databases, support::Fixture};
use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
use serde_json::json;
use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

on_both_databases!(mutations_wait_for_concurrent_writers_and_succeed);

async fn mutations_wait_for_concurrent_writers_and_succeed(fx: Fixture) {
    let integration = fx.integration("Okta").create().await;
    let id = dirgate::graphql::ids::encode("Integration", integration.id);
    let admin = fx.admin().await;
    // Another writer commits small transactions back to back, as a sync does.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (fx.db.clone(), stop.clone());
        tokio::spawn(async move {
            let mut commits = 0u32;
            while !stop.load(Ordering::SeqCst) {
                let txn = db.begin().await.unwrap();
                txn.execute_raw(Statement::from_string(
                    txn.get_database_backend(),
                    "UPDATE integrations SET updated_at = updated_at",
                ))
                .await
                .unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                txn.commit().await.unwrap();
                commits += 1;
            }
            commits
        })
    };
    let mut failures = Vec::new();
    for n in 0..40 {
        let response = fx
            .gql(
                &admin,
                "mutation($id: ID!, $name: String!) { renameIntegration(input: {id: $id, name: $name}) { integration { name } userErrors { field message code } } }",
                json!({ "id": id.as_str(), "name": format!("Okta {n}") }),
            )
            .await;
        if response.get("errors").is_some() {
            failures.push(response);
        }
    }
    stop.store(true, Ordering::SeqCst);
    let commits = writer.await.unwrap();
    assert!(commits > 0, "the other writer ran");
    assert!(
        failures.is_empty(),
        "{} of 40 failed: {:#?}",
        failures.len(),
        &failures[..failures.len().min(2)]
    );
}
