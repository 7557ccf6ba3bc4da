//! Integration tests of the platform's outbox and buses against real databases.

mod nats;
mod outbox;
mod rate_limits;
