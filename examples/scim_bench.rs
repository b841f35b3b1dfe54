//! The SCIM benchmark: an Okta-style initial push against dirgate over loopback HTTP, one
//! request at a time — for each user a lookup by `userName` then a create, then each group
//! created with its members — and the requests per second and p50/p99 latencies. Then lists
//! on the full directory: `GET /Users?count=100` pages with filters that narrow on indexed
//! columns and filters that scan (`active eq true`, `name.familyName sw`), and Okta's paging
//! through `/Groups` 100 at a time, with p50/p99 and the extra RSS of the process while they
//! run.
//!
//! ```sh
//! cargo run --release --example scim_bench -- --users 10000 --groups 500
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo run --release --example scim_bench
//! # Lists only, on a directory inserted in bulk (what the push stores, without the push):
//! cargo run --release --example scim_bench -- --users 100000 --groups 5000 --bulk
//! ```

/// The allocator `dirgate` runs with (`src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use dirgate::{Config, Core, auth::Admin, directory::scim_tokens};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The SCIM benchmark (see the top of `examples/scim_bench.rs`).
#[derive(clap::Parser, Debug)]
struct Args {
    /// Users pushed (or inserted, with `--bulk`).
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Groups of up to 20 members.
    #[arg(long, default_value_t = 500)]
    groups: usize,
    /// Insert what the push would store instead of pushing it, then measure the lists only.
    #[arg(long)]
    bulk: bool,
}

/// Inserts what the push would store (users with their SCIM resource, groups of up to 20
/// members) in multi-row statements; returns the users' SCIM ids.
async fn insert_in_bulk(
    db: &sea_orm::DatabaseConnection,
    integration: &entity::integration::Model,
    users: usize,
    groups: usize,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    use entity::{directory_group, directory_user, enums::UserStatus, group_membership};
    use sea_orm::{ActiveValue::Set, EntityTrait, QueryOrder, QuerySelect};
    let now = chrono::Utc::now();
    let ids: Vec<String> = (0..users).map(|n| format!("bulk-{n:06}")).collect();
    for chunk in (0..users).collect::<Vec<_>>().chunks(1000) {
        let rows: Vec<directory_user::ActiveModel> = chunk
            .iter()
            .map(|&n| {
                let user_name = format!("user{n:05}@okta.example");
                let resource = json!({
                    "userName": user_name,
                    "name": { "givenName": "User", "familyName": format!("{n:05}") },
                    "emails": [{ "primary": true, "value": user_name, "type": "work" }],
                    "displayName": format!("User {n:05}"),
                    "active": true,
                });
                directory_user::ActiveModel {
                    integration_id: Set(Some(integration.id)),
                    origin_name: Set(integration.name.clone()),
                    external_id: Set(ids[n].clone()),
                    user_name: Set(user_name.clone()),
                    user_name_key: Set(user_name.clone()),
                    email: Set(Some(user_name.clone())),
                    email_key: Set(Some(user_name)),
                    display_name: Set(format!("User {n:05}")),
                    given_name: Set(Some("User".into())),
                    family_name: Set(Some(format!("{n:05}"))),
                    status: Set(UserStatus::Active),
                    created_at: Set(now),
                    updated_at: Set(now),
                    scim_resource: Set(Some(resource.to_string())),
                    ..Default::default()
                }
            })
            .collect();
        directory_user::Entity::insert_many(rows).exec(db).await?;
    }
    let user_rows: Vec<i64> = directory_user::Entity::find()
        .select_only()
        .column(directory_user::Column::Id)
        .order_by_asc(directory_user::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    let per_group = (users / groups.max(1)).clamp(1, 20);
    for chunk in (0..groups).collect::<Vec<_>>().chunks(1000) {
        let rows: Vec<directory_group::ActiveModel> = chunk
            .iter()
            .map(|&g| directory_group::ActiveModel {
                integration_id: Set(integration.id),
                external_id: Set(format!("bulk-group-{g:05}")),
                display_name: Set(format!("Group {g:03}")),
                created_at: Set(now),
                updated_at: Set(now),
                scim_resource: Set(Some(
                    json!({ "displayName": format!("Group {g:03}") }).to_string(),
                )),
                ..Default::default()
            })
            .collect();
        directory_group::Entity::insert_many(rows).exec(db).await?;
    }
    let group_rows: Vec<i64> = directory_group::Entity::find()
        .select_only()
        .column(directory_group::Column::Id)
        .order_by_asc(directory_group::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    let memberships: Vec<group_membership::ActiveModel> = group_rows
        .iter()
        .enumerate()
        .flat_map(|(g, group)| {
            let user_rows = &user_rows;
            (0..per_group).map(move |k| group_membership::ActiveModel {
                group_id: Set(*group),
                user_id: Set(user_rows[(g * per_group + k) % user_rows.len()]),
                created_at: Set(now),
            })
        })
        .collect();
    for chunk in memberships.chunks(5000) {
        group_membership::Entity::insert_many(chunk.to_vec())
            .exec(db)
            .await?;
    }
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        db.execute_unprepared("ANALYZE").await?;
    }
    Ok(ids)
}

/// This process's resident set, in kB (server and client run in it).
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Latencies of one kind of request; with `wall`, the rate over that time too.
fn report(label: &str, mut times: Vec<Duration>, wall: Option<Duration>) {
    times.sort();
    let rate = wall
        .map(|w| {
            format!(
                " in {:.2} s = {:.0} req/s",
                w.as_secs_f64(),
                times.len() as f64 / w.as_secs_f64()
            )
        })
        .unwrap_or_default();
    println!(
        "{label}: {} requests{rate}; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        times.len(),
        percentile(&times, 0.50),
        percentile(&times, 0.99),
        times.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = <Args as clap::Parser>::parse();
    let (users, groups) = (args.users, args.groups);
    let dir = std::env::temp_dir().join(format!("dirgate-scim-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()));
    let schema = format!("scim_bench_{}", std::process::id());
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
    let mut config = Config::defaults();
    config.data_dir = dir.clone();
    config.scim_requests_per_second = 100_000;
    let providers = config.provider_settings();
    let core = Core::with_parts(
        db.clone(),
        config,
        providers,
        dirgate::crypto::SecretBox::new(&[5; 32]),
    );
    let app = core.app.clone();
    let (integration, token) = scim_tokens::add(&db, &Admin::cli(), "Okta", false).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(dirgate::http::serve(
        app.clone(),
        listener,
        stop.clone().cancelled_owned(),
    ));
    let base = format!("http://{addr}/scim/v2/{}", integration.id);
    println!(
        "database: {}",
        if url.starts_with("postgres") {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    println!("push: {users} users (lookup + create each), {groups} groups with members");
    let http = reqwest::Client::new();
    let send = |method: reqwest::Method, path: String, body: Option<Value>| {
        let mut request = http
            .request(method, format!("{base}{path}"))
            .bearer_auth(&token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        async move {
            let started = Instant::now();
            let response = request.send().await?;
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            Ok::<_, reqwest::Error>((started.elapsed(), status, body))
        }
    };

    let (mut lookups, mut creates) = (Vec::new(), Vec::new());
    let mut ids = Vec::with_capacity(users);
    let started = Instant::now();
    let bulk = args.bulk;
    if bulk {
        ids = insert_in_bulk(&db, &integration, users, groups).await?;
        println!(
            "inserted {users} users and {groups} groups in bulk in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    for n in 0..if bulk { 0 } else { users } {
        let user_name = format!("user{n:05}@okta.example");
        let filter: String =
            url::form_urlencoded::byte_serialize(format!("userName eq \"{user_name}\"").as_bytes())
                .collect();
        let (took, status, _) = send(
            reqwest::Method::GET,
            format!("/Users?filter={filter}&startIndex=1&count=100"),
            None,
        )
        .await?;
        assert!(status.is_success(), "lookup: {status}");
        lookups.push(took);
        let (took, status, body) = send(
            reqwest::Method::POST,
            "/Users".into(),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": user_name,
                "name": { "givenName": "User", "familyName": format!("{n:05}") },
                "emails": [{ "primary": true, "value": user_name, "type": "work" }],
                "displayName": format!("User {n:05}"),
                "active": true,
                "password": "not-kept"
            })),
        )
        .await?;
        assert_eq!(status.as_u16(), 201, "create: {body}");
        creates.push(took);
        ids.push(body["id"].as_str().unwrap_or_default().to_owned());
    }
    let users_wall = started.elapsed();
    let mut group_times = Vec::new();
    let started = Instant::now();
    let per_group = (users / groups.max(1)).clamp(1, 50);
    for g in 0..if bulk { 0 } else { groups } {
        let members: Vec<Value> = (0..per_group)
            .map(|k| json!({ "value": ids[(g * per_group + k) % ids.len()] }))
            .collect();
        let (took, status, body) = send(
            reqwest::Method::POST,
            "/Groups".into(),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": format!("Group {g:03}"),
                "members": members
            })),
        )
        .await?;
        assert_eq!(status.as_u16(), 201, "group: {body}");
        group_times.push(took);
    }
    let groups_wall = started.elapsed();
    // Entra's lookup by work email, on the full directory.
    let mut entra = Vec::new();
    for n in (0..users).step_by((users / 1000).max(1)) {
        let filter: String = url::form_urlencoded::byte_serialize(
            format!("emails[type eq \"work\"].value eq \"user{n:05}@okta.example\"").as_bytes(),
        )
        .collect();
        let (took, status, body) = send(
            reqwest::Method::GET,
            format!("/Users?filter={filter}"),
            None,
        )
        .await?;
        assert!(status.is_success() && body["totalResults"] == 1, "{body}");
        entra.push(took);
    }
    // Lists on the full directory: pages of 100 at spread-out offsets.
    let rss_before = rss_kb();
    let mut rss_peak = rss_before;
    let pages = 50usize;
    let mut list_reports = Vec::new();
    for (label, filter) in [
        ("no filter", None),
        (
            "userName eq",
            Some(format!("userName eq \"user{:05}@okta.example\"", users / 2)),
        ),
        ("active eq true", Some("active eq true".to_owned())),
        (
            "name.familyName sw \"0\"",
            Some("name.familyName sw \"0\"".to_owned()),
        ),
        ("userName co \"99\"", Some("userName co \"99\"".to_owned())),
        (
            "displayName ew \"7\" or title pr",
            Some("displayName ew \"7\" or title pr".to_owned()),
        ),
        (
            "not (emails co \"1\")",
            Some("not (emails co \"1\")".to_owned()),
        ),
    ] {
        let filter = filter
            .map(|f| {
                format!(
                    "&filter={}",
                    url::form_urlencoded::byte_serialize(f.as_bytes()).collect::<String>()
                )
            })
            .unwrap_or_default();
        let mut times = Vec::new();
        for p in 0..pages {
            let start = 1 + (p * users / pages);
            let (took, status, body) = send(
                reqwest::Method::GET,
                format!("/Users?count=100&startIndex={start}{filter}"),
                None,
            )
            .await?;
            assert!(status.is_success(), "{label}: {body}");
            times.push(took);
            rss_peak = rss_peak.max(rss_kb());
        }
        list_reports.push((format!("GET /Users?count=100, {label}"), times));
    }
    for (label, extra) in [
        (
            "GET /Groups?count=100 (Okta paging, without members)",
            "&excludedAttributes=members",
        ),
        ("GET /Groups?count=100 (with members)", ""),
        (
            "GET /Groups?count=100&filter=displayName sw \"Group 1\"",
            "&filter=displayName%20sw%20%22Group%201%22",
        ),
    ] {
        let mut times = Vec::new();
        let mut start = 1;
        while start <= groups.max(1) {
            let (took, status, body) = send(
                reqwest::Method::GET,
                format!("/Groups?count=100&startIndex={start}{extra}"),
                None,
            )
            .await?;
            assert!(status.is_success(), "{label}: {body}");
            times.push(took);
            rss_peak = rss_peak.max(rss_kb());
            start += 100;
        }
        list_reports.push((label.to_owned(), times));
    }
    let mut all: Vec<Duration> = lookups
        .iter()
        .chain(&creates)
        .chain(&group_times)
        .copied()
        .collect();
    all.sort();
    if !bulk {
        report("user lookups", lookups, None);
        report("user creates", creates, None);
        report(
            &format!("group creates ({per_group} members each)"),
            group_times,
            Some(groups_wall),
        );
        report(
            "all requests, one at a time",
            all,
            Some(users_wall + groups_wall),
        );
    }
    report(
        "Entra-style lookups by work email, after the push",
        entra,
        None,
    );
    for (label, times) in list_reports {
        report(&label, times, None);
    }
    println!(
        "lists: RSS {} MB before, peak {} MB while listing (+{} MB)",
        rss_before / 1024,
        rss_peak / 1024,
        rss_peak.saturating_sub(rss_before) / 1024
    );
    stop.cancel();
    core.stop().await;
    if url.starts_with("postgres") {
        let admin = dirgate::db::connect(&url).await?;
        admin
            .execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE"))
            .await?;
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
