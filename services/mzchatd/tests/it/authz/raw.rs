//! Calls by path with the request as bytes: the sweep needs no generated client per service.

use std::time::Duration;

use bytes::{Buf, BufMut};
use tonic::{
    Code, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::http::uri::PathAndQuery,
    transport::Channel,
};

#[derive(Debug, Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let bytes = buf.copy_to_bytes(buf.remaining());
        Ok(Some(bytes.to_vec()))
    }
}

/// Calls `path` (`package.Service/Method`) with `body`, as `bearer` if given; the status code
/// of the answer. A stream counts as answered OK once it stays open without an error.
pub async fn call(
    channel: Channel,
    path: &str,
    streaming: bool,
    body: Vec<u8>,
    bearer: Option<&str>,
) -> Code {
    let mut grpc = tonic::client::Grpc::new(channel);
    if grpc.ready().await.is_err() {
        return Code::Unavailable;
    }
    let mut request = tonic::Request::new(body);
    if let Some(token) = bearer {
        let value = format!("Bearer {token}").parse().expect("header value");
        request.metadata_mut().insert("authorization", value);
    }
    let path: PathAndQuery = format!("/{path}").parse().expect("path");
    if !streaming {
        return match grpc.unary(request, path, Raw).await {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        };
    }
    match grpc.server_streaming(request, path, Raw).await {
        Ok(response) => {
            let mut stream = response.into_inner();
            match tokio::time::timeout(Duration::from_secs(1), stream.message()).await {
                Ok(Err(status)) => status.code(),
                Ok(Ok(_)) | Err(_) => Code::Ok,
            }
        }
        Err(status) => status.code(),
    }
}
