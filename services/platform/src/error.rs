//! One small closed set of error kinds, mapped once to `tonic::Status`.

use std::error::Error as StdError;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The domain `google.rpc.ErrorInfo` reasons are scoped to.
pub const ERROR_DOMAIN: &str = "mzchat.im";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    PermissionDenied,
    Unauthenticated,
    ResourceExhausted,
    Unavailable,
    /// A feature this server does not offer (yet).
    Unimplemented,
    Internal,
}

impl ErrorKind {
    pub fn code(self) -> Code {
        match self {
            ErrorKind::InvalidArgument => Code::InvalidArgument,
            ErrorKind::NotFound => Code::NotFound,
            ErrorKind::AlreadyExists => Code::AlreadyExists,
            ErrorKind::FailedPrecondition => Code::FailedPrecondition,
            ErrorKind::PermissionDenied => Code::PermissionDenied,
            ErrorKind::Unauthenticated => Code::Unauthenticated,
            ErrorKind::ResourceExhausted => Code::ResourceExhausted,
            ErrorKind::Unavailable => Code::Unavailable,
            ErrorKind::Unimplemented => Code::Unimplemented,
            ErrorKind::Internal => Code::Internal,
        }
    }
}

/// A `google.rpc.ErrorInfo` reason the protocol names, with its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReason {
    pub reason: &'static str,
    pub metadata: Vec<(String, String)>,
}

/// Implemented by each service's domain error.
pub trait DomainError: StdError + Send + Sync + 'static {
    fn kind(&self) -> ErrorKind;

    fn reason(&self) -> Option<ErrorReason> {
        None
    }
}

/// Maps a domain error to the status a client sees. Internal errors are logged here, once, with
/// their source chain; the client gets a generic message.
pub fn to_status<E: DomainError>(err: &E) -> Status {
    let kind = err.kind();
    if kind == ErrorKind::Internal {
        tracing::error!(error = %error_chain(err), "internal error");
        return Status::internal("internal error");
    }
    match err.reason() {
        Some(reason) => {
            let details = ErrorDetails::with_error_info(
                reason.reason,
                ERROR_DOMAIN,
                reason
                    .metadata
                    .into_iter()
                    .collect::<std::collections::HashMap<_, _>>(),
            );
            Status::with_error_details(kind.code(), err.to_string(), details)
        }
        None => Status::new(kind.code(), err.to_string()),
    }
}

/// `outer: inner: innermost`, for logs.
pub fn error_chain(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum TestError {
        #[error("user moved to {0}")]
        Moved(String),
        #[error("database unreachable")]
        Db(#[source] std::io::Error),
    }

    impl DomainError for TestError {
        fn kind(&self) -> ErrorKind {
            match self {
                TestError::Moved(_) => ErrorKind::FailedPrecondition,
                TestError::Db(_) => ErrorKind::Internal,
            }
        }
        fn reason(&self) -> Option<ErrorReason> {
            match self {
                TestError::Moved(to) => Some(ErrorReason {
                    reason: "HOMESERVER_MOVED",
                    metadata: vec![("new_homeserver".into(), to.clone())],
                }),
                TestError::Db(_) => None,
            }
        }
    }

    #[test]
    fn reasons_travel_as_error_info() {
        let status = to_status(&TestError::Moved("https://b.example".into()));
        assert_eq!(status.code(), Code::FailedPrecondition);
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "HOMESERVER_MOVED");
        assert_eq!(info.metadata["new_homeserver"], "https://b.example");
    }

    #[test]
    fn internal_errors_hide_their_cause_from_the_client() {
        let err = TestError::Db(std::io::Error::other("connection refused on 10.0.0.5"));
        let status = to_status(&err);
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
        assert_eq!(
            error_chain(&err),
            "database unreachable: connection refused on 10.0.0.5"
        );
    }
}
