//! Presence (PROTOCOL.md section 10): a user is online while at least one event stream of theirs
//! is open on this server, and goes offline a grace period after the last one closed. Each
//! transition is announced to every guild of the user through the event log, under a lock on
//! the user's presence row, so a user's updates are strictly ordered.

use std::time::Duration;

use mzchat_proto::guild::{PresenceStatus, PresenceUpdated, event::Payload};
use sea_orm::TransactionTrait;

use super::{GuildApp, now};
use crate::{
    domain::{GuildError, Result},
    store,
};

/// A stream whose heartbeat is older than this is dead (its replica stopped).
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// Event streams one user may hold open at once, on all replicas together.
const MAX_STREAMS_PER_USER: u64 = 10;
/// How often an open stream proves it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

impl GuildApp {
    /// Records an opened stream; announces the user online if they were not.
    pub async fn stream_opened(&self, stream_id: &str, user_id: &str) -> Result<()> {
        // Each stream is a task reading the log; a user's devices need a few, not hundreds.
        let alive_after = now() - STREAM_TIMEOUT.as_millis() as i64;
        let open = store::presence::live_stream_count(&self.db, user_id, alive_after).await?;
        if open >= MAX_STREAMS_PER_USER {
            return Err(GuildError::ResourceExhausted(format!(
                "at most {MAX_STREAMS_PER_USER} event streams per user; close one first"
            )));
        }
        store::presence::open(&self.db, stream_id, user_id, now()).await?;
        self.metrics.open_streams.inc();
        self.settle_presence(user_id).await
    }

    pub async fn stream_alive(&self, stream_id: &str) -> Result<()> {
        Ok(store::presence::heartbeat(&self.db, stream_id, now()).await?)
    }

    /// Forgets a closed stream; after the grace period, announces the user offline if no other
    /// stream of theirs is open by then.
    pub async fn stream_closed(&self, stream_id: &str, user_id: &str) -> Result<()> {
        self.metrics.open_streams.dec();
        store::presence::close(&self.db, stream_id).await?;
        tokio::time::sleep(self.config.presence_grace).await;
        self.settle_presence(user_id).await
    }

    /// Makes the announced presence match the open streams.
    pub async fn settle_presence(&self, user_id: &str) -> Result<()> {
        let at = now();
        let txn = self.db.begin().await?;
        let announced = store::presence::lock(&txn, user_id, at).await?;
        let alive_after = at - STREAM_TIMEOUT.as_millis() as i64;
        let online = store::presence::has_live_stream(&txn, user_id, alive_after).await?;
        if online != announced {
            store::presence::set(&txn, user_id, online, at).await?;
            let status = if online {
                PresenceStatus::Online
            } else {
                PresenceStatus::Offline
            };
            for guild_id in store::members::guild_ids_of(&txn, user_id).await? {
                let update = PresenceUpdated {
                    user_id: user_id.to_owned(),
                    status: status as i32,
                };
                self.record(&txn, &guild_id, Payload::PresenceUpdated(update))
                    .await?;
            }
        }
        txn.commit().await?;
        self.outbox.wake();
        Ok(())
    }

    /// Takes users offline whose streams died with their replica.
    pub async fn sweep_presence(&self) -> Result<()> {
        store::presence::drop_dead(&self.db, now() - STREAM_TIMEOUT.as_millis() as i64).await?;
        for user_id in store::presence::online_users(&self.db, 1000).await? {
            self.settle_presence(&user_id).await?;
        }
        Ok(())
    }
}
