//! NATS JetStream implementation of [`Bus`]: one stream per owning service, durable pull
//! consumers, `Nats-Msg-Id` deduplication. Consumers survive NATS restarts: the pump re-creates
//! its consumer and resumes.

use std::{path::Path, time::Duration};

use async_nats::jetstream::{
    self, AckKind,
    consumer::{AckPolicy, pull},
    stream::{RetentionPolicy, StorageType},
};
use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::{Bus, BusError, ConsumerSpec, Delivery, Message, Settle, StreamSpec, local::Outcome};

/// How long JetStream remembers message ids for deduplication.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages a live subscriber may lag behind before it loses some.
const LIVE_BUFFER: usize = 1024;

#[derive(Clone)]
pub struct NatsBus {
    js: jetstream::Context,
    prefix: String,
    replicas: usize,
}

impl NatsBus {
    /// Connects (retrying in the background if NATS is not up yet).
    pub async fn connect(url: &str, prefix: &str, replicas: usize) -> Result<Self, BusError> {
        Self::connect_with(url, None, prefix, replicas).await
    }

    /// Connects to the servers of `urls` (comma separated), with a credentials file when the
    /// servers require one.
    pub async fn connect_with(
        urls: &str,
        credentials: Option<&Path>,
        prefix: &str,
        replicas: usize,
    ) -> Result<Self, BusError> {
        let client = connect_client(urls, credentials).await?;
        let mut js = jetstream::new(client);
        js.set_timeout(PUBLISH_TIMEOUT);
        Ok(Self {
            js,
            prefix: prefix.to_owned(),
            replicas: replicas.max(1),
        })
    }

    fn subject(&self, relative: &str) -> String {
        format!("{}.{relative}", self.prefix)
    }

    fn stream_name(&self, name: &str) -> String {
        format!("{}_{}", self.prefix, name)
            .to_ascii_uppercase()
            .replace(['-', '.'], "_")
    }
}

/// A client of the servers of `urls` (comma separated), with a credentials file when the
/// servers require one; it keeps reconnecting in the background if they are not up yet.
pub async fn connect_client(
    urls: &str,
    credentials: Option<&Path>,
) -> Result<async_nats::Client, BusError> {
    let servers = server_addrs(urls).map_err(BusError::Other)?;
    let mut options = async_nats::ConnectOptions::new();
    if let Some(path) = credentials {
        options = options
            .credentials_file(path)
            .await
            .map_err(|e| BusError::Other(format!("NATS credentials {}: {e}", path.display())))?;
    }
    options
        .name("mzchatd")
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .event_callback(|event| async move {
            tracing::info!(%event, "nats connection event");
        })
        .connect(servers)
        .await
        .map_err(|e| BusError::Unavailable(e.to_string()))
}

#[async_trait]
impl Bus for NatsBus {
    async fn ensure_stream(&self, spec: &StreamSpec) -> Result<(), BusError> {
        let config = jetstream::stream::Config {
            name: self.stream_name(spec.name),
            subjects: spec.subjects.iter().map(|s| self.subject(s)).collect(),
            retention: if spec.work_queue {
                RetentionPolicy::WorkQueue
            } else {
                RetentionPolicy::Limits
            },
            max_age: spec.max_age,
            storage: StorageType::File,
            num_replicas: self.replicas,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        self.js
            .get_or_create_stream(config)
            .await
            .map(|_| ())
            .map_err(|e| BusError::Unavailable(format!("create stream {}: {e}", spec.name)))
    }

    async fn publish(&self, message: Message) -> Result<(), BusError> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", message.id.as_str());
        for (name, value) in &message.headers {
            headers.insert(name.as_str(), value.as_str());
        }
        let ack = self
            .js
            .publish_with_headers(self.subject(&message.subject), headers, message.payload)
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
        ack.await
            .map(|_| ())
            .map_err(|e| BusError::Unavailable(e.to_string()))
    }

    async fn consume(&self, spec: ConsumerSpec) -> Result<mpsc::Receiver<Delivery>, BusError> {
        let (tx, rx) = mpsc::channel(64);
        let bus = self.clone();
        tokio::spawn(async move { bus.pump(spec, tx).await });
        Ok(rx)
    }

    async fn pending(&self, spec: &ConsumerSpec) -> Result<u64, BusError> {
        let unavailable = |e: &dyn std::fmt::Display| BusError::Unavailable(e.to_string());
        let stream = self
            .js
            .get_stream(self.stream_name(spec.stream))
            .await
            .map_err(|e| unavailable(&e))?;
        let info = stream
            .consumer_info(&spec.durable)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(info.num_pending + info.num_ack_pending as u64)
    }

    async fn check(&self) -> Result<(), BusError> {
        match self.js.client().connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            state => Err(BusError::Unavailable(format!("nats connection {state:?}"))),
        }
    }

    async fn publish_ephemeral(
        &self,
        subject: &str,
        payload: bytes::Bytes,
    ) -> Result<(), BusError> {
        self.js
            .client()
            .publish(self.subject(subject), payload)
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))
    }

    async fn subscribe(&self, pattern: &str) -> Result<mpsc::Receiver<Message>, BusError> {
        let mut subscriber = self
            .js
            .client()
            .subscribe(self.subject(pattern))
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
        let (tx, rx) = mpsc::channel(LIVE_BUFFER);
        let prefix = format!("{}.", self.prefix);
        tokio::spawn(async move {
            while let Some(message) = subscriber.next().await {
                let headers: Vec<(String, String)> = message
                    .headers
                    .iter()
                    .flat_map(|h| h.iter())
                    .flat_map(|(name, values)| {
                        values
                            .iter()
                            .map(move |v| (name.to_string(), v.as_str().to_owned()))
                    })
                    .collect();
                let id = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("Nats-Msg-Id"))
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                let live = Message {
                    subject: message
                        .subject
                        .as_str()
                        .strip_prefix(&prefix)
                        .unwrap_or(message.subject.as_str())
                        .to_owned(),
                    id,
                    payload: message.payload,
                    headers,
                };
                match tx.try_send(live) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::debug!("live subscriber behind; message dropped")
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => break,
                }
            }
            let _ = subscriber.unsubscribe().await;
        });
        Ok(rx)
    }
}

impl NatsBus {
    /// Feeds deliveries to `tx` until it closes, re-creating the consumer after any error
    /// (NATS restarted, stream recreated, connection lost).
    async fn pump(self, spec: ConsumerSpec, tx: mpsc::Sender<Delivery>) {
        let mut backoff = Duration::from_millis(100);
        while !tx.is_closed() {
            match self.pump_once(&spec, &tx).await {
                Ok(()) => return,
                Err(err) => {
                    tracing::warn!(consumer = %spec.durable, error = %err, "bus consumer interrupted; re-creating");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn pump_once(
        &self,
        spec: &ConsumerSpec,
        tx: &mpsc::Sender<Delivery>,
    ) -> Result<(), String> {
        let stream = self
            .js
            .get_stream(self.stream_name(spec.stream))
            .await
            .map_err(|e| e.to_string())?;
        let consumer = stream
            .get_or_create_consumer(
                &spec.durable,
                pull::Config {
                    durable_name: Some(spec.durable.clone()),
                    filter_subject: self.subject(&spec.filter),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: spec.ack_wait,
                    max_deliver: spec.max_deliver as i64,
                    max_ack_pending: if spec.ordered { 1 } else { 1000 },
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
        let prefix = format!("{}.", self.prefix);
        while let Some(next) = messages.next().await {
            let message = next.map_err(|e| e.to_string())?;
            let attempt = message
                .info()
                .map(|i| i.delivered.max(1) as u64)
                .unwrap_or(1);
            let headers: Vec<(String, String)> = message
                .headers
                .iter()
                .flat_map(|h| h.iter())
                .flat_map(|(name, values)| {
                    values
                        .iter()
                        .map(move |v| (name.to_string(), v.as_str().to_owned()))
                })
                .collect();
            let id = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("Nats-Msg-Id"))
                .map(|(_, v)| v.clone());
            let delivery = Delivery {
                subject: message
                    .subject
                    .as_str()
                    .strip_prefix(&prefix)
                    .unwrap_or(message.subject.as_str())
                    .to_owned(),
                id,
                payload: message.payload.clone(),
                headers,
                attempt,
                settle: Settle::Nats(Box::new(message)),
            };
            if tx.send(delivery).await.is_err() {
                return Ok(());
            }
        }
        Err("message stream ended".into())
    }
}

pub(super) async fn settle(message: &jetstream::Message, outcome: Outcome) -> Result<(), BusError> {
    let kind = match outcome {
        Outcome::Ack => AckKind::Ack,
        Outcome::Nak(delay) => AckKind::Nak(Some(delay)),
        Outcome::Term => AckKind::Term,
    };
    // Acks and terms wait for the server's confirmation: a lost ack would stall an ordered
    // consumer for its whole ack_wait and redeliver work already done.
    let result = match kind {
        AckKind::Nak(_) => message.ack_with(kind).await,
        _ => message.double_ack_with(kind).await,
    };
    result.map_err(|e| BusError::Unavailable(e.to_string()))
}

/// The servers of a comma-separated list of NATS URLs.
pub(crate) fn server_addrs(urls: &str) -> Result<Vec<async_nats::ServerAddr>, String> {
    let servers: Vec<async_nats::ServerAddr> = urls
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| {
            url.parse()
                .map_err(|e| format!("--nats-url: {url} is not a NATS URL ({e})"))
        })
        .collect::<Result<_, _>>()?;
    if servers.is_empty() {
        return Err("--nats-url names no server".into());
    }
    Ok(servers)
}
