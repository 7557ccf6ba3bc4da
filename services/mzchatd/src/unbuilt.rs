//! Services whose implementation has not landed yet. They are mounted so that clients and
//! `grpcurl` see the whole API, and every method answers UNIMPLEMENTED (the generated default).

use mzchat_platform::grpc::{GrpcServer, InternalAuth};
use mzchat_proto::media::{
    media_internal_service_server::{MediaInternalService, MediaInternalServiceServer},
    media_service_server::{MediaService, MediaServiceServer},
};

pub struct Unbuilt;

impl MediaService for Unbuilt {}
impl MediaInternalService for Unbuilt {}

pub fn mount_media(server: &mut GrpcServer, internal: &InternalAuth) {
    server
        .add_service(MediaServiceServer::new(Unbuilt))
        .add_service(MediaInternalServiceServer::with_interceptor(
            Unbuilt,
            internal.clone(),
        ));
}
