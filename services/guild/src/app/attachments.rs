//! Attachments and guild icons are files of this server's media service (PROTOCOL.md section
//! 11): each must exist, be complete, be the caller's own upload, and have been uploaded for
//! that purpose. What the media service says of attachments is kept with the message.

use mzchat_proto::media::{GetFileInfoRequest, GetFileInfoResponse, UploadPurpose};

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
        let mut attachments = Vec::with_capacity(file_ids.len());
        for file_id in file_ids {
            let info = self.file_info(file_id, "attachment").await?;
            check_own(&info, file_id, author_id, "attachment")?;
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

    /// A guild icon must be the caller's own upload made as a guild icon.
    pub(crate) async fn check_icon(&self, caller_id: &str, file_id: &str) -> Result<()> {
        let info = self.file_info(file_id, "icon").await?;
        check_own(&info, file_id, caller_id, "icon")?;
        if info.purpose != UploadPurpose::GuildIcon as i32 {
            return Err(invalid(format!(
                "{file_id} was not uploaded as a guild icon"
            )));
        }
        Ok(())
    }

    /// What media says of a file; `what` names it in errors.
    async fn file_info(&self, file_id: &str, what: &str) -> Result<GetFileInfoResponse> {
        let no_media = || {
            GuildError::FailedPrecondition(format!(
                "this server runs no media service, so it cannot take an {what} file"
            ))
        };
        let media = self.media.as_ref().ok_or_else(no_media)?;
        let mut request = tonic::Request::new(GetFileInfoRequest {
            file_id: file_id.to_owned(),
        });
        self.internal.attach(&mut request);
        match media.clone().get_file_info(request).await {
            Ok(info) => Ok(info.into_inner()),
            Err(status) if status.code() == tonic::Code::NotFound => Err(invalid(format!(
                "{what} {file_id} is not a file on this server"
            ))),
            Err(status) if status.code() == tonic::Code::Unimplemented => Err(no_media()),
            Err(status) => {
                tracing::warn!(%status, "media service unavailable for a file check");
                Err(GuildError::Unavailable(format!(
                    "the {what} cannot be checked right now; try again"
                )))
            }
        }
    }
}

fn check_own(info: &GetFileInfoResponse, file_id: &str, user_id: &str, what: &str) -> Result<()> {
    if !info.complete {
        return Err(invalid(format!("{what} {file_id} is not complete")));
    }
    if info.owner_id != user_id {
        return Err(GuildError::PermissionDenied(format!(
            "{what} {file_id} is not your upload"
        )));
    }
    Ok(())
}
