//! `verify`: VerifyUser job throughput of a homeserver's federation-sync against a peer that
//! answers after a fixed latency. The peer here is a stand-in for a remote home server (it
//! answers every VerifyUser and does not check signatures, which is the remote's cost, not
//! ours). Jobs are published straight onto the homeserver's work queue on NATS, as identity
//! would, and counted done when their `user_verified` result appears on the bus.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use futures::StreamExt;
use mzchat_proto::{
    federation::{
        FederationJob, FederationResult, VerifyUserJob, VerifyUserRequest, VerifyUserResponse,
        federation_job::Kind,
        identity_federation_service_server::{
            IdentityFederationService, IdentityFederationServiceServer,
        },
    },
    identity::{
        GetServerInfoRequest, GetServerInfoResponse,
        server_info_service_server::{ServerInfoService, ServerInfoServiceServer},
    },
};
use prost::Message;
use tokio::sync::Mutex;
use tonic::{Request, Response, Status};

use crate::report;

struct SlowHome {
    latency: Duration,
    origin: String,
}

#[tonic::async_trait]
impl IdentityFederationService for SlowHome {
    async fn verify_user(
        &self,
        request: Request<VerifyUserRequest>,
    ) -> Result<Response<VerifyUserResponse>, Status> {
        tokio::time::sleep(self.latency).await;
        Ok(Response::new(VerifyUserResponse {
            profile: Some(mzchat_proto::common::Profile {
                user_id: request.into_inner().user_id,
                display_name: "load".into(),
                ..Default::default()
            }),
            home_server: self.origin.clone(),
            ..Default::default()
        }))
    }
}

#[tonic::async_trait]
impl ServerInfoService for SlowHome {
    async fn get_server_info(
        &self,
        _request: Request<GetServerInfoRequest>,
    ) -> Result<Response<GetServerInfoResponse>, Status> {
        Ok(Response::new(GetServerInfoResponse {
            origin: self.origin.clone(),
            ..Default::default()
        }))
    }
}

async fn start_peer(latency: Duration) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let origin = format!("http://{}", listener.local_addr()?);
    let home = Arc::new(SlowHome {
        latency,
        origin: origin.clone(),
    });
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(IdentityFederationServiceServer::from_arc(home.clone()))
            .add_service(ServerInfoServiceServer::from_arc(home))
            .serve_with_incoming(incoming),
    );
    Ok(origin)
}

fn job(destination: &str, user: usize) -> FederationJob {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let at = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
    FederationJob {
        id: uuid::Uuid::now_v7().to_string(),
        destination: destination.to_owned(),
        created_at: at(now),
        expires_at: at(now + 3600),
        kind: Some(Kind::VerifyUser(VerifyUserJob {
            user_id: format!("load-user-{user}"),
            follow_up: false,
        })),
    }
}

pub async fn verify_scenario(
    nats_url: &str,
    bus_prefix: &str,
    jobs: usize,
    latency_ms: u64,
) -> anyhow::Result<()> {
    let peer = start_peer(Duration::from_millis(latency_ms)).await?;
    let nats = async_nats::connect(nats_url).await.context("nats")?;
    let mut results = nats
        .subscribe(format!("{bus_prefix}.federation.v1.result.user_verified"))
        .await?;
    let jetstream = async_nats::jetstream::new(nats.clone());
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let subject = format!("{bus_prefix}.federation.v1.job.verify_user");
    let start = Instant::now();
    let mut acks = Vec::with_capacity(jobs);
    for user in 0..jobs {
        let job = job(&peer, user);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", job.id.as_str());
        sent.lock().await.insert(job.id.clone(), Instant::now());
        acks.push(
            jetstream
                .publish_with_headers(subject.clone(), headers, job.encode_to_vec().into())
                .await?,
        );
    }
    for ack in acks {
        ack.await.context("job not stored")?;
    }
    let mut latencies = Vec::with_capacity(jobs);
    while latencies.len() < jobs {
        let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(60), results.next()).await
        else {
            break;
        };
        let Ok(result) = FederationResult::decode(message.payload.as_ref()) else {
            continue;
        };
        if let Some(at) = sent.lock().await.remove(&result.job_id) {
            latencies.push(at.elapsed());
        }
    }
    let elapsed = start.elapsed();
    crate::results::throughput("jobs/s", latencies.len() as f64 / elapsed.as_secs_f64());
    println!(
        "verify: {} of {jobs} jobs done in {elapsed:.2?} against a peer answering in {latency_ms} ms: {:.0} jobs/s",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
    report("job latency (queued to result)", latencies);
    Ok(())
}

/// Deletes the JetStream streams of `bus_prefix` (a benchmark's scratch homeserver).
pub async fn drop_streams(nats_url: &str, bus_prefix: &str) -> anyhow::Result<()> {
    let jetstream = async_nats::jetstream::new(async_nats::connect(nats_url).await?);
    let prefix = format!(
        "{}_",
        bus_prefix.to_ascii_uppercase().replace(['-', '.'], "_")
    );
    let mut names = jetstream.stream_names();
    let mut doomed = Vec::new();
    while let Some(name) = names.next().await {
        let name = name?;
        if name.starts_with(&prefix) {
            doomed.push(name);
        }
    }
    for name in doomed {
        jetstream.delete_stream(&name).await?;
    }
    Ok(())
}
