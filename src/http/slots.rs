//! Connection slots: the cap on open connections, and who gives way when it is reached.
//!
//! Every accepted connection holds one of [`Slots`]' permits for as long as its socket is open
//! (the permit lives in the socket's wrapper, [`Counted`], so a connection upgraded to a
//! WebSocket keeps holding it). A connection is *unproven* until one of its requests carries a
//! valid token (an API token, a SCIM token, or a graphql-ws `connection_init` that
//! authenticates). When every permit is taken, a new connection takes the permit of the
//! unproven connection that has waited longest without a request in flight (a client sending
//! half a header, a kept-alive connection gone quiet, a WebSocket that never said
//! `connection_init`): that one is closed at once, the newcomer is served. Only when no such
//! connection exists is the newcomer answered 503. So clients that never authenticate can fill
//! the table but never keep anyone out: a fresh client's request takes a slot from them, and
//! connections that proved a token are never the ones closed.

use futures_util::task::AtomicWaker;
use std::{
    collections::BTreeMap,
    io,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::{OwnedSemaphorePermit, Semaphore},
};

/// The open-connection cap and the unproven connections that may give way.
pub struct Slots {
    open: Arc<Semaphore>,
    /// Unproven connections with no request in flight, oldest first.
    idle: Mutex<Idle>,
}

#[derive(Default)]
struct Idle {
    next: u64,
    unproven: BTreeMap<u64, Arc<Slot>>,
}

/// What became of a connection at the door.
pub enum Admission {
    /// A permit was free.
    Admitted(Arc<Slot>),
    /// The cap was reached; an idle unproven connection gave its permit up.
    Evicted(Arc<Slot>),
    /// The cap was reached and every connection is busy or proven.
    Full,
}

/// One open connection's place.
pub struct Slot {
    /// Set once a request of this connection carried a valid token.
    proven: AtomicBool,
    evicted: AtomicBool,
    /// Woken when the connection is evicted, so its reader sees the socket end.
    reader: AtomicWaker,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Its key in [`Idle::unproven`] while it is there.
    key: Option<u64>,
    /// Requests in flight (HTTP/1: at most one).
    busy: u32,
    /// Given back when the socket closes (or handed over when it is evicted).
    permit: Option<OwnedSemaphorePermit>,
}

impl Slots {
    /// A table of `max` connections.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            open: Arc::new(Semaphore::new(max)),
            idle: Mutex::new(Idle::default()),
        })
    }

    /// Connections open now.
    #[cfg(test)]
    fn open(&self, max: usize) -> usize {
        max - self.open.available_permits()
    }

    /// A place for a new connection (see the module's documentation).
    pub fn admit(self: &Arc<Self>) -> Admission {
        if let Ok(permit) = self.open.clone().try_acquire_owned() {
            return Admission::Admitted(self.place(permit));
        }
        let victim = {
            let mut idle = self.lock();
            let Some((_, victim)) = idle.unproven.pop_first() else {
                return Admission::Full;
            };
            let mut state = lock(&victim.state);
            state.key = None;
            victim.evicted.store(true, Ordering::Release);
            let permit = state.permit.take();
            drop(state);
            (victim, permit)
        };
        let (victim, permit) = victim;
        victim.reader.wake();
        match permit {
            Some(permit) => Admission::Evicted(self.place(permit)),
            None => Admission::Full,
        }
    }

    fn place(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            proven: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            reader: AtomicWaker::new(),
            state: Mutex::new(State {
                permit: Some(permit),
                ..State::default()
            }),
        });
        self.enter(&slot);
        slot
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Idle> {
        lock(&self.idle)
    }

    /// Puts an unproven connection with no request in flight among those that may give way.
    fn enter(&self, slot: &Arc<Slot>) {
        let mut idle = self.lock();
        let mut state = lock(&slot.state);
        if slot.proven.load(Ordering::Acquire)
            || slot.evicted.load(Ordering::Acquire)
            || state.busy > 0
            || state.key.is_some()
            || state.permit.is_none()
        {
            return;
        }
        let key = idle.next;
        idle.next += 1;
        state.key = Some(key);
        idle.unproven.insert(key, slot.clone());
    }

    fn leave(&self, idle: &mut Idle, state: &mut State) {
        if let Some(key) = state.key.take() {
            idle.unproven.remove(&key);
        }
    }

    /// A request of `slot`'s connection started.
    pub fn request_started(&self, slot: &Arc<Slot>) {
        if slot.proven.load(Ordering::Acquire) {
            return;
        }
        let mut idle = self.lock();
        let mut state = lock(&slot.state);
        state.busy += 1;
        self.leave(&mut idle, &mut state);
    }

    /// A request of `slot`'s connection ended (its response was sent, or dropped).
    pub fn request_ended(&self, slot: &Arc<Slot>) {
        if slot.proven.load(Ordering::Acquire) {
            return;
        }
        {
            let mut state = lock(&slot.state);
            state.busy = state.busy.saturating_sub(1);
        }
        self.enter(slot);
    }

    /// `slot`'s connection carried a valid token: it never gives way.
    pub fn prove(&self, slot: &Arc<Slot>) {
        if slot.proven.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut idle = self.lock();
        let mut state = lock(&slot.state);
        self.leave(&mut idle, &mut state);
    }

    /// `slot`'s socket closed: its permit goes back.
    fn close(&self, slot: &Arc<Slot>) {
        let permit = {
            let mut idle = self.lock();
            let mut state = lock(&slot.state);
            self.leave(&mut idle, &mut state);
            state.permit.take()
        };
        drop(permit);
    }
}

/// A poisoned lock only means another thread panicked while holding it; the bookkeeping it
/// guards is still whole (every update is a few assignments), so carry on.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The handle a request carries (as a request extension) to prove its connection.
#[derive(Clone)]
pub struct Proof {
    slots: Arc<Slots>,
    slot: Arc<Slot>,
}

impl Proof {
    pub fn new(slots: Arc<Slots>, slot: Arc<Slot>) -> Self {
        Self { slots, slot }
    }

    /// The request carried a valid token.
    pub fn prove(&self) {
        self.slots.prove(&self.slot);
    }

    /// Marks a request in flight until the returned guard is dropped.
    pub fn busy(&self) -> Busy {
        self.slots.request_started(&self.slot);
        Busy(self.clone())
    }
}

/// A request in flight on a connection (see [`Proof::busy`]).
pub struct Busy(Proof);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.slots.request_ended(&self.0.slot);
    }
}

/// A client socket that holds its connection's slot: the permit goes back when it is dropped,
/// and once the connection is evicted every read and write fails, so whoever owns it (hyper,
/// or a WebSocket relay) ends it.
pub struct Counted {
    stream: TcpStream,
    proof: Proof,
}

impl Counted {
    pub fn new(stream: TcpStream, proof: Proof) -> Self {
        Self { stream, proof }
    }

    fn evicted(&self) -> bool {
        self.proof.slot.evicted.load(Ordering::Acquire)
    }
}

fn gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "closed to make room for another connection",
    )
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.proof.slots.close(&self.proof.slot);
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.proof.slot.reader.register(cx.waker());
        if this.evicted() {
            return Poll::Ready(Err(gone()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.evicted() {
            return Poll::Ready(Err(gone()));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.evicted() {
            return Poll::Ready(Err(gone()));
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(admission: Admission) -> Arc<Slot> {
        match admission {
            Admission::Admitted(slot) | Admission::Evicted(slot) => slot,
            Admission::Full => panic!("refused"),
        }
    }

    #[test]
    fn slots_evict_the_oldest_idle_unproven_connection() {
        let slots = Slots::new(3);
        let first = admitted(slots.admit());
        let second = admitted(slots.admit());
        let third = admitted(slots.admit());
        assert_eq!(slots.open(3), 3);
        let Admission::Evicted(fourth) = slots.admit() else {
            panic!("the table is full of idle unproven connections: one gives way");
        };
        assert!(
            first.evicted.load(Ordering::Acquire),
            "the oldest gives way"
        );
        assert!(!second.evicted.load(Ordering::Acquire));
        assert!(!third.evicted.load(Ordering::Acquire));
        assert!(
            lock(&first.state).permit.is_none(),
            "its permit was handed over"
        );
        assert!(lock(&fourth.state).permit.is_some());
        assert_eq!(slots.open(3), 3, "never more than the cap");
    }

    #[test]
    fn slots_never_evict_a_proven_or_busy_connection() {
        let slots = Slots::new(2);
        let proven = admitted(slots.admit());
        let busy = admitted(slots.admit());
        let (p, b) = (
            Proof::new(slots.clone(), proven.clone()),
            Proof::new(slots.clone(), busy.clone()),
        );
        p.prove();
        let guard = b.busy();
        assert!(matches!(slots.admit(), Admission::Full));
        assert!(!proven.evicted.load(Ordering::Acquire));
        assert!(!busy.evicted.load(Ordering::Acquire));
        // Its request answered, the unproven connection is idle again and may give way.
        drop(guard);
        assert!(matches!(slots.admit(), Admission::Evicted(_)));
        assert!(busy.evicted.load(Ordering::Acquire));
        assert!(!proven.evicted.load(Ordering::Acquire));
    }

    #[test]
    fn slots_give_the_permit_back_when_the_socket_closes() {
        let slots = Slots::new(1);
        let only = admitted(slots.admit());
        slots.close(&only);
        assert_eq!(slots.open(1), 0);
        assert!(matches!(slots.admit(), Admission::Admitted(_)));
        // Closing twice (an evicted socket dropped later) gives back nothing more.
        slots.close(&only);
        assert_eq!(slots.open(1), 1);
    }

    #[test]
    fn slots_evict_in_the_order_connections_went_quiet() {
        let slots = Slots::new(2);
        let older = admitted(slots.admit());
        let newer = admitted(slots.admit());
        // The older connection makes a request: it is now the one that went quiet last.
        drop(Proof::new(slots.clone(), older.clone()).busy());
        let _ = slots.admit();
        assert!(newer.evicted.load(Ordering::Acquire));
        assert!(!older.evicted.load(Ordering::Acquire));
    }
}
