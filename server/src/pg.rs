//! PostgreSQL provisioning: the private cluster started from the installed PostgreSQL binaries
//! when no `DATABASE_URL` is given, the two roles of the tenancy model, and migrations.
//!
//! Roles: `fleetfront_owner` owns the schema and runs migrations; `fleetfront_app` is the
//! runtime role every request uses: LOGIN, not superuser, NOBYPASSRLS, owns nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Context};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

/// The owner role's name.
pub const OWNER_ROLE: &str = "fleetfront_owner";
/// The runtime role's name.
pub const APP_ROLE: &str = "fleetfront_app";
/// The database the private cluster serves.
pub const DATABASE: &str = "fleetfront";

/// The embedded migrations (`migrations/` at the workspace root).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Finds the directory holding `initdb`, `pg_ctl` and `postgres`.
///
/// # Errors
/// A one-line message saying what to install.
pub fn find_binaries() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("FLEETFRONT_PG_BIN") {
        let dir = PathBuf::from(dir);
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
        bail!("FLEETFRONT_PG_BIN={} has no initdb", dir.display());
    }
    find_binaries_in(Path::new("/usr/lib/postgresql"))
}

/// Finds the newest `<root>/<major>/bin` holding `initdb`.
///
/// # Errors
/// A one-line message saying what to install.
pub fn find_binaries_in(root: &Path) -> anyhow::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).context(
        "PostgreSQL server binaries not found: install them with `apt-get install postgresql` (or set DATABASE_URL)",
    )
}

fn is_root() -> bool {
    // The effective uid, without libc: /proc/self/status has "Uid: real effective ...".
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root (PostgreSQL refuses root).
fn pg_command(bin: &Path, tool: &str) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        cmd
    } else {
        Command::new(bin.join(tool))
    }
}

fn run(mut cmd: Command, what: &str) -> anyhow::Result<()> {
    let output = cmd.output().with_context(|| format!("cannot run {what}"))?;
    if !output.status.success() {
        bail!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim()
        );
    }
    Ok(())
}

/// A PostgreSQL cluster in a folder of our own, reached over a Unix socket in that folder (no TCP
/// port, so several clusters never clash and nothing outside can connect).
#[derive(Debug)]
pub struct PrivateCluster {
    bin: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    started_here: bool,
}

impl PrivateCluster {
    /// Creates the cluster in `dir` if it does not exist, and starts it if it is not running.
    ///
    /// # Errors
    /// Missing binaries, or initdb/pg_ctl failures (with their output).
    pub fn ensure(dir: &Path) -> anyhow::Result<PrivateCluster> {
        let bin = find_binaries()?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let dir = dir.canonicalize()?;
        let data = dir.join("data");
        let socket_dir = dir.join("socket");
        std::fs::create_dir_all(&socket_dir)?;
        if is_root() {
            // The postgres user must own the cluster and reach it through every parent folder.
            run(
                {
                    let mut c = Command::new("chown");
                    c.args(["-R", "postgres:postgres"]).arg(&dir);
                    c
                },
                "chown of the cluster folder",
            )?;
            let mut probe = Command::new("runuser");
            probe.args(["-u", "postgres", "--", "test", "-w"]).arg(&dir);
            if !probe.status().is_ok_and(|s| s.success()) {
                bail!(
                    "the postgres user cannot reach {}: choose a data folder outside private home folders (--data-dir or FLEETFRONT_DATA_DIR)",
                    dir.display()
                );
            }
        }
        if !data.join("PG_VERSION").exists() {
            let mut initdb = pg_command(&bin, "initdb");
            initdb.arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ]);
            run(initdb, "initdb")?;
        }
        let mut cluster = PrivateCluster {
            bin,
            data,
            socket_dir,
            started_here: false,
        };
        if !cluster.is_running() {
            cluster.start()?;
        }
        Ok(cluster)
    }

    fn is_running(&self) -> bool {
        let mut status = pg_command(&self.bin, "pg_ctl");
        status.arg("status").arg("-D").arg(&self.data);
        status.output().is_ok_and(|o| o.status.success())
    }

    fn start(&mut self) -> anyhow::Result<()> {
        let log = self.data.join("server.log");
        let options = format!(
            "-c listen_addresses='' -c unix_socket_directories='{}' -c max_connections=200 -c shared_buffers=128MB -c fsync=on",
            self.socket_dir.display()
        );
        let mut start = pg_command(&self.bin, "pg_ctl");
        start
            .arg("start")
            .arg("-w")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&log)
            .arg("-o")
            .arg(options);
        run(start, "pg_ctl start").with_context(|| format!("see {}", log.display()))?;
        self.started_here = true;
        Ok(())
    }

    /// Connection options for `user` on `database`.
    pub fn connect_options(&self, user: &str, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .username(user)
            .database(database)
            .disable_statement_logging()
    }

    /// A superuser connection string for tools (`psql`), over the socket.
    pub fn superuser_url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@localhost/{database}?host={}",
            self.socket_dir.display()
        )
    }

    /// Stops the cluster if this process started it.
    pub fn stop_if_started_here(&self) {
        if self.started_here {
            let mut stop = pg_command(&self.bin, "pg_ctl");
            stop.arg("stop")
                .arg("-m")
                .arg("fast")
                .arg("-D")
                .arg(&self.data);
            if let Err(e) = run(stop, "pg_ctl stop") {
                tracing::warn!(error = %e, "could not stop the private PostgreSQL cluster");
            }
        }
    }
}

/// Creates the owner and runtime roles if missing. Needs a superuser connection (BYPASSRLS on
/// the owner needs one); `app_password` is set on the runtime role when given.
///
/// # Errors
/// Database errors.
pub async fn ensure_roles(
    superuser: &mut PgConnection,
    app_password: Option<&str>,
) -> anyhow::Result<()> {
    // Serialize concurrent bootstraps (parallel test processes) on one cluster-wide lock.
    sqlx::query("SELECT pg_advisory_lock(727274)")
        .execute(&mut *superuser)
        .await?;
    let result = async {
        for (role, attributes) in [
            (OWNER_ROLE, "LOGIN NOSUPERUSER BYPASSRLS CREATEDB"),
            (
                APP_ROLE,
                "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE",
            ),
        ] {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                    .bind(role)
                    .fetch_one(&mut *superuser)
                    .await?;
            if !exists {
                sqlx::query(&format!("CREATE ROLE {role} {attributes}"))
                    .execute(&mut *superuser)
                    .await?;
            }
        }
        if let Some(password) = app_password {
            let literal = password.replace('\'', "''");
            sqlx::query(&format!("ALTER ROLE {APP_ROLE} PASSWORD '{literal}'"))
                .execute(&mut *superuser)
                .await?;
        }
        anyhow::Ok(())
    }
    .await;
    sqlx::query("SELECT pg_advisory_unlock(727274)")
        .execute(&mut *superuser)
        .await?;
    result
}

/// Creates `database` owned by the owner role if it does not exist.
///
/// # Errors
/// Database errors.
pub async fn ensure_database(superuser: &mut PgConnection, database: &str) -> anyhow::Result<()> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database)
            .fetch_one(&mut *superuser)
            .await?;
    if !exists {
        sqlx::query(&format!(
            "CREATE DATABASE \"{database}\" OWNER {OWNER_ROLE}"
        ))
        .execute(&mut *superuser)
        .await?;
    }
    sqlx::query(&format!(
        "REVOKE ALL ON DATABASE \"{database}\" FROM PUBLIC"
    ))
    .execute(&mut *superuser)
    .await?;
    sqlx::query(&format!(
        "GRANT CONNECT ON DATABASE \"{database}\" TO {APP_ROLE}"
    ))
    .execute(&mut *superuser)
    .await?;
    Ok(())
}

/// Runs pending migrations as the owner.
///
/// # Errors
/// Migration failures.
pub async fn migrate(owner: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(owner)
        .await
        .context("database migration failed")
}

/// Pools of one database: the owner's (migrations, maintenance) and the runtime role's.
#[derive(Clone, Debug)]
pub struct Pools {
    /// Owner role: migrations and start-up checks only.
    pub owner: PgPool,
    /// Runtime role: every request.
    pub app: PgPool,
}

/// Connects both pools.
///
/// # Errors
/// Connection failures.
pub async fn connect(
    owner: PgConnectOptions,
    app: PgConnectOptions,
    max_connections: u32,
) -> anyhow::Result<Pools> {
    let owner = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(owner)
        .await
        .context("cannot connect to PostgreSQL as the owner role")?;
    let app = PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(app)
        .await
        .context("cannot connect to PostgreSQL as the runtime role fleetfront_app")?;
    Ok(Pools { owner, app })
}

/// Options for the runtime role derived from the owner's URL (same host and database).
///
/// # Errors
/// When the URL does not parse.
pub fn app_options_from_url(
    url: &str,
    app_password: Option<&str>,
) -> anyhow::Result<(PgConnectOptions, PgConnectOptions)> {
    let owner = PgConnectOptions::from_str(url)
        .context("invalid DATABASE_URL")?
        .disable_statement_logging();
    let mut app = owner.clone().username(APP_ROLE);
    if let Some(password) = app_password {
        app = app.password(password);
    }
    Ok((owner, app))
}

/// Bootstraps an external database given by URL: roles (when the URL's user may create them)
/// and migrations.
///
/// # Errors
/// Connection, privilege or migration failures.
pub async fn bootstrap_url(
    url: &str,
    app_password: Option<&str>,
    max_connections: u32,
) -> anyhow::Result<Pools> {
    let (owner, app) = app_options_from_url(url, app_password)?;
    let mut conn = PgConnection::connect_with(&owner)
        .await
        .context("cannot connect to DATABASE_URL")?;
    let is_superuser: bool =
        sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut conn)
            .await?;
    if is_superuser {
        ensure_roles(&mut conn, app_password).await?;
    } else {
        let app_exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                .bind(APP_ROLE)
                .fetch_one(&mut conn)
                .await?;
        if !app_exists {
            bail!("role {APP_ROLE} does not exist: create it (LOGIN NOBYPASSRLS) or use a superuser DATABASE_URL once");
        }
    }
    conn.close().await.ok();
    let pools = connect(owner, app, max_connections).await?;
    migrate(&pools.owner).await?;
    Ok(pools)
}

/// Bootstraps the private cluster: roles, database, migrations.
///
/// # Errors
/// As [`bootstrap_url`].
pub async fn bootstrap_private(
    cluster: &PrivateCluster,
    max_connections: u32,
) -> anyhow::Result<Pools> {
    let mut conn = PgConnection::connect_with(&cluster.connect_options("postgres", "postgres"))
        .await
        .context("cannot connect to the private PostgreSQL cluster")?;
    ensure_roles(&mut conn, None).await?;
    ensure_database(&mut conn, DATABASE).await?;
    conn.close().await.ok();
    let pools = connect(
        cluster.connect_options(OWNER_ROLE, DATABASE),
        cluster.connect_options(APP_ROLE, DATABASE),
        max_connections,
    )
    .await?;
    migrate(&pools.owner).await?;
    Ok(pools)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_say_what_to_install() {
        let empty = std::env::temp_dir().join(format!("ff-no-pg-{}", std::process::id()));
        std::fs::create_dir_all(&empty).expect("temp dir");
        let message = find_binaries_in(&empty)
            .expect_err("no binaries")
            .to_string();
        assert!(message.contains("apt-get install postgresql"), "{message}");
        assert!(!message.contains('\n'), "one line: {message}");
    }

    #[test]
    fn picks_the_newest_major_version() {
        let root = std::env::temp_dir().join(format!("ff-pg-versions-{}", std::process::id()));
        for version in ["13", "15", "9"] {
            let bin = root.join(version).join("bin");
            std::fs::create_dir_all(&bin).expect("temp dir");
            std::fs::write(bin.join("initdb"), "").expect("file");
        }
        assert_eq!(
            find_binaries_in(&root).expect("found"),
            root.join("15").join("bin")
        );
    }
}
