//! `faults`: the parts of the fault suite (`make test-faults`, driven by deploy/faults/run.py)
//! that speak gRPC.
//!
//! - `faults router`: the public origin (and the internal service address) of a homeserver
//!   whose services run as separate processes, routing each call by gRPC service to a ready
//!   replica (what the Gateway route and the Kubernetes Services do in a cluster).
//! - `faults load`: a steady mixed load (messages, joins, uploads, mention pushes) against
//!   homeservers A and B, retrying like a real client, recording every acknowledged write to
//!   a JSON file the driver's checks read.

mod ledger;
mod load;
mod ops;
mod router;

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum Part {
    /// Routes gRPC calls by service to the processes of one homeserver.
    Router {
        /// The public origin's listener.
        #[arg(long)]
        listen: SocketAddr,
        /// The listener for service-to-service calls (internal services routed too).
        #[arg(long)]
        internal_listen: SocketAddr,
        /// `SERVICE=GRPC_ADDR/ADMIN_ADDR` (repeat per process; SERVICE as in `mzchatd SERVICE`).
        #[arg(long = "backend", required = true)]
        backends: Vec<String>,
    },
    /// The mixed load; prints `faults load: started` when the steady load begins.
    Load(Load),
}

#[derive(Args)]
pub struct Load {
    /// Origin of homeserver A (hosts the guild most of the load goes to).
    #[arg(long)]
    a: String,
    /// Origin of homeserver B.
    #[arg(long)]
    b: String,
    /// Base URL of the push distributor (an HTTP server answering POST /up/<who> and
    /// GET /stats with {"paths": {"/up/<who>": count}}).
    #[arg(long)]
    receiver: String,
    /// Where the acknowledged writes go (JSON; also FILE.jsonl as they happen).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 215)]
    seconds: u64,
    /// Messages per second in A's guild.
    #[arg(long, default_value_t = 15.0)]
    rate: f64,
    /// Messages per second in B's guild.
    #[arg(long, default_value_t = 1.0)]
    b_rate: f64,
    /// Joins of A's guild per second (alternately by users homed on A and on B).
    #[arg(long, default_value_t = 0.5)]
    join_rate: f64,
    /// Uploads per second to A's media service.
    #[arg(long, default_value_t = 1.0)]
    upload_rate: f64,
    /// Users registered at each home beforehand to join during the load.
    #[arg(long, default_value_t = 60)]
    joiners: usize,
}

pub async fn run(part: Part, dir: &std::path::Path) -> anyhow::Result<()> {
    match part {
        Part::Router {
            listen,
            internal_listen,
            backends,
        } => router::run(listen, internal_listen, &backends).await,
        Part::Load(load) => load::run(load, dir).await,
    }
}
