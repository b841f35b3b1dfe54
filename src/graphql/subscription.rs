//! The `Subscription` root, served over WebSocket (`graphql-transport-ws`).

use super::{
    context::ContextExt,
    filters::EventFilter,
    ids::{self, kinds},
    types::{DirectoryEvent, SyncRun},
};
use crate::directory::events;
use crate::sync::SyncEvents;
use async_graphql::{Context, ID, Result, Subscription as GqlSubscription};
use futures_util::{Stream, StreamExt, stream};
use tokio::sync::broadcast::error::RecvError;

/// Live updates. Needs an API token, sent in the `connection_init` payload.
pub struct Subscription;

/// Live updates over the graphql-transport-ws WebSocket protocol (`/graphql`). Needs an API
/// token, sent in the `connection_init` payload.
#[GqlSubscription]
impl Subscription {
    /// Every change of a sync run's state or counters, optionally of one integration only.
    async fn sync_run_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only those of this integration.")] integration_id: Option<ID>,
    ) -> Result<impl Stream<Item = SyncRun> + use<>> {
        ctx.caller()?;
        let only = integration_id
            .map(|id| ids::decode(&id, kinds::INTEGRATION, "integrationId"))
            .transpose()?;
        let rx = ctx.data_unchecked::<SyncEvents>().subscribe().await;
        let runs = stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(run) => return Some((run, rx)),
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return None,
                }
            }
        });
        Ok(runs
            .filter(move |run| std::future::ready(only.is_none_or(|id| run.integration_id == id)))
            .map(SyncRun))
    }

    /// Directory change events as they commit, in feed order, across every process on the
    /// database. With `after` (a cursor of `events`), the events after it first: a consumer
    /// that reconnects misses nothing. Without it, from now on.
    async fn directory_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A cursor of this list and order: the page starts after it.")]
        after: Option<String>,
        #[graphql(desc = "Which events; all given conditions hold.")] filter: Option<EventFilter>,
    ) -> Result<impl Stream<Item = DirectoryEvent> + use<>> {
        ctx.caller()?;
        let filter = filter.unwrap_or_default().into_domain()?;
        let db = ctx.db().clone();
        let start = match ids::decode_after(after.as_deref())? {
            Some(seq) => seq,
            None => events::last_seq(&db).await?,
        };
        let state = (db, filter, start, std::collections::VecDeque::new());
        Ok(stream::unfold(
            state,
            |(db, filter, mut after, mut ready)| async move {
                loop {
                    if let Some(event) = ready.pop_front() {
                        return Some((DirectoryEvent(event), (db, filter, after, ready)));
                    }
                    match events::read(&db, after, 100, &filter).await {
                        Ok(read) => {
                            after = read.through;
                            if read.items.is_empty() {
                                events::written_or_poll().await;
                            }
                            ready.extend(read.items);
                        }
                        Err(err) => {
                            tracing::warn!(error = %err, "cannot read directory events; retrying");
                            tokio::time::sleep(events::POLL).await;
                        }
                    }
                }
            },
        ))
    }
}
