//! What the guild service publishes on the bus (through its outbox): `Event`s on
//! `guild.v1.g.<guild_id>.<kind>`, so real-time fan-out can subscribe per guild.

use mzchat_platform::outbox::OutboxEvent;
use mzchat_proto::guild::{Event, event::Payload};

fn kind(payload: &Payload) -> &'static str {
    match payload {
        Payload::GuildUpdated(_) => "guild.updated",
        Payload::GuildDeleted(_) => "guild.deleted",
        Payload::ChannelCreated(_) => "channel.created",
        Payload::ChannelUpdated(_) => "channel.updated",
        Payload::ChannelDeleted(_) => "channel.deleted",
        Payload::RoleCreated(_) => "role.created",
        Payload::RoleUpdated(_) => "role.updated",
        Payload::RoleDeleted(_) => "role.deleted",
        Payload::MemberJoined(_) => "member.joined",
        Payload::MemberLeft(_) => "member.left",
        Payload::MemberBanned(_) => "member.banned",
        Payload::MemberUpdated(_) => "member.updated",
        Payload::PermissionsChanged(_) => "permissions.changed",
        Payload::MessageCreated(_) => "message.created",
        Payload::MessageUpdated(_) => "message.updated",
        Payload::MessageDeleted(_) => "message.deleted",
        Payload::ReactionAdded(_) => "reaction.added",
        Payload::ReactionRemoved(_) => "reaction.removed",
        Payload::MessagePinned(_) => "message.pinned",
        Payload::MessageUnpinned(_) => "message.unpinned",
        Payload::TypingStarted(_) => "typing.started",
        Payload::PresenceUpdated(_) => "presence.updated",
        Payload::Keepalive(_) => "keepalive",
    }
}

/// Subject of a guild's events of one kind.
fn subject(guild_id: &str, payload: &Payload) -> String {
    format!("guild.v1.g.{guild_id}.{}", kind(payload))
}

/// An event about `guild_id`, to enqueue in the transaction of the change.
pub fn guild_event(guild_id: &str, payload: Payload) -> OutboxEvent {
    let id = uuid::Uuid::now_v7().to_string();
    let subject = subject(guild_id, &payload);
    let now = mzchat_platform::db::now_millis();
    let event = Event {
        id: id.clone(),
        cursor: String::new(),
        at: Some(prost_types::Timestamp {
            seconds: now.div_euclid(1000),
            nanos: (now.rem_euclid(1000) * 1_000_000) as i32,
        }),
        guild_id: guild_id.to_owned(),
        payload: Some(payload),
    };
    let mut outbox_event = OutboxEvent::new(subject, &event);
    outbox_event.id = id;
    outbox_event
}
