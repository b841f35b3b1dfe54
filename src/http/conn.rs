//! The connection loop: what `axum::serve` does (a task per connection, WebSocket upgrades,
//! graceful shutdown), with the bounds it does not let one set, so no client can hold dirgate
//! at the connection level:
//!
//! - a client has [`HEADER_READ_TIMEOUT`] to send a request's headers, and the same to send the
//!   next one on a kept-alive connection, or the connection is closed (hyper's timeout, with
//!   the timer `axum::serve` leaves out: without it a client sending half a request line held
//!   its connection for ever);
//! - at most [`max_connections`] connections are open at once (the open-files limit less a
//!   reserve for the database pool, providers and webhooks): one past them is answered 503
//!   with `Retry-After` and closed at once, before the descriptor table is full;
//! - a request body that pauses for [`BODY_READ_TIMEOUT`] is refused (the router's layer);
//! - an accept that fails (no descriptor left) waits a moment instead of spinning.

use axum::{Router, body::Body, extract::Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::{sync::Arc, time::Duration};
use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpStream},
    sync::{Semaphore, watch},
};
use tower::ServiceExt;

/// How long a client may take to send a request's headers (and, on a kept-alive connection,
/// to start the next request).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request body may pause between two of its parts (the router's
/// `RequestBodyTimeoutLayer`); past it the request is refused.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Serves `router` on `listener` until `shutdown`, then lets the requests in flight finish.
pub async fn serve(
    router: Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let open = Arc::new(Semaphore::new(max_connections()));
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
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(
            router
                .clone()
                .map_request(|request: Request<Incoming>| request.map(Body::new)),
        );
        let (mut stop, done) = (stop_rx.clone(), done_rx.clone());
        tokio::spawn(async move {
            let _held = (permit, done);
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
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
        });
    }
    drop(listener);
    drop(stop_tx);
    drop(done_rx);
    done_tx.closed().await;
    Ok(())
}

/// A connection past the cap: 503 with `Retry-After`, then closed.
async fn refuse(mut stream: TcpStream) {
    const ANSWER: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(ANSWER)).await;
}
