//! Identity's background federation work: applying home servers' answers (federation-sync's
//! results) to shadow accounts, and queueing the periodic refresh of recently seen ones.

use std::{sync::Arc, time::Duration};

use mzchat_platform::bus::{Bus, ConsumerSpec, Envelope, HandlerError, consume_forever, streams};
use mzchat_proto::federation::FederationResult;
use prost::Message;
use tokio_util::sync::CancellationToken;

use crate::{app::IdentityApp, domain::IdentityError};

const REFRESH_EVERY: Duration = Duration::from_secs(600);
const REFRESH_BATCH: u64 = 500;

pub async fn consume_results(
    bus: Arc<dyn Bus>,
    app: Arc<IdentityApp>,
    shutdown: CancellationToken,
) {
    let spec = ConsumerSpec {
        stream: streams::FEDERATION_RESULTS,
        durable: "identity-federation-results".into(),
        filter: "federation.v1.result.>".into(),
        max_deliver: 50,
        ack_wait: Duration::from_secs(30),
        // A user's answers apply in the order they were produced.
        ordered: true,
    };
    let handler = move |envelope: Envelope| {
        let app = app.clone();
        async move {
            let result = FederationResult::decode(envelope.payload.as_ref())
                .map_err(|e| HandlerError::Permanent(format!("malformed result: {e}")))?;
            app.apply_federation_result(&result)
                .await
                .map_err(|err| match err {
                    IdentityError::Store(_) | IdentityError::Unavailable(_) => {
                        HandlerError::Transient(err.to_string(), Duration::from_secs(2))
                    }
                    other => HandlerError::Permanent(other.to_string()),
                })
        }
    };
    consume_forever(bus, spec, shutdown, handler).await;
}

pub async fn refresh_shadows(app: Arc<IdentityApp>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(REFRESH_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match app.refresh_shadows(REFRESH_BATCH).await {
            Ok(0) => {}
            Ok(queued) => tracing::info!(queued, "shadow account refreshes queued"),
            Err(err) => tracing::warn!(error = %err, "shadow account refresh failed"),
        }
    }
}
