//! Messages, pins, reactions and typing.

use std::time::{Duration, Instant};

use mzchat_proto::guild::{
    MessageDeleted, MessagePinned, MessageUnpinned, MessageUpdated, ReactionAdded, ReactionRemoved,
    TypingStarted, event::Payload,
};
use sea_orm::{ConnectionTrait, TransactionTrait};

use super::{Caller, GuildApp, access::Access, message_writer::MessageWriter, now, page_size};
use crate::{
    convert,
    domain::{
        Result, denied, invalid,
        message::{self, Anchor, Draft},
        model::{Channel, Message},
        not_found,
        permissions::{
            ADD_REACTIONS, ATTACH_FILES, MANAGE_MESSAGES, MENTION_EVERYONE, READ_HISTORY,
            SEND_MESSAGES, VIEW_CHANNELS,
        },
        validate,
    },
    events::guild_event,
    store,
};

/// The message a call is about.
#[derive(Debug, Clone, Copy)]
pub struct MessageRef<'a> {
    pub guild_id: &'a str,
    pub channel_id: &'a str,
    pub message_id: &'a str,
}

/// Different emoji a message may be reacted with (as other chat services do).
const MAX_REACTION_EMOJI: usize = 20;

/// One typing notice per user and channel in this window (PROTOCOL.md section 5).
const TYPING_INTERVAL: Duration = Duration::from_secs(3);

fn missing() -> crate::domain::GuildError {
    not_found("no such message in this channel")
}

impl GuildApp {
    /// Admits the caller to a channel of a guild with `bits` (from the permission cache, so call
    /// it before opening a transaction: on SQLite the pool has one connection).
    async fn channel_access(
        &self,
        conn: &impl ConnectionTrait,
        caller: &Caller,
        guild_id: &str,
        channel_id: &str,
        bits: &[u64],
    ) -> Result<(Access, Channel)> {
        let channel_id = validate::id("channel_id", channel_id)?;
        let access = self.access_fast(caller, guild_id).await?;
        for bit in bits {
            access.require(*bit)?;
        }
        let channel = store::guilds::find_channel(conn, &access.guild.id, &channel_id)
            .await?
            .ok_or_else(|| not_found("no such channel in this guild"))?;
        Ok((access, channel))
    }

    /// Mentioned users must be members; MENTION_EVERYONE needs its permission.
    async fn check_mentions(
        &self,
        conn: &impl ConnectionTrait,
        access: &Access,
        draft: &Draft,
    ) -> Result<()> {
        if draft.mention_everyone {
            access.require(MENTION_EVERYONE)?;
        }
        for user_id in &draft.mention_user_ids {
            if store::members::find(conn, &access.guild.id, user_id)
                .await?
                .is_none()
            {
                return Err(invalid(format!(
                    "mentioned user {user_id} is not a member of this guild"
                )));
            }
        }
        Ok(())
    }

    pub async fn send_message(
        &self,
        caller: &Caller,
        guild_id: &str,
        channel_id: &str,
        draft: Draft,
        nonce: &str,
    ) -> Result<Message> {
        let draft = draft.validated(&self.config.limits)?;
        let nonce = message::nonce(nonce)?;
        let needed: &[u64] = if draft.attachment_file_ids.is_empty() {
            &[VIEW_CHANNELS, SEND_MESSAGES]
        } else {
            &[VIEW_CHANNELS, SEND_MESSAGES, ATTACH_FILES]
        };
        let (access, channel) = self
            .channel_access(&self.db, caller, guild_id, channel_id, needed)
            .await?;
        // Checked with the media service before the transaction (no network call inside it).
        let attachments = self
            .resolve_attachments(caller.user_id(), &draft.attachment_file_ids)
            .await?;
        self.check_mentions(&self.db, &access, &draft).await?;
        let draft_message = Message {
            id: uuid::Uuid::now_v7().to_string(),
            guild_id: access.guild.id.clone(),
            channel_id: channel.id.clone(),
            author_id: caller.user_id().to_owned(),
            content: draft.content,
            mention_user_ids: draft.mention_user_ids,
            mention_everyone: draft.mention_everyone,
            attachments,
            nonce,
            created_at: now(),
            edited_at: None,
            pinned: false,
            reactions: vec![],
        };
        let writer = self.writer.get_or_init(|| {
            MessageWriter::start(self.db.clone(), self.outbox.clone(), self.config.clone())
        });
        let (stored, _new) = writer.write(draft_message).await?;
        Ok(stored)
    }

    /// Changes a message's text and mentions; only its author may.
    pub async fn edit_message(
        &self,
        caller: &Caller,
        guild_id: &str,
        channel_id: &str,
        message_id: &str,
        draft: Draft,
    ) -> Result<Message> {
        let message_id = validate::id("message_id", message_id)?;
        let draft = draft.validated(&self.config.limits)?;
        let (access, channel) = self
            .channel_access(&self.db, caller, guild_id, channel_id, &[VIEW_CHANNELS])
            .await?;
        let txn = self.db.begin().await?;
        let mut message = store::messages::find(&txn, &channel.id, &message_id)
            .await?
            .ok_or_else(missing)?;
        if message.author_id != caller.user_id() {
            return Err(denied("only a message's author may edit it"));
        }
        self.check_mentions(&txn, &access, &draft).await?;
        let at = now();
        store::messages::edit(
            &txn,
            &message.id,
            &draft.content,
            &draft.mention_user_ids,
            draft.mention_everyone,
            at,
        )
        .await?;
        message.content = draft.content;
        message.mention_user_ids = draft.mention_user_ids;
        message.mention_everyone = draft.mention_everyone;
        message.edited_at = Some(at);
        let mut messages =
            store::messages::with_reactions(&txn, vec![message], caller.user_id()).await?;
        let message = messages.pop().ok_or_else(missing)?;
        let updated = MessageUpdated {
            message: Some(convert::message(
                &message,
                &self.config.server.assets_origin,
            )),
        };
        self.record(&txn, &message.guild_id, Payload::MessageUpdated(updated))
            .await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(message)
    }

    /// Deletes a message: its author, or anyone with MANAGE_MESSAGES.
    pub async fn delete_message(
        &self,
        caller: &Caller,
        guild_id: &str,
        channel_id: &str,
        message_id: &str,
    ) -> Result<()> {
        let message_id = validate::id("message_id", message_id)?;
        let (access, channel) = self
            .channel_access(&self.db, caller, guild_id, channel_id, &[VIEW_CHANNELS])
            .await?;
        let txn = self.db.begin().await?;
        let message = store::messages::find(&txn, &channel.id, &message_id)
            .await?
            .ok_or_else(missing)?;
        if message.author_id != caller.user_id() {
            access.require(MANAGE_MESSAGES)?;
        }
        store::messages::delete(&txn, &message.id).await?;
        let deleted = MessageDeleted {
            guild_id: message.guild_id.clone(),
            channel_id: message.channel_id.clone(),
            message_id: message.id,
        };
        self.record(&txn, &message.guild_id, Payload::MessageDeleted(deleted))
            .await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(())
    }

    pub async fn get_message(
        &self,
        caller: &Caller,
        guild_id: &str,
        channel_id: &str,
        message_id: &str,
    ) -> Result<Message> {
        let message_id = validate::id("message_id", message_id)?;
        let (_, channel) = self
            .channel_access(
                &self.db,
                caller,
                guild_id,
                channel_id,
                &[VIEW_CHANNELS, READ_HISTORY],
            )
            .await?;
        let message = store::messages::find(&self.db, &channel.id, &message_id)
            .await?
            .ok_or_else(missing)?;
        let mut messages =
            store::messages::with_reactions(&self.db, vec![message], caller.user_id()).await?;
        messages.pop().ok_or_else(missing)
    }

    /// A page of history, oldest first (at most 100).
    pub async fn list_messages(
        &self,
        caller: &Caller,
        guild_id: &str,
        channel_id: &str,
        anchor: Anchor,
        limit: u32,
    ) -> Result<Vec<Message>> {
        let limit = message::limit(limit)?;
        let anchor = match anchor {
            Anchor::Before(id) => Anchor::Before(validate::id("before", &id)?),
            Anchor::After(id) => Anchor::After(validate::id("after", &id)?),
            Anchor::Around(id) => Anchor::Around(validate::id("around", &id)?),
            Anchor::Latest => Anchor::Latest,
        };
        let (_, channel) = self
            .channel_access(
                &self.db,
                caller,
                guild_id,
                channel_id,
                &[VIEW_CHANNELS, READ_HISTORY],
            )
            .await?;
        let messages = store::messages::page(&self.db, &channel.id, &anchor, limit).await?;
        Ok(store::messages::with_reactions(&self.db, messages, caller.user_id()).await?)
    }

    /// Pins (`pin`) or unpins a message; needs MANAGE_MESSAGES. Idempotent.
    pub async fn set_pin(
        &self,
        caller: &Caller,
        guild_id: &str,
        channel_id: &str,
        message_id: &str,
        pin: bool,
    ) -> Result<()> {
        let message_id = validate::id("message_id", message_id)?;
        let (access, channel) = self
            .channel_access(
                &self.db,
                caller,
                guild_id,
                channel_id,
                &[VIEW_CHANNELS, MANAGE_MESSAGES],
            )
            .await?;
        let txn = self.db.begin().await?;
        store::messages::find(&txn, &channel.id, &message_id)
            .await?
            .ok_or_else(missing)?;
        let by = caller.user_id().to_owned();
        if store::messages::set_pinned(&txn, &message_id, pin.then_some(by.as_str()), now()).await?
        {
            let (guild_id, channel_id) = (access.guild.id.clone(), channel.id.clone());
            let payload = if pin {
                Payload::MessagePinned(MessagePinned {
                    guild_id,
                    channel_id,
                    message_id,
                    pinned_by: by,
                })
            } else {
                Payload::MessageUnpinned(MessageUnpinned {
                    guild_id,
                    channel_id,
                    message_id,
                    unpinned_by: by,
                })
            };
            self.record(&txn, &access.guild.id, payload).await?;
        }
        txn.commit().await?;
        self.outbox.wake();
        Ok(())
    }

    pub async fn list_pins(
        &self,
        caller: &Caller,
        guild_id: &str,
        channel_id: &str,
        size: i32,
        token: &str,
    ) -> Result<(Vec<Message>, String)> {
        let limit = page_size(size)?;
        let before = (!token.is_empty())
            .then(|| validate::id("page_token", token))
            .transpose()?;
        let (_, channel) = self
            .channel_access(
                &self.db,
                caller,
                guild_id,
                channel_id,
                &[VIEW_CHANNELS, READ_HISTORY],
            )
            .await?;
        let pins = store::messages::pins(&self.db, &channel.id, before.as_deref(), limit).await?;
        let next = if pins.len() as u64 == limit {
            pins.last().map(|m| m.id.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok((
            store::messages::with_reactions(&self.db, pins, caller.user_id()).await?,
            next,
        ))
    }

    pub async fn add_reaction(
        &self,
        caller: &Caller,
        guild_id: &str,
        channel_id: &str,
        message_id: &str,
        emoji: &str,
    ) -> Result<()> {
        let message_id = validate::id("message_id", message_id)?;
        let emoji = message::emoji(emoji)?;
        let (access, channel) = self
            .channel_access(
                &self.db,
                caller,
                guild_id,
                channel_id,
                &[VIEW_CHANNELS, ADD_REACTIONS],
            )
            .await?;
        let txn = self.db.begin().await?;
        store::messages::find(&txn, &channel.id, &message_id)
            .await?
            .ok_or_else(missing)?;
        // Every reaction travels with the message (events, history pages): bound them.
        let present = store::messages::reaction_emoji(&txn, &message_id).await?;
        if present.len() >= MAX_REACTION_EMOJI && !present.contains(&emoji) {
            return Err(crate::domain::GuildError::ResourceExhausted(format!(
                "a message takes at most {MAX_REACTION_EMOJI} different reactions"
            )));
        }
        if store::messages::add_reaction(&txn, &message_id, caller.user_id(), &emoji, now()).await?
        {
            let added = ReactionAdded {
                guild_id: access.guild.id.clone(),
                channel_id: channel.id,
                message_id,
                user_id: caller.user_id().to_owned(),
                emoji,
            };
            self.record(&txn, &access.guild.id, Payload::ReactionAdded(added))
                .await?;
        }
        txn.commit().await?;
        self.outbox.wake();
        Ok(())
    }

    /// Removes the caller's reaction, or with MANAGE_MESSAGES someone else's.
    pub async fn remove_reaction(
        &self,
        caller: &Caller,
        guild_id: &str,
        channel_id: &str,
        message_id: &str,
        emoji: &str,
        user_id: &str,
    ) -> Result<()> {
        let message_id = validate::id("message_id", message_id)?;
        let emoji = message::emoji(emoji)?;
        let user_id = if user_id.is_empty() {
            caller.user_id().to_owned()
        } else {
            validate::user_id(user_id)?
        };
        let (access, channel) = self
            .channel_access(&self.db, caller, guild_id, channel_id, &[VIEW_CHANNELS])
            .await?;
        let txn = self.db.begin().await?;
        if user_id != caller.user_id() {
            access.require(MANAGE_MESSAGES)?;
        }
        store::messages::find(&txn, &channel.id, &message_id)
            .await?
            .ok_or_else(missing)?;
        if store::messages::remove_reaction(&txn, &message_id, &user_id, &emoji).await? {
            let removed = ReactionRemoved {
                guild_id: access.guild.id.clone(),
                channel_id: channel.id,
                message_id,
                user_id,
                emoji,
            };
            self.record(&txn, &access.guild.id, Payload::ReactionRemoved(removed))
                .await?;
        }
        txn.commit().await?;
        self.outbox.wake();
        Ok(())
    }

    pub async fn list_reactions(
        &self,
        caller: &Caller,
        target: MessageRef<'_>,
        emoji: &str,
        size: i32,
        token: &str,
    ) -> Result<(Vec<String>, String)> {
        let MessageRef {
            guild_id,
            channel_id,
            message_id,
        } = target;
        let message_id = validate::id("message_id", message_id)?;
        let emoji = message::emoji(emoji)?;
        let limit = page_size(size)?;
        let after = (!token.is_empty())
            .then(|| validate::user_id(token))
            .transpose()?;
        let (_, channel) = self
            .channel_access(
                &self.db,
                caller,
                guild_id,
                channel_id,
                &[VIEW_CHANNELS, READ_HISTORY],
            )
            .await?;
        store::messages::find(&self.db, &channel.id, &message_id)
            .await?
            .ok_or_else(missing)?;
        let users =
            store::messages::reactors(&self.db, &message_id, &emoji, after.as_deref(), limit)
                .await?;
        let next = if users.len() as u64 == limit {
            users.last().cloned().unwrap_or_default()
        } else {
            String::new()
        };
        Ok((users, next))
    }

    /// Tells the channel the caller is typing: never stored, at most once per 3 s per user and
    /// channel (more often succeeds but is dropped).
    pub async fn send_typing(
        &self,
        caller: &Caller,
        guild_id: &str,
        channel_id: &str,
    ) -> Result<()> {
        let (access, channel) = self
            .channel_access(
                &self.db,
                caller,
                guild_id,
                channel_id,
                &[VIEW_CHANNELS, SEND_MESSAGES],
            )
            .await?;
        let key = (caller.user_id().to_owned(), channel.id.clone());
        {
            let mut recent = self.typing.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if recent
                .get(&key)
                .is_some_and(|at| now.duration_since(*at) < TYPING_INTERVAL)
            {
                return Ok(());
            }
            recent.retain(|_, at| now.duration_since(*at) < TYPING_INTERVAL);
            recent.insert(key, now);
        }
        let payload = Payload::TypingStarted(TypingStarted {
            guild_id: access.guild.id.clone(),
            channel_id: channel.id,
            user_id: caller.user_id().to_owned(),
        });
        // The same encoded Event as stored events, but only on the bus, never in the log.
        let event = guild_event(&access.guild.id, payload);
        match self
            .bus
            .publish_ephemeral(&event.subject, event.payload.into())
            .await
        {
            Ok(()) => mzchat_platform::shared_metrics::count_published_ephemeral(),
            Err(err) => tracing::debug!(error = %err, "typing notice not sent"),
        }
        Ok(())
    }
}
