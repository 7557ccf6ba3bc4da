//! Who a mention should push (PROTOCOL.md section 9), answered for push-relay: members who can
//! view the channel (permissions are guild-wide) and have no live event stream here.

use std::collections::HashSet;

use super::{GuildApp, now, presence::STREAM_TIMEOUT};
use crate::{
    domain::{
        Result, invalid, not_found,
        permissions::{MemberPermissions, RoleGrant, VIEW_CHANNELS},
        validate,
    },
    store,
};

/// Mentioned users one request may name.
const MAX_MENTIONED: usize = 1000;
/// Members read per page for MENTION_EVERYONE.
const PAGE: u64 = 500;

/// A member to notify, with the home server that delivers to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    pub user_id: String,
    pub home_server: String,
}

impl GuildApp {
    pub async fn push_targets(
        &self,
        guild_id: &str,
        channel_id: &str,
        user_ids: &[String],
        everyone: bool,
        author_id: &str,
    ) -> Result<(Vec<PushTarget>, String)> {
        if user_ids.len() > MAX_MENTIONED {
            return Err(invalid(format!("at most {MAX_MENTIONED} user_ids")));
        }
        let guild_id = validate::id("guild_id", guild_id)?;
        let channel_id = validate::id("channel_id", channel_id)?;
        let guild = store::guilds::find(&self.db, &guild_id)
            .await?
            .ok_or_else(|| not_found("no such guild on this server"))?;
        store::guilds::find_channel(&self.db, &guild.id, &channel_id)
            .await?
            .ok_or_else(|| not_found("no such channel in this guild"))?;
        let roles = store::roles::of_guild(&self.db, &guild.id).await?;
        let mut members = Vec::new();
        if everyone {
            let mut after: Option<String> = None;
            loop {
                let page =
                    store::members::page(&self.db, &guild.id, after.as_deref(), PAGE).await?;
                let full = page.len() as u64 == PAGE;
                after = page.last().map(|m| m.user_id.clone());
                members.extend(page);
                if !full {
                    break;
                }
            }
        } else {
            let wanted: HashSet<&String> = user_ids.iter().collect();
            for user_id in wanted {
                if let Some(member) = store::members::find(&self.db, &guild.id, user_id).await? {
                    members.push(member);
                }
            }
        }
        let alive_after = now() - STREAM_TIMEOUT.as_millis() as i64;
        let mut targets = Vec::new();
        for member in members {
            if member.user_id == author_id {
                continue;
            }
            let grants = roles
                .iter()
                .filter(|r| r.is_everyone || member.role_ids.contains(&r.id))
                .map(|r| RoleGrant {
                    permissions: r.permissions,
                    weight: r.weight,
                });
            let perms = MemberPermissions::resolve(guild.owner_id == member.user_id, grants);
            if !perms.has(VIEW_CHANNELS) {
                continue;
            }
            if store::presence::live_streams(&self.db, &member.user_id, alive_after).await? > 0 {
                continue;
            }
            targets.push(PushTarget {
                user_id: member.user_id,
                home_server: member.home_server,
            });
        }
        let author_name = store::profiles::of_users(&self.db, &[author_id.to_owned()])
            .await?
            .remove(author_id)
            .map(|p| p.display_name)
            .unwrap_or_default();
        Ok((targets, author_name))
    }
}
