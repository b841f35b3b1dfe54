//! The WebSocket edge of subscriptions: what stands between a client's socket and
//! async-graphql's protocol handler (`graphql-transport-ws` and the older `graphql-ws`), so no
//! connection holds dirgate without a time or count bound:
//!
//! - a connection that does not send `connection_init` within [`INIT_TIMEOUT`] is closed with
//!   4408 ("Connection initialisation timeout", as the protocol says);
//! - a connection holds at most [`MAX_SUBSCRIPTIONS`] subscriptions: a subscribe past it is
//!   answered with an `error` message for its id (`LIMIT_EXCEEDED`) and never reaches the
//!   schema;
//! - what is sent to a client waits in a queue of [`OUTGOING`] messages; a client that does
//!   not read for [`SEND_TIMEOUT`] is dropped, so one that never reads cannot grow memory.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use std::{collections::HashSet, time::Duration};
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

/// How long a connection may go without `connection_init` (the reference server waits 3 s).
pub const INIT_TIMEOUT: Duration = Duration::from_secs(3);
/// Subscriptions one connection holds at once, at most.
pub const MAX_SUBSCRIPTIONS: usize = 100;
/// Messages waiting to be sent to one client, at most.
pub const OUTGOING: usize = 64;
/// How long a send to a client may wait (its socket's buffers full) before it is dropped.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages from a client waiting for the protocol handler, at most; past it the client is
/// read no further until the handler catches up.
const INCOMING: usize = 16;

/// The part of a protocol message the edge looks at.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
}

fn envelope(message: &Message) -> Option<Envelope> {
    match message {
        Message::Text(text) => serde_json::from_str(text.as_str()).ok(),
        _ => None,
    }
}

/// What the edge does with a client's message.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Forward,
    /// A subscribe past the cap: answered with this error, not forwarded.
    Refuse(String),
}

/// The connection's state, as the edge follows it.
#[derive(Default)]
struct Tracker {
    initialised: bool,
    active: HashSet<String>,
    legacy: bool,
}

impl Tracker {
    /// Looks at a message from the client.
    fn incoming(&mut self, message: &Message) -> Verdict {
        let Some(envelope) = envelope(message) else {
            return Verdict::Forward;
        };
        match (envelope.kind.as_str(), envelope.id) {
            ("connection_init", _) => self.initialised = true,
            (kind @ ("subscribe" | "start"), Some(id)) => {
                self.legacy = kind == "start";
                if !self.active.contains(&id) && self.active.len() >= MAX_SUBSCRIPTIONS {
                    return Verdict::Refuse(self.refusal(&id));
                }
                self.active.insert(id);
            }
            ("complete" | "stop", Some(id)) => {
                self.active.remove(&id);
            }
            _ => {}
        }
        Verdict::Forward
    }

    /// Looks at a message to the client: a subscription the server ended is no longer held.
    fn outgoing(&mut self, message: &Message) {
        if let Some(Envelope { kind, id: Some(id) }) = envelope(message)
            && matches!(kind.as_str(), "complete" | "error")
        {
            self.active.remove(&id);
        }
    }

    /// The error message refusing subscription `id`, in the connection's protocol.
    fn refusal(&self, id: &str) -> String {
        let error = serde_json::json!({
            "message": format!("a connection holds at most {MAX_SUBSCRIPTIONS} subscriptions; complete one first"),
            "extensions": { "code": "LIMIT_EXCEEDED", "limit": "subscriptions", "max": MAX_SUBSCRIPTIONS },
        });
        let payload = if self.legacy {
            error
        } else {
            serde_json::json!([error])
        };
        serde_json::json!({ "id": id, "type": "error", "payload": payload }).to_string()
    }
}

/// Relays between `socket` and `serve` (the protocol handler, given the handler's ends:
/// the messages it reads and where it writes) under the bounds above, until either side ends.
pub async fn relay<F, Fut>(socket: WebSocket, serve: F)
where
    F: FnOnce(Incoming, PollSender<Message>) -> Fut,
    Fut: Future<Output = ()>,
{
    let (mut to_client, mut from_client) = socket.split();
    let (in_tx, in_rx) = mpsc::channel(INCOMING);
    let (out_tx, mut out_rx) = mpsc::channel(OUTGOING);
    let handler = serve(Incoming(in_rx), PollSender::new(out_tx));
    tokio::pin!(handler);
    let init = tokio::time::sleep(INIT_TIMEOUT);
    tokio::pin!(init);
    let mut tracker = Tracker::default();
    let send = async |to_client: &mut futures_util::stream::SplitSink<WebSocket, Message>,
                      message: Message| {
        matches!(
            tokio::time::timeout(SEND_TIMEOUT, to_client.send(message)).await,
            Ok(Ok(()))
        )
    };
    // Once the handler ends, what it wrote last (a close frame, say) is still sent.
    let mut ended = false;
    let mut pending: Option<Message> = None;
    loop {
        tokio::select! {
            () = &mut handler, if !ended => ended = true,
            () = &mut init, if !tracker.initialised => {
                let close = Message::Close(Some(CloseFrame {
                    code: 4408,
                    reason: "Connection initialisation timeout".into(),
                }));
                send(&mut to_client, close).await;
                break;
            }
            // A message waits here while the handler's queue is full: the client is read no
            // further until it has room (backpressure, not buffering).
            permit = in_tx.reserve(), if pending.is_some() => {
                let Ok(permit) = permit else { break };
                if let Some(message) = pending.take() {
                    permit.send(Ok(message));
                }
            }
            message = from_client.next(), if !ended && pending.is_none() => {
                let Some(Ok(message)) = message else { break };
                match tracker.incoming(&message) {
                    Verdict::Forward => pending = Some(message),
                    Verdict::Refuse(error) => {
                        if !send(&mut to_client, Message::Text(error.into())).await {
                            break;
                        }
                    }
                }
            }
            message = out_rx.recv() => {
                let Some(message) = message else { break };
                tracker.outgoing(&message);
                if !send(&mut to_client, message).await {
                    tracing::debug!("a subscriber did not read within the send timeout; dropped");
                    break;
                }
            }
        }
    }
}

/// The handler's end of the client's messages, as async-graphql-axum reads them.
pub struct Incoming(mpsc::Receiver<Result<Message, axum::Error>>);

impl futures_util::Stream for Incoming {
    type Item = Result<Message, axum::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(json: serde_json::Value) -> Message {
        Message::Text(json.to_string().into())
    }

    #[test]
    fn tracker_refuses_a_subscribe_past_the_cap_and_frees_on_complete() {
        let mut tracker = Tracker::default();
        assert_eq!(
            tracker.incoming(&text(serde_json::json!({"type": "connection_init"}))),
            Verdict::Forward
        );
        assert!(tracker.initialised);
        for i in 0..MAX_SUBSCRIPTIONS {
            let subscribe = text(serde_json::json!({"type": "subscribe", "id": i.to_string()}));
            assert_eq!(tracker.incoming(&subscribe), Verdict::Forward);
        }
        let past = text(serde_json::json!({"type": "subscribe", "id": "past"}));
        let Verdict::Refuse(error) = tracker.incoming(&past) else {
            panic!("the subscribe past the cap is refused");
        };
        let error: serde_json::Value = serde_json::from_str(&error).unwrap();
        assert_eq!(error["id"], "past");
        assert_eq!(error["payload"][0]["extensions"]["code"], "LIMIT_EXCEEDED");
        // A client's complete and the server's complete each free a place.
        tracker.incoming(&text(serde_json::json!({"type": "complete", "id": "0"})));
        assert_eq!(tracker.incoming(&past), Verdict::Forward);
        tracker.outgoing(&text(serde_json::json!({"type": "complete", "id": "1"})));
        let another = text(serde_json::json!({"type": "subscribe", "id": "another"}));
        assert_eq!(tracker.incoming(&another), Verdict::Forward);
        assert_eq!(tracker.active.len(), MAX_SUBSCRIPTIONS);
    }

    #[test]
    fn tracker_forwards_what_it_cannot_read() {
        let mut tracker = Tracker::default();
        assert_eq!(
            tracker.incoming(&Message::Text("not json".into())),
            Verdict::Forward
        );
        assert_eq!(
            tracker.incoming(&Message::Binary(vec![1, 2].into())),
            Verdict::Forward
        );
        assert!(!tracker.initialised);
    }
}
