//! federation-sync's job backlog, read from NATS for its scaling (`targetJobBacklog`): the
//! messages waiting in the Homeserver's federation job stream, a work queue that drops each job
//! once a replica has finished it.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use crate::build::env::bus_prefix;
use crate::service::Service;
use crate::validate::{Scaling, ValidSpec};

/// The stream of federation jobs, as mzchatd names it (`<prefix>_federation-jobs`).
const JOBS_STREAM: &str = "federation-jobs";
/// A NATS that does not answer in time leaves the replica count as it is.
const TIMEOUT: Duration = Duration::from_secs(3);

/// The jobs waiting, when federation-sync scales on them; None when it does not, or when NATS
/// could not be read (the replica count then stays as it is).
pub async fn federation_backlog(client: &Client, spec: &ValidSpec) -> Option<u64> {
    if !matches!(
        spec.scaling(Service::FederationSync),
        Scaling::Backlog { .. }
    ) {
        return None;
    }
    let read = async {
        let credentials = credentials(client, spec).await?;
        let nats = connect(&spec.spec.nats.url, credentials.as_deref()).await?;
        jobs_waiting(&nats, &bus_prefix(spec)).await
    };
    match tokio::time::timeout(TIMEOUT, read).await {
        Ok(Ok(waiting)) => Some(waiting),
        Ok(Err(err)) => {
            tracing::warn!(
                homeserver = spec.name,
                error = err,
                "cannot read the job backlog"
            );
            None
        }
        Err(_) => {
            tracing::warn!(
                homeserver = spec.name,
                "NATS did not answer for the job backlog"
            );
            None
        }
    }
}

/// Messages waiting in the prefix's federation job stream.
pub async fn jobs_waiting(nats: &async_nats::Client, prefix: &str) -> Result<u64, String> {
    let mut stream = async_nats::jetstream::new(nats.clone())
        .get_stream(format!("{prefix}_{JOBS_STREAM}"))
        .await
        .map_err(|e| e.to_string())?;
    let info = stream.info().await.map_err(|e| e.to_string())?;
    Ok(info.state.messages)
}

/// Connects to the servers of `urls` (comma separated), with the content of a .creds file.
pub async fn connect(urls: &str, credentials: Option<&str>) -> Result<async_nats::Client, String> {
    let servers: Vec<async_nats::ServerAddr> = urls
        .split(',')
        .map(|url| url.trim().parse().map_err(|e| format!("{url}: {e}")))
        .collect::<Result<_, _>>()?;
    let mut options = async_nats::ConnectOptions::new().name("mzchat-operator");
    if let Some(creds) = credentials {
        options = options.credentials(creds).map_err(|e| e.to_string())?;
    }
    options.connect(servers).await.map_err(|e| e.to_string())
}

/// The NATS credentials the Homeserver's services use, if any.
async fn credentials(client: &Client, spec: &ValidSpec) -> Result<Option<String>, String> {
    let Some(reference) = &spec.spec.nats.credentials_secret_ref else {
        return Ok(None);
    };
    let secret = Api::<Secret>::namespaced(client.clone(), &spec.namespace)
        .get(&reference.name)
        .await
        .map_err(|e| format!("Secret {}: {e}", reference.name))?;
    let bytes = secret
        .data
        .and_then(|mut data| data.remove(&reference.key))
        .ok_or_else(|| format!("Secret {} has no key {}", reference.name, reference.key))?;
    String::from_utf8(bytes.0).map(Some).map_err(|_| {
        format!(
            "Secret {} key {} is not text",
            reference.name, reference.key
        )
    })
}
