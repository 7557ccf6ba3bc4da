//! The push schema: distributors and FCM tokens per device.

pub mod deliveries;
mod entity;
pub mod held_tokens;
pub mod registrations;
