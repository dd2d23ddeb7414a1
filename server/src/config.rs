//! Server configuration: defaults, then an optional TOML file, then environment variables,
//! then command-line flags. Every value is checked at start-up and a bad one stops the server
//! with a message naming the setting and what is expected.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

/// Settings that may appear in the config file (`--config`, `FLEETFRONT_CONFIG`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Listen address.
    pub listen: Option<String>,
    /// PostgreSQL URL of the owner (migration) role.
    pub database_url: Option<String>,
    /// Password of the runtime role, when connecting over TCP with password auth.
    pub app_db_password: Option<String>,
    /// Data folder (private PostgreSQL cluster, generated secrets).
    pub data_dir: Option<PathBuf>,
    /// Folder of uploaded files (product images), stored by SHA-256; default `<data_dir>/blobs`.
    pub blob_dir: Option<PathBuf>,
    /// Base domain of storefronts, e.g. `fleetfront.app`.
    pub base_domain: Option<String>,
    /// Log filter, e.g. `info,fleetfront_server=debug`.
    pub log: Option<String>,
    /// `text` or `json`.
    pub log_format: Option<String>,
    /// Trust `X-Forwarded-For` (only behind a proxy that sets it).
    pub trust_forwarded_for: Option<bool>,
    /// Maximum runtime pool connections.
    pub max_connections: Option<u32>,
    /// Days drivers' location history is kept.
    pub location_retention_days: Option<u32>,
    /// SMTP URL for outgoing email; unset logs emails instead of sending them.
    pub smtp_url: Option<String>,
    /// `From:` address of outgoing email.
    pub mail_from: Option<String>,
    /// Public base URL used in links inside messages.
    pub public_url: Option<String>,
    /// Stripe secret API key (`sk_…`); unset disables card payments.
    pub stripe_secret_key: Option<String>,
    /// Signing secret of the Stripe webhook endpoint (`whsec_…`).
    pub stripe_webhook_secret: Option<String>,
    /// Stripe API base URL.
    pub stripe_api_base: Option<String>,
    /// Key sealing personal data at rest (32 bytes as hex or base64); unset: generated once and
    /// kept in `<data_dir>/data-key`.
    pub data_key: Option<String>,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Owner-role database URL; `None` starts the private cluster.
    pub database_url: Option<String>,
    /// Runtime role password (TCP password auth).
    pub app_db_password: Option<String>,
    /// Data folder.
    pub data_dir: PathBuf,
    /// Folder of uploaded files (`FLEETFRONT_BLOB_DIR`; default `<data_dir>/blobs`).
    pub blob_dir: PathBuf,
    /// Storefront base domain.
    pub base_domain: String,
    /// Log filter.
    pub log: String,
    /// JSON logs.
    pub log_json: bool,
    /// Trust `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
    /// Runtime pool size.
    pub max_connections: u32,
    /// Days drivers' location history is kept (`FLEETFRONT_LOCATION_RETENTION_DAYS`, default 7).
    pub location_retention_days: u32,
    /// SMTP URL (`smtp://host:port`, `smtps://user:pass@host`); `None` logs emails.
    pub smtp_url: Option<String>,
    /// `From:` address of outgoing email.
    pub mail_from: String,
    /// Public base URL used in links inside messages.
    pub public_url: String,
    /// Stripe, when card payments are configured.
    pub stripe: Option<StripeConfig>,
    /// The data key (`FLEETFRONT_DATA_KEY`), when given; otherwise one is kept in the data folder.
    pub data_key: Option<crate::crypto::DataKey>,
}

/// Stripe's settings: both secrets together, or none.
#[derive(Clone)]
pub struct StripeConfig {
    /// Secret API key (`sk_…`).
    pub secret_key: String,
    /// Webhook endpoint signing secret (`whsec_…`).
    pub webhook_secret: String,
    /// API base URL (`https://api.stripe.com`).
    pub api_base: String,
}

impl std::fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secrets stay out of logs.
        f.debug_struct("StripeConfig")
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

impl StripeConfig {
    /// Checks Stripe's settings: both secrets or neither, each with Stripe's prefix.
    ///
    /// # Errors
    /// A message naming the bad setting.
    pub fn parse(
        secret_key: Option<String>,
        webhook_secret: Option<String>,
        api_base: Option<String>,
    ) -> anyhow::Result<Option<StripeConfig>> {
        let api_base = api_base
            .unwrap_or_else(|| crate::payments::stripe::DEFAULT_API_BASE.to_owned())
            .trim_end_matches('/')
            .to_owned();
        if !(api_base.starts_with("https://") || api_base.starts_with("http://")) {
            bail!("invalid FLEETFRONT_STRIPE_API_BASE {api_base:?}: expected an http(s) URL such as https://api.stripe.com");
        }
        let (secret_key, webhook_secret) = match (secret_key, webhook_secret) {
            (None, None) => return Ok(None),
            (Some(key), Some(secret)) => (key, secret),
            (Some(_), None) => bail!("FLEETFRONT_STRIPE_WEBHOOK_SECRET is not set: card payments need both the secret key and the webhook signing secret (whsec_…)"),
            (None, Some(_)) => bail!("FLEETFRONT_STRIPE_SECRET_KEY is not set: card payments need both the secret key (sk_…) and the webhook signing secret"),
        };
        if !secret_key.starts_with("sk_")
            || secret_key.len() < 8
            || secret_key.contains(char::is_whitespace)
        {
            bail!("invalid FLEETFRONT_STRIPE_SECRET_KEY: expected a Stripe secret key starting with sk_");
        }
        if !webhook_secret.starts_with("whsec_")
            || webhook_secret.len() < 10
            || webhook_secret.contains(char::is_whitespace)
        {
            bail!("invalid FLEETFRONT_STRIPE_WEBHOOK_SECRET: expected a webhook signing secret starting with whsec_");
        }
        Ok(Some(StripeConfig {
            secret_key,
            webhook_secret,
            api_base,
        }))
    }
}

/// Raw values from flags and the environment (clap fills these).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--config` / `FLEETFRONT_CONFIG`.
    pub config_file: Option<PathBuf>,
    /// `--listen` / `FLEETFRONT_LISTEN`.
    pub listen: Option<String>,
    /// `DATABASE_URL`.
    pub database_url: Option<String>,
    /// `--data-dir` / `FLEETFRONT_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    /// Builds the configuration from defaults, file, environment and flags.
    ///
    /// # Errors
    /// A message naming the bad setting.
    pub fn load(overrides: &Overrides) -> anyhow::Result<Config> {
        let file = match &overrides.config_file {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen_raw = overrides
            .listen
            .clone()
            .or_else(|| env("FLEETFRONT_LISTEN"))
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen = listen_raw.parse::<SocketAddr>().with_context(|| {
            format!("invalid listen address {listen_raw:?} (--listen / FLEETFRONT_LISTEN): expected host:port such as 127.0.0.1:8080")
        })?;
        let database_url = overrides
            .database_url
            .clone()
            .or_else(|| env("DATABASE_URL"))
            .or(file.database_url);
        if let Some(url) = &database_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                bail!("invalid DATABASE_URL: expected postgres://user:password@host:port/database");
            }
        }
        let data_dir = overrides
            .data_dir
            .clone()
            .or_else(|| env("FLEETFRONT_DATA_DIR").map(PathBuf::from))
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(".fleetfront"));
        let blob_dir = env("FLEETFRONT_BLOB_DIR")
            .map(PathBuf::from)
            .or(file.blob_dir)
            .unwrap_or_else(|| data_dir.join("blobs"));
        let base_domain = env("FLEETFRONT_BASE_DOMAIN")
            .or(file.base_domain)
            .unwrap_or_else(|| "localhost".to_owned());
        if base_domain.is_empty() || base_domain.contains('/') || base_domain.contains(' ') {
            bail!("invalid FLEETFRONT_BASE_DOMAIN {base_domain:?}: expected a host name such as fleetfront.app");
        }
        let log_format = env("FLEETFRONT_LOG_FORMAT")
            .or(file.log_format)
            .unwrap_or_else(|| "text".to_owned());
        let log_json = match log_format.as_str() {
            "text" => false,
            "json" => true,
            other => bail!("invalid FLEETFRONT_LOG_FORMAT {other:?}: expected text or json"),
        };
        let trust_forwarded_for = match env("FLEETFRONT_TRUST_FORWARDED_FOR") {
            Some(v) => parse_bool("FLEETFRONT_TRUST_FORWARDED_FOR", &v)?,
            None => file.trust_forwarded_for.unwrap_or(false),
        };
        let max_connections = match env("FLEETFRONT_MAX_CONNECTIONS") {
            Some(v) => v.parse::<u32>().ok().filter(|n| (1..=1000).contains(n)).with_context(|| {
                format!("invalid FLEETFRONT_MAX_CONNECTIONS {v:?}: expected a number from 1 to 1000")
            })?,
            None => file.max_connections.unwrap_or(16),
        };
        let location_retention_days = match env("FLEETFRONT_LOCATION_RETENTION_DAYS") {
            Some(v) => v.parse::<u32>().ok().filter(|n| (1..=3650).contains(n)).with_context(|| {
                format!("invalid FLEETFRONT_LOCATION_RETENTION_DAYS {v:?}: expected a number of days from 1 to 3650")
            })?,
            None => file.location_retention_days.unwrap_or(7),
        };
        if !(1..=3650).contains(&location_retention_days) {
            bail!("invalid location_retention_days {location_retention_days}: expected a number of days from 1 to 3650");
        }
        let smtp_url = env("FLEETFRONT_SMTP_URL").or(file.smtp_url);
        if let Some(url) = &smtp_url {
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                bail!("invalid FLEETFRONT_SMTP_URL: expected smtp://host:port or smtps://user:password@host");
            }
        }
        let mail_from = env("FLEETFRONT_MAIL_FROM")
            .or(file.mail_from)
            .unwrap_or_else(|| format!("no-reply@{base_domain}"));
        if mail_from.parse::<lettre::Address>().is_err() {
            bail!("invalid FLEETFRONT_MAIL_FROM {mail_from:?}: expected an email address");
        }
        let public_url = env("FLEETFRONT_PUBLIC_URL")
            .or(file.public_url)
            .unwrap_or_else(|| format!("http://{listen}"))
            .trim_end_matches('/')
            .to_owned();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            bail!("invalid FLEETFRONT_PUBLIC_URL {public_url:?}: expected an http(s) URL");
        }
        let stripe = StripeConfig::parse(
            env("FLEETFRONT_STRIPE_SECRET_KEY").or(file.stripe_secret_key),
            env("FLEETFRONT_STRIPE_WEBHOOK_SECRET").or(file.stripe_webhook_secret),
            env("FLEETFRONT_STRIPE_API_BASE").or(file.stripe_api_base),
        )?;
        let data_key = env("FLEETFRONT_DATA_KEY")
            .or(file.data_key)
            .map(|text| crate::crypto::DataKey::parse(&text))
            .transpose()
            .context("invalid FLEETFRONT_DATA_KEY")?;
        Ok(Config {
            stripe,
            data_key,
            listen,
            smtp_url,
            mail_from,
            public_url,
            database_url,
            app_db_password: env("FLEETFRONT_APP_DB_PASSWORD").or(file.app_db_password),
            data_dir,
            blob_dir,
            base_domain,
            log: env("FLEETFRONT_LOG")
                .or(file.log)
                .unwrap_or_else(|| "info".to_owned()),
            log_json,
            trust_forwarded_for,
            max_connections,
            location_retention_days,
        })
    }
}

fn parse_bool(name: &str, raw: &str) -> anyhow::Result<bool> {
    match raw {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        other => bail!("invalid {name} {other:?}: expected true or false"),
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_settings_are_checked() {
        let some = |s: &str| Some(s.to_owned());
        assert!(StripeConfig::parse(None, None, None)
            .expect("valid")
            .is_none());
        let stripe = StripeConfig::parse(some("sk_test_abc123"), some("whsec_abc12345"), None)
            .expect("valid")
            .expect("configured");
        assert_eq!(stripe.api_base, "https://api.stripe.com");
        assert!(!format!("{stripe:?}").contains("sk_test"));
        for (key, secret, base, named) in [
            (
                some("pk_test_abc123"),
                some("whsec_abc12345"),
                None,
                "FLEETFRONT_STRIPE_SECRET_KEY",
            ),
            (
                some("sk_test_abc123"),
                some("abc12345678"),
                None,
                "FLEETFRONT_STRIPE_WEBHOOK_SECRET",
            ),
            (
                some("sk_test_abc123"),
                None,
                None,
                "FLEETFRONT_STRIPE_WEBHOOK_SECRET",
            ),
            (
                None,
                some("whsec_abc12345"),
                None,
                "FLEETFRONT_STRIPE_SECRET_KEY",
            ),
            (None, None, some("ftp://x"), "FLEETFRONT_STRIPE_API_BASE"),
        ] {
            let err = StripeConfig::parse(key, secret, base).expect_err("must fail");
            assert!(err.to_string().contains(named), "{err}");
        }
    }

    #[test]
    fn bad_listen_address_is_named() {
        let err = Config::load(&Overrides {
            listen: Some("nonsense".into()),
            ..Overrides::default()
        })
        .expect_err("must fail");
        assert!(err.to_string().contains("FLEETFRONT_LISTEN"), "{err}");
    }

    #[test]
    fn unknown_config_file_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("ff-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("c.toml");
        std::fs::write(&path, "listne = \"127.0.0.1:1\"\n").expect("write");
        let err = Config::load(&Overrides {
            config_file: Some(path),
            ..Overrides::default()
        })
        .expect_err("must fail");
        assert!(format!("{err:#}").contains("listne"), "{err:#}");
    }

    #[test]
    fn a_bad_data_key_is_named() {
        let dir = std::env::temp_dir().join(format!("ff-config-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("c.toml");
        std::fs::write(&path, "data_key = \"00ff\"\n").expect("write");
        let err = Config::load(&Overrides {
            config_file: Some(path.clone()),
            ..Overrides::default()
        })
        .expect_err("must fail");
        assert!(
            format!("{err:#}").contains("FLEETFRONT_DATA_KEY"),
            "{err:#}"
        );
        std::fs::write(&path, format!("data_key = \"{}\"\n", "ab".repeat(32))).expect("write");
        let config = Config::load(&Overrides {
            config_file: Some(path),
            ..Overrides::default()
        })
        .expect("valid");
        assert_eq!(config.data_key.map(|k| k.to_hex()), Some("ab".repeat(32)));
    }

    #[test]
    fn file_values_apply() {
        let dir = std::env::temp_dir().join(format!("ff-config-ok-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9999\"\nbase_domain = \"shops.test\"\n",
        )
        .expect("write");
        let config = Config::load(&Overrides {
            config_file: Some(path),
            ..Overrides::default()
        })
        .expect("valid");
        assert_eq!(config.listen.port(), 9999);
    }
}
