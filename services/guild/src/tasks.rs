//! The guild service's background loops.

use std::{sync::Arc, time::Duration};

use mzchat_platform::{
    bus::{Bus, ConsumerSpec, Envelope, HandlerError, consume_forever, streams},
    db,
};
use mzchat_proto::identity::ProfileUpdated;
use prost::Message;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use crate::{app::GuildApp, domain::GuildError, store};

/// How long streams can resume: at least the 24 h the protocol asks for.
const EVENT_RETENTION: Duration = Duration::from_secs(7 * 86_400);
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);
const PRESENCE_SWEEP: Duration = Duration::from_secs(15);

/// Runs `step` every `period` until `shutdown`.
async fn every<F, Fut>(period: Duration, shutdown: CancellationToken, mut step: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => step().await,
        }
    }
}

pub async fn prune_events(db: DatabaseConnection, shutdown: CancellationToken) {
    every(PRUNE_INTERVAL, shutdown, || async {
        let before = db::now_millis() - EVENT_RETENTION.as_millis() as i64;
        match store::events::prune(&db, before).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "old guild events pruned"),
            Err(err) => tracing::error!(error = %err, "pruning guild events failed"),
        }
    })
    .await
}

/// Takes users offline whose streams died with their replica.
pub async fn sweep_presence(app: Arc<GuildApp>, shutdown: CancellationToken) {
    every(PRESENCE_SWEEP, shutdown, || async {
        if let Err(err) = app.sweep_presence().await {
            tracing::error!(error = %err, "presence sweep failed");
        }
    })
    .await
}

/// Forgets cached guild state when any replica changes a guild's permissions or deletes it.
pub async fn follow_permission_changes(
    app: Arc<GuildApp>,
    bus: Arc<dyn Bus>,
    shutdown: CancellationToken,
) {
    let subscribe = |pattern: &'static str| {
        let bus = bus.clone();
        async move { bus.subscribe(pattern).await }
    };
    let (changed, deleted) = tokio::join!(
        subscribe("guild.v1.g.*.permissions.changed"),
        subscribe("guild.v1.g.*.guild.deleted")
    );
    let (Ok(mut changed), Ok(mut deleted)) = (changed, deleted) else {
        tracing::error!("permission cache cannot follow changes; entries expire on their own");
        return;
    };
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return,
            m = changed.recv() => m,
            m = deleted.recv() => m,
        };
        let Some(message) = message else { return };
        if let Some(guild_id) = crate::app::guild_of(&message.subject) {
            app.cache.forget(guild_id);
        }
    }
}

/// Keeps the profiles identity publishes, for member lists.
pub async fn follow_profiles(app: Arc<GuildApp>, bus: Arc<dyn Bus>, shutdown: CancellationToken) {
    let spec = ConsumerSpec {
        stream: streams::IDENTITY,
        durable: "guild-profiles".into(),
        filter: "identity.v1.profile.updated".into(),
        max_deliver: 50,
        ack_wait: Duration::from_secs(30),
        // A user's later profile must not be overwritten by an earlier one.
        ordered: true,
    };
    let handler = move |envelope: Envelope| {
        let app = app.clone();
        async move {
            let update = ProfileUpdated::decode(envelope.payload.as_ref())
                .map_err(|e| HandlerError::Permanent(format!("malformed profile: {e}")))?;
            let Some(profile) = update.profile else {
                return Ok(());
            };
            app.apply_profile(&profile).await.map_err(|err| match err {
                GuildError::Store(_) => {
                    HandlerError::Transient(err.to_string(), Duration::from_secs(2))
                }
                other => HandlerError::Permanent(other.to_string()),
            })
        }
    };
    consume_forever(bus, spec, shutdown, handler).await;
}
