//! MediaService and MediaInternalService: proto in, app calls, proto out.

use std::sync::Arc;

use mzchat_platform::{
    error::to_status,
    rate_limit::{Limit, RateLimiter},
    session_keys::SessionKeys,
    session_token::Claims,
};
use mzchat_proto::media::{
    AbortUploadRequest, AbortUploadResponse, CompleteUploadRequest, CompleteUploadResponse,
    DeleteFileRequest, DeleteFileResponse, File as PbFile, GetFileInfoRequest, GetFileInfoResponse,
    GetFileRequest, GetFileResponse, GetUploadRequest, GetUploadResponse, StartUploadRequest,
    StartUploadResponse, Upload as PbUpload, UploadChunkRequest, UploadChunkResponse,
    media_internal_service_server::MediaInternalService, media_service_server::MediaService,
};
use tonic::{Request, Response, Status};

use crate::{
    app::{ChunkUpload, MediaApp, NewUpload},
    store::files::File,
};

fn timestamp(ms: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    })
}

/// Runs a call that changes the store and the database together on its own task, so a client
/// that goes away mid-call cannot leave one done and the other not.
async fn to_end<T: Send + 'static>(
    call: impl std::future::Future<Output = Result<T, crate::MediaError>> + Send + 'static,
) -> Result<T, Status> {
    tokio::spawn(call)
        .await
        .map_err(|_| Status::internal("the call failed; try again"))?
        .map_err(|e| to_status(&e))
}

pub struct MediaGrpc {
    app: Arc<MediaApp>,
    keys: Arc<SessionKeys>,
    rate: Arc<RateLimiter>,
}

impl MediaGrpc {
    pub fn new(app: Arc<MediaApp>, keys: Arc<SessionKeys>, rate: Arc<RateLimiter>) -> Self {
        Self { app, keys, rate }
    }

    async fn caller<T>(&self, request: &Request<T>) -> Result<Claims, Status> {
        self.keys.caller(request).await
    }

    fn file(&self, f: &File) -> PbFile {
        PbFile {
            file_id: f.file_id.clone(),
            content_type: f.content_type.clone(),
            size: f.size as u64,
            url: self.app.url_of(&f.file_id),
            file_name: f.file_name.clone(),
            purpose: f.purpose,
            owner_id: f.owner_id.clone(),
            created_at: timestamp(f.created_at),
        }
    }
}

#[tonic::async_trait]
impl MediaService for MediaGrpc {
    async fn start_upload(
        &self,
        request: Request<StartUploadRequest>,
    ) -> Result<Response<StartUploadResponse>, Status> {
        let caller = self.caller(&request).await?;
        let device = format!("{}/{}", caller.sub, caller.did);
        self.rate.check(Limit::Upload, &device).await?;
        let r = request.into_inner();
        let new = NewUpload {
            file_name: r.file_name,
            content_type: r.content_type,
            size: r.size,
            chunk_size: r.chunk_size,
            chunk_count: r.chunk_count,
            purpose: r.purpose,
        };
        let app = self.app.clone();
        let upload = to_end(async move { app.start_upload(&caller.sub, new).await }).await?;
        Ok(Response::new(StartUploadResponse {
            upload_id: upload.id,
            chunk_size: upload.chunk_size as u32,
            expires_at: timestamp(upload.expires_at),
        }))
    }

    async fn upload_chunk(
        &self,
        request: Request<UploadChunkRequest>,
    ) -> Result<Response<UploadChunkResponse>, Status> {
        let caller = self.caller(&request).await?;
        let r = request.into_inner();
        self.app
            .upload_chunk(
                &caller.sub,
                ChunkUpload {
                    upload_id: r.upload_id,
                    index: r.index,
                    sha256: r.sha256,
                    data: r.data.into(),
                },
            )
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(UploadChunkResponse {}))
    }

    async fn complete_upload(
        &self,
        request: Request<CompleteUploadRequest>,
    ) -> Result<Response<CompleteUploadResponse>, Status> {
        let caller = self.caller(&request).await?;
        let r = request.into_inner();
        let app = self.app.clone();
        let file = to_end(async move {
            app.complete_upload(&caller.sub, &r.upload_id, &r.sha256)
                .await
        })
        .await?;
        Ok(Response::new(CompleteUploadResponse {
            file: Some(self.file(&file)),
        }))
    }

    async fn abort_upload(
        &self,
        request: Request<AbortUploadRequest>,
    ) -> Result<Response<AbortUploadResponse>, Status> {
        let caller = self.caller(&request).await?;
        self.app
            .abort_upload(&caller.sub, &request.get_ref().upload_id)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(AbortUploadResponse {}))
    }

    async fn get_upload(
        &self,
        request: Request<GetUploadRequest>,
    ) -> Result<Response<GetUploadResponse>, Status> {
        let caller = self.caller(&request).await?;
        let state = self
            .app
            .upload_state(&caller.sub, &request.get_ref().upload_id)
            .await
            .map_err(|e| to_status(&e))?;
        let u = state.upload;
        Ok(Response::new(GetUploadResponse {
            upload: Some(PbUpload {
                upload_id: u.id,
                file_name: u.file_name,
                content_type: u.declared_type,
                size: u.size as u64,
                chunk_size: u.chunk_size as u32,
                chunk_count: u.chunk_count as u32,
                purpose: u.purpose,
                received_chunks: state.received,
                expires_at: timestamp(u.expires_at),
            }),
        }))
    }

    async fn get_file(
        &self,
        request: Request<GetFileRequest>,
    ) -> Result<Response<GetFileResponse>, Status> {
        self.caller(&request).await?;
        let file = self
            .app
            .file(&request.get_ref().file_id)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(GetFileResponse {
            file: Some(self.file(&file)),
        }))
    }

    async fn delete_file(
        &self,
        request: Request<DeleteFileRequest>,
    ) -> Result<Response<DeleteFileResponse>, Status> {
        let caller = self.caller(&request).await?;
        self.app
            .delete_file(&caller.sub, &request.get_ref().file_id)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(DeleteFileResponse {}))
    }
}

/// Internal: mounted behind the internal credential check.
pub struct MediaInternalGrpc {
    app: Arc<MediaApp>,
}

impl MediaInternalGrpc {
    pub fn new(app: Arc<MediaApp>) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl MediaInternalService for MediaInternalGrpc {
    async fn get_file_info(
        &self,
        request: Request<GetFileInfoRequest>,
    ) -> Result<Response<GetFileInfoResponse>, Status> {
        let file = self
            .app
            .file(&request.get_ref().file_id)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(GetFileInfoResponse {
            url: self.app.url_of(&file.file_id),
            owner_id: file.owner_id,
            complete: true,
            content_type: file.content_type,
            size: file.size as u64,
            purpose: file.purpose,
            file_name: file.file_name,
        }))
    }
}
