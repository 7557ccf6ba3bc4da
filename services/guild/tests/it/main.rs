//! Integration tests of the guild service (with the real identity service beside it) over both
//! backends.

mod harness;

mod events;
mod guilds;
mod invites;
mod limits;
mod messages;
mod permissions;
mod push_targets;
