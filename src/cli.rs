//! The command line: `serve` (the default), `migrate`, `schema`, and `token create|list|revoke`.

use crate::{
    app::Core,
    auth::{Admin, TokenRole},
    config::Config,
    db,
    directory::tokens,
    graphql, http,
    output::Output,
};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;
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
    /// `serve` with a simulated Entra ID tenant and Google Workspace domain in-process, a few
    /// devices, and an admin token printed at start: try dirgate without any real directory.
    #[cfg(feature = "demo")]
    Demo {
        /// Where the simulated directory listens (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        fake_listen: std::net::SocketAddr,
        /// Users per simulated tenant.
        #[arg(long, default_value_t = 300)]
        fake_users: usize,
        /// Print each directory change event (type, object, changed fields) as it commits.
        #[arg(long)]
        print_events: bool,
    },
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
    let mut cli = Cli::parse();
    init_tracing(&cli.config.log, cli.config.log_format);
    let out = Output::new(cli.config.log_format);
    if let Err(err) = cli.config.read_secret_files() {
        out.error(err);
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            out.error(format_args!("cannot start the runtime: {err}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            out.error(err);
            ExitCode::FAILURE
        }
    }
}

/// Logs to standard error: text (coloured only on a terminal, so a file or a pipe gets no
/// escape codes) or one JSON object per line.
fn init_tracing(filter: &str, format: crate::config::LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        crate::config::LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        crate::config::LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}

type CliResult = Result<(), Box<dyn std::error::Error>>;

async fn open(config: &Config) -> Result<sea_orm::DatabaseConnection, Box<dyn std::error::Error>> {
    let url = config.database_url();
    let conn = db::connect_sized(&url, config.database_pool_size)
        .await
        .map_err(|e| format!("cannot open the database {}: {e}", redact(&url)))?;
    db::migrate(&conn)
        .await
        .map_err(|e| format!("cannot migrate the database: {e}"))?;
    Ok(conn)
}

/// A database URL without its password, for messages.
fn redact(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => raw.to_owned(),
    }
}

async fn run(cli: Cli) -> CliResult {
    let config = cli.config;
    let out = Output::new(config.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Schema => {
            print!("{}", graphql::sdl());
            Ok(())
        }
        Command::Migrate => {
            open(&config).await?;
            let url = redact(&config.database_url());
            out.line(
                format_args!("migrations applied to {url}"),
                "migrations applied",
                json!({ "database": url }),
            );
            Ok(())
        }
        Command::Serve => serve(config).await,
        #[cfg(feature = "demo")]
        Command::Demo {
            fake_listen,
            fake_users,
            print_events,
        } => demo(config, fake_listen, fake_users, print_events).await,
        Command::Token { command } => token(&config, command).await,
    }
}

async fn serve(mut config: Config) -> CliResult {
    let db = open(&config).await?;
    let listener = bind(&config).await?;
    let addr = listener.local_addr()?;
    if config.public_url.is_none() {
        config.public_url = Some(format!("http://{addr}"));
    }
    let has_tokens = !tokens::list(&db).await?.is_empty();
    let out = Output::new(config.log_format);
    let database = redact(&config.database_url());
    if out.is_json() {
        out.line(
            "",
            "dirgate is listening",
            json!({ "url": format!("http://{addr}"), "graphiql": format!("http://{addr}/"), "database": database, "apiTokens": has_tokens }),
        );
    } else {
        println!("dirgate is listening on http://{addr}");
        println!("  GraphiQL:  http://{addr}/");
        println!("  database:  {database}");
    }
    if !has_tokens {
        out.line(
            "  no API token exists yet; create one (in another terminal) with:\n    cargo run -- token create --name admin --role admin\n  and paste {\"Authorization\": \"Bearer <token>\"} into GraphiQL's headers.",
            "no API token exists yet; create one with `dirgate token create --name admin --role admin`",
            json!({}),
        );
    }
    run_server(Core::start(db, config)?, listener).await
}

/// Raises the soft limit on open files to the hard one (systemd gives a service 1,024, which
/// a few hundred clients and the database pool exhaust), and logs the figure.
fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open files limit"),
        Err(err) => tracing::warn!(error = %err, "cannot raise the open files limit"),
    }
}

async fn bind(config: &Config) -> Result<tokio::net::TcpListener, Box<dyn std::error::Error>> {
    raise_open_files_limit();
    Ok(tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?)
}

async fn run_server(core: Core, listener: tokio::net::TcpListener) -> CliResult {
    let shutdown = CancellationToken::new();
    tokio::spawn(watch_signals(shutdown.clone()));
    http::serve(core.app.clone(), listener, shutdown.cancelled_owned()).await?;
    core.stop().await;
    tracing::info!("stopped");
    Ok(())
}

/// Devices the demo registers, with the enrollment identity of a simulated user each.
#[cfg(feature = "demo")]
const DEMO_DEVICES: &[(&str, &str, entity::enums::DevicePlatform)] = &[
    (
        "C02DEMO0001",
        "Reception iMac",
        entity::enums::DevicePlatform::Macos,
    ),
    (
        "C02DEMO0002",
        "Sales MacBook",
        entity::enums::DevicePlatform::Macos,
    ),
    (
        "F9DEMO0003",
        "Warehouse iPad",
        entity::enums::DevicePlatform::Ipados,
    ),
    (
        "PC-DEMO-0004",
        "Finance laptop",
        entity::enums::DevicePlatform::Windows,
    ),
];

/// Starts the demo's simulated directory on `listen` (`users` users, a few messy records) and
/// points `config`'s providers at it; returns its URL and the sign-in names of two users per
/// tenant (the demo devices' enrollment identities).
#[cfg(feature = "demo")]
async fn start_fake(
    config: &mut Config,
    listen: std::net::SocketAddr,
    users: usize,
) -> Result<(String, Vec<String>), Box<dyn std::error::Error>> {
    use fake_directory::{Directory, Fake};
    let fake_users = users;
    let mut directory = Directory::generate(7, fake_users, (fake_users / 25).max(3));
    // A few records of the kinds real directories hold (control and bidi characters, an
    // over-long field, 150 aliases, an external member): the first sync's run shows how
    // each was cleaned (`SyncRun.warnings`). A few groups nest (`Group.childGroups`), and
    // Google's users sit in org units by department (`directoryOrgUnits`).
    for tenant in directory.tenants.values_mut() {
        tenant.add_messy_records();
        tenant.nest_some_groups();
    }
    let identities: Vec<String> = directory
        .tenants
        .values()
        .flat_map(|t| t.users.values().take(2).map(|u| u.user_name.clone()))
        .collect();
    let fake = Fake::new(directory);
    let fake_addr = fake.spawn(listen).await?;
    let fake_url = format!("http://{fake_addr}");
    config.entra_client_id = "dirgate-demo-entra".into();
    config.entra_client_secret = "demo-secret".into();
    config.entra_login_url = fake_url.clone();
    config.graph_url = fake_url.clone();
    config.google_client_id = "dirgate-demo-google".into();
    config.google_client_secret = "demo-secret".into();
    config.google_auth_url = format!("{fake_url}/o/oauth2/v2/auth");
    config.google_token_url = format!("{fake_url}/token");
    config.google_directory_url = fake_url.clone();

    Ok((fake_url, identities))
}

/// Registers the demo devices (once: a device already there is kept), the first ones enrolled
/// by `identities`.
#[cfg(feature = "demo")]
async fn register_demo_devices(
    db: &sea_orm::DatabaseConnection,
    admin: &Admin,
    identities: &[String],
) -> CliResult {
    for (i, (serial, name, platform)) in DEMO_DEVICES.iter().enumerate() {
        let new = crate::directory::devices::NewDevice {
            serial_number: (*serial).into(),
            name: (*name).into(),
            platform: *platform,
            model: None,
            os_version: None,
            enrollment_identity: identities.get(i).cloned(),
        };
        match crate::directory::devices::register(db, admin, new).await {
            Ok(_) | Err(crate::error::DomainError::AlreadyExists { .. }) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

#[cfg(feature = "demo")]
async fn demo(
    mut config: Config,
    fake_listen: std::net::SocketAddr,
    fake_users: usize,
    print_events: bool,
) -> CliResult {
    if config.database_url.is_none() {
        config.database_url = Some(format!(
            "sqlite://{}?mode=rwc",
            config.data_dir.join("demo.db").display()
        ));
    }
    let (fake_url, identities) = start_fake(&mut config, fake_listen, fake_users).await?;

    let db = open(&config).await?;
    let listener = bind(&config).await?;
    let addr = listener.local_addr()?;
    if config.public_url.is_none() {
        config.public_url = Some(format!("http://{addr}"));
    }
    let admin = Admin::cli();
    register_demo_devices(&db, &admin, &identities).await?;
    let token = tokens::create(&db, &admin, "demo admin", TokenRole::Admin).await?;
    let out = Output::new(config.log_format);
    let database = redact(&config.database_url());
    if out.is_json() {
        out.line(
            "",
            "dirgate demo is listening",
            json!({
                "url": format!("http://{addr}"),
                "graphiql": format!("http://{addr}/"),
                "simulatedDirectory": fake_url,
                "accounts": ["admin@contoso.example", "admin@fabrikam.example"],
                "database": database,
                "adminToken": token.token,
            }),
        );
    } else {
        println!("dirgate demo is listening on http://{addr}");
        println!("  GraphiQL:            http://{addr}/");
        println!(
            "  simulated directory: {fake_url} (Entra tenant contoso.example, Google domain fabrikam.example)"
        );
        println!("  sign in there as admin@contoso.example or admin@fabrikam.example");
        println!("  database:            {database}");
        println!("admin token: {}", token.token);
    }
    config.graphiql_token = Some(token.token.clone());
    // A demo's webhooks go to a receiver on the same machine.
    config.webhook_allow_private_urls = true;
    if print_events {
        out.line(
            "printing directory change events as they commit:",
            "printing directory change events as they commit",
            json!({}),
        );
        tokio::spawn(print_events_from(db.clone(), out));
    }
    run_server(Core::start(db, config)?, listener).await
}

/// Prints every directory change event committed from now on, a line each (`demo
/// --print-events`), reading the feed as any consumer would.
#[cfg(feature = "demo")]
async fn print_events_from(db: sea_orm::DatabaseConnection, out: Output) {
    use crate::directory::events;
    let mut after = events::last_seq(&db).await.unwrap_or(0);
    loop {
        match events::list(&db, Some(after), 100, &events::EventFilter::default()).await {
            Ok(page) if !page.items.is_empty() => {
                for event in page.items {
                    after = event.seq;
                    let data: serde_json::Value =
                        serde_json::from_str(&event.data).unwrap_or_default();
                    let state = &data["state"];
                    let name = ["displayName", "userName", "name", "serialNumber", "userId"]
                        .iter()
                        .find_map(|k| state[*k].as_str())
                        .unwrap_or_default();
                    let changed = data["changedFields"]
                        .as_array()
                        .map(|c| format!(" changed {}", serde_json::Value::from(c.clone())))
                        .unwrap_or_default();
                    out.line(
                        format_args!(
                            "event {:>6} {:<24} {} {}{}",
                            event.seq, event.event_type, event.object_type, name, changed
                        ),
                        "directory change event",
                        json!({
                            "sequence": event.seq,
                            "type": event.event_type,
                            "objectType": event.object_type,
                            "name": name,
                            "changedFields": data["changedFields"],
                        }),
                    );
                }
            }
            Ok(_) => events::written_or_poll().await,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read events");
                tokio::time::sleep(events::POLL).await;
            }
        }
    }
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
    let out = Output::new(config.log_format);
    match command {
        TokenCommand::Create { name, role } => {
            let new = tokens::create(&db, &Admin::cli(), &name, role.into()).await?;
            out.line(
                format_args!(
                    "created {:?} token {} ({}); it is shown only now:\n{}",
                    new.model.role, new.model.id, new.model.name, new.token
                ),
                "token created; it is shown only now",
                json!({ "id": new.model.id, "name": new.model.name, "role": format!("{:?}", new.model.role).to_uppercase(), "token": new.token }),
            );
        }
        TokenCommand::List if out.is_json() => {
            for t in tokens::list(&db).await? {
                out.line(
                    "",
                    "api token",
                    json!({
                        "id": t.id,
                        "role": format!("{:?}", t.role).to_uppercase(),
                        "hint": t.hint,
                        "created": t.created_at,
                        "revoked": t.revoked_at,
                        "name": t.name,
                    }),
                );
            }
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
            out.line(
                format_args!("revoked token {} ({})", t.id, t.name),
                "token revoked",
                json!({ "id": t.id, "name": t.name }),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgres://dirgate:s3cret@db.example:5432/dirgate"),
            "postgres://dirgate:***@db.example:5432/dirgate"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/test"
        );
        assert_eq!(
            redact("sqlite://./data/dirgate.db?mode=rwc"),
            "sqlite://./data/dirgate.db?mode=rwc"
        );
    }
}
