//! Domain types to protobuf, for replies and for events.

use mzchat_platform::Origin;
use mzchat_proto::guild as pb;
use prost_types::Timestamp;

use crate::domain::model::{Ban, Channel, Guild, Invite, Member, Message, Role};

pub fn timestamp_ms(ms: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    })
}

fn file_url(assets: &Origin, file_id: &str) -> String {
    if file_id.is_empty() {
        String::new()
    } else {
        format!("{assets}/{file_id}")
    }
}

pub fn guild(g: &Guild, assets: &Origin) -> pb::Guild {
    pb::Guild {
        id: g.id.clone(),
        name: g.name.clone(),
        icon_file_id: g.icon_file_id.clone(),
        icon_url: file_url(assets, &g.icon_file_id),
        owner_id: g.owner_id.clone(),
        permission_version: g.permission_version,
        member_count: u32::try_from(g.member_count).unwrap_or(u32::MAX),
        created_at: timestamp_ms(g.created_at),
    }
}

pub fn channel(c: &Channel) -> pb::Channel {
    pb::Channel {
        id: c.id.clone(),
        guild_id: c.guild_id.clone(),
        name: c.name.clone(),
        topic: c.topic.clone(),
        position: c.position,
        kind: pb::ChannelKind::Text as i32,
    }
}

pub fn role(r: &Role) -> pb::Role {
    pb::Role {
        id: r.id.clone(),
        guild_id: r.guild_id.clone(),
        name: r.name.clone(),
        permissions: r.permissions,
        weight: r.weight,
        color: r.color,
        is_everyone: r.is_everyone,
        created_at: timestamp_ms(r.created_at),
    }
}

pub fn member(m: &Member, profile: Option<&mzchat_proto::common::Profile>) -> pb::Member {
    pb::Member {
        user_id: m.user_id.clone(),
        guild_id: m.guild_id.clone(),
        role_ids: m.role_ids.clone(),
        joined_at: timestamp_ms(m.joined_at),
        profile: profile.cloned(),
        home_server: m.home_server.clone(),
    }
}

pub fn ban(b: &Ban) -> pb::Ban {
    pb::Ban {
        user_id: b.user_id.clone(),
        reason: b.reason.clone(),
        banned_by: b.banned_by.clone(),
        banned_at: timestamp_ms(b.banned_at),
    }
}

pub fn invite(i: &Invite, origin: &Origin) -> pb::Invite {
    pb::Invite {
        token: i.token.clone(),
        guild_id: i.guild_id.clone(),
        channel_id: i.channel_id.clone(),
        creator_id: i.creator_id.clone(),
        uses: i.uses,
        max_uses: i.max_uses,
        expires_at: timestamp_ms(i.expires_at),
        link: crate::domain::invite::link(origin.as_str(), &i.guild_id, &i.channel_id, &i.token),
    }
}

pub fn message(m: &Message, assets: &Origin) -> pb::Message {
    pb::Message {
        id: m.id.clone(),
        guild_id: m.guild_id.clone(),
        channel_id: m.channel_id.clone(),
        author_id: m.author_id.clone(),
        content: m.content.clone(),
        mention_user_ids: m.mention_user_ids.clone(),
        mention_everyone: m.mention_everyone,
        attachments: m
            .attachments
            .iter()
            .map(|a| pb::Attachment {
                file_id: a.file_id.clone(),
                url: file_url(assets, &a.file_id),
                content_type: a.content_type.clone(),
                size: a.size,
                file_name: a.file_name.clone(),
            })
            .collect(),
        created_at: timestamp_ms(m.created_at),
        edited_at: m.edited_at.and_then(timestamp_ms),
        pinned: m.pinned,
        reactions: m
            .reactions
            .iter()
            .map(|r| pb::ReactionSummary {
                emoji: r.emoji.clone(),
                count: r.count,
                me: r.me,
            })
            .collect(),
        nonce: m.nonce.clone().unwrap_or_default(),
    }
}
