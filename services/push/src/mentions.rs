//! Mentions become pushes (PROTOCOL.md section 9): for each message that mentions someone, the
//! guild service names who to notify (members who can view the channel, with no live stream
//! here); each of their devices with a route gets one queued push, and users homed elsewhere
//! get a PushNotification job to their home server. MENTION_EVERYONE is a fan-out worked
//! through a page of members at a time, on its own task, so a large guild blocks nothing else.

use std::{collections::HashSet, sync::Arc, time::Duration};

use mzchat_platform::{federation::jobs, grpc::InternalAuth, outbox::Outbox};
use mzchat_proto::{
    federation::{PushKind, PushNotificationJob, PushPayload, federation_job::Kind},
    guild::{
        Event, ListPushTargetsRequest, ListPushTargetsResponse, event::Payload,
        guild_internal_service_client::GuildInternalServiceClient,
    },
};
use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::store::{
    deliveries,
    fanouts::{self, Fanout},
    held_tokens,
};

const FANOUT_POLL: Duration = Duration::from_secs(1);
/// A page the guild service could not answer is tried again this much later.
const FANOUT_RETRY_MS: i64 = 2_000;

pub struct Mentions {
    db: DatabaseConnection,
    outbox: Outbox,
    guild: GuildInternalServiceClient<Channel>,
    auth: InternalAuth,
    origin: String,
    /// How long a push is worth delivering (RFC 8030 TTL), relayed ones included.
    ttl_ms: i64,
    /// Members per MENTION_EVERYONE page.
    page: u32,
    sender_wake: Arc<Notify>,
    fanout_wake: Arc<Notify>,
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

/// A message that mentions someone, as the pushes about it need it.
struct Mentioned {
    guild_id: String,
    channel_id: String,
    message_id: String,
    author_id: String,
    /// Seconds since the epoch.
    sent_at: i64,
    /// Users the message named (their notice says MENTION; everyone else's MENTION_EVERYONE).
    named: HashSet<String>,
}

impl Mentioned {
    fn of_fanout(f: &Fanout) -> Self {
        Self {
            guild_id: f.guild_id.clone(),
            channel_id: f.channel_id.clone(),
            message_id: f.message_id.clone(),
            author_id: f.author_id.clone(),
            sent_at: f.sent_at,
            named: f.mentioned.lines().map(str::to_owned).collect(),
        }
    }
}

impl Mentions {
    pub fn new(
        db: DatabaseConnection,
        outbox: Outbox,
        guild_url: &str,
        auth: InternalAuth,
        origin: String,
        settings: &crate::PushSettings,
        sender_wake: Arc<Notify>,
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
            ttl_ms: crate::config::millis(settings.ttl),
            page: settings.fanout_page,
            sender_wake,
            fanout_wake: Arc::new(Notify::new()),
        })
    }

    /// Queues the pushes one `message.created` event calls for: named users at once;
    /// MENTION_EVERYONE as a fan-out that `run_fanouts` works through page by page.
    pub async fn on_event(&self, event: &Event) -> Result<(), MentionError> {
        let Some(Payload::MessageCreated(created)) = &event.payload else {
            return Ok(());
        };
        let Some(message) = &created.message else {
            return Ok(());
        };
        if message.mention_user_ids.is_empty() && !message.mention_everyone {
            return Ok(());
        }
        let now = mzchat_platform::db::now_millis();
        let sent_at = message.created_at.map_or(now / 1000, |t| t.seconds);
        if message.mention_everyone {
            let fanout = Fanout {
                message_id: message.id.clone(),
                guild_id: message.guild_id.clone(),
                channel_id: message.channel_id.clone(),
                author_id: message.author_id.clone(),
                mentioned: message.mention_user_ids.join("\n"),
                sent_at,
                after_user_id: String::new(),
                next_attempt_at: now,
                lease_until: None,
                lease_token: None,
                created_at: now,
            };
            if fanouts::start(&self.db, fanout).await? {
                self.fanout_wake.notify_one();
            }
            return Ok(());
        }
        let mentioned = Mentioned {
            guild_id: message.guild_id.clone(),
            channel_id: message.channel_id.clone(),
            message_id: message.id.clone(),
            author_id: message.author_id.clone(),
            sent_at,
            named: message.mention_user_ids.iter().cloned().collect(),
        };
        let Some(answer) = self.targets(&mentioned, None).await? else {
            return Ok(());
        };
        let txn = self.db.begin().await?;
        let queued = self
            .push_page(&txn, &mentioned, answer, now, self.ttl_ms)
            .await?;
        txn.commit().await?;
        self.woken(queued);
        Ok(())
    }

    /// Works through MENTION_EVERYONE fan-outs, a page of members at a time, until `shutdown`.
    pub async fn run_fanouts(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let token = uuid::Uuid::new_v4().simple().to_string();
            let now = mzchat_platform::db::now_millis();
            let worked = match fanouts::claim(&self.db, now, &token).await {
                Ok(Some(fanout)) => {
                    if let Err(err) = self.fanout_page(&fanout, &token).await {
                        tracing::warn!(error = %err, message_id = %fanout.message_id, "a MENTION_EVERYONE page failed; retrying");
                        let retry_at = mzchat_platform::db::now_millis() + FANOUT_RETRY_MS;
                        if let Err(err) =
                            fanouts::defer(&self.db, &fanout.message_id, &token, retry_at).await
                        {
                            tracing::warn!(error = %err, "cannot defer a fan-out; its lease will run out");
                        }
                    }
                    true
                }
                Ok(None) => false,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read MENTION_EVERYONE fan-outs");
                    false
                }
            };
            if worked && !shutdown.is_cancelled() {
                // Other work (the sender, direct mentions) runs between pages.
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.fanout_wake.notified() => {}
                _ = tokio::time::sleep(FANOUT_POLL) => {}
            }
        }
    }

    async fn fanout_page(&self, fanout: &Fanout, token: &str) -> Result<(), MentionError> {
        let now = mzchat_platform::db::now_millis();
        // Pushes are worth sending within the TTL of the message, however long the fan-out took.
        let ttl_left = fanout.created_at.saturating_add(self.ttl_ms) - now;
        let answer = if ttl_left <= 0 {
            tracing::warn!(message_id = %fanout.message_id, "MENTION_EVERYONE fan-out outlived the push TTL; dropped");
            None
        } else {
            self.targets(&Mentioned::of_fanout(fanout), Some(&fanout.after_user_id))
                .await?
        };
        let txn = self.db.begin().await?;
        let (queued, next) = match answer {
            Some(answer) => {
                let next = Some(answer.next_after_user_id.clone()).filter(|n| !n.is_empty());
                let mentioned = Mentioned::of_fanout(fanout);
                let queued = self
                    .push_page(&txn, &mentioned, answer, now, ttl_left)
                    .await?;
                (queued, next)
            }
            // The guild or channel is gone, or the TTL ran out: nobody left to tell.
            None => (0, None),
        };
        if !fanouts::advance(&txn, &fanout.message_id, token, next.as_deref(), now).await? {
            // Another replica took the fan-out over; its page holds these pushes.
            txn.rollback().await?;
            return Ok(());
        }
        txn.commit().await?;
        self.woken(queued);
        Ok(())
    }

    /// Who to push about the message: the named users, or (with `everyone_after`) the page of
    /// members after that cursor. None when the guild or channel is gone.
    async fn targets(
        &self,
        m: &Mentioned,
        everyone_after: Option<&str>,
    ) -> Result<Option<ListPushTargetsResponse>, MentionError> {
        let mut request = tonic::Request::new(ListPushTargetsRequest {
            guild_id: m.guild_id.clone(),
            channel_id: m.channel_id.clone(),
            user_ids: if everyone_after.is_some() {
                Vec::new()
            } else {
                m.named.iter().cloned().collect()
            },
            everyone: everyone_after.is_some(),
            author_id: m.author_id.clone(),
            after_user_id: everyone_after.unwrap_or_default().to_owned(),
            limit: self.page,
        });
        self.auth.attach(&mut request);
        match self.guild.clone().list_push_targets(request).await {
            Ok(response) => Ok(Some(response.into_inner())),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(MentionError::Guild(status.message().to_owned())),
        }
    }

    /// Queues, in `txn`, the pushes to one answer's targets, worth sending for `ttl_ms`:
    /// delivered here to users homed here, relayed through their home server for the others.
    /// Returns how many.
    async fn push_page(
        &self,
        txn: &DatabaseTransaction,
        m: &Mentioned,
        answer: ListPushTargetsResponse,
        now: i64,
        ttl_ms: i64,
    ) -> Result<usize, MentionError> {
        let mut queued = 0;
        for target in answer.targets {
            let kind = if m.named.contains(&target.user_id) {
                PushKind::Mention
            } else {
                PushKind::MentionEveryone
            };
            let payload = PushPayload {
                origin: self.origin.clone(),
                guild_id: m.guild_id.clone(),
                channel_id: m.channel_id.clone(),
                message_id: m.message_id.clone(),
                sender_display_name: answer.author_display_name.clone(),
                kind: kind as i32,
                sent_at: Some(prost_types::Timestamp {
                    seconds: m.sent_at,
                    nanos: 0,
                }),
            };
            queued += if target.home_server == self.origin {
                deliveries::enqueue_for_user(
                    txn,
                    &m.message_id,
                    &target.user_id,
                    &notice(&payload),
                    now,
                    ttl_ms,
                )
                .await?
            } else {
                let relayed = self
                    .relay(
                        txn,
                        &target.user_id,
                        &target.home_server,
                        payload,
                        now,
                        ttl_ms,
                    )
                    .await?;
                usize::from(relayed)
            };
        }
        Ok(queued)
    }

    /// Queues a PushNotification to the user's home server with the token it gave this server;
    /// false when none is held yet (the home server has not answered VerifyUser).
    async fn relay(
        &self,
        txn: &DatabaseTransaction,
        user_id: &str,
        home_server: &str,
        payload: PushPayload,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, MentionError> {
        let held = held_tokens::of_user(txn, user_id)
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
        let ttl_secs = (ttl_ms / 1000).max(1);
        let job = jobs::new_job_expiring(home_server, Kind::PushNotification(job), ttl_secs);
        self.outbox.enqueue(txn, jobs::job_event(&job)).await?;
        Ok(true)
    }

    /// After a commit: the sender and the outbox relay have work.
    fn woken(&self, queued: usize) {
        if queued > 0 {
            self.sender_wake.notify_one();
            self.outbox.wake();
        }
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
