//! The push schema: distributors and FCM tokens per device.

pub mod deliveries;
mod entity;
pub mod registrations;
