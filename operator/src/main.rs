//! `mzchat-operator`: `crd` prints the Homeserver CustomResourceDefinition, `render` what the
//! operator would apply for a Homeserver file (no cluster needed), `run` runs the operator.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use mzchat_operator::run::Config;
use mzchat_operator::telemetry::{self, LogFormat};

#[derive(Debug, Parser)]
#[command(name = "mzchat-operator", version, about = "The mzchat operator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the Homeserver CustomResourceDefinition (YAML) on standard output.
    Crd,
    /// Print the objects the operator would apply for the Homeservers in FILE (YAML; other
    /// documents are skipped), without a cluster.
    Render {
        file: std::path::PathBuf,
        /// Namespace of Homeservers that name none.
        #[arg(long, default_value = "default")]
        namespace: String,
    },
    /// Reconcile Homeservers (while this replica holds the leader Lease).
    Run(RunArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The namespace of the leader election Lease; defaults to this pod's namespace.
    #[arg(long, env = "MZCHAT_LEADER_ELECTION_NAMESPACE")]
    leader_election_namespace: Option<String>,
    /// The only namespace to watch; empty watches every namespace.
    #[arg(long, env = "MZCHAT_WATCH_NAMESPACE", default_value = "")]
    watch_namespace: String,
    /// Admin listener: /healthz, /readyz and Prometheus /metrics.
    #[arg(long, env = "MZCHAT_ADMIN_LISTEN", default_value = "127.0.0.1:9600")]
    admin_listen: SocketAddr,
    #[arg(long, env = "MZCHAT_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// This replica's name as the Lease holder (the pod name).
    #[arg(long, env = "POD_NAME")]
    pod_name: Option<String>,
    #[arg(long, env = "POD_NAMESPACE", hide = true)]
    pod_namespace: Option<String>,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Crd => match mzchat_operator::crd::crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("mzchat-operator: cannot serialize the CRD: {err}");
                ExitCode::FAILURE
            }
        },
        Command::Render { file, namespace } => render(&file, &namespace),
        Command::Run(args) => run(args),
    }
}

fn render(file: &std::path::Path, namespace: &str) -> ExitCode {
    let rendered = std::fs::read_to_string(file)
        .map_err(|e| e.to_string())
        .and_then(|text| {
            mzchat_operator::render::render(&text, namespace).map_err(|e| e.to_string())
        });
    match rendered {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("mzchat-operator: {}: {err}", file.display());
            ExitCode::FAILURE
        }
    }
}

/// Bad configuration exits with 64 (EX_USAGE) before anything starts.
const EXIT_CONFIG: u8 = 64;

fn run(args: RunArgs) -> ExitCode {
    let config = match config(&args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("mzchat-operator: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("mzchat-operator: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // the OTLP exporter needs a runtime context, also when the guard flushes on drop (the
    // guards drop in reverse order: telemetry first, then the context, then the runtime)
    let _context = runtime.enter();
    let _telemetry = match telemetry::init(args.log_format) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("mzchat-operator: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match runtime.block_on(serve(config, args.admin_listen)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "mzchat-operator stopped");
            ExitCode::FAILURE
        }
    }
}

fn config(args: &RunArgs) -> Result<Config, String> {
    let identity = args
        .pod_name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or("POD_NAME (or --pod-name) must name this replica for leader election")?;
    let lease_namespace = args
        .leader_election_namespace
        .clone()
        .or_else(|| args.pod_namespace.clone())
        .filter(|n| !n.is_empty())
        .ok_or("--leader-election-namespace (or POD_NAMESPACE) is required")?;
    let watch_namespace = Some(args.watch_namespace.clone()).filter(|n| !n.is_empty());
    Ok(Config {
        watch_namespace,
        lease_namespace,
        identity,
    })
}

async fn serve(config: Config, admin_listen: SocketAddr) -> Result<(), String> {
    let admin = tokio::net::TcpListener::bind(admin_listen)
        .await
        .map_err(|e| format!("cannot listen on {admin_listen}: {e}"))?;
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("cannot configure the kubernetes client: {e}"))?;
    tracing::info!(
        admin = %admin_listen,
        watch_namespace = config.watch_namespace.as_deref().unwrap_or("*"),
        lease_namespace = %config.lease_namespace,
        identity = %config.identity,
        "mzchat-operator starting"
    );
    mzchat_operator::run::run(config, client, admin, terminated())
        .await
        .map_err(|e| format!("admin listener: {e}"))
}

/// SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
