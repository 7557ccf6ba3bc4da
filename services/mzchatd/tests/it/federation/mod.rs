//! Federation between real homeservers on loopback (PROTOCOL.md sections 7 and 8, the reference
//! text's flows): each `mzchatd all` has its own origin and storage, over SQLite and the
//! in-process bus or over PostgreSQL and NATS (own schemas and bus prefix per server).

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use mzchat_client::{Client, KeyStore, LocalIdentity};
use mzchat_proto::{
    guild::{
        CreateGuildRequest, CreateInviteRequest, ListChannelsRequest, ListMessagesRequest,
        SendMessageRequest, guild_service_client::GuildServiceClient,
        message_service_client::MessageServiceClient,
    },
    identity::{AccountKind, Verification},
};
use tonic::Code;

use crate::daemon::{Daemon, free_port, unique};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    PostgresNats,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

pub fn database_url() -> String {
    env_or(
        "MZCHAT_TEST_DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/postgres",
    )
}

pub fn nats_url() -> String {
    env_or("MZCHAT_TEST_NATS_URL", "nats://127.0.0.1:4222")
}

/// One homeserver that can be stopped and started again on the same origin and storage.
pub struct Homeserver {
    pub daemon: Option<Daemon>,
    pub origin: String,
    pub port: u16,
    pub data: PathBuf,
    pub flags: Vec<String>,
    /// Bus subjects' prefix on the shared NATS (PostgreSQL + NATS only).
    pub bus_prefix: Option<String>,
    /// Environment of its processes (e.g. where traces go).
    pub env: Vec<(String, String)>,
}

impl Homeserver {
    pub fn start(backend: Backend, extra: &[&str]) -> Self {
        Self::start_with_env(backend, extra, Vec::new())
    }

    pub fn start_with_env(backend: Backend, extra: &[&str], env: Vec<(String, String)>) -> Self {
        let port = free_port();
        let name = unique("fed");
        let data = std::env::temp_dir().join(format!("mzchatd-{name}"));
        let mut flags: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        if backend == Backend::PostgresNats {
            flags.extend([
                "--migrate".into(),
                "--database-url".into(),
                database_url(),
                "--database-schema-prefix".into(),
                format!("{name}_"),
                "--nats-url".into(),
                nats_url(),
                "--bus-prefix".into(),
                name.clone(),
                "--internal-token".into(),
                format!("{name}-internal"),
                // Five services each keep a pool: small pools keep several homeservers (and
                // parallel tests) within PostgreSQL's default of 100 connections.
                "--database-max-connections".into(),
                "3".into(),
            ]);
        }
        let mut server = Self {
            daemon: None,
            origin: format!("http://127.0.0.1:{port}"),
            port,
            data,
            flags,
            bus_prefix: (backend == Backend::PostgresNats).then_some(name),
            env,
        };
        server.resume();
        server
    }

    pub fn resume(&mut self) {
        let flags: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        self.daemon = Some(Daemon::start_with_env(
            "all", self.port, &self.data, &flags, &self.env,
        ));
    }

    /// Another process of this homeserver, e.g. a second federation-sync replica.
    pub fn extra_process(&self, mode: &str) -> Daemon {
        let mut flags: Vec<&str> = self
            .flags
            .iter()
            .map(String::as_str)
            .filter(|f| *f != "--migrate")
            .collect();
        flags.extend([
            "--origin",
            &self.origin,
            "--identity-internal-url",
            &self.origin,
        ]);
        Daemon::start_mode(mode, free_port(), &self.data.join(mode), &flags)
    }

    /// The PostgreSQL schema of one of this homeserver's services.
    pub fn schema(&self, service: &str) -> String {
        format!(
            "{}_{service}",
            self.bus_prefix.as_deref().unwrap_or_default()
        )
    }

    /// Stops the server and drops its PostgreSQL schemas.
    pub async fn remove(mut self) {
        use sea_orm::ConnectionTrait;
        self.stop();
        if self.bus_prefix.is_none() {
            return;
        }
        let db = sea_orm::Database::connect(database_url())
            .await
            .expect("postgres");
        for service in ["identity", "guild", "federation", "push"] {
            db.execute_unprepared(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema(service)
            ))
            .await
            .expect("drop schema");
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            daemon.kill();
        }
    }
}

impl Drop for Homeserver {
    fn drop(&mut self) {
        // A failing test shows what each of its servers logged last.
        if std::thread::panicking()
            && let Some(daemon) = &self.daemon
        {
            let log = daemon.log_text();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            eprintln!(
                "--- {} (last lines of its log) ---\n{}",
                self.origin,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        self.stop();
        std::fs::remove_dir_all(&self.data).ok();
    }
}

pub fn user(home: &str, device_id: &str) -> Client {
    let store = KeyStore::new(std::env::temp_dir().join(unique("mzchatd-fed-client-")));
    store
        .save_identity(&LocalIdentity::generate(home, device_id).expect("keys"))
        .expect("save");
    Client::open(store).expect("client")
}

/// The same user on another device (same root key, own device key).
pub fn other_device(client: &Client, device_id: &str) -> Client {
    let mut identity =
        LocalIdentity::generate(&client.identity().home_server, device_id).expect("keys");
    identity.root = client.identity().root.clone();
    let store = KeyStore::new(std::env::temp_dir().join(unique("mzchatd-fed-client-")));
    store.save_identity(&identity).expect("save");
    Client::open(store).expect("client")
}

/// A guild on `host` owned by `owner`; returns (guild id, channel id, invite link).
pub async fn guild_with_invite(owner: &Client, host: &str) -> (String, String, String) {
    owner.login(host, None, "").await.expect("owner login");
    let mut guilds = GuildServiceClient::new(owner.channel(host).expect("channel"));
    let request = owner
        .authed(
            host,
            CreateGuildRequest {
                name: "Lounge".into(),
                ..Default::default()
            },
        )
        .await
        .expect("token");
    let created = guilds
        .create_guild(request)
        .await
        .expect("create guild")
        .into_inner();
    let expires = created.access_token_expires_at.map_or(0, |t| t.seconds);
    owner
        .adopt_access_token(host, &created.access_token, expires)
        .expect("adopt");
    let guild_id = created.guild.expect("guild").id;
    let request = owner
        .authed(
            host,
            ListChannelsRequest {
                guild_id: guild_id.clone(),
            },
        )
        .await
        .expect("token");
    let channel_id = guilds
        .list_channels(request)
        .await
        .expect("channels")
        .into_inner()
        .channels[0]
        .id
        .clone();
    let request = owner
        .authed(
            host,
            CreateInviteRequest {
                guild_id: guild_id.clone(),
                channel_id: channel_id.clone(),
                max_age: None,
                max_uses: 0,
            },
        )
        .await
        .expect("token");
    let link = guilds
        .create_invite(request)
        .await
        .expect("invite")
        .into_inner()
        .invite
        .expect("invite")
        .link;
    (guild_id, channel_id, link)
}

pub async fn send(client: &Client, host: &str, guild_id: &str, channel_id: &str, text: &str) {
    let request = client
        .authed(
            host,
            SendMessageRequest {
                guild_id: guild_id.into(),
                channel_id: channel_id.into(),
                content: text.into(),
                ..Default::default()
            },
        )
        .await
        .expect("token");
    MessageServiceClient::new(client.channel(host).expect("channel"))
        .send_message(request)
        .await
        .expect("send");
}

pub async fn history(client: &Client, host: &str, guild_id: &str, channel_id: &str) -> Vec<String> {
    let request = client
        .authed(
            host,
            ListMessagesRequest {
                guild_id: guild_id.into(),
                channel_id: channel_id.into(),
                limit: 50,
                ..Default::default()
            },
        )
        .await
        .expect("token");
    MessageServiceClient::new(client.channel(host).expect("channel"))
        .list_messages(request)
        .await
        .expect("history")
        .into_inner()
        .messages
        .into_iter()
        .map(|m| m.content)
        .collect()
}

/// An operator API request carrying the homeserver's internal credential.
pub fn internal<T>(bus_prefix: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let token = format!("{bus_prefix}-internal").parse().expect("ascii");
    request
        .metadata_mut()
        .insert("mzchat-internal-token", token);
    request
}

/// Sends a message that mentions `user_id`; returns its id.
pub async fn mention(
    client: &Client,
    host: &str,
    guild_id: &str,
    channel_id: &str,
    user_id: String,
    text: &str,
) -> String {
    let request = SendMessageRequest {
        guild_id: guild_id.into(),
        channel_id: channel_id.into(),
        content: text.into(),
        mention_user_ids: vec![user_id],
        ..Default::default()
    };
    let request = client.authed(host, request).await.expect("token");
    MessageServiceClient::new(client.channel(host).expect("channel"))
        .send_message(request)
        .await
        .expect("send")
        .into_inner()
        .message
        .expect("message")
        .id
}

/// Polls `client`'s account on `host` until `done` holds; returns how long it took.
pub async fn wait_for_account(
    client: &Client,
    host: &str,
    within: Duration,
    done: impl Fn(&mzchat_proto::identity::Account) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        match client.whoami(host).await {
            Ok(account) if done(&account) => return start.elapsed(),
            Ok(_) | Err(_) if start.elapsed() < within => {}
            Ok(account) => panic!("account on {host} never reached the state: {account:?}"),
            Err(err) => panic!("account on {host} unreadable: {err}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$name(super::Backend::Embedded).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_nats() {
                super::$name(super::Backend::PostgresNats).await
            }
        }
    };
}

mod admin;
mod join;
mod migration;
mod push_expiry;
mod refusals;
mod replicas;
mod trace;
