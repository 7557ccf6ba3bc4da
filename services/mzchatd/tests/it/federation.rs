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
}

impl Homeserver {
    pub fn start(backend: Backend, extra: &[&str]) -> Self {
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
            ]);
        }
        let mut server = Self {
            daemon: None,
            origin: format!("http://127.0.0.1:{port}"),
            port,
            data,
            flags,
            bus_prefix: (backend == Backend::PostgresNats).then_some(name),
        };
        server.resume();
        server
    }

    pub fn resume(&mut self) {
        let flags: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        self.daemon = Some(Daemon::start_on(self.port, &self.data, &flags));
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
        for service in ["identity", "guild", "federation"] {
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
    send(&owner, &b.origin, &guild_id, &channel_id, "welcome").await;
    assert_eq!(
        history(&alice, &b.origin, &guild_id, &channel_id).await,
        vec!["hello from a user homed on A", "welcome"]
    );
    let account = alice.whoami(&b.origin).await.expect("account on B");
    assert_eq!(account.kind(), AccountKind::Shadow);
    assert_eq!(account.verification(), Verification::Pending);

    // A comes back; B's federation-sync gets through on its next attempt. The answer reaches
    // B's other services as an event carrying A's push delegation token for B.
    let results = match &b.bus_prefix {
        Some(prefix) => {
            let nats = async_nats::connect(nats_url()).await.expect("nats");
            let subject = format!("{prefix}.federation.v1.result.user_verified");
            Some(nats.subscribe(subject).await.expect("subscribe"))
        }
        None => None,
    };
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
    // B's member list shows the home server's profile too.
    let start = Instant::now();
    loop {
        let request = owner
            .authed(
                &b.origin,
                mzchat_proto::guild::GetMemberRequest {
                    guild_id: guild_id.clone(),
                    user_id: alice.identity().user_id(),
                },
            )
            .await
            .expect("token");
        let member = GuildServiceClient::new(owner.channel(&b.origin).expect("channel"))
            .get_member(request)
            .await
            .expect("member")
            .into_inner()
            .member
            .expect("member");
        let name = member.profile.map(|p| p.display_name).unwrap_or_default();
        if name == "Alice at home" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "member profile on B: {name:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some(results) = results {
        delegation_token_arrived(results, &alice, &a.origin, &b.origin).await;
    }

    // B bans alice and reports it to A, where alice can read it.
    let ban = mzchat_proto::guild::BanMemberRequest {
        guild_id: guild_id.clone(),
        user_id: alice.identity().user_id(),
        reason: "spam".into(),
        propagate_to_home_server: true,
    };
    let request = owner.authed(&b.origin, ban).await.expect("token");
    GuildServiceClient::new(owner.channel(&b.origin).expect("channel"))
        .ban_member(request)
        .await
        .expect("ban with propagation");
    let start = Instant::now();
    let notices = loop {
        let request = alice
            .authed(
                &a.origin,
                mzchat_proto::identity::ListBanNotificationsRequest::default(),
            )
            .await
            .expect("token");
        let notices = identity_a
            .list_ban_notifications(request)
            .await
            .expect("ban notifications")
            .into_inner()
            .notifications;
        if !notices.is_empty() || start.elapsed() > Duration::from_secs(30) {
            break notices;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(notices.len(), 1, "the ban reached A once: {notices:?}");
    assert_eq!(notices[0].origin, b.origin);
    assert_eq!(notices[0].guild_name, "Lounge");
    assert_eq!(notices[0].reason, "spam");
    a.remove().await;
    b.remove().await;
}

/// A `user_verified` result on B's bus carries a delegation token signed by A's server key,
/// for B.
async fn delegation_token_arrived(
    mut results: async_nats::Subscriber,
    user: &Client,
    home: &str,
    audience: &str,
) {
    use futures::StreamExt;
    use mzchat_proto::{common::PushDelegationToken, federation::federation_result, signing};
    use prost::Message;
    let message = tokio::time::timeout(Duration::from_secs(30), results.next())
        .await
        .expect("a user_verified result within 30 s")
        .expect("subscription open");
    let result = mzchat_proto::federation::FederationResult::decode(message.payload.as_ref())
        .expect("result");
    let Some(federation_result::Result::UserVerified(verified)) = result.result else {
        panic!("not user_verified: {result:?}");
    };
    let statement = verified.delegation_token.expect("delegation token");
    let info = user.server_info(home).await.expect("A's keys");
    let token = info
        .server_keys
        .iter()
        .find_map(|k| {
            let key =
                ed25519_dalek::VerifyingKey::from_bytes(k.public_key.as_slice().try_into().ok()?)
                    .ok()?;
            signing::verify::<PushDelegationToken>(&key, signing::PUSH_DELEGATION_TOKEN, &statement)
                .ok()
        })
        .expect("token signed by A's server key");
    assert_eq!(token.audience, audience);
    assert_eq!(token.issuer, home);
    assert_eq!(token.user_id, user.identity().user_id());
}

/// A server call as a forger would make it: metadata claiming `origin`, signed by `key`.
fn forged_call(
    origin: &str,
    destination: &str,
    key_id: &str,
    key: &ed25519_dalek::SigningKey,
    timestamp: i64,
    user_id: &str,
) -> tonic::Request<mzchat_proto::federation::VerifyUserRequest> {
    use ed25519_dalek::Signer;
    use mzchat_platform::federation::s2s;
    use prost::Message;
    use sha2::Digest;
    let message = mzchat_proto::federation::VerifyUserRequest {
        user_id: user_id.to_owned(),
    };
    let digest = sha2::Sha256::digest(message.encode_to_vec());
    let path = "/mzchat.federation.v1.IdentityFederationService/VerifyUser";
    let signature = key.sign(&s2s::signing_input(path, destination, timestamp, &digest));
    let mut request = tonic::Request::new(message);
    let metadata = request.metadata_mut();
    for (name, value) in [
        (s2s::ORIGIN, origin.to_owned()),
        (s2s::DESTINATION, destination.to_owned()),
        (s2s::TIMESTAMP, timestamp.to_string()),
        (s2s::KEY_ID, key_id.to_owned()),
        (s2s::SIGNATURE, s2s::encode_signature(&signature.to_bytes())),
    ] {
        metadata.insert(name, value.parse().expect("ascii"));
    }
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_credentials_and_spoofed_server_calls_are_refused() {
    use mzchat_proto::federation::identity_federation_service_client::IdentityFederationServiceClient;
    let a = Homeserver::start(Backend::Embedded, &[]);
    let b = Homeserver::start(Backend::Embedded, &[]);
    let alice = user(&a.origin, "laptop");
    alice
        .login(&a.origin, None, "")
        .await
        .expect("alice at home");
    let owner = user(&b.origin, "desk");
    let (_, _, link) = guild_with_invite(&owner, &b.origin).await;
    let (_, token) = mzchat_client::invites::parse_link(&link).expect("link");
    let mut guilds_b = GuildServiceClient::new(alice.channel(&b.origin).expect("channel"));
    let join =
        |login: mzchat_proto::identity::LoginRequest| mzchat_proto::guild::JoinInviteRequest {
            token: token.clone(),
            login: Some(mzchat_proto::guild::JoinInviteLogin {
                user_id: login.user_id,
                certificate: login.certificate,
                proof: login.proof,
                profile_hint: None,
            }),
        };

    // A certificate not signed by the user's root key.
    let mut forged = alice.login_request(&b.origin, None, "").expect("request");
    if let Some(cert) = forged.certificate.as_mut() {
        cert.signature[0] ^= 1;
    }
    let status = guilds_b
        .join_invite(join(forged))
        .await
        .expect_err("forged certificate");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    // A proof given to A presented at B.
    let for_a = alice.login_request(&a.origin, None, "").expect("request");
    let status = guilds_b
        .join_invite(join(for_a))
        .await
        .expect_err("proof for A");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    // A proof used twice.
    let once = alice.login_request(&b.origin, None, "").expect("request");
    guilds_b
        .join_invite(join(once.clone()))
        .await
        .expect("first use");
    let status = guilds_b
        .join_invite(join(once))
        .await
        .expect_err("replayed proof");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    // Server calls to A: unsigned, signed by a stranger under B's name, stale, or for C.
    let mut federation_a =
        IdentityFederationServiceClient::new(alice.channel(&a.origin).expect("channel"));
    let request = mzchat_proto::federation::VerifyUserRequest {
        user_id: alice.identity().user_id(),
    };
    let status = federation_a
        .verify_user(request)
        .await
        .expect_err("unsigned");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let info = alice.server_info(&b.origin).await.expect("B's keys");
    let b_key_id = info.server_keys[0].key_id.clone();
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let now = mzchat_client::statements::unix_now();
    let user_id = alice.identity().user_id();
    for (what, destination, timestamp) in [
        ("signed by a stranger", a.origin.as_str(), now),
        ("stale", a.origin.as_str(), now - 600),
        ("for another server", "http://127.0.0.1:9", now),
    ] {
        let request = forged_call(
            &b.origin,
            destination,
            &b_key_id,
            &stranger,
            timestamp,
            &user_id,
        );
        let status = federation_a.verify_user(request).await.expect_err(what);
        assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status:?}");
    }
    // A server that denies B refuses it before looking at the signature.
    let d = Homeserver::start(Backend::Embedded, &["--federation-deny", b.origin.as_str()]);
    let mut federation_d =
        IdentityFederationServiceClient::new(alice.channel(&d.origin).expect("channel"));
    let request = forged_call(&b.origin, &d.origin, &b_key_id, &stranger, now, &user_id);
    let status = federation_d
        .verify_user(request)
        .await
        .expect_err("denied origin");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // A user A has never heard of: B lets them in, then rejects them once A answers.
    let stranger_user = user(&a.origin, "laptop");
    stranger_user
        .join_invite(&link, None)
        .await
        .expect("optimistic join");
    wait_for_account(&stranger_user, &b.origin, Duration::from_secs(30), |acc| {
        acc.verification() == Verification::Rejected
    })
    .await;
    let err = stranger_user
        .refresh(&b.origin)
        .await
        .expect_err("sessions ended");
    assert!(
        err.to_string().contains("revoked") || err.to_string().contains("recognise"),
        "{err}"
    );
    let err = stranger_user
        .login(&b.origin, None, "")
        .await
        .expect_err("login refused");
    assert!(
        matches!(err, mzchat_client::ClientError::Rpc(ref s) if s.code() == Code::PermissionDenied),
        "{err}"
    );

    // A device revoked at home: B learns of it when another device of the user logs in there.
    alice
        .login(&b.origin, None, "")
        .await
        .expect("laptop session on B");
    alice
        .refresh(&b.origin)
        .await
        .expect("the laptop refreshes on B");
    let phone = other_device(&alice, "phone");
    alice
        .revoke_device(&a.origin, "laptop")
        .await
        .expect("revoke at home");
    phone.login(&b.origin, None, "").await.expect("phone on B");
    let start = Instant::now();
    loop {
        match alice.refresh(&b.origin).await {
            Err(err) => {
                assert!(
                    matches!(err, mzchat_client::ClientError::Rpc(ref s) if s.code() == Code::Unauthenticated),
                    "{err}"
                );
                break;
            }
            Ok(_) if start.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Ok(_) => panic!("the revoked laptop still refreshes on B"),
        }
    }
    let err = alice
        .login(&b.origin, None, "")
        .await
        .expect_err("a revoked device cannot log in again");
    assert!(err.to_string().contains("revoked"), "{err}");
}

/// The reference text's migration: the user moves from A to B, naming A and C (where the user
/// is known as a shadow account) as old servers; A answers later logins with HOMESERVER_MOVED,
/// and C follows the user to B and has B confirm them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_migrates_from_a_to_b_and_the_old_servers_follow() {
    let a = Homeserver::start(Backend::PostgresNats, &[]);
    let b = Homeserver::start(Backend::PostgresNats, &[]);
    let c = Homeserver::start(Backend::PostgresNats, &[]);
    // D is not among the targets: it learns of the move from A.
    let d = Homeserver::start(Backend::PostgresNats, &[]);
    let mut alice = user(&a.origin, "laptop");
    alice
        .login(&a.origin, None, "")
        .await
        .expect("alice at home");
    // Alice is a member of a guild on C, and known on D.
    let carol = user(&c.origin, "desk");
    let (guild_on_c, _, link) = guild_with_invite(&carol, &c.origin).await;
    alice
        .join_invite(&link, None)
        .await
        .expect("alice joins on C");
    for server in [&c, &d] {
        alice
            .login(&server.origin, None, "")
            .await
            .expect("alice visits");
        wait_for_account(&alice, &server.origin, Duration::from_secs(30), |acc| {
            acc.verification() == Verification::Verified && acc.home_server == a.origin
        })
        .await;
    }

    let targets = vec![a.origin.clone(), c.origin.clone()];
    let moved = alice
        .migrate(&b.origin, &targets, "")
        .await
        .expect("migrate to B");
    let account = moved.account.expect("account");
    assert_eq!(account.kind(), AccountKind::Local);
    assert_eq!(account.home_server, b.origin);

    // A learns of the move and sends later logins to B.
    let start = Instant::now();
    let moved_to = loop {
        let err = alice.login(&a.origin, None, "").await.err();
        if let Some(mzchat_client::ClientError::Rpc(status)) = &err
            && status.code() == Code::FailedPrecondition
        {
            use tonic_types::StatusExt;
            let info = status.get_details_error_info().expect("error info");
            assert_eq!(info.reason, "HOMESERVER_MOVED");
            break info
                .metadata
                .get("new_homeserver")
                .cloned()
                .unwrap_or_default();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "A never learned of the move: {err:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(moved_to, b.origin);

    // C follows the user to B and has B confirm them; a login there now names B.
    // (Read with the session C issued before the move.)
    wait_for_account(&alice, &c.origin, Duration::from_secs(30), |acc| {
        acc.home_server == b.origin && acc.verification() == Verification::Verified
    })
    .await;
    alice
        .login(&c.origin, None, "")
        .await
        .expect("login on C with the new home");

    // D still knows A as the home: the first login with a certificate naming B is turned away
    // while D asks A, which answers with the move and its proof; D follows to B.
    let start = Instant::now();
    loop {
        match alice.login(&d.origin, None, "").await {
            Ok(response) => {
                let account = response.account.expect("account");
                assert_eq!(account.home_server, b.origin);
                break;
            }
            Err(mzchat_client::ClientError::Rpc(status))
                if status.code() == Code::FailedPrecondition
                    && start.elapsed() < Duration::from_secs(30) =>
            {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(err) => panic!("D never followed the move: {err}"),
        }
    }
    wait_for_account(&alice, &d.origin, Duration::from_secs(30), |acc| {
        acc.home_server == b.origin && acc.verification() == Verification::Verified
    })
    .await;

    // C bans alice and reports it to the home it recorded at her join (A); A points to B, and
    // the notice reaches her there.
    let ban = mzchat_proto::guild::BanMemberRequest {
        guild_id: guild_on_c,
        user_id: alice.identity().user_id(),
        reason: "moved and misbehaved".into(),
        propagate_to_home_server: true,
    };
    let request = carol.authed(&c.origin, ban).await.expect("token");
    GuildServiceClient::new(carol.channel(&c.origin).expect("channel"))
        .ban_member(request)
        .await
        .expect("ban");
    let mut identity_b =
        mzchat_proto::identity::identity_service_client::IdentityServiceClient::new(
            alice.channel(&b.origin).expect("channel"),
        );
    let start = Instant::now();
    loop {
        let request = alice
            .authed(
                &b.origin,
                mzchat_proto::identity::ListBanNotificationsRequest::default(),
            )
            .await
            .expect("token");
        let notices = identity_b
            .list_ban_notifications(request)
            .await
            .expect("notices")
            .into_inner()
            .notifications;
        if let Some(notice) = notices.first() {
            assert_eq!(notice.origin, c.origin);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the ban never reached B"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A proof older than the migration applied moves nothing.
    let mut sessions = mzchat_proto::identity::session_service_client::SessionServiceClient::new(
        alice.channel(&b.origin).expect("channel"),
    );
    let mut replay = alice.login_request(&b.origin, None, "").expect("request");
    replay.migration_proof = Some(mzchat_client::statements::migration_proof(
        alice.identity(),
        &b.origin,
        &targets,
        // Older than the migration just applied (proofs carry whole seconds).
        mzchat_client::statements::unix_now() - 60,
    ));
    let status = sessions
        .login(replay)
        .await
        .expect_err("an older proof moves nothing");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    for server in [a, b, c, d] {
        server.remove().await;
    }
}

/// Two federation-sync replicas share B's jobs with no assignment; killing one in the middle
/// of a batch loses nothing (what it had taken comes back to the other after the ack wait),
/// every job takes effect once, and A being down never delays jobs for C.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_federation_sync_replicas_share_jobs_and_survive_a_kill() {
    const USERS: usize = 40;
    let mut a = Homeserver::start(Backend::PostgresNats, &[]);
    let b = Homeserver::start(Backend::PostgresNats, &[]);
    let c = Homeserver::start(Backend::PostgresNats, &[]);
    let mut second = b.extra_process("federation-sync");
    let mut users = Vec::new();
    for i in 0..USERS {
        let u = user(&a.origin, &format!("device{i}"));
        u.login(&a.origin, None, "").await.expect("registered at A");
        users.push(u);
    }
    a.stop();
    // Shadow logins on B queue one VerifyUser each; A is down, so both replicas take jobs and
    // park them. The second replica is killed as soon as it has taken its first job, with the
    // rest of what it pulled unsettled.
    let users = std::sync::Arc::new(users);
    let logins = {
        let (users, origin) = (users.clone(), b.origin.clone());
        tokio::spawn(async move {
            for u in users.iter() {
                u.login(&origin, None, "")
                    .await
                    .expect("shadow login on B while A is down");
            }
        })
    };
    let took_jobs = |log: String| log.matches("federation call failed; will retry").count();
    let start = Instant::now();
    while took_jobs(second.log_text()) == 0 && start.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    second.kill();
    let taken = took_jobs(second.log_text());
    assert!(
        taken > 0,
        "the second replica took jobs: {}",
        second.log_text()
    );
    logins.await.expect("logins");
    assert!(
        took_jobs(b.daemon.as_ref().expect("B").log_text()) > 0,
        "the first replica took jobs too"
    );

    // A user homed on C is verified at once, whatever A's backlog.
    let carol = user(&c.origin, "laptop");
    carol
        .login(&c.origin, None, "")
        .await
        .expect("carol at home");
    carol.login(&b.origin, None, "").await.expect("carol on B");
    wait_for_account(&carol, &b.origin, Duration::from_secs(10), |acc| {
        acc.verification() == Verification::Verified
    })
    .await;

    a.resume();
    let start = Instant::now();
    for u in users.iter() {
        wait_for_account(u, &b.origin, Duration::from_secs(90), |acc| {
            acc.verification() == Verification::Verified
        })
        .await;
    }
    eprintln!(
        "{USERS} shadow accounts verified {:?} after A came back (the killed replica had failed {taken} calls)",
        start.elapsed()
    );

    // Once in effect: one delegation token per user at A, one finished job per user at B.
    use sea_orm::{ConnectionTrait, Statement};
    let db = sea_orm::Database::connect(database_url())
        .await
        .expect("postgres");
    let count = |sql: String| {
        let db = db.clone();
        async move {
            let row = db
                .query_one_raw(Statement::from_string(sea_orm::DbBackend::Postgres, sql))
                .await
                .expect("query")
                .expect("row");
            row.try_get_by_index::<i64>(0).expect("count")
        }
    };
    let tokens = count(format!(
        "SELECT count(*) FROM \"{}\".push_delegation_tokens",
        a.schema("identity")
    ))
    .await;
    assert_eq!(tokens, USERS as i64, "one delegation token per user");
    let done = count(format!(
        "SELECT count(*) FROM \"{}\".jobs WHERE destination = '{}' AND state = 'done'",
        b.schema("federation"),
        a.origin
    ))
    .await;
    assert_eq!(done, USERS as i64, "one finished VerifyUser per user");
    let dead = count(format!(
        "SELECT count(*) FROM \"{}\".dead_letters",
        b.schema("federation")
    ))
    .await;
    assert_eq!(dead, 0);
    a.remove().await;
    b.remove().await;
    c.remove().await;
}

/// An operator API request carrying the homeserver's internal credential.
fn internal<T>(bus_prefix: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let token = format!("{bus_prefix}-internal").parse().expect("ascii");
    request
        .metadata_mut()
        .insert("mzchat-internal-token", token);
    request
}

/// A job the destination refuses for good becomes a dead letter an operator can list and
/// retry; a job that outlives its TTL against a dead destination does too; destinations report
/// their health.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_and_retried_and_destinations_report_health() {
    use mzchat_proto::federation::{
        DestinationHealth, ListDeadLettersRequest, ListDestinationsRequest, RetryDeadLetterRequest,
        federation_admin_service_client::FederationAdminServiceClient,
    };
    let b = Homeserver::start(Backend::PostgresNats, &[]);
    // A refuses to federate with B.
    let mut a = Homeserver::start(Backend::PostgresNats, &["--federation-deny", &b.origin]);
    let alice = user(&a.origin, "laptop");
    alice
        .login(&a.origin, None, "")
        .await
        .expect("alice at home");
    alice.login(&b.origin, None, "").await.expect("alice on B");

    let prefix = b.bus_prefix.clone().expect("prefix");
    let admin = FederationAdminServiceClient::new(alice.channel(&b.origin).expect("channel"));
    let unauthorised = admin
        .clone()
        .list_dead_letters(ListDeadLettersRequest::default())
        .await
        .expect_err("operator API needs the internal credential");
    assert_eq!(unauthorised.code(), Code::PermissionDenied);
    let dead_letters = |destination: String| {
        let mut admin = admin.clone();
        let request = internal(
            &prefix,
            ListDeadLettersRequest {
                destination,
                ..Default::default()
            },
        );
        async move {
            admin
                .list_dead_letters(request)
                .await
                .expect("dead letters")
                .into_inner()
                .dead_letters
        }
    };
    let start = Instant::now();
    let refused = loop {
        let letters = dead_letters(a.origin.clone()).await;
        if !letters.is_empty() || start.elapsed() > Duration::from_secs(30) {
            break letters;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].last_error.contains("PermissionDenied"),
        "{refused:?}"
    );
    assert_eq!(refused[0].job.as_ref().expect("job").destination, a.origin);

    // A answered, so it is healthy; a destination nobody listens on is backing off.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let nats = async_nats::connect(nats_url()).await.expect("nats");
    let jetstream = async_nats::jetstream::new(nats);
    let now = mzchat_client::statements::unix_now();
    let job = mzchat_proto::federation::FederationJob {
        id: uuid::Uuid::now_v7().to_string(),
        destination: nowhere.clone(),
        created_at: Some(prost_types::Timestamp {
            seconds: now,
            nanos: 0,
        }),
        expires_at: Some(prost_types::Timestamp {
            seconds: now + 3,
            nanos: 0,
        }),
        kind: Some(mzchat_proto::federation::federation_job::Kind::VerifyUser(
            mzchat_proto::federation::VerifyUserJob {
                user_id: alice.identity().user_id(),
                follow_up: false,
            },
        )),
    };
    use prost::Message;
    jetstream
        .publish(
            format!("{prefix}.federation.v1.job.verify_user"),
            job.encode_to_vec().into(),
        )
        .await
        .expect("publish")
        .await
        .expect("stored");
    let start = Instant::now();
    let expired = loop {
        let letters = dead_letters(nowhere.clone()).await;
        if !letters.is_empty() || start.elapsed() > Duration::from_secs(30) {
            break letters;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(expired.len(), 1, "the job outlived its TTL: {expired:?}");
    assert!(expired[0].last_error.contains("expire"), "{expired:?}");
    let destinations = admin
        .clone()
        .list_destinations(internal(&prefix, ListDestinationsRequest::default()))
        .await
        .expect("destinations")
        .into_inner()
        .destinations;
    let health = |origin: &str| {
        destinations
            .iter()
            .find(|d| d.origin == origin)
            .map(|d| d.health())
    };
    assert_eq!(
        health(&a.origin),
        Some(DestinationHealth::Healthy),
        "{destinations:?}"
    );
    assert!(
        matches!(
            health(&nowhere),
            Some(DestinationHealth::BackingOff | DestinationHealth::Down)
        ),
        "{destinations:?}"
    );

    // A lifts its ban on B; the operator retries the dead letter and alice is verified.
    a.stop();
    a.flags
        .retain(|f| *f != "--federation-deny" && *f != b.origin);
    a.resume();
    admin
        .clone()
        .retry_dead_letter(internal(
            &prefix,
            RetryDeadLetterRequest {
                id: refused[0].id.clone(),
            },
        ))
        .await
        .expect("retry");
    wait_for_account(&alice, &b.origin, Duration::from_secs(30), |acc| {
        acc.verification() == Verification::Verified
    })
    .await;
    assert!(dead_letters(a.origin.clone()).await.is_empty());
    let status = admin
        .clone()
        .retry_dead_letter(internal(
            &prefix,
            RetryDeadLetterRequest {
                id: refused[0].id.clone(),
            },
        ))
        .await
        .expect_err("already retried");
    assert_eq!(status.code(), Code::NotFound);
    a.remove().await;
    b.remove().await;
}
