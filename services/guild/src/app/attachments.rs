//! Attachments are files of this server's media service (PROTOCOL.md section 11): each must
//! exist, be complete, be the sender's own upload, and have been uploaded as an attachment.
//! What the media service says of them is kept with the message.

use mzchat_proto::media::{GetFileInfoRequest, UploadPurpose};

use super::GuildApp;
use crate::domain::{GuildError, Result, invalid, model::Attachment};

impl GuildApp {
    pub(crate) async fn resolve_attachments(
        &self,
        author_id: &str,
        file_ids: &[String],
    ) -> Result<Vec<Attachment>> {
        if file_ids.is_empty() {
            return Ok(Vec::new());
        }
        let Some(media) = &self.media else {
            return Err(GuildError::FailedPrecondition(
                "this server runs no media service, so messages cannot carry attachments".into(),
            ));
        };
        let mut attachments = Vec::with_capacity(file_ids.len());
        for file_id in file_ids {
            let mut request = tonic::Request::new(GetFileInfoRequest {
                file_id: file_id.clone(),
            });
            self.internal.attach(&mut request);
            let info = match media.clone().get_file_info(request).await {
                Ok(info) => info.into_inner(),
                Err(status) if status.code() == tonic::Code::NotFound => {
                    return Err(invalid(format!(
                        "attachment {file_id} is not a file on this server"
                    )));
                }
                Err(status) if status.code() == tonic::Code::Unimplemented => {
                    return Err(GuildError::FailedPrecondition(
                        "this server runs no media service, so messages cannot carry attachments"
                            .into(),
                    ));
                }
                Err(status) => {
                    tracing::warn!(%status, "media service unavailable for an attachment check");
                    return Err(GuildError::Unavailable(
                        "attachments cannot be checked right now; try again".into(),
                    ));
                }
            };
            if !info.complete {
                return Err(invalid(format!("attachment {file_id} is not complete")));
            }
            if info.owner_id != author_id {
                return Err(GuildError::PermissionDenied(format!(
                    "attachment {file_id} is not your upload"
                )));
            }
            if info.purpose != UploadPurpose::Attachment as i32 {
                return Err(invalid(format!(
                    "{file_id} was uploaded as an avatar or icon, not an attachment"
                )));
            }
            attachments.push(Attachment {
                file_id: file_id.clone(),
                content_type: info.content_type,
                size: info.size,
                file_name: info.file_name,
            });
        }
        Ok(attachments)
    }
}
