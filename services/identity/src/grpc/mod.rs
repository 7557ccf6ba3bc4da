//! tonic services: proto in, domain calls, proto out; every error through `to_status`.

pub mod convert;
mod federation;
mod identity;
mod server_info;
mod session;

pub use federation::{IdentityFederationGrpc, ServerKeyInternalGrpc};
pub use identity::IdentityGrpc;
pub use server_info::ServerInfoGrpc;
pub use session::{SessionGrpc, SessionInternalGrpc};

use mzchat_platform::{error::to_status, session_token::bearer};
use tonic::{Request, Status};

use crate::app::{Caller, IdentityApp};

/// The caller of a call that needs a session.
async fn caller<T>(app: &IdentityApp, request: &Request<T>) -> Result<Caller, Status> {
    let token = bearer(request.metadata()).ok_or_else(|| {
        Status::unauthenticated("this call needs an access token (authorization: Bearer <jwt>)")
    })?;
    app.authenticate(token).await.map_err(|e| to_status(&e))
}

/// The caller when a session is optional: no token means anonymous, but a token that does not
/// verify is an error (an expired session must not silently act as someone else).
async fn optional_caller<T>(
    app: &IdentityApp,
    request: &Request<T>,
) -> Result<Option<Caller>, Status> {
    match bearer(request.metadata()) {
        None => Ok(None),
        Some(token) => app
            .authenticate(token)
            .await
            .map(Some)
            .map_err(|e| to_status(&e)),
    }
}
