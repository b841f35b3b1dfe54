//! Nested lists (`Group.members`, `User.groups`, `Integration.syncRuns`, ...): the window a
//! field's arguments ask for (`first`, `after`, `orderBy`), from the arguments themselves or,
//! for a page of users that reads its users' lists beside it, from the look-ahead.

use super::order::CreationOrder;
use crate::{error::DomainError, graphql::loaders::BatchLoader, store::page::Page};
use crate::{
    error::DomainResult,
    graphql::{context::ContextExt, ids, loaders},
    store::page::{Direction, PageArgs},
};
use async_graphql::{Context, InputType, SelectionField, Value, dataloader::Loader};

use loaders::Window;

/// The window of a nested list's arguments; `default` is its direction when no `orderBy` is
/// given. A bad `first` or cursor is `INVALID_INPUT`.
pub fn window(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<&str>,
    order: Option<CreationOrder>,
    default: Direction,
) -> DomainResult<Window> {
    let after = ids::decode_after(after)?;
    let args = PageArgs::new(first, after, ctx.config().max_page_size)?;
    let dir = order.map_or(default, |o| o.direction.into());
    Ok(Window { args, dir })
}

/// The page `key` names: the one read ahead when it was read in `window`, else the loader's.
pub async fn page<K, T>(
    ctx: &Context<'_>,
    read: Option<&(Window, Page<T>)>,
    window: Window,
    key: K,
) -> DomainResult<Page<T>>
where
    T: Clone,
    K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
    BatchLoader: Loader<K, Value = Page<T>, Error = DomainError>,
{
    if let Some((read, page)) = read
        && *read == window
    {
        return Ok(page.clone());
    }
    Ok(ctx
        .loaders()
        .load_one(key)
        .await?
        .unwrap_or_else(Page::empty))
}

/// What the users at `path` below the nodes of the connection the field at `ctx` returns
/// (the nodes themselves for `&[]`) are asked for beside them, so a page can read it at once:
/// a list is read ahead when every place the document asks for it asks the same window (else
/// each user's field asks the loader for its own).
pub fn prefetch_for_users(ctx: &Context<'_>, path: &[&str]) -> loaders::Prefetch {
    let asked = |field: &str| {
        let ahead = ctx.look_ahead();
        let (mut nodes, mut edges) = (ahead.field("nodes"), ahead.field("edges").field("node"));
        for step in path.iter().chain([&field]) {
            nodes = nodes.field(step);
            edges = edges.field(step);
        }
        let mut fields = nodes.selection_fields();
        fields.extend(edges.selection_fields());
        one_window(ctx, &fields, Direction::Asc)
    };
    loaders::Prefetch {
        devices: asked("devices"),
        groups: asked("groups"),
    }
}

/// The one window every field of `fields` asks for; `None` when there are none, when they
/// differ, or when one's arguments are not a valid window (its resolver then answers the
/// error).
fn one_window(
    ctx: &Context<'_>,
    fields: &[SelectionField<'_>],
    default: Direction,
) -> Option<Window> {
    let mut windows = fields.iter().map(|field| asked_window(ctx, field, default));
    let first = windows.next()??;
    windows.all(|w| w == Some(first)).then_some(first)
}

/// The window `field`'s arguments (variables resolved) ask for.
fn asked_window(
    ctx: &Context<'_>,
    field: &SelectionField<'_>,
    default: Direction,
) -> Option<Window> {
    let arguments = field.arguments().ok()?;
    let get = |name: &str| {
        arguments
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, v)| v)
            .filter(|v| **v != Value::Null)
    };
    // A transitive list is never read ahead (the page ahead reads direct members).
    if get("transitive") == Some(&Value::Boolean(true)) {
        return None;
    }
    let first = match get("first") {
        None => None,
        Some(Value::Number(n)) => Some(i32::try_from(n.as_i64()?).ok()?),
        Some(_) => return None,
    };
    let after = match get("after") {
        None => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return None,
    };
    let order = match get("orderBy") {
        None => None,
        Some(v) => Some(CreationOrder::parse(Some(v.clone())).ok()?),
    };
    window(ctx, first, after, order, default).ok()
}
