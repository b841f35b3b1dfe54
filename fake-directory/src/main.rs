//! `fake-directory`: serves a generated (or loaded) directory over the providers' wire formats.

use clap::Parser;
use fake_directory::{Directory, Fake};
use std::{net::SocketAddr, path::PathBuf};

/// A fake Microsoft Entra ID + Graph and Google Workspace directory, for tests and demos.
#[derive(Parser)]
#[command(name = "fake-directory", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// Users per tenant to generate.
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// Groups per tenant to generate.
    #[arg(long, default_value_t = 20)]
    groups: usize,
    /// Seed of the generator: the same seed and sizes give the same directory.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Load the directory from this JSON file (the shape `GET /_control/directory` returns)
    /// instead of generating one.
    #[arg(long)]
    load: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let dir = match &args.load {
        Some(path) => serde_json::from_str::<Directory>(&std::fs::read_to_string(path)?)?,
        None => Directory::generate(args.seed, args.users, args.groups),
    };
    for (key, tenant) in &dir.tenants {
        println!(
            "{:?} tenant {key} ({}): {} users, {} groups; admin account admin@{}",
            tenant.kind,
            tenant.domain,
            tenant.users.len(),
            tenant.groups.len(),
            tenant.domain
        );
    }
    let fake = Fake::new(dir);
    let addr = fake.spawn(args.listen).await?;
    println!("fake directory listening on http://{addr}");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
