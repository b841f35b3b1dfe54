//! The fake directory on a loopback port, and helpers that play the admin's browser.

use dirgate::providers::{ProviderEndpoints, ProviderSettings, RetryPolicy};
use entity::enums::DirectoryKind;
use fake_directory::{Directory, Fake, Kind};
use std::time::Duration;

/// A running fake directory.
pub struct FakeServer {
    pub fake: Fake,
    pub base: String,
}

impl FakeServer {
    /// A generated directory with `users` users and `groups` groups per tenant.
    pub async fn start(users: usize, groups: usize) -> Self {
        let fake = Fake::new(Directory::generate(7, users, groups));
        let addr = fake
            .spawn("127.0.0.1:0".parse().unwrap())
            .await
            .expect("start fake");
        Self {
            fake,
            base: format!("http://{addr}"),
        }
    }

    /// The next `count` calls whose path starts with `route` answer `status` (no
    /// `Retry-After`, no reason).
    pub fn fail(&self, route: &str, count: u32, status: u16) {
        self.fake.inject(fake_directory::Fault {
            route: route.to_owned(),
            count,
            action: fake_directory::FaultAction::Status {
                status,
                retry_after: None,
                reason: None,
            },
        });
    }

    /// The key of the first tenant of `kind` (Entra: tenant id; Google: domain).
    pub fn tenant(&self, kind: Kind) -> String {
        self.fake
            .directory()
            .tenants
            .iter()
            .find(|(_, t)| t.kind == kind)
            .map(|(k, _)| k.clone())
            .expect("tenant")
    }

    /// Provider settings pointing at this fake, retrying fast.
    pub fn settings(&self) -> ProviderSettings {
        ProviderSettings {
            entra: ProviderEndpoints {
                client_id: "dirgate-entra".into(),
                client_secret: "entra-secret".into(),
                authorize: self.base.clone(),
                token: String::new(),
                api: self.base.clone(),
            },
            google: ProviderEndpoints {
                client_id: "dirgate-google".into(),
                client_secret: "google-secret".into(),
                authorize: format!("{}/o/oauth2/v2/auth", self.base),
                token: format!("{}/token", self.base),
                api: self.base.clone(),
            },
            retry: RetryPolicy {
                max_retries: 3,
                max_throttle_retries: 5,
                min_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(50),
                max_retry_after: Duration::from_secs(5),
            },
            entra_page_size: 999,
            google_page_size: 500,
            google_concurrency: dirgate::providers::GOOGLE_CONCURRENCY,
            entra_concurrency: dirgate::providers::ENTRA_CONCURRENCY,
            max_page_bytes: dirgate::providers::MAX_PAGE_BYTES,
        }
    }
}

/// Plays the admin's browser on an authorization URL: picks `account`, clicks Accept (or
/// Cancel), and returns where the provider redirects to.
pub async fn authorize(url: &str, account: &str, accept: bool) -> url::Url {
    authorize_with(url, account, if accept { "accept" } else { "cancel" }).await
}

/// [`authorize`] with the button to click: `accept`, `cancel` or (a non-admin in Entra's admin
/// consent workflow) `request_approval`.
pub async fn authorize_with(url: &str, account: &str, decision: &str) -> url::Url {
    let url = format!("{url}&fake_account={account}&fake_decision={decision}");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client.get(&url).send().await.expect("authorize");
    assert!(
        response.status().is_redirection(),
        "the provider redirects back: {} {}",
        response.status(),
        response.text().await.unwrap_or_default()
    );
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    url::Url::parse(&location).expect("redirect URL")
}

/// A query parameter of a URL.
pub fn param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The admin account of the fake's tenant of `kind`.
pub fn admin_account(kind: DirectoryKind) -> &'static str {
    match kind {
        DirectoryKind::GoogleWorkspace => "admin@fabrikam.example",
        _ => "admin@contoso.example",
    }
}
