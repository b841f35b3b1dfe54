//! End to end: the `dirgate` binary itself, on SQLite and PostgreSQL.

use crate::support::ScratchDatabase;
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
    let secret = token.splitn(3, '_').nth(2).unwrap();
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
        .json(&json!({ "query": "mutation { registerDevice(input: {serialNumber: \"C02CLI\", name: \"CLI Mac\", platform: MACOS}) { device { serialNumber } userErrors { field message code } } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["data"]["registerDevice"]["device"]["serialNumber"], "C02CLI",
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
    let db = ScratchDatabase::create("dirgate_cli").await;
    token_lifecycle_and_serve(&db.url).await;
    db.drop().await;
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
    // Other local users read none of dirgate's files.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| {
        std::fs::metadata(dir.path().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("data"), 0o700, "the data directory");
    assert_eq!(mode("data/dirgate.db"), 0o600, "the SQLite database");
    // A database file made more open by hand is tightened at the next start.
    let db = dir.path().join("data/dirgate.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(BIN)
        .args([
            "token",
            "create",
            "--name",
            "evil\u{202E}name",
            "--role",
            "viewer",
        ])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("DIRGATE_DATA_DIR")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a bidi override in a token name is refused"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("U+202E"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode("data/dirgate.db"), 0o600, "tightened");
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

/// The README's walk-through: `dirgate demo`, add an integration in the API, open the
/// authorization URL, click Accept on the consent page (a plain form), land back ACTIVE.
#[tokio::test]
async fn demo_walkthrough_connects_an_integration() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0", "--fake-users", "40"])
        .env_remove("DATABASE_URL")
        .env("DIRGATE_DATA_DIR", dir.path())
        .env("DIRGATE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start demo");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_owned();
    let token = loop {
        let line = lines.next().expect("an admin token line").unwrap();
        if let Some(token) = line.strip_prefix("admin token: ") {
            break token.trim().to_owned();
        }
    };
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let gql = |query: &'static str, variables: Value| {
        let request = client
            .post(format!("{base}/graphql"))
            .bearer_auth(&token)
            .json(&json!({ "query": query, "variables": variables }));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let devices = gql("{ devices { totalCount } }", json!({})).await;
    assert_eq!(devices["data"]["devices"]["totalCount"], 4, "{devices}");
    let added = gql(
        "mutation { addIntegration(input: {kind: ENTRA_ID, name: \"Contoso\"}) { authorizationUrl integration { id } userErrors { field message code } } }",
        json!({}),
    )
    .await;
    let url = added["data"]["addIntegration"]["authorizationUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = added["data"]["addIntegration"]["integration"]["id"].clone();

    // The consent page: a form that works without JavaScript.
    let page = client.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("<form method=\"post\"") && page.contains(">Accept</button>"),
        "{page}"
    );
    assert!(!page.contains("<script"), "no JavaScript needed");
    let parsed = url::Url::parse(&url).unwrap();
    let mut form: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    form.push(("fake_account".into(), "admin@contoso.example".into()));
    form.push(("fake_decision".into(), "accept".into()));
    let accepted = client
        .post(
            format!(
                "{}://{}{}",
                parsed.scheme(),
                parsed.host_str().unwrap(),
                parsed.port().map(|p| format!(":{p}")).unwrap_or_default()
            ) + parsed.path(),
        )
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(accepted.status().is_redirection());
    let back = accepted.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        back.starts_with(&format!("{base}/oauth/callback?")),
        "{back}"
    );
    let landed = client.get(&back).send().await.unwrap();
    assert_eq!(landed.status(), 200);
    assert!(landed.text().await.unwrap().contains("ACTIVE"));
    let status = gql(
        "query($id: ID!) { integration(id: $id) { status authorizedBy } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(status["data"]["integration"]["status"], "ACTIVE");
    assert_eq!(
        status["data"]["integration"]["authorizedBy"],
        "admin@contoso.example"
    );

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// Logs written to a pipe: text without colour escapes, or JSON objects line by line; with
/// JSON, everything else dirgate prints too (the banner, a token, a fatal error).
#[test]
fn cli_logs_to_a_pipe_are_plain_text_or_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("logs.db").display());
    let run = |format: &str, args: &[&str], database: &str| {
        let out = Command::new(BIN)
            .args(args)
            .env("DATABASE_URL", database)
            .env("DIRGATE_DATA_DIR", dir.path())
            .env("DIRGATE_LOG", "debug")
            .env("DIRGATE_LOG_FORMAT", format)
            .output()
            .expect("run dirgate");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, _, text) = run("text", &["migrate"], &url);
    assert!(ok);
    assert!(!text.trim().is_empty(), "migrate logs at debug level");
    assert!(
        !text.contains('\u{1b}'),
        "no ANSI escapes in a pipe: {text:?}"
    );
    let json_lines = |output: &str| -> Vec<Value> {
        output
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let value: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                assert!(
                    value["level"].is_string() && value["timestamp"].is_string(),
                    "{value}"
                );
                value
            })
            .collect()
    };
    let (ok, stdout, stderr) = run("json", &["migrate"], &url);
    assert!(ok);
    assert!(!json_lines(&stderr).is_empty());
    assert_eq!(
        json_lines(&stdout)[0]["fields"]["message"],
        "migrations applied"
    );
    let (ok, stdout, stderr) = run(
        "json",
        &["token", "create", "--name", "ci", "--role", "viewer"],
        &url,
    );
    assert!(ok);
    json_lines(&stderr);
    let created = &json_lines(&stdout)[0];
    assert!(
        created["fields"]["token"]
            .as_str()
            .is_some_and(|t| t.starts_with("dg_")),
        "{created}"
    );
    let (ok, stdout, stderr) = run("json", &["migrate"], "postgres://nobody@127.0.0.1:1/none");
    assert!(!ok, "no database there");
    json_lines(&stdout);
    let errors = json_lines(&stderr);
    assert_eq!(errors.last().unwrap()["level"], "ERROR", "{errors:?}");
    // `serve`'s banner, read as the tests read where it listens.
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", &url)
        .env("DIRGATE_DATA_DIR", dir.path())
        .env("DIRGATE_LOG_FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = crate::support::serve_base(&mut child);
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    child.kill().ok();
    child.wait().ok();
    let (ok, _, _) = run("yaml", &["migrate"], &url);
    assert!(!ok, "an unknown format is refused");
}

/// Secrets from files (`<VAR>_FILE`), as container platforms mount them.
#[test]
fn cli_reads_secrets_from_var_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("from-file.db");
    let url_file = dir.path().join("database_url");
    std::fs::write(&url_file, format!("sqlite://{}?mode=rwc\n", db.display())).unwrap();
    let run = |envs: &[(&str, &std::path::Path)], plain: &[(&str, &str)]| {
        let mut command = Command::new(BIN);
        command
            .arg("migrate")
            .env_remove("DATABASE_URL")
            .env("DIRGATE_DATA_DIR", dir.path())
            .env("DIRGATE_LOG", "warn");
        for (k, v) in envs {
            command.env(k, v);
        }
        for (k, v) in plain {
            command.env(k, v);
        }
        command.output().unwrap()
    };
    let out = run(&[("DATABASE_URL_FILE", &url_file)], &[]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        db.exists(),
        "the URL came from the file (its line break dropped)"
    );
    // Both the variable and its file: refused, saying why.
    let out = run(
        &[("DATABASE_URL_FILE", &url_file)],
        &[("DATABASE_URL", "sqlite::memory:")],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("both set"));
    // A file that cannot be read: refused, naming the variable.
    let missing = dir.path().join("missing");
    let out = run(&[("DIRGATE_ENCRYPTION_KEY_FILE", &missing)], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("DIRGATE_ENCRYPTION_KEY_FILE"));
}

/// `--database-pool-size` (`DIRGATE_DATABASE_POOL_SIZE`): a size outside 4–1000, or not a
/// number, is refused before anything is opened; a good one is the most connections the
/// pool holds, and without one the pool holds twice the CPUs plus four, at most 16.
#[tokio::test]
async fn cli_database_pool_size_is_bounded_and_sizes_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/pool.db?mode=rwc", dir.path().display());
    for bad in ["3", "0", "-1", "1001", "eight", "99999999999"] {
        let (ok, _, stderr) = dirgate(&url, dir.path(), &["migrate", "--database-pool-size", bad]);
        assert!(!ok, "{bad} is refused");
        assert!(stderr.contains(bad), "names the value: {stderr}");
        let out = Command::new(BIN)
            .arg("migrate")
            .env("DATABASE_URL", &url)
            .env("DIRGATE_DATA_DIR", dir.path())
            .env("DIRGATE_DATABASE_POOL_SIZE", bad)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{bad} from the environment is refused"
        );
    }
    assert!(!dir.path().join("pool.db").exists(), "nothing was opened");
    let (ok, _, stderr) = dirgate(&url, dir.path(), &["migrate", "--database-pool-size", "4"]);
    assert!(ok, "{stderr}");

    let pg = crate::support::postgres_url();
    let pool = |db: &sea_orm::DatabaseConnection| {
        db.get_postgres_connection_pool()
            .options()
            .get_max_connections()
    };
    let sized = dirgate::db::connect_sized(&pg, Some(5)).await.unwrap();
    assert_eq!(pool(&sized), 5);
    let default = dirgate::db::connect_sized(&pg, None).await.unwrap();
    let cpus = std::thread::available_parallelism().unwrap().get() as u32;
    let expected = (2 * cpus + 4).min(16);
    assert_eq!(pool(&default), expected);
    assert_eq!(dirgate::db::default_pool_size(), expected);
    sized.close().await.unwrap();
    default.close().await.unwrap();
}

/// `serve` raises its soft open-files limit to the hard one, and says so.
#[test]
fn serve_raises_the_open_files_limit_to_the_hard_one() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("rl.db").display());
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -S -n 256 && exec {BIN} serve --listen 127.0.0.1:0"
        ))
        .env("DATABASE_URL", &url)
        .env("DIRGATE_DATA_DIR", dir.path())
        .env("DIRGATE_LOG_FORMAT", "json")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut limit = None;
    for line in lines.map_while(Result::ok).take(50) {
        let value: Value = serde_json::from_str(&line).unwrap();
        if value["fields"]["message"] == "open files limit" {
            limit = value["fields"]["limit"].as_u64();
            break;
        }
    }
    child.kill().ok();
    child.wait().ok();
    assert_eq!(
        limit,
        Some(hard),
        "the soft limit of 256 raised to the hard one"
    );
}
