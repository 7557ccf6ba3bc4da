//! Runs the real identity service in-process on a loopback port, over either embedded storage
//! (SQLite + in-process bus) or PostgreSQL + NATS JetStream, each test in its own schema and
//! stream prefix.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use mzchat_client::{Client, KeyStore, LocalIdentity};
use mzchat_identity::{Deps, Identity, IdentityConfig, RegistrationPolicy};
use mzchat_platform::{
    LimitsArgs, Origin, Secret, ServerConfig,
    bus::{Bus, LocalBus, NatsBus, streams},
    config::LogFormat,
    grpc::{GrpcServer, InternalAuth},
    metrics::Metrics,
    rate_limit::RateLimiter,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file + in-process bus, as `make run` uses.
    Embedded,
    /// PostgreSQL schema + NATS JetStream, as production uses.
    PostgresNats,
}

pub fn database_url() -> String {
    std::env::var("MZCHAT_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn nats_url() -> String {
    std::env::var("MZCHAT_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())[..prefix.len() + 12].to_owned()
}

/// Storage and bus one or more replicas share.
#[derive(Clone)]
pub struct Shared {
    pub backend: Backend,
    pub data_dir: PathBuf,
    pub schema_prefix: String,
    pub bus_prefix: String,
    pub bus: Arc<dyn Bus>,
    pub nats_url: String,
}

impl Shared {
    pub async fn new(backend: Backend) -> Self {
        Self::with_nats(backend, &nats_url()).await
    }

    pub async fn with_nats(backend: Backend, nats: &str) -> Self {
        let bus_prefix = unique("t");
        let bus: Arc<dyn Bus> = match backend {
            Backend::Embedded => Arc::new(LocalBus::new()),
            Backend::PostgresNats => Arc::new(
                NatsBus::connect(nats, &bus_prefix, 1)
                    .await
                    .unwrap_or_else(|e| panic!("NATS at {nats} is needed (make services-up): {e}")),
            ),
        };
        for spec in streams::all() {
            tokio::time::timeout(Duration::from_secs(10), bus.ensure_stream(&spec))
                .await
                .unwrap_or_else(|_| panic!("NATS at {nats} did not answer (make services-up)"))
                .expect("create stream");
        }
        let data_dir = std::env::temp_dir().join(unique("mzchat-it-"));
        Self {
            backend,
            data_dir,
            schema_prefix: format!("{}_", unique("t")),
            bus_prefix,
            bus,
            nats_url: nats.to_owned(),
        }
    }

    /// Drops the test's schema and streams.
    pub async fn cleanup(&self) {
        match self.backend {
            Backend::Embedded => {
                std::fs::remove_dir_all(&self.data_dir).ok();
            }
            Backend::PostgresNats => {
                use sea_orm::ConnectionTrait;
                if let Ok(db) = sea_orm::Database::connect(database_url()).await {
                    let _ = db
                        .execute_unprepared(&format!(
                            "DROP SCHEMA IF EXISTS \"{}identity\" CASCADE",
                            self.schema_prefix
                        ))
                        .await;
                }
                if let Ok(client) = async_nats::connect(&self.nats_url).await {
                    let js = async_nats::jetstream::new(client);
                    for spec in streams::all() {
                        let name = format!("{}_{}", self.bus_prefix, spec.name)
                            .to_ascii_uppercase()
                            .replace('-', "_");
                        let _ = js.delete_stream(name).await;
                    }
                }
            }
        }
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub origin: String,
    pub identity: Identity,
    pub shared: Shared,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

pub fn config(
    shared: &Shared,
    origin: &str,
    tweak: impl FnOnce(&mut IdentityConfig),
) -> IdentityConfig {
    let origin = Origin::parse(origin, true).expect("origin");
    let server = ServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        assets_listen: "127.0.0.1:0".parse().expect("addr"),
        admin_listen: "127.0.0.1:0".parse().expect("addr"),
        assets_origin: Origin::parse("http://127.0.0.1:7601", true).expect("origin"),
        origin,
        insecure_dev: true,
        data_dir: shared.data_dir.clone(),
        database_url: (shared.backend == Backend::PostgresNats)
            .then(|| Secret::new(database_url())),
        database_schema_prefix: shared.schema_prefix.clone(),
        database_max_connections: 5,
        nats_url: None,
        nats_credentials: None,
        bus_prefix: shared.bus_prefix.clone(),
        stream_replicas: 1,
        internal_token: None,
        migrate: true,
        shutdown_grace: Duration::from_secs(1),
        log_format: LogFormat::Text,
        federation: Default::default(),
        rate_limits: mzchat_platform::rate_limit::RateLimits::off(),
        forwarded_for_hops: 0,
    };
    let mut config = IdentityConfig {
        server,
        limits: limits(),
        registration: RegistrationPolicy::Open,
        registration_tokens: vec![],
        access_token_ttl: Duration::from_secs(3600),
        refresh_token_ttl: Duration::from_secs(30 * 86_400),
        key_rotation: Duration::from_secs(90 * 86_400),
    };
    tweak(&mut config);
    config
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

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(Shared::new(backend).await, |_| {}).await
    }

    /// Starts a server (or another replica) on `shared` storage and bus.
    pub async fn start_with(shared: Shared, tweak: impl FnOnce(&mut IdentityConfig)) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let origin = format!("http://{addr}");
        Self::start_on(shared, listener, &origin, tweak).await
    }

    /// Starts a replica answering for `origin` (which may be another replica's).
    pub async fn start_on(
        shared: Shared,
        listener: tokio::net::TcpListener,
        origin: &str,
        tweak: impl FnOnce(&mut IdentityConfig),
    ) -> Self {
        let addr = listener.local_addr().expect("addr");
        let config = config(&shared, origin, tweak);
        let internal = InternalAuth::new(Secret::new("internal-test-token"));
        let rate = Arc::new(RateLimiter::local(config.server.rate_limits.clone()));
        let identity = mzchat_identity::build(
            config,
            Deps {
                bus: shared.bus.clone(),
                internal,
                // Nothing serves guild memberships here: tokens carry no guilds.
                guild_internal_url: format!("http://{addr}"),
                // Nothing serves federation-sync here: inbound server calls cannot be verified.
                federation_internal_url: format!("http://{addr}"),
                media_internal_url: None,
                rate,
            },
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "identity failed to start ({:?} backend): {e}",
                shared.backend
            )
        });
        let shutdown = CancellationToken::new();
        let mut server = GrpcServer::new();
        identity.mount(&mut server);
        let mut tasks = identity.spawn(shutdown.clone());
        let token = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            let _ = server
                .serve(listener, Metrics::new(), token, Duration::from_secs(1))
                .await;
        }));
        Self {
            addr,
            origin: origin.to_owned(),
            identity,
            shared,
            shutdown,
            tasks,
        }
    }

    /// A client whose identity is homed on `home` (this server if None).
    pub fn client(&self, home: Option<&str>) -> Client {
        let dir = std::env::temp_dir().join(unique("mzchat-client-"));
        let store = KeyStore::new(&dir);
        let identity =
            LocalIdentity::generate(home.unwrap_or(&self.origin), "laptop").expect("keys");
        store.save_identity(&identity).expect("save keys");
        Client::open(store).expect("open client")
    }

    /// Stops this replica (storage and bus stay for others).
    pub async fn stop(self) -> Shared {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        self.shared
    }

    /// Stops and removes everything the test created.
    pub async fn finish(self) {
        let shared = self.stop().await;
        shared.cleanup().await;
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
