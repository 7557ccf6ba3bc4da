use std::sync::Arc;

use mzchat_platform::rate_limit::{Limit, RateLimiter};
use mzchat_proto::identity::{
    GetServerInfoRequest, GetServerInfoResponse, MessageLimits, PublicKey,
    RegistrationPolicy as PbPolicy, UploadLimits, server_info_service_server::ServerInfoService,
};
use tonic::{Request, Response, Status};

use super::convert::timestamp_ms;
use crate::{
    app::IdentityApp,
    config::RegistrationPolicy,
    keys::{KeyPurpose, PublishedKey},
};

pub struct ServerInfoGrpc {
    app: Arc<IdentityApp>,
    rate: Arc<RateLimiter>,
}

impl ServerInfoGrpc {
    pub fn new(app: Arc<IdentityApp>, rate: Arc<RateLimiter>) -> Self {
        Self { app, rate }
    }
}

fn public_key(key: PublishedKey) -> PublicKey {
    PublicKey {
        key_id: key.key_id,
        public_key: key.public_key.to_vec(),
        valid_from: timestamp_ms(key.valid_from_ms),
        valid_until: key.valid_until_ms.and_then(timestamp_ms),
    }
}

#[tonic::async_trait]
impl ServerInfoService for ServerInfoGrpc {
    async fn get_server_info(
        &self,
        request: Request<GetServerInfoRequest>,
    ) -> Result<Response<GetServerInfoResponse>, Status> {
        self.rate
            .check_address(Limit::IpServerInfo, &request)
            .await?;
        let config = self.app.config();
        let limits = &config.limits;
        let keys = self.app.keys();
        Ok(Response::new(GetServerInfoResponse {
            origin: config.server.origin.to_string(),
            server_keys: keys
                .published(KeyPurpose::Server)
                .into_iter()
                .map(public_key)
                .collect(),
            session_keys: keys
                .published(KeyPurpose::Session)
                .into_iter()
                .map(public_key)
                .collect(),
            software_version: env!("CARGO_PKG_VERSION").to_owned(),
            registration_policy: match config.registration {
                RegistrationPolicy::Open => PbPolicy::Open,
                RegistrationPolicy::Token => PbPolicy::Token,
                RegistrationPolicy::Closed => PbPolicy::Closed,
            } as i32,
            assets_origin: config.server.assets_origin.to_string(),
            upload_limits: Some(UploadLimits {
                max_attachment_bytes: limits.max_attachment_bytes,
                max_avatar_bytes: limits.max_avatar_bytes,
                max_guild_icon_bytes: limits.max_guild_icon_bytes,
                default_chunk_bytes: limits.upload_chunk_bytes,
                max_chunk_bytes: limits.max_upload_chunk_bytes,
                user_quota_bytes: limits.user_quota_bytes,
            }),
            message_limits: Some(MessageLimits {
                max_content_chars: limits.max_message_chars,
                max_mentions: limits.max_message_mentions,
                max_attachments: limits.max_message_attachments,
            }),
        }))
    }
}
