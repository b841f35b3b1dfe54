//! The sync benchmark: a full sync, an unchanged re-sync and a sync after 1% of users
//! changed, against the fake directory over loopback (in a child process, so the figures are
//! dirgate's own), plus the time to fetch and parse the same pages without writing.
//!
//! ```sh
//! cargo run --release --example sync_bench -- --users 100000 --groups 5000
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo run --release --example sync_bench
//! cargo run --release --example sync_bench -- --users 5000 --groups 500 --latency-ms 100
//! ```
//!
//! `--latency-ms N` makes every Directory API call of the fake take N ms, as at a real
//! provider (Graph and the Admin SDK answer in roughly 50–300 ms).

#[path = "common/mod.rs"]
mod common;

/// The allocator `dirgate` runs with (`src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use common::{BenchResult, arg};
use dirgate::{
    Config, Core,
    directory::connect,
    providers::{DirectoryProvider, entra::Entra, http::Session, http_client},
    sync::schedule::Schedule,
};
use entity::enums::DirectoryKind;
use sea_orm::{ConnectionTrait, EntityTrait, QuerySelect};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    common::serve_fake_if_asked().await?;
    let users = arg("--users", 100_000);
    let groups = arg("--groups", 5_000);
    let (mut child, base) = common::spawn_fake(users, groups)?;
    let result = run(&base, users, groups).await;
    child.kill().ok();
    result
}

async fn run(base: &str, users: usize, groups: usize) -> BenchResult<()> {
    let dir = std::env::temp_dir().join(format!("dirgate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut config = Config::defaults();
    config.data_dir = dir.clone();
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()));
    let schema = format!("bench_{}", std::process::id());
    let db = if url.starts_with("postgres") {
        let admin = dirgate::db::connect(&url).await?;
        admin
            .execute_unprepared(&format!("CREATE SCHEMA {schema}"))
            .await?;
        dirgate::db::connect_with(&url, Some(&schema)).await?
    } else {
        dirgate::db::connect(&url).await?
    };
    dirgate::db::migrate(&db).await?;
    config.entra_client_id = "bench".into();
    config.entra_client_secret = "bench".into();
    config.entra_login_url = base.to_owned();
    config.graph_url = base.to_owned();
    let providers = config.provider_settings();
    let mut schedule = Schedule::system(240);
    schedule.tick = Duration::from_secs(24 * 3600);
    let core = Core::with_schedule(
        db.clone(),
        config,
        providers,
        dirgate::crypto::SecretBox::new(&[3; 32]),
        schedule,
    );
    let app = core.app.clone();

    // Connect the Entra tenant the way an admin would.
    let integration = common::connect_entra(&db, &app).await?;
    println!(
        "database: {}",
        if url.starts_with("postgres") {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    println!("directory: {users} users, {groups} groups, ~{users} memberships");

    // Fetch and parse only.
    let grant_session = {
        let row = entity::integration::Entity::find_by_id(integration.id)
            .one(&db)
            .await?
            .ok_or("gone")?;
        let token = connect::open_refresh_token(&app.services.secrets, &row)?;
        Arc::new(Session::new(
            http_client(),
            app.services.providers.clone(),
            DirectoryKind::EntraId,
            integration.tenant.clone(),
            token,
        ))
    };
    // The same reads a full sync makes: Graph delta queries, members inline.
    let graph = Entra::new(grant_session.clone(), base, 999);
    let provider = graph.delta();
    let started = Instant::now();
    let (mut n_users, mut n_groups, mut n_members) = (0, 0, 0);
    let mut cursor = None;
    loop {
        let page = provider.users_page(cursor).await?;
        n_users += page.items.len();
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    let mut group_ids = std::collections::HashSet::new();
    let mut cursor = None;
    loop {
        let page = provider.groups_page(cursor).await?;
        group_ids.extend(page.items.iter().map(|g| g.external_id.clone()));
        n_members += page
            .items
            .iter()
            .map(|g| g.members.as_ref().map_or(0, Vec::len))
            .sum::<usize>();
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    n_groups += group_ids.len();
    let fetch = started.elapsed();
    println!(
        "fetch and parse only: {:.2} s ({n_users} users, {n_groups} groups, {n_members} memberships); peak RSS so far {:.0} MB",
        fetch.as_secs_f64(),
        peak_rss_mb()
    );
    // The benchmark's own session rotated the refresh token: store it for the engine.
    if let Some(rotated) = grant_session.take_rotated_refresh_token() {
        let sealed = connect::seal_refresh_token(&app.services.secrets, integration.id, &rotated);
        let mut row: entity::integration::ActiveModel =
            entity::integration::Entity::find_by_id(integration.id)
                .one(&db)
                .await?
                .ok_or("gone")?
                .into();
        row.refresh_token_enc = sea_orm::Set(Some(sealed));
        sea_orm::ActiveModelTrait::update(row, &db).await?;
    }

    let timed_sync = |label: &'static str| {
        let (app, db) = (app.clone(), db.clone());
        async move { common::timed_sync(&app, &db, integration.id, label).await }
    };
    let full = timed_sync("full sync").await?;
    println!("peak RSS after the full sync: {:.0} MB", peak_rss_mb());
    let unchanged = timed_sync("unchanged re-sync (delta)").await?;
    // The daily full reconciliation of an unchanged directory (and what every Google re-sync
    // is): forget the delta links so the engine reads everything again.
    entity::integration::Entity::update_many()
        .col_expr(
            entity::integration::Column::DeltaState,
            sea_orm::sea_query::Expr::value(Option::<String>::None),
        )
        .exec(&db)
        .await?;
    let unchanged_full = timed_sync("unchanged re-sync (full read)").await?;
    let rss_after_syncs = peak_rss_mb();
    // Change 1% of the users, through the fake's control API.
    let key = integration.tenant.clone().ok_or("no tenant")?;
    let ids: Vec<String> = entity::directory_user::Entity::find()
        .select_only()
        .column(entity::directory_user::Column::ExternalId)
        .into_tuple()
        .all(&db)
        .await?;
    let client = reqwest::Client::new();
    for id in ids.iter().step_by(100) {
        client
            .patch(format!("{base}/_control/tenants/{key}/users/{id}"))
            .json(&serde_json::json!({ "department": "Changed" }))
            .send()
            .await?;
    }
    let delta = timed_sync("sync after 1% changed").await?;
    println!(
        "unchanged re-sync / full: {:.1}% (delta), {:.0}% (full read)",
        unchanged / full * 100.0,
        unchanged_full / full * 100.0
    );
    println!("1% sync (delta) / full: {:.1}%", delta / full * 100.0);
    println!(
        "dirgate's own overhead in the full sync: {:.2} s beyond fetch and parse",
        full - fetch.as_secs_f64()
    );
    println!(
        "peak RSS (dirgate and the benchmark, not the fake): {rss_after_syncs:.0} MB after the full and unchanged syncs, {:.0} MB at the end",
        peak_rss_mb()
    );
    core.stop().await;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
