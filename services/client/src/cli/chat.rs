//! Messages and the live event stream.

use mzchat_client::KeyStore;
use mzchat_proto::guild::{
    AddReactionRequest, Event, ListMessagesRequest, PinMessageRequest, SendMessageRequest,
    SubscribeEventsRequest, event::Payload, event_service_client::EventServiceClient,
    message_service_client::MessageServiceClient,
};

use super::{CliResult, call, open};

pub async fn send(
    store: KeyStore,
    origin: &str,
    guild: &str,
    channel: &str,
    text: &str,
    attach: &[std::path::PathBuf],
) -> CliResult {
    let client = open(store)?;
    // Attachments are uploaded to the server that hosts the guild.
    let mut attachment_file_ids = Vec::new();
    for path in attach {
        attachment_file_ids.push(
            super::media::upload_file(&client, origin, path)
                .await?
                .file_id,
        );
    }
    let request = SendMessageRequest {
        guild_id: guild.into(),
        channel_id: channel.into(),
        content: text.into(),
        attachment_file_ids,
        ..Default::default()
    };
    let message = call!(client, origin, MessageServiceClient, send_message, request)
        .message
        .unwrap_or_default();
    println!("{}", message.id);
    Ok(())
}

pub async fn history(
    store: KeyStore,
    origin: &str,
    guild: &str,
    channel: &str,
    limit: u32,
) -> CliResult {
    let client = open(store)?;
    let request = ListMessagesRequest {
        guild_id: guild.into(),
        channel_id: channel.into(),
        anchor: None,
        limit,
    };
    for message in call!(client, origin, MessageServiceClient, list_messages, request).messages {
        let pinned = if message.pinned { " [pinned]" } else { "" };
        let reactions: Vec<String> = message
            .reactions
            .iter()
            .map(|r| format!("{} {}", r.emoji, r.count))
            .collect();
        println!(
            "{}  {}: {}{pinned}",
            message.id,
            short(&message.author_id),
            message.content
        );
        for a in &message.attachments {
            println!(
                "    attached: {} ({}, {} bytes) {}",
                a.file_name, a.content_type, a.size, a.url
            );
        }
        if !reactions.is_empty() {
            println!("    {}", reactions.join("  "));
        }
    }
    Ok(())
}

pub async fn react(
    store: KeyStore,
    origin: &str,
    guild: &str,
    channel: &str,
    message: &str,
    emoji: &str,
) -> CliResult {
    let client = open(store)?;
    let request = AddReactionRequest {
        guild_id: guild.into(),
        channel_id: channel.into(),
        message_id: message.into(),
        emoji: emoji.into(),
    };
    call!(client, origin, MessageServiceClient, add_reaction, request);
    println!("reacted {emoji}");
    Ok(())
}

pub async fn pin(
    store: KeyStore,
    origin: &str,
    guild: &str,
    channel: &str,
    message: &str,
) -> CliResult {
    let client = open(store)?;
    let request = PinMessageRequest {
        guild_id: guild.into(),
        channel_id: channel.into(),
        message_id: message.into(),
    };
    call!(client, origin, MessageServiceClient, pin_message, request);
    println!("pinned {message}");
    Ok(())
}

/// Follows the event stream; when the server ends it because the session changed (new
/// permissions, expiry), refreshes the session and resumes from the last cursor.
pub async fn tail(store: KeyStore, origin: &str) -> CliResult {
    let client = open(store)?;
    let mut cursor: Option<String> = None;
    loop {
        let request = client
            .authed(
                origin,
                SubscribeEventsRequest {
                    resume_after: cursor.clone(),
                },
            )
            .await?;
        let mut stream = match EventServiceClient::new(client.channel(origin)?)
            .subscribe_events(request)
            .await
        {
            Ok(response) => response.into_inner(),
            Err(status) if status.code() == tonic::Code::Unauthenticated => {
                client.refresh(origin).await?;
                continue;
            }
            Err(status) => return Err(status.into()),
        };
        loop {
            match stream.message().await {
                Ok(Some(item)) => {
                    if let Some(event) = item.event {
                        if !event.cursor.is_empty() {
                            cursor = Some(event.cursor.clone());
                        }
                        if let Some(line) = describe(&event) {
                            println!("{line}");
                        }
                    }
                }
                Ok(None) => return Ok(()),
                Err(status) if status.code() == tonic::Code::Unauthenticated => {
                    eprintln!("({}; refreshing the session)", status.message());
                    client.refresh(origin).await?;
                    break;
                }
                Err(status) => return Err(status.into()),
            }
        }
    }
}

fn short(user_id: &str) -> &str {
    user_id.get(..8).unwrap_or(user_id)
}

/// One line per event a person cares about.
fn describe(event: &Event) -> Option<String> {
    let guild = short(&event.guild_id);
    Some(match event.payload.as_ref()? {
        Payload::MessageCreated(m) => {
            let m = m.message.as_ref()?;
            format!("[{guild}] {}: {}", short(&m.author_id), m.content)
        }
        Payload::MessageUpdated(m) => {
            let m = m.message.as_ref()?;
            format!("[{guild}] {} edited: {}", short(&m.author_id), m.content)
        }
        Payload::MessageDeleted(m) => format!("[{guild}] message {} deleted", m.message_id),
        Payload::ReactionAdded(r) => format!(
            "[{guild}] {} reacted {} to {}",
            short(&r.user_id),
            r.emoji,
            r.message_id
        ),
        Payload::ReactionRemoved(r) => format!(
            "[{guild}] {} removed {} from {}",
            short(&r.user_id),
            r.emoji,
            r.message_id
        ),
        Payload::MessagePinned(p) => {
            format!("[{guild}] {} pinned {}", short(&p.pinned_by), p.message_id)
        }
        Payload::MessageUnpinned(p) => format!(
            "[{guild}] {} unpinned {}",
            short(&p.unpinned_by),
            p.message_id
        ),
        Payload::TypingStarted(t) => format!("[{guild}] {} is typing", short(&t.user_id)),
        Payload::PresenceUpdated(p) => {
            let status = if p.status == 1 { "online" } else { "offline" };
            format!("[{guild}] {} is {status}", short(&p.user_id))
        }
        Payload::MemberJoined(m) => {
            format!("[{guild}] {} joined", short(&m.member.as_ref()?.user_id))
        }
        Payload::MemberLeft(m) => format!("[{guild}] {} left", short(&m.user_id)),
        Payload::MemberBanned(m) => format!("[{guild}] {} was banned", short(&m.user_id)),
        Payload::ChannelCreated(c) => {
            format!("[{guild}] channel #{} created", c.channel.as_ref()?.name)
        }
        Payload::PermissionsChanged(p) => {
            format!("[{guild}] permissions changed (version {})", p.version)
        }
        Payload::Keepalive(_) => return None,
        other => format!("[{guild}] {other:?}"),
    })
}
