//! A fleet: one artifact, many databases. The construct's state machine runs a rollout
//! (plan every target, a canary group, waves with a halt flag, one rollup); each of its
//! children is this function, handed one target by the state machine through the fleet's
//! own door (`FLEET_QUALIFIER`, see `handler::fleet`). `migrator fleet status` reads a
//! fleet from the command line.

pub mod payload;
pub mod rollup;
pub mod status;
pub mod targets;
