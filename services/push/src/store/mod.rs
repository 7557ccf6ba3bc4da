//! The push schema: distributors and FCM tokens per device.

mod entity;
pub mod registrations;
