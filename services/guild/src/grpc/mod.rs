//! tonic services: proto in, domain calls, proto out; every error through `to_status`.

mod events;
mod guild;
mod internal;
mod live;
mod messages;

pub use events::EventGrpc;
pub use guild::GuildGrpc;
pub use internal::GuildInternalGrpc;
pub use messages::MessageGrpc;

use mzchat_platform::{error::to_status, session_keys::SessionKeys, session_token::bearer};
use tonic::{Request, Status};

use crate::{app::Caller, domain::GuildError};

/// The caller of a call that needs a session: a valid access token of this server.
async fn caller<T>(keys: &SessionKeys, request: &Request<T>) -> Result<Caller, Status> {
    let token = bearer(request.metadata()).ok_or_else(|| {
        Status::unauthenticated("this call needs an access token (authorization: Bearer <jwt>)")
    })?;
    let now = mzchat_platform::db::now_millis() / 1000;
    keys.verify(token, now)
        .await
        .map(|claims| Caller { claims })
        .map_err(|e| to_status(&GuildError::Unauthenticated(e.to_string())))
}
