//! The connection loop: what `axum::serve` does (a task per connection, WebSocket upgrades,
//! graceful shutdown), with the bounds it does not let one set, so no client can hold dirgate
//! at the connection level:
//!
//! - a client has [`Bounds::header_read_timeout`] (`DIRGATE_HTTP_HEADER_TIMEOUT_SECONDS`,
//!   10 s) to send a request's headers, and the same to start the next one on a kept-alive
//!   connection (hyper restarts the timer when the connection goes idle: it is also the idle
//!   timeout), or the connection is closed (hyper's timeout, with the timer `axum::serve`
//!   leaves out: without it a client sending half a request line held its connection for ever);
//! - at most [`Bounds::max_connections`] connections are open at once (by default the
//!   open-files limit less a reserve for the database pool, providers and webhooks); at the
//!   cap a new connection takes the place of the unproven connection that has been quiet
//!   longest ([`super::slots`]: a client that never sent a valid token cannot keep anyone
//!   out), and only when every connection is busy or proven is it answered 503 with
//!   `Retry-After` and closed, before the descriptor table is full;
//! - a request body that pauses for [`Bounds::body_read_timeout`]
//!   (`DIRGATE_HTTP_BODY_TIMEOUT_SECONDS`, 10 s) is refused (the router's layer);
//! - an accept that fails (no descriptor left) waits a moment instead of spinning.

use super::slots::{Admission, Busy, Counted, Proof, Slots};
use axum::{Router, body::Body, extract::Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::time::Duration;
use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpStream},
    sync::watch,
};
use tower::ServiceExt;

/// Descriptors kept for what is not a client connection: the database pool, provider and
/// webhook calls, the data files.
const RESERVED_DESCRIPTORS: u64 = 128;

/// The open connections the process accepts at once: its open-files limit less
/// [`RESERVED_DESCRIPTORS`], at least 16, at most 100,000.
pub fn max_connections() -> usize {
    let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap_or((1024, 1024));
    let room = soft.saturating_sub(RESERVED_DESCRIPTORS).clamp(16, 100_000);
    usize::try_from(room).unwrap_or(100_000)
}

/// The bounds of the connection edge (settings, see [`crate::config::Config`]).
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// How long a client may take to send a request's headers (and, on a kept-alive
    /// connection, to start the next request).
    pub header_read_timeout: Duration,
    /// How long a request body may pause between two of its parts; past it the request is
    /// refused.
    pub body_read_timeout: Duration,
    /// Connections open at once (see [`max_connections`]).
    pub max_connections: usize,
}

impl Bounds {
    /// The bounds `config` sets.
    pub fn of(config: &crate::Config) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(config.http_header_timeout_seconds),
            body_read_timeout: Duration::from_secs(config.http_body_timeout_seconds),
            max_connections: config
                .max_connections
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or_else(max_connections),
        }
    }
}

/// Serves `router` on `listener` until `shutdown`, then lets the requests in flight finish.
pub async fn serve(
    router: Router,
    listener: TcpListener,
    bounds: Bounds,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Slots::new(bounds.max_connections);
    // Dropped at shutdown: every connection then shuts down gracefully.
    let (stop_tx, stop_rx) = watch::channel(());
    // Held by every connection: closed when the last one ends.
    let (done_tx, done_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = match slots.admit() {
            Admission::Admitted(slot) => slot,
            Admission::Evicted(slot) => {
                crate::metrics::connection_evicted();
                slot
            }
            Admission::Full => {
                crate::metrics::connection_refused();
                tokio::spawn(refuse(stream));
                continue;
            }
        };
        let proof = Proof::new(slots.clone(), slot);
        let io = TokioIo::new(Counted::new(stream, proof.clone()));
        let (stop, done) = (stop_rx.clone(), done_rx.clone());
        tokio::spawn(connection(io, router.clone(), proof, bounds, stop, done));
    }
    drop(listener);
    drop(stop_tx);
    drop(done_rx);
    done_tx.closed().await;
    Ok(())
}

/// Serves one connection until it ends, or until `stop` changes (then gracefully); `done` is
/// held until it ends.
async fn connection(
    io: TokioIo<Counted>,
    router: Router,
    proof: Proof,
    bounds: Bounds,
    mut stop: watch::Receiver<()>,
    done: watch::Receiver<()>,
) {
    let _held = done;
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        answer(router.clone(), proof.clone(), request)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(bounds.header_read_timeout);
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(err) = result {
                tracing::trace!(error = %err, "a connection ended");
            }
            return;
        }
        _ = stop.changed() => conn.as_mut().graceful_shutdown(),
    }
    if let Err(err) = conn.await {
        tracing::trace!(error = %err, "a connection ended");
    }
}

/// One request of a connection, through the router. Unproven connections give way only
/// between requests: the guard goes with the response body, so a request is in flight until
/// its answer is sent.
async fn answer(
    router: Router,
    proof: Proof,
    request: Request<Incoming>,
) -> Result<axum::response::Response, std::convert::Infallible> {
    let busy = proof.busy();
    let mut request = request.map(Body::new);
    request.extensions_mut().insert(proof.clone());
    let response = router.oneshot(request).await?;
    // The SCIM routes say so on the response (the GraphQL ones prove the connection
    // themselves, as a WebSocket does only after its upgrade).
    if response.extensions().get::<crate::auth::Proven>().is_some() {
        proof.prove();
    }
    Ok(response.map(|body| Body::new(Answering { body, _busy: busy })))
}

/// A response body that keeps its request in flight (see [`Proof::busy`]) until it is sent.
struct Answering {
    body: Body,
    _busy: Busy,
}

impl http_body::Body for Answering {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A connection past the cap: 503 with `Retry-After`, then closed.
async fn refuse(mut stream: TcpStream) {
    const ANSWER: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(ANSWER)).await;
}
