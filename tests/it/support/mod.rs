//! The test harness: a real database per test (an SQLite file, or a PostgreSQL schema of its
//! own), migrated the real way, the real `App` on it, and a fixture builder that seeds by name.

pub mod fake;
pub mod seed;

use dirgate::{
    App, Config, Core,
    auth::{Admin, TokenRole},
    directory::tokens,
    graphql::Authentication,
};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{Value, json};
use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

/// Where PostgreSQL tests connect: `DIRGATE_TEST_POSTGRES_URL`, or the local server.
pub fn postgres_url() -> String {
    std::env::var("DIRGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

enum Cleanup {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Schema(String),
}

/// One test's world: a migrated database, the app on it, and a statement counter.
pub struct Fixture {
    pub app: App,
    /// Owns the app's background work; dropped (and so stopped) with the fixture, or stopped
    /// by [`Fixture::stop_background`].
    core: Option<Core>,
    pub db: DatabaseConnection,
    pub backend: Backend,
    statements: Arc<AtomicUsize>,
    directory_writes: Arc<AtomicUsize>,
    cleanup: Option<Cleanup>,
}

impl Fixture {
    /// A fixture whose app delivers no webhooks: its background work does not poll, so the
    /// statements a test counts are its own (webhook tests use [`Fixture::with_config`]).
    pub async fn new(backend: Backend) -> Self {
        let mut config = Config::defaults();
        config.webhook_delivery = false;
        Self::with_config(backend, config).await
    }

    pub async fn sqlite() -> Self {
        Self::new(Backend::Sqlite).await
    }

    pub async fn postgres() -> Self {
        Self::new(Backend::Postgres).await
    }

    pub async fn with_config(backend: Backend, mut config: Config) -> Self {
        let (mut db, cleanup) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
                config.data_dir = dir.path().to_path_buf();
                config.database_url = Some(url.clone());
                let db = dirgate::db::connect(&url).await.expect("open SQLite");
                (db, Cleanup::Dir(dir))
            }
            Backend::Postgres => {
                let base = postgres_url();
                let schema = format!("t_{}_{}", std::process::id(), rand_suffix());
                let admin = dirgate::db::connect(&base).await.unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is required for the tests and is not reachable at {base}: {e}"
                    )
                });
                admin
                    .execute_unprepared(&format!("CREATE SCHEMA \"{schema}\""))
                    .await
                    .expect("create schema");
                admin.close().await.ok();
                let db = dirgate::db::connect_with(&base, Some(&schema))
                    .await
                    .expect("open PostgreSQL");
                config.database_url = Some(base);
                (db, Cleanup::Schema(schema))
            }
        };
        let statements = Arc::new(AtomicUsize::new(0));
        let directory_writes = Arc::new(AtomicUsize::new(0));
        let counter = statements.clone();
        let writes = directory_writes.clone();
        let log_sql = std::env::var_os("DIRGATE_TEST_LOG_SQL").is_some();
        db.set_metric_callback(move |info| {
            counter.fetch_add(1, Ordering::SeqCst);
            if is_directory_write(&info.statement.sql) {
                writes.fetch_add(1, Ordering::SeqCst);
            }
            if log_sql {
                eprintln!("SQL: {}", info.statement.sql);
            }
        });
        dirgate::db::migrate(&db).await.expect("migrate");
        let providers = config.provider_settings();
        let core = Core::with_schedule(
            db.clone(),
            config,
            providers,
            dirgate::crypto::SecretBox::new(&[42u8; 32]),
            quiet_schedule(),
        );
        Self {
            app: core.app.clone(),
            core: Some(core),
            db,
            backend,
            statements,
            directory_writes,
            cleanup: Some(cleanup),
        }
    }

    /// Points the app's provider clients at `settings` (the fake directory).
    pub fn use_providers(&mut self, settings: dirgate::providers::ProviderSettings) {
        self.use_providers_and_schedule(settings, quiet_schedule());
    }

    /// Points the app at `settings` and runs its scheduler on `schedule`.
    pub fn use_providers_and_schedule(
        &mut self,
        settings: dirgate::providers::ProviderSettings,
        schedule: dirgate::sync::schedule::Schedule,
    ) {
        let core = Core::with_schedule(
            self.db.clone(),
            (*self.app.config).clone(),
            settings,
            self.app.services.secrets.clone(),
            schedule,
        );
        self.app = core.app.clone();
        self.core = Some(core);
    }

    /// Stops the app's background work as a shutdown does (runs in flight end at a batch
    /// boundary) and waits for it.
    pub async fn stop_background(&mut self) {
        if let Some(core) = self.core.take() {
            core.stop().await;
        }
    }

    /// SQLite's plan of `statement` (`EXPLAIN QUERY PLAN`), one `detail` line per step.
    pub async fn sqlite_plan(&self, statement: sea_orm::Statement) -> Vec<String> {
        use sea_orm::ConnectionTrait;
        let explain = sea_orm::Statement {
            sql: format!("EXPLAIN QUERY PLAN {}", statement.sql),
            ..statement
        };
        self.db
            .query_all_raw(explain)
            .await
            .expect("explain")
            .iter()
            .map(|r| r.try_get::<String>("", "detail").expect("detail"))
            .collect()
    }

    /// Waits until no sync run is queued or running (at most 30 s).
    pub async fn settle_syncs(&self) {
        use entity::{enums::SyncRunStatus, sync_run};
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let busy = sync_run::Entity::find()
                .filter(
                    sync_run::Column::Status.is_in([SyncRunStatus::Queued, SyncRunStatus::Running]),
                )
                .count(&self.db)
                .await
                .expect("count runs");
            if busy == 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "syncs still running after 30 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Statements run since the last [`Fixture::reset_statements`].
    pub fn statements(&self) -> usize {
        self.statements.load(Ordering::SeqCst)
    }

    pub fn reset_statements(&self) {
        self.statements.store(0, Ordering::SeqCst);
        self.directory_writes.store(0, Ordering::SeqCst);
    }

    /// INSERT, UPDATE and DELETE statements on the imported directory (users, aliases, groups,
    /// memberships) since the last [`Fixture::reset_statements`].
    pub fn directory_writes(&self) -> usize {
        self.directory_writes.load(Ordering::SeqCst)
    }

    /// A caller holding a fresh token of `role`.
    pub async fn caller(&self, role: TokenRole) -> Authentication {
        let token = self.token(role).await;
        self.app.authenticate(Some(&token)).await
    }

    /// A fresh bearer token of `role`.
    pub async fn token(&self, role: TokenRole) -> String {
        tokens::create(&self.db, &Admin::cli(), "test", role)
            .await
            .expect("create token")
            .token
    }

    pub async fn admin(&self) -> Authentication {
        self.caller(TokenRole::Admin).await
    }

    pub async fn viewer(&self) -> Authentication {
        self.caller(TokenRole::Viewer).await
    }

    /// Runs a GraphQL request in-process and returns the whole response as JSON.
    pub async fn gql(&self, auth: &Authentication, query: &str, variables: Value) -> Value {
        let request = async_graphql::Request::new(query)
            .variables(async_graphql::Variables::from_json(variables));
        let response = self.app.execute(request, auth.clone()).await;
        serde_json::to_value(&response).expect("response JSON")
    }

    /// Runs a request that must succeed, and returns its `data`.
    pub async fn ok(&self, auth: &Authentication, query: &str, variables: Value) -> Value {
        let response = self.gql(auth, query, variables).await;
        assert!(
            response
                .get("errors")
                .is_none_or(|e| e.as_array().is_none_or(|a| a.is_empty())),
            "unexpected errors: {response:#}"
        );
        let refused = response["data"]
            .as_object()
            .into_iter()
            .flatten()
            .any(|(_, v)| v["userErrors"].as_array().is_some_and(|e| !e.is_empty()));
        assert!(!refused, "unexpected userErrors: {response:#}");
        response["data"].clone()
    }
}

/// A scheduler that stays out of the way of tests that do not test it: it first looks for
/// due syncs an hour after start.
pub fn quiet_schedule() -> dirgate::sync::schedule::Schedule {
    let mut schedule = dirgate::sync::schedule::Schedule::system(240);
    schedule.tick = std::time::Duration::from_secs(3600);
    schedule
}

/// The `extensions.code` of a response's first error.
pub fn error_code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error with a code: {response:#}"))
}

/// The first `userErrors` entry of the one mutation in `response`, as (code, field path
/// joined with dots): the mutation was refused for its input, answered with a payload whose
/// other fields are null, and no top-level error.
pub fn user_error(response: &Value) -> (String, String) {
    assert!(
        response["errors"].is_null(),
        "a refused input is a userErrors entry, not a top-level error: {response:#}"
    );
    let data = response["data"]
        .as_object()
        .unwrap_or_else(|| panic!("no data: {response:#}"));
    let (_, payload) = data
        .iter()
        .next()
        .unwrap_or_else(|| panic!("no mutation: {response:#}"));
    let error = &payload["userErrors"][0];
    let code = error["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a userErrors entry: {response:#}"));
    for (name, value) in payload.as_object().into_iter().flatten() {
        assert!(
            name == "userErrors" || value.is_null(),
            "a refused mutation returns nothing in `{name}`: {response:#}"
        );
    }
    let field = error["field"]
        .as_array()
        .map(|path| {
            path.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(".")
        })
        .unwrap_or_default();
    (code.to_owned(), field)
}

/// An empty variables object.
pub fn no_vars() -> Value {
    json!({})
}

fn rand_suffix() -> String {
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}_{nanos}", NEXT.fetch_add(1, Ordering::SeqCst))
}

fn is_directory_write(sql: &str) -> bool {
    let sql = sql.trim_start();
    let verb = ["INSERT", "UPDATE", "DELETE"]
        .iter()
        .any(|v| sql.len() >= v.len() && sql[..v.len()].eq_ignore_ascii_case(v));
    let head = &sql[..sql.len().min(60)];
    verb && [
        "directory_users",
        "user_aliases",
        "directory_groups",
        "group_memberships",
    ]
    .iter()
    .any(|t| head.contains(t))
}

/// A PostgreSQL database of a test's own (for tests that run the `dirgate` binary, which
/// migrates its database itself), dropped with [`ScratchDatabase::drop`].
pub struct ScratchDatabase {
    pub url: String,
    name: String,
    admin: sea_orm::DatabaseConnection,
}

impl ScratchDatabase {
    /// Creates `NAME_PID`, dropping a leftover of the same name first.
    pub async fn create(name: &str) -> Self {
        let base = postgres_url();
        let name = format!("{name}_{}", std::process::id());
        let admin = dirgate::db::connect(&base)
            .await
            .expect("PostgreSQL is required");
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            admin.execute_unprepared(&sql).await.unwrap();
        }
        let (prefix, _) = base.rsplit_once('/').unwrap();
        Self {
            url: format!("{prefix}/{name}"),
            name,
            admin,
        }
    }

    pub async fn drop(self) {
        self.admin
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
            .unwrap();
    }
}

/// Drops a test's PostgreSQL schema. Runs after the test, on its runtime, so rollbacks of
/// transactions the test left behind can finish first (a `Drop` impl would block them).
pub struct SchemaGuard(Option<String>);

impl SchemaGuard {
    pub async fn drop_schema(self) {
        let Some(schema) = self.0 else { return };
        let db = dirgate::db::connect(&postgres_url())
            .await
            .expect("PostgreSQL");
        // A sync the test left running may still hold locks in the schema (a deadlock with
        // the drop is possible): try again a few times.
        let mut attempts = 0;
        loop {
            match db
                .execute_unprepared(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .await
            {
                Ok(_) => break,
                Err(err) if attempts < 10 => {
                    attempts += 1;
                    eprintln!("dropping {schema} failed ({err}); trying again");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Err(err) => panic!("cannot drop test schema {schema}: {err}"),
            }
        }
        db.close().await.ok();
    }
}

impl Fixture {
    /// What to clean up once the test is over.
    pub fn guard(&self) -> SchemaGuard {
        match &self.cleanup {
            Some(Cleanup::Schema(schema)) => SchemaGuard(Some(schema.clone())),
            _ => SchemaGuard(None),
        }
    }
}

/// Declares, for each `async fn NAME(fx: Fixture)`, one test on SQLite and one on PostgreSQL:
/// `NAME::sqlite` and `NAME::postgres`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::support::Fixture::sqlite().await).await
            }

            #[tokio::test]
            async fn postgres() {
                let fx = $crate::support::Fixture::postgres().await;
                let guard = fx.guard();
                super::$name(fx).await;
                guard.drop_schema().await;
            }
        }
    )*};
}

/// An admin token made with the CLI (`dirgate token create`) in the database at `url`.
pub fn cli_admin_token(url: &str, dir: &std::path::Path, name: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dirgate"))
        .args(["token", "create", "--name", name, "--role", "admin"])
        .env("DATABASE_URL", url)
        .env("DIRGATE_DATA_DIR", dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "token create: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned()
}

/// Where a `dirgate serve` child process listens: the URL on the first line it prints. The
/// rest of its output is read on a thread, so it never writes to a closed pipe.
pub fn serve_base(child: &mut std::process::Child) -> String {
    use std::io::{BufRead, BufReader};
    let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    let first = lines.next().unwrap().unwrap();
    std::thread::spawn(move || lines.for_each(drop));
    // With `--log-format json` the line is a JSON object with the URL in `fields.url`.
    if let Ok(line) = serde_json::from_str::<Value>(&first) {
        return line["fields"]["url"]
            .as_str()
            .unwrap_or_else(|| panic!("serve prints where it listens: {first}"))
            .to_owned();
    }
    first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("serve prints where it listens: {first}"))
        .to_owned()
}
