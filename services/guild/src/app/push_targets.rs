//! Who a mention should push (PROTOCOL.md section 9), answered for push-relay: members who can
//! view the channel (permissions are guild-wide) and have no live event stream here. Everyone
//! in a large guild is answered one page of members at a time.

use std::collections::HashSet;

use super::{GuildApp, now, presence::STREAM_TIMEOUT};
use crate::{
    domain::{
        Result, invalid,
        model::Member,
        not_found,
        permissions::{MemberPermissions, RoleGrant, VIEW_CHANNELS},
        validate,
    },
    store,
};

/// Mentioned users one request may name.
const MAX_MENTIONED: usize = 1000;
/// Members read per page for MENTION_EVERYONE, by default and at most.
const DEFAULT_PAGE: u32 = 500;
const MAX_PAGE: u32 = 1000;

/// A member to notify, with the home server that delivers to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    pub user_id: String,
    pub home_server: String,
}

/// What a mention asks about.
pub struct TargetQuery<'a> {
    pub guild_id: &'a str,
    pub channel_id: &'a str,
    pub user_ids: &'a [String],
    pub everyone: bool,
    pub author_id: &'a str,
    pub after_user_id: &'a str,
    pub limit: u32,
}

/// One answer: the targets, the author's name, and where the next page of everyone starts.
pub struct PushTargets {
    pub targets: Vec<PushTarget>,
    pub author_name: String,
    pub next_after_user_id: Option<String>,
}

impl GuildApp {
    pub async fn push_targets(&self, q: &TargetQuery<'_>) -> Result<PushTargets> {
        if q.user_ids.len() > MAX_MENTIONED {
            return Err(invalid(format!("at most {MAX_MENTIONED} user_ids")));
        }
        if q.limit > MAX_PAGE {
            return Err(invalid(format!("limit is at most {MAX_PAGE}")));
        }
        let guild_id = validate::id("guild_id", q.guild_id)?;
        let channel_id = validate::id("channel_id", q.channel_id)?;
        let guild = store::guilds::find(&self.db, &guild_id)
            .await?
            .ok_or_else(|| not_found("no such guild on this server"))?;
        store::guilds::find_channel(&self.db, &guild.id, &channel_id)
            .await?
            .ok_or_else(|| not_found("no such channel in this guild"))?;
        let (members, next_after_user_id) = if q.everyone {
            let limit = if q.limit == 0 { DEFAULT_PAGE } else { q.limit };
            let after = Some(q.after_user_id).filter(|a| !a.is_empty());
            let page = store::members::page(&self.db, &guild.id, after, limit.into()).await?;
            let next = (page.len() == limit as usize)
                .then(|| page.last().map(|m| m.user_id.clone()))
                .flatten();
            (page, next)
        } else {
            let mut members = Vec::new();
            for user_id in q.user_ids.iter().collect::<HashSet<_>>() {
                if let Some(member) = store::members::find(&self.db, &guild.id, user_id).await? {
                    members.push(member);
                }
            }
            (members, None)
        };
        let roles = store::roles::of_guild(&self.db, &guild.id).await?;
        let can_view = |member: &Member| {
            let grants = roles
                .iter()
                .filter(|r| r.is_everyone || member.role_ids.contains(&r.id))
                .map(|r| RoleGrant {
                    permissions: r.permissions,
                    weight: r.weight,
                });
            MemberPermissions::resolve(guild.owner_id == member.user_id, grants).has(VIEW_CHANNELS)
        };
        let viewers: Vec<Member> = members
            .into_iter()
            .filter(|m| m.user_id != q.author_id && can_view(m))
            .collect();
        let ids: Vec<String> = viewers.iter().map(|m| m.user_id.clone()).collect();
        let alive_after = now() - STREAM_TIMEOUT.as_millis() as i64;
        let live = store::presence::with_live_streams(&self.db, &ids, alive_after).await?;
        let targets = viewers
            .into_iter()
            .filter(|m| !live.contains(&m.user_id))
            .map(|m| PushTarget {
                user_id: m.user_id,
                home_server: m.home_server,
            })
            .collect();
        let author_name = store::profiles::of_users(&self.db, &[q.author_id.to_owned()])
            .await?
            .remove(q.author_id)
            .map(|p| p.display_name)
            .unwrap_or_default();
        Ok(PushTargets {
            targets,
            author_name,
            next_after_user_id,
        })
    }
}
