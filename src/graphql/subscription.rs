//! The `Subscription` root, served over WebSocket (`graphql-transport-ws`).

use super::{
    context::ContextExt,
    ids::{self, kinds},
    types::SyncRun,
};
use crate::sync::SyncEvents;
use async_graphql::{Context, ID, Result, Subscription as GqlSubscription};
use futures_util::{Stream, StreamExt, stream};
use tokio::sync::broadcast::error::RecvError;

/// Live updates. Needs an API token, sent in the `connection_init` payload.
pub struct Subscription;

#[GqlSubscription]
impl Subscription {
    /// Every change of a sync run's state or counters, optionally of one integration only.
    async fn sync_run_updated(
        &self,
        ctx: &Context<'_>,
        integration_id: Option<ID>,
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
}
