//! Message sends, written in batches. Every send's transaction ends holding the outbox's and the
//! event log's locks until its commit (that is what keeps events in commit order), so under load
//! sends queue on those locks one commit at a time. Here one task writes the sends that arrived
//! meanwhile in one transaction, with one insert per table: the locks and the commit are paid
//! once per batch. A lone send is written at once, so an idle server adds no delay.

use std::sync::Arc;

use mzchat_platform::outbox::Outbox;
use mzchat_proto::guild::{MessageCreated, event::Payload};
use sea_orm::{DatabaseConnection, TransactionTrait};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::record_events;
use crate::{
    config::GuildConfig,
    convert,
    domain::{GuildError, Result, model::Message},
    events::guild_event,
    store,
};

/// Sends written in one transaction at most.
const MAX_BATCH: usize = 64;

struct Pending {
    message: Message,
    /// The request's span: the message's event carries its trace.
    span: tracing::Span,
    reply: oneshot::Sender<Result<(Message, bool)>>,
}

#[derive(Clone)]
pub struct MessageWriter {
    queue: mpsc::Sender<Pending>,
}

impl MessageWriter {
    /// Starts the writing task; it ends when the last `MessageWriter` is dropped.
    pub fn start(db: DatabaseConnection, outbox: Outbox, config: Arc<GuildConfig>) -> Self {
        let (queue, pending) = mpsc::channel(MAX_BATCH * 4);
        tokio::spawn(
            run(db, outbox, config, pending).instrument(tracing::info_span!("message_writer")),
        );
        Self { queue }
    }

    /// Stores `message` (or, for a nonce used before, returns the earlier message, not new) and
    /// records its MessageCreated event.
    pub async fn write(&self, message: Message) -> Result<(Message, bool)> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            message,
            span: tracing::Span::current(),
            reply,
        };
        let stopped = || GuildError::Unavailable("the message writer has stopped".into());
        self.queue.send(pending).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(
    db: DatabaseConnection,
    outbox: Outbox,
    config: Arc<GuildConfig>,
    mut queue: mpsc::Receiver<Pending>,
) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        match write(&db, &outbox, &config, &batch).await {
            Ok(stored) => answer(batch, stored),
            Err(err) if batch.len() == 1 => {
                let _ = batch.remove(0).reply.send(Err(err));
            }
            // One bad send must not fail the others: each is written alone.
            Err(_) => {
                for pending in batch {
                    match write(&db, &outbox, &config, std::slice::from_ref(&pending)).await {
                        Ok(stored) => answer(vec![pending], stored),
                        Err(err) => {
                            let _ = pending.reply.send(Err(err));
                        }
                    }
                }
            }
        }
        outbox.wake();
    }
}

/// Gives each send its stored message (`store::messages::insert` answers one per message).
fn answer(batch: Vec<Pending>, stored: Vec<(Message, bool)>) {
    for (pending, stored) in batch.into_iter().zip(stored) {
        let _ = pending.reply.send(Ok(stored));
    }
}

async fn write(
    db: &DatabaseConnection,
    outbox: &Outbox,
    config: &GuildConfig,
    batch: &[Pending],
) -> Result<Vec<(Message, bool)>> {
    let messages: Vec<&Message> = batch.iter().map(|p| &p.message).collect();
    let txn = db.begin().await?;
    let stored = store::messages::insert(&txn, &messages).await?;
    let events: Vec<_> = batch
        .iter()
        .zip(&stored)
        .filter(|(_, (_, new))| *new)
        .map(|(pending, (message, _))| {
            let created = MessageCreated {
                message: Some(convert::message(message, &config.server.assets_origin)),
            };
            let event = pending
                .span
                .in_scope(|| guild_event(&message.guild_id, Payload::MessageCreated(created)));
            (message.guild_id.clone(), event)
        })
        .collect();
    record_events(outbox, &txn, &events).await?;
    txn.commit().await?;
    Ok(stored)
}
