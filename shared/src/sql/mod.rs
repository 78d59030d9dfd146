//! SQL text utilities: statement splitting for migration scripts.

pub mod split;

pub use split::{Flavor, Statement, split, split_pg};
