//! The `fleetfront` command: run the server, migrate, create the first platform admin.

#![forbid(unsafe_code)]

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fleetfront_domain::value::{DisplayName, Email, Password};
use fleetfront_server::config::{Config, Overrides};
use fleetfront_server::{demo, serve};

/// Fleetfront: white-labeled stores with their own delivery fleet.
#[derive(Parser)]
#[command(name = "fleetfront", version)]
struct Cli {
    /// TOML config file (settings as in the README); environment variables override it.
    #[arg(long, global = true, env = "FLEETFRONT_CONFIG")]
    config: Option<PathBuf>,
    /// Data folder: the private PostgreSQL cluster and generated secrets.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server. Without DATABASE_URL a private PostgreSQL cluster is started.
    Serve {
        /// Listen address (default 127.0.0.1:8080; env FLEETFRONT_LISTEN).
        #[arg(long)]
        listen: Option<String>,
        /// Seed demo businesses, staff, customers and a driver (see README).
        #[arg(long)]
        demo: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage platform admins.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a platform admin; the password is read from standard input.
    Create {
        /// The admin's email.
        #[arg(long)]
        email: String,
        /// The admin's name.
        #[arg(long, default_value = "Platform Admin")]
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let listen = match &cli.command {
        Command::Serve { listen, .. } => listen.clone(),
        _ => None,
    };
    let overrides = Overrides {
        config_file: cli.config.clone(),
        listen,
        database_url: None,
        data_dir: cli.data_dir.clone(),
    };
    let config = match Config::load(&overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fleetfront: {e:#}");
            return ExitCode::from(2);
        }
    };
    serve::init_tracing(&config.log, config.log_json);
    let result = match cli.command {
        Command::Serve { demo, .. } => serve::serve(config, demo).await,
        Command::Migrate => migrate(&config).await,
        Command::Admin {
            command:
                AdminCommand::Create {
                    email,
                    name,
                    password_stdin: _,
                },
        } => create_admin(&config, &email, &name).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleetfront: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let (pools, cluster) = serve::open_database(config).await?;
    pools.owner.close().await;
    pools.app.close().await;
    if let Some(cluster) = cluster {
        cluster.stop_if_started_here();
    }
    println!("migrations applied");
    Ok(())
}

async fn create_admin(config: &Config, email: &str, name: &str) -> anyhow::Result<()> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("invalid --email: {e}"))?;
    let name = DisplayName::parse(name).map_err(|e| anyhow::anyhow!("invalid --name: {e}"))?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = Password::parse_new(line.trim_end_matches(['\r', '\n']))
        .map_err(|e| anyhow::anyhow!("invalid password on standard input: {e}"))?;
    let (pools, cluster) = serve::open_database(config).await?;
    let created = demo::create_admin(&pools, &email, name.as_str(), password.expose()).await;
    pools.owner.close().await;
    pools.app.close().await;
    if let Some(cluster) = cluster {
        cluster.stop_if_started_here();
    }
    if created? {
        println!("admin {} created", email.as_str());
    } else {
        println!("admin {} already exists", email.as_str());
    }
    Ok(())
}
