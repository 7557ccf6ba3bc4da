//! The PushService: proto in, app calls, proto out.

use std::sync::Arc;

use mzchat_platform::{error::to_status, session_keys::SessionKeys, session_token::Claims};
use mzchat_proto::push::{
    Distributor as PbDistributor, ListDistributorsRequest, ListDistributorsResponse,
    RegisterDistributorRequest, RegisterDistributorResponse, RegisterFcmTokenRequest,
    RegisterFcmTokenResponse, UnregisterDistributorRequest, UnregisterDistributorResponse,
    UnregisterFcmTokenRequest, UnregisterFcmTokenResponse, push_service_server::PushService,
};
use tonic::{Request, Response, Status};

use crate::{
    app::{PushApp, Registration},
    store::registrations::Distributor,
};

pub struct PushGrpc {
    app: Arc<PushApp>,
    keys: Arc<SessionKeys>,
}

impl PushGrpc {
    pub fn new(app: Arc<PushApp>, keys: Arc<SessionKeys>) -> Self {
        Self { app, keys }
    }

    async fn caller<T>(&self, request: &Request<T>) -> Result<Claims, Status> {
        self.keys.caller(request).await
    }
}

fn distributor(d: &Distributor) -> PbDistributor {
    PbDistributor {
        device_id: d.device_id.clone(),
        endpoint_url: d.endpoint_url.clone(),
        kind: d.kind,
        encrypted: d.p256dh.is_some(),
        created_at: Some(prost_types::Timestamp {
            seconds: d.created_at / 1000,
            nanos: 0,
        }),
    }
}

#[tonic::async_trait]
impl PushService for PushGrpc {
    async fn register_distributor(
        &self,
        request: Request<RegisterDistributorRequest>,
    ) -> Result<Response<RegisterDistributorResponse>, Status> {
        let caller = self.caller(&request).await?;
        let r = request.into_inner();
        let registration = Registration {
            device_id: r.device_id,
            endpoint_url: r.endpoint_url,
            kind: r.kind,
            p256dh: r.p256dh,
            auth: r.auth,
        };
        let stored = self
            .app
            .register_distributor(&caller, registration)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(RegisterDistributorResponse {
            distributor: Some(distributor(&stored)),
        }))
    }

    async fn unregister_distributor(
        &self,
        request: Request<UnregisterDistributorRequest>,
    ) -> Result<Response<UnregisterDistributorResponse>, Status> {
        let caller = self.caller(&request).await?;
        self.app
            .unregister_distributor(&caller, &request.get_ref().device_id)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(UnregisterDistributorResponse {}))
    }

    async fn list_distributors(
        &self,
        request: Request<ListDistributorsRequest>,
    ) -> Result<Response<ListDistributorsResponse>, Status> {
        let caller = self.caller(&request).await?;
        let list = self
            .app
            .distributors(&caller)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(ListDistributorsResponse {
            distributors: list.iter().map(distributor).collect(),
        }))
    }

    async fn register_fcm_token(
        &self,
        request: Request<RegisterFcmTokenRequest>,
    ) -> Result<Response<RegisterFcmTokenResponse>, Status> {
        let caller = self.caller(&request).await?;
        let r = request.get_ref();
        self.app
            .register_fcm_token(&caller, &r.device_id, &r.token)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(RegisterFcmTokenResponse {}))
    }

    async fn unregister_fcm_token(
        &self,
        request: Request<UnregisterFcmTokenRequest>,
    ) -> Result<Response<UnregisterFcmTokenResponse>, Status> {
        let caller = self.caller(&request).await?;
        self.app
            .unregister_fcm_token(&caller, &request.get_ref().device_id)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(UnregisterFcmTokenResponse {}))
    }
}

/// Inbound PushNotification (mounted behind `S2sAuthenticated`).
pub struct PushFederationGrpc {
    relay: Arc<crate::relay::Relay>,
}

impl PushFederationGrpc {
    pub fn new(relay: Arc<crate::relay::Relay>) -> Self {
        Self { relay }
    }
}

#[tonic::async_trait]
impl mzchat_proto::federation::push_federation_service_server::PushFederationService
    for PushFederationGrpc
{
    async fn push_notification(
        &self,
        request: Request<mzchat_proto::federation::PushNotificationRequest>,
    ) -> Result<Response<mzchat_proto::federation::PushNotificationResponse>, Status> {
        let caller = mzchat_platform::federation::CallerOrigin::of(&request)?;
        let queued = self.relay.receive(&caller, request.into_inner()).await?;
        tracing::debug!(origin = %caller, queued, "relayed push received");
        Ok(Response::new(
            mzchat_proto::federation::PushNotificationResponse {},
        ))
    }
}
