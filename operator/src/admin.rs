//! The admin listener: /healthz (the process is alive), /readyz (ready: a standby replica is
//! ready too, it only waits for the Lease) and /metrics.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::metrics::Metrics;

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ready" }))
        .route("/metrics", get(metrics_text))
        .with_state(metrics);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metrics_text(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// A plain HTTP/1.1 GET on a blocking thread (tokio's io-util is not enabled here).
    async fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let request = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
        tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(addr).expect("connect");
            stream.write_all(request.as_bytes()).expect("write");
            let mut response = String::new();
            stream.read_to_string(&mut response).expect("read");
            response
        })
        .await
        .expect("joined")
    }

    #[tokio::test]
    async fn serves_health_readiness_and_metrics_on_a_standby_replica() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("an address");
        let metrics = Arc::new(Metrics::new());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, metrics.clone(), async {
            let _ = stopped.await;
        }));
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        let ready = get(addr, "/readyz").await;
        assert!(
            ready.starts_with("HTTP/1.1 200"),
            "not leading, still ready: {ready}"
        );
        metrics.reconciled(Some("api"), std::time::Duration::from_millis(3));
        let text = get(addr, "/metrics").await;
        assert!(
            text.contains(r#"mzchat_operator_reconciles_total{outcome="error",error="api"} 1"#),
            "{text}"
        );
        assert!(text.contains("mzchat_operator_leader 0"), "{text}");
        let _ = stop.send(());
        server.await.expect("joined").expect("served");
    }
}
