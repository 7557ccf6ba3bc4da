//! The live feed of every event stream in this process: one bus subscription to guild events
//! and device revocations, shared through a broadcast channel. With a subscription per stream,
//! NATS would send the process a copy of each message for every stream open on its guild.

use std::sync::Arc;

use mzchat_platform::bus::{Bus, BusError, Message};
use tokio::sync::{OnceCell, broadcast};

/// Messages buffered per stream; a stream further behind skips ahead and reads the log.
const BUFFER: usize = 4096;
pub const GUILD_EVENTS: &str = "guild.v1.g.";
pub const REVOKED_SUBJECT: &str = "identity.v1.device.revoked";

pub struct LiveFeed {
    bus: Arc<dyn Bus>,
    feed: broadcast::Sender<Message>,
    started: OnceCell<()>,
}

impl LiveFeed {
    pub fn new(bus: Arc<dyn Bus>) -> Self {
        Self {
            bus,
            feed: broadcast::channel(BUFFER).0,
            started: OnceCell::new(),
        }
    }

    /// Every guild event and device revocation from now on.
    pub async fn subscribe(&self) -> Result<broadcast::Receiver<Message>, BusError> {
        self.started
            .get_or_try_init(|| async {
                for pattern in [format!("{GUILD_EVENTS}>"), REVOKED_SUBJECT.to_owned()] {
                    let mut live = self.bus.subscribe(&pattern).await?;
                    let feed = self.feed.clone();
                    tokio::spawn(async move {
                        while let Some(message) = live.recv().await {
                            // No stream open is no error: nobody needs this one.
                            let _ = feed.send(message);
                        }
                        // Streams still read the log on their timer; they only lose wake-ups.
                        tracing::error!(pattern, "the bus ended the live feed");
                    });
                }
                Ok(())
            })
            .await?;
        Ok(self.feed.subscribe())
    }
}

/// The guild a guild event's subject names (`guild.v1.g.<guild_id>.<kind>`).
pub fn guild_of(subject: &str) -> Option<&str> {
    subject.strip_prefix(GUILD_EVENTS)?.split('.').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guild_events_name_their_guild() {
        assert_eq!(guild_of("guild.v1.g.abc.message.created"), Some("abc"));
        assert_eq!(guild_of(REVOKED_SUBJECT), None);
    }
}
