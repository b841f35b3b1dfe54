//! The HTTP server over real loopback: the router, auth header, GET rules, limits, CORS,
//! health, GraphiQL and subscriptions over WebSocket.

use crate::support::{Backend, Fixture};
use dirgate::{Config, auth::TokenRole};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::net::SocketAddr;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};
use tokio_util::sync::CancellationToken;

/// A server on a free port, stopped when dropped.
pub struct Server {
    addr: SocketAddr,
    stop: CancellationToken,
    pub fx: Fixture,
}

impl Server {
    pub async fn start(backend: Backend, config: Config) -> Self {
        Self::serve(Fixture::with_config(backend, config).await).await
    }

    /// Serves `fx`'s app.
    pub async fn serve(fx: Fixture) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        tokio::spawn(dirgate::http::serve(
            fx.app.clone(),
            listener,
            stop.clone().cancelled_owned(),
        ));
        Self { addr, stop, fx }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn post(server: &Server, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(server.url("/graphql"))
        .json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn http_graphql_needs_a_bearer_token() {
    let server = Server::start(Backend::Sqlite, Config::defaults()).await;
    let token = server.fx.token(TokenRole::Viewer).await;
    let query = json!({ "query": "{ users { totalCount } }" });
    let (status, body) = post(&server, Some(&token), query.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["users"]["totalCount"], 0);
    let (_, body) = post(&server, None, query.clone()).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let res = reqwest::Client::new()
        .post(server.url("/graphql"))
        .header("Authorization", format!("Basic {token}"))
        .json(&query)
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn http_get_runs_queries_but_not_mutations() {
    let server = Server::start(Backend::Sqlite, Config::defaults()).await;
    let token = server.fx.token(TokenRole::Admin).await;
    let client = reqwest::Client::new();
    let res = client
        .get(server.url("/graphql"))
        .query(&[("query", "{ devices { totalCount } }")])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["devices"]["totalCount"], 0);
    let mutation = r#"mutation { registerDevice(input: {serialNumber: "C02GET", name: "x", platform: IOS}) { device { id } userErrors { field message code } } }"#;
    let res = client
        .get(server.url("/graphql"))
        .query(&[("query", mutation)])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "INVALID_INPUT");
    let (_, body) = post(
        &server,
        Some(&token),
        json!({ "query": "{ devices { totalCount } }" }),
    )
    .await;
    assert_eq!(
        body["data"]["devices"]["totalCount"], 0,
        "the GET mutation changed nothing"
    );
}

#[tokio::test]
async fn http_body_over_the_limit_is_refused() {
    let mut config = Config::defaults();
    config.max_body_bytes = 4096;
    let server = Server::start(Backend::Sqlite, config).await;
    let token = server.fx.token(TokenRole::Viewer).await;
    let padding = " ".repeat(8192);
    let res = reqwest::Client::new()
        .post(server.url("/graphql"))
        .bearer_auth(&token)
        .json(&json!({ "query": format!("{{ users {{ totalCount }} }}{padding}") }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
}

#[tokio::test]
async fn http_depth_limit_refuses_deep_queries() {
    let server = Server::start(Backend::Sqlite, Config::defaults()).await;
    let token = server.fx.token(TokenRole::Viewer).await;
    let mut deep = String::from("id");
    for _ in 0..8 {
        deep = format!("devices {{ user {{ {deep} }} }}");
    }
    let deep = format!("{{ user(id: \"x\") {{ {deep} }} }}");
    let (_, body) = post(&server, Some(&token), json!({ "query": deep })).await;
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("nested too deep"), "{message}");
    assert!(body["data"].is_null());
}

#[tokio::test]
async fn http_cors_allows_only_configured_origins() {
    let mut config = Config::defaults();
    config.cors_origins = vec!["https://console.example".into()];
    let server = Server::start(Backend::Sqlite, config).await;
    let client = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, server.url("/graphql"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type",
            )
            .send()
    };
    let res = preflight("https://console.example").await.unwrap();
    assert_eq!(
        res.headers().get("access-control-allow-origin").unwrap(),
        "https://console.example"
    );
    let res = preflight("https://evil.example").await.unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());

    let plain = Server::start(Backend::Sqlite, Config::defaults()).await;
    let res = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, plain.url("/graphql"))
        .header("Origin", "https://console.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        res.headers().get("access-control-allow-origin").is_none(),
        "no CORS by default"
    );
}

#[tokio::test]
async fn http_health_and_graphiql_need_no_token() {
    let server = Server::start(Backend::Sqlite, Config::defaults()).await;
    let res = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "ok");
    let res = reqwest::get(server.url("/")).await.unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let page = res.text().await.unwrap();
    assert!(page.to_lowercase().contains("graphiql"));
    assert!(page.contains("/graphql/ws"));
    assert!(
        !page.contains("unpkg") && !page.contains("https://"),
        "nothing from elsewhere"
    );
    // Every asset the page names is served from the binary, with a long cache.
    let assets: Vec<&str> = page
        .split('"')
        .filter(|s| s.starts_with("/graphiql/"))
        .collect();
    assert_eq!(assets.len(), 6, "{page}");
    for asset in &assets {
        let res = reqwest::get(server.url(asset)).await.unwrap();
        assert_eq!(res.status(), 200, "{asset}");
        let kind = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(
            kind.starts_with("text/javascript") || kind.starts_with("text/css"),
            "{asset}: {kind}"
        );
        assert!(
            res.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        assert!(res.bytes().await.unwrap().len() > 50, "{asset}");
    }
    let stale = assets[0].replace(dirgate::http::graphiql::ASSET_VERSION, "0.0.0-old");
    let res = reqwest::get(server.url(&stale)).await.unwrap();
    assert_eq!(res.status(), 404, "{stale}");
    let res = reqwest::get(server.url("/graphiql/x/../../etc/passwd"))
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn http_introspection_needs_a_token_and_the_standard_query_loads() {
    let server = Server::start(Backend::Sqlite, Config::defaults()).await;
    let token = server.fx.token(TokenRole::Viewer).await;
    let query = json!({ "query": "{ __schema { types { name } } }" });
    let (status, body) = post(&server, None, query.clone()).await;
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert!(
        body["errors"][0].get("locations").is_none(),
        "an error about the whole request claims no position: {body}"
    );
    assert!(body.get("data").is_none_or(Value::is_null), "{body}");
    let (status, body) = post(&server, Some(&token), query).await;
    assert_eq!(status, 200);
    assert!(body["data"]["__schema"]["types"].as_array().unwrap().len() > 20);
    // What GraphiQL, codegen tools and schema registries send (graphql-js
    // `getIntrospectionQuery()`, default options and every option on).
    for (name, document) in [
        ("standard", include_str!("fixtures/introspection.graphql")),
        ("full", include_str!("fixtures/introspection-full.graphql")),
    ] {
        let (status, body) = post(&server, Some(&token), json!({ "query": document })).await;
        assert_eq!(status, 200, "{name}");
        assert!(body["errors"].is_null(), "{name}: {body}");
        assert_eq!(
            body["data"]["__schema"]["queryType"]["name"], "Query",
            "{name}"
        );
        let (status, body) = post(&server, None, json!({ "query": document })).await;
        assert_eq!(status, 401, "{name}");
        assert!(
            body.get("data").is_none_or(Value::is_null),
            "{name}: {body}"
        );
    }
}

pub(crate) async fn ws_connect(
    server: &Server,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut request = format!("ws://{}/graphql/ws", server.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

pub(crate) async fn next_json<S>(ws: &mut S) -> Option<Value>
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let deadline = std::time::Duration::from_secs(10);
    loop {
        match tokio::time::timeout(deadline, ws.next())
            .await
            .expect("no message in time")
        {
            Some(Ok(Message::Text(text))) => return Some(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn http_subscription_streams_sync_runs_to_authenticated_clients() {
    let server = Server::start(Backend::Sqlite, Config::defaults()).await;
    let token = server.fx.token(TokenRole::Viewer).await;
    let contoso = server.fx.integration("Contoso").create().await;
    let other = server.fx.integration("Other").create().await;

    // Without a token the connection is refused.
    let mut ws = ws_connect(&server).await;
    ws.send(Message::text(
        json!({ "type": "connection_init", "payload": {} }).to_string(),
    ))
    .await
    .unwrap();
    assert!(next_json(&mut ws).await.is_none(), "closed without a token");

    let mut ws = ws_connect(&server).await;
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    ws.send(Message::text(init.to_string())).await.unwrap();
    assert_eq!(next_json(&mut ws).await.unwrap()["type"], "connection_ack");
    let subscribe = json!({
        "id": "1", "type": "subscribe",
        "payload": {
            "query": "subscription($id: ID) { syncRunUpdated(integrationId: $id) { status usersCreated integration { name } } }",
            "variables": { "id": dirgate::graphql::ids::encode("Integration", contoso.id) }
        }
    });
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    // Give the subscription a moment to register before publishing.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let run = |integration_id: i64, users_created: i32| entity::sync_run::Model {
        id: 1,
        integration_id,
        trigger: entity::enums::SyncTrigger::Manual,
        status: entity::enums::SyncRunStatus::Running,
        queued_at: chrono::Utc::now(),
        started_at: None,
        finished_at: None,
        pages_read: 1,
        users_created,
        users_updated: 0,
        users_suspended: 0,
        users_removed: 0,
        users_archived: 0,
        users_restored: 0,
        groups_created: 0,
        groups_updated: 0,
        groups_removed: 0,
        error: None,
        lease_owner: None,
        lease_expires_at: None,
        retries: 0,
        throttled_ms: 0,
        warning_count: 0,
    };
    server.fx.app.events.publish(run(other.id, 99));
    server.fx.app.events.publish(run(contoso.id, 7));
    let message = next_json(&mut ws).await.unwrap();
    assert_eq!(message["type"], "next");
    let payload = &message["payload"]["data"]["syncRunUpdated"];
    assert_eq!(
        payload["usersCreated"], 7,
        "the other integration's run is filtered out"
    );
    assert_eq!(payload["integration"]["name"], "Contoso");
}

#[tokio::test]
async fn http_complexity_limit_refuses_huge_queries() {
    let server = Server::start(Backend::Sqlite, Config::defaults()).await;
    let token = server.fx.token(TokenRole::Viewer).await;
    let fields: String = "totalCount ".repeat(1100);
    let query = format!("{{ users {{ {fields} }} }}");
    let (_, body) = post(&server, Some(&token), json!({ "query": query })).await;
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("too complex"), "{message}");
    assert!(body["data"].is_null());
}

#[tokio::test]
async fn http_graphql_rate_limit_is_per_token_with_retry_after() {
    let mut config = Config::defaults();
    config.graphql_requests_per_second = 2;
    let server = Server::start(Backend::Sqlite, config).await;
    let token = server.fx.token(TokenRole::Viewer).await;
    let other = server.fx.token(TokenRole::Viewer).await;
    let query = json!({ "query": "{ devices { totalCount } }" });
    for _ in 0..2 {
        let (status, _) = post(&server, Some(&token), query.clone()).await;
        assert_eq!(status, 200);
    }
    let res = reqwest::Client::new()
        .post(server.url("/graphql"))
        .bearer_auth(&token)
        .json(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry_after, 1, "a wait under a second rounds up to one");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    let (status, _) = post(&server, Some(&other), query.clone()).await;
    assert_eq!(status, 200, "another token has a budget of its own");
}

#[tokio::test]
async fn http_4xx_bodies_are_graphql_json() {
    let mut config = Config::defaults();
    config.max_body_bytes = 4096;
    let server = Server::start(Backend::Sqlite, config).await;
    let token = server.fx.token(TokenRole::Viewer).await;
    // No pooled connections: the server closes one after a 413 it did not read.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for (body, status, code) in [
        ("{\"query\": ".to_owned(), 400, "BAD_REQUEST"),
        (
            "[{\"query\": \"{ __typename }\"}]".to_owned(),
            400,
            "BAD_REQUEST",
        ),
        (
            format!("{{\"query\": \"{}\"}}", " ".repeat(8192)),
            413,
            "LIMIT_EXCEEDED",
        ),
    ] {
        let res = client
            .post(server.url("/graphql"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status);
        let answer: Value = res.json().await.unwrap();
        assert_eq!(answer["errors"][0]["extensions"]["code"], code, "{answer}");
    }
    let res = client
        .get(server.url("/graphql?variables=%7B"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "BAD_REQUEST",
        "{answer}"
    );
    let res = client
        .get(server.url("/graphql?query=%7B%20users%20%7B%20totalCount%20%7D%20%7D"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "GET needs a token too");
    assert!(res.headers().contains_key("www-authenticate"));
}

#[tokio::test]
async fn http_every_answer_carries_a_request_id_and_odd_ones_are_replaced() {
    let server = Server::start(Backend::Sqlite, Config::defaults()).await;
    let client = reqwest::Client::new();
    let id_of = |res: &reqwest::Response| {
        res.headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    // None sent: a UUID comes back, a different one each time, on errors too.
    let first = client.get(server.url("/healthz")).send().await.unwrap();
    let second = client
        .post(server.url("/graphql"))
        .json(&json!({ "query": "{ users { totalCount } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 401);
    let (a, b) = (id_of(&first).unwrap(), id_of(&second).unwrap());
    assert!(uuid::Uuid::parse_str(&a).is_ok() && uuid::Uuid::parse_str(&b).is_ok());
    assert_ne!(a, b);
    // A well-formed one is kept.
    let kept = client
        .get(server.url("/healthz"))
        .header("x-request-id", "lb-7f3a.01_x")
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&kept).as_deref(), Some("lb-7f3a.01_x"));
    // Anything that would reach the logs as written is replaced.
    for odd in ["a b", "x\"y", &"a".repeat(65), "ümlaut", ""] {
        let res = client
            .get(server.url("/healthz"))
            .header("x-request-id", odd)
            .send()
            .await
            .unwrap();
        let id = id_of(&res).unwrap();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{odd:?} -> {id:?}");
    }
}

#[tokio::test]
async fn http_readyz_is_ready_only_with_every_migration_applied() {
    use sea_orm::ConnectionTrait;
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let server = Server::start(backend, Config::defaults()).await;
        let res = reqwest::get(server.url("/readyz")).await.unwrap();
        assert_eq!(res.status(), 200, "{backend:?}");
        assert_eq!(res.json::<Value>().await.unwrap()["status"], "ready");
        // The newest migration forgotten: a process of this version is not ready.
        server
            .fx
            .db
            .execute_unprepared(
                "DELETE FROM seaql_migrations WHERE version = (SELECT MAX(version) FROM seaql_migrations)",
            )
            .await
            .unwrap();
        let res = reqwest::get(server.url("/readyz")).await.unwrap();
        assert_eq!(res.status(), 503, "{backend:?}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], "migrations pending");
        assert_eq!(body["pending"], 1);
        // Liveness is another matter: the process and its database are up.
        let res = reqwest::get(server.url("/healthz")).await.unwrap();
        assert_eq!(res.status(), 200);
        let guard = server.fx.guard();
        drop(server);
        guard.drop_schema().await;
    }
}

/// The close code a WebSocket ends with, waiting at most `secs`.
async fn close_code<S>(ws: &mut S, secs: u64) -> Option<u16>
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            Ok(_) | Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn ws_connections_that_never_initialise_are_closed_with_4408() {
    let server = Server::start(Backend::Sqlite, Config::defaults()).await;
    let mut idle = Vec::new();
    for _ in 0..100 {
        idle.push(ws_connect(&server).await);
    }
    let started = std::time::Instant::now();
    for ws in &mut idle {
        assert_eq!(close_code(ws, 10).await, Some(4408));
    }
    let waited = started.elapsed();
    assert!(
        waited < dirgate::http::ws::INIT_TIMEOUT + std::time::Duration::from_secs(2),
        "closed after {waited:?}"
    );
}

#[tokio::test]
async fn ws_subscriptions_past_the_cap_are_refused_with_a_typed_error() {
    use dirgate::http::ws::MAX_SUBSCRIPTIONS;
    let server = Server::start(Backend::Sqlite, Config::defaults()).await;
    let token = server.fx.token(TokenRole::Viewer).await;
    let mut ws = ws_connect(&server).await;
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    ws.send(Message::text(init.to_string())).await.unwrap();
    assert_eq!(next_json(&mut ws).await.unwrap()["type"], "connection_ack");
    let (mut tx, mut rx) = ws.split();
    const SENT: usize = 20_000;
    // The client sends as fast as it can while the answers are read beside it.
    let sender = tokio::spawn(async move {
        for i in 0..SENT {
            let subscribe = json!({
                "id": i.to_string(), "type": "subscribe",
                "payload": { "query": "subscription { syncRunUpdated { id } }" }
            });
            tx.send(Message::text(subscribe.to_string())).await.unwrap();
        }
        tx
    });
    let mut refused = 0;
    while refused < SENT - MAX_SUBSCRIPTIONS {
        let message = next_json(&mut rx).await.expect("the connection stays open");
        assert_eq!(message["type"], "error", "{message}");
        assert_eq!(
            message["payload"][0]["extensions"]["code"], "LIMIT_EXCEEDED",
            "{message}"
        );
        let id: usize = message["id"].as_str().unwrap().parse().unwrap();
        assert!(
            id >= MAX_SUBSCRIPTIONS,
            "the first {MAX_SUBSCRIPTIONS} hold: {id}"
        );
        refused += 1;
    }
    let mut tx = sender.await.unwrap();
    // A place freed by completing one takes a new subscription.
    tx.send(Message::text(
        json!({ "id": "0", "type": "complete" }).to_string(),
    ))
    .await
    .unwrap();
    tx.send(Message::text(
        json!({ "id": "again", "type": "subscribe", "payload": { "query": "subscription { syncRunUpdated { id } }" } }).to_string(),
    ))
    .await
    .unwrap();
    tx.send(Message::text(
        json!({ "id": "past", "type": "subscribe", "payload": { "query": "subscription { syncRunUpdated { id } }" } }).to_string(),
    ))
    .await
    .unwrap();
    let error = loop {
        let message = next_json(&mut rx).await.unwrap();
        if message["type"] == "error" {
            break message;
        }
        assert_eq!(message["type"], "complete", "{message}");
    };
    assert_eq!(error["id"], "past", "only the one past the cap: {error}");
}

#[tokio::test]
async fn ws_connections_per_token_are_bounded() {
    use dirgate::ratelimit::MAX_SOCKETS_PER_TOKEN;
    let server = Server::start(Backend::Sqlite, Config::defaults()).await;
    let token = server.fx.token(TokenRole::Viewer).await;
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    let open = async || {
        let mut ws = ws_connect(&server).await;
        ws.send(Message::text(init.to_string())).await.unwrap();
        let acked = next_json(&mut ws)
            .await
            .is_some_and(|m| m["type"] == "connection_ack");
        (ws, acked)
    };
    let mut held = Vec::new();
    for _ in 0..MAX_SOCKETS_PER_TOKEN {
        let (ws, acked) = open().await;
        assert!(acked);
        held.push(ws);
    }
    let (_, acked) = open().await;
    assert!(!acked, "one connection past the cap is refused");
    // Another token is not held back by this one.
    let other = server.fx.token(TokenRole::Viewer).await;
    let mut ws = ws_connect(&server).await;
    let init_other = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {other}") } });
    ws.send(Message::text(init_other.to_string()))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await.unwrap()["type"], "connection_ack");
    // A connection closed frees its place.
    let mut first = held.remove(0);
    first.close(None).await.unwrap();
    drop(first);
    let mut acked = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let (ws, ok) = open().await;
        if ok {
            held.push(ws);
            acked = true;
            break;
        }
    }
    assert!(acked, "a place freed by a closed connection is taken again");
}

/// Slow clients (half a request, then nothing) neither hold the server nor their connections:
/// an authenticated query beside them answers at once, and each is closed within the
/// header-read timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_connections_are_closed_and_hold_nobody_up() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start(Backend::Sqlite, Config::defaults()).await;
    let token = server.fx.token(TokenRole::Viewer).await;
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(stream);
    }
    let started = std::time::Instant::now();
    let answer: Value = reqwest::Client::new()
        .post(server.url("/graphql"))
        .bearer_auth(&token)
        .json(&json!({ "query": "{ integrations { totalCount } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["data"]["integrations"]["totalCount"], 0, "{answer}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "answered in {:?} beside 300 slow clients",
        started.elapsed()
    );
    let healthz = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(healthz.status(), 200);
    // Each slow connection ends (EOF or reset) within the timeout, plus a margin.
    let deadline = dirgate::http::Bounds::of(&Config::defaults()).header_read_timeout
        + std::time::Duration::from_secs(3);
    for mut stream in slow {
        let mut buf = [0u8; 256];
        let ended = tokio::time::timeout(deadline.saturating_sub(started.elapsed()), async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(
            ended.is_ok(),
            "a slow connection outlived the header-read timeout"
        );
    }
}

/// A request whose body stops coming is answered (an error, not a hang) within the body-read
/// timeout, and its connection does not stay open.
#[tokio::test]
async fn a_body_that_stops_coming_is_refused_within_the_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start(Backend::Sqlite, Config::defaults()).await;
    let token = server.fx.token(TokenRole::Viewer).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"query\": \"{{ integ"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        dirgate::http::Bounds::of(&Config::defaults()).body_read_timeout
            + std::time::Duration::from_secs(3),
        stream.read_to_end(&mut answer),
    )
    .await;
    assert!(
        read.is_ok(),
        "the connection outlived the body-read timeout"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 4"),
        "a client error, after {:?}: {answer}",
        started.elapsed()
    );
}
