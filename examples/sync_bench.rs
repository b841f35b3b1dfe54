//! The sync benchmark: a full sync, an unchanged re-sync and a sync after 1% of users
//! changed, against the fake directory over loopback (in a child process, so the figures are
//! dirgate's own), plus the time to fetch and parse the same pages without writing; last, the
//! integration's deletion (an event per user and group) with the memory it took.
//!
//! ```sh
//! cargo run --release --example sync_bench -- --users 100000 --groups 5000
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo run --release --example sync_bench
//! cargo run --release --example sync_bench -- --users 5000 --groups 500 --latency-ms 100
//! cargo run --release --example sync_bench -- --provider google --users 5000 --groups 500 --latency-ms 100
//! ```
//!
//! - `--provider entra|google`: which of the fake's tenants to sync (default entra: Graph
//!   delta, members inline; google: the Directory API, a member list per group).
//! - `--latency-ms N`: every Directory API call of the fake takes N ms, as at a real provider
//!   (Graph and the Admin SDK answer in roughly 50–300 ms).
//! - `--quota N`: the fake answers 429 (`Retry-After: 1`) to calls past N in flight.
//! - `--concurrency N`: dirgate's calls in flight per integration, at most (default: the
//!   provider's, `--google-concurrency` / `--entra-concurrency`).
//! - `RUST_LOG=dirgate::sync=debug`: when each phase of a full sync ended.
//! - `--full-only`: stop after the full sync (to profile it alone).

#[path = "common/mod.rs"]
mod common;

/// The allocator `dirgate` runs with (`src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use common::{BenchResult, FakeArgs};
use dirgate::{
    Config, Core,
    directory::connect,
    providers::{DirectoryProvider, entra::Entra, google::Google, http::Session, http_client},
    sync::schedule::Schedule,
};
use entity::enums::DirectoryKind;
use sea_orm::{ConnectionTrait, EntityTrait, QuerySelect};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

fn peak_rss_mb() -> f64 {
    status_mb("VmHWM:")
}

/// A figure of `/proc/self/status`, in MB.
fn status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// The sync benchmark (see the top of `examples/sync_bench.rs`).
#[derive(Parser, Debug)]
struct Args {
    /// Users in the fake directory.
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// Groups in the fake directory.
    #[arg(long, default_value_t = 5_000)]
    groups: usize,
    /// Which of the fake's tenants to sync.
    #[arg(long, value_enum, default_value_t = Provider::Entra)]
    provider: Provider,
    /// dirgate's calls in flight per integration, at most (0: the provider's default).
    #[arg(long, default_value_t = 0)]
    concurrency: usize,
    /// Stop after the full sync (to profile it alone).
    #[arg(long)]
    full_only: bool,
    #[command(flatten)]
    fake: FakeArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Provider {
    /// Graph delta, members inline.
    Entra,
    /// The Directory API, a member list per group.
    Google,
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    // As `dirgate` runs (`src/main.rs`).
    dirgate::memory::tune_allocator();
    let args = Args::parse();
    common::serve_fake_if_asked(&args.fake, args.users, args.groups).await?;
    // `RUST_LOG=dirgate::sync=debug` shows when each phase of a full sync ended.
    if let Ok(filter) = std::env::var("RUST_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let (mut child, base) = common::spawn_fake(&args.fake, args.users, args.groups)?;
    let result = run(&base, &args).await;
    child.kill().ok();
    result
}

/// Reads each listing alone, page after page: the users chain and the groups chain.
async fn chains<P: DirectoryProvider>(provider: &P) -> BenchResult<(Duration, Duration)> {
    let started = Instant::now();
    let mut cursor = None;
    while let Some(next) = provider.users_page(cursor.take()).await?.next {
        cursor = Some(next);
    }
    let users = started.elapsed();
    let started = Instant::now();
    let mut cursor = None;
    while let Some(next) = provider.groups_page(cursor.take()).await?.next {
        cursor = Some(next);
    }
    Ok((users, started.elapsed()))
}

async fn run(base: &str, args: &Args) -> BenchResult<()> {
    let (users, groups) = (args.users, args.groups);
    let kind = match args.provider {
        Provider::Google => DirectoryKind::GoogleWorkspace,
        Provider::Entra => DirectoryKind::EntraId,
    };
    let dir = std::env::temp_dir().join(format!("dirgate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut config = Config::defaults();
    config.data_dir = dir.clone();
    let (db, url, _schema) = common::bench_database("bench", &dir).await?;
    common::use_fake(&mut config, base);
    let concurrency = args.concurrency;
    if concurrency > 0 {
        config.google_concurrency = concurrency;
        config.entra_concurrency = concurrency;
    }
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

    // Connect the tenant the way an admin would.
    let integration = common::connect_as(&db, &app, kind).await?;
    println!(
        "database: {}",
        if url.starts_with("postgres") {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    println!(
        "directory: {kind:?}, {users} users, {groups} groups, ~{users} memberships, {} ms per provider call",
        args.fake.latency_ms
    );

    // Fetch and parse only: each listing read alone, one page after another, as its own chain.
    let grant_session = {
        let row = entity::integration::Entity::find_by_id(integration.id)
            .one(&db)
            .await?
            .ok_or("gone")?;
        let token = connect::open_refresh_token(&app.services.secrets, &row)?;
        Arc::new(Session::new(
            http_client(),
            app.services.providers.clone(),
            kind,
            integration.tenant.clone(),
            token,
        ))
    };
    let (users_chain, groups_chain) = if kind == DirectoryKind::GoogleWorkspace {
        // The same reads a full sync makes, but for the member lists.
        chains(&Google::new(grant_session.clone(), base, 500)).await?
    } else {
        // The same reads a full sync makes: Graph delta queries, members inline.
        chains(&Entra::new(grant_session.clone(), base, 999).delta()).await?
    };
    let fetch = users_chain.max(groups_chain);
    println!(
        "fetch and parse only: users {:.2} s, groups {:.2} s (each alone, page after page); peak RSS so far {:.0} MB",
        users_chain.as_secs_f64(),
        groups_chain.as_secs_f64(),
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
    println!(
        "full sync / the longer listing chain: {:.2}x",
        full / fetch.as_secs_f64()
    );
    println!("peak RSS after the full sync: {:.0} MB", peak_rss_mb());
    if args.full_only {
        return Ok(());
    }
    let unchanged = timed_sync(if kind == DirectoryKind::GoogleWorkspace {
        "unchanged re-sync (full read)"
    } else {
        "unchanged re-sync (delta)"
    })
    .await?;
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
    let delta = timed_sync(if kind == DirectoryKind::GoogleWorkspace {
        "sync after 1% changed (full read)"
    } else {
        "sync after 1% changed (delta)"
    })
    .await?;
    if kind == DirectoryKind::GoogleWorkspace {
        println!(
            "unchanged re-sync / full: {:.0}%, {:.0}% (both full reads)",
            unchanged / full * 100.0,
            unchanged_full / full * 100.0
        );
        println!("1% sync (full read) / full: {:.1}%", delta / full * 100.0);
    } else {
        println!(
            "unchanged re-sync / full: {:.1}% (delta), {:.0}% (full read)",
            unchanged / full * 100.0,
            unchanged_full / full * 100.0
        );
        println!("1% sync (delta) / full: {:.1}%", delta / full * 100.0);
    }
    println!(
        "peak RSS (dirgate and the benchmark, not the fake): {rss_after_syncs:.0} MB after the full and unchanged syncs, {:.0} MB at the end",
        peak_rss_mb()
    );
    // The deletion: an event per user and group, in one transaction, a thousand at a time.
    // The peak is reset first (`clear_refs` 5), so it is the deletion's own.
    let before = status_mb("VmRSS:");
    std::fs::write("/proc/self/clear_refs", "5").ok();
    let started = Instant::now();
    let deleted = dirgate::directory::integrations::delete(
        &db,
        &dirgate::auth::Admin::cli(),
        dirgate::directory::IntegrationId(integration.id),
        &integration.name,
    )
    .await?;
    let took = started.elapsed().as_secs_f64();
    let events: Vec<(String, i64)> = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT event_type, COUNT(*) AS n FROM directory_events \
             WHERE event_type IN ('user.removed', 'user.archived', 'group.removed') \
             GROUP BY event_type ORDER BY event_type",
        ))
        .await?
        .iter()
        .map(|row| Ok((row.try_get("", "event_type")?, row.try_get("", "n")?)))
        .collect::<Result<_, sea_orm::DbErr>>()?;
    println!(
        "deleteIntegration: {} users removed, {} kept in {took:.2} s; events {events:?}; RSS {before:.0} MB before, peak {:.0} MB during it",
        deleted.users_removed,
        deleted.users_retained,
        peak_rss_mb()
    );
    core.stop().await;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
