//! The guild service's domain: permissions, validation rules and model types, IO-free.

pub mod invite;
pub mod message;
pub mod model;
pub mod permissions;
pub mod validate;

use mzchat_platform::{DomainError, ErrorKind, ErrorReason};

#[derive(Debug, thiserror::Error)]
pub enum GuildError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Unauthenticated(String),
    /// The token's permission version for the guild is not the current one.
    #[error("your session's permissions for guild {guild_id} are out of date; refresh the session")]
    PermissionsStale { guild_id: String, current: u64 },
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// A bound on how much a guild or user may hold was reached.
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("storage error")]
    Store(#[from] sea_orm::DbErr),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = GuildError> = std::result::Result<T, E>;

impl DomainError for GuildError {
    fn kind(&self) -> ErrorKind {
        match self {
            GuildError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            GuildError::Unauthenticated(_) | GuildError::PermissionsStale { .. } => {
                ErrorKind::Unauthenticated
            }
            GuildError::PermissionDenied(_) => ErrorKind::PermissionDenied,
            GuildError::NotFound(_) => ErrorKind::NotFound,
            GuildError::AlreadyExists(_) => ErrorKind::AlreadyExists,
            GuildError::FailedPrecondition(_) => ErrorKind::FailedPrecondition,
            GuildError::ResourceExhausted(_) => ErrorKind::ResourceExhausted,
            GuildError::Unavailable(_) => ErrorKind::Unavailable,
            GuildError::Store(_) | GuildError::Internal(_) => ErrorKind::Internal,
        }
    }

    fn reason(&self) -> Option<ErrorReason> {
        match self {
            GuildError::PermissionsStale { guild_id, current } => Some(ErrorReason {
                reason: "PERMISSIONS_STALE",
                metadata: vec![
                    ("guild_id".into(), guild_id.clone()),
                    ("permission_version".into(), current.to_string()),
                ],
            }),
            _ => None,
        }
    }
}

pub fn invalid(message: impl Into<String>) -> GuildError {
    GuildError::InvalidArgument(message.into())
}

pub fn denied(message: impl Into<String>) -> GuildError {
    GuildError::PermissionDenied(message.into())
}

pub fn not_found(message: impl Into<String>) -> GuildError {
    GuildError::NotFound(message.into())
}
