//! Mentions become pushes (PROTOCOL.md section 9): for each message that mentions someone, the
//! guild service names who to notify (members who can view the channel, with no live stream
//! here); each of their devices with a distributor gets one queued push.

use std::time::Duration;

use mzchat_platform::{federation::jobs, grpc::InternalAuth, outbox::Outbox};
use mzchat_proto::{
    federation::{PushKind, PushNotificationJob, PushPayload, federation_job::Kind},
    guild::{
        Event, ListPushTargetsRequest, event::Payload,
        guild_internal_service_client::GuildInternalServiceClient,
    },
};
use sea_orm::DatabaseConnection;
use tonic::transport::Channel;

use crate::store::{deliveries, held_tokens, registrations};

/// A push is worth delivering this long (RFC 8030 TTL; PROTOCOL.md section 7).
pub const PUSH_TTL_MS: i64 = 10 * 60_000;

pub struct Mentions {
    db: DatabaseConnection,
    outbox: Outbox,
    guild: GuildInternalServiceClient<Channel>,
    auth: InternalAuth,
    origin: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MentionError {
    #[error("guild service: {0}")]
    Guild(String),
    #[error(transparent)]
    Store(#[from] sea_orm::DbErr),
}

/// Longest sender name a notice carries.
const MAX_SENDER_NAME_CHARS: usize = 64;

/// The notice a device receives: where to look and who wrote, never what was said.
pub(crate) fn notice(payload: &PushPayload) -> Vec<u8> {
    let kind = match PushKind::try_from(payload.kind) {
        Ok(PushKind::MentionEveryone) => "MENTION_EVERYONE",
        _ => "MENTION",
    };
    let sender: String = payload
        .sender_display_name
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_SENDER_NAME_CHARS)
        .collect();
    serde_json::json!({
        "origin": payload.origin,
        "guild_id": payload.guild_id,
        "channel_id": payload.channel_id,
        "message_id": payload.message_id,
        "sender_display_name": sender,
        "kind": kind,
        "sent_at": payload.sent_at.map_or(0, |t| t.seconds),
    })
    .to_string()
    .into_bytes()
}

impl Mentions {
    /// Queues a PushNotification to the user's home server with the token it gave this server;
    /// false when none is held yet (the home server has not answered VerifyUser).
    async fn relay(
        &self,
        user_id: &str,
        home_server: &str,
        payload: PushPayload,
        now_ms: i64,
    ) -> Result<bool, MentionError> {
        let held = held_tokens::of_user(&self.db, user_id)
            .await?
            .filter(|h| h.home_server == home_server && h.expires_at > now_ms / 1000);
        let Some(held) = held else {
            tracing::debug!(%user_id, %home_server, "no delegation token held for a push; skipped");
            return Ok(false);
        };
        let job = PushNotificationJob {
            delegation_token: Some(held.token),
            payload: Some(payload),
        };
        let job = jobs::new_job(home_server, Kind::PushNotification(job));
        self.outbox.enqueue(&self.db, jobs::job_event(&job)).await?;
        self.outbox.wake();
        Ok(true)
    }

    pub fn new(
        db: DatabaseConnection,
        outbox: Outbox,
        guild_url: &str,
        auth: InternalAuth,
        origin: String,
    ) -> Result<Self, String> {
        let channel = tonic::transport::Endpoint::from_shared(guild_url.to_owned())
            .map_err(|e| format!("guild internal url {guild_url}: {e}"))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .connect_lazy();
        Ok(Self {
            db,
            outbox,
            guild: GuildInternalServiceClient::new(channel),
            auth,
            origin,
        })
    }

    /// Queues the pushes one `message.created` event calls for; returns how many.
    pub async fn on_event(&self, event: &Event) -> Result<usize, MentionError> {
        let Some(Payload::MessageCreated(created)) = &event.payload else {
            return Ok(0);
        };
        let Some(message) = &created.message else {
            return Ok(0);
        };
        if message.mention_user_ids.is_empty() && !message.mention_everyone {
            return Ok(0);
        }
        let mut request = tonic::Request::new(ListPushTargetsRequest {
            guild_id: message.guild_id.clone(),
            channel_id: message.channel_id.clone(),
            user_ids: message.mention_user_ids.clone(),
            everyone: message.mention_everyone,
            author_id: message.author_id.clone(),
        });
        self.auth.attach(&mut request);
        let (targets, author_name) = match self.guild.clone().list_push_targets(request).await {
            Ok(response) => {
                let response = response.into_inner();
                (response.targets, response.author_display_name)
            }
            // The guild or channel is gone already: nobody to tell.
            Err(status) if status.code() == tonic::Code::NotFound => return Ok(0),
            Err(status) => return Err(MentionError::Guild(status.message().to_owned())),
        };
        let now = mzchat_platform::db::now_millis();
        let mut queued = 0;
        for target in targets {
            let kind = if message.mention_user_ids.contains(&target.user_id) {
                PushKind::Mention
            } else {
                PushKind::MentionEveryone
            };
            let payload = PushPayload {
                origin: self.origin.clone(),
                guild_id: message.guild_id.clone(),
                channel_id: message.channel_id.clone(),
                message_id: message.id.clone(),
                sender_display_name: author_name.clone(),
                kind: kind as i32,
                sent_at: message.created_at,
            };
            if target.home_server != self.origin {
                let relayed = self
                    .relay(&target.user_id, &target.home_server, payload, now)
                    .await?;
                queued += usize::from(relayed);
                continue;
            }
            let payload = notice(&payload);
            for distributor in registrations::distributors_of(&self.db, &target.user_id).await? {
                let delivery = deliveries::Delivery {
                    id: uuid::Uuid::now_v7().to_string(),
                    message_id: message.id.clone(),
                    user_id: target.user_id.clone(),
                    device_id: distributor.device_id,
                    endpoint_url: distributor.endpoint_url,
                    p256dh: distributor.p256dh,
                    auth: distributor.auth,
                    payload: payload.clone(),
                    state: deliveries::PENDING.into(),
                    attempts: 0,
                    next_attempt_at: now,
                    lease_until: None,
                    lease_token: None,
                    expires_at: now + PUSH_TTL_MS,
                    last_result: String::new(),
                    created_at: now,
                    updated_at: now,
                };
                if deliveries::enqueue(&self.db, &delivery).await? {
                    queued += 1;
                }
            }
        }
        Ok(queued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notice_names_the_message_and_escapes_the_sender() {
        let payload = PushPayload {
            origin: "https://b.example".into(),
            guild_id: "g".into(),
            channel_id: "c".into(),
            message_id: "m".into(),
            sender_display_name: "Ada \"the\" Countess\n".into(),
            kind: PushKind::Mention as i32,
            sent_at: Some(prost_types::Timestamp {
                seconds: 7,
                nanos: 0,
            }),
        };
        let body: serde_json::Value =
            serde_json::from_slice(&notice(&payload)).expect("valid JSON");
        assert_eq!(body["message_id"], "m");
        assert_eq!(body["sender_display_name"], "Ada \"the\" Countess");
        assert_eq!(body["kind"], "MENTION");
        assert_eq!(body["sent_at"], 7);
    }
}
