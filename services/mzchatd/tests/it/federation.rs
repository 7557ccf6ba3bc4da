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
    /// Bus prefix (PostgreSQL + NATS only).
    pub bus_prefix: String,
    pub schema_prefix: String,
}

impl Homeserver {
    pub fn start(backend: Backend, extra: &[&str]) -> Self {
        let port = free_port();
        let name = unique("fed");
        let data = std::env::temp_dir().join(format!("mzchatd-{name}"));
        let schema_prefix = format!("{name}_");
        let mut flags: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        if backend == Backend::PostgresNats {
            flags.extend([
                "--migrate".into(),
                "--database-url".into(),
                env_or(
                    "MZCHAT_TEST_DATABASE_URL",
                    "postgres://postgres@127.0.0.1:5432/postgres",
                ),
                "--database-schema-prefix".into(),
                schema_prefix.clone(),
                "--nats-url".into(),
                nats_url(),
                "--bus-prefix".into(),
                name.clone(),
                "--internal-token".into(),
                format!("{name}-internal"),
            ]);
        }
        let mut server = Self {
            daemon: None,
            origin: format!("http://127.0.0.1:{port}"),
            port,
            data,
            flags,
            bus_prefix: name,
            schema_prefix,
        };
        server.resume();
        server
    }

    pub fn resume(&mut self) {
        let flags: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        self.daemon = Some(Daemon::start_on(self.port, &self.data, &flags));
    }

    pub fn stop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            daemon.kill();
        }
    }

    pub fn log(&self) -> String {
        self.daemon
            .as_ref()
            .map(Daemon::log_text)
            .unwrap_or_default()
    }
}

impl Drop for Homeserver {
    fn drop(&mut self) {
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

both_backends!(a_user_joins_and_talks_while_the_home_server_is_down);

/// The reference text's handshake: join on B with A stopped, talk at once; once A is back,
/// B's shadow account becomes verified and profile sync, unlink and relink behave.
async fn a_user_joins_and_talks_while_the_home_server_is_down(backend: Backend) {
    let mut a = Homeserver::start(backend, &[]);
    let b = Homeserver::start(backend, &[]);
    let alice = user(&a.origin, "laptop");
    alice
        .login(&a.origin, None, "")
        .await
        .expect("alice registers at home");
    let owner = user(&b.origin, "desk");
    let (guild_id, channel_id, link) = guild_with_invite(&owner, &b.origin).await;
    a.stop();

    let (host, joined) = alice
        .join_invite(&link, None)
        .await
        .expect("optimistic join");
    assert_eq!(host, b.origin);
    assert_eq!(joined.guild.expect("guild").id, guild_id);
    send(
        &alice,
        &b.origin,
        &guild_id,
        &channel_id,
        "hello from a user homed on A",
    )
    .await;
    assert_eq!(
        history(&owner, &b.origin, &guild_id, &channel_id).await,
        vec!["hello from a user homed on A"]
    );
    let account = alice.whoami(&b.origin).await.expect("account on B");
    assert_eq!(account.kind(), AccountKind::Shadow);
    assert_eq!(account.verification(), Verification::Pending);

    // A comes back; B's federation-sync gets through on its next attempt.
    tokio::time::sleep(Duration::from_secs(3)).await;
    a.resume();
    let took = wait_for_account(&alice, &b.origin, Duration::from_secs(60), |acc| {
        acc.verification() == Verification::Verified
    })
    .await;
    eprintln!("shadow account verified {took:?} after the home server came back");

    // Unlinked, B keeps its own profile through a refresh; relinked, it follows A again.
    let sync = |synced: bool, name: &str| mzchat_proto::identity::SetProfileSyncRequest {
        synced,
        local_profile: Some(mzchat_proto::identity::UpdateProfileRequest {
            display_name: Some(name.to_owned()),
            ..Default::default()
        }),
    };
    let mut identity_b =
        mzchat_proto::identity::identity_service_client::IdentityServiceClient::new(
            alice.channel(&b.origin).expect("channel"),
        );
    let request = alice
        .authed(&b.origin, sync(false, "Alice on B"))
        .await
        .expect("token");
    identity_b.set_profile_sync(request).await.expect("unlink");
    let mut identity_a =
        mzchat_proto::identity::identity_service_client::IdentityServiceClient::new(
            alice.channel(&a.origin).expect("channel"),
        );
    let rename = mzchat_proto::identity::UpdateProfileRequest {
        display_name: Some("Alice at home".into()),
        ..Default::default()
    };
    let request = alice.authed(&a.origin, rename).await.expect("token");
    identity_a
        .update_profile(request)
        .await
        .expect("rename at home");
    // A new device logging in on B makes B ask A again at once.
    let phone = other_device(&alice, "phone");
    phone.login(&b.origin, None, "").await.expect("phone on B");
    let home_name = |acc: &mzchat_proto::identity::Account| {
        acc.profile
            .as_ref()
            .map(|p| p.display_name.clone())
            .unwrap_or_default()
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let account = alice.whoami(&b.origin).await.expect("account");
    assert_eq!(
        home_name(&account),
        "Alice on B",
        "unlinked profile survives the refresh"
    );
    let request = alice
        .authed(&b.origin, sync(true, ""))
        .await
        .expect("token");
    identity_b.set_profile_sync(request).await.expect("relink");
    wait_for_account(&alice, &b.origin, Duration::from_secs(30), |acc| {
        home_name(acc) == "Alice at home"
    })
    .await;
}
