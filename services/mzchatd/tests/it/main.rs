//! Tests of the `mzchatd` binary itself: it is started as a real process.

mod cli;
mod crash;
mod daemon;
mod federation;
mod push;
mod smoke;
mod split;
