//! API tokens, roles and the audit log (docs/rules.md, "Who may call what").

use crate::{
    on_both_databases,
    support::{Fixture, error_code, no_vars},
};
use dirgate::{
    auth::{Admin, TokenRole},
    directory::tokens,
    graphql::Authentication,
};
use entity::{api_token, audit_event, device};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::json;

const REGISTER: &str = r#"mutation($serial: String!) {
  registerDevice(input: {serialNumber: $serial, name: "Mac", platform: MACOS}) { device { id serialNumber } userErrors { field message code } }
}"#;

on_both_databases!(
    query_without_token_is_unauthenticated,
    query_with_unknown_token_is_unauthenticated,
    revoked_token_stops_working_at_once,
    a_verified_token_is_not_read_again_until_another_process_revokes_it,
    a_lost_revocation_listener_turns_the_token_cache_off_until_it_listens_again,
    viewer_reads_but_mutation_is_forbidden_and_changes_nothing,
    tokens_are_stored_only_as_hashes,
    mutation_writes_an_audit_event,
);

async fn query_without_token_is_unauthenticated(fx: Fixture) {
    let response = fx
        .gql(
            &Authentication::Missing,
            "{ users { totalCount } }",
            no_vars(),
        )
        .await;
    assert_eq!(error_code(&response), "UNAUTHENTICATED");
    assert!(response["data"].is_null());
}

async fn query_with_unknown_token_is_unauthenticated(fx: Fixture) {
    let real = fx.token(TokenRole::Admin).await;
    // Right id, wrong secret; and a token of another shape.
    let prefix = real.splitn(3, '_').take(2).collect::<Vec<_>>().join("_");
    for presented in [
        format!("{prefix}_wrongsecret"),
        "not-a-token".to_string(),
        "dg_999_x".into(),
    ] {
        let auth = fx.app.authenticate(Some(&presented)).await;
        let response = fx.gql(&auth, "{ users { totalCount } }", no_vars()).await;
        assert_eq!(error_code(&response), "UNAUTHENTICATED", "{presented}");
    }
}

async fn revoked_token_stops_working_at_once(fx: Fixture) {
    let token = fx.token(TokenRole::Admin).await;
    let auth = fx.app.authenticate(Some(&token)).await;
    fx.ok(&auth, "{ users { totalCount } }", no_vars()).await;
    let id: i64 = token.split('_').nth(1).unwrap().parse().unwrap();
    // On PostgreSQL the token is now in the cache (`auth::cache`): revoking evicts it before
    // it returns.
    tokens::revoke(&fx.db, &Admin::cli(), id).await.unwrap();
    let auth = fx.app.authenticate(Some(&token)).await;
    let response = fx.gql(&auth, "{ users { totalCount } }", no_vars()).await;
    assert_eq!(error_code(&response), "UNAUTHENTICATED");
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
}

/// Waits (5 s at most) until `done` holds.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not after 5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// PostgreSQL: a verified token is remembered, so the next request does not read its row; a
/// revocation announced by another process (its `NOTIFY`) evicts it. SQLite reads the row
/// every time. (The row is changed behind dirgate's back to tell which happened.)
async fn a_verified_token_is_not_read_again_until_another_process_revokes_it(fx: Fixture) {
    use sea_orm::{ActiveModelTrait, DatabaseBackend, IntoActiveModel, Set, TransactionTrait};
    let postgres = fx.db.get_database_backend() == DatabaseBackend::Postgres;
    let token = fx.token(TokenRole::Viewer).await;
    let id: i64 = token.split('_').nth(1).unwrap().parse().unwrap();
    if postgres {
        eventually("the revocation listener listens", || {
            fx.app.tokens.is_live()
        })
        .await;
    }
    let first = fx.app.authenticate(Some(&token)).await;
    assert!(matches!(first, Authentication::Caller(_)));
    assert_eq!(fx.app.tokens.len(), usize::from(postgres));
    // The wrong secret for a remembered id is refused.
    let prefix = token.splitn(3, '_').take(2).collect::<Vec<_>>().join("_");
    let wrong = fx.app.authenticate(Some(&format!("{prefix}_nope"))).await;
    assert!(matches!(wrong, Authentication::Refused(_)));
    // The row no longer matches the secret.
    let mut row = api_token::Entity::find_by_id(id)
        .one(&fx.db)
        .await
        .unwrap()
        .unwrap()
        .into_active_model();
    row.secret_hash = Set("0".repeat(64));
    row.update(&fx.db).await.unwrap();
    let again = fx.app.authenticate(Some(&token)).await;
    assert_eq!(
        matches!(again, Authentication::Caller(_)),
        postgres,
        "from the cache on PostgreSQL only"
    );
    if postgres {
        // What another process's revocation sends, in its own transaction; this process's
        // caches hear it only through the listener.
        let txn = fx.db.begin().await.unwrap();
        dirgate::auth::cache::announce_revocation(&txn, id)
            .await
            .unwrap();
        txn.commit().await.unwrap();
        eventually("the notification evicts the token", || {
            fx.app.tokens.is_empty()
        })
        .await;
        let evicted = fx.app.authenticate(Some(&token)).await;
        assert!(
            matches!(evicted, Authentication::Refused(_)),
            "read again after the eviction"
        );
    }
}

/// PostgreSQL: while the listener's connection is gone, revocations could go unheard, so the
/// cache is emptied and unused until it listens again. SQLite never uses it.
async fn a_lost_revocation_listener_turns_the_token_cache_off_until_it_listens_again(fx: Fixture) {
    use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
    if fx.db.get_database_backend() != DatabaseBackend::Postgres {
        assert!(!fx.app.tokens.is_live());
        return;
    }
    let token = fx.token(TokenRole::Viewer).await;
    eventually("the revocation listener listens", || {
        fx.app.tokens.is_live()
    })
    .await;
    fx.app.authenticate(Some(&token)).await;
    assert_eq!(fx.app.tokens.len(), 1);
    // Cut the listener's connection (the backend whose last statement was its LISTEN).
    let cut = fx
        .db
        .execute_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE query LIKE 'LISTEN \"dirgate_token_revocations_%' AND pid <> pg_backend_pid()",
        ))
        .await
        .unwrap();
    assert!(cut.rows_affected() >= 1, "a listener to cut");
    // Off and emptied (the listener may be back within milliseconds, so the state itself
    // is not watched: what it held is).
    eventually("the cache is emptied", || fx.app.tokens.is_empty()).await;
    eventually("the listener listens again", || fx.app.tokens.is_live()).await;
    fx.app.authenticate(Some(&token)).await;
    assert_eq!(fx.app.tokens.len(), 1, "in use again");
}

async fn viewer_reads_but_mutation_is_forbidden_and_changes_nothing(fx: Fixture) {
    let viewer = fx.viewer().await;
    let data = fx
        .ok(&viewer, "{ devices { totalCount } }", no_vars())
        .await;
    assert_eq!(data["devices"]["totalCount"], 0);
    let response = fx
        .gql(&viewer, REGISTER, json!({"serial": "C02VIEW"}))
        .await;
    assert_eq!(error_code(&response), "FORBIDDEN");
    assert_eq!(device::Entity::find().count(&fx.db).await.unwrap(), 0);
}

async fn tokens_are_stored_only_as_hashes(fx: Fixture) {
    let token = fx.token(TokenRole::Viewer).await;
    let secret = token.splitn(3, '_').nth(2).unwrap();
    let rows = api_token::Entity::find().all(&fx.db).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].secret_hash.len(), 64, "a hex SHA-256");
    assert!(!rows[0].secret_hash.contains(secret));
    assert!(
        !rows[0].hint.contains(secret),
        "the hint must not reveal the secret"
    );
    assert!(token.starts_with(&rows[0].hint));
}

async fn mutation_writes_an_audit_event(fx: Fixture) {
    let admin = fx.admin().await;
    let before = audit_event::Entity::find().count(&fx.db).await.unwrap();
    let data = fx.ok(&admin, REGISTER, json!({"serial": "c02audit"})).await;
    assert_eq!(data["registerDevice"]["device"]["serialNumber"], "C02AUDIT");
    let events = audit_event::Entity::find().all(&fx.db).await.unwrap();
    assert_eq!(events.len() as u64, before + 1);
    let event = events.last().unwrap();
    assert_eq!(event.action, "registerDevice");
    assert_eq!(event.target_type.as_deref(), Some("Device"));
    assert!(event.actor.starts_with("token:"), "who: {}", event.actor);
    assert!(event.actor_token_id.is_some());
    assert!(event.details.as_deref().unwrap().contains("C02AUDIT"));
}
