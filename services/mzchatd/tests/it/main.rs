//! Tests of the `mzchatd` binary itself: it is started as a real process.

mod authz;
mod cli;
mod crash;
mod daemon;
mod fcm;
mod federation;
mod media;
mod push;
mod push_everyone;
mod rules;
mod scrape;
mod smoke;
mod split;
