//! SubscribeEvents: replay the log after the client's cursor, then follow it. The bus only wakes
//! the stream (one live feed per process, see `live`); what is sent always comes from the log, in log order,
//! so a reconnect with the last cursor misses nothing and repeats nothing. Typing notices are
//! ephemeral and go straight from the bus.

use std::{pin::Pin, sync::Arc, time::Duration};

use futures::Stream;
use mzchat_platform::{
    bus::{Bus, Message},
    error::to_status,
    session_keys::SessionKeys,
};
use mzchat_proto::{
    guild::{
        Event, Keepalive, SubscribeEventsRequest, SubscribeEventsResponse, event::Payload,
        event_service_server::EventService,
    },
    identity::DeviceRevoked,
};
use prost::Message as _;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{
    caller,
    live::{self, LiveFeed, REVOKED_SUBJECT},
};
use crate::{
    app::{Caller, GuildApp, HEARTBEAT, StreamStart},
    domain::GuildError,
};

const KEEPALIVE: Duration = Duration::from_secs(30);
/// A safety net: the log is read at least this often even without a wake-up.
const POLL: Duration = Duration::from_secs(2);
const BATCH: u64 = 200;

pub struct EventGrpc {
    app: Arc<GuildApp>,
    keys: Arc<SessionKeys>,
    live: LiveFeed,
}

impl EventGrpc {
    pub fn new(app: Arc<GuildApp>, keys: Arc<SessionKeys>, bus: Arc<dyn Bus>) -> Self {
        Self {
            app,
            keys,
            live: LiveFeed::new(bus),
        }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<SubscribeEventsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl EventService for EventGrpc {
    async fn subscribe_events(
        &self,
        request: Request<SubscribeEventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let caller = caller(&self.keys, &request).await?;
        let resume_after = request.into_inner().resume_after;
        let start = self
            .app
            .open_stream(&caller, resume_after.as_deref())
            .await
            .map_err(|e| to_status(&e))?;
        // Subscribe before the first read, so nothing committed in between goes unnoticed.
        let wake = self
            .live
            .subscribe()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let (tx, rx) = mpsc::channel(256);
        let stream_id = uuid::Uuid::now_v7().to_string();
        self.app
            .stream_opened(&stream_id, &caller.claims.sub)
            .await
            .map_err(|e| to_status(&e))?;
        let app = self.app.clone();
        tokio::spawn(async move {
            run(app.clone(), &caller, &stream_id, start, wake, tx).await;
            if let Err(err) = app.stream_closed(&stream_id, &caller.claims.sub).await {
                tracing::warn!(error = %err, "presence not settled after a stream closed");
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

type Out = mpsc::Sender<Result<SubscribeEventsResponse, Status>>;

async fn send(out: &Out, event: Event) -> bool {
    out.send(Ok(SubscribeEventsResponse { event: Some(event) }))
        .await
        .is_ok()
}

fn stale(guild_id: &str, current: u64) -> Status {
    to_status(&GuildError::PermissionsStale {
        guild_id: guild_id.to_owned(),
        current,
    })
}

/// Sends the log after `cursor`; returns the new cursor, or None when the stream must end.
async fn drain(
    app: &GuildApp,
    caller: &Caller,
    start: &StreamStart,
    mut cursor: i64,
    out: &Out,
) -> Option<i64> {
    let guilds = start.guild_ids();
    loop {
        let batch = match app.read_events(&guilds, cursor, BATCH).await {
            Ok(batch) => batch,
            Err(err) => {
                let _ = out.send(Err(to_status(&err))).await;
                return None;
            }
        };
        let full = batch.len() as u64 == BATCH;
        for entry in batch {
            cursor = entry.seq;
            let Some(mut event) = entry.event.clone() else {
                continue;
            };
            event.cursor = entry.seq.to_string();
            // Checked before visibility: a change in a guild the caller cannot view still means
            // the token is out of date.
            let outdated = match &event.payload {
                Some(Payload::PermissionsChanged(changed)) => caller
                    .claims
                    .permission_versions_by_guild
                    .get(&changed.guild_id)
                    .is_some_and(|v| *v < changed.version)
                    .then(|| (changed.guild_id.clone(), changed.version)),
                _ => None,
            };
            if start.may_view(&entry.guild_id) && !send(out, event).await {
                return None;
            }
            if let Some((guild_id, version)) = outdated {
                // The token no longer describes this member: end with the reason, after the
                // event, so the client refreshes and resumes from this cursor.
                let _ = out.send(Err(stale(&guild_id, version))).await;
                return None;
            }
        }
        if !full {
            return Some(cursor);
        }
    }
}

async fn run(
    app: Arc<GuildApp>,
    caller: &Caller,
    stream_id: &str,
    start: StreamStart,
    mut wake: broadcast::Receiver<Message>,
    out: Out,
) {
    let mut cursor = start.cursor;
    let expires_in = Duration::from_secs(
        u64::try_from(caller.claims.exp - mzchat_platform::db::now_millis() / 1000).unwrap_or(0),
    );
    let expiry = tokio::time::sleep(expires_in);
    tokio::pin!(expiry);
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.tick().await;
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    let mut poll = tokio::time::interval(POLL);
    poll.tick().await;
    loop {
        match drain(&app, caller, &start, cursor, &out).await {
            Some(next) => cursor = next,
            None => return,
        }
        // Waits for something that concerns this stream; the feed carries every guild's events.
        loop {
            tokio::select! {
                message = wake.recv() => match message {
                    Ok(message) => match concerns(caller, &start, &message) {
                        Concern::Nothing => {}
                        Concern::Logged => break,
                        Concern::Typing(event) => {
                            if !send(&out, *event).await {
                                return;
                            }
                        }
                        Concern::Revoked => {
                            let _ = out.send(Err(Status::unauthenticated("this device has been revoked"))).await;
                            return;
                        }
                    },
                    // Behind the feed: whatever was missed is in the log.
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = keepalive.tick() => {
                    let beat = Event {
                        id: uuid::Uuid::now_v7().to_string(),
                        cursor: cursor.to_string(),
                        at: None,
                        guild_id: String::new(),
                        payload: Some(Payload::Keepalive(Keepalive {})),
                    };
                    if !send(&out, beat).await {
                        return;
                    }
                }
                _ = &mut expiry => {
                    let _ = out
                        .send(Err(Status::unauthenticated("access token expired; reconnect with a fresh one and resume_after")))
                        .await;
                    return;
                }
                _ = heartbeat.tick() => {
                    if let Err(err) = app.stream_alive(stream_id).await {
                        tracing::warn!(error = %err, "stream heartbeat not recorded");
                    }
                }
                _ = poll.tick() => break,
                _ = out.closed() => return,
            }
        }
    }
}

/// What a message of the live feed means for one stream.
enum Concern {
    Nothing,
    /// A logged event of one of its guilds: read the log.
    Logged,
    /// A typing notice it may see (never logged: sent as it comes).
    Typing(Box<Event>),
    /// Its own device was revoked.
    Revoked,
}

fn concerns(caller: &Caller, start: &StreamStart, message: &Message) -> Concern {
    if message.subject == REVOKED_SUBJECT {
        let revoked = DeviceRevoked::decode(message.payload.clone());
        return match revoked {
            Ok(r) if r.user_id == caller.claims.sub && r.device_id == caller.claims.did => {
                Concern::Revoked
            }
            _ => Concern::Nothing,
        };
    }
    match live::guild_of(&message.subject) {
        Some(guild_id) if start.guilds.contains_key(guild_id) => {}
        _ => return Concern::Nothing,
    }
    if !message.subject.ends_with(".typing.started") {
        return Concern::Logged;
    }
    match Event::decode(message.payload.clone()) {
        Ok(event) if start.may_view(&event.guild_id) => Concern::Typing(Box::new(event)),
        _ => Concern::Nothing,
    }
}
