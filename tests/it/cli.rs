//! End to end: the `dirgate` binary itself, on SQLite and PostgreSQL.

use crate::support::postgres_url;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

const BIN: &str = env!("CARGO_BIN_EXE_dirgate");

fn dirgate(
    database_url: &str,
    data_dir: &std::path::Path,
    args: &[&str],
) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("DIRGATE_DATA_DIR", data_dir)
        .env("DIRGATE_LOG", "warn")
        .output()
        .expect("run dirgate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Creates tokens, serves, answers a query with one, revokes it, and stops on SIGTERM.
async fn token_lifecycle_and_serve(database_url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = dirgate(database_url, dir.path(), &["migrate"]);
    assert!(ok, "migrate: {err}");
    assert!(out.contains("migrations applied"));
    let (ok, out, err) = dirgate(
        database_url,
        dir.path(),
        &["token", "create", "--name", "ci admin", "--role", "admin"],
    );
    assert!(ok, "token create: {err}");
    let token = out.lines().last().unwrap().trim().to_owned();
    assert!(
        token.starts_with("dg_"),
        "the token is the last line: {out}"
    );
    let (ok, out, _) = dirgate(database_url, dir.path(), &["token", "list"]);
    assert!(ok);
    assert!(out.contains("ci admin") && out.contains("ADMIN"));
    let secret = token.rsplit_once('_').unwrap().1;
    assert!(!out.contains(secret), "token list never shows a secret");

    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", database_url)
        .env("DIRGATE_DATA_DIR", dir.path())
        .env("DIRGATE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("serve prints where it listens: {first}"))
        .to_owned();
    let graphiql = lines.next().unwrap().unwrap();
    assert!(graphiql.contains("GraphiQL"), "{graphiql}");
    let client = reqwest::Client::new();
    let body: Value = client
        .post(format!("{base}/graphql"))
        .bearer_auth(&token)
        .json(&json!({ "query": "mutation { registerDevice(input: {serialNumber: \"C02CLI\", name: \"CLI Mac\", platform: MACOS}) { serialNumber } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["data"]["registerDevice"]["serialNumber"], "C02CLI",
        "{body}"
    );

    let id = token.split('_').nth(1).unwrap();
    let (ok, out, err) = dirgate(database_url, dir.path(), &["token", "revoke", id]);
    assert!(ok, "revoke: {err}");
    assert!(out.contains("revoked"));
    let body: Value = client
        .post(format!("{base}/graphql"))
        .bearer_auth(&token)
        .json(&json!({ "query": "{ devices { totalCount } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "serve exits cleanly on SIGTERM: {exit}");
}

#[tokio::test]
async fn cli_tokens_and_serve_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("cli.db").display());
    token_lifecycle_and_serve(&url).await;
}

#[tokio::test]
async fn cli_tokens_and_serve_on_postgres() {
    let base = postgres_url();
    let name = format!("dirgate_cli_{}", std::process::id());
    let admin = dirgate::db::connect(&base)
        .await
        .expect("PostgreSQL is required");
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
        .await
        .unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    token_lifecycle_and_serve(&format!("{prefix}/{name}")).await;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();
}

#[test]
fn cli_with_no_configuration_uses_sqlite_in_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["migrate"])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("DIRGATE_DATA_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("data/dirgate.db").exists());
}

#[test]
fn cli_schema_prints_the_committed_sdl() {
    let out = Command::new(BIN).arg("schema").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        include_str!("../../schema.graphql")
    );
}
