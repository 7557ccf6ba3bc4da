//! The federation schema: destinations, the job log, dead letters.

pub mod dead_letters;
pub mod destinations;
mod entity;
pub mod jobs;

pub use entity::job::Model as JobRow;

#[cfg(test)]
mod tests;
