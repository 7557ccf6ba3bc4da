//! Prometheus metrics, served on the admin listener with liveness and readiness probes.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        histogram::{Histogram, exponential_buckets},
    },
    registry::{Metric, Registry},
};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    pub service: String,
    pub method: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcMethodLabels {
    pub service: String,
    pub method: String,
}

/// Per-RPC metrics recorded by the gRPC layer.
#[derive(Clone)]
pub struct GrpcMetrics {
    pub requests: Family<RpcLabels, Counter>,
    pub duration: Family<RpcMethodLabels, Histogram>,
}

/// The process registry plus the readiness flag the admin endpoint reports.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub grpc: GrpcMetrics,
    ready: AtomicBool,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("mzchat");
        let grpc = GrpcMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0005, 2.0, 16))
            }),
        };
        registry.register(
            "grpc_server_handled",
            "gRPC requests handled, by service, method and status code",
            grpc.requests.clone(),
        );
        registry.register(
            "grpc_server_handling_seconds",
            "Time to the response headers of gRPC requests",
            grpc.duration.clone(),
        );
        crate::shared_metrics::register(&mut registry);
        Arc::new(Self {
            registry: Mutex::new(registry),
            grpc,
            ready: AtomicBool::new(false),
        })
    }

    /// Registers a service's own metric.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.lock().register(name, help, metric);
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(err) = encode(&mut text, &self.lock()) {
            tracing::error!(error = %err, "cannot encode metrics");
        }
        text
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Serves `/metrics`, `/healthz` (alive) and `/readyz` (migrations done, listeners up) until
/// `shutdown`.
pub async fn serve_admin(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready_handler))
        .with_state(metrics);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn metrics_handler(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
}

async fn ready_handler(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    if metrics.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

/// Binds the admin listener, failing with the address in the message.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
