//! Messages, pins and reactions.

use std::collections::BTreeMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::OnConflict,
};

use super::entity::{message, reaction};
use crate::domain::{
    message::Anchor,
    model::{Attachment, Message, ReactionSummary},
};

fn to_message(m: message::Model) -> Message {
    Message {
        mention_user_ids: serde_json_list(&m.mention_user_ids),
        attachments: attachments_from_json(&m.attachment_file_ids),
        id: m.id,
        guild_id: m.guild_id,
        channel_id: m.channel_id,
        author_id: m.author_id,
        content: m.content,
        mention_everyone: m.mention_everyone,
        nonce: m.nonce,
        created_at: m.created_at,
        edited_at: m.edited_at,
        pinned: m.pinned_at.is_some(),
        reactions: vec![],
    }
}

fn serde_json_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// Attachments are kept with what was known of them when sent (the column's name predates
/// that: it held file ids only, and no message had any).
fn attachments_json(attachments: &[Attachment]) -> String {
    let list: Vec<serde_json::Value> = attachments
        .iter()
        .map(|a| {
            serde_json::json!({
                "file_id": a.file_id,
                "content_type": a.content_type,
                "size": a.size,
                "file_name": a.file_name,
            })
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}

fn attachments_from_json(text: &str) -> Vec<Attachment> {
    let list: Vec<serde_json::Value> = serde_json::from_str(text).unwrap_or_default();
    list.iter()
        .filter_map(|a| {
            let text = |key: &str| a[key].as_str().map(str::to_owned);
            Some(Attachment {
                file_id: text("file_id")?,
                content_type: text("content_type").unwrap_or_default(),
                size: a["size"].as_u64().unwrap_or(0),
                file_name: text("file_name").unwrap_or_default(),
            })
        })
        .collect()
}

fn json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

fn active(m: &Message) -> message::ActiveModel {
    message::ActiveModel {
        id: Set(m.id.clone()),
        guild_id: Set(m.guild_id.clone()),
        channel_id: Set(m.channel_id.clone()),
        author_id: Set(m.author_id.clone()),
        content: Set(m.content.clone()),
        mention_user_ids: Set(json(&m.mention_user_ids)),
        mention_everyone: Set(m.mention_everyone),
        attachment_file_ids: Set(attachments_json(&m.attachments)),
        nonce: Set(m.nonce.clone()),
        created_at: Set(m.created_at),
        edited_at: Set(None),
        pinned_at: Set(None),
        pinned_by: Set(None),
    }
}

/// Stores messages with one statement. A message whose nonce its author used before in the
/// channel is not stored; the earlier message is returned in its place, marked not new.
pub async fn insert(
    conn: &impl ConnectionTrait,
    messages: &[&Message],
) -> Result<Vec<(Message, bool)>, DbErr> {
    if messages.is_empty() {
        return Ok(vec![]);
    }
    let inserted = message::Entity::insert_many(messages.iter().map(|m| active(m)))
        .on_conflict(
            OnConflict::columns([
                message::Column::ChannelId,
                message::Column::AuthorId,
                message::Column::Nonce,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    if inserted == messages.len() as u64 {
        return Ok(messages.iter().map(|m| ((*m).clone(), true)).collect());
    }
    // Some nonces were taken: look each message up by its nonce to tell which.
    let mut stored = Vec::with_capacity(messages.len());
    for m in messages {
        let found = message::Entity::find()
            .filter(message::Column::ChannelId.eq(m.channel_id.as_str()))
            .filter(message::Column::AuthorId.eq(m.author_id.as_str()))
            .filter(message::Column::Nonce.eq(m.nonce.clone()))
            .one(conn)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("message behind a nonce conflict".into()))?;
        let new = found.id == m.id;
        stored.push((to_message(found), new));
    }
    Ok(stored)
}

pub async fn find(
    conn: &impl ConnectionTrait,
    channel_id: &str,
    id: &str,
) -> Result<Option<Message>, DbErr> {
    Ok(message::Entity::find_by_id(id)
        .filter(message::Column::ChannelId.eq(channel_id))
        .one(conn)
        .await?
        .map(to_message))
}

/// A page of a channel's history, oldest first.
pub async fn page(
    conn: &impl ConnectionTrait,
    channel_id: &str,
    anchor: &Anchor,
    limit: u64,
) -> Result<Vec<Message>, DbErr> {
    let base = || message::Entity::find().filter(message::Column::ChannelId.eq(channel_id));
    let mut messages = match anchor {
        Anchor::Latest => {
            base()
                .order_by_desc(message::Column::Id)
                .limit(limit)
                .all(conn)
                .await?
        }
        Anchor::Before(id) => {
            base()
                .filter(message::Column::Id.lt(id.as_str()))
                .order_by_desc(message::Column::Id)
                .limit(limit)
                .all(conn)
                .await?
        }
        Anchor::After(id) => {
            base()
                .filter(message::Column::Id.gt(id.as_str()))
                .order_by_asc(message::Column::Id)
                .limit(limit)
                .all(conn)
                .await?
        }
        Anchor::Around(id) => {
            let before = limit / 2;
            let mut older = base()
                .filter(message::Column::Id.lt(id.as_str()))
                .order_by_desc(message::Column::Id)
                .limit(before)
                .all(conn)
                .await?;
            let newer = base()
                .filter(message::Column::Id.gte(id.as_str()))
                .order_by_asc(message::Column::Id)
                .limit(limit - before)
                .all(conn)
                .await?;
            older.extend(newer);
            older
        }
    };
    messages.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(messages.into_iter().map(to_message).collect())
}

pub async fn edit(
    conn: &impl ConnectionTrait,
    id: &str,
    content: &str,
    mentions: &[String],
    everyone: bool,
    now: i64,
) -> Result<(), DbErr> {
    message::Entity::update_many()
        .col_expr(message::Column::Content, content.into())
        .col_expr(message::Column::MentionUserIds, json(mentions).into())
        .col_expr(message::Column::MentionEveryone, everyone.into())
        .col_expr(message::Column::EditedAt, now.into())
        .filter(message::Column::Id.eq(id))
        .exec(conn)
        .await
        .map(|_| ())
}

pub async fn delete(conn: &impl ConnectionTrait, id: &str) -> Result<(), DbErr> {
    reaction::Entity::delete_many()
        .filter(reaction::Column::MessageId.eq(id))
        .exec(conn)
        .await?;
    message::Entity::delete_by_id(id)
        .exec(conn)
        .await
        .map(|_| ())
}

/// Pins or unpins; false when it already was in that state.
pub async fn set_pinned(
    conn: &impl ConnectionTrait,
    id: &str,
    pinned_by: Option<&str>,
    now: i64,
) -> Result<bool, DbErr> {
    let update = message::Entity::update_many().filter(message::Column::Id.eq(id));
    let changed = match pinned_by {
        Some(by) => {
            update
                .col_expr(message::Column::PinnedAt, now.into())
                .col_expr(message::Column::PinnedBy, by.into())
                .filter(message::Column::PinnedAt.is_null())
                .exec(conn)
                .await?
        }
        None => {
            update
                .col_expr(message::Column::PinnedAt, Option::<i64>::None.into())
                .col_expr(message::Column::PinnedBy, Option::<String>::None.into())
                .filter(message::Column::PinnedAt.is_not_null())
                .exec(conn)
                .await?
        }
    };
    Ok(changed.rows_affected == 1)
}

/// Pinned messages of a channel, newest first, after the message id `after`.
pub async fn pins(
    conn: &impl ConnectionTrait,
    channel_id: &str,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<Message>, DbErr> {
    let mut query = message::Entity::find()
        .filter(message::Column::ChannelId.eq(channel_id))
        .filter(message::Column::PinnedAt.is_not_null())
        .order_by_desc(message::Column::Id)
        .limit(limit);
    if let Some(before) = before {
        query = query.filter(message::Column::Id.lt(before));
    }
    Ok(query.all(conn).await?.into_iter().map(to_message).collect())
}

/// The different emoji `message_id` has been reacted with.
pub async fn reaction_emoji(
    conn: &impl ConnectionTrait,
    message_id: &str,
) -> Result<Vec<String>, DbErr> {
    reaction::Entity::find()
        .select_only()
        .column(reaction::Column::Emoji)
        .distinct()
        .filter(reaction::Column::MessageId.eq(message_id))
        .into_tuple()
        .all(conn)
        .await
}

/// Adds a reaction; false when the user had already reacted with that emoji.
pub async fn add_reaction(
    conn: &impl ConnectionTrait,
    message_id: &str,
    user_id: &str,
    emoji: &str,
    now: i64,
) -> Result<bool, DbErr> {
    let inserted = reaction::Entity::insert(reaction::ActiveModel {
        message_id: Set(message_id.to_owned()),
        emoji: Set(emoji.to_owned()),
        user_id: Set(user_id.to_owned()),
        created_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([
            reaction::Column::MessageId,
            reaction::Column::Emoji,
            reaction::Column::UserId,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(inserted == 1)
}

pub async fn remove_reaction(
    conn: &impl ConnectionTrait,
    message_id: &str,
    user_id: &str,
    emoji: &str,
) -> Result<bool, DbErr> {
    let removed = reaction::Entity::delete_many()
        .filter(reaction::Column::MessageId.eq(message_id))
        .filter(reaction::Column::Emoji.eq(emoji))
        .filter(reaction::Column::UserId.eq(user_id))
        .exec(conn)
        .await?
        .rows_affected;
    Ok(removed == 1)
}

/// Users who reacted with `emoji`, by user id, after `after`.
pub async fn reactors(
    conn: &impl ConnectionTrait,
    message_id: &str,
    emoji: &str,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<String>, DbErr> {
    let mut query = reaction::Entity::find()
        .filter(reaction::Column::MessageId.eq(message_id))
        .filter(reaction::Column::Emoji.eq(emoji))
        .order_by_asc(reaction::Column::UserId)
        .limit(limit);
    if let Some(after) = after {
        query = query.filter(reaction::Column::UserId.gt(after));
    }
    Ok(query
        .all(conn)
        .await?
        .into_iter()
        .map(|r| r.user_id)
        .collect())
}

/// Fills in each message's reaction counts, and whether `viewer` is among them.
pub async fn with_reactions(
    conn: &impl ConnectionTrait,
    mut messages: Vec<Message>,
    viewer: &str,
) -> Result<Vec<Message>, DbErr> {
    let ids: Vec<String> = messages.iter().map(|m| m.id.clone()).collect();
    let rows = reaction::Entity::find()
        .filter(reaction::Column::MessageId.is_in(ids))
        .order_by_asc(reaction::Column::CreatedAt)
        .all(conn)
        .await?;
    let mut tally: BTreeMap<(String, String), (u32, bool, i64)> = BTreeMap::new();
    for r in rows {
        let entry = tally
            .entry((r.message_id, r.emoji))
            .or_insert((0, false, r.created_at));
        entry.0 += 1;
        entry.1 |= r.user_id == viewer;
    }
    for message in &mut messages {
        let mut summaries: Vec<(i64, ReactionSummary)> = tally
            .iter()
            .filter(|((id, _), _)| *id == message.id)
            .map(|((_, emoji), (count, me, first))| {
                (
                    *first,
                    ReactionSummary {
                        emoji: emoji.clone(),
                        count: *count,
                        me: *me,
                    },
                )
            })
            .collect();
        summaries.sort_by_key(|(first, _)| *first);
        message.reactions = summaries.into_iter().map(|(_, s)| s).collect();
    }
    Ok(messages)
}
