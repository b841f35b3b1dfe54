//! Configuration: every setting is a flag and an environment variable (README has the table).

use clap::Args;
use std::{net::SocketAddr, path::PathBuf};

/// Settings shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Database to use: `sqlite://PATH` or `postgres://...`. Default: an SQLite file in the data directory.
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,

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

    /// Log filter (tracing's `EnvFilter` syntax).
    #[arg(long, env = "DIRGATE_LOG", default_value = "info", global = true)]
    pub log: String,
}

impl Config {
    /// A configuration with every default, for tests and embedding.
    pub fn defaults() -> Self {
        Self {
            database_url: None,
            data_dir: PathBuf::from("./data"),
            listen: ([127, 0, 0, 1], 8080).into(),
            public_url: None,
            cors_origins: Vec::new(),
            max_page_size: 500,
            max_body_bytes: 1 << 20,
            log: "info".into(),
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
