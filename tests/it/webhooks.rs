//! Webhooks (`src/webhooks/`) against a real loopback receiver: signatures that verify with an
//! HMAC-SHA256 computed here from the spec (not through the crate dirgate signs with), a
//! failed delivery retried with the same `webhook-id`, an endpoint disabled after its retry
//! schedule, the URL policy, and two `dirgate serve` processes delivering every event once.

use crate::{
    on_both_databases,
    support::{Fixture, ScratchDatabase, error_code, user_error},
};
use axum::{Router, extract::State, http::HeaderMap, routing::post};
use dirgate::{Config, auth::TokenRole};
use serde_json::{Value, json};
use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// What the receiver got: (webhook-id, webhook-timestamp, webhook-signature, body).
type Log = Arc<Mutex<Vec<(String, String, String, String)>>>;

/// A loopback receiver that answers the statuses in `script` in turn, then 200.
async fn receiver(script: Vec<u16>) -> (SocketAddr, Log) {
    slow_receiver(script, Duration::ZERO).await
}

/// [`receiver`], answering each request after `delay`.
async fn slow_receiver(script: Vec<u16>, delay: Duration) -> (SocketAddr, Log) {
    #[derive(Clone)]
    struct Recv {
        log: Log,
        script: Arc<Mutex<VecDeque<u16>>>,
        delay: Duration,
    }
    async fn hook(
        State(r): State<Recv>,
        headers: HeaderMap,
        body: String,
    ) -> axum::http::StatusCode {
        let h = |n: &str| {
            headers
                .get(n)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        r.log.lock().unwrap().push((
            h("webhook-id"),
            h("webhook-timestamp"),
            h("webhook-signature"),
            body,
        ));
        tokio::time::sleep(r.delay).await;
        let status = r.script.lock().unwrap().pop_front().unwrap_or(200);
        axum::http::StatusCode::from_u16(status).unwrap()
    }
    let log: Log = Arc::default();
    let state = Recv {
        log: log.clone(),
        script: Arc::new(Mutex::new(script.into())),
        delay,
    };
    let app = Router::new().route("/hook", post(hook)).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, log)
}

/// HMAC-SHA256 (RFC 2104) from SHA-256, written here so the check does not share code with
/// the signer.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Whether `signature` (`v1,<base64> ...`) signs `id.timestamp.body` with `secret` (`whsec_...`).
fn verifies(secret: &str, id: &str, timestamp: &str, body: &str, signature: &str) -> bool {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.trim_start_matches("whsec_")).unwrap();
    let expected = b64.encode(hmac_sha256(
        &key,
        format!("{id}.{timestamp}.{body}").as_bytes(),
    ));
    signature
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

#[test]
fn the_check_here_agrees_with_the_spec_vector() {
    assert!(verifies(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
        r#"{"test": 2432232314}"#,
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    ));
    assert!(!verifies(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265331",
        r#"{"test": 2432232314}"#,
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    ));
}

fn config(retry_ms: Vec<u64>) -> Config {
    let mut config = Config::defaults();
    config.webhook_allow_private_urls = true;
    config.webhook_retry_ms = retry_ms;
    config
}

const CREATE: &str = "mutation($url: String!, $types: [DirectoryEventType!]) { createWebhookEndpoint(input: {url: $url, types: $types}) { secret webhookEndpoint { id enabled } userErrors { field message code } } }";
const STATE: &str = "query { webhookEndpoints { id enabled disabledReason failedAttempts deliveredThrough deliveries(first: 50) { eventSequence event { sequence type } attempt statusCode error } } }";

async fn register(fx: &Fixture, serial: &str) {
    let admin = fx.admin().await;
    fx.ok(
        &admin,
        &format!("mutation {{ registerDevice(input: {{serialNumber: \"{serial}\", name: \"Mac\", platform: MACOS}}) {{ device {{ id }} userErrors {{ field message code }} }} }}"),
        json!({}),
    )
    .await;
}

/// Waits until `log` holds `n` deliveries.
async fn wait_for(log: &Log, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while log.lock().unwrap().len() < n {
        assert!(
            Instant::now() < deadline,
            "{} of {n} deliveries",
            log.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

on_both_databases!(
    deliveries_are_signed_retried_with_the_same_id_and_recorded,
    an_endpoint_that_keeps_failing_is_disabled_and_says_why,
    dead_receivers_delay_only_themselves,
);

async fn deliveries_are_signed_retried_with_the_same_id_and_recorded(fx: Fixture) {
    let fx = Fixture::with_config(fx.backend, config(vec![100, 100, 100])).await;
    let (addr, log) = receiver(vec![500]).await;
    let admin = fx.admin().await;
    register(&fx, "C02BEFORE").await;
    let created = fx
        .ok(
            &admin,
            CREATE,
            json!({ "url": format!("http://{addr}/hook"), "types": ["DEVICE_REGISTERED"] }),
        )
        .await;
    let secret = created["createWebhookEndpoint"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    register(&fx, "C02FIRST").await;
    register(&fx, "C02SECOND").await;
    // 500 for the first, then it again (the same id), then the second.
    wait_for(&log, 3).await;
    let got = log.lock().unwrap().clone();
    assert_eq!(got[0].0, got[1].0, "a retry carries the same webhook-id");
    assert_ne!(got[1].0, got[2].0);
    for (id, timestamp, signature, body) in &got {
        assert!(
            verifies(&secret, id, timestamp, body, signature),
            "{signature}"
        );
        let age = chrono::Utc::now().timestamp() - timestamp.parse::<i64>().unwrap();
        assert!(age.abs() < 60);
    }
    let first: Value = serde_json::from_str(&got[1].3).unwrap();
    assert_eq!(first["type"], "device.registered");
    assert_eq!(
        first["data"]["state"]["serialNumber"], "C02FIRST",
        "{first}"
    );
    let second: Value = serde_json::from_str(&got[2].3).unwrap();
    assert_eq!(
        second["data"]["state"]["serialNumber"], "C02SECOND",
        "in order"
    );
    assert!(
        !got.iter().any(|(_, _, _, b)| b.contains("C02BEFORE")),
        "only events after the endpoint was added"
    );
    // The receiver logs a delivery before the deliverer records its answer: wait (a few
    // seconds at most) for the third to be recorded, with the failures reset by the success.
    let mut state = fx.ok(&admin, STATE, json!({})).await;
    for _ in 0..100 {
        let endpoint = &state["webhookEndpoints"][0];
        let recorded = endpoint["deliveries"].as_array().map_or(0, Vec::len);
        if recorded >= 3 && endpoint["failedAttempts"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        state = fx.ok(&admin, STATE, json!({})).await;
    }
    let endpoint = &state["webhookEndpoints"][0];
    assert_eq!(endpoint["enabled"], true);
    assert_eq!(endpoint["failedAttempts"], 0, "{endpoint}");
    let deliveries = endpoint["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 3, "{deliveries:?}");
    // Newest first: the second event, then the first's retry, then its failure.
    assert_eq!(deliveries[2]["statusCode"], 500);
    assert_eq!(deliveries[2]["attempt"], 1);
    assert_eq!(deliveries[2]["error"], "HTTP 500");
    assert_eq!(deliveries[1]["statusCode"], 200);
    assert_eq!(deliveries[1]["attempt"], 2);
    assert_eq!(
        deliveries[1]["eventSequence"],
        deliveries[2]["eventSequence"]
    );
    // Each attempt names its event, which is still kept.
    for delivery in deliveries {
        assert_eq!(delivery["event"]["sequence"], delivery["eventSequence"]);
        assert!(delivery["event"]["type"].is_string(), "{delivery}");
    }
    // An attempt at an event no longer kept (pruned) answers null for it.
    {
        use sea_orm::{ActiveModelTrait, Set};
        let endpoint_id: i64 = {
            let id = endpoint["id"].as_str().unwrap();
            dirgate::graphql::ids::decode(&async_graphql::ID::from(id), "WebhookEndpoint", "id")
                .unwrap()
        };
        entity::webhook_attempt::ActiveModel {
            endpoint_id: Set(endpoint_id),
            event_seq: Set(987_654_321),
            attempt: Set(1),
            status_code: Set(Some(200)),
            latency_ms: Set(1),
            error: Set(None),
            attempted_at: Set(chrono::Utc::now() + chrono::Duration::hours(1)),
            ..Default::default()
        }
        .insert(&fx.db)
        .await
        .unwrap();
        let state = fx.ok(&admin, STATE, json!({})).await;
        let newest = &state["webhookEndpoints"][0]["deliveries"][0];
        assert_eq!(newest["eventSequence"], "987654321");
        assert!(newest["event"].is_null(), "{newest}");
    }
    // A viewer sees no endpoint.
    let viewer = fx.viewer().await;
    assert_eq!(
        error_code(&fx.gql(&viewer, STATE, json!({})).await),
        "FORBIDDEN"
    );
}

async fn an_endpoint_that_keeps_failing_is_disabled_and_says_why(fx: Fixture) {
    let fx = Fixture::with_config(fx.backend, config(vec![50, 50])).await;
    let (addr, log) = receiver(vec![503; 100]).await;
    let admin = fx.admin().await;
    fx.ok(
        &admin,
        CREATE,
        json!({ "url": format!("http://{addr}/hook") }),
    )
    .await;
    register(&fx, "C02DOWN").await;
    wait_for(&log, 3).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = fx.ok(&admin, STATE, json!({})).await;
        let endpoint = &state["webhookEndpoints"][0];
        if endpoint["enabled"] == false {
            let reason = endpoint["disabledReason"].as_str().unwrap();
            assert!(
                reason.contains("3 failed attempts") && reason.contains("HTTP 503"),
                "{reason}"
            );
            assert_eq!(endpoint["deliveries"].as_array().unwrap().len(), 3);
            break;
        }
        assert!(Instant::now() < deadline, "not disabled: {endpoint}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(log.lock().unwrap().len(), 3, "nothing more once disabled");
    // Re-enabled, it delivers again.
    let id = fx.ok(&admin, STATE, json!({})).await["webhookEndpoints"][0]["id"].clone();
    fx.ok(
        &admin,
        "mutation($id: ID!) { updateWebhookEndpoint(input: {id: $id, enabled: true}) { webhookEndpoint { enabled } userErrors { field message code } } }",
        json!({ "id": id }),
    )
    .await;
    wait_for(&log, 4).await;
}

#[tokio::test]
async fn urls_outside_the_policy_are_refused() {
    let fx = Fixture::sqlite().await;
    let admin = fx.admin().await;
    for url in [
        "http://hooks.example.com/x",
        "https://127.0.0.1/x",
        "https://169.254.169.254/latest",
        "https://localhost/x",
        "https://[::1]/x",
        "javascript:alert(1)",
    ] {
        let res = fx.gql(&admin, CREATE, json!({ "url": url })).await;
        assert_eq!(
            user_error(&res),
            ("INVALID_INPUT".into(), "input.url".into()),
            "{url}: {res}"
        );
    }
    let res = fx
        .gql(
            &admin,
            CREATE,
            json!({ "url": "https://hooks.example.com/x", "types": ["USER_EXPLODED"] }),
        )
        .await;
    // Event types are an enum: the schema refuses one that is not, before the mutation runs.
    assert_eq!(error_code(&res), "GRAPHQL_VALIDATION_FAILED");
    let viewer = fx.viewer().await;
    let res = fx
        .gql(
            &viewer,
            CREATE,
            json!({ "url": "https://hooks.example.com/x" }),
        )
        .await;
    assert_eq!(error_code(&res), "FORBIDDEN");
    let created = fx
        .ok(
            &admin,
            CREATE,
            json!({ "url": "https://hooks.example.com/x" }),
        )
        .await;
    assert!(
        created["createWebhookEndpoint"]["secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_")
    );
}

/// A `dirgate serve` process on `url` that delivers webhooks (leases of `lease` seconds).
fn serve(url: &str, dir: &std::path::Path, lease: &str) -> (std::process::Child, String) {
    use std::process::{Command, Stdio};
    let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [9u8; 32]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_dirgate"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", url)
        .env("DIRGATE_DATA_DIR", dir)
        .env("DIRGATE_ENCRYPTION_KEY", key)
        .env("DIRGATE_WEBHOOK_ALLOW_PRIVATE_URLS", "true")
        .env("DIRGATE_WEBHOOK_LEASE_SECONDS", lease)
        .env("DIRGATE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = crate::support::serve_base(&mut child);
    (child, base)
}

/// Writes `n` events into the outbox in chunks of 500, as a sync would.
async fn write_events(db: &sea_orm::DatabaseConnection, n: usize) {
    for chunk in 0..n.div_ceil(500) {
        let events = (chunk * 500..((chunk + 1) * 500).min(n))
            .map(|i| dirgate::directory::events::NewEvent {
                event_type: "device.registered",
                integration_id: None,
                object_type: "Device",
                object_id: i as i64 + 1,
                data: "{}".into(),
            })
            .collect();
        dirgate::directory::events::record(db, events)
            .await
            .unwrap();
    }
}

/// Adds an endpoint through the API of the process at `base`.
async fn add_endpoint(base: &str, token: &str, receiver: SocketAddr) {
    let created: Value = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(
            &json!({ "query": CREATE, "variables": { "url": format!("http://{receiver}/hook") } }),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        created["data"]["createWebhookEndpoint"]["secret"].is_string(),
        "{created}"
    );
}

/// A process killed while delivering: once its lease runs out another process takes the
/// endpoint over; every event arrives, a repeat carrying the id it had before.
#[tokio::test]
async fn a_killed_process_deliveries_are_taken_over() {
    let scratch = ScratchDatabase::create("webhooks_killed").await;
    let db = dirgate::db::connect(&scratch.url).await.unwrap();
    dirgate::db::migrate(&db).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (addr, log) = slow_receiver(Vec::new(), Duration::from_millis(150)).await;
    let token = dirgate::directory::tokens::create(
        &db,
        &dirgate::auth::Admin::cli(),
        "t",
        TokenRole::Admin,
    )
    .await
    .unwrap()
    .token;
    let (mut first, base) = serve(&scratch.url, dir.path(), "2");
    add_endpoint(&base, &token, addr).await;
    write_events(&db, 30).await;
    wait_for(&log, 3).await;
    first.kill().unwrap();
    first.wait().unwrap();
    let before = log.lock().unwrap().len();
    assert!(before < 30, "killed mid-way ({before} delivered)");
    let (mut second, _) = serve(&scratch.url, dir.path(), "2");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ids: std::collections::HashSet<String> = log
            .lock()
            .unwrap()
            .iter()
            .map(|(id, ..)| id.clone())
            .collect();
        if ids.len() == 30 {
            break;
        }
        assert!(Instant::now() < deadline, "{} of 30 events", ids.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.kill().unwrap();
    second.wait().unwrap();
    let got = log.lock().unwrap().clone();
    // Each event's first arrival is in order; a repeat is an event the killed process had
    // posted before its cursor moved.
    let mut firsts = Vec::new();
    for (id, ..) in &got {
        if !firsts.contains(id) {
            firsts.push(id.clone());
        }
    }
    let seqs: Vec<i64> = firsts
        .iter()
        .map(|id| id.trim_start_matches("evt_").parse().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert!(
        got.len() - 30 <= before,
        "repeats only of what the killed process posted"
    );
    db.close().await.ok();
    scratch.drop().await;
}

/// Two `dirgate serve` processes on one PostgreSQL database deliver 10,000 events: the
/// receiver gets each once, in order.
#[tokio::test]
async fn two_processes_deliver_every_event_once_in_order() {
    const N: usize = 10_000;
    let scratch = ScratchDatabase::create("webhooks_two").await;
    let db = dirgate::db::connect(&scratch.url).await.unwrap();
    dirgate::db::migrate(&db).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (addr, log) = receiver(Vec::new()).await;
    let token = dirgate::directory::tokens::create(
        &db,
        &dirgate::auth::Admin::cli(),
        "test",
        TokenRole::Admin,
    )
    .await
    .unwrap()
    .token;
    let mut children = Vec::new();
    let mut bases = Vec::new();
    for _ in 0..2 {
        let (child, base) = serve(&scratch.url, dir.path(), "300");
        bases.push(base);
        children.push(child);
    }
    add_endpoint(&bases[0], &token, addr).await;
    let started = Instant::now();
    write_events(&db, N).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut first_at = None;
    while log.lock().unwrap().len() < N {
        if first_at.is_none() && !log.lock().unwrap().is_empty() {
            first_at = Some(started.elapsed());
        }
        assert!(
            Instant::now() < deadline,
            "{} of {N}",
            log.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    eprintln!(
        "webhooks: {N} events delivered by two processes in {:.2} s ({:.0} events/s); the first {} ms after the first commit",
        elapsed.as_secs_f64(),
        N as f64 / elapsed.as_secs_f64(),
        first_at.unwrap_or(elapsed).as_millis()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    let got = log.lock().unwrap().clone();
    assert_eq!(got.len(), N, "no duplicates: every answer was 200");
    let seqs: Vec<i64> = got
        .iter()
        .map(|(id, ..)| id.trim_start_matches("evt_").parse().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "in order, each once"
    );
    db.close().await.ok();
    scratch.drop().await;
}

/// A receiver that accepts connections and never answers (nor reads).
async fn tarpit() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    addr
}

async fn dead_receivers_delay_only_themselves(fx: Fixture) {
    let fx = Fixture::with_config(fx.backend, config(vec![60_000])).await;
    let admin = fx.admin().await;
    for _ in 0..5 {
        let dead = tarpit().await;
        fx.ok(
            &admin,
            CREATE,
            json!({ "url": format!("http://{dead}/hook"), "types": ["DEVICE_REGISTERED"] }),
        )
        .await;
    }
    let (addr, log) = receiver(Vec::new()).await;
    fx.ok(
        &admin,
        CREATE,
        json!({ "url": format!("http://{addr}/hook"), "types": ["DEVICE_REGISTERED"] }),
    )
    .await;
    let mut latencies = Vec::new();
    for (i, serial) in ["C02TAR1", "C02TAR2", "C02TAR3"].into_iter().enumerate() {
        let written = Instant::now();
        register(&fx, serial).await;
        wait_for(&log, i + 1).await;
        latencies.push(written.elapsed());
    }
    println!("the healthy endpoint's latencies beside five dead ones: {latencies:?}");
    assert!(
        latencies.iter().all(|l| *l < Duration::from_secs(2)),
        "the healthy endpoint waited {latencies:?} beside five dead ones"
    );
    let got = log.lock().unwrap().clone();
    for (i, serial) in ["C02TAR1", "C02TAR2", "C02TAR3"].into_iter().enumerate() {
        assert!(got[i].3.contains(serial), "in order: {i} {serial}");
    }
}
