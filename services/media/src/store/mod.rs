//! The media schema: uploads with their chunks, and files. The bytes are in the blob store.

mod entity;
pub mod files;
pub mod uploads;
