//! Several `dirgate serve` processes on one PostgreSQL database: an integration's sync runs on
//! one process at a time (a request on the other process gets the same run), a process killed
//! mid-sync loses its lease and another marks the run failed — nothing removed — and syncs the
//! integration again; SIGTERM stops a running sync at a batch boundary, CANCELLED. And one
//! process on SQLite whose disk fills up mid-sync: said as such, nothing lost.

use crate::support::{ScratchDatabase, fake::FakeServer, quiet_schedule};
use base64::Engine;
use dirgate::{Config, Core, auth::Admin, directory::connect};
use entity::enums::{DirectoryKind, SyncRunStatus};
use fake_directory::{Fault, FaultAction};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};
use serde_json::{Value, json};
use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_dirgate");
const KEY: [u8; 32] = [7; 32];

/// A `dirgate serve` process and where it listens.
struct Serve {
    child: Child,
    base: String,
}

impl Serve {
    fn start(database_url: &str, fake: &str, dir: &std::path::Path) -> Self {
        Self::start_with(database_url, fake, dir, &[], Stdio::null())
    }

    /// [`Serve::start`] with more environment (overriding the defaults above) and its
    /// standard error.
    fn start_with(
        database_url: &str,
        fake: &str,
        dir: &std::path::Path,
        more: &[(&str, &str)],
        stderr: Stdio,
    ) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", database_url)
            .env("DIRGATE_DATA_DIR", dir)
            .env(
                "DIRGATE_ENCRYPTION_KEY",
                base64::engine::general_purpose::STANDARD.encode(KEY),
            )
            .env("DIRGATE_ENTRA_CLIENT_ID", "dirgate-entra")
            .env("DIRGATE_ENTRA_CLIENT_SECRET", "entra-secret")
            .env("DIRGATE_ENTRA_LOGIN_URL", fake)
            .env("DIRGATE_GRAPH_URL", fake)
            .env("DIRGATE_SYNC_LEASE_SECONDS", "2")
            .env("DIRGATE_SCHEDULER_TICK_SECONDS", "1")
            .env("DIRGATE_LOG", "warn")
            .envs(more.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start serve");
        let base = crate::support::serve_base(&mut child);
        Self { child, base }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    async fn sync(&self, token: &str, id: &Value) -> Value {
        let body: Value = reqwest::Client::new()
            .post(format!("{}/graphql", self.base))
            .bearer_auth(token)
            .json(&json!({
                "query": "mutation($id: ID!) { syncIntegration(input: {id: $id}) { syncRun { id status } userErrors { field message code } } }",
                "variables": { "id": id },
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["data"]["syncIntegration"]["syncRun"].clone()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn runs(db: &DatabaseConnection) -> Vec<entity::sync_run::Model> {
    entity::sync_run::Entity::find()
        .order_by_asc(entity::sync_run::Column::Id)
        .all(db)
        .await
        .unwrap()
}

/// Waits until `check` holds of the runs, or fails after `secs` seconds.
async fn wait_for(
    db: &DatabaseConnection,
    secs: u64,
    what: &str,
    check: impl Fn(&[entity::sync_run::Model]) -> bool,
) -> Vec<entity::sync_run::Model> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let all = runs(db).await;
        if check(&all) {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {all:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn pid_of(run: &entity::sync_run::Model) -> u32 {
    run.lease_owner
        .as_deref()
        .and_then(|o| o.split(':').nth(1))
        .and_then(|p| p.parse().ok())
        .expect("a run names its process")
}

/// A database of the test's own, migrated the real way, with an Entra integration of
/// `users` users connected (here: the processes only sync it), and an admin token.
struct Connected {
    scratch: ScratchDatabase,
    url: String,
    db: DatabaseConnection,
    dir: tempfile::TempDir,
    server: FakeServer,
    integration: entity::integration::Model,
    id: Value,
    token: String,
}

async fn connected(name: &str, users: usize) -> Connected {
    let scratch = ScratchDatabase::create(name).await;
    let url = scratch.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let Integrated {
        db,
        server,
        integration,
        id,
        token,
    } = integrated(&url, dir.path(), users).await;
    Connected {
        scratch,
        url,
        db,
        dir,
        server,
        integration,
        id,
        token,
    }
}

/// What [`integrated`] sets up.
struct Integrated {
    db: DatabaseConnection,
    server: FakeServer,
    integration: entity::integration::Model,
    id: Value,
    token: String,
}

/// The database at `url`, migrated the real way, with an Entra integration of `users` users
/// connected (not yet synced), and an admin token made with the CLI.
async fn integrated(url: &str, dir: &std::path::Path, users: usize) -> Integrated {
    let db = dirgate::db::connect(url).await.unwrap();
    dirgate::db::migrate(&db).await.unwrap();
    let server = FakeServer::start(users, 30).await;
    let core = Core::with_schedule(
        db.clone(),
        Config::defaults(),
        server.settings(),
        dirgate::crypto::SecretBox::new(&KEY),
        quiet_schedule(),
    );
    let app = core.app.clone();
    let new = connect::NewIntegration {
        kind: DirectoryKind::EntraId,
        name: "Contoso".into(),
        auto_assign_devices: false,
        sync_interval_minutes: None,
        scope: Default::default(),
        choose_scope: false,
    };
    let (_, auth_url) = connect::add(&db, &Admin::cli(), &app.services.oauth(), new)
        .await
        .unwrap();
    let back = crate::support::fake::authorize(&auth_url, "admin@contoso.example", true).await;
    let callback = connect::Callback {
        state: crate::support::fake::param(&back, "state").unwrap(),
        code: crate::support::fake::param(&back, "code"),
        ..Default::default()
    };
    let integration = connect::complete(
        &db,
        &dirgate::auth::Actor::cli(),
        &app.services.oauth(),
        callback,
    )
    .await
    .unwrap();
    core.stop().await;
    let id = json!(dirgate::graphql::ids::encode("Integration", integration.id).as_str());
    let token = crate::support::cli_admin_token(url, dir, "two");
    Integrated {
        db,
        server,
        integration,
        id,
        token,
    }
}

#[tokio::test]
async fn two_processes_share_a_database_and_take_over_a_killed_sync() {
    let Connected {
        scratch,
        url,
        db,
        dir,
        server,
        integration,
        id,
        token,
    } = connected("dirgate_two", 3000).await;

    // The group read hangs, so the first sync is caught mid-way.
    server.fake.inject(Fault {
        route: "/v1.0/groups/delta".into(),
        count: 1,
        action: FaultAction::Slow { millis: 30_000 },
    });
    let a = Serve::start(&url, &server.base, dir.path());
    let b = Serve::start(&url, &server.base, dir.path());
    // Both schedulers find the integration due; one run starts.
    let all = wait_for(&db, 20, "a running sync", |r| {
        r.iter().any(|r| r.status == SyncRunStatus::Running)
    })
    .await;
    let first = all
        .iter()
        .find(|r| r.status == SyncRunStatus::Running)
        .unwrap()
        .clone();
    let (owner, other) = if pid_of(&first) == a.child.id() {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(pid_of(&first), owner.child.id());
    // Asking the other process gives the same run.
    let asked = other.sync(&token, &id).await;
    assert_eq!(
        asked["id"],
        dirgate::graphql::ids::encode("SyncRun", first.id).as_str(),
        "one run in flight, whichever process is asked"
    );
    wait_for(&db, 20, "the group read", |_| {
        server.fake.requests("/v1.0/groups/delta") >= 1
    })
    .await;

    // Killed mid-sync: the other process takes over once the lease (2 s) expires.
    let mut owner = owner;
    owner.child.kill().unwrap();
    owner.child.wait().unwrap();
    let all = wait_for(&db, 30, "the takeover to finish", |r| {
        r.iter()
            .any(|r| r.id != first.id && r.status == SyncRunStatus::Succeeded)
    })
    .await;
    let failed = all.iter().find(|r| r.id == first.id).unwrap();
    assert_eq!(failed.status, SyncRunStatus::Failed, "{failed:#?}");
    let why = failed.error.as_deref().unwrap();
    assert!(
        why.contains("lease") && why.contains("nothing was removed"),
        "{why}"
    );
    assert_eq!(failed.users_removed, 0);
    let second = all
        .iter()
        .find(|r| r.id != first.id && r.status == SyncRunStatus::Succeeded)
        .unwrap();
    assert_eq!(pid_of(second), other.child.id());
    let users = entity::directory_user::Entity::find()
        .filter(entity::directory_user::Column::IntegrationId.eq(integration.id))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(users.len(), 3000, "the survivor imported everything");

    // SIGTERM while a sync waits on the provider: it stops at the next batch boundary.
    server.fake.inject(Fault {
        route: "/v1.0/groups/delta".into(),
        count: 1,
        action: FaultAction::Slow { millis: 2_000 },
    });
    let before = server.fake.requests("/v1.0/groups/delta");
    let run = other.sync(&token, &id).await;
    wait_for(&db, 20, "the second group read", |_| {
        server.fake.requests("/v1.0/groups/delta") > before
    })
    .await;
    other.signal("-TERM");
    let mut other = other;
    // Wait without blocking the runtime: the fake directory is served on it.
    let exit = loop {
        if let Some(exit) = other.child.try_wait().unwrap() {
            break exit;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "serve exits cleanly on SIGTERM: {exit}");
    let stopped = runs(&db)
        .await
        .into_iter()
        .find(|r| run["id"] == dirgate::graphql::ids::encode("SyncRun", r.id).as_str())
        .unwrap();
    assert_eq!(stopped.status, SyncRunStatus::Cancelled, "{stopped:#?}");
    assert!(
        stopped.error.as_deref().unwrap().contains("batch boundary"),
        "{stopped:#?}"
    );
    drop(db);
    scratch.drop().await;
}

/// A `syncRunUpdated` subscriber on a process's WebSocket endpoint.
struct Subscriber {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Subscriber {
    async fn open(base: &str, token: &str) -> Self {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http};
        let ws_url = format!("{}/graphql/ws", base.replacen("http://", "ws://", 1));
        let mut request = ws_url.into_client_request().unwrap();
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            http::HeaderValue::from_static("graphql-transport-ws"),
        );
        let mut ws = tokio_tungstenite::connect_async(request).await.unwrap().0;
        let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
        ws.send(Message::text(init.to_string())).await.unwrap();
        let ack = ws.next().await.unwrap().unwrap();
        assert!(ack.to_text().unwrap().contains("connection_ack"), "{ack}");
        let subscribe = json!({
            "id": "1", "type": "subscribe",
            "payload": { "query": "subscription { syncRunUpdated { id status pagesRead usersCreated } }" }
        });
        ws.send(Message::text(subscribe.to_string())).await.unwrap();
        Self { ws }
    }

    /// The next run announced, or `None` after `secs` seconds of silence.
    async fn next(&mut self, secs: u64) -> Option<Value> {
        use futures_util::StreamExt;
        loop {
            let message = tokio::time::timeout(Duration::from_secs(secs), self.ws.next())
                .await
                .ok()??
                .ok()?;
            let Ok(text) = message.to_text() else {
                continue;
            };
            let Ok(value) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            if value["type"] == "next" {
                return Some(value["payload"]["data"]["syncRunUpdated"].clone());
            }
        }
    }

    /// Every announcement of run `id` until it ends (SUCCEEDED, FAILED, HELD or CANCELLED).
    async fn until_end_of(&mut self, id: &Value) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let run = self
                .next(30)
                .await
                .unwrap_or_else(|| panic!("the run did not end in time; saw {seen:#?}"));
            if &run["id"] != id {
                continue;
            }
            let ended = !matches!(run["status"].as_str(), Some("QUEUED" | "RUNNING"));
            seen.push(run);
            if ended {
                return seen;
            }
        }
    }
}

/// Ends the connections that `LISTEN` on this database (both processes' listeners).
async fn cut_listeners(db: &DatabaseConnection) -> u64 {
    use sea_orm::{ConnectionTrait, Statement};
    let cut = db
        .query_all_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid()",
        ))
        .await
        .unwrap();
    cut.len() as u64
}

#[tokio::test]
async fn a_subscriber_on_one_process_sees_every_change_of_a_run_on_another() {
    let Connected {
        scratch,
        url,
        db,
        dir,
        server,
        integration,
        id,
        token,
    } = connected("dirgate_live", 3000).await;
    // Nothing scheduled: the run starts where it is asked for.
    let later = chrono::Utc::now() + chrono::Duration::days(1);
    entity::integration::Entity::update_many()
        .col_expr(
            entity::integration::Column::NextSyncAt,
            sea_orm::sea_query::Expr::value(later),
        )
        .filter(entity::integration::Column::Id.eq(integration.id))
        .exec(&db)
        .await
        .unwrap();
    let a = Serve::start(&url, &server.base, dir.path());
    let b = Serve::start(&url, &server.base, dir.path());
    let mut subscriber = Subscriber::open(&a.base, &token).await;
    // Slow pages (3,000 users: four pages of Graph delta), so progress shows between them.
    server.fake.inject(Fault {
        route: "/v1.0/users/delta".into(),
        count: 4,
        action: FaultAction::Slow { millis: 300 },
    });
    let run = b.sync(&token, &id).await;
    let seen = subscriber.until_end_of(&run["id"]).await;

    let ran_on = runs(&db).await.into_iter().last().unwrap();
    assert_eq!(pid_of(&ran_on), b.child.id(), "the run executed on B");
    let statuses: Vec<&str> = seen.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.last(), Some(&"SUCCEEDED"), "{seen:#?}");
    assert!(statuses.contains(&"RUNNING"), "{seen:#?}");
    let order = |s: &str| {
        ["QUEUED", "RUNNING", "SUCCEEDED"]
            .iter()
            .position(|x| *x == s)
    };
    assert!(
        statuses.windows(2).all(|w| order(w[0]) <= order(w[1])),
        "states in order: {statuses:?}"
    );
    let pages: Vec<i64> = seen
        .iter()
        .filter(|r| r["status"] == "RUNNING")
        .map(|r| r["pagesRead"].as_i64().unwrap())
        .collect();
    assert!(
        pages.windows(2).all(|w| w[0] <= w[1]),
        "pagesRead never goes back: {pages:?}"
    );
    let distinct: std::collections::BTreeSet<i64> = pages.iter().copied().collect();
    assert!(
        distinct.len() >= 3,
        "pagesRead rises while the run is RUNNING: {pages:?}"
    );
    assert_eq!(seen.last().unwrap()["usersCreated"], 3000);

    // A listener whose connection is cut listens again; the subscription goes on.
    assert!(cut_listeners(&db).await >= 2, "both processes listen");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = b.sync(&token, &id).await;
    let seen = subscriber.until_end_of(&again["id"]).await;
    assert_eq!(
        seen.last().unwrap()["status"],
        "SUCCEEDED",
        "after the reconnect: {seen:#?}"
    );

    drop((a, b));
    drop(db);
    scratch.drop().await;
}

/// A tmpfs of `size` mounted at a directory of its own, unmounted when dropped. Mounting needs
/// root (or CAP_SYS_ADMIN), as CI has.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            mounted,
            "this test mounts a small tmpfs for the database: it needs root or CAP_SYS_ADMIN"
        );
        Self { dir }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Writes a file until the disk is full; returns it.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 << 10];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.flush();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// `query` against a process, with its HTTP status and headers.
async fn post(
    base: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> (u16, Option<String>, Value) {
    let res = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, res.json().await.unwrap())
}

async fn readyz(base: &str) -> u16 {
    reqwest::get(format!("{base}/readyz"))
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Polls `check` every 100 ms until it holds, or fails after `secs` seconds.
async fn eventually<F: Future<Output = bool>>(secs: u64, what: &str, check: impl Fn() -> F) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_said_as_such_and_the_next_sync_loses_nothing() {
    let disk = SmallDisk::mount("64m");
    let url = format!(
        "sqlite://{}?mode=rwc",
        disk.path().join("dirgate.db").display()
    );
    let Integrated {
        db,
        server,
        id,
        token,
        ..
    } = integrated(&url, disk.path(), 6_000).await;
    // Each Graph call takes a while, so the disk fills while users are being written.
    server.fake.set_latency(Duration::from_millis(300));
    let mut serve = Serve::start_with(
        &url,
        &server.base,
        disk.path(),
        &[
            ("DIRGATE_SYNC_LEASE_SECONDS", "90"),
            ("DIRGATE_LOG", "info"),
            ("DIRGATE_LOG_FORMAT", "json"),
        ],
        Stdio::piped(),
    );
    // The process's log, a JSON object a line.
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    {
        use std::io::BufRead;
        let (stderr, log) = (serve.child.stderr.take().unwrap(), log.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                log.lock().unwrap().push(value);
            }
        });
    }
    let logged = |message: &str| -> Vec<Value> {
        log.lock()
            .unwrap()
            .iter()
            .filter(|l| l["fields"]["message"] == message)
            .cloned()
            .collect()
    };
    assert_eq!(readyz(&serve.base).await, 200);
    serve.sync(&token, &id).await;
    wait_for(&db, 60, "the first users written", |runs| {
        runs.last().is_some_and(|r| r.users_created > 0)
    })
    .await;
    let filler = disk.fill();
    // The sync stops at its next write that needs room; its end cannot be saved yet.
    eventually(60, "the run to stop for the disk", || {
        let stopped = logged("sync run finished");
        async move { !stopped.is_empty() }
    })
    .await;
    let stopped = &logged("sync run finished")[0];
    assert_eq!(stopped["fields"]["status"], "Failed", "{stopped}");
    assert!(
        stopped["fields"]["error"]
            .as_str()
            .unwrap()
            .contains("disk is full"),
        "{stopped}"
    );

    // Writes are refused, typed, and said as such. A small write may still fit in the space
    // SQLite's write-ahead log already holds, so renames go on until the storage refuses one;
    // none may fail any other way.
    let rename = "mutation($id: ID!, $name: String!) { renameIntegration(input: {id: $id, name: $name}) { integration { name } userErrors { field message code } } }";
    let mut refused = None;
    for i in 0..500 {
        let name = format!("Contoso {}", i % 2);
        let (status, retry_after, body) = post(
            &serve.base,
            &token,
            rename,
            json!({ "id": id, "name": name }),
        )
        .await;
        assert_eq!(status, 200, "a field error: {body}");
        if body["errors"].is_null() {
            continue;
        }
        refused = Some((retry_after, body));
        break;
    }
    let (retry_after, body) = refused.expect("a write is refused while the disk is full");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAVAILABLE",
        "{body}"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("disk is full"),
        "{body}"
    );
    assert!(retry_after.is_some(), "Retry-After with UNAVAILABLE");
    assert_eq!(
        readyz(&serve.base).await,
        503,
        "not ready while writes fail"
    );
    let (_, _, read) = post(
        &serve.base,
        &token,
        "{ integrations { totalCount } }",
        json!({}),
    )
    .await;
    assert_eq!(
        read["data"]["integrations"]["totalCount"], 1,
        "reads go on: {read}"
    );

    // Space comes back: the run ends with its own cause, readiness returns, nothing is lost.
    std::fs::remove_file(&filler).unwrap();
    let runs = wait_for(&db, 60, "the run to end naming the disk", |runs| {
        runs.last().is_some_and(|r| {
            r.status == SyncRunStatus::Failed
                && r.error
                    .as_deref()
                    .is_some_and(|e| e.contains("disk is full"))
        })
    })
    .await;
    let failed = runs.last().unwrap();
    assert!(failed.users_created > 0, "{failed:?}");
    let base = serve.base.clone();
    eventually(30, "/readyz to answer 200 again", || {
        let base = base.clone();
        async move { readyz(&base).await == 200 }
    })
    .await;
    let failed = failed.id;
    serve.sync(&token, &id).await;
    let runs = wait_for(&db, 120, "the next sync", |runs| {
        runs.iter()
            .any(|r| r.id > failed && r.status == SyncRunStatus::Succeeded)
    })
    .await;
    assert!(runs.iter().all(|r| r.users_removed == 0), "{runs:?}");
    let users = entity::directory_user::Entity::find()
        .filter(entity::directory_user::Column::IntegrationId.eq(runs[0].integration_id))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(users, 6_000, "every user, none lost");
    let (_, _, renamed) = post(
        &serve.base,
        &token,
        rename,
        json!({ "id": id, "name": "Contoso EU" }),
    )
    .await;
    assert_eq!(
        renamed["data"]["renameIntegration"]["integration"]["name"], "Contoso EU",
        "{renamed}"
    );
    // The trouble and its end were each said once, however often the workers met it.
    assert_eq!(logged("the database refuses writes").len(), 1);
    assert_eq!(logged("the database takes writes again").len(), 1);
    drop(serve);
    db.close().await.ok();
}
