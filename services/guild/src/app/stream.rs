//! Admission and reads for SubscribeEvents (PROTOCOL.md section 10). The stream itself (timers,
//! wake-ups, sending) lives in `grpc::events`.

use std::{collections::HashMap, sync::Arc};

use super::{Caller, GuildApp, recent::Entry};
use crate::{
    domain::{
        GuildError, Result, invalid,
        permissions::{MemberPermissions, VIEW_CHANNELS},
    },
    store,
};

/// What a stream was admitted to.
#[derive(Debug, Clone)]
pub struct StreamStart {
    /// Guilds of the token, each with the caller's permissions in it.
    pub guilds: HashMap<String, MemberPermissions>,
    /// Deliver events after this log position.
    pub cursor: i64,
}

impl StreamStart {
    pub fn guild_ids(&self) -> Vec<String> {
        self.guilds.keys().cloned().collect()
    }

    /// Whether the caller may see events of `guild_id`.
    pub fn may_view(&self, guild_id: &str) -> bool {
        self.guilds
            .get(guild_id)
            .is_some_and(|p| p.has(VIEW_CHANNELS))
    }
}

/// Cursors are log positions written in decimal; clients treat them as opaque.
pub fn parse_cursor(text: &str) -> Result<i64> {
    text.parse::<i64>()
        .ok()
        .filter(|c| *c >= 0)
        .ok_or_else(|| invalid("resume_after must be a cursor this server sent"))
}

impl GuildApp {
    /// Admits a stream for every guild in the caller's token, reading the guilds fresh (not from
    /// the permission cache: a stream lives long); a stale guild refuses it (the client refreshes
    /// first). Without `resume_after` the stream starts at the newest event.
    pub async fn open_stream(
        &self,
        caller: &Caller,
        resume_after: Option<&str>,
    ) -> Result<StreamStart> {
        let mut guilds = HashMap::new();
        for guild_id in caller.claims.permission_versions_by_guild.keys() {
            match self.access(&self.db, caller, guild_id).await {
                Ok(access) => {
                    guilds.insert(access.guild.id, access.perms);
                }
                // Deleted since the token was issued: nothing to stream there.
                Err(GuildError::NotFound(_)) => {}
                Err(err) => return Err(err),
            }
        }
        let cursor = match resume_after {
            None => store::events::head(&self.db).await?,
            Some(text) => {
                let cursor = parse_cursor(text)?;
                let head = store::events::head(&self.db).await?;
                let tail = store::events::tail(&self.db).await?;
                let too_old = GuildError::FailedPrecondition(
                    "this cursor is older than the events kept; load the current state again"
                        .into(),
                );
                if cursor > head {
                    // An empty log after pruning cannot tell an old cursor from a wrong one.
                    return Err(if head == 0 {
                        too_old
                    } else {
                        invalid(
                            "resume_after is ahead of this server's events; it is not a cursor from here",
                        )
                    });
                }
                if tail > 0 && cursor < tail - 1 {
                    return Err(too_old);
                }
                cursor
            }
        };
        Ok(StreamStart { guilds, cursor })
    }

    /// The next logged events of the stream's guilds after `cursor`.
    pub async fn read_events(
        &self,
        guilds: &[String],
        cursor: i64,
        limit: u64,
    ) -> Result<Vec<Arc<Entry>>> {
        Ok(self.recent.after(&self.db, guilds, cursor, limit).await?)
    }
}
