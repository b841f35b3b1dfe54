//! The command line: `serve` (the default), `migrate`, `schema`, and `token create|list|revoke`.

use crate::{
    app::App,
    auth::{Admin, TokenRole, tokens},
    config::Config,
    db, graphql, http,
};
use clap::{Parser, Subcommand, ValueEnum};
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// dirgate: imports users and groups from Entra ID, Google Workspace and SCIM directories,
/// keeps them in sync, and assigns them to devices.
#[derive(Debug, Parser)]
#[command(name = "dirgate", version)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API, GraphiQL and the background jobs (the default).
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Print the GraphQL schema (SDL), as committed in schema.graphql.
    Schema,
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

/// API token management.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; the token itself is printed once, on the last line.
    Create {
        /// A name to recognise the token by.
        #[arg(long)]
        name: String,
        /// ADMIN may do everything; VIEWER may only read.
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id; it stops working at once.
    Revoke {
        /// The token's id, as `token list` shows it.
        id: i64,
    },
}

/// A token role on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    Viewer,
}

impl From<RoleArg> for TokenRole {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Admin => TokenRole::Admin,
            RoleArg::Viewer => TokenRole::Viewer,
        }
    }
}

/// Runs the command line; the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

type CliResult = Result<(), Box<dyn std::error::Error>>;

async fn open(config: &Config) -> Result<sea_orm::DatabaseConnection, Box<dyn std::error::Error>> {
    let url = config.database_url();
    let conn = db::connect(&url)
        .await
        .map_err(|e| format!("cannot open the database {}: {e}", redact(&url)))?;
    db::migrate(&conn)
        .await
        .map_err(|e| format!("cannot migrate the database: {e}"))?;
    Ok(conn)
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

async fn run(cli: Cli) -> CliResult {
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Schema => {
            print!("{}", graphql::sdl());
            Ok(())
        }
        Command::Migrate => {
            open(&config).await?;
            println!("migrations applied to {}", redact(&config.database_url()));
            Ok(())
        }
        Command::Serve => serve(config).await,
        Command::Token { command } => token(&config, command).await,
    }
}

async fn serve(config: Config) -> CliResult {
    let db = open(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr()?;
    let has_tokens = !tokens::list(&db).await?.is_empty();
    println!("dirgate is listening on http://{addr}");
    println!("  GraphiQL:  http://{addr}/");
    println!("  database:  {}", redact(&config.database_url()));
    if !has_tokens {
        println!("  no API token exists yet; create one (in another terminal) with:");
        println!("    cargo run -- token create --name admin --role admin");
        println!("  and paste {{\"Authorization\": \"Bearer <token>\"}} into GraphiQL's headers.");
    }
    let app = App::new(db, config)?;
    let shutdown = CancellationToken::new();
    tokio::spawn(watch_signals(shutdown.clone()));
    http::serve(app, listener, shutdown.cancelled_owned()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Cancels `token` on SIGINT or SIGTERM.
async fn watch_signals(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(err) => {
                    tracing::error!(error = %err, "cannot watch SIGTERM");
                    let _ = ctrl_c.await;
                    token.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
    token.cancel();
}

async fn token(config: &Config, command: TokenCommand) -> CliResult {
    let db = open(config).await?;
    match command {
        TokenCommand::Create { name, role } => {
            let new = tokens::create(&db, &Admin::cli(), &name, role.into()).await?;
            println!(
                "created {:?} token {} ({}); it is shown only now:",
                new.model.role, new.model.id, new.model.name
            );
            println!("{}", new.token);
        }
        TokenCommand::List => {
            println!(
                "{:<6} {:<10} {:<14} {:<25} {:<25} name",
                "id", "role", "hint", "created", "revoked"
            );
            for t in tokens::list(&db).await? {
                println!(
                    "{:<6} {:<10} {:<14} {:<25} {:<25} {}",
                    t.id,
                    format!("{:?}", t.role).to_uppercase(),
                    format!("{}…", t.hint),
                    t.created_at.format("%Y-%m-%d %H:%M:%SZ"),
                    t.revoked_at
                        .map(|r| r.format("%Y-%m-%d %H:%M:%SZ").to_string())
                        .unwrap_or_else(|| "-".into()),
                    t.name
                );
            }
        }
        TokenCommand::Revoke { id } => {
            let t = tokens::revoke(&db, &Admin::cli(), id).await?;
            println!("revoked token {} ({})", t.id, t.name);
        }
    }
    Ok(())
}
