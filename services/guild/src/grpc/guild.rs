use std::{sync::Arc, time::Duration};

use mzchat_platform::{error::to_status, rate_limit::Limit, session_keys::SessionKeys};
use mzchat_proto::{
    guild::{self as pb, guild_service_server::GuildService},
    identity::LoginRequest,
};
use tonic::{Request, Response, Status};

use super::caller;
use crate::{
    app::{ChannelChange, GuildApp, RoleChange},
    convert,
    domain::GuildError,
};

pub struct GuildGrpc {
    app: Arc<GuildApp>,
    keys: Arc<SessionKeys>,
}

impl GuildGrpc {
    pub fn new(app: Arc<GuildApp>, keys: Arc<SessionKeys>) -> Self {
        Self { app, keys }
    }

    fn assets(&self) -> &mzchat_platform::Origin {
        &self.app.config.server.assets_origin
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn expiry(expires_at: i64) -> Option<prost_types::Timestamp> {
    (expires_at > 0).then_some(prost_types::Timestamp {
        seconds: expires_at,
        nanos: 0,
    })
}

fn status(err: GuildError) -> Status {
    to_status(&err)
}

fn duration(d: Option<prost_types::Duration>) -> Result<Option<Duration>, Status> {
    d.map(|d| {
        u64::try_from(d.seconds)
            .map(Duration::from_secs)
            .map_err(|_| Status::invalid_argument("max_age must not be negative"))
    })
    .transpose()
}

#[tonic::async_trait]
impl GuildService for GuildGrpc {
    async fn create_guild(
        &self,
        request: Request<pb::CreateGuildRequest>,
    ) -> Reply<pb::CreateGuildResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        let (guild, token) = self
            .app
            .create_guild(&caller, &r.name, &r.icon_file_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::CreateGuildResponse {
            guild: Some(convert::guild(&guild, self.assets())),
            access_token: token.access_token,
            access_token_expires_at: expiry(token.expires_at),
        }))
    }

    async fn get_guild(
        &self,
        request: Request<pb::GetGuildRequest>,
    ) -> Reply<pb::GetGuildResponse> {
        let caller = caller(&self.keys, &request).await?;
        let guild = self
            .app
            .get_guild(&caller, &request.into_inner().guild_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::GetGuildResponse {
            guild: Some(convert::guild(&guild, self.assets())),
        }))
    }

    async fn update_guild(
        &self,
        request: Request<pb::UpdateGuildRequest>,
    ) -> Reply<pb::UpdateGuildResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        let guild = self
            .app
            .update_guild(
                &caller,
                &r.guild_id,
                r.name.as_deref(),
                r.icon_file_id.as_deref(),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::UpdateGuildResponse {
            guild: Some(convert::guild(&guild, self.assets())),
        }))
    }

    async fn delete_guild(
        &self,
        request: Request<pb::DeleteGuildRequest>,
    ) -> Reply<pb::DeleteGuildResponse> {
        let caller = caller(&self.keys, &request).await?;
        self.app
            .delete_guild(&caller, &request.into_inner().guild_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::DeleteGuildResponse {}))
    }

    async fn list_guilds(
        &self,
        request: Request<pb::ListGuildsRequest>,
    ) -> Reply<pb::ListGuildsResponse> {
        let caller = caller(&self.keys, &request).await?;
        let guilds = self.app.list_guilds(&caller).await.map_err(status)?;
        Ok(Response::new(pb::ListGuildsResponse {
            guilds: guilds
                .iter()
                .map(|g| convert::guild(g, self.assets()))
                .collect(),
        }))
    }

    async fn create_channel(
        &self,
        request: Request<pb::CreateChannelRequest>,
    ) -> Reply<pb::CreateChannelResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        let channel = self
            .app
            .create_channel(&caller, &r.guild_id, &r.name, &r.topic, r.position)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::CreateChannelResponse {
            channel: Some(convert::channel(&channel)),
        }))
    }

    async fn update_channel(
        &self,
        request: Request<pb::UpdateChannelRequest>,
    ) -> Reply<pb::UpdateChannelResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        let change = ChannelChange {
            name: r.name,
            topic: r.topic,
            position: r.position,
        };
        let channel = self
            .app
            .update_channel(&caller, &r.guild_id, &r.channel_id, change)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::UpdateChannelResponse {
            channel: Some(convert::channel(&channel)),
        }))
    }

    async fn delete_channel(
        &self,
        request: Request<pb::DeleteChannelRequest>,
    ) -> Reply<pb::DeleteChannelResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        self.app
            .delete_channel(&caller, &r.guild_id, &r.channel_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::DeleteChannelResponse {}))
    }

    async fn list_channels(
        &self,
        request: Request<pb::ListChannelsRequest>,
    ) -> Reply<pb::ListChannelsResponse> {
        let caller = caller(&self.keys, &request).await?;
        let channels = self
            .app
            .list_channels(&caller, &request.into_inner().guild_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListChannelsResponse {
            channels: channels.iter().map(convert::channel).collect(),
        }))
    }

    async fn create_role(
        &self,
        request: Request<pb::CreateRoleRequest>,
    ) -> Reply<pb::CreateRoleResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        let (role, version) = self
            .app
            .create_role(
                &caller,
                &r.guild_id,
                &r.name,
                r.permissions,
                r.weight,
                r.color,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::CreateRoleResponse {
            role: Some(convert::role(&role)),
            permission_version: version,
        }))
    }

    async fn update_role(
        &self,
        request: Request<pb::UpdateRoleRequest>,
    ) -> Reply<pb::UpdateRoleResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        let change = RoleChange {
            name: r.name,
            permissions: r.permissions,
            weight: r.weight,
            color: r.color,
        };
        let (role, version) = self
            .app
            .update_role(&caller, &r.guild_id, &r.role_id, change)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::UpdateRoleResponse {
            role: Some(convert::role(&role)),
            permission_version: version,
        }))
    }

    async fn delete_role(
        &self,
        request: Request<pb::DeleteRoleRequest>,
    ) -> Reply<pb::DeleteRoleResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        let version = self
            .app
            .delete_role(&caller, &r.guild_id, &r.role_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::DeleteRoleResponse {
            permission_version: version,
        }))
    }

    async fn list_roles(
        &self,
        request: Request<pb::ListRolesRequest>,
    ) -> Reply<pb::ListRolesResponse> {
        let caller = caller(&self.keys, &request).await?;
        let roles = self
            .app
            .list_roles(&caller, &request.into_inner().guild_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListRolesResponse {
            roles: roles.iter().map(convert::role).collect(),
        }))
    }

    async fn assign_role(
        &self,
        request: Request<pb::AssignRoleRequest>,
    ) -> Reply<pb::AssignRoleResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        let version = self
            .app
            .set_role(&caller, &r.guild_id, &r.user_id, &r.role_id, true)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::AssignRoleResponse {
            permission_version: version,
        }))
    }

    async fn unassign_role(
        &self,
        request: Request<pb::UnassignRoleRequest>,
    ) -> Reply<pb::UnassignRoleResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        let version = self
            .app
            .set_role(&caller, &r.guild_id, &r.user_id, &r.role_id, false)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::UnassignRoleResponse {
            permission_version: version,
        }))
    }

    async fn list_members(
        &self,
        request: Request<pb::ListMembersRequest>,
    ) -> Reply<pb::ListMembersResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        let (members, next_page_token) = self
            .app
            .list_members(&caller, &r.guild_id, r.page_size, &r.page_token)
            .await
            .map_err(status)?;
        let ids: Vec<String> = members.iter().map(|m| m.user_id.clone()).collect();
        let profiles = self.app.profiles(&ids).await.map_err(status)?;
        Ok(Response::new(pb::ListMembersResponse {
            members: members
                .iter()
                .map(|m| convert::member(m, profiles.get(&m.user_id)))
                .collect(),
            next_page_token,
        }))
    }

    async fn get_member(
        &self,
        request: Request<pb::GetMemberRequest>,
    ) -> Reply<pb::GetMemberResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        let member = self
            .app
            .get_member(&caller, &r.guild_id, &r.user_id)
            .await
            .map_err(status)?;
        let profiles = self
            .app
            .profiles(std::slice::from_ref(&member.user_id))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::GetMemberResponse {
            member: Some(convert::member(&member, profiles.get(&member.user_id))),
        }))
    }

    async fn kick_member(
        &self,
        request: Request<pb::KickMemberRequest>,
    ) -> Reply<pb::KickMemberResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        self.app
            .kick(&caller, &r.guild_id, &r.user_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::KickMemberResponse {}))
    }

    async fn leave_guild(
        &self,
        request: Request<pb::LeaveGuildRequest>,
    ) -> Reply<pb::LeaveGuildResponse> {
        let caller = caller(&self.keys, &request).await?;
        self.app
            .leave(&caller, &request.into_inner().guild_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::LeaveGuildResponse {}))
    }

    async fn ban_member(
        &self,
        request: Request<pb::BanMemberRequest>,
    ) -> Reply<pb::BanMemberResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        let ban = self
            .app
            .ban(
                &caller,
                &r.guild_id,
                &r.user_id,
                &r.reason,
                r.propagate_to_home_server,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::BanMemberResponse {
            ban: Some(convert::ban(&ban)),
        }))
    }

    async fn unban_member(
        &self,
        request: Request<pb::UnbanMemberRequest>,
    ) -> Reply<pb::UnbanMemberResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        self.app
            .unban(&caller, &r.guild_id, &r.user_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::UnbanMemberResponse {}))
    }

    async fn list_bans(
        &self,
        request: Request<pb::ListBansRequest>,
    ) -> Reply<pb::ListBansResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        let (bans, next_page_token) = self
            .app
            .list_bans(&caller, &r.guild_id, r.page_size, &r.page_token)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListBansResponse {
            bans: bans.iter().map(convert::ban).collect(),
            next_page_token,
        }))
    }

    async fn create_invite(
        &self,
        request: Request<pb::CreateInviteRequest>,
    ) -> Reply<pb::CreateInviteResponse> {
        let caller = caller(&self.keys, &request).await?;
        self.app
            .rate
            .check(Limit::InviteCreate, &caller.device())
            .await?;
        let r = request.into_inner();
        let max_age = duration(r.max_age)?;
        let invite = self
            .app
            .create_invite(&caller, &r.guild_id, &r.channel_id, max_age, r.max_uses)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::CreateInviteResponse {
            invite: Some(convert::invite(&invite, &self.app.config.server.origin)),
        }))
    }

    async fn list_invites(
        &self,
        request: Request<pb::ListInvitesRequest>,
    ) -> Reply<pb::ListInvitesResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        let (invites, next_page_token) = self
            .app
            .list_invites(&caller, &r.guild_id, r.page_size, &r.page_token)
            .await
            .map_err(status)?;
        let origin = &self.app.config.server.origin;
        Ok(Response::new(pb::ListInvitesResponse {
            invites: invites.iter().map(|i| convert::invite(i, origin)).collect(),
            next_page_token,
        }))
    }

    async fn revoke_invite(
        &self,
        request: Request<pb::RevokeInviteRequest>,
    ) -> Reply<pb::RevokeInviteResponse> {
        let caller = caller(&self.keys, &request).await?;
        let r = request.into_inner();
        self.app
            .revoke_invite(&caller, &r.guild_id, &r.token)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::RevokeInviteResponse {}))
    }

    async fn preview_invite(
        &self,
        request: Request<pb::PreviewInviteRequest>,
    ) -> Reply<pb::PreviewInviteResponse> {
        self.app
            .rate
            .check_address(Limit::IpInvite, &request)
            .await?;
        let preview = self
            .app
            .preview_invite(&request.into_inner().token)
            .await
            .map_err(status)?;
        let guild = convert::guild(&preview.guild, self.assets());
        Ok(Response::new(pb::PreviewInviteResponse {
            guild_id: guild.id,
            guild_name: guild.name,
            guild_icon_url: guild.icon_url,
            channel_id: preview
                .channel
                .as_ref()
                .map(|c| c.id.clone())
                .unwrap_or_default(),
            channel_name: preview.channel.map(|c| c.name).unwrap_or_default(),
            member_count: guild.member_count,
            expires_at: convert::timestamp_ms(preview.expires_at),
        }))
    }

    async fn join_invite(
        &self,
        request: Request<pb::JoinInviteRequest>,
    ) -> Reply<pb::JoinInviteResponse> {
        self.app
            .rate
            .check_address(Limit::IpInvite, &request)
            .await?;
        let login = request.get_ref().login.clone();
        // Without a session here, the caller logs in with the same credentials as identity's
        // Login (registered or, for a user homed elsewhere, a shadow account at once).
        let (caller, session) = match login {
            None => (caller(&self.keys, &request).await?, None),
            Some(login) => {
                let mut login = tonic::Request::new(LoginRequest {
                    user_id: login.user_id,
                    certificate: login.certificate,
                    proof: login.proof,
                    profile_hint: login.profile_hint,
                    migration_proof: None,
                    registration_token: String::new(),
                });
                // As a service: the client's address was counted here (IpInvite), identity
                // counts the login against the user.
                self.app.internal.attach(&mut login);
                let response = self.app.sessions.clone().login(login).await?.into_inner();
                let session = response
                    .session
                    .ok_or_else(|| Status::internal("identity returned no session"))?;
                let now = mzchat_platform::db::now_millis() / 1000;
                let claims = self
                    .keys
                    .verify(&session.access_token, now)
                    .await
                    .map_err(|e| status(GuildError::Unauthenticated(e.to_string())))?;
                (crate::app::Caller { claims }, Some(session))
            }
        };
        self.app
            .rate
            .check(Limit::GuildJoin, &caller.device())
            .await?;
        let (guild, token) = self
            .app
            .join_invite(&caller, &request.into_inner().token)
            .await
            .map_err(status)?;
        let (access_token, expires_at) = match (&session, token.access_token.is_empty()) {
            (Some(session), true) => (
                session.access_token.clone(),
                session.access_token_expires_at,
            ),
            _ => (token.access_token, expiry(token.expires_at)),
        };
        Ok(Response::new(pb::JoinInviteResponse {
            guild: Some(convert::guild(&guild, self.assets())),
            access_token,
            access_token_expires_at: expires_at,
            refresh_token: session
                .as_ref()
                .map(|s| s.refresh_token.clone())
                .unwrap_or_default(),
            refresh_token_expires_at: session.and_then(|s| s.refresh_token_expires_at),
        }))
    }
}
