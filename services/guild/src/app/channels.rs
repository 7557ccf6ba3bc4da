use mzchat_proto::guild::{ChannelCreated, ChannelDeleted, ChannelUpdated, event::Payload};
use sea_orm::TransactionTrait;

use super::{Caller, GuildApp, caps, now};
use crate::{
    convert,
    domain::{
        Result,
        model::Channel,
        not_found,
        permissions::{MANAGE_CHANNELS, VIEW_CHANNELS},
        validate::{self, MAX_TOPIC_CHARS},
    },
    store,
};

/// A channel change: `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ChannelChange {
    pub name: Option<String>,
    pub topic: Option<String>,
    pub position: Option<u32>,
}

impl GuildApp {
    pub async fn create_channel(
        &self,
        caller: &Caller,
        guild_id: &str,
        name: &str,
        topic: &str,
        position: Option<u32>,
    ) -> Result<Channel> {
        let name = validate::name("name", name)?;
        let topic = validate::text("topic", topic, MAX_TOPIC_CHARS)?;
        let txn = self.db.begin().await?;
        let access = self.access(&txn, caller, guild_id).await?;
        access.require(MANAGE_CHANNELS)?;
        caps::check_channels(&txn, &access.guild.id).await?;
        let position = match position {
            Some(p) => p,
            None => store::guilds::next_position(&txn, &access.guild.id).await?,
        };
        let channel = Channel {
            id: uuid::Uuid::now_v7().to_string(),
            guild_id: access.guild.id.clone(),
            name,
            topic,
            position,
            created_at: now(),
        };
        store::guilds::insert_channel(&txn, &channel).await?;
        let created = ChannelCreated {
            channel: Some(convert::channel(&channel)),
        };
        self.record(&txn, &channel.guild_id, Payload::ChannelCreated(created))
            .await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(channel)
    }

    pub async fn update_channel(
        &self,
        caller: &Caller,
        guild_id: &str,
        channel_id: &str,
        change: ChannelChange,
    ) -> Result<Channel> {
        let channel_id = validate::id("channel_id", channel_id)?;
        let name = change
            .name
            .as_deref()
            .map(|n| validate::name("name", n))
            .transpose()?;
        let topic = change
            .topic
            .as_deref()
            .map(|t| validate::text("topic", t, MAX_TOPIC_CHARS))
            .transpose()?;
        let txn = self.db.begin().await?;
        let access = self.access(&txn, caller, guild_id).await?;
        access.require(MANAGE_CHANNELS)?;
        let mut channel = store::guilds::find_channel(&txn, &access.guild.id, &channel_id)
            .await?
            .ok_or_else(|| not_found("no such channel in this guild"))?;
        if let Some(name) = name {
            channel.name = name;
        }
        if let Some(topic) = topic {
            channel.topic = topic;
        }
        if let Some(position) = change.position {
            channel.position = position;
        }
        store::guilds::update_channel(&txn, &channel).await?;
        let updated = ChannelUpdated {
            channel: Some(convert::channel(&channel)),
        };
        self.record(&txn, &channel.guild_id, Payload::ChannelUpdated(updated))
            .await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(channel)
    }

    pub async fn delete_channel(
        &self,
        caller: &Caller,
        guild_id: &str,
        channel_id: &str,
    ) -> Result<()> {
        let channel_id = validate::id("channel_id", channel_id)?;
        let txn = self.db.begin().await?;
        let access = self.access(&txn, caller, guild_id).await?;
        access.require(MANAGE_CHANNELS)?;
        store::guilds::find_channel(&txn, &access.guild.id, &channel_id)
            .await?
            .ok_or_else(|| not_found("no such channel in this guild"))?;
        store::guilds::delete_channel(&txn, &channel_id).await?;
        let deleted = ChannelDeleted {
            guild_id: access.guild.id.clone(),
            channel_id,
        };
        self.record(&txn, &access.guild.id, Payload::ChannelDeleted(deleted))
            .await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(())
    }

    pub async fn list_channels(&self, caller: &Caller, guild_id: &str) -> Result<Vec<Channel>> {
        let access = self.access_fast(caller, guild_id).await?;
        access.require(VIEW_CHANNELS)?;
        Ok(store::guilds::channels(&self.db, &access.guild.id).await?)
    }
}
