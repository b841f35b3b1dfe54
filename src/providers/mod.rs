//! Identity providers: one module each behind [`DirectoryProvider`]. Providers fetch pages of
//! users, groups and memberships from a directory API and normalise them; they never touch
//! the database. `oauth` holds the authorization-code flow and token refresh.

pub mod clean;
pub mod entra;
pub mod fields;
pub mod google;
pub mod http;
pub mod oauth;
mod retry;
pub mod scope;
pub mod scope_by_ids;
pub mod throttle;

use std::{sync::Arc, time::Duration};

/// A user as a directory describes it, normalised across providers. Its synced text fields
/// are defined in [`fields::USER_FIELDS`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ExternalUser {
    /// The directory's id of the user.
    pub external_id: String,
    /// UPN (Entra) or primary email (Google).
    pub user_name: String,
    pub email: Option<String>,
    pub display_name: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub employee_id: Option<String>,
    pub employee_type: Option<String>,
    pub office_location: Option<String>,
    pub company_name: Option<String>,
    pub division: Option<String>,
    pub cost_center: Option<String>,
    pub hire_date: Option<String>,
    pub mobile_phone: Option<String>,
    pub country: Option<String>,
    pub preferred_language: Option<String>,
    /// The directory's reference to the user's manager: its id (Entra, SCIM) or primary
    /// email (Google).
    pub manager_external_id: Option<String>,
    /// Disabled (Entra `accountEnabled: false`) or suspended (Google).
    pub suspended: bool,
    /// Other addresses of the user.
    pub aliases: Vec<String>,
}

/// A group as a directory describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalGroup {
    pub external_id: String,
    pub display_name: String,
    pub email: Option<String>,
    pub description: Option<String>,
    /// The group's direct members when the listing carries them (Graph delta's
    /// `members@delta`); `None`: read them with `members_page`.
    pub members: Option<Vec<Member>>,
}

/// A direct member of a group: a user, or a group nested in it. Other kinds of member
/// (devices, service principals, contacts, customers) are left out by each provider.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Member {
    /// A user, by its external id.
    User(String),
    /// A group of the same directory, by its external id.
    Group(String),
}

impl Member {
    /// The member's external id.
    pub fn id(&self) -> &str {
        match self {
            Member::User(id) | Member::Group(id) => id,
        }
    }
}

/// One page of a listing, and where the next one starts.
#[derive(Debug, Clone)]
pub struct ProviderPage<T> {
    pub items: Vec<T>,
    /// Opaque: the URL or token of the next page; `None` on the last page.
    pub next: Option<String>,
    /// On the last page of a listing that supports incremental reads (Graph delta): where the
    /// next read of changes starts.
    pub delta_link: Option<String>,
}

/// What can go wrong talking to a provider.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The grant was revoked or expired (`invalid_grant`, 401 after a refresh): an admin must
    /// re-authenticate the integration (R16).
    #[error("{provider}: the grant is no longer valid ({detail}); re-authenticate the integration")]
    NeedsReauth {
        provider: &'static str,
        detail: String,
    },
    /// The provider answered with a body that is not what its format promises.
    #[error("{provider}: malformed response from {url}: {detail}")]
    Malformed {
        provider: &'static str,
        url: String,
        detail: String,
    },
    /// The provider refused the request, or kept failing after the retries.
    #[error("{provider}: {url} answered {status}: {detail}")]
    Http {
        provider: &'static str,
        url: String,
        status: u16,
        detail: String,
    },
    /// A stored delta link is no longer valid (Graph `410 Gone`, `syncStateNotFound`): the
    /// next read must be a full one.
    #[error("{provider}: the delta token expired ({detail}); a full sync is needed")]
    DeltaExpired {
        provider: &'static str,
        detail: String,
    },
    /// The provider could not be reached.
    #[error("{provider}: cannot reach {url}: {detail}")]
    Unreachable {
        provider: &'static str,
        url: String,
        detail: String,
    },
}

/// How hard to retry a provider.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries of a 5xx or a connection failure before giving up.
    pub max_retries: usize,
    /// Retries of a throttled request (429, Google quota errors). Throttling slows a sync down;
    /// this bound only stops a provider that throttles forever.
    pub max_throttle_retries: usize,
    /// First backoff delay; doubles each time, with jitter.
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Longest `Retry-After` honoured.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 4,
            max_throttle_retries: 30,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

/// A pulled directory: users, groups and memberships, a page at a time.
pub trait DirectoryProvider: Send + Sync {
    /// A page of users; `cursor` is the previous page's `next`.
    fn users_page(
        &self,
        cursor: Option<String>,
    ) -> impl Future<Output = Result<ProviderPage<ExternalUser>, ProviderError>> + Send;

    /// A page of groups.
    fn groups_page(
        &self,
        cursor: Option<String>,
    ) -> impl Future<Output = Result<ProviderPage<ExternalGroup>, ProviderError>> + Send;

    /// A page of a group's direct members: users, and groups nested in it (other member
    /// types are left out).
    fn members_page(
        &self,
        group_external_id: &str,
        cursor: Option<String>,
    ) -> impl Future<Output = Result<ProviderPage<Member>, ProviderError>> + Send;
}

impl<P: DirectoryProvider> DirectoryProvider for &P {
    fn users_page(
        &self,
        cursor: Option<String>,
    ) -> impl Future<Output = Result<ProviderPage<ExternalUser>, ProviderError>> + Send {
        (**self).users_page(cursor)
    }

    fn groups_page(
        &self,
        cursor: Option<String>,
    ) -> impl Future<Output = Result<ProviderPage<ExternalGroup>, ProviderError>> + Send {
        (**self).groups_page(cursor)
    }

    fn members_page(
        &self,
        group_external_id: &str,
        cursor: Option<String>,
    ) -> impl Future<Output = Result<ProviderPage<Member>, ProviderError>> + Send {
        (**self).members_page(group_external_id, cursor)
    }
}

/// A change to one directory object, as an incremental read reports it: a removal, or the
/// object's changed properties (absent ones are unchanged).
pub trait ObjectChange<T>: Send {
    /// The directory's id of the object.
    fn external_id(&self) -> &str;
    /// Deleted in the directory, or gone out of scope.
    fn is_removal(&self) -> bool;
    /// The object after this change, given what dirgate holds of it (`None`: new to dirgate).
    fn merged(self, base: Option<&T>) -> T;
}

/// One change to a group's direct members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberChange {
    /// The user or group that joined or left.
    pub member: Member,
    /// Left the group (else joined it).
    pub removed: bool,
}

/// A change to a group, with the changes to its members (users and nested groups; other
/// member types left out).
pub trait GroupChange: ObjectChange<ExternalGroup> {
    fn member_changes(&self) -> Vec<MemberChange>;
}

/// A directory that can read what changed since an earlier read (Graph delta queries), as well
/// as read everything. A full read through [`IncrementalProvider::full_read`] ends with the
/// links (`ProviderPage::delta_link`) the next incremental read starts from.
pub trait IncrementalProvider: Send + Sync {
    type UserChange: ObjectChange<ExternalUser>;
    type GroupChange: GroupChange;

    /// A read of the whole directory that ends in delta links.
    fn full_read(&self) -> impl DirectoryProvider + '_;

    /// A page of user changes from `link` (a stored delta link, or the previous page's `next`).
    /// An expired link is [`ProviderError::DeltaExpired`].
    fn user_changes(
        &self,
        link: &str,
    ) -> impl Future<Output = Result<ProviderPage<Self::UserChange>, ProviderError>> + Send;

    /// A page of group changes from `link`.
    fn group_changes(
        &self,
        link: &str,
    ) -> impl Future<Output = Result<ProviderPage<Self::GroupChange>, ProviderError>> + Send;
}

impl<P: IncrementalProvider> IncrementalProvider for &P {
    type UserChange = P::UserChange;
    type GroupChange = P::GroupChange;

    fn full_read(&self) -> impl DirectoryProvider + '_ {
        (**self).full_read()
    }

    fn user_changes(
        &self,
        link: &str,
    ) -> impl Future<Output = Result<ProviderPage<Self::UserChange>, ProviderError>> + Send {
        (**self).user_changes(link)
    }

    fn group_changes(
        &self,
        link: &str,
    ) -> impl Future<Output = Result<ProviderPage<Self::GroupChange>, ProviderError>> + Send {
        (**self).group_changes(link)
    }
}

/// Where a provider's services are, and who dirgate is to them. Defaults are the real services.
#[derive(Debug, Clone)]
pub struct ProviderEndpoints {
    pub client_id: String,
    pub client_secret: String,
    /// Entra: the login base (`https://login.microsoftonline.com`); Google: the authorize URL.
    pub authorize: String,
    /// Entra: unused (derived from the login base and tenant); Google: the token URL.
    pub token: String,
    /// Graph (`https://graph.microsoft.com`) or the Directory API (`https://admin.googleapis.com`).
    pub api: String,
}

/// Everything the provider clients need.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub entra: ProviderEndpoints,
    pub google: ProviderEndpoints,
    pub retry: RetryPolicy,
    /// Page size asked of Graph (`$top`, 1–999).
    pub entra_page_size: u32,
    /// Page size asked of the Directory API for users (`maxResults`, 1–500).
    pub google_page_size: u32,
    /// Directory API calls one Google integration makes at once, at most
    /// ([`GOOGLE_CONCURRENCY`] by default); the throttle shrinks it when Google says so.
    pub google_concurrency: usize,
    /// Graph calls one Entra integration makes at once, at most ([`ENTRA_CONCURRENCY`]).
    pub entra_concurrency: usize,
    /// The largest response body read from a provider ([`MAX_PAGE_BYTES`] by default): a
    /// bigger one is refused as malformed, not read into memory.
    pub max_page_bytes: usize,
}

/// Google's Admin SDK Directory API allows 2,400 queries per minute per user per Cloud
/// project by default (40 a second; <https://developers.google.com/admin-sdk/directory/v1/limits>,
/// `userRateLimitExceeded`), and a per-account limit of concurrent requests whose number it does
/// not publish (`429 rateLimitExceeded`). `members.list` answers in roughly 250–400 ms, so 16
/// calls in flight stay near the 40 a second; the throttle halves them when Google refuses.
pub const GOOGLE_CONCURRENCY: usize = 16;

/// Microsoft Graph limits Entra ID reads by resource units per app and tenant every 10 seconds
/// (3,500, 5,000 or 8,000 by tenant size; <https://learn.microsoft.com/graph/throttling-limits>,
/// "Identity and access service limits"), and answers `429` with `Retry-After` past them. A
/// full read has two chains of `@odata.nextLink` pages (users, groups with members inline),
/// which cannot be split further; four leaves room for a retry beside them.
pub const ENTRA_CONCURRENCY: usize = 4;

/// A page of 999 Graph users or 500 Google users with every field selected is a few
/// megabytes; anything past this is not a page.
pub const MAX_PAGE_BYTES: usize = 32 << 20;

/// A shared HTTP client for the providers: no redirects followed, timeouts set.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("dirgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Shared settings, cheap to clone.
pub type Settings = Arc<ProviderSettings>;
