//! `push`: mention pushes. Members register a distributor served by this process (the server
//! must allow 127.0.0.1 endpoints: `--push-allow-endpoint-hosts 127.0.0.1`); the owner posts
//! messages mentioning all of them; each delivery's latency is the time from the send's
//! acknowledgement to the distributor receiving the push. With `--home`, the members are homed
//! on that other server, so every push is relayed: guild server -> home -> distributor.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use mzchat_proto::{
    guild::{SendMessageRequest, message_service_client::MessageServiceClient},
    push::{DistributorKind, RegisterDistributorRequest, push_service_client::PushServiceClient},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::Mutex,
};

use crate::{report, results, room, user};

/// What the distributor saw: the message id, the endpoint path (which member), the arrival.
type Arrival = (String, String, Instant);

/// A distributor: answers 201 and records each push's arrival.
async fn distributor(
    arrivals: tokio::sync::mpsc::UnboundedSender<Arrival>,
) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let arrivals = arrivals.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    if request.ends_with(b"}") {
                        break;
                    }
                }
                let at = Instant::now();
                let text = String::from_utf8_lossy(&request);
                let path = text.split(' ').nth(1).unwrap_or_default().to_owned();
                if let Some(id) = text
                    .split("\"message_id\":\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                {
                    let _ = arrivals.send((id.to_owned(), path, at));
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n")
                    .await;
            });
        }
    });
    Ok(base)
}

pub async fn push_scenario(
    origin: &str,
    home: Option<&str>,
    dir: &std::path::Path,
    members: usize,
    messages: usize,
) -> anyhow::Result<()> {
    let (tx, mut arrivals) = tokio::sync::mpsc::unbounded_channel();
    let base = distributor(tx).await?;
    let owner = user(origin, dir).await?;
    let mut people = Vec::new();
    let home = home.unwrap_or(origin);
    for i in 0..members {
        let member = user(home, dir).await?;
        if home != origin {
            member.login(origin, None, "").await?;
        }
        let request = RegisterDistributorRequest {
            device_id: "load".into(),
            endpoint_url: format!("{base}/up/{i}"),
            kind: DistributorKind::UnifiedPush as i32,
            p256dh: None,
            auth: None,
        };
        PushServiceClient::new(member.channel(home)?)
            .register_distributor(member.authed(home, request).await?)
            .await?;
        people.push(member);
    }
    let room = room(origin, &owner, &people).await?;
    let mentioned: Vec<String> = people.iter().map(|p| p.identity().user_id()).collect();
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut api = MessageServiceClient::new(owner.channel(origin)?);
    if home != origin {
        // Relaying needs each member verified by the home server (its delegation token held
        // here): mention everyone until each has been pushed once.
        let mut reached = std::collections::HashSet::new();
        let warmup = Instant::now();
        while reached.len() < members {
            anyhow::ensure!(
                warmup.elapsed() < Duration::from_secs(120),
                "only {} of {members} members were reached through their home server",
                reached.len()
            );
            let request = SendMessageRequest {
                guild_id: room.guild.clone(),
                channel_id: room.channel.clone(),
                content: "warm-up".into(),
                mention_user_ids: mentioned.clone(),
                ..Default::default()
            };
            api.send_message(owner.authed(origin, request).await?)
                .await?;
            let round = Instant::now();
            while round.elapsed() < Duration::from_secs(2) {
                match tokio::time::timeout(Duration::from_millis(200), arrivals.recv()).await {
                    Ok(Some((_, path, _))) => {
                        reached.insert(path);
                    }
                    Ok(None) => break,
                    Err(_) => {}
                }
            }
        }
        // Warm-up pushes still in flight are not counted below (their ids are not recorded).
        tokio::time::sleep(Duration::from_secs(1)).await;
        while arrivals.try_recv().is_ok() {}
    }
    let start = Instant::now();
    for i in 0..messages {
        let request = SendMessageRequest {
            guild_id: room.guild.clone(),
            channel_id: room.channel.clone(),
            content: format!("push {i}"),
            mention_user_ids: mentioned.clone(),
            ..Default::default()
        };
        let message = api
            .send_message(owner.authed(origin, request).await?)
            .await?
            .into_inner()
            .message
            .ok_or_else(|| anyhow::anyhow!("no message"))?;
        sent.lock().await.insert(message.id, Instant::now());
    }
    let expected = members * messages;
    let mut latencies = Vec::with_capacity(expected);
    while latencies.len() < expected {
        let Ok(Some((id, _, at))) =
            tokio::time::timeout(Duration::from_secs(30), arrivals.recv()).await
        else {
            break;
        };
        if let Some(sent_at) = sent.lock().await.get(&id) {
            latencies.push(at.saturating_duration_since(*sent_at));
        }
    }
    let elapsed = start.elapsed();
    results::throughput(
        "deliveries/s",
        latencies.len() as f64 / elapsed.as_secs_f64(),
    );
    println!(
        "push: {} of {expected} deliveries ({members} mentioned members x {messages} messages) in {elapsed:.2?}: {:.0} deliveries/s",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
    report("push latency (send acknowledged to distributor)", latencies);
    Ok(())
}
