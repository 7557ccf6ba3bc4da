//! A span and metrics per RPC. The span continues the caller's trace (W3C `traceparent` in the
//! request metadata). The status code is read from the response headers: it is there for every
//! error of a unary call; a response without it counts as OK (stream errors in trailers are not
//! seen here).

use std::{
    collections::HashSet,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use futures::future::BoxFuture;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::metrics::{Metrics, RpcLabels, RpcMethodLabels};

#[derive(Clone)]
pub struct RpcObserveLayer {
    metrics: Arc<Metrics>,
    known_paths: Arc<HashSet<String>>,
}

impl RpcObserveLayer {
    /// `known_paths` are the `/package.Service/Method` paths served; any other path is labelled
    /// `unknown`, so clients cannot grow the metric label sets.
    pub fn new(metrics: Arc<Metrics>, known_paths: Arc<HashSet<String>>) -> Self {
        Self {
            metrics,
            known_paths,
        }
    }
}

impl<S> Layer<S> for RpcObserveLayer {
    type Service = RpcObserve<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RpcObserve {
            inner,
            metrics: self.metrics.clone(),
            known_paths: self.known_paths.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RpcObserve<S> {
    inner: S,
    metrics: Arc<Metrics>,
    known_paths: Arc<HashSet<String>>,
}

impl<S, B, RB> Service<http::Request<B>> for RpcObserve<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let (service, method) = if self.known_paths.contains(&path) {
            split_path(&path)
        } else {
            ("unknown".to_owned(), "unknown".to_owned())
        };
        let span = tracing::info_span!(
            "grpc",
            otel.name = %path,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .filter(|(k, _)| k.as_str().starts_with("trace"))
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        crate::telemetry::follow_trace(&span, &headers);
        // The clone is ready-checked by the caller; swap so `self` keeps a fresh one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let metrics = self.metrics.clone();
        Box::pin(
            async move {
                let start = Instant::now();
                let result = inner.call(request).await;
                let code = match &result {
                    Ok(response) => response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<i32>().ok())
                        .map(tonic::Code::from_i32)
                        .unwrap_or(tonic::Code::Ok),
                    Err(_) => tonic::Code::Unknown,
                };
                tracing::Span::current().record("rpc.grpc.status_code", code as i32);
                metrics
                    .grpc
                    .requests
                    .get_or_create(&RpcLabels {
                        service: service.clone(),
                        method: method.clone(),
                        code: format!("{code:?}"),
                    })
                    .inc();
                metrics
                    .grpc
                    .duration
                    .get_or_create(&RpcMethodLabels { service, method })
                    .observe(start.elapsed().as_secs_f64());
                result
            }
            .instrument(span),
        )
    }
}

fn split_path(path: &str) -> (String, String) {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let service = parts.next().unwrap_or_default().to_owned();
    let method = parts.next().unwrap_or_default().to_owned();
    (service, method)
}
