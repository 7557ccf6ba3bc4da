//! The guild service's use cases: authorise the caller against the guild's current permission
//! version, check permissions, run the store in transactions and enqueue events.

mod access;
mod attachments;
mod cache;
mod caps;
mod channels;
mod guilds;
mod invites;
mod members;
mod message_writer;
mod messages;
mod presence;
pub mod push_targets;
mod recent;
mod roles;
mod stream;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use mzchat_platform::{
    bus::Bus,
    grpc::InternalAuth,
    outbox::{Outbox, OutboxEvent},
    rate_limit::RateLimiter,
    session_token::Claims,
};
use mzchat_proto::guild::event::Payload;
use mzchat_proto::identity::{
    IssueSessionRequest, session_internal_service_client::SessionInternalServiceClient,
    session_service_client::SessionServiceClient,
};
use mzchat_proto::media::media_internal_service_client::MediaInternalServiceClient;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use tonic::transport::Channel;

pub use access::Access;
pub use cache::guild_of;
pub use channels::ChannelChange;
pub use messages::MessageRef;
pub use presence::HEARTBEAT;
pub use roles::RoleChange;
pub use stream::{StreamStart, parse_cursor};

use crate::{config::GuildConfig, domain::Result, events::guild_event, store};

/// The caller of an authenticated call: a verified access token of this server.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: Claims,
}

impl Caller {
    pub fn user_id(&self) -> &str {
        &self.claims.sub
    }

    /// The user and device, as the per-caller rate limits key them.
    pub fn device(&self) -> String {
        format!("{}/{}", self.claims.sub, self.claims.did)
    }
}

/// A fresh access token and its expiry (seconds), or none when identity could not be asked.
#[derive(Debug, Clone, Default)]
pub struct FreshToken {
    pub access_token: String,
    pub expires_at: i64,
}

pub struct GuildApp {
    pub(crate) db: DatabaseConnection,
    pub(crate) config: Arc<GuildConfig>,
    pub(crate) outbox: Outbox,
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) cache: cache::PermissionCache,
    /// The newest events, read once for all of this process's event streams.
    recent: recent::RecentEvents,
    /// Writes message sends in batches (started with the first send).
    writer: std::sync::OnceLock<message_writer::MessageWriter>,
    /// Last typing notice per (user, channel), for the rate limit (per process).
    typing: Mutex<HashMap<(String, String), Instant>>,
    identity: SessionInternalServiceClient<Channel>,
    /// Identity's public session API, for JoinInvite with login.
    pub(crate) sessions: SessionServiceClient<Channel>,
    pub(crate) internal: InternalAuth,
    /// The media service's internal API, when this server has one.
    media: Option<MediaInternalServiceClient<Channel>>,
    pub metrics: crate::metrics::GuildMetrics,
    pub(crate) rate: Arc<RateLimiter>,
}

const MAX_PAGE: u64 = 200;
const DEFAULT_PAGE: u64 = 50;

pub(crate) fn page_size(requested: i32) -> Result<u64> {
    match requested {
        n if n < 0 => Err(crate::domain::invalid("page_size must not be negative")),
        0 => Ok(DEFAULT_PAGE),
        n => Ok((n as u64).min(MAX_PAGE)),
    }
}

pub(crate) fn now() -> i64 {
    mzchat_platform::db::now_millis()
}

impl GuildApp {
    pub fn new(
        db: DatabaseConnection,
        config: Arc<GuildConfig>,
        outbox: Outbox,
        bus: Arc<dyn Bus>,
        identity: Channel,
        internal: InternalAuth,
        rate: Arc<RateLimiter>,
    ) -> Self {
        let media = config.media_internal_url.as_deref().and_then(|url| {
            let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned()).ok()?;
            let channel = endpoint
                .connect_timeout(std::time::Duration::from_secs(5))
                .timeout(std::time::Duration::from_secs(10))
                .connect_lazy();
            Some(MediaInternalServiceClient::new(channel))
        });
        Self {
            media,
            metrics: Default::default(),
            db,
            config,
            outbox,
            bus,
            cache: cache::PermissionCache::default(),
            recent: Default::default(),
            writer: Default::default(),
            typing: Mutex::default(),
            sessions: SessionServiceClient::new(identity.clone()),
            identity: SessionInternalServiceClient::new(identity),
            internal,
            rate,
        }
    }

    /// Records an event of `guild_id` in the transaction of the change (see `record_events`).
    pub(crate) async fn record(
        &self,
        txn: &impl ConnectionTrait,
        guild_id: &str,
        payload: Payload,
    ) -> Result<()> {
        let event = guild_event(guild_id, payload);
        record_events(&self.outbox, txn, &[(guild_id.to_owned(), event)]).await
    }

    /// Asks identity for a token carrying the caller's guilds as they are now. A failure is not
    /// the caller's problem: the change is committed, and the client can refresh its session.
    pub(crate) async fn fresh_token(&self, caller: &Caller) -> FreshToken {
        let mut request = tonic::Request::new(IssueSessionRequest {
            user_id: caller.claims.sub.clone(),
            device_id: caller.claims.did.clone(),
        });
        self.internal.attach(&mut request);
        match self.identity.clone().issue_session(request).await {
            Ok(response) => {
                let response = response.into_inner();
                FreshToken {
                    access_token: response.access_token,
                    expires_at: response.access_token_expires_at.map_or(0, |t| t.seconds),
                }
            }
            Err(status) => {
                tracing::warn!(code = ?status.code(), message = status.message(), "identity could not issue a fresh token");
                FreshToken::default()
            }
        }
    }
}

/// Records events of (guild, event) in the transaction of the change, in order: queued in the
/// outbox (the bus wakes streams) and appended to the event log (what streams read and resume
/// from). The outbox first, then the log, always: on PostgreSQL each takes a lock until commit,
/// and one order everywhere means they cannot deadlock.
pub(crate) async fn record_events(
    outbox: &Outbox,
    txn: &impl ConnectionTrait,
    events: &[(String, OutboxEvent)],
) -> Result<()> {
    outbox
        .enqueue_many(txn, events.iter().map(|(_, event)| event))
        .await?;
    let rows: Vec<store::events::NewEvent> = events
        .iter()
        .map(|(guild_id, event)| store::events::NewEvent {
            guild_id,
            event_id: &event.id,
            payload: &event.payload,
        })
        .collect();
    store::events::append(txn, &rows, now()).await?;
    Ok(())
}
