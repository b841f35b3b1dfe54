//! Verified API tokens, remembered so that a request need not read its token's row
//! (PostgreSQL only: a statement per request was a fifth of a nested query's cost).
//!
//! Revocation stays immediate:
//! - [`crate::directory::tokens::revoke`] evicts the token from every cache of its own process
//!   before it returns, and `NOTIFY`s the other processes in the revoking transaction itself;
//! - each process `LISTEN`s ([`listen`]) and evicts what it hears;
//! - a cache is used only while its listener is listening: a lost connection empties it and
//!   turns it off until the listener listens again;
//! - a lookup that read the row while a revocation arrived does not put what it read in the
//!   cache (a generation number, bumped by every eviction, guards the insert).
//!
//! An entry is trusted for [`FRESH_FOR`] at most, then the row is read again (which also
//! keeps `last_used_at` current to the minute). SQLite has no cache: there the lookup is an
//! in-process read, and another process (the CLI) could not tell this one of a revocation.

use super::Caller;
use crate::store::{self, Db, notices};
use sea_orm::{DatabaseBackend, DatabaseConnection};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
    time::{Duration, Instant},
};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

/// How long a verified token is trusted before its row is read again.
pub const FRESH_FOR: Duration = Duration::from_secs(60);

/// Most tokens remembered; past it the cache starts over (tokens are few; this bounds what a
/// flood of distinct valid tokens could make it hold).
const MAX_ENTRIES: usize = 10_000;

/// The `NOTIFY` channel prefix of revocations.
const CHANNEL: &str = "dirgate_token_revocations";

/// Verified tokens by id. Cheap to share (`Arc`).
#[derive(Default)]
pub struct TokenCache {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Whether the cache may be used: its process is listening for revocations.
    live: bool,
    /// Bumped by every eviction: a lookup that started before one does not insert.
    generation: u64,
    entries: HashMap<i64, Entry>,
}

struct Entry {
    secret_hash: String,
    caller: Caller,
    verified: Instant,
}

/// Where a lookup that missed the cache stood (the generation it saw): pass it back to
/// [`TokenCache::insert`].
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

/// Every live cache of this process, so a revocation evicts from all of them at once.
static CACHES: Mutex<Vec<Weak<TokenCache>>> = Mutex::new(Vec::new());

impl TokenCache {
    /// A cache, registered with this process's revocations; not live until [`listen`] says so.
    pub fn new() -> Arc<Self> {
        let cache = Arc::new(Self::default());
        let mut caches = CACHES.lock().unwrap_or_else(|e| e.into_inner());
        caches.retain(|c| c.strong_count() > 0);
        caches.push(Arc::downgrade(&cache));
        cache
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The caller of token `id` if it was verified with this secret hash less than
    /// [`FRESH_FOR`] ago, and the cache is live.
    pub fn get(&self, id: i64, secret_hash: &str) -> Result<Caller, Ticket> {
        let state = self.state();
        match state.entries.get(&id) {
            Some(entry)
                if entry.verified.elapsed() < FRESH_FOR
                    && bool::from(entry.secret_hash.as_bytes().ct_eq(secret_hash.as_bytes())) =>
            {
                Ok(entry.caller.clone())
            }
            // An entry exists only while live: turning off empties the cache.
            _ => Err(Ticket(state.generation)),
        }
    }

    /// Remembers a token just verified against its row, unless a revocation arrived since the
    /// lookup began (or the cache is not live).
    pub fn insert(&self, ticket: Ticket, id: i64, secret_hash: String, caller: Caller) {
        let mut state = self.state();
        // Going live or off bumps the generation too, so a ticket of another state fails.
        if !state.live || ticket.0 != state.generation {
            return;
        }
        if state.entries.len() >= MAX_ENTRIES {
            state.entries.clear();
        }
        state.entries.insert(
            id,
            Entry {
                secret_hash,
                caller,
                verified: Instant::now(),
            },
        );
    }

    /// Forgets token `id` (revoked, or refused).
    pub fn evict(&self, id: i64) {
        let mut state = self.state();
        state.generation += 1;
        state.entries.remove(&id);
    }

    /// Turns the cache on (listening) or off and empty (not listening).
    fn set_live(&self, live: bool) {
        let mut state = self.state();
        state.generation += 1;
        state.entries.clear();
        state.live = live;
    }

    /// Whether it is in use (its process listens for revocations).
    pub fn is_live(&self) -> bool {
        self.state().live
    }

    /// How many tokens it holds (tests).
    pub fn len(&self) -> usize {
        self.state().entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Evicts token `id` from every cache of this process.
pub fn evict_everywhere(id: i64) {
    let caches: Vec<Arc<TokenCache>> = CACHES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    for cache in caches {
        cache.evict(id);
    }
}

/// Tells every process that token `id` was revoked: a `NOTIFY` in the revoking transaction
/// (delivered when it commits). Nothing on SQLite.
pub async fn announce_revocation(txn: &impl Db, id: i64) -> Result<(), sea_orm::DbErr> {
    if store::backend(txn) != DatabaseBackend::Postgres {
        return Ok(());
    }
    let channel = notices::channel(txn, CHANNEL).await?;
    notices::notify(txn, &channel, id.to_string()).await
}

/// Keeps `cache` live while this process listens for revocations (PostgreSQL); returns at
/// once on SQLite, leaving the cache off.
pub async fn listen(db: DatabaseConnection, cache: Arc<TokenCache>, shutdown: CancellationToken) {
    use sea_orm::sqlx::postgres::PgListener;
    if store::backend(&db) != DatabaseBackend::Postgres {
        return;
    }
    loop {
        let connected = async {
            let channel = notices::channel(&db, CHANNEL)
                .await
                .map_err(|e| e.to_string())?;
            let mut listener = PgListener::connect_with(db.get_postgres_connection_pool())
                .await
                .map_err(|e| e.to_string())?;
            listener.listen(&channel).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(listener)
        };
        let mut listener = tokio::select! {
            () = shutdown.cancelled() => return,
            connected = connected => match connected {
                Ok(listener) => listener,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for token revocations; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            },
        };
        cache.set_live(true);
        loop {
            // `try_recv`, not `recv`: `recv` reconnects by itself and would hide the gap in
            // which revocations went unheard; `try_recv` says `None` when the connection drops.
            let received = tokio::select! {
                () = shutdown.cancelled() => {
                    cache.set_live(false);
                    return;
                }
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(notification)) => match notification.payload().parse::<i64>() {
                    Ok(id) => cache.evict(id),
                    // Not a token id (nothing of dirgate's sends one): forget everything.
                    Err(_) => cache.set_live(true),
                },
                Ok(None) | Err(_) => {
                    cache.set_live(false);
                    tracing::warn!(
                        "the token-revocation listener lost its connection; the token cache is off until it listens again"
                    );
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::TokenRole;

    fn caller() -> Caller {
        Caller::from_token(7, "t".into(), TokenRole::Viewer)
    }

    /// A revocation evicts from every cache of the process and bumps each one's generation,
    /// so tests that revoke must not run beside tests that look up: each test holds this.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn live() -> Arc<TokenCache> {
        let cache = TokenCache::new();
        cache.set_live(true);
        cache
    }

    #[test]
    fn a_verified_token_is_served_from_the_cache_with_its_own_secret_only() {
        let _serial = serial();
        let cache = live();
        let ticket = cache.get(7, "hash").unwrap_err();
        cache.insert(ticket, 7, "hash".into(), caller());
        assert_eq!(cache.get(7, "hash").unwrap(), caller());
        assert!(cache.get(7, "other").is_err(), "another secret for the id");
        assert!(cache.get(8, "hash").is_err());
    }

    #[test]
    fn a_revocation_during_a_lookup_keeps_the_lookup_out_of_the_cache() {
        let _serial = serial();
        let cache = live();
        let ticket = cache.get(7, "hash").unwrap_err();
        // The row is read (still valid), then the revocation arrives, then the insert.
        evict_everywhere(7);
        cache.insert(ticket, 7, "hash".into(), caller());
        assert!(cache.get(7, "hash").is_err());
        assert!(cache.is_empty());
    }

    #[test]
    fn a_revocation_evicts_from_every_cache_of_the_process() {
        let _serial = serial();
        let (a, b) = (live(), live());
        for cache in [&a, &b] {
            let ticket = cache.get(7, "hash").unwrap_err();
            cache.insert(ticket, 7, "hash".into(), caller());
        }
        evict_everywhere(7);
        assert!(a.get(7, "hash").is_err() && b.get(7, "hash").is_err());
    }

    #[test]
    fn a_cache_that_is_not_listening_holds_nothing() {
        let _serial = serial();
        let cache = live();
        let ticket = cache.get(7, "hash").unwrap_err();
        cache.insert(ticket, 7, "hash".into(), caller());
        cache.set_live(false);
        assert!(cache.is_empty());
        let ticket = cache.get(7, "hash").unwrap_err();
        cache.insert(ticket, 7, "hash".into(), caller());
        assert!(cache.is_empty(), "no insert while off");
        cache.set_live(true);
        assert!(
            cache.get(7, "hash").is_err(),
            "back on, it starts out empty"
        );
    }
}
