//! Composition of one mzchatd process: the bus, the services of the chosen mode on one gRPC
//! listener, the admin listener, and orderly shutdown.

use std::{sync::Arc, time::Duration};

use sea_orm::DatabaseConnection;

use anyhow::Context;
use mzchat_federation::FederationConfig;
use mzchat_guild::{GuildArgs, GuildConfig};
use mzchat_identity::{IdentityConfig, SetupError};
use mzchat_platform::{
    LimitsArgs, Secret, ServerConfig,
    bus::{Bus, streams},
    grpc::{GrpcServer, Health, InternalAuth},
    metrics::{self, Metrics},
    rate_limit::RateLimiter,
    shutdown, telemetry,
};
use mzchat_push::PushConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cli::{RunArgs, Service};

const READINESS_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    All,
    Identity,
    Guild,
    FederationSync,
    PushRelay,
    Media,
    Migrate,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::All => "all",
            Mode::Identity => "identity",
            Mode::Guild => "guild",
            Mode::FederationSync => "federation-sync",
            Mode::PushRelay => "push-relay",
            Mode::Media => "media",
            Mode::Migrate => "migrate",
        }
    }
}

pub struct Config {
    mode: Mode,
    server: ServerConfig,
    identity: IdentityConfig,
    guild: GuildArgs,
    limits: LimitsArgs,
    internal_token: Secret,
    guild_internal_url: Option<String>,
    federation_internal_url: Option<String>,
    identity_internal_url: Option<String>,
    media_internal_url: Option<String>,
    federation_concurrency: usize,
    federation_call_timeout: Duration,
    push: mzchat_push::PushSettings,
    media: mzchat_media::MediaSettings,
    /// `mzchatd migrate --service`: only these services' migrations (none named: all).
    migrating: Vec<Service>,
}

impl Config {
    pub fn validate(mode: Mode, args: RunArgs) -> Result<Self, String> {
        let mut server = args.server.validate().map_err(|e| e.to_string())?;
        // The one-process mode on embedded storage keeps its own schema current.
        if mode == Mode::All && server.database_url.is_none() {
            server.migrate = true;
        }
        let internal_token = match (&server.internal_token, mode) {
            (Some(token), _) => token.clone(),
            (None, Mode::All | Mode::Migrate) => Secret::new(random_token()?),
            (None, _) => {
                return Err(
                    "--internal-token is required when services run in separate processes".into(),
                );
            }
        };
        if mode == Mode::Identity && args.guild_internal_url.is_none() {
            return Err("--guild-internal-url is required for `mzchatd identity`".into());
        }
        if mode == Mode::PushRelay
            && (args.guild_internal_url.is_none() || args.federation_internal_url.is_none())
        {
            return Err(
                "--guild-internal-url and --federation-internal-url are required for `mzchatd push-relay`"
                    .into(),
            );
        }
        if matches!(mode, Mode::Guild | Mode::PushRelay | Mode::Media)
            && args.guild.identity_url.is_none()
        {
            return Err(format!(
                "--identity-url is required for `mzchatd {}`",
                mode.name()
            ));
        }
        if mode == Mode::Identity && args.federation_internal_url.is_none() {
            return Err("--federation-internal-url is required for `mzchatd identity`".into());
        }
        if mode == Mode::FederationSync && args.identity_internal_url.is_none() {
            return Err("--identity-internal-url is required for `mzchatd federation-sync`".into());
        }
        if args.federation_concurrency == 0 {
            return Err("--federation-concurrency must be at least 1".into());
        }
        // Job leases (30 s) must outlast any call.
        if !(1..=20).contains(&args.federation_call_timeout_secs) {
            return Err("--federation-call-timeout-secs must be between 1 and 20".into());
        }
        let identity = args
            .identity
            .validate(server.clone(), args.limits.clone())?;
        let media = args.media.validate(&server, &args.limits)?;
        Ok(Self {
            mode,
            server,
            identity,
            guild: args.guild,
            limits: args.limits,
            internal_token,
            guild_internal_url: args.guild_internal_url,
            federation_internal_url: args.federation_internal_url,
            identity_internal_url: args.identity_internal_url,
            media_internal_url: args.media_internal_url,
            federation_concurrency: args.federation_concurrency,
            federation_call_timeout: Duration::from_secs(args.federation_call_timeout_secs),
            push: args.push.validate()?,
            media,
            migrating: vec![],
        })
    }

    /// For `mzchatd migrate --service`: only these services' migrations.
    pub fn migrating_only(mut self, services: Vec<Service>) -> Self {
        self.migrating = services;
        self
    }
}

fn random_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| format!("random source: {e}"))?;
    Ok(hex::encode(bytes))
}

/// Applies the migrations of the services `mzchatd migrate` was given (all when none).
async fn migrate(config: &Config) -> anyhow::Result<()> {
    let wanted = |service| config.migrating.is_empty() || config.migrating.contains(&service);
    let server = &config.server;
    if wanted(Service::Identity) {
        mzchat_identity::migrate(server)
            .await
            .context("identity migrations")?;
    }
    if wanted(Service::Guild) {
        mzchat_guild::migrate(server)
            .await
            .context("guild migrations")?;
    }
    if wanted(Service::FederationSync) {
        mzchat_federation::migrate(server)
            .await
            .context("federation-sync migrations")?;
    }
    if wanted(Service::PushRelay) {
        mzchat_push::migrate(server)
            .await
            .context("push-relay migrations")?;
    }
    if wanted(Service::Media) {
        mzchat_media::migrate(server)
            .await
            .context("media migrations")?;
    }
    tracing::info!("migrations applied");
    Ok(())
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let _telemetry = telemetry::init(
        &format!("mzchatd-{}", config.mode.name()),
        config.server.log_format,
    )
    .context("telemetry")?;
    if config.mode == Mode::Migrate {
        return migrate(&config).await;
    }
    let shutdown = CancellationToken::new();
    shutdown::cancel_on_signal(shutdown.clone());
    let metrics = Metrics::new();
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let listen_addr = listener.local_addr().context("listener address")?;
    let admin = metrics::bind(config.server.admin_listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.admin_listen))?;
    tracing::info!(
        mode = config.mode.name(),
        listen = %listen_addr,
        admin = %admin.local_addr().context("admin address")?,
        origin = %config.server.origin,
        "mzchatd starting"
    );
    let admin_task = tokio::spawn(metrics::serve_admin(
        admin,
        metrics.clone(),
        shutdown.clone(),
    ));

    let bus = mzchat_platform::connect_bus(&config.server)
        .await
        .context("bus")?;
    ensure_streams(bus.as_ref(), &shutdown).await;
    let rate = Arc::new(
        RateLimiter::connect(&config.server)
            .await
            .context("rate limiter")?,
    );
    let internal = InternalAuth::new(config.internal_token.clone());
    let mut grpc = GrpcServer::new();
    let mut tasks = Vec::new();
    let mut databases = Vec::new();
    let mut stores = Vec::new();
    let runs = |m: Mode| config.mode == Mode::All || config.mode == m;
    let this_process = format!("http://{listen_addr}");

    // Where identity (avatars) and guild (attachments, icons) check files.
    let media_internal_url = config
        .media_internal_url
        .clone()
        .or_else(|| (config.mode == Mode::All).then(|| this_process.clone()));
    if runs(Mode::Identity) {
        let guild_url = config
            .guild_internal_url
            .clone()
            .unwrap_or_else(|| format!("http://{listen_addr}"));
        let identity = mzchat_identity::build(
            config.identity.clone(),
            mzchat_identity::Deps {
                bus: bus.clone(),
                internal: internal.clone(),
                guild_internal_url: guild_url,
                federation_internal_url: config
                    .federation_internal_url
                    .clone()
                    .unwrap_or_else(|| this_process.clone()),
                media_internal_url: media_internal_url.clone(),
                rate: rate.clone(),
            },
        )
        .await
        .map_err(|e: SetupError| anyhow::anyhow!(e))
        .context("identity service")?;
        identity.mount(&mut grpc);
        databases.push(identity.database().clone());
        tasks.extend(identity.spawn(shutdown.clone()));
    }
    if runs(Mode::Guild) {
        let guild = mzchat_guild::build(
            GuildConfig {
                server: config.server.clone(),
                limits: config.limits.clone(),
                identity_url: config
                    .guild
                    .identity_url
                    .clone()
                    .unwrap_or_else(|| format!("http://{listen_addr}")),
                media_internal_url: media_internal_url.clone(),
                presence_grace: Duration::from_secs(15),
            },
            mzchat_guild::Deps {
                bus: bus.clone(),
                internal: internal.clone(),
                rate: rate.clone(),
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!(e))
        .context("guild service")?;
        guild.mount(&mut grpc);
        guild.register_metrics(&metrics);
        databases.push(guild.database().clone());
        tasks.extend(guild.spawn(shutdown.clone()));
    }
    if runs(Mode::FederationSync) {
        let federation = mzchat_federation::build(
            FederationConfig {
                server: config.server.clone(),
                identity_internal_url: config
                    .identity_internal_url
                    .clone()
                    .unwrap_or_else(|| this_process.clone()),
                concurrency: config.federation_concurrency,
                call_timeout: config.federation_call_timeout,
            },
            mzchat_federation::Deps {
                bus: bus.clone(),
                internal: internal.clone(),
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!(e))
        .context("federation-sync service")?;
        federation.mount(&mut grpc);
        federation.register_metrics(&metrics);
        databases.push(federation.database().clone());
        tasks.extend(federation.spawn(shutdown.clone()));
    }
    if runs(Mode::PushRelay) {
        let push = mzchat_push::build(
            PushConfig {
                server: config.server.clone(),
                identity_url: config
                    .guild
                    .identity_url
                    .clone()
                    .unwrap_or_else(|| this_process.clone()),
                settings: config.push.clone(),
                guild_internal_url: config
                    .guild_internal_url
                    .clone()
                    .unwrap_or_else(|| this_process.clone()),
                federation_internal_url: config
                    .federation_internal_url
                    .clone()
                    .unwrap_or_else(|| this_process.clone()),
            },
            bus.clone(),
            internal.clone(),
            rate.clone(),
        )
        .await
        .map_err(|e| anyhow::anyhow!(e))
        .context("push-relay service")?;
        push.mount(&mut grpc);
        push.register_metrics(&metrics);
        databases.push(push.database().clone());
        tasks.extend(push.spawn(shutdown.clone()));
    }
    if runs(Mode::Media) {
        let assets = TcpListener::bind(config.server.assets_listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.server.assets_listen))?;
        let media = mzchat_media::build(mzchat_media::MediaConfig {
            server: config.server.clone(),
            limits: config.limits.clone(),
            identity_url: config
                .guild
                .identity_url
                .clone()
                .unwrap_or_else(|| this_process.clone()),
            settings: config.media.clone(),
        })
        .await
        .map_err(|e| anyhow::anyhow!(e))
        .context("media service")?;
        media.mount(&mut grpc, &internal, rate.clone());
        media.register_metrics(&metrics);
        databases.push(media.database().clone());
        stores.push(media.store_probe());
        tasks.extend(media.spawn(assets, shutdown.clone()));
    }

    metrics.set_ready(true);
    tasks.push(tokio::spawn(watch_readiness(
        grpc.health(),
        metrics.clone(),
        bus.clone(),
        databases,
        stores,
        shutdown.clone(),
    )));
    tracing::info!("ready");
    grpc.serve(
        listener,
        metrics.clone(),
        shutdown.clone(),
        config.server.shutdown_grace,
    )
    .await
    .context("grpc server")?;
    metrics.set_ready(false);
    shutdown.cancel();
    let drain = async {
        for task in tasks {
            let _ = task.await;
        }
        let _ = admin_task.await;
    };
    if tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .is_err()
    {
        tracing::warn!("background tasks did not stop in time");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Keeps health and `/readyz` true to whether the databases, the bus and the object store
/// answer, so a load balancer stops sending work to a process that cannot do it.
async fn watch_readiness(
    health: Health,
    metrics: Arc<Metrics>,
    bus: Arc<dyn Bus>,
    databases: Vec<DatabaseConnection>,
    stores: Vec<mzchat_media::StoreProbe>,
    shutdown: CancellationToken,
) {
    let mut ready = true;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(READINESS_INTERVAL) => {}
        }
        let mut problem = bus.check().await.err().map(|e| e.to_string());
        for db in &databases {
            if problem.is_none()
                && let Err(err) = db.ping().await
            {
                problem = Some(format!("database: {err}"));
            }
        }
        for store in &stores {
            if problem.is_none()
                && let Err(err) = store.check().await
            {
                problem = Some(format!("object store: {err}"));
            }
        }
        let now_ready = problem.is_none();
        if now_ready != ready {
            match &problem {
                Some(reason) => tracing::warn!(%reason, "not ready"),
                None => tracing::info!("ready again"),
            }
            health.set(now_ready).await;
            metrics.set_ready(now_ready);
            ready = now_ready;
        }
    }
}

/// Declares every stream, waiting for the bus if it is not up yet.
async fn ensure_streams(bus: &dyn Bus, shutdown: &CancellationToken) {
    let mut backoff = Duration::from_millis(200);
    for spec in streams::all() {
        loop {
            match bus.ensure_stream(&spec).await {
                Ok(()) => break,
                Err(err) => {
                    tracing::warn!(stream = spec.name, error = %err, "bus not ready; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}
