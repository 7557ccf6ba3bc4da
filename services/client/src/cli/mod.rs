//! The CLI's commands, by topic.

pub mod account;
pub mod chat;
pub mod guild;
pub mod media;

use mzchat_client::Client;
use tonic_types::StatusExt;

pub type CliResult = Result<(), Box<dyn std::error::Error>>;

/// Whether a call failed because the session's guild permissions are out of date.
pub fn is_stale(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unauthenticated
        && status
            .get_details_error_info()
            .is_some_and(|info| info.reason == "PERMISSIONS_STALE")
}

/// Runs an authenticated call on `origin`; when the session's permissions are stale, refreshes
/// it once and tries again.
macro_rules! call {
    ($client:expr, $origin:expr, $service:ident, $method:ident, $message:expr) => {{
        let message = $message;
        let mut refreshed = false;
        loop {
            let request = $client.authed($origin, message.clone()).await?;
            let mut service = $service::new($client.channel($origin)?);
            match service.$method(request).await {
                Err(status) if !refreshed && $crate::cli::is_stale(&status) => {
                    $client.refresh($origin).await?;
                    refreshed = true;
                }
                result => break result?.into_inner(),
            }
        }
    }};
}

pub(crate) use call;

/// Opens the local identity.
pub fn open(store: mzchat_client::KeyStore) -> Result<Client, mzchat_client::ClientError> {
    Client::open(store)
}
