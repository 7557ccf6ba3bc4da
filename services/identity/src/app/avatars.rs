//! A local avatar is a file of this server's media service (PROTOCOL.md section 11): the
//! account's own complete upload, made as an avatar.

use std::time::Duration;

use mzchat_platform::grpc::InternalAuth;
use mzchat_proto::media::{
    GetFileInfoRequest, UploadPurpose, media_internal_service_client::MediaInternalServiceClient,
};
use tonic::transport::Channel;

use crate::domain::{IdentityError, Result, invalid};

pub struct Avatars {
    media: Option<MediaInternalServiceClient<Channel>>,
    auth: InternalAuth,
}

impl Avatars {
    /// Media's internal API at `url`; none: accounts cannot take an avatar file.
    pub fn new(url: Option<&str>, auth: InternalAuth) -> std::result::Result<Self, String> {
        let media = match url {
            Some(url) => {
                let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
                    .map_err(|e| format!("media internal url {url}: {e}"))?
                    .connect_timeout(Duration::from_secs(5))
                    .timeout(Duration::from_secs(10))
                    .connect_lazy();
                Some(MediaInternalServiceClient::new(channel))
            }
            None => None,
        };
        Ok(Self { media, auth })
    }

    pub async fn check(&self, user_id: &str, file_id: &str) -> Result<()> {
        let no_media = || {
            IdentityError::FailedPrecondition(
                "this server runs no media service, so it cannot take an avatar file".into(),
            )
        };
        let media = self.media.as_ref().ok_or_else(no_media)?;
        let mut request = tonic::Request::new(GetFileInfoRequest {
            file_id: file_id.to_owned(),
        });
        self.auth.attach(&mut request);
        let info = match media.clone().get_file_info(request).await {
            Ok(info) => info.into_inner(),
            Err(status) if status.code() == tonic::Code::NotFound => {
                return Err(invalid(format!(
                    "avatar {file_id} is not a file on this server"
                )));
            }
            Err(status) if status.code() == tonic::Code::Unimplemented => return Err(no_media()),
            Err(status) => {
                tracing::warn!(%status, "media service unavailable for an avatar check");
                return Err(IdentityError::Unavailable(
                    "the avatar cannot be checked right now; try again".into(),
                ));
            }
        };
        if info.owner_id != user_id {
            return Err(IdentityError::PermissionDenied(format!(
                "avatar {file_id} is not your upload"
            )));
        }
        if !info.complete || info.purpose != UploadPurpose::Avatar as i32 {
            return Err(invalid(format!(
                "{file_id} is not a complete upload made as an avatar"
            )));
        }
        Ok(())
    }
}
