use std::sync::Arc;

use mzchat_platform::error::to_status;
use mzchat_proto::guild::{
    ListMembershipsRequest, ListMembershipsResponse, ListPushTargetsRequest,
    ListPushTargetsResponse, Membership, PushTarget,
    guild_internal_service_server::GuildInternalService,
};
use tonic::{Request, Response, Status};

use crate::app::{GuildApp, push_targets::TargetQuery};

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
        let answer = self
            .app
            .push_targets(&TargetQuery {
                guild_id: &r.guild_id,
                channel_id: &r.channel_id,
                user_ids: &r.user_ids,
                everyone: r.everyone,
                author_id: &r.author_id,
                after_user_id: &r.after_user_id,
                limit: r.limit,
            })
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(ListPushTargetsResponse {
            targets: answer
                .targets
                .into_iter()
                .map(|t| PushTarget {
                    user_id: t.user_id,
                    home_server: t.home_server,
                })
                .collect(),
            author_display_name: answer.author_name,
            next_after_user_id: answer.next_after_user_id.unwrap_or_default(),
        }))
    }
}
