//! Server-to-server plumbing shared by every service that talks federation (PROTOCOL.md
//! section 7): the signed call metadata, the origin allow/deny policy, and the tower wrapper that
//! authenticates inbound federation RPCs before a handler sees them.

mod inbound;
pub mod jobs;
mod policy;
mod remote_keys;
pub mod s2s;

pub use inbound::{CallerOrigin, KeyResolver, S2sAuthenticated, ServerKey};
pub use policy::{OriginPolicy, PolicyError, is_internal_address, is_internal_ip};
pub use remote_keys::RemoteKeys;
