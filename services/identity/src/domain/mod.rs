//! Identity's domain: the checks of PROTOCOL.md sections 2-3 and profile rules, IO-free.

pub mod account;
pub mod login;
pub mod profile;

use mzchat_platform::{DomainError, ErrorKind, ErrorReason};

/// Every way an identity call can fail, each with its gRPC kind.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// A bound on what one account may keep was reached.
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("this user's home server moved to {new_homeserver}")]
    HomeserverMoved {
        new_homeserver: String,
        /// The migration that moved the user (timestamp, K_id signature), for other servers.
        proof: Option<(i64, Vec<u8>)>,
    },
    #[error("{0}")]
    Unimplemented(String),
    /// A service this call depends on cannot be reached; retrying later may work.
    #[error("{0}")]
    Unavailable(String),
    #[error("storage error")]
    Store(#[from] sea_orm::DbErr),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = IdentityError> = std::result::Result<T, E>;

impl DomainError for IdentityError {
    fn kind(&self) -> ErrorKind {
        match self {
            IdentityError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            IdentityError::Unauthenticated(_) => ErrorKind::Unauthenticated,
            IdentityError::PermissionDenied(_) => ErrorKind::PermissionDenied,
            IdentityError::NotFound(_) => ErrorKind::NotFound,
            IdentityError::AlreadyExists(_) => ErrorKind::AlreadyExists,
            IdentityError::FailedPrecondition(_) | IdentityError::HomeserverMoved { .. } => {
                ErrorKind::FailedPrecondition
            }
            IdentityError::ResourceExhausted(_) => ErrorKind::ResourceExhausted,
            IdentityError::Unimplemented(_) => ErrorKind::Unimplemented,
            IdentityError::Unavailable(_) => ErrorKind::Unavailable,
            IdentityError::Store(_) | IdentityError::Internal(_) => ErrorKind::Internal,
        }
    }

    fn reason(&self) -> Option<ErrorReason> {
        match self {
            IdentityError::HomeserverMoved {
                new_homeserver,
                proof,
            } => {
                let mut metadata = vec![("new_homeserver".into(), new_homeserver.clone())];
                if let Some((timestamp, signature)) = proof {
                    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
                    metadata.push(("migration_timestamp".into(), timestamp.to_string()));
                    metadata.push((
                        "migration_signature".into(),
                        URL_SAFE_NO_PAD.encode(signature),
                    ));
                }
                Some(ErrorReason {
                    reason: "HOMESERVER_MOVED",
                    metadata,
                })
            }
            _ => None,
        }
    }
}

pub fn invalid(message: impl Into<String>) -> IdentityError {
    IdentityError::InvalidArgument(message.into())
}

pub fn unauthenticated(message: impl Into<String>) -> IdentityError {
    IdentityError::Unauthenticated(message.into())
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    mzchat_platform::db::now_millis() / 1000
}
