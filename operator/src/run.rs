//! The composition root of `mzchat-operator run`: the admin listener always, leader election
//! always, and the Homeserver controller only while this replica holds the Lease.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::crd::Homeserver;
use crate::leader::{self, Elector};
use crate::metrics::Metrics;
use crate::reconcile::{Context, error_policy, reconcile};

#[derive(Clone, Debug)]
pub struct Config {
    /// None watches every namespace.
    pub watch_namespace: Option<String>,
    pub lease_namespace: String,
    /// This replica: the Lease holder and the events' reporting instance.
    pub identity: String,
}

/// Runs until `shutdown` completes: then the controller (if leading) finishes the reconciles
/// under way, and the admin listener stops.
pub async fn run(
    config: Config,
    client: Client,
    admin: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let (stop, stopping) = watch::channel(false);
    let admin = tokio::spawn(crate::admin::serve(
        admin,
        metrics.clone(),
        wait_for(stopping.clone(), true),
    ));
    let (leading_tx, leading) = watch::channel(false);
    let elector = Arc::new(Elector::new(
        client.clone(),
        leader::Config::new(config.lease_namespace.clone(), config.identity.clone()),
    ));
    let election = tokio::spawn(elector.clone().run(leading_tx));
    let watch_shutdown = tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    loop {
        // lead once the Lease is ours, unless stopping first
        tokio::select! {
            () = wait_for(leading.clone(), true) => {}
            () = wait_for(stopping.clone(), true) => break,
        }
        metrics.set_leader(true);
        tracing::info!(identity = %config.identity, "leading: reconciling Homeservers");
        let (lost, stop_leading) = (leading.clone(), stopping.clone());
        let lost = async move {
            tokio::select! {
                () = wait_for(lost, false) => {}
                () = wait_for(stop_leading, true) => {}
            }
        };
        control(&config, client.clone(), metrics.clone(), lost).await;
        metrics.set_leader(false);
        if *stopping.borrow() {
            // the controller has stopped: hand over without waiting for the Lease to expire
            election.abort();
            if let Err(error) = elector.release().await {
                tracing::warn!(error = %error, "cannot release the leader lease");
            }
            break;
        }
        tracing::info!("standing by: not the leader");
    }
    election.abort();
    watch_shutdown.abort();
    admin.await.unwrap_or(Ok(()))
}

/// The Homeserver controller until `lost` completes. Owned Deployments and Jobs wake it, so a
/// rollout moves on as soon as a Deployment is ready or the migration Job finishes.
async fn control(
    config: &Config,
    client: Client,
    metrics: Arc<Metrics>,
    lost: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let homeservers: Api<Homeserver> = api(&client, config);
    let deployments: Api<Deployment> = api(&client, config);
    let jobs: Api<Job> = api(&client, config);
    let ctx = Arc::new(Context::new(client, Some(config.identity.clone())));
    Controller::new(homeservers, watcher::Config::default())
        .owns(deployments, watcher::Config::default())
        .owns(jobs, watcher::Config::default())
        .graceful_shutdown_on(lost)
        .run(
            move |hs, ctx| {
                let metrics = metrics.clone();
                async move {
                    let started = Instant::now();
                    let result = reconcile(hs, ctx).await;
                    let kind = result.as_ref().err().map(|e| e.kind());
                    metrics.reconciled(kind, started.elapsed());
                    result
                }
            },
            error_policy,
            ctx,
        )
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(homeserver = %object.name, "reconciled"),
                Err(error) => tracing::debug!(error = %error, "reconcile not done"),
            }
        })
        .await;
}

fn api<K>(client: &Client, config: &Config) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match &config.watch_namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// Completes when `flag` becomes `value`, or never if its sender is gone without it.
async fn wait_for(mut flag: watch::Receiver<bool>, value: bool) {
    if flag.wait_for(|v| *v == value).await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
#[path = "run/tests.rs"]
mod tests;
