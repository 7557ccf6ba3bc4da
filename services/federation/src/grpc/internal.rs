use std::sync::Arc;

use mzchat_platform::{
    Origin,
    federation::{OriginPolicy, is_internal_address},
};
use mzchat_proto::federation::{
    GetServerKeysRequest, GetServerKeysResponse,
    federation_internal_service_server::FederationInternalService,
};
use tonic::{Request, Response, Status};

use crate::{keys::KeyCache, outbound::Outbound};

pub struct InternalGrpc {
    keys: Arc<KeyCache>,
    outbound: Arc<Outbound>,
    policy: OriginPolicy,
    allow_http: bool,
}

impl InternalGrpc {
    pub fn new(
        keys: Arc<KeyCache>,
        outbound: Arc<Outbound>,
        policy: OriginPolicy,
        allow_http: bool,
    ) -> Self {
        Self {
            keys,
            outbound,
            policy,
            allow_http,
        }
    }
}

#[tonic::async_trait]
impl FederationInternalService for InternalGrpc {
    async fn get_server_keys(
        &self,
        request: Request<GetServerKeysRequest>,
    ) -> Result<Response<GetServerKeysResponse>, Status> {
        let request = request.into_inner();
        let origin = Origin::parse(&request.origin, self.allow_http)
            .map_err(|e| Status::invalid_argument(format!("origin: {e}")))?;
        // Development servers federate on loopback; production ones never call inwards.
        let internal = !self.allow_http && is_internal_address(&origin);
        if internal || !self.policy.permits(&origin) {
            return Err(Status::permission_denied(format!(
                "federation with {origin} is not allowed by this server's policy"
            )));
        }
        let server_keys = self
            .keys
            .get(&self.outbound, &origin, &request.key_id)
            .await?;
        Ok(Response::new(GetServerKeysResponse { server_keys }))
    }
}
