use std::sync::Arc;

use mzchat_platform::error::to_status;
use mzchat_proto::guild::{
    ListMembershipsRequest, ListMembershipsResponse, ListPushTargetsRequest,
    ListPushTargetsResponse, Membership, PushTarget,
    guild_internal_service_server::GuildInternalService,
};
use tonic::{Request, Response, Status};

use crate::app::GuildApp;

/// Internal: mounted behind the internal credential check.
pub struct GuildInternalGrpc {
    app: Arc<GuildApp>,
}

impl GuildInternalGrpc {
    pub fn new(app: Arc<GuildApp>) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl GuildInternalService for GuildInternalGrpc {
    async fn list_memberships(
        &self,
        request: Request<ListMembershipsRequest>,
    ) -> Result<Response<ListMembershipsResponse>, Status> {
        let memberships = self
            .app
            .memberships(&request.into_inner().user_id)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(ListMembershipsResponse {
            memberships: memberships
                .into_iter()
                .map(|m| Membership {
                    guild_id: m.guild_id,
                    role_ids: m.role_ids,
                    permission_version: m.permission_version,
                })
                .collect(),
        }))
    }

    async fn list_push_targets(
        &self,
        request: Request<ListPushTargetsRequest>,
    ) -> Result<Response<ListPushTargetsResponse>, Status> {
        let r = request.into_inner();
        let (targets, author_display_name) = self
            .app
            .push_targets(
                &r.guild_id,
                &r.channel_id,
                &r.user_ids,
                r.everyone,
                &r.author_id,
            )
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(ListPushTargetsResponse {
            targets: targets
                .into_iter()
                .map(|t| PushTarget {
                    user_id: t.user_id,
                    home_server: t.home_server,
                })
                .collect(),
            author_display_name,
        }))
    }
}
