//! migrator-engine: the Prisma Migrate compatible core of `migrator`.
//!
//! Data flows one way: an [`artifact`] is read into a [`migration::MigrationSet`], the
//! [`engine`] compares it with the database's `_prisma_migrations` rows through a
//! [`dialect`], applies what is pending and returns an [`outcome::Outcome`].

pub mod artifact;
pub mod checksum;
pub mod clock;
pub mod dialect;
pub mod engine;
pub mod error;
mod layering;
pub mod lockfile;
pub mod migration;
pub mod ordering;
pub mod outcome;
pub mod preflight;
pub mod sql;
pub mod text;
pub use chrono;
