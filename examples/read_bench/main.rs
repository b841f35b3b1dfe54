//! The GraphQL read path, side by side with PostGraphile 5 on the same PostgreSQL tables.
//!
//! Builds the data set through dirgate (a 100,000-user Entra directory synced from the fake
//! directory, 5,000 groups, ~100,000 memberships, 20,000 devices each assigned to a user),
//! serves dirgate's real HTTP router in this process, starts PostGraphile 5 on the same
//! database (installed with npm into `target/pgl` the first time, with `graphile.config.mjs`
//! and `polyfill.mjs` beside this file), and loads both with `wrk` (the Debian package), shape
//! by shape, alternating short rounds; prints req/s and p50/p99 of each and the ratio.
//!
//! ```sh
//! cargo run --release --example read_bench
//! cargo run --release --example read_bench -- --connections 64 --rounds 3 --seconds 10 --reuse
//! cargo run --release --example read_bench -- --reuse --only 1    # the nested shape only
//! ```
//!
//! `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/dirgate_read_bench?sslmode=disable`)
//! names a database the benchmark drops and creates, unless `--reuse` finds it filled already;
//! both servers use it as it is (so both with TLS or both without).

#[path = "../common/mod.rs"]
mod common;

/// The allocator `dirgate` runs with (`src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use common::{BenchResult, FakeArgs};
use dirgate::{
    Config, Core,
    auth::Admin,
    directory::{DeviceId, UserId, devices, tokens},
};
use entity::enums::{DevicePlatform, TokenRole};
use futures_util::StreamExt;
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait, QuerySelect};
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// The three shapes: dirgate's query and PostGraphile's equivalent.
const SHAPES: [(&str, &str, &str); 3] = [
    (
        "nested devices(50) -> user -> groups",
        "{ devices(first: 50) { nodes { serialNumber user { email groups { nodes { displayName } } } } } }",
        "{ allDevices(first: 50) { nodes { serialNumber directoryUserByUserId { email groupMembershipsByUserId { nodes { directoryGroupByGroupId { displayName } } } } } } }",
    ),
    (
        "flat users(100)",
        "{ users(first: 100) { nodes { email displayName department } } }",
        "{ allDirectoryUsers(first: 100) { nodes { email displayName department } } }",
    ),
    (
        "deep groups(20) -> members(20) -> devices",
        "{ groups(first: 20) { nodes { displayName members(first: 20) { nodes { email devices { nodes { serialNumber } } } } } } }",
        "{ allDirectoryGroups(first: 20) { nodes { displayName groupMembershipsByGroupId(first: 20) { nodes { directoryUserByUserId { email devicesByUserId { nodes { serialNumber } } } } } } } }",
    ),
];

const PGL_PORT: u16 = 5678;

/// The read benchmark (see the top of `examples/read_bench/main.rs`).
#[derive(Parser, Debug)]
struct Args {
    /// Keep the database when it holds the devices already (without it the database is
    /// dropped and filled again).
    #[arg(long)]
    reuse: bool,
    /// wrk's connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds of each round.
    #[arg(long, default_value_t = 10)]
    seconds: usize,
    /// Rounds of each server per shape, alternating.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Only this shape (1 nested, 2 flat, 3 deep; 0: all).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=3))]
    only: u8,
    /// Users in the fake directory the data set is synced from.
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// Groups in the fake directory.
    #[arg(long, default_value_t = 5_000)]
    groups: usize,
    /// Devices registered and assigned to users.
    #[arg(long, default_value_t = 20_000)]
    devices: usize,
    #[command(flatten)]
    fake: FakeArgs,
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    // As `dirgate` runs (`src/main.rs`).
    dirgate::memory::tune_allocator();
    let args = Args::parse();
    common::serve_fake_if_asked(&args.fake, args.users, args.groups).await?;
    let (users, groups, device_count) = (args.users, args.groups, args.devices);
    // No TLS on loopback, for both servers alike: node-postgres (PostGraphile) uses none unless
    // asked, while sqlx's default (`sslmode=prefer`) encrypts whenever the server offers it,
    // which cost dirgate 12% of its nested-shape throughput here.
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        "postgres://postgres@127.0.0.1:5432/dirgate_read_bench?sslmode=disable".into()
    });
    let reuse = args.reuse;
    let wrk_version = Command::new("wrk").arg("-v").output();
    if wrk_version.is_err() {
        return Err("wrk is not installed (Debian: apt-get install wrk)".into());
    }

    let filled = if reuse { count_devices(&url).await } else { 0 };
    let dir = std::env::temp_dir().join(format!("dirgate-read-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut config = Config::defaults();
    config.data_dir = dir.clone();
    config.database_url = Some(url.clone());
    // The rate limit guards a shared service; the benchmark measures the read path.
    config.graphql_requests_per_second = 1_000_000;
    if filled < device_count as u64 {
        prepare(&url, &config, &args.fake, users, groups, device_count).await?;
    } else {
        println!("reusing {url}: {filled} devices");
    }

    let db = dirgate::db::connect(&url).await?;
    let core = Core::start(db.clone(), config)?;
    let token = tokens::create(&db, &Admin::cli(), "read bench", TokenRole::Viewer)
        .await?
        .token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let dirgate_url = format!("http://{}/graphql", listener.local_addr()?);
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(dirgate::http::serve(
        core.app.clone(),
        listener,
        stop.clone().cancelled_owned(),
    ));
    let mut pgl = start_postgraphile(&url).await?;
    let pgl_url = format!("http://127.0.0.1:{PGL_PORT}/graphql");

    let result = compare(&args, &dir, &dirgate_url, &token, &pgl_url, pgl.id()).await;
    pgl.kill().ok();
    pgl.wait().ok();
    stop.cancel();
    let _ = server.await;
    core.stop().await;
    std::fs::remove_dir_all(&dir).ok();
    result
}

async fn count_devices(url: &str) -> u64 {
    match dirgate::db::connect(url).await {
        Ok(db) => entity::device::Entity::find().count(&db).await.unwrap_or(0),
        Err(_) => 0,
    }
}

/// Drops and creates the database, then fills it through dirgate.
async fn prepare(
    url: &str,
    config: &Config,
    fake_args: &FakeArgs,
    users: usize,
    groups: usize,
    device_count: usize,
) -> BenchResult<()> {
    let mut admin_url = url::Url::parse(url)?;
    let name = admin_url.path().trim_start_matches('/').to_owned();
    if name.is_empty() {
        return Err("DATABASE_URL names no database".into());
    }
    admin_url.set_path("/postgres");
    let admin = dirgate::db::connect(admin_url.as_str()).await?;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await?;
    let db = dirgate::db::connect(url).await?;
    dirgate::db::migrate(&db).await?;

    let (mut fake, base) = common::spawn_fake(fake_args, users, groups)?;
    let mut config = config.clone();
    config.entra_client_id = "bench".into();
    config.entra_client_secret = "bench".into();
    config.entra_login_url = base.clone();
    config.graph_url = base;
    let providers = config.provider_settings();
    let core = Core::with_parts(
        db.clone(),
        config,
        providers,
        dirgate::crypto::SecretBox::new(&[3; 32]),
    );
    let integration = common::connect_entra(&db, &core.app).await?;
    common::timed_sync(&core.app, &db, integration.id, "full sync").await?;
    fake.kill().ok();

    // Devices, each assigned to a user, through the directory's own rules.
    let user_ids: Vec<i64> = entity::directory_user::Entity::find()
        .select_only()
        .column(entity::directory_user::Column::Id)
        .limit(device_count as u64)
        .into_tuple()
        .all(&db)
        .await?;
    let started = std::time::Instant::now();
    let admin = Admin::cli();
    let made = futures_util::stream::iter(user_ids.into_iter().enumerate())
        .map(|(n, user)| {
            let (db, admin) = (db.clone(), admin.clone());
            async move {
                let device = devices::register(
                    &db,
                    &admin,
                    devices::NewDevice {
                        serial_number: format!("BENCH{n:06}"),
                        name: format!("Mac {n}"),
                        platform: DevicePlatform::Macos,
                        model: Some("MacBookPro18,3".into()),
                        os_version: Some("15.1".into()),
                        enrollment_identity: None,
                    },
                )
                .await?;
                devices::assign(&db, &admin, DeviceId(device.id), UserId(user)).await
            }
        })
        .buffer_unordered(8)
        .filter(|r| std::future::ready(r.is_ok()))
        .count()
        .await;
    println!(
        "{made} devices registered and assigned in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    core.stop().await;
    db.execute_unprepared("VACUUM ANALYZE").await?;
    Ok(())
}

/// Where PostGraphile is installed: `target/pgl` (npm install, the first time).
fn pgl_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("pgl")
}

async fn start_postgraphile(url: &str) -> BenchResult<Child> {
    let dir = pgl_dir();
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("graphile.config.mjs"),
        include_str!("graphile.config.mjs"),
    )?;
    std::fs::write(dir.join("polyfill.mjs"), include_str!("polyfill.mjs"))?;
    if !dir.join("node_modules/postgraphile").exists() {
        println!("installing PostGraphile 5 into {}", dir.display());
        let ok = Command::new("npm")
            .args(["init", "-y"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .status()?
            .success()
            && Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "postgraphile@5"])
                .current_dir(&dir)
                .status()?
                .success();
        if !ok {
            return Err("npm install postgraphile@5 failed".into());
        }
    }
    let child = Command::new("node")
        .args([
            "--import",
            "./polyfill.mjs",
            "node_modules/postgraphile/dist/cli-run.js",
            "-C",
            "graphile.config.mjs",
        ])
        .current_dir(&dir)
        .env("PGL_URL", url)
        .env("NODE_ENV", "production")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let http = reqwest::Client::new();
    for _ in 0..300 {
        let up = http
            .post(format!("http://127.0.0.1:{PGL_PORT}/graphql"))
            .json(&serde_json::json!({ "query": "{ __typename }" }))
            .send()
            .await;
        if up.is_ok_and(|r| r.status().is_success()) {
            return Ok(child);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("PostGraphile did not start".into())
}

/// One `wrk` round's figures.
#[derive(Debug, Clone, Copy)]
struct Figures {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// `1.23ms`, `456.00us`, `1.02s` in milliseconds.
fn millis(text: &str) -> Option<f64> {
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

fn parse_wrk(out: &str) -> Option<Figures> {
    let mut figures = Figures {
        rps: f64::NAN,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
    };
    for line in out.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(n)) => figures.rps = n.parse().ok()?,
            (Some("50%"), Some(t)) => figures.p50_ms = millis(t)?,
            (Some("99%"), Some(t)) => figures.p99_ms = millis(t)?,
            _ => {}
        }
    }
    (!figures.rps.is_nan()).then_some(figures)
}

/// Runs `wrk` against `url` with `body`; fails when any answer was not a 2xx.
fn wrk(args: &Args, dir: &Path, url: &str, token: &str, body: &str) -> BenchResult<Figures> {
    let connections = args.connections.to_string();
    let seconds = format!("{}s", args.seconds);
    let body_file = dir.join("body.json");
    std::fs::write(&body_file, serde_json::json!({ "query": body }).to_string())?;
    let script = dir.join("post_auth.lua");
    std::fs::write(&script, include_str!("post_auth.lua"))?;
    let out = Command::new("wrk")
        .args(["-t2", "-c", &connections, "-d", &seconds, "--latency", "-s"])
        .arg(&script)
        .arg(url)
        .env("BODY", &body_file)
        .env("TOKEN", token)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("Non-2xx") {
        return Err(format!("{url} answered errors under load:\n{text}").into());
    }
    parse_wrk(&text).ok_or_else(|| format!("cannot read wrk's output:\n{text}").into())
}

/// The fields of `/proc/<pid>/stat` after the command name (which may hold spaces); empty
/// once the process is gone.
fn stat_of(pid: &str) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The sum of the clock-tick fields `at` (counted after the command name) of `stat`, in seconds.
fn seconds_in(stat: &[String], at: &[usize]) -> f64 {
    let ticks: f64 = at
        .iter()
        .filter_map(|&i| stat.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    // SAFETY: sysconf reads a constant of the system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / hz
}

/// utime and stime: fields 14 and 15 of the line, 12 and 13 after the name.
const OWN: [usize; 2] = [11, 12];
/// cutime and cstime, what the process's reaped children spent.
const REAPED: [usize; 2] = [13, 14];

/// The CPU time (user and system) of process `pid` so far, in seconds; 0 once it is gone.
fn cpu_seconds_of(pid: &str) -> f64 {
    seconds_in(&stat_of(pid), &OWN)
}

/// The CPU time of the processes a round is measured by, in seconds so far.
#[derive(Clone, Copy)]
struct Cpu {
    /// This process: dirgate serves in-process, PostGraphile and wrk are children.
    dirgate: f64,
    /// PostGraphile's node process.
    node: f64,
    /// Every PostgreSQL process (the backends of both servers' pools, and the server's own).
    database: f64,
}

impl Cpu {
    fn now(node: u32) -> Self {
        // Every live PostgreSQL process, and what the ones that ended spent (the postmaster
        // reaps them: its children's time), so a backend that closes mid-round still counts.
        let mut database = 0.0;
        let pids = std::fs::read_dir("/proc").into_iter().flatten().flatten();
        for pid in pids.map(|entry| entry.file_name().to_string_lossy().into_owned()) {
            if !pid.bytes().all(|b| b.is_ascii_digit())
                || std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .map_or(true, |comm| comm.trim_end() != "postgres")
            {
                continue;
            }
            let stat = stat_of(&pid);
            database += seconds_in(&stat, &OWN);
            // The third field after the name is the parent; the postmaster's is not postgres.
            let parent = stat.get(1).cloned().unwrap_or_default();
            let parent_is_postgres = std::fs::read_to_string(format!("/proc/{parent}/comm"))
                .is_ok_and(|comm| comm.trim_end() == "postgres");
            if !parent_is_postgres {
                database += seconds_in(&stat, &REAPED);
            }
        }
        Self {
            dirgate: cpu_seconds_of("self"),
            node: cpu_seconds_of(&node.to_string()),
            database,
        }
    }

    /// Microseconds per request of the server (`dirgate` or `node`) and of the database, from
    /// `before` to now over `requests`.
    fn per_request(before: Self, server: fn(&Self) -> f64, requests: f64, node: u32) -> [f64; 2] {
        let after = Self::now(node);
        [
            (server(&after) - server(&before)) / requests * 1e6,
            (after.database - before.database) / requests * 1e6,
        ]
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Checks both servers answer each shape with data, then alternates rounds.
async fn compare(
    args: &Args,
    dir: &Path,
    dirgate: &str,
    token: &str,
    pgl: &str,
    node: u32,
) -> BenchResult<()> {
    let http = reqwest::Client::new();
    for (name, ours, theirs) in SHAPES {
        for (url, query, auth) in [(dirgate, ours, Some(token)), (pgl, theirs, None)] {
            let mut request = http.post(url).json(&serde_json::json!({ "query": query }));
            if let Some(token) = auth {
                request = request.bearer_auth(token);
            }
            let body: serde_json::Value = request.send().await?.json().await?;
            if body.get("errors").is_some() || body["data"].is_null() {
                return Err(format!("{name} on {url}: {body}").into());
            }
        }
    }
    let rounds = args.rounds;
    println!(
        "wrk -t2 -c{} -d{}s, {rounds} alternating rounds per shape (medians)",
        args.connections, args.seconds
    );
    println!(
        "| shape | dirgate req/s | p50 | p99 | PostGraphile req/s | p50 | p99 | ratio |\n|---|---|---|---|---|---|---|---|"
    );
    let only = usize::from(args.only);
    let mut cpu_table = Vec::new();
    for (n, (name, ours, theirs)) in SHAPES.into_iter().enumerate() {
        if only != 0 && only != n + 1 {
            continue;
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let (mut a_cpu, mut b_cpu) = (Vec::new(), Vec::new());
        let seconds = args.seconds as f64;
        for _ in 0..rounds {
            let before = Cpu::now(node);
            let figures = wrk(args, dir, dirgate, token, ours)?;
            a_cpu.push(Cpu::per_request(
                before,
                |c| c.dirgate,
                figures.rps * seconds,
                node,
            ));
            a.push(figures);
            let before = Cpu::now(node);
            let figures = wrk(args, dir, pgl, "", theirs)?;
            b_cpu.push(Cpu::per_request(
                before,
                |c| c.node,
                figures.rps * seconds,
                node,
            ));
            b.push(figures);
        }
        let pick = |v: &[Figures], f: fn(&Figures) -> f64| median(v.iter().map(f).collect());
        let (ar, br) = (pick(&a, |f| f.rps), pick(&b, |f| f.rps));
        println!(
            "| {name} | {ar:.0} | {:.1} ms | {:.1} ms | {br:.0} | {:.1} ms | {:.1} ms | {:.2}x |",
            pick(&a, |f| f.p50_ms),
            pick(&a, |f| f.p99_ms),
            pick(&b, |f| f.p50_ms),
            pick(&b, |f| f.p99_ms),
            ar / br
        );
        let cpu = |v: &[[f64; 2]], i: usize| median(v.iter().map(|c| c[i]).collect());
        cpu_table.push(format!(
            "| {name} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
            cpu(&a_cpu, 0),
            cpu(&a_cpu, 1),
            cpu(&a_cpu, 0) + cpu(&a_cpu, 1),
            cpu(&b_cpu, 0),
            cpu(&b_cpu, 1),
            cpu(&b_cpu, 0) + cpu(&b_cpu, 1),
        ));
    }
    // CPU per request, medians of the rounds: unlike req/s it hardly moves with what else the
    // machine is doing. The database's is every PostgreSQL process over the round.
    println!(
        "\nCPU per request (µs, median of rounds)\n\
         | shape | dirgate | its database | total | PostGraphile (node) | its database | total |\n\
         |---|---|---|---|---|---|---|"
    );
    for line in cpu_table {
        println!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn wrk_output_is_read() {
        let out = "Running 10s test\n  Latency Distribution\n     50%    1.50ms\n     75%    2.00ms\n     90%  800.00us\n     99%    1.02s\n  12345 requests in 10.00s\nRequests/sec:   1234.50\n";
        let f = super::parse_wrk(out).unwrap();
        assert_eq!((f.rps, f.p50_ms, f.p99_ms), (1234.5, 1.5, 1020.0));
    }
}
