//! One gRPC transport per origin, created on first use.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::ClientError;

#[derive(Clone, Default)]
pub struct Transports {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

/// `https://Host:443/` and `https://host:443` are one origin.
pub fn normalize_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

impl Transports {
    pub fn new() -> Self {
        Self::default()
    }

    /// The transport for `origin`; calls about a resource must use the resource's origin.
    pub fn channel(&self, origin: &str) -> Result<Channel, ClientError> {
        let origin = normalize_origin(origin);
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(channel) = channels.get(&origin) {
            return Ok(channel.clone());
        }
        if !(origin.starts_with("https://") || origin.starts_with("http://")) {
            return Err(ClientError::Local(format!(
                "{origin} is not an http(s) origin"
            )));
        }
        let mut endpoint = Endpoint::from_shared(origin.clone())
            .map_err(|e| ClientError::Local(format!("{origin}: {e}")))?
            .connect_timeout(Duration::from_secs(10));
        if origin.starts_with("https://") {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().with_native_roots())
                .map_err(|e| ClientError::Local(format!("{origin}: {e}")))?;
        }
        let channel = endpoint.connect_lazy();
        channels.insert(origin, channel.clone());
        Ok(channel)
    }

    /// How many origins have a transport.
    pub fn len(&self) -> usize {
        self.channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
