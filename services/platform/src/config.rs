//! Settings every service process shares. Every setting is a flag with an `MZCHAT_*` env twin;
//! `ServerArgs::validate` turns them into a `ServerConfig` before anything binds.

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use crate::federation::OriginPolicy;
use crate::origin::{Origin, OriginError};
use crate::rate_limit::RateLimits;

/// A value that never appears in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Public gRPC (and gRPC-Web) listener.
    #[arg(long, env = "MZCHAT_LISTEN", default_value = "127.0.0.1:7600")]
    pub listen: SocketAddr,
    /// Assets origin listener (media over plain HTTP).
    #[arg(long, env = "MZCHAT_ASSETS_LISTEN", default_value = "127.0.0.1:7601")]
    pub assets_listen: SocketAddr,
    /// Admin listener: Prometheus metrics at /metrics, liveness at /healthz.
    #[arg(long, env = "MZCHAT_ADMIN_LISTEN", default_value = "127.0.0.1:9600")]
    pub admin_listen: SocketAddr,
    /// This server's public origin, e.g. https://chat.example.org (defaults to
    /// http://<listen> with --insecure-dev).
    #[arg(long, env = "MZCHAT_ORIGIN")]
    pub origin: Option<String>,
    /// Public origin of the assets server (ASSETS_DOMAIN); defaults to http://<assets-listen>
    /// with --insecure-dev.
    #[arg(long, env = "MZCHAT_ASSETS_ORIGIN")]
    pub assets_origin: Option<String>,
    /// Development mode: accept http:// origins. Never in production.
    #[arg(long, env = "MZCHAT_INSECURE_DEV")]
    pub insecure_dev: bool,
    /// Directory for the embedded defaults (SQLite files, local media).
    #[arg(long, env = "MZCHAT_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// PostgreSQL URL; without it each service uses a SQLite file in the data directory.
    #[arg(long, env = "MZCHAT_DATABASE_URL")]
    pub database_url: Option<Secret>,
    /// Prefix of each service's PostgreSQL schema (`<prefix><service>`).
    #[arg(long, env = "MZCHAT_DATABASE_SCHEMA_PREFIX", default_value = "")]
    pub database_schema_prefix: String,
    /// Maximum connections in each service's database pool.
    #[arg(long, env = "MZCHAT_DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,
    /// NATS URL, or several separated by commas (servers of one cluster); without it the
    /// process uses its in-process bus.
    #[arg(long, env = "MZCHAT_NATS_URL")]
    pub nats_url: Option<String>,
    /// NATS credentials file (`.creds`: a user JWT and its NKey seed), for servers that require
    /// them.
    #[arg(long, env = "MZCHAT_NATS_CREDENTIALS")]
    pub nats_credentials: Option<PathBuf>,
    /// Root of every bus subject and stream name (tests give each run its own).
    #[arg(long, env = "MZCHAT_BUS_PREFIX", default_value = "mzchat")]
    pub bus_prefix: String,
    /// Replicas of each JetStream stream.
    #[arg(long, env = "MZCHAT_STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,
    /// Shared secret that internal (service to service) RPCs must carry. Generated at start in
    /// the one-process mode; required when services run apart.
    #[arg(long, env = "MZCHAT_INTERNAL_TOKEN")]
    pub internal_token: Option<Secret>,
    /// Run database migrations at start.
    #[arg(long, env = "MZCHAT_MIGRATE")]
    pub migrate: bool,
    /// Time allowed for in-flight requests to finish on shutdown, in seconds.
    #[arg(long, env = "MZCHAT_SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,
    #[arg(long, env = "MZCHAT_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Servers this one federates with, by origin, host or `*.domain` (comma-separated);
    /// empty allows every server not denied.
    #[arg(long, env = "MZCHAT_FEDERATION_ALLOW", value_delimiter = ',')]
    pub federation_allow: Vec<String>,
    /// Servers this one refuses to federate with, same patterns; deny wins over allow.
    #[arg(long, env = "MZCHAT_FEDERATION_DENY", value_delimiter = ',')]
    pub federation_deny: Vec<String>,
    /// Changes a rate limit: `NAME=COUNT/PERIOD` (e.g. `message.send=30/10s`) or `NAME=off`;
    /// `all=off` lifts every limit. Repeatable; the environment variable takes a comma list.
    #[arg(long = "rate-limit", env = "MZCHAT_RATE_LIMITS", value_delimiter = ',')]
    pub rate_limits: Vec<String>,
    /// Proxies in front of this server that append to `X-Forwarded-For` (0: clients connect
    /// directly); per-address limits then key on the address the farthest one saw.
    #[arg(long, env = "MZCHAT_FORWARDED_FOR_HOPS", default_value_t = 0)]
    pub forwarded_for_hops: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--origin: {0}")]
    Origin(OriginError),
    #[error("--assets-origin: {0}")]
    AssetsOrigin(OriginError),
    #[error("--origin is required (or --insecure-dev for a local run)")]
    MissingOrigin,
    #[error("--bus-prefix must be letters, digits, '-' or '_'")]
    BusPrefix,
    #[error("--database-schema-prefix must be lower-case letters, digits or '_'")]
    SchemaPrefix,
    #[error("{0}")]
    Invalid(String),
}

/// Validated settings shared by every service of a process.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub assets_listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub origin: Origin,
    pub assets_origin: Origin,
    pub insecure_dev: bool,
    pub data_dir: PathBuf,
    pub database_url: Option<Secret>,
    pub database_schema_prefix: String,
    pub database_max_connections: u32,
    pub nats_url: Option<String>,
    pub nats_credentials: Option<PathBuf>,
    pub bus_prefix: String,
    pub stream_replicas: usize,
    pub internal_token: Option<Secret>,
    pub migrate: bool,
    pub shutdown_grace: Duration,
    pub log_format: LogFormat,
    pub federation: OriginPolicy,
    pub rate_limits: RateLimits,
    pub forwarded_for_hops: usize,
}

impl ServerArgs {
    /// Every NATS URL parses, and a credentials file, if named, is there to read (a wrong path
    /// would otherwise show only as failed connections).
    fn check_nats(&self) -> Result<(), ConfigError> {
        if let Some(urls) = &self.nats_url {
            crate::bus::nats::server_addrs(urls).map_err(ConfigError::Invalid)?;
        }
        if let Some(path) = &self.nats_credentials {
            if self.nats_url.is_none() {
                return Err(ConfigError::Invalid(
                    "--nats-credentials needs --nats-url".into(),
                ));
            }
            std::fs::metadata(path).map_err(|e| {
                ConfigError::Invalid(format!(
                    "cannot read --nats-credentials {}: {e}",
                    path.display()
                ))
            })?;
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<ServerConfig, ConfigError> {
        let origin = match &self.origin {
            Some(text) => Origin::parse(text, self.insecure_dev).map_err(ConfigError::Origin)?,
            None if self.insecure_dev => Origin::parse(&format!("http://{}", self.listen), true)
                .map_err(ConfigError::Origin)?,
            None => return Err(ConfigError::MissingOrigin),
        };
        let assets_origin = match &self.assets_origin {
            Some(text) => {
                Origin::parse(text, self.insecure_dev).map_err(ConfigError::AssetsOrigin)?
            }
            None if self.insecure_dev => {
                Origin::parse(&format!("http://{}", self.assets_listen), true)
                    .map_err(ConfigError::AssetsOrigin)?
            }
            None => return Err(ConfigError::Invalid("--assets-origin is required".into())),
        };
        let prefix_ok = !self.bus_prefix.is_empty()
            && self
                .bus_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !prefix_ok {
            return Err(ConfigError::BusPrefix);
        }
        let schema_ok = self
            .database_schema_prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !schema_ok {
            return Err(ConfigError::SchemaPrefix);
        }
        self.check_nats()?;
        if self.database_max_connections == 0 {
            return Err(ConfigError::Invalid(
                "--database-max-connections must be at least 1".into(),
            ));
        }
        Ok(ServerConfig {
            listen: self.listen,
            assets_listen: self.assets_listen,
            admin_listen: self.admin_listen,
            origin,
            assets_origin,
            insecure_dev: self.insecure_dev,
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            database_schema_prefix: self.database_schema_prefix.clone(),
            database_max_connections: self.database_max_connections,
            nats_url: self.nats_url.clone(),
            nats_credentials: self.nats_credentials.clone(),
            bus_prefix: self.bus_prefix.clone(),
            stream_replicas: self.stream_replicas,
            internal_token: self.internal_token.clone(),
            migrate: self.migrate,
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
            log_format: self.log_format,
            federation: OriginPolicy::new(&self.federation_allow, &self.federation_deny)
                .map_err(|e| ConfigError::Invalid(e.to_string()))?,
            rate_limits: RateLimits::from_settings(&self.rate_limits)
                .map_err(ConfigError::Invalid)?,
            forwarded_for_hops: self.forwarded_for_hops,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        server: ServerArgs,
    }

    fn parse(args: &[&str]) -> ServerArgs {
        Cli::parse_from(std::iter::once("mzchatd").chain(args.iter().copied())).server
    }

    #[test]
    fn insecure_dev_defaults_the_origin_to_the_listener() {
        let config = parse(&["--insecure-dev"]).validate().expect("valid");
        assert_eq!(config.origin.as_str(), "http://127.0.0.1:7600");
        assert_eq!(config.assets_origin.as_str(), "http://127.0.0.1:7601");
    }

    #[test]
    fn production_requires_an_https_origin() {
        assert!(matches!(
            parse(&[]).validate(),
            Err(ConfigError::MissingOrigin)
        ));
        assert!(matches!(
            parse(&["--origin", "http://chat.example.org"]).validate(),
            Err(ConfigError::Origin(OriginError::Scheme))
        ));
    }

    #[test]
    fn nats_takes_a_list_of_servers_and_a_credentials_file_that_exists() {
        let config = parse(&[
            "--insecure-dev",
            "--nats-url",
            "nats://a.example:4222, nats://b.example:4222",
        ])
        .validate()
        .expect("two servers");
        assert_eq!(
            crate::bus::nats::server_addrs(config.nats_url.as_deref().unwrap_or_default())
                .expect("servers")
                .len(),
            2
        );
        let refused = |args: &[&str], says: &str| match parse(args).validate() {
            Err(ConfigError::Invalid(message)) => {
                assert!(message.contains(says), "{message:?} should say {says:?}")
            }
            other => panic!("{args:?} should be refused, got {:?}", other.map(|_| ())),
        };
        refused(
            &[
                "--insecure-dev",
                "--nats-url",
                "nats://a:4222,nats://b:port",
            ],
            "nats://b:port is not a NATS URL",
        );
        refused(
            &["--insecure-dev", "--nats-credentials", "/etc/hostname"],
            "--nats-credentials needs --nats-url",
        );
        refused(
            &[
                "--insecure-dev",
                "--nats-url",
                "nats://a:4222",
                "--nats-credentials",
                "/nonexistent/user.creds",
            ],
            "cannot read --nats-credentials /nonexistent/user.creds",
        );
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let args = parse(&[
            "--insecure-dev",
            "--database-url",
            "postgres://u:hunter2@db/x",
        ]);
        let config = args.validate().expect("valid");
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}

/// Limits several services enforce and GetServerInfo reports; the same flags reach every
/// service of a deployment.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitsArgs {
    /// Maximum characters in a message.
    #[arg(long, env = "MZCHAT_MAX_MESSAGE_CHARS", default_value_t = 4000)]
    pub max_message_chars: u32,
    /// Maximum mentioned users in a message.
    #[arg(long, env = "MZCHAT_MAX_MESSAGE_MENTIONS", default_value_t = 50)]
    pub max_message_mentions: u32,
    /// Maximum attachments in a message.
    #[arg(long, env = "MZCHAT_MAX_MESSAGE_ATTACHMENTS", default_value_t = 10)]
    pub max_message_attachments: u32,
    /// Maximum size of an attachment, in bytes.
    #[arg(long, env = "MZCHAT_MAX_ATTACHMENT_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub max_attachment_bytes: u64,
    /// Maximum size of an avatar, in bytes.
    #[arg(long, env = "MZCHAT_MAX_AVATAR_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_avatar_bytes: u64,
    /// Maximum size of a guild icon, in bytes.
    #[arg(long, env = "MZCHAT_MAX_GUILD_ICON_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_guild_icon_bytes: u64,
    /// Upload chunk size clients should use, in bytes.
    #[arg(long, env = "MZCHAT_UPLOAD_CHUNK_BYTES", default_value_t = 5 * 1024 * 1024)]
    pub upload_chunk_bytes: u64,
    /// Largest upload chunk accepted, in bytes.
    #[arg(long, env = "MZCHAT_MAX_UPLOAD_CHUNK_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_upload_chunk_bytes: u64,
    /// Storage quota per user, in bytes.
    #[arg(long, env = "MZCHAT_USER_QUOTA_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub user_quota_bytes: u64,
}
