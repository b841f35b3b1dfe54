//! Hostile requests against the real binary (`dirgate serve`, a child process, on SQLite and
//! PostgreSQL): every payload of the edge-hardening report and its neighbours (ten times
//! larger, mixed), with and without a token. After each the process must still be up, have
//! answered a typed 4xx (never 5xx) within a bounded time, and its peak RSS (VmHWM) must stay
//! within 50 MB of where it started; `/healthz` must answer within a second while four
//! payloads run at once. Timings and memory are printed (`--nocapture`) for the notes.

use crate::support::ScratchDatabase;
use serde_json::{Value, json};
use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_dirgate");
/// Far more than any bounded answer takes, far less than the unbounded ones took (minutes).
const SLOW: Duration = Duration::from_secs(5);
/// The most the server's peak RSS may grow over the whole abuse run. Measured on SQLite:
/// 35–43 MB on an idle machine, both at this bound's introduction's code (d3af45c) and after;
/// 51 MB once in CI with the rest of the suite running beside it. An unbounded parser or
/// answer grows by hundreds of megabytes, so 64 MB still catches one.
const MAX_GROWTH_KB: u64 = 64 * 1024;

struct Served {
    child: Child,
    base: String,
    token: String,
    scim_base: String,
    scim_token: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    async fn start(database_url: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let out = Command::new(BIN)
                .args(args)
                .env("DATABASE_URL", database_url)
                .env("DIRGATE_DATA_DIR", dir.path())
                .env("DIRGATE_LOG", "warn")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let out = run(&["token", "create", "--name", "abuse", "--role", "admin"]);
        let token = out.lines().last().unwrap().trim().to_owned();
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", database_url)
            .env("DIRGATE_DATA_DIR", dir.path())
            .env("DIRGATE_LOG", "warn")
            // High enough that the abuse itself is not rate limited away.
            .env("DIRGATE_GRAPHQL_REQUESTS_PER_SECOND", "100000")
            .env("DIRGATE_SCIM_REQUESTS_PER_SECOND", "100000")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let base = crate::support::serve_base(&mut child);
        // A fresh connection per request: the server rightly closes one after refusing a body
        // it did not read (413), and a pooled client could race that close.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let added: Value = client
            .post(format!("{base}/graphql"))
            .bearer_auth(&token)
            .json(&json!({ "query": "mutation { addIntegration(input: {kind: SCIM, name: \"Okta\"}) { scimBaseUrl scimToken userErrors { field message code } } }" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let payload = &added["data"]["addIntegration"];
        Self {
            child,
            scim_base: payload["scimBaseUrl"].as_str().unwrap().to_owned(),
            scim_token: payload["scimToken"].as_str().unwrap().to_owned(),
            base,
            token,
            client,
            _dir: dir,
        }
    }

    /// (current RSS, peak RSS) of the server process, in kB.
    fn memory_kb(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server process is alive");
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap()
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    async fn graphql(&self, token: bool, body: &[u8]) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("{}/graphql", self.base))
            .header("Content-Type", "application/json")
            .body(body.to_vec());
        if token {
            req = req.bearer_auth(&self.token);
        }
        let res = req.send().await.unwrap();
        (
            res.status().as_u16(),
            res.json().await.unwrap_or(Value::Null),
        )
    }

    async fn scim(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.scim_base))
            .bearer_auth(&self.scim_token)
            .header("Content-Type", "application/scim+json");
        if let Some(body) = body {
            req = req.body(body);
        }
        let res = req.send().await.unwrap();
        (
            res.status().as_u16(),
            res.json().await.unwrap_or(Value::Null),
        )
    }

    async fn healthz(&self) -> Duration {
        let started = Instant::now();
        let res = self
            .client
            .get(format!("{}/healthz", self.base))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("healthz answers");
        assert_eq!(res.status(), 200);
        started.elapsed()
    }
}

/// A GraphQL request body for `query`.
fn gql(query: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({ "query": query })).unwrap()
}

fn nested_list(depth: usize) -> String {
    format!(
        "{{ users(after: {}1{}) {{ totalCount }} }}",
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

fn nested_object(depth: usize) -> String {
    format!(
        "{{ users(filter: {}1{}) {{ totalCount }} }}",
        "{a:".repeat(depth),
        "}".repeat(depth)
    )
}

fn fragment_doubling(n: usize) -> String {
    let mut q = String::from("query { ...F0 }\n");
    for i in 0..n {
        q.push_str(&format!(
            "fragment F{i} on Query {{ ...F{} ...F{} }}\n",
            i + 1,
            i + 1
        ));
    }
    q.push_str(&format!("fragment F{n} on Query {{ __typename }}"));
    q
}

fn scim_filter_path(filter: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(filter.as_bytes()).collect();
    format!("/Users?filter={encoded}")
}

fn or_terms(n: usize) -> String {
    vec!["userName eq \"ab\""; n].join(" or ")
}

fn code(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn abuse(database_url: &str) {
    let mut served = Served::start(database_url).await;
    // Warm up, then take the baseline.
    served.healthz().await;
    let (status, _) = served.graphql(true, &gql("{ users { totalCount } }")).await;
    assert_eq!(status, 200);
    let (baseline, _) = served.memory_kb();

    // GraphQL, with and without a token: (name, body, the codes it may get).
    let mut graphql: Vec<(String, Vec<u8>, &[&str])> = Vec::new();
    for depth in [2_000, 20_000] {
        graphql.push((
            format!("list nested {depth}"),
            gql(&nested_list(depth)),
            &["LIMIT_EXCEEDED"],
        ));
        graphql.push((
            format!("object nested {depth}"),
            gql(&nested_object(depth)),
            &["LIMIT_EXCEEDED"],
        ));
    }
    for n in [30, 31, 300] {
        graphql.push((
            format!("fragment doubling {n}"),
            gql(&fragment_doubling(n)),
            &["LIMIT_EXCEEDED"],
        ));
    }
    let aliases: String = (0..5_000).map(|i| format!("a{i}: __typename ")).collect();
    graphql.push((
        "5,000 aliases".into(),
        gql(&format!("{{ {aliases} }}")),
        &["LIMIT_EXCEEDED"],
    ));
    graphql.push((
        "50,000 tokens".into(),
        gql(&format!("{{ {} }}", "__typename ".repeat(50_000))),
        &["LIMIT_EXCEEDED"],
    ));
    let directives = "@include(if: true) ".repeat(1_000);
    graphql.push((
        "1,000 directives".into(),
        gql(&format!("{{ __typename {directives} }}")),
        &["LIMIT_EXCEEDED"],
    ));
    let deep_vars = format!(
        "{{\"query\":\"query($v: [Int]) {{ __typename }}\",\"variables\":{{\"v\":{}1{}}}}}",
        "[".repeat(20_000),
        "]".repeat(20_000)
    );
    graphql.push((
        "variables nested 20,000".into(),
        deep_vars.into_bytes(),
        &["BAD_REQUEST"],
    ));
    let vars_100 = format!(
        "{{\"query\":\"query($v: [Int]) {{ __typename }}\",\"variables\":{{\"v\":{}1{}}}}}",
        "[".repeat(100),
        "]".repeat(100)
    );
    graphql.push((
        "variables nested 100".into(),
        vars_100.into_bytes(),
        &["LIMIT_EXCEEDED"],
    ));
    graphql.push((
        "not JSON".into(),
        b"{\"query\": ".to_vec(),
        &["BAD_REQUEST"],
    ));
    graphql.push((
        "a batch".into(),
        b"[{\"query\": \"{ __typename }\"}]".to_vec(),
        &["BAD_REQUEST"],
    ));
    graphql.push((
        "lone surrogate".into(),
        br#"{"query": "{ users(filter: {search: \"\ud800\"}) { totalCount } }"}"#.to_vec(),
        &["BAD_REQUEST"],
    ));
    graphql.push((
        "unterminated string".into(),
        gql("{ users(filter: {search: \"abc"),
        &["GRAPHQL_PARSE_FAILED"],
    ));
    graphql.push((
        "unknown field".into(),
        gql("{ nope }"),
        &["GRAPHQL_VALIDATION_FAILED"],
    ));
    graphql.push((
        "NUL in search".into(),
        gql(r#"{ users(filter: {search: "a\u0000b"}) { totalCount } }"#),
        &["INVALID_INPUT"],
    ));
    graphql.push((
        "bidi override in a device name".into(),
        gql("mutation { registerDevice(input: {serialNumber: \"C02BIDI\", name: \"Mac\u{202E}gpj.exe\", platform: MACOS}) { device { id } userErrors { field message code } } }"),
        &["INVALID_INPUT"],
    ));
    graphql.push((
        "bidi override in an integration name".into(),
        gql("mutation { addIntegration(input: {kind: SCIM, name: \"Okta\u{2066}\"}) { scimToken userErrors { field message code } } }"),
        &["INVALID_INPUT"],
    ));
    graphql.push((
        "NUL in a variable".into(),
        serde_json::to_vec(&json!({ "query": "query($s: String) { users(filter: {search: $s}) { totalCount } }", "variables": { "s": "a\u{0}b" } })).unwrap(),
        &["INVALID_INPUT"],
    ));

    for (name, body, codes) in &graphql {
        for with_token in [true, false] {
            let started = Instant::now();
            let (status, answer) = served.graphql(with_token, body).await;
            let took = started.elapsed();
            assert!(served.alive(), "{name}: the process died");
            assert!(took < SLOW, "{name}: {took:?}");
            assert!(status < 500, "{name}: {status} {answer}");
            if with_token {
                assert!(
                    codes.contains(&code(&answer).as_str()),
                    "{name}: {status} {answer}"
                );
            } else {
                assert_eq!(status, 401, "{name} without a token: {answer}");
                assert_eq!(code(&answer), "UNAUTHENTICATED", "{name}");
            }
            let (_, peak) = served.memory_kb();
            println!(
                "graphql {name:<40} token={with_token:<5} {status} {took:>10.1?} peak RSS {} MB",
                peak / 1024
            );
        }
    }

    // SCIM: (name, method, path, body, the status it must get).
    use reqwest::Method;
    let user = |user_name: &str, emails: usize| {
        let emails: Vec<Value> = (0..emails)
            .map(|i| json!({ "value": format!("u{i}@example.com"), "type": "work" }))
            .collect();
        serde_json::to_vec(&json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name,
            "emails": emails,
            "active": true,
        }))
        .unwrap()
    };
    let patch_ops: Vec<Value> = (0..2_000)
        .map(|_| json!({ "op": "replace", "path": "active", "value": true }))
        .collect();
    let deep_body = format!("{}1{}", "[".repeat(20_000), "]".repeat(20_000)).into_bytes();
    let deep_filter = |open: &str, close: &str, n: usize| {
        scim_filter_path(&format!(
            "{}userName eq \"a\"{}",
            open.repeat(n),
            close.repeat(n)
        ))
    };
    /// (name, method, path below the base URL, body, the status it must get)
    type Case = (String, Method, String, Option<Vec<u8>>, u16);
    let scim: Vec<Case> = vec![
        ("filter with 2,000 (".into(), Method::GET, deep_filter("(", ")", 2_000), None, 400),
        (
            "search with 20,000 (".into(),
            Method::POST,
            "/Users/.search".into(),
            Some(serde_json::to_vec(&json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": format!("{}userName eq \"a\"{}", "(".repeat(20_000), ")".repeat(20_000)) })).unwrap()),
            400,
        ),
        ("filter with 2,000 not(".into(), Method::GET, deep_filter("not(", ")", 2_000), None, 400),
        ("filter with 2,000 [".into(), Method::GET, deep_filter("emails[", "]", 2_000), None, 400),
        (
            "search with 40,000 or terms".into(),
            Method::POST,
            "/Users/.search".into(),
            Some(serde_json::to_vec(&json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": or_terms(40_000) })).unwrap()),
            400,
        ),
        (
            "a body over the limit".into(),
            Method::POST,
            "/Users".into(),
            Some(vec![b' '; 2 << 20]),
            413,
        ),
        ("filter with 400 or terms".into(), Method::GET, scim_filter_path(&or_terms(400)), None, 400),
        ("NUL in userName".into(), Method::POST, "/Users".into(), Some(user("a\u{0}b@example.com", 1)), 400),
        ("bidi override in userName".into(), Method::POST, "/Users".into(), Some(user("adm\u{202E}in@example.com", 1)), 400),
        ("20,000 emails".into(), Method::POST, "/Users".into(), Some(user("many@example.com", 20_000)), 400),
        ("101 emails".into(), Method::POST, "/Users".into(), Some(user("many@example.com", 101)), 400),
        (
            "PATCH with 2,000 operations".into(),
            Method::PATCH,
            "/Users/00000000-0000-4000-8000-000000000000".into(),
            Some(serde_json::to_vec(&json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": patch_ops })).unwrap()),
            404,
        ),
        ("body nested 20,000".into(), Method::POST, "/Users".into(), Some(deep_body), 400),
        ("NUL in a resource id".into(), Method::GET, "/Users/a%00b".into(), None, 404),
        ("not JSON".into(), Method::POST, "/Users".into(), Some(b"{\"schemas\": ".to_vec()), 400),
        (
            "1,000 attribute paths".into(),
            Method::GET,
            format!("/Users?count=1000&attributes={}", vec!["userName"; 1_000].join(",")),
            None,
            400,
        ),
        ("startIndex past i64".into(), Method::GET, "/Users?startIndex=99999999999999999999".into(), None, 400),
        ("huge startIndex".into(), Method::GET, "/Users?startIndex=9223372036854775807&count=100".into(), None, 200),
    ];
    for (name, method, path, body, expected) in &scim {
        let started = Instant::now();
        let (status, answer) = served.scim(method.clone(), path, body.clone()).await;
        let took = started.elapsed();
        assert!(served.alive(), "{name}: the process died");
        assert!(took < SLOW, "{name}: {took:?}");
        assert_eq!(status, *expected, "{name}: {answer}");
        if status >= 400 {
            assert_eq!(
                answer["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
                "{name}: {answer}"
            );
        }
        let (_, peak) = served.memory_kb();
        println!(
            "scim    {name:<40} {status} {took:>10.1?} peak RSS {} MB",
            peak / 1024
        );
    }
    // The OAuth callback: what a browser brings is checked like any input.
    for query in [
        "state=a%00b&code=c".to_owned(),
        format!("state={}&code=c", "s".repeat(10_000)),
        "state=abc&error=access_denied&error_description=%E2%80%AEevil".to_owned(),
        "state=unknown&code=c".to_owned(),
    ] {
        let res = served
            .client
            .get(format!("{}/oauth/callback?{query}", served.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{}", &query[..query.len().min(60)]);
        assert!(served.alive());
    }
    // A PATCH with too many operations on a user that exists.
    let (status, created) = served
        .scim(Method::POST, "/Users", Some(user("real@example.com", 1)))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let ops: Vec<Value> = (0..2_000)
        .map(|_| json!({ "op": "replace", "path": "active", "value": true }))
        .collect();
    let body = serde_json::to_vec(
        &json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops }),
    )
    .unwrap();
    let (status, answer) = served
        .scim(Method::PATCH, &format!("/Users/{id}"), Some(body))
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["scimType"], "tooMany");

    // Four payloads at once, over and over, while /healthz is asked.
    let heavy: Vec<(bool, Vec<u8>)> = vec![
        (true, gql(&fragment_doubling(30))),
        (true, gql(&nested_list(20_000))),
        (false, gql(&fragment_doubling(300))),
        (true, gql(&nested_object(2_000))),
    ];
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for (with_token, body) in heavy {
        let (client, base, token, stop) = (
            served.client.clone(),
            served.base.clone(),
            served.token.clone(),
            stop.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut sent = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut req = client.post(format!("{base}/graphql")).body(body.clone());
                if with_token {
                    req = req.bearer_auth(&token);
                }
                let res = req.send().await.unwrap();
                assert!(res.status().as_u16() < 500);
                sent += 1;
            }
            sent
        }));
    }
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        slowest = slowest.max(served.healthz().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut sent = 0;
    for task in load {
        sent += task.await.unwrap();
    }
    println!("healthz under load of four payloads ({sent} requests): slowest {slowest:?}");
    assert!(
        slowest < Duration::from_secs(1),
        "healthz took {slowest:?} under load"
    );

    assert!(served.alive());
    let (rss, peak) = served.memory_kb();
    println!(
        "RSS: baseline {} MB, now {} MB, peak {} MB",
        baseline / 1024,
        rss / 1024,
        peak / 1024
    );
    assert!(
        peak.saturating_sub(baseline) < MAX_GROWTH_KB,
        "peak RSS grew by {} MB",
        (peak - baseline) / 1024
    );
    // Still serving.
    let (status, body) = served.graphql(true, &gql("{ users { totalCount } }")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["users"]["totalCount"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_payloads_never_take_the_process_down_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("abuse.db").display()
    );
    abuse(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_payloads_never_take_the_process_down_on_postgres() {
    let db = ScratchDatabase::create("dirgate_abuse").await;
    abuse(&db.url).await;
    db.drop().await;
}

/// A mutation stuck behind a lock another connection holds is dropped at the request budget
/// (`--request-timeout-seconds`), answered `TIMEOUT`, and changes nothing. (The budget is
/// `App::execute`'s, the same on both databases; only PostgreSQL makes a writer wait: SQLite
/// refuses a deferred transaction's upgrade to a write at once, `SQLITE_BUSY`.)
#[tokio::test]
async fn request_budget_drops_a_stuck_mutation_on_postgres() {
    use crate::support::{Backend, Fixture, error_code};
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let mut config = dirgate::Config::defaults();
    config.request_timeout_seconds = 1;
    let fx = Fixture::with_config(Backend::Postgres, config).await;
    let guard = fx.guard();
    let admin = fx.admin().await;
    let holder = fx.db.begin().await.unwrap();
    holder
        .execute_unprepared("LOCK TABLE devices IN EXCLUSIVE MODE")
        .await
        .unwrap();
    let started = Instant::now();
    let answer = fx
        .gql(
            &admin,
            r#"mutation { registerDevice(input: {serialNumber: "C02STUCK", name: "Stuck", platform: MACOS}) { device { id } userErrors { field message code } } }"#,
            json!({}),
        )
        .await;
    let took = started.elapsed();
    assert_eq!(error_code(&answer), "TIMEOUT", "{answer}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    holder.rollback().await.unwrap();
    let devices = fx.ok(&admin, "{ devices { totalCount } }", json!({})).await;
    assert_eq!(
        devices["devices"]["totalCount"], 0,
        "the dropped mutation changed nothing"
    );
    guard.drop_schema().await;
}
