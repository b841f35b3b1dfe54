//! The connection-edge benchmark: a `dirgate serve` process (the release binary, on SQLite,
//! under `ulimit -n NOFILE` like a systemd service's default) attacked the way issue #27
//! describes, with the figures printed:
//!
//! 1. slow headers: `--slow` connections each send `POST /graphql HTTP/1.1\r\nHost: x\r\n`
//!    and then nothing; an authenticated query and `/healthz` are timed beside them, and the
//!    slow connections still open are counted 15 s later;
//! 2. idle WebSockets: `--idle-sockets` upgrade to graphql-ws and never send
//!    `connection_init`; those still open 6 s later are counted;
//! 3. a subscription flood: one authenticated connection sends `--subscribes` subscribe
//!    messages as fast as it can; the accepted and refused ones are counted, and the process's
//!    resident memory read before and after (`VmRSS`, and the peak `VmHWM`).
//!
//! ```sh
//! cargo build --release && cargo run --release --example edge_bench
//! cargo run --release --example edge_bench -- --nofile 256 --slow 1000 --idle-sockets 200
//! ```

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use tokio::{io::AsyncWriteExt, net::TcpStream};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The connection-edge benchmark (see the top of `examples/edge_bench.rs`).
#[derive(clap::Parser, Debug)]
struct Args {
    /// The `dirgate` binary to attack.
    #[arg(long, default_value = "target/release/dirgate")]
    bin: String,
    /// Its open-files limit, soft and hard (systemd's default soft limit is 1,024).
    #[arg(long, default_value_t = 1024)]
    nofile: u64,
    /// Slow-header connections.
    #[arg(long, default_value_t = 1100)]
    slow: usize,
    /// WebSockets that never send `connection_init`.
    #[arg(long, default_value_t = 300)]
    idle_sockets: usize,
    /// Subscribe messages sent on one connection.
    #[arg(long, default_value_t = 20_000)]
    subscribes: usize,
}

/// The process under attack.
struct Target {
    child: Child,
    base: String,
    token: String,
    _dir: tempfile::TempDir,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Target {
    fn start(args: &Args) -> BenchResult<Self> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("edge.db").display());
        let out = Command::new(&args.bin)
            .args(["token", "create", "--name", "bench", "--role", "admin"])
            .env("DATABASE_URL", &url)
            .env("DIRGATE_DATA_DIR", dir.path())
            .output()?;
        if !out.status.success() {
            return Err(format!("token create: {out:?}").into());
        }
        let token = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n {} && exec {} serve --listen 127.0.0.1:0",
                args.nofile, args.bin
            ))
            .env("DATABASE_URL", &url)
            .env("DIRGATE_DATA_DIR", dir.path())
            .env("DIRGATE_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        let first = lines.next().ok_or("serve printed nothing")??;
        std::thread::spawn(move || lines.for_each(drop));
        let base = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .ok_or_else(|| format!("serve prints where it listens: {first}"))?
            .to_owned();
        Ok(Self {
            child,
            base,
            token,
            _dir: dir,
        })
    }

    fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// (VmRSS, VmHWM) of the process, in MB.
    fn memory(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
                .map_or(0.0, |kb| kb / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// An authenticated query on a new connection: how long it took, or why it failed.
    async fn query(&self) -> Result<Duration, String> {
        let started = Instant::now();
        let response = reqwest::Client::new()
            .post(format!("{}/graphql", self.base))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(30))
            .json(&json!({ "query": "{ integrations { totalCount } }" }))
            .send()
            .await
            .map_err(|e| format!("failed after {:?}: {e}", started.elapsed()))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status != 200 || body["data"]["integrations"]["totalCount"] != 0 {
            return Err(format!("answered {status} after {:?}", started.elapsed()));
        }
        Ok(started.elapsed())
    }

    async fn healthz(&self) -> Result<Duration, String> {
        let started = Instant::now();
        let response = reqwest::Client::new()
            .get(format!("{}/healthz", self.base))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| format!("failed after {:?}: {e}", started.elapsed()))?;
        match response.status().as_u16() {
            200 => Ok(started.elapsed()),
            other => Err(format!("answered {other} after {:?}", started.elapsed())),
        }
    }
}

fn show(what: &str, result: Result<Duration, String>) {
    match result {
        Ok(took) => println!("  {what}: {:.1} ms", took.as_secs_f64() * 1000.0),
        Err(why) => println!("  {what}: {why}"),
    }
}

/// Whether the server closed `stream` (EOF or an error) by now.
fn closed(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match stream.try_read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(err) => err.kind() != std::io::ErrorKind::WouldBlock,
    }
}

async fn slow_headers(target: &Target, args: &Args) -> BenchResult<()> {
    println!("slow headers: {} connections", args.slow);
    let mut slow = Vec::new();
    let mut failed = 0;
    let opened = Instant::now();
    for _ in 0..args.slow {
        match TcpStream::connect(target.addr()).await {
            Ok(mut stream) => {
                let _ = stream
                    .write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\n")
                    .await;
                slow.push(stream);
            }
            Err(_) => failed += 1,
        }
    }
    println!(
        "  opened in {:.1} s ({failed} connects failed)",
        opened.elapsed().as_secs_f64()
    );
    for i in 1..=3 {
        show(
            &format!("authenticated query {i} beside them"),
            target.query().await,
        );
    }
    show("/healthz beside them", target.healthz().await);
    let open_now = slow.iter().filter(|s| !closed(s)).count();
    println!(
        "  still open {:.1} s after the first: {open_now}",
        opened.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(15).saturating_sub(opened.elapsed())).await;
    let open_later = slow.iter().filter(|s| !closed(s)).count();
    println!(
        "  still open {:.1} s after the first: {open_later}",
        opened.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn idle_sockets(target: &Target, args: &Args) -> BenchResult<()> {
    println!(
        "idle WebSockets: {} without connection_init",
        args.idle_sockets
    );
    let mut sockets = Vec::new();
    let opened = Instant::now();
    for _ in 0..args.idle_sockets {
        let mut request = format!("ws://{}/graphql/ws", target.addr()).into_client_request()?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse()?);
        if let Ok((socket, _)) = tokio_tungstenite::connect_async(request).await {
            sockets.push(socket);
        }
    }
    println!(
        "  {} upgraded in {:.1} s",
        sockets.len(),
        opened.elapsed().as_secs_f64()
    );
    show("authenticated query beside them", target.query().await);
    tokio::time::sleep(Duration::from_secs(6).saturating_sub(opened.elapsed())).await;
    let mut open = 0;
    let mut codes = std::collections::BTreeMap::new();
    for socket in &mut sockets {
        match tokio::time::timeout(Duration::from_millis(20), socket.next()).await {
            Err(_) => open += 1,
            Ok(Some(Ok(Message::Close(Some(frame))))) => {
                *codes.entry(u16::from(frame.code)).or_insert(0) += 1;
            }
            Ok(_) => *codes.entry(0).or_insert(0) += 1,
        }
    }
    println!(
        "  still open {:.1} s after the first: {open}; closed by code: {codes:?} (0: without a code)",
        opened.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn subscription_flood(target: &Target, args: &Args) -> BenchResult<()> {
    println!(
        "subscription flood: {} subscribes on one connection",
        args.subscribes
    );
    let (rss, _) = target.memory();
    println!("  memory before: {rss:.0} MB");
    let mut request = format!("ws://{}/graphql/ws", target.addr()).into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", target.token) } });
    ws.send(Message::text(init.to_string())).await?;
    let _ack = ws.next().await;
    let (mut tx, mut rx) = ws.split();
    let total = args.subscribes;
    let started = Instant::now();
    let sender = tokio::spawn(async move {
        for i in 0..total {
            let subscribe = json!({
                "id": i.to_string(), "type": "subscribe",
                "payload": { "query": "subscription { syncRunUpdated { id } }" }
            });
            if tx.send(Message::text(subscribe.to_string())).await.is_err() {
                return i;
            }
        }
        total
    });
    let mut refused = 0;
    let mut other = 0;
    let mut closed = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), rx.next()).await {
            Err(_) | Ok(None) => break,
            Ok(Some(Ok(Message::Text(text)))) => {
                let message: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if message["type"] == "error"
                    && message["payload"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"
                {
                    refused += 1;
                } else {
                    other += 1;
                }
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                closed = Some(frame.map(|f| u16::from(f.code)));
                break;
            }
            Ok(Some(_)) => {}
        }
    }
    let sent = sender.await?;
    let (rss, peak) = target.memory();
    println!(
        "  sent {sent} in {:.1} s; refused LIMIT_EXCEEDED: {refused}; other messages: {other}; closed: {closed:?}",
        started.elapsed().as_secs_f64()
    );
    println!("  memory after: {rss:.0} MB (peak {peak:.0} MB)");
    Ok(())
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    let args: Args = clap::Parser::parse();
    // The attacker holds more sockets than the target may.
    rlimit::increase_nofile_limit(u64::MAX)?;
    println!(
        "dirgate serve ({}) under ulimit -n {}",
        args.bin, args.nofile
    );
    {
        let target = Target::start(&args)?;
        show("authenticated query, quiet", target.query().await);
        slow_headers(&target, &args).await?;
    }
    {
        let target = Target::start(&args)?;
        idle_sockets(&target, &args).await?;
    }
    {
        let target = Target::start(&args)?;
        subscription_flood(&target, &args).await?;
    }
    Ok(())
}
