//! Relay cursor connections (`edges`, `nodes`, `pageInfo`, `totalCount`) over keyset pages.

use super::ids::Cursor;
use crate::{error::DomainResult, store::page::Page};
use async_graphql::{
    Object, OutputType, Result,
    connection::{Connection, Edge, EmptyFields},
};
use futures_util::future::BoxFuture;
use std::sync::Arc;

type CountFn = Arc<dyn Fn() -> BoxFuture<'static, DomainResult<u64>> + Send + Sync>;

/// The fields every connection has besides edges and page info. The count runs only when
/// `totalCount` is asked for.
pub struct Totals {
    count: CountFn,
}

impl Totals {
    /// A total computed by `count` when asked for.
    pub fn lazy<F, Fut>(count: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = DomainResult<u64>> + Send + 'static,
    {
        Self {
            count: Arc::new(move || Box::pin(count())),
        }
    }
}

#[Object]
impl Totals {
    /// How many items there are across all pages.
    async fn total_count(&self) -> Result<i64> {
        Ok((self.count)().await? as i64)
    }
}

/// A connection of `Node`s.
pub type Conn<Node> = Connection<Cursor, Node, Totals, EmptyFields>;

/// Turns a page of models in id order into a connection of nodes.
pub fn build<M, N: OutputType>(
    page: Page<M>,
    after: Option<i64>,
    id: impl Fn(&M) -> i64,
    node: impl Fn(M) -> N,
    totals: Totals,
) -> Conn<N> {
    build_with(page, after.is_some(), |m| Cursor::Id(id(m)), node, totals)
}

/// Turns a page of models into a connection of nodes, each with the cursor `cursor` gives.
pub fn build_with<M, N: OutputType>(
    page: Page<M>,
    has_previous: bool,
    cursor: impl Fn(&M) -> Cursor,
    node: impl Fn(M) -> N,
    totals: Totals,
) -> Conn<N> {
    let mut conn = Connection::with_additional_fields(has_previous, page.has_next, totals);
    conn.edges.extend(
        page.items
            .into_iter()
            .map(|m| Edge::new(cursor(&m), node(m))),
    );
    conn
}

/// Whether the nodes of the connection the field at `ctx` returns ask for `path` (a field of
/// theirs, then fields below it), through `nodes` or `edges { node }`.
pub fn nodes_ask(ctx: &async_graphql::Context<'_>, path: &[&str]) -> bool {
    let ahead = ctx.look_ahead();
    let (mut nodes, mut edges) = (ahead.field("nodes"), ahead.field("edges").field("node"));
    for field in path {
        nodes = nodes.field(field);
        edges = edges.field(field);
    }
    nodes.exists() || edges.exists()
}

/// The page arguments of a list in `order`, and the sort key of the item `after` names.
pub fn sorted_args(
    ctx: &async_graphql::Context<'_>,
    first: Option<i32>,
    after: Option<&str>,
    order: crate::store::order::Order,
) -> DomainResult<(
    crate::store::page::PageArgs,
    Option<crate::store::order::KeyValue>,
)> {
    let (after, key) = super::ids::decode_sorted_after(after, order)?.unzip();
    let args = crate::store::page::PageArgs::new(
        first,
        after,
        super::context::ContextExt::config(ctx).max_page_size,
    )?;
    Ok((args, key.flatten()))
}
