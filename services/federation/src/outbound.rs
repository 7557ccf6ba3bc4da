//! Calls to other homeservers: one lazily connected channel per destination, every call signed
//! (PROTOCOL.md section 7) by identity, which holds the server key. Errors are sorted into what
//! the destination answered and what says nothing about it (our own signer being down).

use std::{collections::HashMap, sync::Mutex, time::Duration};

use mzchat_platform::{Origin, federation::s2s, grpc::InternalAuth};
use mzchat_proto::{
    federation::{
        identity_federation_service_client::IdentityFederationServiceClient,
        push_federation_service_client::PushFederationServiceClient,
    },
    identity::{
        GetServerInfoRequest, GetServerInfoResponse, SignServerCallRequest,
        server_info_service_client::ServerInfoServiceClient,
        server_key_internal_service_client::ServerKeyInternalServiceClient,
    },
};
use sha2::{Digest, Sha256};
use tonic::{
    Request, Status,
    metadata::MetadataValue,
    transport::{Channel, ClientTlsConfig, Endpoint},
};

pub const VERIFY_USER: &str = "/mzchat.federation.v1.IdentityFederationService/VerifyUser";
pub const UPDATE_HOME_SERVER: &str =
    "/mzchat.federation.v1.IdentityFederationService/UpdateHomeServer";
pub const PROPAGATE_BAN: &str = "/mzchat.federation.v1.IdentityFederationService/PropagateBan";
pub const PUSH_NOTIFICATION: &str = "/mzchat.federation.v1.PushFederationService/PushNotification";

/// Destinations with a kept channel; beyond this the map starts afresh.
const MAX_CHANNELS: usize = 4096;

/// Why a call did not produce an answer from the destination.
#[derive(Debug)]
pub enum CallError {
    /// The destination answered with this status (or could not be reached: a transport error
    /// arrives as UNAVAILABLE).
    Remote(Status),
    /// This server could not sign the call; the destination is not to blame.
    Local(String),
}

/// Largest answer taken from another server: its results are relayed on the bus and stored,
/// so a hostile server must not hand over megabytes (VerifyUser answers are a few KiB).
const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// Largest GetServerInfo answer: a description and a handful of keys.
const MAX_SERVER_INFO_BYTES: usize = 64 * 1024;

pub struct Outbound {
    signer: ServerKeyInternalServiceClient<Channel>,
    auth: InternalAuth,
    channels: Mutex<HashMap<Origin, Channel>>,
    call_timeout: Duration,
}

impl Outbound {
    pub fn new(
        identity_internal_url: &str,
        auth: InternalAuth,
        call_timeout: Duration,
    ) -> Result<Self, String> {
        let signer = Endpoint::from_shared(identity_internal_url.to_owned())
            .map_err(|e| format!("identity internal url {identity_internal_url}: {e}"))?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .connect_lazy();
        Ok(Self {
            signer: ServerKeyInternalServiceClient::new(signer),
            auth,
            channels: Mutex::new(HashMap::new()),
            call_timeout,
        })
    }

    fn channel(&self, destination: &Origin) -> Result<Channel, CallError> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(channel) = channels.get(destination) {
            return Ok(channel.clone());
        }
        let mut endpoint = Endpoint::from_shared(destination.to_string())
            .map_err(|e| CallError::Local(format!("destination {destination}: {e}")))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(self.call_timeout)
            .tcp_nodelay(true);
        if destination.is_https() {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().with_native_roots())
                .map_err(|e| CallError::Local(format!("tls for {destination}: {e}")))?;
        }
        let channel = endpoint.connect_lazy();
        if channels.len() >= MAX_CHANNELS {
            // Lazily connected: dropping them costs only a reconnect on next use.
            channels.clear();
        }
        channels.insert(destination.clone(), channel.clone());
        Ok(channel)
    }

    /// Wraps `message` in a request carrying the signed s2s metadata and the trace context.
    async fn signed<M: prost::Message>(
        &self,
        destination: &Origin,
        path: &str,
        message: M,
    ) -> Result<Request<M>, CallError> {
        let timestamp = mzchat_platform::db::now_millis() / 1000;
        let mut sign = Request::new(SignServerCallRequest {
            method_path: path.to_owned(),
            destination: destination.to_string(),
            timestamp,
            request_sha256: Sha256::digest(message.encode_to_vec()).to_vec(),
        });
        self.auth.attach(&mut sign);
        let signed = self
            .signer
            .clone()
            .sign_server_call(sign)
            .await
            .map_err(|s| CallError::Local(format!("signing: {}", s.message())))?
            .into_inner();
        let mut request = Request::new(message);
        let metadata = request.metadata_mut();
        let values = [
            (s2s::ORIGIN, signed.origin),
            (s2s::DESTINATION, destination.to_string()),
            (s2s::TIMESTAMP, timestamp.to_string()),
            (s2s::KEY_ID, signed.key_id),
            (s2s::SIGNATURE, s2s::encode_signature(&signed.signature)),
        ];
        for (name, value) in values {
            let value = MetadataValue::try_from(value.as_str())
                .map_err(|_| CallError::Local(format!("{name} is not valid metadata")))?;
            metadata.insert(name, value);
        }
        for (name, value) in mzchat_platform::telemetry::current_trace_headers() {
            if let (Ok(name), Ok(value)) = (
                tonic::metadata::AsciiMetadataKey::from_bytes(name.as_bytes()),
                MetadataValue::try_from(value.as_str()),
            ) {
                metadata.insert(name, value);
            }
        }
        Ok(request)
    }

    pub async fn verify_user(
        &self,
        destination: &Origin,
        request: mzchat_proto::federation::VerifyUserRequest,
    ) -> Result<mzchat_proto::federation::VerifyUserResponse, CallError> {
        let request = self.signed(destination, VERIFY_USER, request).await?;
        let mut client = IdentityFederationServiceClient::new(self.channel(destination)?)
            .max_decoding_message_size(MAX_ANSWER_BYTES);
        client
            .verify_user(request)
            .await
            .map(|r| r.into_inner())
            .map_err(CallError::Remote)
    }

    pub async fn update_home_server(
        &self,
        destination: &Origin,
        request: mzchat_proto::federation::UpdateHomeServerRequest,
    ) -> Result<(), CallError> {
        let request = self
            .signed(destination, UPDATE_HOME_SERVER, request)
            .await?;
        let mut client = IdentityFederationServiceClient::new(self.channel(destination)?)
            .max_decoding_message_size(MAX_ANSWER_BYTES);
        client
            .update_home_server(request)
            .await
            .map(|_| ())
            .map_err(CallError::Remote)
    }

    pub async fn propagate_ban(
        &self,
        destination: &Origin,
        request: mzchat_proto::federation::PropagateBanRequest,
    ) -> Result<(), CallError> {
        let request = self.signed(destination, PROPAGATE_BAN, request).await?;
        let mut client = IdentityFederationServiceClient::new(self.channel(destination)?)
            .max_decoding_message_size(MAX_ANSWER_BYTES);
        client
            .propagate_ban(request)
            .await
            .map(|_| ())
            .map_err(CallError::Remote)
    }

    pub async fn push_notification(
        &self,
        destination: &Origin,
        request: mzchat_proto::federation::PushNotificationRequest,
    ) -> Result<(), CallError> {
        let request = self.signed(destination, PUSH_NOTIFICATION, request).await?;
        let mut client = PushFederationServiceClient::new(self.channel(destination)?)
            .max_decoding_message_size(MAX_ANSWER_BYTES);
        client
            .push_notification(request)
            .await
            .map(|_| ())
            .map_err(CallError::Remote)
    }

    /// A server's public description (unauthenticated): where its keys come from.
    pub async fn server_info(&self, origin: &Origin) -> Result<GetServerInfoResponse, CallError> {
        let mut client = ServerInfoServiceClient::new(self.channel(origin)?)
            .max_decoding_message_size(MAX_SERVER_INFO_BYTES);
        client
            .get_server_info(GetServerInfoRequest {})
            .await
            .map(|r| r.into_inner())
            .map_err(CallError::Remote)
    }
}
