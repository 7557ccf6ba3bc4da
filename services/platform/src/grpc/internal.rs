//! Internal RPCs (service to service) must carry the internal credential, so a mis-routed
//! request from outside gets nothing.

use tonic::{Request, Status, service::Interceptor};

use crate::config::Secret;

pub const INTERNAL_TOKEN_HEADER: &str = "mzchat-internal-token";

#[derive(Clone)]
pub struct InternalAuth {
    token: Secret,
}

impl InternalAuth {
    pub fn new(token: Secret) -> Self {
        Self { token }
    }

    /// Adds the credential to an outgoing internal request.
    /// Adds the internal credential, and the current trace context so the callee's span
    /// continues this trace.
    pub fn attach<T>(&self, request: &mut Request<T>) {
        if let Ok(value) = self.token.expose().parse() {
            request.metadata_mut().insert(INTERNAL_TOKEN_HEADER, value);
        }
        crate::telemetry::inject_trace(request);
    }

    /// Whether `request` carries the internal credential (a service calling on a client's
    /// behalf, which it has already authenticated and counted).
    pub fn verifies<T>(&self, request: &Request<T>) -> bool {
        let presented = request
            .metadata()
            .get(INTERNAL_TOKEN_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        constant_time_eq(presented, self.token.expose().as_bytes())
    }
}

impl Interceptor for InternalAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        if self.verifies(&request) {
            Ok(request)
        } else {
            Err(Status::permission_denied(
                "internal rpc: missing or wrong internal credential",
            ))
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_requests_without_the_credential() {
        let mut auth = InternalAuth::new(Secret::new("s3cret"));
        let status = auth.call(Request::new(())).expect_err("refused");
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        let mut request = Request::new(());
        auth.attach(&mut request);
        assert!(auth.call(request).is_ok());
        let mut wrong = Request::new(());
        InternalAuth::new(Secret::new("s3cre7")).attach(&mut wrong);
        assert!(auth.call(wrong).is_err());
    }
}
