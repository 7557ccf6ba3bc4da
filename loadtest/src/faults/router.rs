//! The public origin of a homeserver whose services run as separate processes: one gRPC
//! listener that sends each call to a process of the service owning its gRPC service (the
//! routing table of the operator's Gateway routes), plus an internal listener that also routes
//! the `*InternalService`s and FederationAdminService (what Kubernetes Services give the
//! processes). Calls go round-robin to the processes whose `/readyz` answers 200, checked
//! every half second; when none is ready, to those that accept connections, and when none
//! does, to all (like Envoy's panic threshold). A call is never retried here: clients retry.

use std::{
    convert::Infallible,
    marker::PhantomData,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use futures::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::{
    body::Body,
    codegen::{Service, http},
    server::NamedService,
    service::Routes,
    transport::{Channel, Endpoint, Server},
};

const CHECK_EVERY: Duration = Duration::from_millis(500);

/// One process of a service: its gRPC address and its admin address (`/readyz`).
struct Backend {
    grpc: String,
    admin: String,
    channel: Channel,
    ready: AtomicBool,
    live: AtomicBool,
}

/// The processes of one service.
#[derive(Clone)]
struct Pool {
    backends: Arc<Vec<Backend>>,
    next: Arc<AtomicUsize>,
}

impl Pool {
    fn new(addresses: &[(String, String)]) -> anyhow::Result<Self> {
        let backends = addresses
            .iter()
            .map(|(grpc, admin)| {
                let channel = Endpoint::from_shared(format!("http://{grpc}"))?
                    .connect_timeout(Duration::from_secs(2))
                    .tcp_nodelay(true)
                    .connect_lazy();
                anyhow::Ok(Backend {
                    grpc: grpc.clone(),
                    admin: admin.clone(),
                    channel,
                    ready: AtomicBool::new(true),
                    live: AtomicBool::new(true),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            backends: Arc::new(backends),
            next: Arc::default(),
        })
    }

    fn pick(&self) -> Channel {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let all: Vec<&Backend> = self.backends.iter().collect();
        let ready: Vec<&Backend> = all
            .iter()
            .copied()
            .filter(|b| b.ready.load(Ordering::Relaxed))
            .collect();
        let live: Vec<&Backend> = all
            .iter()
            .copied()
            .filter(|b| b.live.load(Ordering::Relaxed))
            .collect();
        let set = [ready, live, all]
            .into_iter()
            .find(|set| !set.is_empty())
            .unwrap_or_default();
        set[n % set.len()].channel.clone()
    }

    fn watch(&self) {
        for index in 0..self.backends.len() {
            let backends = self.backends.clone();
            tokio::spawn(async move {
                let backend = &backends[index];
                loop {
                    let (live, ready) = probe(&backend.grpc, &backend.admin).await;
                    let was = backend.ready.swap(ready, Ordering::Relaxed);
                    backend.live.store(live, Ordering::Relaxed);
                    if was != ready {
                        eprintln!(
                            "router: {} is {}",
                            backend.grpc,
                            if ready { "ready" } else { "not ready" }
                        );
                    }
                    tokio::time::sleep(CHECK_EVERY).await;
                }
            });
        }
    }
}

/// (accepts connections, `/readyz` answers 200).
async fn probe(grpc: &str, admin: &str) -> (bool, bool) {
    let limit = Duration::from_secs(1);
    let live = matches!(
        tokio::time::timeout(limit, tokio::net::TcpStream::connect(grpc)).await,
        Ok(Ok(_))
    );
    let ready = async {
        let mut stream = tokio::net::TcpStream::connect(admin).await.ok()?;
        let request = format!("GET /readyz HTTP/1.0\r\nHost: {admin}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        Some(head.ends_with(b"200"))
    };
    let ready = matches!(tokio::time::timeout(limit, ready).await, Ok(Some(true)));
    (live, live && ready)
}

trait Name: Send + Sync + 'static {
    const NAME: &'static str;
}

/// Forwards every call of gRPC service `N` to a process of its pool.
struct Route<N> {
    pool: Pool,
    name: PhantomData<N>,
}

impl<N> Clone for Route<N> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            name: PhantomData,
        }
    }
}

impl<N: Name> NamedService for Route<N> {
    const NAME: &'static str = N::NAME;
}

impl<N: Name> Service<http::Request<Body>> for Route<N> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let mut channel = self.pool.pick();
        Box::pin(async move {
            let answer = async {
                futures::future::poll_fn(|cx| channel.poll_ready(cx)).await?;
                channel.call(request).await
            };
            Ok(answer.await.unwrap_or_else(|err| {
                tonic::Status::unavailable(format!("router: {err}")).into_http()
            }))
        })
    }
}

/// The gRPC services each mzchatd service answers: (service, name, public).
macro_rules! table {
    ($( $marker:ident = $service:literal, $name:literal, $public:literal; )*) => {
        $(
            struct $marker;
            impl Name for $marker {
                const NAME: &'static str = $name;
            }
        )*

        /// Routes for the gRPC services of the pools given (internal ones unless `public`).
        fn routes(pools: &[(String, Pool)], public: bool) -> Routes {
            let mut routes = Routes::builder();
            let pool = |service: &str| pools.iter().find(|(s, _)| s == service).map(|(_, p)| p);
            $(
                if (!public || $public) && let Some(pool) = pool($service) {
                    routes.add_service(Route::<$marker> { pool: pool.clone(), name: PhantomData });
                }
            )*
            routes.routes()
        }
    };
}

table! {
    IdentityService = "identity", "mzchat.identity.v1.IdentityService", true;
    SessionService = "identity", "mzchat.identity.v1.SessionService", true;
    ServerInfoService = "identity", "mzchat.identity.v1.ServerInfoService", true;
    IdentityFederation = "identity", "mzchat.federation.v1.IdentityFederationService", true;
    SessionInternal = "identity", "mzchat.identity.v1.SessionInternalService", false;
    ServerKeyInternal = "identity", "mzchat.identity.v1.ServerKeyInternalService", false;
    GuildService = "guild", "mzchat.guild.v1.GuildService", true;
    MessageService = "guild", "mzchat.guild.v1.MessageService", true;
    EventService = "guild", "mzchat.guild.v1.EventService", true;
    GuildInternal = "guild", "mzchat.guild.v1.GuildInternalService", false;
    FederationInternal = "federation-sync", "mzchat.federation.v1.FederationInternalService", false;
    FederationAdmin = "federation-sync", "mzchat.federation.v1.FederationAdminService", false;
    PushService = "push-relay", "mzchat.push.v1.PushService", true;
    PushFederation = "push-relay", "mzchat.federation.v1.PushFederationService", true;
    MediaService = "media", "mzchat.media.v1.MediaService", true;
    MediaInternal = "media", "mzchat.media.v1.MediaInternalService", false;
}

/// `SERVICE=GRPC_ADDR/ADMIN_ADDR`, e.g. `guild=127.0.0.1:7000/127.0.0.1:9000`.
fn parse_backend(text: &str) -> anyhow::Result<(String, String, String)> {
    let (service, rest) = text.split_once('=').context("SERVICE=GRPC/ADMIN")?;
    let (grpc, admin) = rest.split_once('/').context("SERVICE=GRPC/ADMIN")?;
    Ok((service.to_owned(), grpc.to_owned(), admin.to_owned()))
}

pub async fn run(
    listen: SocketAddr,
    internal_listen: SocketAddr,
    backends: &[String],
) -> anyhow::Result<()> {
    let mut by_service: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for text in backends {
        let (service, grpc, admin) = parse_backend(text)?;
        match by_service.iter_mut().find(|(s, _)| *s == service) {
            Some((_, list)) => list.push((grpc, admin)),
            None => by_service.push((service, vec![(grpc, admin)])),
        }
    }
    let pools = by_service
        .iter()
        .map(|(service, list)| anyhow::Ok((service.clone(), Pool::new(list)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for (_, pool) in &pools {
        pool.watch();
    }
    let serve = |addr: SocketAddr, public: bool| {
        let routes = routes(&pools, public);
        async move {
            Server::builder()
                .tcp_nodelay(true)
                .add_routes(routes)
                .serve(addr)
                .await
                .with_context(|| format!("router on {addr}"))
        }
    };
    eprintln!("router: public {listen}, internal {internal_listen}");
    tokio::try_join!(serve(listen, true), serve(internal_listen, false))?;
    Ok(())
}
