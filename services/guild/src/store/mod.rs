//! The guild service's repositories over its own schema. Functions take any connection, so a
//! use case can run several of them in one transaction.

mod entity;
pub mod events;
pub mod guilds;
pub mod invites;
pub mod members;
pub mod messages;
pub mod presence;
pub mod profiles;
pub mod roles;
