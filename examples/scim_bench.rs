//! The SCIM benchmark: an Okta-style initial push against dirgate over loopback HTTP, one
//! request at a time — for each user a lookup by `userName` then a create, then each group
//! created with its members — and the requests per second and p50/p99 latencies.
//!
//! ```sh
//! cargo run --release --example scim_bench -- --users 10000 --groups 500
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo run --release --example scim_bench
//! ```

use dirgate::{App, Config, auth::Admin, directory::scim};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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
    let users = arg("--users", 10_000);
    let groups = arg("--groups", 500);
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
    let app = App::with_parts(
        db.clone(),
        config,
        providers,
        dirgate::crypto::SecretBox::new(&[5; 32]),
    );
    let (integration, token) = scim::add(&db, &Admin::cli(), "Okta", false).await?;
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
    for n in 0..users {
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
    for g in 0..groups {
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
    let mut all: Vec<Duration> = lookups
        .iter()
        .chain(&creates)
        .chain(&group_times)
        .copied()
        .collect();
    all.sort();
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
    report(
        "Entra-style lookups by work email, after the push",
        entra,
        None,
    );
    stop.cancel();
    app.stop().await;
    if url.starts_with("postgres") {
        let admin = dirgate::db::connect(&url).await?;
        admin
            .execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE"))
            .await?;
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
