//! A homeserver with the real identity and guild services in-process on one loopback listener,
//! over either embedded storage (SQLite + in-process bus) or PostgreSQL + NATS, each test in its
//! own schemas and stream prefix.

use std::{sync::Arc, time::Duration};

use mzchat_client::{Client, KeyStore, LocalIdentity};
use mzchat_guild::GuildConfig;
use mzchat_identity::{IdentityConfig, RegistrationPolicy};
use mzchat_platform::{
    LimitsArgs, Origin, Secret, ServerConfig,
    bus::{Bus, LocalBus, NatsBus, streams},
    config::LogFormat,
    grpc::{GrpcServer, InternalAuth},
    metrics::Metrics,
    rate_limit::{RateLimiter, RateLimits},
};
use mzchat_proto::guild::guild_service_client::GuildServiceClient;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    PostgresNats,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.into())
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

pub struct Homeserver {
    pub origin: String,
    pub bus: Arc<dyn Bus>,
    backend: Backend,
    schema_prefix: String,
    bus_prefix: String,
    data_dir: std::path::PathBuf,
    server: ServerConfig,
    node: Node,
    /// The embedded backend's one limiter: its nodes stand for one process.
    rate: Arc<RateLimiter>,
}

/// One process's worth of identity and guild on one listener.
pub struct Node {
    pub addr: std::net::SocketAddr,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Node {
    pub async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

fn limits() -> LimitsArgs {
    use clap::Parser;
    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        limits: LimitsArgs,
    }
    Args::parse_from(["test"]).limits
}

/// A process's limiter: in memory on the embedded backend, shared through NATS on the other.
async fn limiter(backend: Backend, server: &ServerConfig) -> Arc<RateLimiter> {
    if backend == Backend::Embedded {
        return Arc::new(RateLimiter::local(server.rate_limits.clone()));
    }
    let with_nats = ServerConfig {
        nats_url: Some(env_or("MZCHAT_TEST_NATS_URL", "nats://127.0.0.1:4222")),
        ..server.clone()
    };
    Arc::new(RateLimiter::connect(&with_nats).await.expect("limiter"))
}

/// Starts identity and guild for `server` (its origin may be another node's) on `listener`.
async fn start_node(
    server: &ServerConfig,
    bus: Arc<dyn Bus>,
    rate: Arc<RateLimiter>,
    listener: tokio::net::TcpListener,
) -> Node {
    let addr = listener.local_addr().expect("addr");
    let own = format!("http://{addr}");
    let internal = InternalAuth::new(Secret::new("internal-test-token"));
    let identity = mzchat_identity::build(
        IdentityConfig {
            server: server.clone(),
            limits: limits(),
            registration: RegistrationPolicy::Open,
            registration_tokens: vec![],
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(86_400),
            key_rotation: Duration::from_secs(90 * 86_400),
        },
        mzchat_identity::Deps {
            bus: bus.clone(),
            internal: internal.clone(),
            guild_internal_url: own.clone(),
            federation_internal_url: own.clone(),
            media_internal_url: None,
            rate: rate.clone(),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("identity failed to start: {e}"));
    let guild = mzchat_guild::build(
        GuildConfig {
            server: server.clone(),
            limits: limits(),
            identity_url: own,
            media_internal_url: None,
            presence_grace: Duration::from_millis(500),
        },
        mzchat_guild::Deps {
            bus,
            internal,
            rate,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("guild failed to start: {e}"));
    let shutdown = CancellationToken::new();
    let mut grpc = GrpcServer::new();
    identity.mount(&mut grpc);
    guild.mount(&mut grpc);
    let mut tasks = identity.spawn(shutdown.clone());
    tasks.extend(guild.spawn(shutdown.clone()));
    let token = shutdown.clone();
    tasks.push(tokio::spawn(async move {
        let _ = grpc
            .serve(listener, Metrics::new(), token, Duration::from_secs(1))
            .await;
    }));
    Node {
        addr,
        shutdown,
        tasks,
    }
}

impl Homeserver {
    pub async fn start(backend: Backend) -> Self {
        Self::start_limited(backend, &["all=off"]).await
    }

    /// A homeserver with these `--rate-limit` settings.
    pub async fn start_limited(backend: Backend, rate_limits: &[&str]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let origin = format!("http://{addr}");
        let (schema_prefix, bus_prefix) = (format!("{}_", unique("g")), unique("g"));
        let data_dir = std::env::temp_dir().join(unique("mzchat-guild-it-"));
        let nats_url = env_or("MZCHAT_TEST_NATS_URL", "nats://127.0.0.1:4222");
        let bus: Arc<dyn Bus> = match backend {
            Backend::Embedded => Arc::new(LocalBus::new()),
            Backend::PostgresNats => Arc::new(
                NatsBus::connect(&nats_url, &bus_prefix, 1)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("NATS at {nats_url} is needed (make services-up): {e}")
                    }),
            ),
        };
        for spec in streams::all() {
            tokio::time::timeout(Duration::from_secs(10), bus.ensure_stream(&spec))
                .await
                .expect("NATS answers (make services-up)")
                .expect("stream");
        }
        let server = ServerConfig {
            listen: addr,
            assets_listen: "127.0.0.1:0".parse().expect("addr"),
            admin_listen: "127.0.0.1:0".parse().expect("addr"),
            origin: Origin::parse(&origin, true).expect("origin"),
            assets_origin: Origin::parse("http://127.0.0.1:7601", true).expect("origin"),
            insecure_dev: true,
            data_dir: data_dir.clone(),
            database_url: (backend == Backend::PostgresNats).then(|| {
                Secret::new(env_or(
                    "MZCHAT_TEST_DATABASE_URL",
                    "postgres://postgres@127.0.0.1:5432/postgres",
                ))
            }),
            database_schema_prefix: schema_prefix.clone(),
            database_max_connections: 5,
            nats_url: None,
            nats_credentials: None,
            bus_prefix: bus_prefix.clone(),
            stream_replicas: 1,
            internal_token: None,
            migrate: true,
            shutdown_grace: Duration::from_secs(1),
            log_format: LogFormat::Text,
            federation: Default::default(),
            rate_limits: RateLimits::from_settings(rate_limits).expect("rate limits"),
            forwarded_for_hops: 0,
        };
        let rate = limiter(backend, &server).await;
        let node = start_node(&server, bus.clone(), rate.clone(), listener).await;
        Self {
            origin,
            bus,
            backend,
            schema_prefix,
            bus_prefix,
            data_dir,
            server,
            node,
            rate,
        }
    }

    /// The limiter of a new node: on PostgreSQL + NATS each replica has its own, sharing
    /// buckets through NATS as separate processes do.
    async fn node_limiter(&self) -> Arc<RateLimiter> {
        match self.backend {
            Backend::Embedded => self.rate.clone(),
            Backend::PostgresNats => limiter(self.backend, &self.server).await,
        }
    }

    /// Another replica of this homeserver: same origin, storage and bus, its own listener.
    pub async fn replica(&self) -> Node {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let rate = self.node_limiter().await;
        start_node(&self.server, self.bus.clone(), rate, listener).await
    }

    /// A user homed here, logged in.
    pub async fn user(&self) -> User {
        let store = KeyStore::new(self.data_dir.join(unique("client-")));
        let identity = LocalIdentity::generate(&self.origin, "laptop").expect("keys");
        store.save_identity(&identity).expect("save");
        let client = Client::open(store).expect("client");
        client.login(&self.origin, None, "").await.expect("login");
        User {
            origin: self.origin.clone(),
            client,
        }
    }

    pub async fn finish(self) {
        self.node.stop().await;
        if self.backend == Backend::PostgresNats {
            use sea_orm::ConnectionTrait;
            let url = env_or(
                "MZCHAT_TEST_DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/postgres",
            );
            if let Ok(db) = sea_orm::Database::connect(url).await {
                for service in ["identity", "guild"] {
                    let _ = db
                        .execute_unprepared(&format!(
                            "DROP SCHEMA IF EXISTS \"{}{service}\" CASCADE",
                            self.schema_prefix
                        ))
                        .await;
                }
            }
            if let Ok(client) =
                async_nats::connect(env_or("MZCHAT_TEST_NATS_URL", "nats://127.0.0.1:4222")).await
            {
                let js = async_nats::jetstream::new(client);
                for spec in streams::all() {
                    let name = format!("{}_{}", self.bus_prefix, spec.name)
                        .to_ascii_uppercase()
                        .replace('-', "_");
                    let _ = js.delete_stream(name).await;
                }
                let _ = js
                    .delete_key_value(format!("{}-rate-limits", self.bus_prefix))
                    .await;
            }
        }
        std::fs::remove_dir_all(&self.data_dir).ok();
    }
}

pub struct User {
    pub origin: String,
    pub client: Client,
}

impl User {
    pub fn id(&self) -> String {
        self.client.identity().user_id()
    }

    pub fn guilds(&self) -> GuildServiceClient<Channel> {
        GuildServiceClient::new(self.client.channel(&self.origin).expect("channel"))
    }

    /// `message` with this user's current access token.
    pub async fn req<T>(&self, message: T) -> tonic::Request<T> {
        self.client
            .authed(&self.origin, message)
            .await
            .expect("token")
    }

    /// Fetches a token with current guild claims.
    pub async fn refresh(&self) {
        self.client.refresh(&self.origin).await.expect("refresh");
    }
}

/// Declares a scenario `async fn name(backend: Backend)` as two tests, one per backend.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn embedded() {
                    super::$name($crate::harness::Backend::Embedded).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres_nats() {
                    super::$name($crate::harness::Backend::PostgresNats).await
                }
            }
        )*
    };
}

impl User {
    /// Uses the token a call returned (CreateGuild, JoinInvite) from now on.
    pub fn adopt(&self, token: &str, expires_at: Option<prost_types::Timestamp>) {
        self.client
            .adopt_access_token(&self.origin, token, expires_at.map_or(0, |t| t.seconds))
            .expect("adopt token");
    }
}

impl User {
    pub fn messages(
        &self,
    ) -> mzchat_proto::guild::message_service_client::MessageServiceClient<Channel> {
        mzchat_proto::guild::message_service_client::MessageServiceClient::new(
            self.client.channel(&self.origin).expect("channel"),
        )
    }
}
