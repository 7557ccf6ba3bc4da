//! Inbound federation RPCs (authenticated by `S2sAuthenticated` before they get here) and the
//! internal signing RPC federation-sync uses.

use std::sync::Arc;

use mzchat_platform::{error::to_status, federation::CallerOrigin};
use mzchat_proto::{
    federation::{
        PropagateBanRequest, PropagateBanResponse, UpdateHomeServerRequest,
        UpdateHomeServerResponse, VerifyUserRequest, VerifyUserResponse,
        identity_federation_service_server::IdentityFederationService,
    },
    identity::{
        CheckDelegationRequest, CheckDelegationResponse, SignServerCallRequest,
        SignServerCallResponse, server_key_internal_service_server::ServerKeyInternalService,
    },
};
use tonic::{Request, Response, Status};

use crate::app::IdentityApp;

pub struct IdentityFederationGrpc {
    app: Arc<IdentityApp>,
}

impl IdentityFederationGrpc {
    pub fn new(app: Arc<IdentityApp>) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl IdentityFederationService for IdentityFederationGrpc {
    async fn verify_user(
        &self,
        request: Request<VerifyUserRequest>,
    ) -> Result<Response<VerifyUserResponse>, Status> {
        let caller = CallerOrigin::of(&request)?;
        self.app
            .verify_user_for(&caller, &request.get_ref().user_id)
            .await
            .map(Response::new)
            .map_err(|e| to_status(&e))
    }

    async fn update_home_server(
        &self,
        request: Request<UpdateHomeServerRequest>,
    ) -> Result<Response<UpdateHomeServerResponse>, Status> {
        let caller = CallerOrigin::of(&request)?;
        self.app
            .update_home_server(&caller, request.get_ref())
            .await
            .map(|()| Response::new(UpdateHomeServerResponse {}))
            .map_err(|e| to_status(&e))
    }

    async fn propagate_ban(
        &self,
        request: Request<PropagateBanRequest>,
    ) -> Result<Response<PropagateBanResponse>, Status> {
        let caller = CallerOrigin::of(&request)?;
        self.app
            .receive_ban(&caller, request.get_ref())
            .await
            .map(|()| Response::new(PropagateBanResponse {}))
            .map_err(|e| to_status(&e))
    }
}

pub struct ServerKeyInternalGrpc {
    app: Arc<IdentityApp>,
}

impl ServerKeyInternalGrpc {
    pub fn new(app: Arc<IdentityApp>) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl ServerKeyInternalService for ServerKeyInternalGrpc {
    async fn sign_server_call(
        &self,
        request: Request<SignServerCallRequest>,
    ) -> Result<Response<SignServerCallResponse>, Status> {
        let request = request.into_inner();
        let (origin, key_id, signature) = self
            .app
            .sign_server_call(
                &request.method_path,
                &request.destination,
                request.timestamp,
                &request.request_sha256,
            )
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(SignServerCallResponse {
            origin,
            key_id,
            signature,
        }))
    }

    async fn check_delegation(
        &self,
        request: Request<CheckDelegationRequest>,
    ) -> Result<Response<CheckDelegationResponse>, Status> {
        let r = request.into_inner();
        let valid = self
            .app
            .check_delegation(&r.token_id, &r.user_id, &r.audience)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(CheckDelegationResponse { valid }))
    }
}
