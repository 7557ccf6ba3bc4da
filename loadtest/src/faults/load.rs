//! The steady mixed load of the fault suite against homeservers A and B:
//! - messages in A's guild by members homed on A and on B (a quarter mention two members who
//!   registered a push distributor at their home, so each mention is a push, local or relayed
//!   through B; some carry an attachment their author uploaded);
//! - messages in B's guild by members homed on A;
//! - joins of A's guild by users homed on A (local) and on B (federated: A verifies them at B);
//! - uploads to A's media service.
//!
//! Operations start at fixed rates whatever the answers (open loop), each retried until its
//! deadline, with a cap on how many of a kind are in flight.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use mzchat_client::Client;
use mzchat_proto::push::{
    DistributorKind, RegisterDistributorRequest, push_service_client::PushServiceClient,
};
use serde_json::json;
use tokio::sync::Semaphore;

use super::{
    Load,
    ledger::Ledger,
    ops::{self, Target, random_below},
};
use crate::{Room, room, user, users};

/// Members of A's guild homed on A and on B with a push distributor each.
const A_MEMBERS: usize = 8;
const B_MEMBERS: usize = 4;
/// A-homed members who also join B's guild.
const GB_MEMBERS: usize = 4;

struct World {
    ledger: Ledger,
    a: String,
    b: String,
    ga: Room,
    gb: Room,
    /// A's guild members: the first A_MEMBERS homed on A, then B_MEMBERS homed on B.
    members: Vec<Arc<Client>>,
    /// Files each A-homed member uploaded (acknowledged), to attach.
    files: Mutex<HashMap<usize, Vec<String>>>,
    /// Users registered at their home who have not joined A's guild yet.
    joiners: Mutex<Vec<(Arc<Client>, &'static str)>>,
}

#[derive(Clone, Copy)]
enum Op {
    MessageA,
    MessageB,
    Join,
    Upload,
}

impl World {
    async fn run(self: Arc<Self>, op: Op) {
        match op {
            Op::MessageA => {
                let n = random_below(self.members.len());
                let mut mentions = Vec::new();
                if random_below(4) == 0 {
                    while mentions.len() < 2 {
                        let m = random_below(self.members.len());
                        let id = self.members[m].identity().user_id();
                        if m != n && !mentions.contains(&id) {
                            mentions.push(id);
                        }
                    }
                }
                let attachments: Vec<String> = match random_below(8) {
                    0 => {
                        let files = self.files.lock().unwrap_or_else(|e| e.into_inner());
                        files
                            .get(&n)
                            .and_then(|f| f.last())
                            .cloned()
                            .into_iter()
                            .collect()
                    }
                    _ => Vec::new(),
                };
                let to = Target {
                    server: "a",
                    origin: &self.a,
                    guild: &self.ga.guild,
                    channel: &self.ga.channel,
                };
                ops::send(&self.ledger, &self.members[n], &to, mentions, attachments).await;
            }
            Op::MessageB => {
                let author = &self.members[random_below(GB_MEMBERS)];
                let to = Target {
                    server: "b",
                    origin: &self.b,
                    guild: &self.gb.guild,
                    channel: &self.gb.channel,
                };
                ops::send(&self.ledger, author, &to, Vec::new(), Vec::new()).await;
            }
            Op::Join => {
                let next = self.joiners.lock().unwrap_or_else(|e| e.into_inner()).pop();
                if let Some((client, _home)) = next {
                    ops::join(&self.ledger, "a", &client, &self.ga.invite_link).await;
                }
            }
            Op::Upload => {
                let n = random_below(A_MEMBERS);
                let size = 4096 + random_below(28 * 1024);
                let data: Vec<u8> = (0..size).map(|i| (i * 131 + n * 7) as u8).collect();
                let client = self.members[n].clone();
                if let Some(file) =
                    ops::upload(&self.ledger, "a", client, &self.a, data.into()).await
                {
                    self.files
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(n)
                        .or_default()
                        .push(file);
                }
            }
        }
    }
}

/// GET on the push receiver (plain HTTP on loopback): its body.
async fn http_get(url: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").context("http URL")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    let request = format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    Ok(answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default())
}

async fn register_distributor(client: &Client, home: &str, url: String) -> anyhow::Result<()> {
    let request = RegisterDistributorRequest {
        device_id: client.identity().device_id.clone(),
        endpoint_url: url,
        kind: DistributorKind::UnifiedPush as i32,
        p256dh: None,
        auth: None,
    };
    PushServiceClient::new(client.channel(home)?)
        .register_distributor(client.authed(home, request).await?)
        .await?;
    Ok(())
}

async fn setup(load: &Load, dir: &std::path::Path) -> anyhow::Result<World> {
    let (a, b) = (load.a.as_str(), load.b.as_str());
    let ledger = Ledger::create(&load.out)?;
    let owner_a = user(a, dir).await.context("owner on A")?;
    let owner_b = user(b, dir).await.context("owner on B")?;
    let ga = room(a, &owner_a, &[]).await.context("A's guild")?;
    let gb = room(b, &owner_b, &[]).await.context("B's guild")?;
    let mut members = users(a, dir, A_MEMBERS).await?;
    members.extend(users(b, dir, B_MEMBERS).await?);
    let members: Vec<Arc<Client>> = members.into_iter().map(Arc::new).collect();
    for (i, member) in members.iter().enumerate() {
        let (home, path) = match i < A_MEMBERS {
            true => (a, format!("a{i}")),
            false => (b, format!("b{}", i - A_MEMBERS)),
        };
        register_distributor(member, home, format!("{}/up/{path}", load.receiver)).await?;
        member
            .join_invite(&ga.invite_link, None)
            .await
            .context("joining A's guild")?;
    }
    for member in &members[..GB_MEMBERS] {
        member
            .join_invite(&gb.invite_link, None)
            .await
            .context("joining B's guild")?;
    }
    let mut joiners = Vec::new();
    for (origin, home, count) in [(a, "a", load.joiners), (b, "b", load.joiners)] {
        for client in users(origin, dir, count).await? {
            joiners.push((Arc::new(client), home));
        }
    }
    // Alternate homes so both kinds of joins run all along.
    let mut interleaved = Vec::new();
    let (mut on_a, mut on_b): (Vec<_>, Vec<_>) = joiners.into_iter().partition(|j| j.1 == "a");
    while !on_a.is_empty() || !on_b.is_empty() {
        interleaved.extend(on_a.pop());
        interleaved.extend(on_b.pop());
    }
    Ok(World {
        ledger,
        a: a.to_owned(),
        b: b.to_owned(),
        ga,
        gb,
        members,
        files: Mutex::default(),
        joiners: Mutex::new(interleaved),
    })
}

/// Mentions every member until each one's distributor got a push: pushes for members homed on
/// B need A to hold their delegation tokens (from B's answer to VerifyUser).
async fn warm_up(world: &World, receiver: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let expected: Vec<String> = (0..world.members.len())
        .map(|i| match i < A_MEMBERS {
            true => format!("/up/a{i}"),
            false => format!("/up/b{}", i - A_MEMBERS),
        })
        .collect();
    let everyone: Vec<String> = world.members[1..]
        .iter()
        .map(|m| m.identity().user_id())
        .collect();
    loop {
        let stats = http_get(&format!("{receiver}/stats")).await?;
        let stats: serde_json::Value = serde_json::from_str(&stats).context("receiver stats")?;
        let missing: Vec<&String> = expected[1..]
            .iter()
            .filter(|p| stats["paths"][p.as_str()].as_u64().unwrap_or(0) == 0)
            .collect();
        if missing.is_empty() {
            println!(
                "faults load: every distributor reached in {:.1?}",
                started.elapsed()
            );
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "distributors never reached: {missing:?}"
        );
        let to = Target {
            server: "a",
            origin: &world.a,
            guild: &world.ga.guild,
            channel: &world.ga.channel,
        };
        ops::send(
            &world.ledger,
            &world.members[0],
            &to,
            everyone.clone(),
            Vec::new(),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

pub async fn run(load: Load, dir: &std::path::Path) -> anyhow::Result<()> {
    let world = Arc::new(setup(&load, dir).await?);
    warm_up(&world, &load.receiver).await?;
    let mut homes = BTreeMap::new();
    for (i, m) in world.members.iter().enumerate() {
        homes.insert(
            m.identity().user_id(),
            if i < A_MEMBERS { "a" } else { "b" },
        );
    }
    for (client, home) in world
        .joiners
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        homes.insert(client.identity().user_id(), *home);
    }
    // The driver starts its fault timeline when this line appears.
    let load_started_at_s = world.ledger.elapsed();
    println!("faults load: started");
    let ops = [
        (Op::MessageA, "message", load.rate, 64),
        (Op::MessageB, "message", load.b_rate, 64),
        (Op::Join, "join", load.join_rate, 16),
        (Op::Upload, "upload", load.upload_rate, 16),
    ];
    let caps: Vec<Arc<Semaphore>> = ops.iter().map(|o| Arc::new(Semaphore::new(o.3))).collect();
    let mut credit = [0.0f64; 4];
    let started = Instant::now();
    let end = started + Duration::from_secs(load.seconds);
    let mut last = Instant::now();
    let mut last_report = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let elapsed = last.elapsed().as_secs_f64();
        last = Instant::now();
        for (i, (op, kind, rate, _)) in ops.iter().enumerate() {
            credit[i] += rate * elapsed;
            while credit[i] >= 1.0 {
                credit[i] -= 1.0;
                match caps[i].clone().try_acquire_owned() {
                    Ok(permit) => {
                        let (world, op) = (world.clone(), *op);
                        tasks.spawn(async move {
                            world.run(op).await;
                            drop(permit);
                        });
                    }
                    Err(_) => world.ledger.skipped(kind),
                }
            }
        }
        while tasks.try_join_next().is_some() {}
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            println!("{}", world.ledger.progress(tasks.len()));
        }
    }
    println!(
        "faults load: load over, waiting for {} operations",
        tasks.len()
    );
    while !tasks.is_empty() {
        let _ = tokio::time::timeout(Duration::from_secs(10), tasks.join_next()).await;
        println!("{}", world.ledger.progress(tasks.len()));
    }
    let setup = json!({
        "a": { "origin": world.a, "guild": world.ga.guild, "channel": world.ga.channel },
        "b": { "origin": world.b, "guild": world.gb.guild, "channel": world.gb.channel },
        "homes": homes,
        "load_started_at_s": load_started_at_s,
    });
    world.ledger.finish(started.elapsed(), setup)?;
    for (kind, c) in world.ledger.counts() {
        println!(
            "faults load: {kind}: {} started, {} calls, {} acknowledged, {} failed, {} skipped",
            c.started, c.calls, c.acked, c.failed, c.skipped
        );
    }
    println!("faults load: acknowledged writes in {}", load.out.display());
    Ok(())
}
