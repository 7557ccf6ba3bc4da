//! Load scenarios against a running homeserver (loopback only). Prints throughput and latency
//! percentiles; the machine is shared and noisy, so compare runs as ratios.
//!
//! `send`: N concurrent senders post messages for D seconds.
//! `fanout`: S members hold event streams while one member posts; measures the time from a
//! send's acknowledgement to each stream receiving it.
//! `verify`: VerifyUser jobs through federation-sync against a peer with fixed latency.
//! `push`: mention pushes to distributors served by the load generator.
//! `media`: uploads and downloads of files, several clients at once.
//! `join`: federated joins (login included) while the users' home server is down.

mod faults;
mod join;
mod media;
mod push;
mod ratelimit;
mod results;
mod verify;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::{Parser, Subcommand};
use futures::{StreamExt, TryStreamExt};
use mzchat_client::{Client, KeyStore, LocalIdentity};
use mzchat_proto::guild::{
    CreateGuildRequest, CreateInviteRequest, JoinInviteRequest, ListChannelsRequest,
    SendMessageRequest, SubscribeEventsRequest, event::Payload,
    event_service_client::EventServiceClient, guild_service_client::GuildServiceClient,
    message_service_client::MessageServiceClient,
};
use tokio::sync::Mutex;

#[derive(Parser)]
struct Cli {
    #[arg(long, default_value = "http://127.0.0.1:7600")]
    server: String,
    /// Append the run's figures to this file as one JSON line.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// The server's process id, to report its CPU time and peak memory over the run.
    #[arg(long)]
    server_pid: Option<u32>,
    /// A name for the run in the JSON (e.g. "send, 50 senders, SQLite").
    #[arg(long)]
    label: Option<String>,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    Send {
        #[arg(long, default_value_t = 50)]
        senders: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    Fanout {
        #[arg(long, default_value_t = 100)]
        streams: usize,
        #[arg(long, default_value_t = 50)]
        messages: usize,
    },
    /// VerifyUser jobs through the homeserver's federation-sync (needs its NATS).
    Verify {
        #[arg(long, default_value = "nats://127.0.0.1:4222")]
        nats_url: String,
        #[arg(long)]
        bus_prefix: String,
        #[arg(long, default_value_t = 2000)]
        jobs: usize,
        #[arg(long, default_value_t = 50)]
        latency_ms: u64,
    },
    /// Mention pushes: members x messages deliveries (the server must allow 127.0.0.1
    /// endpoints).
    Push {
        #[arg(long, default_value_t = 50)]
        members: usize,
        #[arg(long, default_value_t = 20)]
        messages: usize,
        /// Home server of the members (default: the server itself); pushes are then relayed.
        #[arg(long)]
        home: Option<String>,
    },
    /// Uploads and downloads: each client sends a file of `mib` MiB, then fetches it.
    Media {
        #[arg(long, default_value_t = 1)]
        clients: usize,
        #[arg(long, default_value_t = 50)]
        mib: usize,
    },
    /// Federated joins: users homed on `home` join a guild of the server while their home is
    /// down (the scenario stops `home_pid` after registering them).
    Join {
        #[arg(long)]
        home: String,
        #[arg(long)]
        home_pid: u32,
        #[arg(long, default_value_t = 500)]
        users: usize,
        #[arg(long, default_value_t = 10)]
        concurrency: usize,
    },
    /// The rate limiter's cost per call, in memory and shared through NATS (no server needed).
    Ratelimit {
        #[arg(long, default_value = "nats://127.0.0.1:4222")]
        nats_url: String,
        #[arg(long, default_value_t = 5000)]
        calls: usize,
    },
    /// The fault suite's router and load (deploy/faults/run.py, `make test-faults`).
    Faults {
        #[command(subcommand)]
        part: faults::Part,
    },
    /// Removes the JetStream streams a benchmark's homeserver created under `bus_prefix`.
    DropStreams {
        #[arg(long, default_value = "nats://127.0.0.1:4222")]
        nats_url: String,
        #[arg(long)]
        bus_prefix: String,
    },
}

/// Requests in flight while a scenario sets up its users and guild.
const SETUP_CONCURRENCY: usize = 16;

/// `count` users of `origin`, logged in.
async fn users(origin: &str, dir: &std::path::Path, count: usize) -> anyhow::Result<Vec<Client>> {
    futures::stream::iter(0..count)
        .map(|_| user(origin, dir))
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect()
        .await
}

struct Room {
    guild: String,
    channel: String,
    /// An invite link of the guild (no limit on uses or age).
    invite_link: String,
}

async fn user(origin: &str, dir: &std::path::Path) -> anyhow::Result<Client> {
    let store = KeyStore::new(dir.join(uuid::Uuid::new_v4().simple().to_string()));
    store.save_identity(&LocalIdentity::generate(origin, "load")?)?;
    let client = Client::open(store)?;
    client.login(origin, None, "").await?;
    Ok(client)
}

/// A guild owned by `owner` with `members` joined; everyone's token carries it.
async fn room(origin: &str, owner: &Client, members: &[Client]) -> anyhow::Result<Room> {
    let created = GuildServiceClient::new(owner.channel(origin)?)
        .create_guild(
            owner
                .authed(
                    origin,
                    CreateGuildRequest {
                        name: "load".into(),
                        icon_file_id: String::new(),
                    },
                )
                .await?,
        )
        .await?
        .into_inner();
    owner.refresh(origin).await?;
    let guild = created.guild.context("guild")?.id;
    let mut guilds = GuildServiceClient::new(owner.channel(origin)?);
    let channel = guilds
        .list_channels(
            owner
                .authed(
                    origin,
                    ListChannelsRequest {
                        guild_id: guild.clone(),
                    },
                )
                .await?,
        )
        .await?
        .into_inner()
        .channels[0]
        .id
        .clone();
    let invite = guilds
        .create_invite(
            owner
                .authed(
                    origin,
                    CreateInviteRequest {
                        guild_id: guild.clone(),
                        channel_id: channel.clone(),
                        max_age: None,
                        max_uses: 0,
                    },
                )
                .await?,
        )
        .await?
        .into_inner()
        .invite
        .context("invite")?;
    // Joined a few at a time: setting up a thousand members one by one takes minutes.
    let token = &invite.token;
    futures::stream::iter(members)
        .map(|member| async move {
            GuildServiceClient::new(member.channel(origin)?)
                .join_invite(
                    member
                        .authed(
                            origin,
                            JoinInviteRequest {
                                token: token.clone(),
                                login: None,
                            },
                        )
                        .await?,
                )
                .await?;
            member.refresh(origin).await?;
            anyhow::Ok(())
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(Room {
        guild,
        channel,
        invite_link: invite.link,
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    results::latency(what, &samples, |p| percentile(&samples, p));
    println!(
        "{what}: n={} p50={:.1}ms p90={:.1}ms p99={:.1}ms max={:.1}ms",
        samples.len(),
        percentile(&samples, 0.50).as_secs_f64() * 1e3,
        percentile(&samples, 0.90).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

async fn send_scenario(
    origin: &str,
    dir: &std::path::Path,
    senders: usize,
    seconds: u64,
) -> anyhow::Result<()> {
    let owner = user(origin, dir).await?;
    let members = users(origin, dir, senders).await?;
    let room = Arc::new(room(origin, &owner, &members).await?);
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let end = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks = members.into_iter().enumerate().map(|(n, member)| {
        let (room, latencies, origin) = (room.clone(), latencies.clone(), origin.to_owned());
        async move {
            let mut api = MessageServiceClient::new(member.channel(&origin)?);
            let mut i = 0;
            while Instant::now() < end {
                let request = SendMessageRequest {
                    guild_id: room.guild.clone(),
                    channel_id: room.channel.clone(),
                    content: format!("load {n}.{i}"),
                    ..Default::default()
                };
                let request = member.authed(&origin, request).await?;
                let at = Instant::now();
                api.send_message(request).await?;
                latencies.lock().await.push(at.elapsed());
                i += 1;
            }
            anyhow::Ok(())
        }
    });
    for result in futures::future::join_all(tasks).await {
        result?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let samples = latencies.lock().await.clone();
    let rate = samples.len() as f64 / elapsed;
    results::throughput("messages/s", rate);
    println!("send: {senders} senders, {rate:.0} messages/s over {elapsed:.1}s");
    report("send latency", samples);
    Ok(())
}

async fn fanout_scenario(
    origin: &str,
    dir: &std::path::Path,
    streams: usize,
    messages: usize,
) -> anyhow::Result<()> {
    let owner = user(origin, dir).await?;
    let members = users(origin, dir, streams).await?;
    let room = room(origin, &owner, &members).await?;
    let sent: Arc<Mutex<std::collections::HashMap<String, Instant>>> = Arc::default();
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let mut readers = Vec::new();
    for member in &members {
        let request = member
            .authed(origin, SubscribeEventsRequest { resume_after: None })
            .await?;
        let mut stream = EventServiceClient::new(member.channel(origin)?)
            .subscribe_events(request)
            .await?
            .into_inner();
        let (sent, latencies) = (sent.clone(), latencies.clone());
        readers.push(tokio::spawn(async move {
            let mut got = 0;
            while got < messages {
                let Ok(Some(item)) = stream.message().await else {
                    break;
                };
                if let Some(Payload::MessageCreated(created)) = item.event.and_then(|e| e.payload) {
                    let content = created.message.map(|m| m.content).unwrap_or_default();
                    if let Some(at) = sent.lock().await.get(&content) {
                        latencies.lock().await.push(at.elapsed());
                    }
                    got += 1;
                }
            }
        }));
    }
    let mut api = MessageServiceClient::new(owner.channel(origin)?);
    for i in 0..messages {
        let content = format!("fanout {i}");
        let request = SendMessageRequest {
            guild_id: room.guild.clone(),
            channel_id: room.channel.clone(),
            content: content.clone(),
            ..Default::default()
        };
        let request = owner.authed(origin, request).await?;
        sent.lock().await.insert(content, Instant::now());
        api.send_message(request).await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for reader in readers {
        let _ = tokio::time::timeout(Duration::from_secs(30), reader).await;
    }
    let samples = latencies.lock().await.clone();
    results::throughput("deliveries", samples.len() as f64);
    println!(
        "fanout: {streams} streams, {messages} messages, {} deliveries (expected {})",
        samples.len(),
        streams * messages
    );
    report("delivery latency", samples);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let dir = std::env::temp_dir().join(format!("mzchat-load-{}", std::process::id()));
    let server = cli.server_pid.map(results::Server::watch);
    let name = cli.scenario.name();
    let result = match cli.scenario {
        Scenario::Send { senders, seconds } => {
            send_scenario(&cli.server, &dir, senders, seconds).await
        }
        Scenario::Fanout { streams, messages } => {
            fanout_scenario(&cli.server, &dir, streams, messages).await
        }
        Scenario::Verify {
            nats_url,
            bus_prefix,
            jobs,
            latency_ms,
        } => verify::verify_scenario(&nats_url, &bus_prefix, jobs, latency_ms).await,
        Scenario::Push {
            members,
            messages,
            home,
        } => push::push_scenario(&cli.server, home.as_deref(), &dir, members, messages).await,
        Scenario::Media { clients, mib } => {
            media::media_scenario(&cli.server, &dir, clients, mib).await
        }
        Scenario::Join {
            home,
            home_pid,
            users,
            concurrency,
        } => join::join_scenario(&cli.server, &home, home_pid, &dir, users, concurrency).await,
        Scenario::Ratelimit { nats_url, calls } => {
            ratelimit::ratelimit_scenario(&nats_url, calls).await
        }
        Scenario::Faults { part } => faults::run(part, &dir).await,
        Scenario::DropStreams {
            nats_url,
            bus_prefix,
        } => verify::drop_streams(&nats_url, &bus_prefix).await,
    };
    std::fs::remove_dir_all(&dir).ok();
    if let Some(label) = &cli.label {
        results::field("label", serde_json::json!(label));
    }
    results::finish(name, result.is_ok(), server, cli.json.as_deref())?;
    result
}

impl Scenario {
    fn name(&self) -> &'static str {
        match self {
            Scenario::Send { .. } => "send",
            Scenario::Fanout { .. } => "fanout",
            Scenario::Verify { .. } => "verify",
            Scenario::Push { .. } => "push",
            Scenario::Media { .. } => "media",
            Scenario::Join { .. } => "join",
            Scenario::Ratelimit { .. } => "ratelimit",
            Scenario::Faults { .. } => "faults",
            Scenario::DropStreams { .. } => "drop-streams",
        }
    }
}
