//! Authentication of inbound federation RPCs. `S2sAuthenticated` wraps a generated tonic
//! service: it reads the signed metadata, hashes the request message exactly as it arrived (so a
//! sender's encoding never has to be reproduced), checks the origin policy and the signature
//! under the caller's published key, and hands the handler the verified `CallerOrigin`.

use std::{
    convert::Infallible,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use async_trait::async_trait;
use ed25519_dalek::VerifyingKey;
use http_body_util::{BodyExt, Full, Limited};
use sha2::{Digest, Sha256};
use tonic::{Status, body::Body, server::NamedService};

use super::{
    OriginPolicy,
    s2s::{MAX_SKEW_SECS, S2sError, SignedCall},
};
use crate::{
    Origin,
    rate_limit::{Limit, RateLimiter},
};

/// Largest inbound federation request accepted (the RPCs carry small messages).
const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// A published server key of another homeserver.
#[derive(Debug, Clone)]
pub struct ServerKey {
    pub key_id: String,
    pub key: VerifyingKey,
    /// Unix seconds.
    pub valid_from: i64,
    /// Unix seconds; none while the key is current.
    pub valid_until: Option<i64>,
}

impl ServerKey {
    fn valid_at(&self, at: i64) -> bool {
        self.valid_from.saturating_sub(MAX_SKEW_SECS) <= at
            && self.valid_until.is_none_or(|until| at < until)
    }
}

/// Where the keys of other servers come from (federation-sync's cache, over its internal API).
#[async_trait]
pub trait KeyResolver: Send + Sync + 'static {
    /// The server keys `origin` publishes. `key_id` is the one needed: a resolver that does not
    /// know it fetches the origin's keys again (a rotation).
    async fn server_keys(&self, origin: &Origin, key_id: &str) -> Result<Vec<ServerKey>, Status>;
}

/// The verified calling server, in the request's extensions.
#[derive(Debug, Clone)]
pub struct CallerOrigin(pub Origin);

impl CallerOrigin {
    pub fn of<T>(request: &tonic::Request<T>) -> Result<Origin, Status> {
        request
            .extensions()
            .get::<CallerOrigin>()
            .map(|c| c.0.clone())
            .ok_or_else(|| Status::internal("federation service mounted without authentication"))
    }
}

struct Verifier {
    me: Origin,
    allow_http: bool,
    policy: OriginPolicy,
    keys: Arc<dyn KeyResolver>,
    rate: Option<Arc<RateLimiter>>,
}

#[derive(Clone)]
pub struct S2sAuthenticated<S> {
    inner: S,
    verifier: Arc<Verifier>,
}

impl<S> S2sAuthenticated<S> {
    pub fn new(
        inner: S,
        me: Origin,
        allow_http: bool,
        policy: OriginPolicy,
        keys: Arc<dyn KeyResolver>,
    ) -> Self {
        Self {
            inner,
            verifier: Arc::new(Verifier {
                me,
                allow_http,
                policy,
                keys,
                rate: None,
            }),
        }
    }

    /// Counts every authenticated call against its origin's `federation` limit.
    pub fn rate_limited(mut self, rate: Arc<RateLimiter>) -> Self {
        if let Some(verifier) = Arc::get_mut(&mut self.verifier) {
            verifier.rate = Some(rate);
        }
        self
    }
}

impl<S: NamedService> NamedService for S2sAuthenticated<S> {
    const NAME: &'static str = S::NAME;
}

fn refusal(err: S2sError) -> Status {
    match err {
        S2sError::Denied(_) => Status::permission_denied(err.to_string()),
        S2sError::Body(_) => Status::invalid_argument(err.to_string()),
        _ => Status::unauthenticated(err.to_string()),
    }
}

/// The message bytes of a single uncompressed gRPC frame.
fn grpc_message(frame: &[u8]) -> Result<&[u8], S2sError> {
    let (prefix, message) = frame
        .split_at_checked(5)
        .ok_or(S2sError::Body("request is not one gRPC message"))?;
    if prefix[0] != 0 {
        return Err(S2sError::Body(
            "compressed federation requests are not accepted",
        ));
    }
    let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    if len != message.len() {
        return Err(S2sError::Body("request is not exactly one gRPC message"));
    }
    Ok(message)
}

impl Verifier {
    async fn authenticate(
        &self,
        request: http::Request<Body>,
    ) -> Result<http::Request<Body>, Status> {
        let (mut parts, body) = request.into_parts();
        let call = SignedCall::parse(&parts.headers, self.allow_http).map_err(refusal)?;
        if !self.policy.permits(&call.origin) {
            return Err(refusal(S2sError::Denied(call.origin.to_string())));
        }
        let now = crate::db::now_millis() / 1000;
        call.check_envelope(&self.me, now).map_err(refusal)?;
        let frame = Limited::new(body, MAX_REQUEST_BYTES)
            .collect()
            .await
            .map_err(|_| Status::resource_exhausted("federation request too large or cut short"))?
            .to_bytes();
        let digest = Sha256::digest(grpc_message(&frame).map_err(refusal)?);
        let keys = self.keys.server_keys(&call.origin, &call.key_id).await?;
        let key = keys
            .iter()
            .find(|k| k.key_id == call.key_id && k.valid_at(call.timestamp))
            .ok_or_else(|| {
                refusal(S2sError::UnknownKey(
                    call.origin.to_string(),
                    call.key_id.clone(),
                ))
            })?;
        call.verify(&key.key, parts.uri.path(), &digest)
            .map_err(refusal)?;
        tracing::debug!(origin = %call.origin, path = parts.uri.path(), "server call authenticated");
        if let Some(rate) = &self.rate {
            rate.check(Limit::Federation, call.origin.as_str()).await?;
        }
        parts.extensions.insert(CallerOrigin(call.origin));
        Ok(http::Request::from_parts(
            parts,
            Body::new(Full::new(frame)),
        ))
    }
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S> tower::Service<http::Request<Body>> for S2sAuthenticated<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The ready service answers this call; a fresh clone waits for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        Box::pin(async move {
            match verifier.authenticate(request).await {
                Ok(request) => inner.call(request).await,
                Err(status) => {
                    tracing::info!(code = ?status.code(), message = status.message(), "server call refused");
                    Ok(status.into_http())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_uncompressed_frame_is_accepted() {
        assert_eq!(
            grpc_message(&[0, 0, 0, 0, 2, 8, 1]).expect("frame"),
            &[8, 1]
        );
        assert!(grpc_message(&[1, 0, 0, 0, 2, 8, 1]).is_err());
        assert!(grpc_message(&[0, 0, 0, 0, 3, 8, 1]).is_err());
        assert!(grpc_message(&[0, 0]).is_err());
    }
}
