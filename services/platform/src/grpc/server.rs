use std::{collections::HashSet, convert::Infallible, sync::Arc, time::Duration};

use prost::Message;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::{
    body::Body,
    server::NamedService,
    service::{Routes, RoutesBuilder},
    transport::Server,
};
use tonic_health::{ServingStatus, server::HealthReporter};

use super::RpcObserveLayer;
use crate::metrics::Metrics;

/// HTTP/2 streams one connection may have open (live event streams included).
const MAX_STREAMS_PER_CONNECTION: u32 = 512;
/// Calls of one connection in their handlers at once; more wait.
const MAX_CALLS_PER_CONNECTION: usize = 256;

/// Largest request message of the public services (a message with its mentions and
/// attachments, a guild order of hundreds of guilds); media uploads and internal calls set
/// their own.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// Collects the services of a process and serves them on one listener.
pub struct GrpcServer {
    routes: RoutesBuilder,
    health: HealthReporter,
    names: Vec<&'static str>,
    known_paths: HashSet<String>,
}

impl Default for GrpcServer {
    fn default() -> Self {
        Self::new()
    }
}

impl GrpcServer {
    pub fn new() -> Self {
        let (health, health_service) = tonic_health::server::health_reporter();
        let mut routes = RoutesBuilder::default();
        routes.add_service(health_service);
        let mut known_paths = HashSet::new();
        for descriptors in [
            mzchat_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ] {
            known_paths.extend(rpc_paths(descriptors));
        }
        Self {
            routes,
            health,
            names: Vec::new(),
            known_paths,
        }
    }

    /// Mounts a tonic service; it reports SERVING on the health service once serving starts.
    pub fn add_service<S>(&mut self, service: S) -> &mut Self
    where
        S: tower::Service<http::Request<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// A handle to flip every mounted service's health (readiness probes use it).
    pub fn health(&self) -> Health {
        Health {
            reporter: self.health.clone(),
            names: self.names.clone(),
        }
    }

    /// Serves until `shutdown`: then health turns NOT_SERVING, the listener stops accepting, and
    /// in-flight calls get up to `grace` to finish before they are cut.
    pub async fn serve(
        mut self,
        listener: TcpListener,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
        grace: Duration,
    ) -> Result<(), tonic::transport::Error> {
        // Both reflection versions: older tools (grpcurl 1.8) only speak v1alpha.
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(mzchat_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        match (reflection().build_v1(), reflection().build_v1alpha()) {
            (Ok(v1), Ok(v1alpha)) => {
                self.routes.add_service(v1);
                self.routes.add_service(v1alpha);
            }
            (Err(err), _) | (_, Err(err)) => {
                tracing::error!(error = %err, "grpc reflection unavailable")
            }
        }
        self.health
            .set_service_status("", ServingStatus::Serving)
            .await;
        for name in &self.names {
            self.health
                .set_service_status(*name, ServingStatus::Serving)
                .await;
        }
        let routes: Routes = self.routes.routes();
        let health = self.health.clone();
        let names = self.names.clone();
        let signal = shutdown.clone();
        let stop_accepting = async move {
            signal.cancelled().await;
            health
                .set_service_status("", ServingStatus::NotServing)
                .await;
            for name in names {
                health
                    .set_service_status(name, ServingStatus::NotServing)
                    .await;
            }
        };
        let serve = Server::builder()
            .accept_http1(true)
            // Access tokens of users in many guilds are large (session_token::MAX_TOKEN_BYTES).
            .http2_max_header_list_size(32 * 1024)
            // Bounds on what one connection may hold: streams open at once, calls in handlers
            // at once (more wait their turn), and the streams it may make this side reset
            // (hyper's guard against rapid-reset floods, which tonic otherwise lifts).
            .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
            .concurrency_limit_per_connection(MAX_CALLS_PER_CONNECTION)
            .http2_max_local_error_reset_streams(Some(1024))
            // Connections of vanished peers are closed instead of holding their streams.
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .layer(tonic_web::GrpcWebLayer::new())
            .layer(RpcObserveLayer::new(metrics, Arc::new(self.known_paths)))
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming(listener), stop_accepting);
        let deadline = async {
            shutdown.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            result = serve => result,
            () = deadline => {
                tracing::warn!(grace_secs = grace.as_secs(), "grace period over; closing remaining calls");
                Ok(())
            }
        }
    }
}

/// `/package.Service/Method` for every method in an encoded descriptor set.
fn rpc_paths(encoded: &[u8]) -> Vec<String> {
    let Ok(set) = prost_types::FileDescriptorSet::decode(encoded) else {
        return Vec::new();
    };
    set.file
        .iter()
        .flat_map(|file| {
            file.service.iter().flat_map(move |service| {
                service.method.iter().map(move |method| {
                    format!("/{}.{}/{}", file.package(), service.name(), method.name())
                })
            })
        })
        .collect()
}

/// Sets the health of the process and of each mounted service at once.
#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
    names: Vec<&'static str>,
}

impl Health {
    pub async fn set(&self, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.reporter.set_service_status("", status).await;
        for name in &self.names {
            self.reporter.set_service_status(*name, status).await;
        }
    }
}

/// Accepted connections with Nagle's algorithm off: a response is written as several small
/// frames (headers, data, trailers), and Nagle would hold the last ones until the client's
/// delayed acknowledgement, some 40 ms later.
fn incoming(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    TcpListenerStream::new(listener).map(|accepted| {
        if let Ok(stream) = &accepted {
            let _ = stream.set_nodelay(true);
        }
        accepted
    })
}
