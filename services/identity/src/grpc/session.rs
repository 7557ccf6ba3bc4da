use std::sync::Arc;

use mzchat_platform::{
    error::to_status,
    grpc::InternalAuth,
    rate_limit::{Limit, RateLimiter},
};
use mzchat_proto::identity::{
    IssueSessionRequest, IssueSessionResponse, LoginRequest, LoginResponse, LogoutRequest,
    LogoutResponse, RefreshSessionRequest, RefreshSessionResponse, Session,
    session_internal_service_server::SessionInternalService,
    session_service_server::SessionService,
};
use tonic::{Request, Response, Status};

use super::convert::{account, timestamp_ms, timestamp_s};
use crate::app::{IdentityApp, LoginInput, SessionTokens};

pub struct SessionGrpc {
    app: Arc<IdentityApp>,
    rate: Arc<RateLimiter>,
    internal: InternalAuth,
}

impl SessionGrpc {
    pub fn new(app: Arc<IdentityApp>, rate: Arc<RateLimiter>, internal: InternalAuth) -> Self {
        Self {
            app,
            rate,
            internal,
        }
    }
}

fn session(tokens: SessionTokens) -> Session {
    Session {
        access_token: tokens.access_token,
        access_token_expires_at: timestamp_s(tokens.access_expires_at),
        refresh_token: tokens.refresh_token,
        refresh_token_expires_at: timestamp_ms(tokens.refresh_expires_at_ms),
    }
}

#[tonic::async_trait]
impl SessionService for SessionGrpc {
    async fn login(
        &self,
        request: Request<LoginRequest>,
    ) -> Result<Response<LoginResponse>, Status> {
        // A service logging a client in (guild's JoinInvite) has counted its address already.
        if !self.internal.verifies(&request) {
            self.rate.check_address(Limit::IpLogin, &request).await?;
        }
        let r = request.into_inner();
        // Per user and device certificate: spamming someone's user id with made-up
        // certificates cannot lock their real devices out.
        let device = r.certificate.as_ref().map(prost::Message::encode_to_vec);
        let who = format!("{}/{}", r.user_id, hex::encode(device.unwrap_or_default()));
        self.rate.check(Limit::Login, &who).await?;
        let input = LoginInput {
            user_id: r.user_id,
            certificate: r.certificate,
            proof: r.proof,
            profile_hint: r.profile_hint,
            migration_proof: r.migration_proof,
            registration_token: r.registration_token,
        };
        let (tokens, acct) = self.app.login(input).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(LoginResponse {
            session: Some(session(tokens)),
            account: Some(account(&acct, &self.app.config().server.assets_origin)),
        }))
    }

    async fn refresh_session(
        &self,
        request: Request<RefreshSessionRequest>,
    ) -> Result<Response<RefreshSessionResponse>, Status> {
        let tokens = self
            .app
            .refresh(&request.into_inner().refresh_token)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(RefreshSessionResponse {
            session: Some(session(tokens)),
        }))
    }

    async fn logout(
        &self,
        request: Request<LogoutRequest>,
    ) -> Result<Response<LogoutResponse>, Status> {
        self.app
            .logout(&request.into_inner().refresh_token)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(LogoutResponse {}))
    }
}

/// Internal: mounted behind the internal credential check.
pub struct SessionInternalGrpc {
    app: Arc<IdentityApp>,
}

impl SessionInternalGrpc {
    pub fn new(app: Arc<IdentityApp>) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl SessionInternalService for SessionInternalGrpc {
    async fn issue_session(
        &self,
        request: Request<IssueSessionRequest>,
    ) -> Result<Response<IssueSessionResponse>, Status> {
        let r = request.into_inner();
        let (access_token, exp) = self
            .app
            .issue_session(&r.user_id, &r.device_id)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(IssueSessionResponse {
            access_token,
            access_token_expires_at: timestamp_s(exp),
        }))
    }
}
