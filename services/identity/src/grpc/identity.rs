use std::sync::Arc;

use mzchat_platform::{
    error::to_status,
    rate_limit::{Limit, RateLimiter},
};
use mzchat_proto::{
    common::GuildRef,
    identity::{self as pb, identity_service_server::IdentityService},
};
use tonic::{Request, Response, Status};

use super::{caller, convert, optional_caller};
use crate::{
    app::IdentityApp,
    domain::profile::{GuildPlace, ProfileChange},
};

pub struct IdentityGrpc {
    app: Arc<IdentityApp>,
    rate: Arc<RateLimiter>,
}

impl IdentityGrpc {
    pub fn new(app: Arc<IdentityApp>, rate: Arc<RateLimiter>) -> Self {
        Self { app, rate }
    }

    fn assets(&self) -> &mzchat_platform::Origin {
        &self.app.config().server.assets_origin
    }
}

fn change(r: pb::UpdateProfileRequest) -> ProfileChange {
    ProfileChange {
        display_name: r.display_name,
        bio: r.bio,
        avatar_file_id: r.avatar_file_id,
        avatar_color: r.avatar_color,
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl IdentityService for IdentityGrpc {
    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Reply<pb::GetAccountResponse> {
        let caller = caller(&self.app, &request).await?;
        let account = self
            .app
            .get_account(&caller)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::GetAccountResponse {
            account: Some(convert::account(&account, self.assets())),
        }))
    }

    async fn get_profile(
        &self,
        request: Request<pb::GetProfileRequest>,
    ) -> Reply<pb::GetProfileResponse> {
        caller(&self.app, &request).await?;
        let account = self
            .app
            .get_profile(&request.into_inner().user_id)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::GetProfileResponse {
            profile: Some(convert::profile(&account, self.assets())),
            home_server: account.home_server,
        }))
    }

    async fn update_profile(
        &self,
        request: Request<pb::UpdateProfileRequest>,
    ) -> Reply<pb::UpdateProfileResponse> {
        let caller = caller(&self.app, &request).await?;
        let account = self
            .app
            .update_profile(&caller, change(request.into_inner()))
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::UpdateProfileResponse {
            profile: Some(convert::profile(&account, self.assets())),
        }))
    }

    async fn set_profile_sync(
        &self,
        request: Request<pb::SetProfileSyncRequest>,
    ) -> Reply<pb::SetProfileSyncResponse> {
        let caller = caller(&self.app, &request).await?;
        let r = request.into_inner();
        let account = self
            .app
            .set_profile_sync(
                &caller,
                r.synced,
                change(r.local_profile.unwrap_or_default()),
            )
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::SetProfileSyncResponse {
            account: Some(convert::account(&account, self.assets())),
        }))
    }

    async fn set_presence_preference(
        &self,
        request: Request<pb::SetPresencePreferenceRequest>,
    ) -> Reply<pb::SetPresencePreferenceResponse> {
        let caller = caller(&self.app, &request).await?;
        self.app
            .set_presence(&caller, request.into_inner().presence_preference)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::SetPresencePreferenceResponse {}))
    }

    async fn get_guild_order(
        &self,
        request: Request<pb::GetGuildOrderRequest>,
    ) -> Reply<pb::GetGuildOrderResponse> {
        let caller = caller(&self.app, &request).await?;
        let order = self
            .app
            .guild_order(&caller)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::GetGuildOrderResponse {
            guilds: order
                .into_iter()
                .map(|p| GuildRef {
                    origin: p.origin,
                    guild_id: p.guild_id,
                })
                .collect(),
        }))
    }

    async fn set_guild_order(
        &self,
        request: Request<pb::SetGuildOrderRequest>,
    ) -> Reply<pb::SetGuildOrderResponse> {
        let caller = caller(&self.app, &request).await?;
        let order = request
            .into_inner()
            .guilds
            .into_iter()
            .map(|g| GuildPlace {
                origin: g.origin,
                guild_id: g.guild_id,
            })
            .collect();
        self.app
            .set_guild_order(&caller, order)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::SetGuildOrderResponse {}))
    }

    async fn list_devices(
        &self,
        request: Request<pb::ListDevicesRequest>,
    ) -> Reply<pb::ListDevicesResponse> {
        let caller = caller(&self.app, &request).await?;
        let devices = self
            .app
            .list_devices(&caller)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::ListDevicesResponse {
            devices: devices.iter().map(convert::device).collect(),
        }))
    }

    async fn revoke_device(
        &self,
        request: Request<pb::RevokeDeviceRequest>,
    ) -> Reply<pb::RevokeDeviceResponse> {
        let r = request.into_inner();
        self.app
            .revoke_device(&r.user_id, r.revocation.as_ref())
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::RevokeDeviceResponse {}))
    }

    async fn list_ban_notifications(
        &self,
        request: Request<pb::ListBanNotificationsRequest>,
    ) -> Reply<pb::ListBanNotificationsResponse> {
        let caller = caller(&self.app, &request).await?;
        let r = request.into_inner();
        let (notices, next_page_token) = self
            .app
            .ban_notifications(&caller, r.page_size, &r.page_token)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::ListBanNotificationsResponse {
            notifications: notices
                .into_iter()
                .map(|n| pb::BanNotification {
                    origin: n.origin,
                    guild_id: n.guild_id,
                    guild_name: n.guild_name,
                    reason: n.reason,
                    banned_at: convert::timestamp_ms(n.banned_at),
                    received_at: convert::timestamp_ms(n.received_at),
                })
                .collect(),
            next_page_token,
        }))
    }

    async fn create_sync_mailbox(
        &self,
        request: Request<pb::CreateSyncMailboxRequest>,
    ) -> Reply<pb::CreateSyncMailboxResponse> {
        let caller = caller(&self.app, &request).await?;
        let created = self
            .app
            .create_mailbox(&caller)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::CreateSyncMailboxResponse {
            session_id: created.session_id,
            expires_at: convert::timestamp_ms(created.expires_at_ms),
            qr_url: created.qr_url,
        }))
    }

    async fn sync_mailbox(
        &self,
        request: Request<pb::SyncMailboxRequest>,
    ) -> Reply<pb::SyncMailboxResponse> {
        let caller = optional_caller(&self.app, &request).await?;
        if caller.is_none() {
            self.rate
                .check_address(Limit::IpSyncMailbox, &request)
                .await?;
        }
        let r = request.into_inner();
        let data = self
            .app
            .sync_mailbox(caller.as_ref(), &r.session_id, r.payload, r.wait_for_data)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::SyncMailboxResponse {
            has_data: data.is_some(),
            payload: data.unwrap_or_default(),
        }))
    }
}
