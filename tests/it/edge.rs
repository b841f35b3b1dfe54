//! The connection edge under attack: a real `dirgate serve` process held to 256 descriptors
//! stays reachable beside 1,000 slow-header connections and 200 idle WebSockets, on SQLite and
//! PostgreSQL; and at the connection cap, connections that proved a token are never the ones
//! closed (a newcomer is refused 503 instead).

use crate::http::Server;
use crate::support::{Backend, ScratchDatabase};
use dirgate::{Config, auth::TokenRole};
use serde_json::{Value, json};
use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const BIN: &str = env!("CARGO_BIN_EXE_dirgate");

/// The header-read timeout the process under attack is given (`DIRGATE_HTTP_HEADER_TIMEOUT_SECONDS`).
const HEADER_TIMEOUT: Duration = Duration::from_secs(4);

/// `dirgate serve` on `url` under `ulimit -n 256` (soft and hard: it cannot raise it), with an
/// admin token made by the CLI.
struct Limited {
    child: Child,
    base: String,
    token: String,
}

impl Limited {
    fn start(url: &str, dir: &std::path::Path) -> Self {
        let token = crate::support::cli_admin_token(url, dir, "edge");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n 256 && exec {BIN} serve --listen 127.0.0.1:0"
            ))
            .env("DATABASE_URL", url)
            .env("DIRGATE_DATA_DIR", dir)
            .env(
                "DIRGATE_HTTP_HEADER_TIMEOUT_SECONDS",
                HEADER_TIMEOUT.as_secs().to_string(),
            )
            .env("DIRGATE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = crate::support::serve_base(&mut child);
        Self { child, base, token }
    }

    fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    /// An authenticated query on a new connection, and how long it took.
    async fn query(&self) -> (Value, Duration) {
        let started = Instant::now();
        let answer: Value = reqwest::Client::new()
            .post(format!("{}/graphql", self.base))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(10))
            .json(&json!({ "query": "{ integrations { totalCount } }" }))
            .send()
            .await
            .expect("answered")
            .json()
            .await
            .unwrap();
        (answer, started.elapsed())
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `stream` ends (EOF or an error), at most until `deadline`; whether it ended.
async fn ends_by(stream: &mut TcpStream, deadline: Instant) -> bool {
    let mut buf = [0u8; 512];
    let wait = deadline.saturating_duration_since(Instant::now());
    tokio::time::timeout(wait, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .is_ok()
}

async fn a_process_held_to_256_descriptors_outlasts_slow_and_idle_clients(url: &str) {
    // This test holds 1,200 sockets of its own.
    rlimit::increase_nofile_limit(4096).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = Limited::start(url, dir.path());
    let addr = server.addr();
    let (answer, _) = server.query().await;
    assert_eq!(answer["data"]["integrations"]["totalCount"], 0, "{answer}");

    let mut slow = Vec::new();
    for _ in 0..1000 {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        // Half a request: the headers never end.
        let _ = stream
            .write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\n")
            .await;
        slow.push((Instant::now(), stream));
    }
    let (answer, took) = server.query().await;
    assert_eq!(answer["data"]["integrations"]["totalCount"], 0, "{answer}");
    assert!(
        took < Duration::from_secs(1),
        "answered in {took:?} beside 1,000 slow connections"
    );

    // WebSockets that upgrade and then never say connection_init.
    let mut sockets = Vec::new();
    for _ in 0..200 {
        let mut request =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                format!("ws://{addr}/graphql/ws"),
            )
            .unwrap();
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        if let Ok((socket, _)) = tokio_tungstenite::connect_async(request).await {
            sockets.push(socket);
        }
    }
    let (answer, took) = server.query().await;
    assert_eq!(answer["data"]["integrations"]["totalCount"], 0, "{answer}");
    assert!(
        took < Duration::from_secs(1),
        "answered in {took:?} beside 1,000 slow connections and 200 idle WebSockets"
    );
    let healthz = reqwest::Client::new()
        .get(format!("{}/healthz", server.base))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .expect("healthz answers");
    assert_eq!(healthz.status(), 200);

    // Every slow connection is closed: at once when a newcomer took its place, else when its
    // header-read timeout passes (a second of margin).
    for (i, (opened, stream)) in slow.iter_mut().enumerate() {
        let deadline = *opened + HEADER_TIMEOUT + Duration::from_secs(1);
        assert!(
            ends_by(stream, deadline).await,
            "slow connection {i} outlived the header-read timeout"
        );
    }
    drop(sockets);
}

#[tokio::test]
async fn a_process_held_to_256_descriptors_outlasts_slow_and_idle_clients_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("edge.db").display());
    a_process_held_to_256_descriptors_outlasts_slow_and_idle_clients(&url).await;
}

#[tokio::test]
async fn a_process_held_to_256_descriptors_outlasts_slow_and_idle_clients_postgres() {
    let scratch = ScratchDatabase::create("edge").await;
    a_process_held_to_256_descriptors_outlasts_slow_and_idle_clients(&scratch.url).await;
    scratch.drop().await;
}

/// Sends an authenticated query on `stream`, keeping the connection alive; its status line.
async fn keep_alive_query(stream: &mut TcpStream, addr: &str, token: &str) -> String {
    let body = r#"{"query":"{ integrations { totalCount } }"}"#;
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    status_line(stream, &request).await
}

/// Sends `request` on `stream` (kept alive); the status line of its answer.
async fn status_line(stream: &mut TcpStream, request: &str) -> String {
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 8192];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("answered")
        .unwrap();
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// With one place left: a connection that sends half a header, then a newcomer whose
/// authenticated query is answered while the quiet one is closed. The newcomer, kept alive.
async fn displaces_a_quiet_connection(addr: &str, token: &str) -> TcpStream {
    let mut quiet = TcpStream::connect(addr).await.unwrap();
    quiet.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut newcomer = TcpStream::connect(addr).await.unwrap();
    assert_eq!(
        keep_alive_query(&mut newcomer, addr, token).await,
        "HTTP/1.1 200 OK"
    );
    assert!(
        ends_by(&mut quiet, Instant::now() + Duration::from_secs(2)).await,
        "the quiet unproven connection was closed"
    );
    newcomer
}

/// At the cap: a newcomer takes the place of a quiet connection that never sent a valid token,
/// never of one that did; with only proven connections left it is answered 503.
#[tokio::test]
async fn the_connection_cap_never_closes_a_proven_connection() {
    let config = Config {
        max_connections: Some(2),
        ..Config::defaults()
    };
    let server = Server::start(Backend::Sqlite, config).await;
    let token = server.fx.token(TokenRole::Viewer).await;
    let addr = server.url("").trim_start_matches("http://").to_owned();

    let mut proven = TcpStream::connect(&addr).await.unwrap();
    assert_eq!(
        keep_alive_query(&mut proven, &addr, &token).await,
        "HTTP/1.1 200 OK"
    );
    // The third connection: the quiet unproven one gives way, the proven one stays.
    let _newcomer = displaces_a_quiet_connection(&addr, &token).await;
    assert_eq!(
        keep_alive_query(&mut proven, &addr, &token).await,
        "HTTP/1.1 200 OK",
        "the proven connection is still served"
    );

    // Both places are now held by proven connections: the next one is refused, at once.
    let mut refused = TcpStream::connect(&addr).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(2), refused.read_to_string(&mut answer))
        .await
        .expect("refused at once")
        .unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 503") && answer.contains("Retry-After: 1"),
        "{answer}"
    );
    // Closing a proven connection frees its place.
    drop(proven);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut next = TcpStream::connect(&addr).await.unwrap();
    assert_eq!(
        keep_alive_query(&mut next, &addr, &token).await,
        "HTTP/1.1 200 OK"
    );
}

/// A graphql-ws connection proves itself with its `connection_init`, a SCIM connection with
/// its integration's token: neither gives way to a newcomer.
#[tokio::test]
async fn websockets_and_scim_clients_that_authenticated_keep_their_place() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let config = Config {
        max_connections: Some(3),
        ..Config::defaults()
    };
    let server = Server::start(Backend::Sqlite, config).await;
    let token = server.fx.token(TokenRole::Viewer).await;
    let scim = crate::scim::add_scim(&server.fx, "Okta").await;
    let addr = server.url("").trim_start_matches("http://").to_owned();
    let scim_path = scim["scimBaseUrl"].as_str().unwrap();
    let scim_path = &scim_path[scim_path.find("/scim/v2/").unwrap()..];
    let scim_get = format!(
        "GET {scim_path}/Users HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\r\n",
        scim["scimToken"].as_str().unwrap()
    );
    let scim_status = async |stream: &mut TcpStream| status_line(stream, &scim_get).await;

    let mut ws = crate::http::ws_connect(&server).await;
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    ws.send(Message::text(init.to_string())).await.unwrap();
    assert_eq!(
        crate::http::next_json(&mut ws).await.unwrap()["type"],
        "connection_ack"
    );
    let mut scim_conn = TcpStream::connect(&addr).await.unwrap();
    assert_eq!(scim_status(&mut scim_conn).await, "HTTP/1.1 200 OK");
    let _newcomer = displaces_a_quiet_connection(&addr, &token).await;
    // The WebSocket still answers, the SCIM connection still serves.
    ws.send(Message::text(json!({ "type": "ping" }).to_string()))
        .await
        .unwrap();
    assert_eq!(
        crate::http::next_json(&mut ws).await.expect("still open")["type"],
        "pong"
    );
    assert_eq!(scim_status(&mut scim_conn).await, "HTTP/1.1 200 OK");
    // Every place is held by a client that authenticated: the next one is refused.
    let mut refused = TcpStream::connect(&addr).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(2), refused.read_to_string(&mut answer))
        .await
        .expect("refused at once")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
}
