//! The authorization sweep: every RPC in the proto descriptors is called with no credential,
//! an expired token, another server's token, and the token of a user outside the guild the
//! request names, and each answer is checked against the method's rule (`rules.rs`).

mod raw;
mod rules;

use std::{collections::HashMap, time::Duration};

use mzchat_client::{Client, KeyStore, LocalIdentity};
use mzchat_proto::guild::{
    CreateRoleRequest, SendMessageRequest, guild_service_client::GuildServiceClient,
    message_service_client::MessageServiceClient,
};
use prost::Message;
use prost_types::{DescriptorProto, FileDescriptorSet, field_descriptor_proto::Type};
use tonic::Code;

use crate::daemon::{Daemon, unique};
use rules::Access;

/// Access tokens of the swept server live this long (its minimum): the expired token is one
/// taken at the start and used after it.
const TOKEN_TTL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    NoCredential,
    Expired,
    OtherServer,
    Outsider,
}

struct Method {
    path: String,
    input: String,
    streaming: bool,
}

/// Every method of every service in the descriptors, with its input message's full name.
fn methods(set: &FileDescriptorSet) -> Vec<Method> {
    set.file
        .iter()
        .flat_map(|file| {
            file.service.iter().flat_map(move |service| {
                service.method.iter().map(move |m| Method {
                    path: format!("{}.{}/{}", file.package(), service.name(), m.name()),
                    input: m.input_type().trim_start_matches('.').to_owned(),
                    streaming: m.server_streaming() || m.client_streaming(),
                })
            })
        })
        .collect()
}

fn messages(set: &FileDescriptorSet) -> HashMap<String, &DescriptorProto> {
    set.file
        .iter()
        .flat_map(|f| {
            f.message_type
                .iter()
                .map(move |m| (format!("{}.{}", f.package(), m.name()), m))
        })
        .collect()
}

/// The request: each top-level string (or uint32) field whose name `values` knows, set to that value, so
/// a request names the guild (and its channel, message, role) and gets past input checks to
/// the access check.
fn request(message: &DescriptorProto, values: &HashMap<&str, String>) -> Vec<u8> {
    use prost_types::field_descriptor_proto::Label;
    let mut body = Vec::new();
    for field in &message.field {
        let Some(value) = values.get(field.name()) else {
            continue;
        };
        if field.label() == Label::Repeated {
            continue;
        }
        let number = field.number() as u32;
        match (field.r#type(), value.parse::<u32>()) {
            (Type::String, _) => prost::encoding::string::encode(number, value, &mut body),
            (Type::Uint32, Ok(n)) => prost::encoding::uint32::encode(number, &n, &mut body),
            _ => {}
        }
    }
    body
}

/// Whether `code` is a right answer to a call of a method with `access` in `case`.
fn acceptable(access: Access, case: Case, code: Code) -> bool {
    let crashed = matches!(code, Code::Unknown | Code::Internal | Code::Unimplemented);
    match (access, case) {
        (Access::Anyone, _) => !crashed,
        (Access::Internal, _) => code == Code::PermissionDenied,
        (Access::Server, _) => code == Code::Unauthenticated,
        (Access::User | Access::Member, Case::NoCredential | Case::Expired | Case::OtherServer) => {
            code == Code::Unauthenticated
        }
        // The token is accepted; what the request asks may still be refused (another
        // device's registration: PERMISSION_DENIED).
        (Access::User, Case::Outsider) => !crashed && code != Code::Unauthenticated,
        (Access::Member, Case::Outsider) => {
            matches!(code, Code::PermissionDenied | Code::NotFound)
        }
    }
}

async fn login(origin: &str, dir: &std::path::Path) -> Client {
    let store = KeyStore::new(dir.join(unique("client-")));
    store
        .save_identity(&LocalIdentity::generate(origin, "laptop").expect("keys"))
        .expect("save");
    let client = Client::open(store).expect("client");
    client.login(origin, None, "").await.expect("login");
    client
}

fn token(client: &Client, origin: &str) -> String {
    client.session(origin).expect("session").access_token
}

/// A guild of `owner` with a channel, a message, a role and an invite: what requests name.
async fn guild_of(owner: &Client, origin: &str) -> HashMap<&'static str, String> {
    let (guild_id, channel_id, link) = crate::federation::guild_with_invite(owner, origin).await;
    let (_, invite) = mzchat_client::invites::parse_link(&link).expect("invite link");
    let channel = owner.channel(origin).expect("channel");
    let mut guilds = GuildServiceClient::new(channel.clone());
    let message_id = MessageServiceClient::new(channel.clone())
        .send_message(
            owner
                .authed(
                    origin,
                    SendMessageRequest {
                        guild_id: guild_id.clone(),
                        channel_id: channel_id.clone(),
                        content: "hello".into(),
                        ..Default::default()
                    },
                )
                .await
                .expect("token"),
        )
        .await
        .expect("send")
        .into_inner()
        .message
        .expect("message")
        .id;
    let role_id = guilds
        .create_role(
            owner
                .authed(
                    origin,
                    CreateRoleRequest {
                        guild_id: guild_id.clone(),
                        name: "mods".into(),
                        weight: 1,
                        ..Default::default()
                    },
                )
                .await
                .expect("token"),
        )
        .await
        .expect("role")
        .into_inner()
        .role
        .expect("role")
        .id;
    HashMap::from([
        ("guild_id", guild_id),
        ("channel_id", channel_id),
        ("message_id", message_id),
        ("role_id", role_id),
        ("user_id", owner.identity().user_id()),
        ("token", invite),
        ("content", "swept".into()),
        ("name", "swept".into()),
        ("emoji", "👍".into()),
        ("weight", "1".into()),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_answers_callers_by_its_rule() {
    let dir = std::env::temp_dir().join(unique("mzchatd-authz-"));
    let ttl = TOKEN_TTL.as_secs().to_string();
    let flags = [
        "--access-token-ttl-secs",
        ttl.as_str(),
        "--rate-limit",
        "all=off",
    ];
    let server = Daemon::start(&dir.join("server"), &flags);
    let other = Daemon::start(&dir.join("other"), &["--rate-limit", "all=off"]);
    let expiring = login(&server.origin, &dir).await;
    let expired_token = token(&expiring, &server.origin);
    let expires = std::time::Instant::now() + TOKEN_TTL + Duration::from_secs(2);
    let owner = login(&server.origin, &dir).await;
    let outsider = login(&server.origin, &dir).await;
    let foreigner = login(&other.origin, &dir).await;
    let values = guild_of(&owner, &server.origin).await;

    let set = FileDescriptorSet::decode(mzchat_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
    let (methods, messages) = (methods(&set), messages(&set));
    let unruled: Vec<_> = methods
        .iter()
        .filter(|m| rules::access(&m.path).is_none())
        .map(|m| m.path.as_str())
        .collect();
    assert!(
        unruled.is_empty(),
        "RPCs without an authorization rule (add them to authz/rules.rs): {unruled:?}"
    );
    assert!(
        methods.len() >= 80,
        "the descriptors list only {} methods",
        methods.len()
    );

    let channel = owner.channel(&server.origin).expect("channel");
    let mut wrong = Vec::new();
    let mut calls = 0;
    for case in [
        Case::NoCredential,
        Case::OtherServer,
        Case::Outsider,
        Case::Expired,
    ] {
        if case == Case::Expired {
            tokio::time::sleep_until(expires.into()).await;
        }
        for method in &methods {
            let access = rules::access(&method.path).expect("ruled");
            let mut values = values.clone();
            // Joining through the invite is what an outsider may do; it would make them a member.
            if method.path.ends_with("/JoinInvite") {
                values.remove("token");
            }
            let body = request(messages[&method.input], &values);
            let bearer = match case {
                Case::NoCredential => None,
                Case::Expired => Some(expired_token.clone()),
                Case::OtherServer => Some(token(&foreigner, &other.origin)),
                Case::Outsider => Some(outsider.access_token(&server.origin).await.expect("token")),
            };
            let code = raw::call(
                channel.clone(),
                &method.path,
                method.streaming,
                body,
                bearer.as_deref(),
            )
            .await;
            calls += 1;
            if !acceptable(access, case, code) {
                wrong.push(format!(
                    "{} ({access:?}) with {case:?}: {code:?}",
                    method.path
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {calls} calls answered wrongly:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    drop((server, other));
    std::fs::remove_dir_all(dir).ok();
}
