//! The gRPC front door of a process: one listener carrying every mounted service, gRPC-Web,
//! health, reflection, and per-RPC tracing and metrics.

mod internal;
mod observe;
mod server;

pub use internal::{INTERNAL_TOKEN_HEADER, InternalAuth};
pub use observe::RpcObserveLayer;
pub use server::{GrpcServer, Health, MAX_REQUEST_BYTES};
