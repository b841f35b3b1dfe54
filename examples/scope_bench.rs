//! The scope benchmark (R19, R20): a full sync of an Entra tenant scoped to one group of
//! 5,000 users (1,000 direct, 4 nested groups of 1,000) against the same tenant unscoped,
//! with the provider calls each made, and a re-sync of each; then, unscoped, the transitive
//! member query of a group of 50,000 users nested 5 deep (`Deep 0` ⊃ `Deep 1` ⊃ … ⊃ `Deep 4`,
//! 10,000 direct users each), p50/p99 over repeated runs. `--google`: the Google Workspace
//! tenant, shaped the same (its group scope reads each member by id).
//!
//! ```sh
//! cargo run --release --example scope_bench -- --users 100000 --groups 5000
//! cargo run --release --example scope_bench -- --unscoped
//! cargo run --release --example scope_bench -- --latency-ms 100
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo run --release --example scope_bench -- --unscoped
//! ```

#[path = "common/mod.rs"]
mod common;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use common::{BenchResult, FakeArgs};
use dirgate::{
    Config, Core, auth::Admin, directory::tokens, providers::scope::Scope, sync::schedule::Schedule,
};
use entity::enums::{DirectoryKind, TokenRole};
use fake_directory::{Directory, Group};
use sea_orm::ConnectionTrait;
use std::time::{Duration, Instant};

/// The scope benchmark (see the top of `examples/scope_bench.rs`).
#[derive(Parser, Debug)]
struct Args {
    /// Users in the fake tenant (at least 60,000: the scope and the deep group take them).
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// Generated groups besides the scope's and the deep chain.
    #[arg(long, default_value_t = 5_000)]
    groups: usize,
    /// Sync the whole tenant (and time the transitive member query) instead of the scope.
    #[arg(long)]
    unscoped: bool,
    /// Sync the Google Workspace tenant instead of the Entra one.
    #[arg(long)]
    google: bool,
    /// Runs of the transitive member query.
    #[arg(long, default_value_t = 200)]
    queries: usize,
    #[command(flatten)]
    fake: FakeArgs,
}

/// A group of the Entra tenant with `users` as direct members.
fn add_group(t: &mut fake_directory::Tenant, id: &str, name: &str, users: &[String]) {
    t.groups.insert(
        id.to_owned(),
        Group {
            id: id.to_owned(),
            display_name: name.to_owned(),
            email: None,
            description: None,
        },
    );
    t.members.entry(id.to_owned()).or_default();
    for user in users {
        t.add_member(id, user);
    }
}

/// The scope (`scope-0` ⊃ `scope-1..4`, 1,000 users each) and the deep chain (`deep-0` ⊃
/// `deep-1` ⊃ … ⊃ `deep-4`, 10,000 users each) in both tenants.
fn shape(d: &mut Directory) {
    for t in d.tenants.values_mut() {
        let users: Vec<String> = t.users.keys().cloned().collect();
        assert!(users.len() >= 60_000, "--users must be at least 60,000");
        for i in 0..5 {
            let chunk = &users[i * 1_000..(i + 1) * 1_000];
            add_group(t, &format!("scope-{i}"), &format!("Scope {i}"), chunk);
            let chunk = &users[10_000 * (i + 1)..10_000 * (i + 2)];
            add_group(t, &format!("deep-{i}"), &format!("Deep {i}"), chunk);
        }
        for i in 1..5 {
            t.add_member("scope-0", &format!("scope-{i}"));
            t.add_member(&format!("deep-{}", i - 1), &format!("deep-{i}"));
        }
    }
}

/// Provider calls the fake served so far: Graph's and the Directory API's paths, not the sign-ins or the control API
/// (a `PATH?latest` entry counts again a call already counted on its path).
async fn provider_calls(base: &str) -> BenchResult<u64> {
    let counts: std::collections::HashMap<String, u64> =
        reqwest::get(format!("{base}/_control/requests"))
            .await?
            .json()
            .await?;
    Ok(counts
        .iter()
        .filter(|(path, _)| {
            (path.starts_with("/v1.0/") || path.starts_with("/admin/directory/"))
                && !path.ends_with("?latest")
        })
        .map(|(_, n)| n)
        .sum())
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    dirgate::memory::tune_allocator();
    let args = Args::parse();
    common::serve_shaped_fake_if_asked(&args.fake, args.users, args.groups, shape).await?;
    let (mut child, base) = common::spawn_fake(&args.fake, args.users, args.groups)?;
    let result = run(&base, &args).await;
    child.kill().ok();
    result
}

async fn run(base: &str, args: &Args) -> BenchResult<()> {
    let dir = std::env::temp_dir().join(format!("dirgate-scope-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut config = Config::defaults();
    config.data_dir = dir.clone();
    let (db, url, schema) = common::bench_database("scope_bench", &dir).await?;
    common::use_fake(&mut config, base);
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
    let scope = if args.unscoped {
        Scope::All
    } else {
        Scope::Groups {
            groups: vec!["scope-0".into()],
        }
    };
    let kind = if args.google {
        DirectoryKind::GoogleWorkspace
    } else {
        DirectoryKind::EntraId
    };
    let integration = common::connect_scoped(&db, &app, kind, scope.clone()).await?;
    println!(
        "database: {}; {kind:?} tenant: {} users, {} groups; {} ms per provider call; scope: {scope:?}",
        if url.starts_with("postgres") {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        args.users,
        args.groups + 10,
        args.fake.latency_ms,
    );
    let before = provider_calls(base).await?;
    common::timed_sync(&app, &db, integration.id, "full sync").await?;
    let after_full = provider_calls(base).await?;
    println!("provider calls, full sync: {}", after_full - before);
    common::timed_sync(&app, &db, integration.id, "unchanged re-sync").await?;
    println!(
        "provider calls, unchanged re-sync: {}",
        provider_calls(base).await? - after_full
    );
    if args.unscoped {
        transitive_query(&app, args.queries).await?;
    }
    if let Some(schema) = schema {
        dirgate::db::connect(&url)
            .await?
            .execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE"))
            .await?;
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// p50/p99 of the first page of `Deep 0`'s transitive members (50,000 users through 4
/// nested groups) with their count, in process (the GraphQL execution and the database,
/// without HTTP).
async fn transitive_query(app: &dirgate::App, runs: usize) -> BenchResult<()> {
    let token = tokens::create(&app.db, &Admin::cli(), "scope bench", TokenRole::Viewer)
        .await?
        .token;
    let auth = || app.authenticate(Some(&token));
    let found = app
        .execute(
            r#"{ groups(first: 1, filter: {search: "Deep 0"}) { nodes { id } } }"#,
            auth().await,
        )
        .await;
    let data = found.data.into_json()?;
    let id = data["groups"]["nodes"][0]["id"]
        .as_str()
        .ok_or("no Deep 0 group")?
        .to_owned();
    let query = format!(
        r#"{{ node(id: "{id}") {{ ... on Group {{ memberCount(transitive: true)
            members(transitive: true, first: 50) {{ totalCount nodes {{ id displayName email }} }} }} }} }}"#
    );
    let mut took = Vec::with_capacity(runs);
    let mut answer = serde_json::Value::Null;
    for _ in 0..runs {
        let started = Instant::now();
        let response = app.execute(query.as_str(), auth().await).await;
        took.push(started.elapsed());
        if !response.errors.is_empty() {
            return Err(format!("{:?}", response.errors).into());
        }
        answer = response.data.into_json()?;
    }
    took.sort();
    let at = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)];
    println!(
        "transitive members of a 50,000-user group nested 5 deep (first 50 with totalCount and memberCount), {runs} runs: p50 {:.1} ms, p99 {:.1} ms; memberCount {}",
        at(0.50).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0,
        answer["node"]["memberCount"],
    );
    Ok(())
}
