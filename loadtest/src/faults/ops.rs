//! The writes of the fault load, each retried like a real client would: every failed call is
//! tried again after a growing, jittered pause (the router sends the retry to whichever replica
//! is next), with the same idempotency key (a message nonce, an upload id; joins are
//! idempotent), until the server says OK or the operation's deadline passes. Only an OK answer
//! makes a write acknowledged.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use mzchat_client::{
    Client, ClientError,
    media::{Source, UploadJob},
};
use mzchat_proto::{
    guild::{SendMessageRequest, message_service_client::MessageServiceClient},
    media::UploadPurpose,
};
use serde_json::json;
use tonic::{Code, Status};

use super::ledger::Ledger;

/// One call's deadline, as a client's.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an operation keeps trying (longer than the longest fault).
const OP_DEADLINE: Duration = Duration::from_secs(150);
/// Tries left after an answer that says the request itself is wrong.
const PERMANENT_TRIES: u32 = 4;

pub fn random_below(n: usize) -> usize {
    (uuid::Uuid::new_v4().as_u128() % n.max(1) as u128) as usize
}

fn permanent(err: &ClientError) -> bool {
    matches!(err, ClientError::Rpc(status) if matches!(
        status.code(),
        Code::InvalidArgument
            | Code::PermissionDenied
            | Code::NotFound
            | Code::AlreadyExists
            | Code::FailedPrecondition
            | Code::OutOfRange
            | Code::Unimplemented
    ))
}

/// Runs `attempt` until it answers OK (Some) or the operation gives up (None).
pub async fn retry<T, F, Fut>(ledger: &Ledger, kind: &'static str, mut attempt: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let start = Instant::now();
    let mut wait = Duration::from_millis(250);
    let mut permanent_tries = PERMANENT_TRIES;
    loop {
        ledger.call(kind);
        let outcome = tokio::time::timeout(CALL_TIMEOUT, attempt())
            .await
            .unwrap_or_else(|_| {
                Err(ClientError::Rpc(Status::deadline_exceeded(
                    "no answer within the client's deadline",
                )))
            });
        let err = match outcome {
            Ok(value) => return Some(value),
            Err(err) => err,
        };
        ledger.error(kind, &err);
        if permanent(&err) {
            permanent_tries -= 1;
        }
        if permanent_tries == 0 || start.elapsed() + wait > OP_DEADLINE {
            eprintln!(
                "faults load: {kind} gave up after {:.0?}: {err}",
                start.elapsed()
            );
            return None;
        }
        let jitter = wait.mul_f64(random_below(1000) as f64 / 2000.0);
        tokio::time::sleep(wait + jitter).await;
        wait = (wait * 2).min(Duration::from_secs(4));
    }
}

/// Where a message goes.
pub struct Target<'a> {
    pub server: &'static str,
    pub origin: &'a str,
    pub guild: &'a str,
    pub channel: &'a str,
}

/// Sends one message (nonce in the content too, so a duplicate shows); true when acknowledged.
pub async fn send(
    ledger: &Ledger,
    author: &Client,
    to: &Target<'_>,
    mentions: Vec<String>,
    attachments: Vec<String>,
) -> bool {
    ledger.started("message");
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let message = retry(ledger, "message", || async {
        let request = SendMessageRequest {
            guild_id: to.guild.to_owned(),
            channel_id: to.channel.to_owned(),
            content: format!("faults {nonce}"),
            mention_user_ids: mentions.clone(),
            attachment_file_ids: attachments.clone(),
            nonce: nonce.clone(),
            ..Default::default()
        };
        let request = author.authed(to.origin, request).await?;
        MessageServiceClient::new(author.channel(to.origin)?)
            .send_message(request)
            .await?
            .into_inner()
            .message
            .ok_or_else(|| ClientError::Local("SendMessage answered no message".into()))
    })
    .await;
    let Some(message) = message else {
        ledger.failed("message");
        return false;
    };
    if message.nonce != nonce {
        eprintln!(
            "faults load: SendMessage answered another nonce ({} for {nonce})",
            message.nonce
        );
    }
    ledger.acked(
        "message",
        json!({
            "server": to.server,
            "id": message.id,
            "nonce": nonce,
            "guild": to.guild,
            "channel": to.channel,
            "author": author.identity().user_id(),
            "mentions": mentions,
            "attachments": attachments,
        }),
    );
    true
}

/// Joins the guild of `link` (with the login included when there is no session there yet).
pub async fn join(ledger: &Ledger, server: &'static str, client: &Client, link: &str) -> bool {
    ledger.started("join");
    let joined = retry(ledger, "join", || client.join_invite(link, None)).await;
    let Some((_, joined)) = joined else {
        ledger.failed("join");
        return false;
    };
    ledger.acked(
        "join",
        json!({
            "server": server,
            "guild": joined.guild.map(|g| g.id).unwrap_or_default(),
            "user": client.identity().user_id(),
        }),
    );
    true
}

/// Uploads `bytes` as an attachment; the acknowledged file id.
pub async fn upload(
    ledger: &Ledger,
    server: &'static str,
    client: Arc<Client>,
    origin: &str,
    bytes: bytes::Bytes,
) -> Option<String> {
    ledger.started("upload");
    let name = format!("faults-{}.bin", uuid::Uuid::new_v4().simple());
    let job = || UploadJob {
        origin,
        file_name: name.clone(),
        content_type: "application/octet-stream".into(),
        purpose: UploadPurpose::Attachment,
        source: Source::Memory(bytes.clone()),
        parallel: 1,
        progress: None,
    };
    // The upload id is the idempotency key: every later try resumes it (a completed upload
    // answers with its file again).
    let Some(upload_id) = retry(ledger, "upload", || {
        let client = client.clone();
        async move { client.start_upload(&job()).await }
    })
    .await
    else {
        ledger.failed("upload");
        return None;
    };
    let done = retry(ledger, "upload", || {
        let (client, id) = (client.clone(), upload_id.clone());
        async move { client.upload(job(), Some(&id)).await }
    })
    .await;
    let Some((file, used_id)) = done else {
        ledger.failed("upload");
        return None;
    };
    ledger.acked(
        "upload",
        json!({
            "server": server,
            "file_id": file.file_id,
            "name": name,
            "owner": client.identity().user_id(),
            "upload_id": used_id,
            "resumed": used_id == upload_id,
        }),
    );
    Some(file.file_id)
}
