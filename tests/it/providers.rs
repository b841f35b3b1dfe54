//! The provider clients against the fake directory over loopback, and their mapping of
//! recorded payloads.

use crate::support::fake::{FakeServer, admin_account, authorize, param};
use dirgate::providers::{
    DirectoryProvider, ExternalUser, ProviderError, ProviderSettings, entra, google, http::Session,
    http_client, oauth,
};
use entity::enums::DirectoryKind;
use fake_directory::{Fault, FaultAction, Kind};
use std::{sync::Arc, time::Instant};

const REDIRECT: &str = "http://127.0.0.1:8080/oauth/callback";

/// Signs in as the tenant's admin and returns the grant.
async fn sign_in(settings: &ProviderSettings, kind: DirectoryKind) -> oauth::Grant {
    let start = oauth::start(settings, kind, REDIRECT).unwrap();
    let back = authorize(&start.url, admin_account(kind), true).await;
    assert_eq!(param(&back, "state").as_deref(), Some(start.state.as_str()));
    let code = param(&back, "code").expect("a code");
    oauth::exchange(
        &http_client(),
        settings,
        kind,
        REDIRECT,
        &code,
        &start.verifier,
    )
    .await
    .expect("exchange")
}

async fn entra_client(server: &FakeServer, settings: ProviderSettings) -> entra::Entra {
    let grant = sign_in(&settings, DirectoryKind::EntraId).await;
    let page_size = settings.entra_page_size;
    let session = Session::new(
        http_client(),
        Arc::new(settings),
        DirectoryKind::EntraId,
        grant.tenant,
        grant
            .refresh_token
            .expect("offline_access gives a refresh token"),
    );
    entra::Entra::new(Arc::new(session), &server.base, page_size)
}

async fn google_client(server: &FakeServer, settings: ProviderSettings) -> google::Google {
    let grant = sign_in(&settings, DirectoryKind::GoogleWorkspace).await;
    let page_size = settings.google_page_size;
    let session = Session::new(
        http_client(),
        Arc::new(settings),
        DirectoryKind::GoogleWorkspace,
        grant.tenant,
        grant
            .refresh_token
            .expect("access_type=offline&prompt=consent gives a refresh token"),
    );
    google::Google::new(Arc::new(session), &server.base, page_size)
}

fn fault(route: &str, count: u32, action: FaultAction) -> Fault {
    Fault {
        route: route.into(),
        count,
        action,
    }
}

#[tokio::test]
async fn entra_sign_in_records_tenant_account_and_scopes() {
    let server = FakeServer::start(5, 1).await;
    let settings = server.settings();
    let start = oauth::start(&settings, DirectoryKind::EntraId, REDIRECT).unwrap();
    let url = url::Url::parse(&start.url).unwrap();
    assert!(url.path().ends_with("/organizations/oauth2/v2.0/authorize"));
    assert_eq!(
        param(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(param(&url, "redirect_uri").as_deref(), Some(REDIRECT));
    assert!(
        param(&url, "scope")
            .unwrap()
            .contains("GroupMember.Read.All")
    );
    let grant = sign_in(&settings, DirectoryKind::EntraId).await;
    assert_eq!(
        grant.tenant.as_deref(),
        Some(server.tenant(Kind::Entra).as_str())
    );
    assert_eq!(grant.account.as_deref(), Some("admin@contoso.example"));
    assert!(grant.scopes.iter().any(|s| s == "User.Read.All"));
}

#[tokio::test]
async fn google_sign_in_asks_offline_access_and_gets_a_refresh_token() {
    let server = FakeServer::start(5, 1).await;
    let settings = server.settings();
    let start = oauth::start(&settings, DirectoryKind::GoogleWorkspace, REDIRECT).unwrap();
    let url = url::Url::parse(&start.url).unwrap();
    assert_eq!(param(&url, "access_type").as_deref(), Some("offline"));
    assert_eq!(param(&url, "prompt").as_deref(), Some("consent"));
    let grant = sign_in(&settings, DirectoryKind::GoogleWorkspace).await;
    assert!(grant.refresh_token.is_some());
    assert_eq!(grant.tenant.as_deref(), Some("fabrikam.example"));
    assert_eq!(grant.account.as_deref(), Some("admin@fabrikam.example"));
}

#[tokio::test]
async fn code_exchange_refuses_a_wrong_verifier_and_a_replayed_code() {
    let server = FakeServer::start(1, 1).await;
    let settings = server.settings();
    let start = oauth::start(&settings, DirectoryKind::EntraId, REDIRECT).unwrap();
    let back = authorize(&start.url, "admin@contoso.example", true).await;
    let code = param(&back, "code").unwrap();
    let http = http_client();
    let wrong = oauth::exchange(
        &http,
        &settings,
        DirectoryKind::EntraId,
        REDIRECT,
        &code,
        "not-the-verifier",
    )
    .await;
    assert!(
        matches!(wrong, Err(ProviderError::NeedsReauth { .. })),
        "{wrong:?}"
    );
    // The code was spent by the failed attempt: a replay fails too.
    let replay = oauth::exchange(
        &http,
        &settings,
        DirectoryKind::EntraId,
        REDIRECT,
        &code,
        &start.verifier,
    )
    .await;
    assert!(replay.is_err());
}

#[tokio::test]
async fn entra_reads_a_page_of_999_users_then_the_rest() {
    let server = FakeServer::start(1200, 3).await;
    let client = entra_client(&server, server.settings()).await;
    let first = client.users_page(None).await.unwrap();
    assert_eq!(first.items.len(), 999);
    let next = first.next.clone().expect("a next link");
    assert!(next.starts_with(&server.base));
    let second = client.users_page(Some(next)).await.unwrap();
    assert_eq!(second.items.len(), 201);
    assert!(second.next.is_none());
    let suspended = first
        .items
        .iter()
        .chain(&second.items)
        .filter(|u| u.suspended)
        .count();
    assert_eq!(suspended, 24, "one user in fifty is disabled");
    let groups = client.groups_page(None).await.unwrap();
    assert_eq!(groups.items.len(), 3);
    let mut members = 0;
    for g in &groups.items {
        members += client
            .members_page(&g.external_id, None)
            .await
            .unwrap()
            .items
            .len();
    }
    assert_eq!(members, 1200, "each user is in one group");
}

#[tokio::test]
async fn fake_refuses_top_1000() {
    let server = FakeServer::start(3, 1).await;
    let mut settings = server.settings();
    settings.entra_page_size = 1000;
    let client = entra_client(&server, settings).await;
    match client.users_page(None).await {
        Err(ProviderError::Http {
            status: 400,
            detail,
            url,
            ..
        }) => {
            assert!(detail.contains("Invalid page size"), "{detail}");
            assert!(url.contains("$top=1000"));
        }
        other => panic!("expected a 400: {other:?}"),
    }
}

#[tokio::test]
async fn throttling_waits_for_retry_after_and_succeeds() {
    let server = FakeServer::start(10, 1).await;
    let client = entra_client(&server, server.settings()).await;
    server.fake.inject(fault(
        "/v1.0/users",
        1,
        FaultAction::Status {
            status: 429,
            retry_after: Some(1),
            reason: None,
        },
    ));
    let started = Instant::now();
    let page = client
        .users_page(None)
        .await
        .expect("throttling does not fail the read");
    assert_eq!(page.items.len(), 10);
    assert!(
        started.elapsed().as_millis() >= 1000,
        "Retry-After: 1 was honoured"
    );
    assert_eq!(server.fake.requests("/v1.0/users"), 2);
}

#[tokio::test]
async fn google_quota_errors_back_off_and_succeed() {
    let server = FakeServer::start(10, 1).await;
    let client = google_client(&server, server.settings()).await;
    server.fake.inject(fault(
        "/admin/directory/v1/users",
        1,
        FaultAction::Status {
            status: 403,
            retry_after: None,
            reason: Some("userRateLimitExceeded".into()),
        },
    ));
    server.fake.inject(fault(
        "/admin/directory/v1/users",
        1,
        FaultAction::Status {
            status: 429,
            retry_after: None,
            reason: Some("rateLimitExceeded".into()),
        },
    ));
    let page = client
        .users_page(None)
        .await
        .expect("quota errors slow the read down");
    assert_eq!(page.items.len(), 10);
    assert_eq!(server.fake.requests("/admin/directory/v1/users"), 3);
}

#[tokio::test]
async fn server_errors_are_retried_then_fail_cleanly() {
    let server = FakeServer::start(10, 1).await;
    let client = entra_client(&server, server.settings()).await;
    server.fake.inject(fault(
        "/v1.0/users",
        2,
        FaultAction::Status {
            status: 500,
            retry_after: None,
            reason: None,
        },
    ));
    assert_eq!(
        client.users_page(None).await.unwrap().items.len(),
        10,
        "two 500s are retried"
    );
    server.fake.inject(fault(
        "/v1.0/users",
        100,
        FaultAction::Status {
            status: 503,
            retry_after: None,
            reason: None,
        },
    ));
    let before = server.fake.requests("/v1.0/users");
    match client.users_page(None).await {
        Err(ProviderError::Http {
            status: 503,
            provider: "Microsoft",
            ..
        }) => {}
        other => panic!("expected a 503 after the retries: {other:?}"),
    }
    assert_eq!(
        server.fake.requests("/v1.0/users") - before,
        4,
        "one try and max_retries=3 retries"
    );
}

#[tokio::test]
async fn a_page_cut_or_garbled_is_read_again_within_the_retry_budget() {
    let server = FakeServer::start(10, 1).await;
    let client = google_client(&server, server.settings()).await;
    let route = "/admin/directory/v1/users";
    for action in [
        FaultAction::Malformed,
        FaultAction::Truncated,
        FaultAction::Reset,
    ] {
        // Once: the page is read again and the read succeeds.
        let before = server.fake.requests(route);
        server.fake.inject(fault(route, 1, action.clone()));
        let page = client.users_page(None).await.unwrap_or_else(|e| {
            panic!("{action:?} once should be retried: {e}");
        });
        assert_eq!(page.items.len(), 10);
        assert_eq!(server.fake.requests(route) - before, 2, "{action:?}");
    }
}

#[tokio::test]
async fn a_page_past_the_size_cap_is_refused_without_being_read_or_retried() {
    let server = FakeServer::start(50, 1).await;
    let mut settings = server.settings();
    settings.max_page_bytes = 1024;
    let client = google_client(&server, settings).await;
    let route = "/admin/directory/v1/users";
    let before = server.fake.requests(route);
    match client.users_page(None).await {
        Err(ProviderError::Malformed { url, detail, .. }) => {
            assert!(url.contains(route));
            assert!(detail.contains("larger than 1024 bytes"), "{detail}");
        }
        other => panic!("expected Malformed: {other:?}"),
    }
    assert_eq!(
        server.fake.requests(route) - before,
        1,
        "a page too big is not a transient fault: it is not read again"
    );
}

#[tokio::test]
async fn a_page_unreadable_past_the_budget_is_a_typed_error_naming_the_url() {
    let server = FakeServer::start(10, 1).await;
    let client = google_client(&server, server.settings()).await;
    let route = "/admin/directory/v1/users";
    for action in [
        FaultAction::Malformed,
        FaultAction::Truncated,
        FaultAction::Reset,
    ] {
        let before = server.fake.requests(route);
        // One try and max_retries=3 retries, every one broken.
        server.fake.inject(fault(route, 4, action.clone()));
        match client.users_page(None).await {
            Err(ProviderError::Malformed {
                provider,
                url,
                detail,
            }) => {
                assert_eq!(provider, "Google");
                assert!(url.contains(route));
                assert!(detail.contains("read 4 times"), "{detail}");
                assert_eq!(server.fake.requests(route) - before, 4);
            }
            // A reset may also kill the pooled connection the next try would have used: that
            // try fails to send, and counts against the same budget.
            Err(ProviderError::Unreachable { provider, url, .. })
                if matches!(action, FaultAction::Reset) =>
            {
                assert_eq!(provider, "Google");
                assert!(url.contains(route));
                assert!(server.fake.requests(route) - before <= 4);
            }
            other => panic!("expected Malformed after {action:?}: {other:?}"),
        }
        // Whatever is left of the fault is spent before the next action.
        let mut tries = 0;
        while client.users_page(None).await.is_err() {
            tries += 1;
            assert!(tries < 5, "the fault should be spent by now");
        }
    }
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_revoked_grant_needs_reauth() {
    let server = FakeServer::start(3, 1).await;
    let settings = server.settings();
    let grant = sign_in(&settings, DirectoryKind::EntraId).await;
    let original = grant.refresh_token.clone().unwrap();
    let session = Session::new(
        http_client(),
        Arc::new(settings.clone()),
        DirectoryKind::EntraId,
        grant.tenant.clone(),
        original.clone(),
    );
    let client = entra::Entra::new(Arc::new(session), &server.base, 999);
    client.users_page(None).await.unwrap();
    let rotated = client
        .session()
        .take_rotated_refresh_token()
        .expect("Microsoft rotates refresh tokens");
    assert_ne!(rotated, original);
    // The spent token no longer works: a session still holding it needs re-authentication.
    let stale = Session::new(
        http_client(),
        Arc::new(settings.clone()),
        DirectoryKind::EntraId,
        grant.tenant.clone(),
        original,
    );
    let stale = entra::Entra::new(Arc::new(stale), &server.base, 999);
    assert!(matches!(
        stale.users_page(None).await,
        Err(ProviderError::NeedsReauth { .. })
    ));
    // Revoking the grant in the directory: the rotated token stops working too.
    server.fake.revoke(&server.tenant(Kind::Entra));
    let revoked = Session::new(
        http_client(),
        Arc::new(settings),
        DirectoryKind::EntraId,
        grant.tenant,
        rotated,
    );
    let revoked = entra::Entra::new(Arc::new(revoked), &server.base, 999);
    match revoked.users_page(None).await {
        Err(ProviderError::NeedsReauth { detail, .. }) => {
            assert!(detail.contains("AADSTS50173"), "{detail}")
        }
        other => panic!("expected NeedsReauth: {other:?}"),
    }
}

#[test]
fn entra_users_map_from_recorded_graph_json() {
    let page: entra::GraphPage<entra::UserDelta> =
        serde_json::from_str(include_str!("../fixtures/entra/users.json")).unwrap();
    assert!(page.next_link.is_some());
    let users: Vec<ExternalUser> = page.value.into_iter().map(|u| u.merge(None)).collect();
    let adele = &users[0];
    assert_eq!(adele.external_id, "87d349ed-44d7-43e1-9a83-5f2406dee5bd");
    assert_eq!(adele.user_name, "AdeleV@contoso.com");
    assert_eq!(adele.display_name, "Adele Vance");
    assert_eq!(adele.department.as_deref(), Some("Retail"));
    assert!(!adele.suspended);
    assert_eq!(
        adele.aliases,
        ["adele.vance@contoso.net", "adele@contoso.onmicrosoft.com"],
        "SMTP primary and X500 left out"
    );
    let guest = &users[1];
    assert!(guest.suspended, "accountEnabled: false");
    assert_eq!(
        guest.display_name, guest.user_name,
        "an empty display name falls back to the UPN"
    );
    assert_eq!(guest.employee_id.as_deref(), Some("E42"));
}

#[test]
fn entra_members_keep_only_users() {
    let page: entra::GraphPage<entra::GraphMember> =
        serde_json::from_str(include_str!("../fixtures/entra/members.json")).unwrap();
    let users: Vec<String> = page
        .value
        .into_iter()
        .filter(|m| m.odata_type.as_deref() == Some("#microsoft.graph.user"))
        .map(|m| m.id)
        .collect();
    assert_eq!(users, ["87d349ed-44d7-43e1-9a83-5f2406dee5bd"]);
}

#[test]
fn google_users_map_from_recorded_directory_json() {
    let page: google::UsersPage =
        serde_json::from_str(include_str!("../fixtures/google/users.json")).unwrap();
    assert!(page.next_page_token.is_some());
    let users: Vec<ExternalUser> = page.users.into_iter().map(Into::into).collect();
    let liz = &users[0];
    assert_eq!(liz.user_name, "liz@example.com");
    assert_eq!(liz.email.as_deref(), Some("liz@example.com"));
    assert_eq!(liz.display_name, "Liz Smith");
    assert_eq!(
        liz.job_title.as_deref(),
        Some("Account Executive"),
        "the primary organization"
    );
    assert_eq!(liz.department.as_deref(), Some("Sales"));
    assert_eq!(liz.employee_id.as_deref(), Some("E1234"));
    assert_eq!(liz.aliases, ["elizabeth@example.com"]);
    assert!(users[1].suspended);
}

#[test]
fn google_members_page_parses_every_member_type() {
    let page: google::MembersPage =
        serde_json::from_str(include_str!("../fixtures/google/members.json")).unwrap();
    let kinds: Vec<Option<&str>> = page.members.iter().map(|m| m.kind.as_deref()).collect();
    assert_eq!(kinds, [Some("USER"), Some("GROUP"), Some("CUSTOMER")]);
}

/// The fake's Graph delta queries: a full enumeration ending in a deltaLink, then only the
/// changes (`@removed`, `members@delta`), and `410 syncStateNotFound` once tokens expire.
#[tokio::test]
async fn fake_graph_delta_reports_changes_and_expires() {
    let server = FakeServer::start(12, 2).await;
    let settings = server.settings();
    let grant = sign_in(&settings, DirectoryKind::EntraId).await;
    let http = reqwest::Client::new();
    let get = |url: String| {
        let request = http
            .get(url)
            .bearer_auth(&grant.access_token)
            .header("Prefer", "odata.maxpagesize=5");
        async move {
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    // Enumerate everything, page by page, to the deltaLink.
    let mut url = format!(
        "{}/v1.0/users/delta?$select={}",
        server.base,
        entra::user_select()
    );
    let mut seen = 0;
    let users_delta = loop {
        let (status, page) = get(url).await;
        assert_eq!(status, 200);
        seen += page["value"].as_array().unwrap().len();
        assert!(
            page["@odata.nextLink"].is_null() || page["@odata.deltaLink"].is_null(),
            "never both"
        );
        match page["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break page["@odata.deltaLink"].as_str().unwrap().to_owned(),
        }
    };
    assert_eq!(seen, 12);
    let (_, groups_page) = get(format!("{}/v1.0/groups/delta", server.base)).await;
    let members: usize = groups_page["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["members@delta"].as_array().unwrap().len())
        .sum();
    assert_eq!(members, 12);
    let groups_delta = groups_page["@odata.deltaLink"].as_str().unwrap().to_owned();

    // Change the directory through the control API.
    let tenant = server.tenant(Kind::Entra);
    let dir = server.fake.directory();
    let mut ids = dir.tenants[&tenant].users.keys();
    let (suspend, delete) = (ids.next().unwrap().clone(), ids.next().unwrap().clone());
    let control = reqwest::Client::new();
    let base = format!("{}/_control/tenants/{tenant}", server.base);
    control
        .patch(format!("{base}/users/{suspend}"))
        .json(&serde_json::json!({ "suspended": true }))
        .send()
        .await
        .unwrap();
    control
        .delete(format!("{base}/users/{delete}"))
        .send()
        .await
        .unwrap();

    let (status, changes) = get(users_delta.clone()).await;
    assert_eq!(status, 200);
    let value = changes["value"].as_array().unwrap();
    assert_eq!(value.len(), 2, "{changes}");
    assert!(
        value
            .iter()
            .any(|u| u["id"] == suspend.as_str() && u["accountEnabled"] == false)
    );
    assert!(
        value
            .iter()
            .any(|u| u["id"] == delete.as_str() && u["@removed"]["reason"] == "deleted")
    );
    let (_, group_changes) = get(groups_delta).await;
    let removed_member = group_changes["value"][0]["members@delta"][0].clone();
    assert_eq!(removed_member["id"], delete.as_str());
    assert_eq!(removed_member["@removed"]["reason"], "deleted");

    control
        .post(format!("{base}/expire-delta"))
        .send()
        .await
        .unwrap();
    let (status, body) = get(users_delta).await;
    assert_eq!(status, 410);
    assert_eq!(body["error"]["code"], "syncStateNotFound");
}

/// The fake's provider latency and concurrency quota (the stand-ins issue 14's parallel reads
/// are measured against): each call waits the latency; past the quota a call is refused with
/// 429 and `Retry-After`, and the fake reports the most calls it saw at once.
#[tokio::test]
async fn the_fake_paces_calls_and_enforces_its_quota() {
    let server = crate::support::fake::FakeServer::start(5, 1).await;
    server
        .fake
        .set_latency(std::time::Duration::from_millis(200));
    server.fake.set_quota(Some(2));
    let client = reqwest::Client::new();
    let url = format!("{}/v1.0/users", server.base);
    let started = std::time::Instant::now();
    let calls = (0..4).map(|_| client.get(&url).send());
    let answers = futures_util::future::join_all(calls).await;
    let statuses: Vec<u16> = answers
        .iter()
        .map(|a| a.as_ref().unwrap().status().as_u16())
        .collect();
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        2,
        "{statuses:?}"
    );
    let refused = answers
        .iter()
        .map(|a| a.as_ref().unwrap())
        .find(|a| a.status() == 429)
        .unwrap();
    assert_eq!(refused.headers()["retry-after"], "1");
    let (max, throttled) = server.fake.concurrency();
    assert_eq!((max, throttled), (2, 2));
}
