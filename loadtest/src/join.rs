//! Federated joins with the home server down: users registered on their home A join a guild on
//! B with one JoinInvite each (login included) after A has stopped. B must not wait for A: it
//! checks the users' certificates itself, creates shadow accounts and queues their
//! verification. Measures each JoinInvite, as a client would see it.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use futures::StreamExt;

use super::{report, results, room, user};

pub async fn join_scenario(
    server: &str,
    home: &str,
    home_pid: u32,
    dir: &std::path::Path,
    users: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let owner = user(server, dir).await?;
    let room = room(server, &owner, &[]).await?;
    let joiners = super::users(home, dir, users)
        .await
        .context("registering at the home server")?;
    // Stopped, not killed: connections to it hang, as to a host that is gone, which is the
    // harder case for B (a refused connection fails fast).
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &home_pid.to_string()])
        .status()?;
    anyhow::ensure!(stopped.success(), "cannot stop the home server {home_pid}");
    let link = Arc::new(room.invite_link);
    let started = Instant::now();
    let outcomes: Vec<anyhow::Result<Duration>> = futures::stream::iter(joiners)
        .map(|joiner| {
            let link = link.clone();
            async move {
                let at = Instant::now();
                joiner.join_invite(&link, None).await?;
                anyhow::Ok(at.elapsed())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    std::process::Command::new("kill")
        .args(["-CONT", &home_pid.to_string()])
        .status()?;
    let mut samples = Vec::new();
    let mut errors = 0;
    for outcome in outcomes {
        match outcome {
            Ok(took) => samples.push(took),
            Err(err) => {
                errors += 1;
                eprintln!("join failed: {err:#}");
            }
        }
    }
    let rate = samples.len() as f64 / elapsed;
    results::throughput("joins/s", rate);
    println!(
        "join: {} of {users} joined with the home server down, {rate:.0} joins/s, {errors} errors",
        samples.len()
    );
    report("join latency", samples);
    anyhow::ensure!(errors == 0, "{errors} joins failed");
    Ok(())
}
