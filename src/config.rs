//! Configuration: every setting is a flag and an environment variable (README has the table).

use clap::Args;
use std::{net::SocketAddr, path::PathBuf};

/// The default waits before each webhook retry, in milliseconds.
pub const WEBHOOK_RETRY_MS: [u64; 7] = [
    5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
];

/// Settings shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Database to use: `sqlite://PATH` or `postgres://...`. Default: an SQLite file in the data directory.
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,

    /// PostgreSQL connections dirgate holds at most: two listen for notifications (token
    /// revocations, change events), a sync writes through up to two more, the rest serve
    /// requests. Default: twice the CPUs plus four, at most 16. SQLite always uses 8.
    #[arg(
        long,
        env = "DIRGATE_DATABASE_POOL_SIZE",
        global = true,
        value_parser = clap::value_parser!(u32).range(4..=1000)
    )]
    pub database_pool_size: Option<u32>,

    /// Directory for dirgate's own files (the default SQLite database, generated keys).
    #[arg(
        long,
        env = "DIRGATE_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Address the HTTP server listens on.
    #[arg(
        long,
        env = "DIRGATE_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,

    /// The URL at which clients reach this server (OAuth redirect, SCIM base URLs). Default: http://LISTEN.
    #[arg(long, env = "DIRGATE_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// Front-end origins allowed to call the API from a browser (comma-separated). Default: none.
    #[arg(
        long,
        env = "DIRGATE_CORS_ORIGINS",
        value_delimiter = ',',
        global = true
    )]
    pub cors_origins: Vec<String>,

    /// Largest page a connection may return; larger `first` values are refused.
    #[arg(
        long,
        env = "DIRGATE_MAX_PAGE_SIZE",
        default_value_t = 500,
        global = true
    )]
    pub max_page_size: u64,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "DIRGATE_MAX_BODY_BYTES", default_value_t = 1 << 20, global = true)]
    pub max_body_bytes: usize,

    /// Minutes between scheduled syncs of an integration that has no interval of its own.
    #[arg(long, env = "DIRGATE_SYNC_INTERVAL_MINUTES", default_value_t = 240, global = true,
          value_parser = clap::value_parser!(i32).range(15..=43_200))]
    pub sync_interval_minutes: i32,

    /// Days directory change events (`events`, `directoryEvents`) are kept; older ones are
    /// pruned hourly.
    #[arg(long, env = "DIRGATE_EVENT_RETENTION_DAYS", default_value_t = 30, global = true,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub event_retention_days: u32,

    /// Directory API calls one Google Workspace integration makes at once, at most; halved
    /// while Google throttles and grown back after.
    #[arg(long, env = "DIRGATE_GOOGLE_CONCURRENCY", default_value_t = crate::providers::GOOGLE_CONCURRENCY,
          global = true, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=256))]
    pub google_concurrency: usize,

    /// Graph calls one Entra ID integration makes at once, at most; halved while Graph
    /// throttles and grown back after.
    #[arg(long, env = "DIRGATE_ENTRA_CONCURRENCY", default_value_t = crate::providers::ENTRA_CONCURRENCY,
          global = true, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=256))]
    pub entra_concurrency: usize,

    /// Whether this process delivers webhooks (`false` leaves them to the other processes
    /// on the database, e.g. on API-only nodes).
    #[arg(long, env = "DIRGATE_WEBHOOK_DELIVERY", default_value_t = true, global = true,
          action = clap::ArgAction::Set)]
    pub webhook_delivery: bool,

    /// How long a process holds an endpoint while delivering (seconds): another process takes
    /// over an endpoint whose holder died once this has passed. Longer than a batch can take.
    #[arg(long, env = "DIRGATE_WEBHOOK_LEASE_SECONDS", default_value_t = 300, global = true,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub webhook_lease_seconds: u64,

    /// Accept webhook URLs over plain `http://` and on loopback or private addresses (for
    /// tests and the demo; never on a server that faces the internet).
    #[arg(long, env = "DIRGATE_WEBHOOK_ALLOW_PRIVATE_URLS", global = true)]
    pub webhook_allow_private_urls: bool,

    /// The waits before each retry of a failed webhook delivery, in milliseconds (the
    /// Standard Webhooks schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, about 28 h in
    /// all); after the last, the endpoint is disabled. Tests shorten it.
    #[arg(skip = crate::config::WEBHOOK_RETRY_MS.to_vec())]
    pub webhook_retry_ms: Vec<u64>,

    /// Hours between full reads of an Entra directory; in between, syncs read changes only
    /// (Graph delta queries).
    #[arg(long, env = "DIRGATE_FULL_SYNC_HOURS", default_value_t = 24, global = true,
          value_parser = clap::value_parser!(u32).range(1..=720))]
    pub full_sync_hours: u32,

    /// Seconds a process holds a sync run without renewing it; after that another process
    /// marks the run failed and syncs the integration again.
    #[arg(long, env = "DIRGATE_SYNC_LEASE_SECONDS", default_value_t = 60, global = true,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub sync_lease_seconds: u64,

    /// Seconds between the scheduler's looks for due syncs and expired leases.
    #[arg(long, env = "DIRGATE_SCHEDULER_TICK_SECONDS", default_value_t = 30, global = true,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub scheduler_tick_seconds: u64,

    /// Requests per second one SCIM token may make; more are answered 429 with Retry-After.
    #[arg(long, env = "DIRGATE_SCIM_REQUESTS_PER_SECOND", default_value_t = 1000, global = true,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub scim_requests_per_second: u32,

    /// Requests per second one API token may make to `/graphql` (a burst of as many is
    /// allowed); more are answered 429 with `RATE_LIMITED` and Retry-After.
    #[arg(long, env = "DIRGATE_GRAPHQL_REQUESTS_PER_SECOND", default_value_t = 100, global = true,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub graphql_requests_per_second: u32,

    /// Seconds a GraphQL query or mutation may run; then its work is dropped and the caller
    /// gets `TIMEOUT`.
    #[arg(long, env = "DIRGATE_REQUEST_TIMEOUT_SECONDS", default_value_t = 30, global = true,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub request_timeout_seconds: u64,

    /// Seconds a client may take to send a request's headers; also the longest a kept-alive
    /// connection may stay quiet between two requests. Past it the connection is closed.
    #[arg(long, env = "DIRGATE_HTTP_HEADER_TIMEOUT_SECONDS", default_value_t = 10, global = true,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub http_header_timeout_seconds: u64,

    /// Seconds a request body may pause between two of its parts; past it the request is
    /// refused (408) and the connection closed.
    #[arg(long, env = "DIRGATE_HTTP_BODY_TIMEOUT_SECONDS", default_value_t = 10, global = true,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub http_body_timeout_seconds: u64,

    /// Client connections open at once (HTTP and WebSocket). At the cap a new connection takes
    /// the place of the quietest one that never sent a valid token; with none, it is answered
    /// 503. Default: the open-files limit (raised to its hard limit at start) less 128.
    #[arg(long, env = "DIRGATE_MAX_CONNECTIONS", global = true,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: Option<u64>,

    /// Log filter (tracing's `EnvFilter` syntax).
    #[arg(long, env = "DIRGATE_LOG", default_value = "info", global = true)]
    pub log: String,

    /// Log format: `text` (colour only on a terminal) or `json` (one object per line, for log
    /// collectors).
    #[arg(long, env = "DIRGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// A token GraphiQL's headers pane opens with: set by `dirgate demo` to its admin token,
    /// never by a flag (a token in a page for every visitor only suits a local demo).
    #[arg(skip)]
    pub graphiql_token: Option<String>,

    /// Key for secrets at rest (refresh tokens): 32 bytes, base64. Default: generated on first
    /// start into DATA_DIR/secret.key (mode 0600). Processes sharing a database need the same key.
    #[arg(
        long,
        env = "DIRGATE_ENCRYPTION_KEY",
        global = true,
        hide_env_values = true
    )]
    pub encryption_key: Option<String>,

    /// The application (client) id registered in Microsoft Entra ID.
    #[arg(
        long,
        env = "DIRGATE_ENTRA_CLIENT_ID",
        default_value = "",
        global = true
    )]
    pub entra_client_id: String,

    /// The Entra application's client secret.
    #[arg(
        long,
        env = "DIRGATE_ENTRA_CLIENT_SECRET",
        default_value = "",
        global = true,
        hide_env_values = true
    )]
    pub entra_client_secret: String,

    /// The Microsoft identity platform (authorize and token are under /{tenant}/oauth2/v2.0/).
    #[arg(
        long,
        env = "DIRGATE_ENTRA_LOGIN_URL",
        default_value = "https://login.microsoftonline.com",
        global = true
    )]
    pub entra_login_url: String,

    /// Microsoft Graph.
    #[arg(
        long,
        env = "DIRGATE_GRAPH_URL",
        default_value = "https://graph.microsoft.com",
        global = true
    )]
    pub graph_url: String,

    /// The OAuth client id registered with Google.
    #[arg(
        long,
        env = "DIRGATE_GOOGLE_CLIENT_ID",
        default_value = "",
        global = true
    )]
    pub google_client_id: String,

    /// The Google OAuth client secret.
    #[arg(
        long,
        env = "DIRGATE_GOOGLE_CLIENT_SECRET",
        default_value = "",
        global = true,
        hide_env_values = true
    )]
    pub google_client_secret: String,

    /// Google's authorization endpoint.
    #[arg(
        long,
        env = "DIRGATE_GOOGLE_AUTH_URL",
        default_value = "https://accounts.google.com/o/oauth2/v2/auth",
        global = true
    )]
    pub google_auth_url: String,

    /// Google's token endpoint.
    #[arg(
        long,
        env = "DIRGATE_GOOGLE_TOKEN_URL",
        default_value = "https://oauth2.googleapis.com/token",
        global = true
    )]
    pub google_token_url: String,

    /// The Google Admin SDK Directory API.
    #[arg(
        long,
        env = "DIRGATE_GOOGLE_DIRECTORY_URL",
        default_value = "https://admin.googleapis.com",
        global = true
    )]
    pub google_directory_url: String,
}

impl Config {
    /// A configuration with every default, for tests and embedding.
    pub fn defaults() -> Self {
        Self {
            database_url: None,
            database_pool_size: None,
            data_dir: PathBuf::from("./data"),
            listen: ([127, 0, 0, 1], 8080).into(),
            public_url: None,
            cors_origins: Vec::new(),
            max_page_size: 500,
            max_body_bytes: 1 << 20,
            log: "info".into(),
            log_format: LogFormat::Text,
            graphiql_token: None,
            sync_interval_minutes: 240,
            event_retention_days: 30,
            google_concurrency: crate::providers::GOOGLE_CONCURRENCY,
            entra_concurrency: crate::providers::ENTRA_CONCURRENCY,
            webhook_delivery: true,
            webhook_lease_seconds: 300,
            webhook_allow_private_urls: false,
            webhook_retry_ms: WEBHOOK_RETRY_MS.to_vec(),
            full_sync_hours: 24,
            sync_lease_seconds: 60,
            scheduler_tick_seconds: 30,
            scim_requests_per_second: 1000,
            graphql_requests_per_second: 100,
            request_timeout_seconds: 30,
            http_header_timeout_seconds: 10,
            http_body_timeout_seconds: 10,
            max_connections: None,
            encryption_key: None,
            entra_client_id: String::new(),
            entra_client_secret: String::new(),
            entra_login_url: "https://login.microsoftonline.com".into(),
            graph_url: "https://graph.microsoft.com".into(),
            google_client_id: String::new(),
            google_client_secret: String::new(),
            google_auth_url: "https://accounts.google.com/o/oauth2/v2/auth".into(),
            google_token_url: "https://oauth2.googleapis.com/token".into(),
            google_directory_url: "https://admin.googleapis.com".into(),
        }
    }

    /// The OAuth redirect URI registered with the providers: PUBLIC_URL/oauth/callback.
    pub fn redirect_uri(&self) -> String {
        format!("{}/oauth/callback", self.public_url())
    }

    /// The provider endpoints and credentials in force.
    pub fn provider_settings(&self) -> crate::providers::ProviderSettings {
        use crate::providers::{ProviderEndpoints, ProviderSettings, RetryPolicy};
        ProviderSettings {
            entra: ProviderEndpoints {
                client_id: self.entra_client_id.clone(),
                client_secret: self.entra_client_secret.clone(),
                authorize: self.entra_login_url.clone(),
                token: String::new(),
                api: self.graph_url.clone(),
            },
            google: ProviderEndpoints {
                client_id: self.google_client_id.clone(),
                client_secret: self.google_client_secret.clone(),
                authorize: self.google_auth_url.clone(),
                token: self.google_token_url.clone(),
                api: self.google_directory_url.clone(),
            },
            retry: RetryPolicy::default(),
            entra_page_size: 999,
            google_page_size: 500,
            google_concurrency: self.google_concurrency,
            entra_concurrency: self.entra_concurrency,
            max_page_bytes: crate::providers::MAX_PAGE_BYTES,
        }
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("dirgate.db").display()
            ),
        }
    }

    /// The public base URL, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.listen),
        }
    }
}

impl Config {
    /// Fills each secret setting left empty from the file named by `<VAR>_FILE`, the
    /// convention of container platforms (Docker and Kubernetes secrets): `DATABASE_URL_FILE`,
    /// `DIRGATE_ENCRYPTION_KEY_FILE`, `DIRGATE_ENTRA_CLIENT_SECRET_FILE`,
    /// `DIRGATE_GOOGLE_CLIENT_SECRET_FILE`. The file's trailing line break is dropped. Setting
    /// both `<VAR>` and `<VAR>_FILE` is refused; a value given as a flag wins (flags for secrets
    /// are discouraged: they show in the process list).
    pub fn read_secret_files(&mut self) -> Result<(), String> {
        const SECRETS: [&str; 4] = [
            "DATABASE_URL",
            "DIRGATE_ENCRYPTION_KEY",
            "DIRGATE_ENTRA_CLIENT_SECRET",
            "DIRGATE_GOOGLE_CLIENT_SECRET",
        ];
        for var in SECRETS {
            if std::env::var_os(var).is_some() && std::env::var_os(format!("{var}_FILE")).is_some()
            {
                return Err(format!(
                    "{var} and {var}_FILE are both set; set one of them"
                ));
            }
        }
        fn from_file(var: &str) -> Result<Option<String>, String> {
            let Some(path) = std::env::var_os(format!("{var}_FILE")) else {
                return Ok(None);
            };
            let path = std::path::PathBuf::from(path);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {var}_FILE ({}): {e}", path.display()))?;
            Ok(Some(text.trim_end_matches(['\n', '\r']).to_owned()))
        }
        if self.database_url.is_none() {
            self.database_url = from_file("DATABASE_URL")?;
        }
        if self.encryption_key.is_none() {
            self.encryption_key = from_file("DIRGATE_ENCRYPTION_KEY")?;
        }
        if self.entra_client_secret.is_empty() {
            self.entra_client_secret =
                from_file("DIRGATE_ENTRA_CLIENT_SECRET")?.unwrap_or_default();
        }
        if self.google_client_secret.is_empty() {
            self.google_client_secret =
                from_file("DIRGATE_GOOGLE_CLIENT_SECRET")?.unwrap_or_default();
        }
        Ok(())
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; ANSI colour only when standard error is a terminal.
    Text,
    /// One JSON object per line.
    Json,
}
