//! Several `dirgate serve` processes on one PostgreSQL database: an integration's sync runs on
//! one process at a time (a request on the other process gets the same run), a process killed
//! mid-sync loses its lease and another marks the run failed — nothing removed — and syncs the
//! integration again; SIGTERM stops a running sync at a batch boundary, CANCELLED.

use crate::support::{ScratchDatabase, fake::FakeServer, quiet_schedule};
use base64::Engine;
use dirgate::{Config, Core, auth::Admin, directory::connect};
use entity::enums::{DirectoryKind, SyncRunStatus};
use fake_directory::{Fault, FaultAction};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
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
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
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
                "query": "mutation($id: ID!) { syncIntegration(id: $id) { id status } }",
                "variables": { "id": id },
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["data"]["syncIntegration"].clone()
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

#[tokio::test]
async fn two_processes_share_a_database_and_take_over_a_killed_sync() {
    // A database of the test's own, migrated the real way.
    let scratch = ScratchDatabase::create("dirgate_two").await;
    let url = scratch.url.clone();
    let db = dirgate::db::connect(&url).await.unwrap();
    dirgate::db::migrate(&db).await.unwrap();
    let dir = tempfile::tempdir().unwrap();

    // The integration is connected here (the processes only sync it).
    let server = FakeServer::start(3000, 30).await;
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
    let out = Command::new(BIN)
        .args(["token", "create", "--name", "two", "--role", "admin"])
        .env("DATABASE_URL", &url)
        .env("DIRGATE_DATA_DIR", dir.path())
        .output()
        .unwrap();
    let token = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();

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
