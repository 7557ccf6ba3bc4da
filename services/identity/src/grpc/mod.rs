//! tonic services: proto in, domain calls, proto out; every error through `to_status`.

pub mod convert;
mod identity;
mod server_info;
mod session;

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

/// The caller when a session is optional (absent or invalid tokens both mean anonymous).
async fn optional_caller<T>(app: &IdentityApp, request: &Request<T>) -> Option<Caller> {
    let token = bearer(request.metadata())?;
    app.authenticate(token).await.ok()
}
