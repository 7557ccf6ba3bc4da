//! The push relay between homeservers (PROTOCOL.md sections 7 and 9). On a guild's server: the
//! delegation tokens users' home servers hand out in VerifyUser answers are kept, so a mention
//! of a user homed elsewhere becomes a PushNotification job to their home. On the home server:
//! an inbound PushNotification is accepted only with a token this server signed, for the
//! calling server, unexpired and not revoked, within the caller's rate, and then queued for the
//! user's devices like a local push.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use ed25519_dalek::VerifyingKey;
use mzchat_platform::{
    Origin,
    grpc::InternalAuth,
    rate_limit::{Limit, RateLimiter},
};
use mzchat_proto::{
    common::{PushDelegationToken, SignedStatement},
    federation::{
        FederationResult, PushKind, PushNotificationRequest, PushPayload,
        federation_result::Result as Outcome,
    },
    identity::{
        CheckDelegationRequest, GetServerInfoRequest,
        server_info_service_client::ServerInfoServiceClient,
        server_key_internal_service_client::ServerKeyInternalServiceClient,
    },
    signing,
};
use prost::Message;
use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::Notify;
use tonic::{Status, transport::Channel};

use crate::{
    mentions::notice,
    store::{deliveries, held_tokens},
};

pub struct Relay {
    db: DatabaseConnection,
    origin: Origin,
    info: ServerInfoServiceClient<Channel>,
    identity: ServerKeyInternalServiceClient<Channel>,
    auth: InternalAuth,
    own_keys: tokio::sync::Mutex<(Vec<VerifyingKey>, Option<Instant>)>,
    wake: Arc<Notify>,
    /// How long a relayed push is worth delivering.
    ttl_ms: i64,
    /// Pushes each other server may relay (`push.relay`, per origin).
    rate: Arc<RateLimiter>,
}

fn seconds(ts: Option<prost_types::Timestamp>) -> i64 {
    ts.map_or(0, |t| t.seconds)
}

/// An id from another server used in a notice: a UUID, nothing else.
fn uuid_text(text: &str) -> Result<String, Status> {
    uuid::Uuid::parse_str(text)
        .map(|id| id.to_string())
        .map_err(|_| Status::invalid_argument("payload ids must be UUIDs"))
}

impl Relay {
    pub fn new(
        db: DatabaseConnection,
        origin: Origin,
        identity_url: &str,
        auth: InternalAuth,
        wake: Arc<Notify>,
        settings: &crate::PushSettings,
        rate: Arc<RateLimiter>,
    ) -> Result<Self, String> {
        let channel = tonic::transport::Endpoint::from_shared(identity_url.to_owned())
            .map_err(|e| format!("identity url {identity_url}: {e}"))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .connect_lazy();
        Ok(Self {
            db,
            origin,
            info: ServerInfoServiceClient::new(channel.clone()),
            identity: ServerKeyInternalServiceClient::new(channel),
            auth,
            own_keys: tokio::sync::Mutex::new((Vec::new(), None)),
            wake,
            ttl_ms: crate::config::millis(settings.ttl),
            rate,
        })
    }

    /// Keeps the delegation token a home server gave in a VerifyUser answer.
    pub async fn hold(&self, result: &FederationResult) -> Result<(), DbErr> {
        let Some(Outcome::UserVerified(verified)) = &result.result else {
            return Ok(());
        };
        let Some(token) = &verified.delegation_token else {
            return Ok(());
        };
        let Ok(body) = PushDelegationToken::decode(token.body.as_slice()) else {
            return Ok(());
        };
        // The home server checks the signature when the token comes back; here it must at least
        // be for this server and this user.
        if body.audience != self.origin.as_str() || body.user_id != verified.user_id {
            tracing::warn!(user_id = %verified.user_id, origin = %result.origin, "delegation token for someone else ignored");
            return Ok(());
        }
        let held = held_tokens::Held {
            home_server: result.origin.clone(),
            token: token.clone(),
            expires_at: seconds(body.expires_at),
        };
        held_tokens::keep(
            &self.db,
            &verified.user_id,
            &held,
            mzchat_platform::db::now_millis(),
        )
        .await
    }

    /// This server's published server keys, fetched again when none verifies (a rotation), at
    /// most once a second.
    async fn verify_token(
        &self,
        statement: &SignedStatement,
    ) -> Result<PushDelegationToken, Status> {
        let mut keys = self.own_keys.lock().await;
        for attempt in 0..2 {
            if let Some(token) = keys.0.iter().find_map(|k| {
                signing::verify::<PushDelegationToken>(k, signing::PUSH_DELEGATION_TOKEN, statement)
                    .ok()
            }) {
                return Ok(token);
            }
            let recently = keys
                .1
                .is_some_and(|at| at.elapsed() < Duration::from_secs(1));
            if attempt == 1 || recently {
                break;
            }
            let info = self
                .info
                .clone()
                .get_server_info(GetServerInfoRequest {})
                .await
                .map_err(|_| Status::unavailable("this server's keys cannot be read right now"))?
                .into_inner();
            keys.0 = info
                .server_keys
                .iter()
                .filter_map(|k| {
                    VerifyingKey::from_bytes(k.public_key.as_slice().try_into().ok()?).ok()
                })
                .collect();
            keys.1 = Some(Instant::now());
        }
        Err(Status::permission_denied(
            "delegation token is not signed by this server's key",
        ))
    }

    /// An inbound PushNotification from `caller`; returns how many devices were queued.
    pub async fn receive(
        &self,
        caller: &Origin,
        request: PushNotificationRequest,
    ) -> Result<usize, Status> {
        self.rate.check(Limit::PushRelay, caller.as_str()).await?;
        let statement = request
            .delegation_token
            .ok_or_else(|| Status::invalid_argument("delegation_token is required"))?;
        let payload = request
            .payload
            .ok_or_else(|| Status::invalid_argument("payload is required"))?;
        let token = self.verify_token(&statement).await?;
        let now = mzchat_platform::db::now_millis();
        if token.issuer != self.origin.as_str() || token.audience != caller.as_str() {
            return Err(Status::permission_denied(
                "delegation token was not issued by this server to the calling server",
            ));
        }
        if seconds(token.expires_at) <= now / 1000 {
            return Err(Status::permission_denied("delegation token has expired"));
        }
        let mut check = tonic::Request::new(CheckDelegationRequest {
            token_id: token.token_id.clone(),
            user_id: token.user_id.clone(),
            audience: token.audience.clone(),
        });
        self.auth.attach(&mut check);
        let valid = self
            .identity
            .clone()
            .check_delegation(check)
            .await
            .map_err(|_| Status::unavailable("delegation tokens cannot be checked right now"))?
            .into_inner()
            .valid;
        if !valid {
            return Err(Status::permission_denied(
                "delegation token has been revoked",
            ));
        }
        if payload.origin != caller.as_str() {
            return Err(Status::invalid_argument(
                "payload origin must be the calling server",
            ));
        }
        let kind = match PushKind::try_from(payload.kind) {
            Ok(PushKind::MentionEveryone) => PushKind::MentionEveryone,
            _ => PushKind::Mention,
        };
        let message_id = uuid_text(&payload.message_id)?;
        let body = notice(&PushPayload {
            origin: caller.to_string(),
            guild_id: uuid_text(&payload.guild_id)?,
            channel_id: uuid_text(&payload.channel_id)?,
            message_id: message_id.clone(),
            sender_display_name: payload.sender_display_name,
            kind: kind as i32,
            sent_at: payload.sent_at,
        });
        // Unique per origin, so two servers' ids never collide.
        let message_id = format!("{caller}/{message_id}");
        let queued = deliveries::enqueue_for_user(
            &self.db,
            &message_id,
            &token.user_id,
            &body,
            now,
            self.ttl_ms,
        )
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "push storage error");
            Status::unavailable("pushes cannot be queued right now")
        })?;
        if queued > 0 {
            self.wake.notify_one();
        }
        Ok(queued)
    }
}
