//! What the benchmarks share: the fake directory in a child process (so the figures are
//! dirgate's own), an Entra integration connected the way an admin would, and a sync waited
//! for.

#![allow(dead_code)]

use dirgate::{
    App,
    auth::Admin,
    directory::{IntegrationId, connect},
};
use entity::enums::{DirectoryKind, SyncRunStatus, SyncTrigger};
use fake_directory::{Directory, Fake};
use sea_orm::{DatabaseConnection, EntityTrait};
use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The fake directory's options, shared by the benchmarks that sync from it (clap: a
/// mistyped option is an error, `--help` lists them, and nothing runs on either).
#[derive(clap::Args, Debug, Clone)]
pub struct FakeArgs {
    /// Every Directory API call of the fake takes this long, as at a real provider (Graph and
    /// the Admin SDK answer in roughly 50–300 ms).
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub latency_ms: u64,
    /// The fake answers 429 (`Retry-After: 1`) to calls past this many in flight (0: never).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub quota: usize,
    /// Serve the fake directory (the benchmark starts itself so, as a child process).
    #[arg(long, hide = true)]
    pub serve_fake: bool,
}

/// When this process was started as the fake directory (`--serve-fake`), serves a directory
/// of `users` and `groups` and never returns.
pub async fn serve_fake_if_asked(fake: &FakeArgs, users: usize, groups: usize) -> BenchResult<()> {
    serve_shaped_fake_if_asked(fake, users, groups, |_| {}).await
}

/// [`serve_fake_if_asked`], the generated directory changed by `shape` first.
pub async fn serve_shaped_fake_if_asked(
    fake: &FakeArgs,
    users: usize,
    groups: usize,
    shape: impl FnOnce(&mut Directory),
) -> BenchResult<()> {
    if fake.serve_fake {
        let mut directory = Directory::generate(7, users, groups);
        shape(&mut directory);
        let served = Fake::new(directory);
        served.set_latency(Duration::from_millis(fake.latency_ms));
        served.set_quota(Some(fake.quota).filter(|n| *n > 0));
        let addr = served.spawn("127.0.0.1:0".parse()?).await?;
        println!("http://{addr}");
        tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
    }
    Ok(())
}

/// The fake directory in a child process (this executable with `--serve-fake`), and its URL.
pub fn spawn_fake(fake: &FakeArgs, users: usize, groups: usize) -> BenchResult<(Child, String)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "--serve-fake",
            "--users",
            &users.to_string(),
            "--groups",
            &groups.to_string(),
            "--latency-ms",
            &fake.latency_ms.to_string(),
            "--quota",
            &fake.quota.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()?;
    let base = BufReader::new(child.stdout.take().ok_or("no stdout")?)
        .lines()
        .next()
        .ok_or("the fake did not start")??;
    Ok((child, base))
}

/// Adds an Entra integration and signs in as the fake tenant's admin.
pub async fn connect_entra(
    db: &DatabaseConnection,
    app: &App,
) -> BenchResult<entity::integration::Model> {
    connect_as(db, app, DirectoryKind::EntraId).await
}

/// Adds an integration of `kind` (Entra: contoso.example, Google: fabrikam.example) and signs
/// in as the fake tenant's admin.
pub async fn connect_as(
    db: &DatabaseConnection,
    app: &App,
    kind: DirectoryKind,
) -> BenchResult<entity::integration::Model> {
    connect_scoped(db, app, kind, Default::default()).await
}

/// [`connect_as`], the integration importing `scope`.
pub async fn connect_scoped(
    db: &DatabaseConnection,
    app: &App,
    kind: DirectoryKind,
    scope: dirgate::providers::scope::Scope,
) -> BenchResult<entity::integration::Model> {
    let account = match kind {
        DirectoryKind::GoogleWorkspace => "admin@fabrikam.example",
        _ => "admin@contoso.example",
    };
    let new = connect::NewIntegration {
        kind,
        name: "Bench".into(),
        auto_assign_devices: false,
        sync_interval_minutes: None,
        scope,
        choose_scope: false,
    };
    let (integration, auth_url) =
        connect::add(db, &Admin::cli(), &app.services.oauth(), new).await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let back = http
        .get(format!(
            "{auth_url}&fake_account={account}&fake_decision=accept"
        ))
        .send()
        .await?;
    let location = url::Url::parse(back.headers()["location"].to_str()?)?;
    let get = |k: &str| {
        location
            .query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    let callback = connect::Callback {
        state: get("state").unwrap_or_default(),
        code: get("code"),
        ..Default::default()
    };
    Ok(connect::complete(
        db,
        &dirgate::auth::Actor::cli(),
        &app.services.oauth(),
        callback,
    )
    .await
    .unwrap_or(integration))
}

/// Asks for a sync and waits for it; prints what it did under `label` and returns seconds.
pub async fn timed_sync(
    app: &App,
    db: &DatabaseConnection,
    integration: i64,
    label: &str,
) -> BenchResult<f64> {
    let started = Instant::now();
    let run = app
        .sync
        .request(IntegrationId(integration), SyncTrigger::Manual)
        .await?;
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = entity::sync_run::Entity::find_by_id(run.id)
            .one(db)
            .await?
            .ok_or("run gone")?;
        if !matches!(now.status, SyncRunStatus::Queued | SyncRunStatus::Running) {
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{label}: {secs:.2} s, {:?}; created {} updated {} removed {} groups {} (pages {}, retries {}, throttled for {:.1} s){}",
                now.status,
                now.users_created,
                now.users_updated,
                now.users_removed,
                now.groups_created,
                now.pages_read,
                now.retries,
                now.throttled_ms as f64 / 1000.0,
                now.error
                    .map(|e| format!(" error: {e}"))
                    .unwrap_or_default()
            );
            return Ok(secs);
        }
    }
}

/// A migrated database for the benchmark `name`: `DATABASE_URL` (PostgreSQL: in a schema of
/// its own, returned to drop after) or SQLite in `dir`; with its URL.
pub async fn bench_database(
    name: &str,
    dir: &std::path::Path,
) -> BenchResult<(DatabaseConnection, String, Option<String>)> {
    use sea_orm::ConnectionTrait;
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()));
    let (db, schema) = if url.starts_with("postgres") {
        let schema = format!("{name}_{}", std::process::id());
        let admin = dirgate::db::connect(&url).await?;
        admin
            .execute_unprepared(&format!("CREATE SCHEMA {schema}"))
            .await?;
        (
            dirgate::db::connect_with(&url, Some(&schema)).await?,
            Some(schema),
        )
    } else {
        (dirgate::db::connect(&url).await?, None)
    };
    dirgate::db::migrate(&db).await?;
    Ok((db, url, schema))
}

/// Points `config`'s Entra ID and Google Workspace providers at the fake at `base`.
pub fn use_fake(config: &mut dirgate::Config, base: &str) {
    config.entra_client_id = "bench".into();
    config.entra_client_secret = "bench".into();
    config.entra_login_url = base.to_owned();
    config.graph_url = base.to_owned();
    config.google_client_id = "bench".into();
    config.google_client_secret = "bench".into();
    config.google_auth_url = format!("{base}/o/oauth2/v2/auth");
    config.google_token_url = format!("{base}/token");
    config.google_directory_url = base.to_owned();
}
