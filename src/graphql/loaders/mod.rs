//! Batched loading of every relation, through one async-graphql `DataLoader` per request.
//!
//! Each key type below is one relation; all keys of a type asked for while a response is being
//! resolved are read in one statement (nested pages too: see `store::page`), so the number
//! of statements a request runs does not depend on the page size.
//!
//! Where a page can carry the answer, no key is asked at all: a page of users asked for with
//! a page of their devices or groups reads those beside the page ([`Prefetch`],
//! [`Prefetches`]), and a page of devices carries its users and their groups (`query.rs`'s
//! `devices`); each [`PrefetchedUser`] then answers those fields itself, when they are asked
//! with the window that was read. Every read takes the request's [`Projection`].

pub use super::gate::Busy;
use super::{gate::Gate, projection::Projection};
use crate::{
    error::DomainError,
    store::{
        page::{Direction, Page, PageArgs},
        related::Counted,
    },
};
use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use entity::{device, directory_group, directory_user};
use sea_orm::DatabaseConnection;
use std::{collections::HashMap, sync::Arc, time::Duration};

mod nodes;
mod pages;
mod relations;
pub use nodes::{NodeKey, NodeRow};
pub use relations::Prefetches;

/// The request's loader: an async-graphql `DataLoader` whose batches wait at a [`Gate`].
pub struct Loaders {
    loader: DataLoader<BatchLoader, HashMapCache>,
    gate: Arc<Gate>,
    projection: Projection,
}

/// Makes the loader for one request, which reads `projection`'s columns of each model.
pub fn for_request(db: DatabaseConnection, projection: Projection) -> Loaders {
    let gate = Arc::new(Gate::default());
    let spawner_gate = gate.clone();
    let loader = DataLoader::with_cache(
        BatchLoader {
            db,
            gate: gate.clone(),
            projection,
        },
        move |batch| spawner_gate.submit(batch),
        HashMapCache::default(),
    )
    .delay(Duration::ZERO)
    // Every batch must load exactly once to pass the gate's barrier, so the loader never
    // splits a batch by size; statements split long key lists themselves (`store::related::MAX_KEYS`).
    .max_batch_size(usize::MAX);
    Loaders {
        loader,
        gate,
        projection,
    }
}

impl Loaders {
    /// Loads the value of one key, batched with every other key the request asks for meanwhile.
    pub async fn load_one<K>(
        &self,
        key: K,
    ) -> Result<Option<<BatchLoader as Loader<K>>::Value>, DomainError>
    where
        K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
        BatchLoader: Loader<K, Error = DomainError>,
    {
        self.gate.touch();
        self.loader.load_one(key).await
    }

    /// Marks database work outside the loader (a root page, a count) as in progress: no
    /// batch runs until it is done, so its rows' relations join the same wave.
    pub fn busy(&self) -> Busy {
        self.gate.enter()
    }

    /// Runs this request's waves in the caller's task: poll it after the request's future
    /// (see `App::execute`), until the request is done.
    pub fn driver(&self) -> impl Future<Output = ()> + Send + 'static {
        self.gate.driver()
    }

    /// The columns of each model this request reads (a page read outside the loader reads
    /// the same, since the loader's cache holds them side by side).
    pub fn projection(&self) -> Projection {
        self.projection
    }

    /// Turns caching off (for long-lived subscriptions, which must see fresh rows).
    pub fn disable_cache(&self) {
        self.loader.enable_all_cache(false);
    }
}

/// The database, seen as a loader of every key type below.
pub struct BatchLoader {
    pub(super) db: DatabaseConnection,
    gate: Arc<Gate>,
    pub(super) projection: Projection,
}

impl BatchLoader {
    /// Runs a batch's statements, then waits at the gate until the wave's other batches are
    /// done too (whether this one succeeded or not).
    pub(super) async fn batch<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        let result = work.await;
        self.gate.arrive().await;
        result
    }
}

/// An integration by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IntegrationKey(pub i64);
/// A user by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserKey(pub i64);
/// A user of an integration by the directory's reference to it (a manager): its id, or its
/// user name (Google names a manager by primary email).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserReference {
    pub integration: i64,
    pub reference: String,
}
/// Which page of a nested list: its slice, and which way it runs by creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    pub args: PageArgs,
    pub dir: Direction,
}
/// The aliases of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AliasesOfUser(pub i64);

/// A count of children of one parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CountKey {
    UsersOfIntegration(i64),
    GroupsOfIntegration(i64),
    MembersOfGroup(i64),
    RunsOfIntegration(i64),
    GroupsOfUser(i64),
    DevicesOfUser(i64),
    ChildrenOfGroup(i64),
    ParentsOfGroup(i64),
    /// The users of a group and of the groups nested in it.
    MembersOfGroupTransitive(i64),
    /// The groups a user is in, directly or through nesting.
    GroupsOfUserTransitive(i64),
    /// The direct reports of a user.
    ReportsOfUser(i64),
}

impl CountKey {
    /// The key of `counted` children of `parent`.
    pub fn of(counted: Counted, parent: i64) -> Self {
        match counted {
            Counted::UsersOfIntegration => Self::UsersOfIntegration(parent),
            Counted::GroupsOfIntegration => Self::GroupsOfIntegration(parent),
            Counted::MembersOfGroup => Self::MembersOfGroup(parent),
            Counted::RunsOfIntegration => Self::RunsOfIntegration(parent),
            Counted::GroupsOfUser => Self::GroupsOfUser(parent),
            Counted::DevicesOfUser => Self::DevicesOfUser(parent),
            Counted::ChildrenOfGroup => Self::ChildrenOfGroup(parent),
            Counted::ParentsOfGroup => Self::ParentsOfGroup(parent),
        }
    }

    /// The parent, when this key counts `counted` children.
    pub fn parent(self, counted: Counted) -> Option<i64> {
        (self == Self::of(counted, self.id())).then_some(self.id())
    }

    /// The parent's id.
    pub fn id(self) -> i64 {
        match self {
            Self::UsersOfIntegration(id)
            | Self::GroupsOfIntegration(id)
            | Self::MembersOfGroup(id)
            | Self::RunsOfIntegration(id)
            | Self::GroupsOfUser(id)
            | Self::DevicesOfUser(id)
            | Self::ChildrenOfGroup(id)
            | Self::ParentsOfGroup(id)
            | Self::MembersOfGroupTransitive(id)
            | Self::GroupsOfUserTransitive(id)
            | Self::ReportsOfUser(id) => id,
        }
    }
}

/// The parent of a page of users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserParent {
    Integration(i64),
    Group(i64),
    /// The users of a group and of every group nested in it.
    GroupTransitive(i64),
    /// The direct reports of a user.
    ReportsOf(i64),
}

/// A page of users of one parent, with what its users are asked for beside them (read in
/// the same wave, one statement for all the wave's pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserPageKey(pub UserParent, pub Window, pub Prefetch);

/// What a page of users reads beside its users: a page of each one's devices, of each one's
/// groups (`None`: not read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Prefetch {
    pub devices: Option<Window>,
    pub groups: Option<Window>,
}

/// What was read beside one user, with the window read (`None`: not read; its fields then
/// ask the loader).
#[derive(Debug, Clone, Default)]
pub struct Prefetched {
    pub devices: Option<Arc<(Window, Page<device::Model>)>>,
    pub groups: Option<Arc<(Window, Page<directory_group::Model>)>>,
}

/// A user read with what was asked of it beside it, so its fields need no loader key of
/// their own.
#[derive(Debug, Clone)]
pub struct PrefetchedUser {
    pub user: directory_user::Model,
    pub related: Prefetched,
}

/// The parent of a page of groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupParent {
    Integration(i64),
    /// The groups a user is a member of.
    User(i64),
    /// The groups a user is in, directly or through nesting.
    UserTransitive(i64),
    /// The groups nested directly in a group.
    ChildrenOf(i64),
    /// The groups a group is nested in directly.
    ParentsOf(i64),
}

/// A page of groups of one parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupPageKey(pub GroupParent, pub Window);
/// A page of the devices assigned to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DevicePageKey(pub i64, pub Window);
/// A page of an integration's sync runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RunPageKey(pub i64, pub Window);

pub(super) type LoadResult<K, V> = Result<HashMap<K, V>, DomainError>;

pub(super) fn index_by<K, V>(rows: Vec<V>, key: impl Fn(&V) -> K) -> HashMap<K, V>
where
    K: std::hash::Hash + Eq,
{
    rows.into_iter().map(|row| (key(&row), row)).collect()
}
