//! Logs (text or JSON, `RUST_LOG` filters) and, when the standard `OTEL_EXPORTER_OTLP_*`
//! variables name an endpoint, traces over OTLP/gRPC. The guard flushes traces on drop.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// kube's and hyper's own debug logs drown the operator's.
const DEFAULT_FILTER: &str = "info,kube=warn,tower=warn,hyper=warn,h2=warn";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot build the OTLP exporter")]
    Exporter(#[source] opentelemetry_otlp::ExporterBuildError),
}

/// Flushes and shuts down the trace exporter when dropped.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("mzchat-operator: telemetry shutdown: {error}");
        }
    }
}

/// Whether traces should be exported: an endpoint is set and the SDK is not disabled.
pub fn otlp_configured(var: impl Fn(&str) -> Option<String>) -> bool {
    let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let endpoint = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| var(name).is_some_and(|v| !v.is_empty()));
    endpoint && !disabled
}

/// Installs the global subscriber; call once, from main, inside the tokio runtime (the batch
/// exporter spawns onto it).
pub fn init(format: LogFormat) -> Result<TelemetryGuard, TelemetryError> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let fmt = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer().boxed(),
    };
    let provider = if otlp_configured(|name| std::env::var(name).ok()) {
        // endpoint, headers and timeouts come from the OTEL_EXPORTER_OTLP_* variables
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
            .map_err(TelemetryError::Exporter)?;
        let resource = Resource::builder()
            .with_service_name("mzchat-operator")
            .build();
        Some(
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource)
                .build(),
        )
    } else {
        None
    };
    let traces = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("mzchat-operator")));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(traces)
        .try_init();
    Ok(TelemetryGuard { provider })
}

#[cfg(test)]
mod tests {
    use super::otlp_configured;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn traces_are_exported_only_when_an_endpoint_is_named() {
        assert!(!otlp_configured(env(&[])));
        assert!(!otlp_configured(env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            ""
        )])));
        assert!(otlp_configured(env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://otel:4317"
        )])));
        assert!(!otlp_configured(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4317"),
            ("OTEL_SDK_DISABLED", "true"),
        ])));
    }
}
