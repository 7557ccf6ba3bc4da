//! The push schema: distributors and FCM tokens per device, the delivery queue and log,
//! MENTION_EVERYONE fan-outs in progress, and delegation tokens held for relaying.

pub mod deliveries;
mod entity;
pub mod fanouts;
pub mod held_tokens;
pub mod registrations;
